"""The ``lossserve`` command: serve, train, experiment."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import errno
import functools
import gc
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_args

import uvicorn
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .observability import configure_logging
from .settings import Settings

if TYPE_CHECKING:
    from .training import TrainOptions

__all__ = ["Listeners", "PortUnavailableError", "main", "serve"]

log = logging.getLogger("lossserve")

_ANSWER_S = 1
"""Seconds past the grace period for cut-off requests to send their 503 / UNAVAILABLE."""

_FRONTEND_FLAG = "--frontend"
"""Internal: a frontend started by the supervisor, joining the ports it holds."""

_Model = TypeVar("_Model", bound=BaseModel)


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handlers: :func:`serve` owns SIGINT and SIGTERM, and
    decides when the listener closes."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class PortUnavailableError(RuntimeError):
    """A port the server needs cannot be listened on (taken, or not ours to take); the
    message names it, on one line."""


@dataclass
class Listeners:
    """What :func:`serve` listens on: an HTTP socket already bound and listening, and the
    gRPC port, already checked to be free (or held by the supervisor for its frontends)."""

    http: socket.socket
    grpc_port: int


def _address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    return family, address


def _bind(host: str, port: int, what: str, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port``; :class:`PortUnavailableError` names ``what`` otherwise.

    ``SO_REUSEADDR`` is on, as every server sets it (a restart need not wait out TIME_WAIT:
    Linux still refuses a second socket on a port being listened on); ``SO_REUSEPORT`` only
    with ``reuse_port``. Since a socket without it cannot share a port with any other,
    binding one fails on a port that any process listens on, grpc's servers included (they
    set ``SO_REUSEPORT`` and would otherwise share their port with a second server).
    """
    try:
        family, address = _address(host, port)
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise PortUnavailableError(f"cannot listen on {what} {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            message = f"{what} port {port} on {host} is already in use"
        else:
            message = f"cannot listen on {what} {host}:{port}: {exc.strerror}"
        raise PortUnavailableError(message) from None
    return sock


def _listen_http(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    sock = _bind(host, port, "HTTP", reuse_port=reuse_port)
    sock.listen(2048)  # uvicorn's backlog
    return sock


def _check_grpc(host: str, port: int) -> None:
    """Fail unless ``port`` is free; grpc then binds it itself (``SO_REUSEPORT`` on, its
    default: the check stands in for a bind without it). Port 0: grpc picks one."""
    if port != 0:
        _bind(host, port, "gRPC").close()


def _reserve(host: str, port: int, what: str) -> socket.socket:
    """For the frontends: check ``port`` is free, then hold it with a socket that only
    frontends can join (``SO_REUSEPORT``, bound, never listening: it gets no connection). A
    second server's check fails on it; port 0 picks the port the frontends use."""
    if port != 0:
        _bind(host, port, what).close()
    return _bind(host, port, what, reuse_port=True)


def _claim(settings: Settings) -> Listeners:
    """The listeners of a server that is its own only frontend; :class:`PortUnavailableError` before
    anything else happens when a port is taken."""
    http = _listen_http(settings.host, settings.http_port)
    try:
        _check_grpc(settings.host, settings.grpc_port)
    except PortUnavailableError:
        http.close()
        raise
    return Listeners(http=http, grpc_port=settings.grpc_port)


def _http_protocol(settings: Settings, app: Any, metrics: Any) -> Any:
    """uvicorn's C parser (httptools) when installed, with a timeout on each request's
    head (``body_timeout_s``) and ``app``'s small inference requests answered by the
    protocol itself (:mod:`.api.http_protocol`); else its pure-Python h11."""
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    from .api.http_protocol import http_protocol

    return http_protocol(
        settings.body_timeout_s,
        app.whole,
        metrics,
        settings.max_body_bytes,
        send_timeout=settings.send_timeout_s,
    )


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when installed (the gRPC handlers run on it too), else on asyncio's
    own loop. A frontend's own torch work (checks of a request's tensors) runs on one thread:
    the workers compute, and an OpenMP team left spinning after a check would take their
    cores (a 65536 x 128 focal loss through shared memory took 40 ms instead of 32 on two
    cores)."""
    import torch

    torch.set_num_threads(1)
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


async def serve(settings: Settings, listeners: Listeners | None = None) -> None:
    """Serve HTTP and gRPC from one process until SIGINT or SIGTERM, then drain.

    ``listeners``: what to listen on; by default the HTTP port is bound here and the gRPC
    port checked first, so that a port in use raises :class:`PortUnavailableError` before any model
    loads.

    The drain: readiness turns false at once (REST ``/v2/health/ready`` 503, gRPC
    ``ServerReady`` false, gRPC health NOT_SERVING) while requests are still served for
    ``shutdown_delay_s``; then both transports refuse new connections and RPCs, and the
    requests in flight (and the jobs they queued) get ``shutdown_grace_s`` to finish. Past
    it they are cancelled; since a thread running cancelled work cannot be interrupted, the
    process then exits at once (status 0) instead of returning.
    """
    from .api.grpc import create_grpc_server
    from .api.rest import create_app
    from .core.state import ServiceState

    alone = listeners is None  # not one of a supervisor's frontends sharing the gRPC port
    if listeners is None:
        listeners = _claim(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    state = ServiceState.create(settings)
    await state.start()
    app = create_app(state)
    http_protocol = _http_protocol(settings, app, state.metrics)
    config = uvicorn.Config(
        app,
        http=http_protocol,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=settings.shutdown_grace_s + _ANSWER_S,
    )
    http = _HttpServer(config)
    grpc_server = create_grpc_server(state, [("grpc.so_reuseport", 0)] if alone else [])
    try:
        grpc_port = grpc_server.add_insecure_port(f"{settings.host}:{listeners.grpc_port}")
    except RuntimeError as exc:  # taken between the check and now
        raise PortUnavailableError(
            f"gRPC port {listeners.grpc_port} on {settings.host} is already in use ({exc})"
        ) from None
    await grpc_server.start()
    # What startup built lives as long as the server: frozen, out of the collector's reach.
    # A full collection then scans only what requests allocate; over the ~220k objects of
    # startup it took ~95 ms on a 2-core machine, holding the GIL (the event loop, health
    # checks included, stalled) on whichever thread set it off.
    gc.collect()
    gc.freeze()
    log.info(
        "serving",
        extra={
            "host": settings.host,
            "http_port": listeners.http.getsockname()[1],
            "grpc_port": grpc_port,
            "pid": os.getpid(),
            "loop": type(loop).__module__.split(".")[0],
            "http_parser": "h11" if http_protocol == "h11" else "httptools",
        },
    )
    http_task = asyncio.create_task(http.serve(sockets=[listeners.http]))
    stop_task = asyncio.create_task(stop.wait())
    await asyncio.wait({http_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    stop_task.cancel()

    grace = settings.shutdown_grace_s
    log.info("draining", extra={"delay_s": settings.shutdown_delay_s, "grace_s": grace})
    began = loop.time()
    await state.drain()
    await asyncio.sleep(settings.shutdown_delay_s)
    closing = loop.time()
    http.should_exit = True  # uvicorn closes its listener and waits for the requests in flight
    transports = asyncio.gather(grpc_server.stop(grace + _ANSWER_S), http_task)
    done, _ = await asyncio.wait({transports}, timeout=grace)
    if done:
        await transports
        finished = await state.stop(timeout=max(0.0, closing + grace - loop.time()))
    else:
        # The jobs still queued or running fail with Unavailable, so that their requests
        # answer 503 / UNAVAILABLE (retryable) before the transports cancel what is left.
        await state.stop(timeout=0)
        await transports
        finished = False
    elapsed = round(loop.time() - began, 3)
    if not finished:
        log.warning("drain cut off at the grace period; exiting", extra={"elapsed_s": elapsed})
        _exit_now(0)
    log.info("drained", extra={"elapsed_s": elapsed})


def _exit_now(status: int) -> None:
    """Exit without joining threads (the interpreter waits for every executor thread)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


_RESTART_BACKOFF_S = (0.5, 30.0)
"""The first and the longest wait before restarting a frontend that died young (< 10 s)."""
_YOUNG_S = 10.0


@dataclass
class _Frontend:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    deaths: int = 0
    """Deaths in a row, each before it had served for ``_YOUNG_S``."""
    restart_at: float = 0.0


def _frontend_cpus(settings: Settings, count: int) -> list[int] | None:
    """The CPU each of ``count`` frontends is pinned to (``frontend_affinity``), or None to
    leave them to the scheduler."""
    if settings.frontend_affinity == "shared" or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    given = len(cpus) < (os.cpu_count() or len(cpus))  # taskset, a cpuset
    if settings.frontend_affinity == "auto" and not (given and count == len(cpus)):
        return None
    return [cpus[index % len(cpus)] for index in range(count)]


def _start_frontend(cpu: int | None) -> None:  # runs in the child between fork and exec
    """On Linux, have the kernel send this frontend SIGTERM (it drains) if the supervisor
    dies, even by SIGKILL; run it, and every thread it starts, on ``cpu`` if given."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if cpu is not None:
        with contextlib.suppress(OSError):  # a CPU taken away meanwhile: run unpinned
            os.sched_setaffinity(0, {cpu})


_FLAGGED = ("model_control", "model_poll_s", "allow_shared_memory")
"""Settings of ``serve``'s flags (beyond the addresses and the repository) that its
frontends get through their environment."""


class _Supervisor:
    """Runs ``count`` frontends (``lossserve serve`` processes of their own, each a fresh
    interpreter: nothing loaded here is inherited) on an HTTP and a gRPC port, each checked
    and held here, that every frontend listens on with ``SO_REUSEPORT``: the kernel hands
    each connection to one frontend (by a hash of its addresses, so that connections opened
    at once spread over the frontends; a socket shared by all would give them to whichever
    frontend wakes first). A frontend's own sockets close when it exits: the others take the
    new connections meanwhile. Frontends may be pinned to a CPU each
    (:func:`_frontend_cpus`); their worker processes then run on the CPUs the supervisor may
    use (``worker_cpus``).

    SIGTERM and SIGINT go to every frontend, which drains as :func:`serve` does; the
    supervisor lets go of the ports at once, so that new connections are refused once the
    frontends close their sockets, and exits when they all have (0 when every one
    exited 0). A frontend that exits otherwise is restarted, after a growing pause if it
    keeps dying young.
    """

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.http = _reserve(settings.host, settings.http_port, "HTTP")
        try:
            self.grpc = _reserve(settings.host, settings.grpc_port, "gRPC")
        except PortUnavailableError:
            self.http.close()
            raise
        self.http_port = self.http.getsockname()[1]
        self.grpc_port = self.grpc.getsockname()[1]
        self.frontends = [_Frontend(index) for index in range(count)]
        self.cpus = _frontend_cpus(settings, count)
        self.stopping: int | None = None
        """The signal being forwarded, once one arrived."""
        self.failed = False
        """A frontend exited with a status other than 0 while stopping."""
        self.registry: Path | None = None
        """The shared-memory regions' records, made here for the frontends to share."""
        if settings.allow_shared_memory and settings.shared_memory_registry is None:
            self.registry = Path(tempfile.mkdtemp(prefix="lossserve-regions-"))

    def _spawn(self, frontend: _Frontend) -> None:
        env = {
            **os.environ,
            "LOSSSERVE_FRONTENDS": "1",
            "LOSSSERVE_HOST": self.settings.host,
            "LOSSSERVE_HTTP_PORT": str(self.http_port),
            "LOSSSERVE_GRPC_PORT": str(self.grpc_port),
        }
        if self.settings.model_repository is not None:
            env["LOSSSERVE_MODEL_REPOSITORY"] = str(self.settings.model_repository)
        for field in _FLAGGED:  # what the command's flags set, which a frontend reads anew
            value = getattr(self.settings, field)
            env[_env(field)] = json.dumps(value) if isinstance(value, bool) else str(value)
        if self.registry is not None:
            env["LOSSSERVE_SHARED_MEMORY_REGISTRY"] = str(self.registry)
        cpu = None if self.cpus is None else self.cpus[frontend.index]
        if cpu is not None and self.settings.worker_cpus is None:
            env["LOSSSERVE_WORKER_CPUS"] = json.dumps(sorted(os.sched_getaffinity(0)))
        command = [sys.executable, "-m", "lossserve.cli", "serve", _FRONTEND_FLAG]
        frontend.process = subprocess.Popen(
            command, env=env, preexec_fn=functools.partial(_start_frontend, cpu)
        )
        frontend.started = time.monotonic()
        if self.stopping is not None:  # the signal came while it was being started
            frontend.process.send_signal(self.stopping)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.stopping is None:
            log.info("stopping frontends", extra={"signal": signal.Signals(signum).name})
            self.http.close()
            self.grpc.close()
        self.stopping = signum
        for frontend in self.frontends:
            if frontend.process is not None and frontend.process.poll() is None:
                frontend.process.send_signal(signum)

    def _reap(self, frontend: _Frontend, code: int, now: float) -> None:
        """Note a frontend that exited with ``code``; schedule its restart unless stopping."""
        frontend.process = None
        if self.stopping is not None:
            if code != 0:
                log.warning("frontend exited", extra={"frontend": frontend.index, "code": code})
                self.failed = True
            return
        young = now - frontend.started < _YOUNG_S
        frontend.deaths = frontend.deaths + 1 if young else 0
        first, longest = _RESTART_BACKOFF_S
        pause = min(longest, first * 2 ** (frontend.deaths - 1)) if frontend.deaths else 0.0
        frontend.restart_at = now + pause
        log.warning(
            "frontend exited; restarting it",
            extra={"frontend": frontend.index, "code": code, "pause_s": pause},
        )

    def run(self) -> int:
        try:
            return self._supervise()
        finally:
            if self.registry is not None:
                shutil.rmtree(self.registry, ignore_errors=True)

    def _supervise(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        for frontend in self.frontends:
            self._spawn(frontend)
        log.info(
            "supervising frontends",
            extra={
                "host": self.settings.host,
                "http_port": self.http_port,
                "grpc_port": self.grpc_port,
                "frontends": len(self.frontends),
                "cpus": self.cpus,
                "pids": [f.process.pid for f in self.frontends if f.process is not None],
            },
        )
        while True:
            now = time.monotonic()
            for frontend in self.frontends:
                code = None if frontend.process is None else frontend.process.poll()
                if code is not None:
                    self._reap(frontend, code, now)
                if (
                    frontend.process is None
                    and self.stopping is None
                    and now >= frontend.restart_at
                ):
                    self._spawn(frontend)
            if self.stopping is not None and all(f.process is None for f in self.frontends):
                return 1 if self.failed else 0
            time.sleep(0.05)


def _frontend(settings: Settings) -> None:
    """A supervised frontend: it joins the two ports the supervisor holds for its frontends."""
    http = _listen_http(settings.host, settings.http_port, reuse_port=True)
    _run(serve(settings, Listeners(http=http, grpc_port=settings.grpc_port)))


def _serve_command(settings: Settings, frontend: bool) -> int:
    """``lossserve serve``: one line on stderr and status 1 when a port is taken."""
    configure_logging(settings.log_level)
    try:
        if frontend:
            _frontend(settings)
        elif settings.frontends == 1:
            listeners = _claim(settings)
            _run(serve(settings, listeners))
        else:
            return _Supervisor(settings, settings.frontends).run()
    except PortUnavailableError as exc:
        print(f"lossserve serve: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _columns(value: str) -> list[str]:
    """A comma-separated list of column names."""
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {value!r}")
    return names


def _params(value: str) -> dict[str, Any]:
    """``--params``: a JSON object."""
    try:
        params = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {value!r} ({exc})") from None
    if not isinstance(params, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object, got {type(params).__name__} {value!r}"
        )
    return params


def _add_data_columns(command: argparse.ArgumentParser) -> None:
    """A user file's columns: label, features, dropped, split (``train``, ``experiment``)."""
    command.add_argument(
        "--label",
        type=_columns,
        default=None,
        metavar="COL[,COL...]",
        help="user file: the label column, or several 0/1 columns (multilabel); required "
        "for a user file, not allowed for a built-in dataset (default: none)",
    )
    command.add_argument(
        "--features",
        type=_columns,
        default=None,
        metavar="COL[,COL...]",
        help="user file: the feature columns (default: all others)",
    )
    command.add_argument(
        "--drop",
        type=_columns,
        default=None,
        metavar="COL[,COL...]",
        help="user file: columns to leave out (columns that look like IDs are left out "
        "anyway, with a message) (default: none)",
    )
    command.add_argument(
        "--split-column",
        default=None,
        metavar="COL",
        help="user file: a train/validation/test column (default: a stratified 60/20/20 split)",
    )


def _data_columns(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "label": args.label,
        "features": args.features,
        "split_column": args.split_column,
        "drop": args.drop,
    }


def _add_training_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--architecture",
        choices=("linear", "mlp"),
        default="mlp",
        help="a linear model, or an MLP with two hidden layers (default: %(default)s)",
    )
    command.add_argument(
        "--hidden", type=int, default=128, help="units per hidden layer, mlp (default: %(default)s)"
    )
    command.add_argument(
        "--epochs", type=int, default=200, help="most epochs, early stopping (default: %(default)s)"
    )
    command.add_argument(
        "--patience",
        type=int,
        default=20,
        help="epochs without a better validation macro-F1 before stopping (default: %(default)s)",
    )
    command.add_argument(
        "--batch-size", type=int, default=64, help="rows per minibatch (default: %(default)s)"
    )
    command.add_argument(
        "--learning-rate",
        type=float,
        default=1e-3,
        help="AdamW learning rate (default: %(default)s)",
    )
    command.add_argument(
        "--weight-decay", type=float, default=1e-4, help="AdamW weight decay (default: %(default)s)"
    )
    command.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads while training, 0: torch's default (default: %(default)s)",
    )
    command.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar (default: a bar on stderr when it is a terminal)",
    )


def _training_options(args: argparse.Namespace, seed: int = 0) -> TrainOptions:
    from .training import TrainOptions

    return _validated(
        TrainOptions,
        _flag,
        architecture=args.architecture,
        hidden=args.hidden,
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        seed=seed,
        threads=args.threads,
    )


def _train(args: argparse.Namespace) -> int:
    from .training import TrainConfig, train

    repository = args.model_repository or _settings({}).model_repository or Path("models")
    config = _validated(
        TrainConfig,
        lambda field: "--model-repository" if field == "repository" else _flag(field),
        dataset=args.dataset,
        loss=args.loss,
        params=args.params,
        name=args.name,
        repository=repository,
        class_weights=args.class_weights,
        options=_training_options(args, args.seed),
        beta=args.beta,
        refit_thresholds=args.refit_thresholds,
        **_data_columns(args),
        quiet=args.quiet,
        metric=args.metric,
        budget_s=args.budget,
        jobs=args.jobs,
    )
    result = train(config)
    for note in result.notes:
        print(note, file=sys.stderr)
    card, seconds = result.card, result.seconds
    if card.selection is not None:
        print(_selection_text(card.selection))
    print(
        f"{card.name} version {card.version} ({card.task}, {card.loss}): test macro-F1 "
        f"{card.test.macro_f1_argmax:.4f} plain, {card.test.macro_f1_thresholds:.4f} with "
        f"learned {card.threshold_kind}; validation {card.validation.macro_f1_argmax:.4f} / "
        f"{card.validation.macro_f1_thresholds:.4f}; best epoch {result.fit.best_epoch}; "
        f"ONNX Runtime max |diff| {card.onnx_tolerance:.2g}"
    )
    timing = ", ".join(f"{key} {value:.2f}" for key, value in seconds.items())
    print(f"wrote {result.model_path} and card.json (seconds: {timing})")
    return 0


def _selection_text(selection: dict[str, Any]) -> str:
    """``--loss auto``'s comparison, one line a candidate."""
    from .training.selection import comparison

    lines = [
        f"chose {selection['chosen']} (learning rate {selection['learning_rate']:g}) by "
        f"{selection['metric']} over {selection['folds']} folds; mean, and the difference "
        f"from {selection['reference']} [95%]:"
    ]
    for key, figures, delta in comparison(selection):
        lines.append(f"  {key}: {figures}, {delta}" if delta else f"  {key}: {figures}")
    return "\n".join(lines)


def _experiment(args: argparse.Namespace) -> int:
    from .training import Protocol, run_experiment

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = run_experiment(
        args.dataset,
        protocol=Protocol(
            folds=args.folds,
            seeds=tuple(args.seeds),
            learning_rates=tuple(args.learning_rates),
        ),
        options=_training_options(args),
        variants=args.losses,
        jobs=args.jobs,
        log=log,
        **_data_columns(args),
    )
    print(result.markdown())
    if args.output is not None:
        from .training.experiment import write_section

        args.output.parent.mkdir(parents=True, exist_ok=True)
        write_section(args.output, result)
        log(f"wrote the {result.dataset.name} section of {args.output}")
    return 0


class _InputError(ValueError):
    """Bad values given to a command, one problem a line, each naming its flag (or
    environment variable)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def _flag(field: str) -> str:
    """The flag of a field of the same name: ``batch_size`` -> ``--batch-size``."""
    return "--" + field.replace("_", "-")


def _env(field: str) -> str:
    """The environment variable of a :class:`Settings` field."""
    return f"LOSSSERVE_{field.upper()}"


def _noun(model: type[BaseModel], field: str) -> str:
    annotation = model.model_fields[field].annotation if field in model.model_fields else None
    kinds = {annotation, *get_args(annotation)}
    if float in kinds:
        return "a number"
    return "an integer" if int in kinds else "a value"


_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


def _problem(model: type[BaseModel], error: ErrorDetails, name: Callable[[str], str]) -> str:
    """One line of a pydantic error: ``--epochs: expected an integer >= 1, got 0``."""
    field = str(error["loc"][0]) if error["loc"] else ""
    kind, ctx, got = error["type"], error.get("ctx", {}), error["input"]
    if kind in _BOUNDS:
        sign, key = _BOUNDS[kind]
        expected = f"{_noun(model, field)} {sign} {ctx[key]}"
    elif kind in ("int_parsing", "int_type", "int_from_float"):
        expected = "an integer"
    elif kind in ("float_parsing", "float_type", "finite_number"):
        expected = "a finite number" if kind == "finite_number" else "a number"
    elif kind == "literal_error":
        expected = str(ctx["expected"])
    elif kind == "missing":
        return f"{name(field)}: expected a value, got none"
    elif kind == "value_error":  # a validator of ours: its message says what it got
        return f"{name(field)}: {ctx['error']}"
    else:  # pydantic's own words: "Value error, ...", "Input should be ..."
        message = error["msg"]
        return f"{name(field)}: {message[:1].lower()}{message[1:]}, got {got!r}"
    return f"{name(field)}: expected {expected}, got {got!r}"


def _validated(model: type[_Model], flag_of: Callable[[str], str], /, **values: Any) -> _Model:
    """``model(**values)``; :class:`_InputError` with one line per problem otherwise, each
    naming the flag that ``flag_of`` gives for its field."""
    try:
        return model(**values)
    except ValidationError as exc:
        raise _InputError([_problem(model, error, flag_of) for error in exc.errors()]) from None


def _settings(flags: Mapping[str, Any]) -> Settings:
    """:class:`Settings` from the environment, with ``flags`` (field: value) over it; a bad
    value is named by its flag, or else by its environment variable."""
    named = {"model_poll_s": "--poll-interval"}
    return _validated(
        Settings, lambda f: named.get(f, _flag(f)) if f in flags else _env(f), **flags
    )


def _default(field: str) -> Any:
    """A :class:`Settings` field's own default, for the help."""
    return Settings.model_fields[field].default


def _version() -> str:
    try:
        return importlib.metadata.version("lossserve")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The ``lossserve`` command line: ``serve``, ``train`` and ``experiment``."""
    parser = argparse.ArgumentParser(prog="lossserve", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "serve",
        help="serve the REST and gRPC APIs",
        description="Serve the REST and gRPC APIs. Every setting also reads LOSSSERVE_<NAME> "
        "from the environment; a flag given here wins over it.",
    )
    run.add_argument(
        "--host",
        default=None,
        help=f"address to listen on (default: LOSSSERVE_HOST, else {_default('host')})",
    )
    run.add_argument(
        "--http-port",
        type=int,
        default=None,
        help="REST port, 0: any free port "
        f"(default: LOSSSERVE_HTTP_PORT, else {_default('http_port')})",
    )
    run.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        help="gRPC port, 0: any free port "
        f"(default: LOSSSERVE_GRPC_PORT, else {_default('grpc_port')})",
    )
    run.add_argument(
        "--model-repository",
        type=Path,
        default=None,
        help="folder of <model>/<version>/{model.onnx,card.json} to serve "
        "(default: LOSSSERVE_MODEL_REPOSITORY, else none: no models)",
    )
    run.add_argument(
        "--frontends",
        type=int,
        default=None,
        help="server processes on the same ports (default: LOSSSERVE_FRONTENDS, else the "
        "CPUs this process may use; 1: serve from this process)",
    )
    run.add_argument(
        "--model-control",
        choices=("explicit", "poll"),
        default=None,
        help="poll: load new versions and models of the repository and unload removed ones "
        "every --poll-interval seconds, as Triton's --model-control-mode=poll; explicit: load "
        "at start, change through the repository API (default: LOSSSERVE_MODEL_CONTROL, else "
        "explicit)",
    )
    run.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between two looks at the repository with --model-control poll "
        f"(default: LOSSSERVE_MODEL_POLL_S, else {_default('model_poll_s'):g})",
    )
    run.add_argument(
        "--allow-shared-memory",
        action="store_true",
        default=None,
        help="serve the system shared-memory extension to clients on this host, as Triton "
        "does (default: LOSSSERVE_ALLOW_SHARED_MEMORY, else off)",
    )
    run.add_argument(_FRONTEND_FLAG, action="store_true", help=argparse.SUPPRESS)

    fit = commands.add_parser(
        "train",
        help="train a classifier, fit its thresholds, export it to the model repository",
        description="Train a linear model or an MLP with any registry loss, fit decision "
        "thresholds on the validation split, export to ONNX (verified with ONNX Runtime) and "
        "write <model-repository>/<name>/<version>/{model.onnx,card.json}.",
    )
    fit.add_argument(
        "--dataset",
        required=True,
        help="digits-lt, breast-cancer-imbalanced, multilabel-synth, or a .csv/.parquet/.npz file "
        "(required)",
    )
    fit.add_argument(
        "--loss",
        required=True,
        help="a registry loss name (GET /losses), or auto: every loss for the task (and the "
        "class-weighted variants) cross-validated on the training data, the best kept "
        "(required)",
    )
    fit.add_argument(
        "--metric",
        choices=["macro_f1", "macro_f1_plain"],
        default="macro_f1",
        help="--loss auto: choose by macro-F1 with the learned decision rule, or with plain "
        "decisions (default: %(default)s)",
    )
    fit.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="--loss auto: no further candidate loss starts past this many seconds (default: none)",
    )
    fit.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="--loss auto: folds trained at once, in processes (default: %(default)s)",
    )
    fit.add_argument(
        "--params",
        type=_params,
        default={},
        help="the loss's params as a JSON object (default: {}, the loss's defaults)",
    )
    fit.add_argument("--name", required=True, help="the model's name in the repository (required)")
    fit.add_argument(
        "--model-repository",
        type=Path,
        default=None,
        help="where to write the model (default: LOSSSERVE_MODEL_REPOSITORY, else ./models)",
    )
    fit.add_argument(
        "--class-weights",
        default=None,
        metavar="STRATEGY",
        help="balanced, inverse, inverse_sqrt, effective_number or log_ratio: "
        "fills weight (cross_entropy), alpha (focal) or pos_weight "
        "(binary_cross_entropy) (default: none, unweighted)",
    )
    fit.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds initialisation and shuffling (default: %(default)s)",
    )
    _add_data_columns(fit)
    fit.add_argument(
        "--beta", type=float, default=1.0, help="F-beta of the thresholds (default: %(default)s)"
    )
    fit.add_argument(
        "--refit-thresholds",
        action="store_true",
        help="fit thresholds for losses whose threshold is 0 by design (ZLPR, circle) too "
        "(default: off, their threshold stays 0)",
    )
    _add_training_options(fit)

    experiment = commands.add_parser(
        "experiment",
        help="compare losses on a dataset by repeated stratified K-fold",
        description="Train the same model with each loss in every fold of a stratified "
        "K-fold cross-validation (once per seed), the learning rate chosen per loss and fold "
        "on an inner split, and print test macro-F1 (plain and with learned thresholds), "
        "mean ± std over the folds and the paired difference from cross-entropy with a 95% "
        "interval, beside LogisticRegression and LightGBM.",
    )
    experiment.add_argument(
        "dataset",
        help="a built-in dataset (page-blocks, kr-vs-k, yeast, fashion-mnist-lt, ...: see the "
        "README), or a .csv/.parquet/.npz file with --label",
    )
    _add_data_columns(experiment)
    experiment.add_argument(
        "--folds",
        type=int,
        default=5,
        metavar="K",
        help="outer folds of the cross-validation (default: %(default)s)",
    )
    experiment.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        metavar="SEED",
        help="one K-fold cross-validation per seed (shuffling the folds and seeding training; "
        "a dataset with a fixed test split trains once per seed) (default: 0)",
    )
    experiment.add_argument(
        "--learning-rates",
        type=float,
        nargs="+",
        default=[3e-4, 1e-3, 3e-3],
        metavar="RATE",
        help="the grid each loss's learning rate is chosen from, per fold, on the inner "
        "split (default: 3e-4 1e-3 3e-3)",
    )
    experiment.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="folds trained at once, in processes (default: %(default)s)",
    )
    experiment.add_argument(
        "--losses",
        type=_columns,
        default=None,
        metavar="NAME[,NAME...]",
        help="a subset of the variants, e.g. cross_entropy,focal, or auto: every loss "
        "train --loss auto tries (default: every variant of the dataset's task)",
    )
    experiment.add_argument(
        "--output",
        type=Path,
        default=None,
        help="also write the Markdown table into this file, e.g. docs/results.md, as the "
        "dataset's own section (replaced if there, else appended; the rest kept) (default: "
        "stdout only)",
    )
    _add_training_options(experiment)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("train", "experiment"):
        command = _train if args.command == "train" else _experiment
        try:
            return command(args)
        except _InputError as exc:
            return _usage_error(args.command, exc)
        except ValueError as exc:  # the caller's input: pydantic's ValidationError included
            print(f"lossserve {args.command}: error: {exc}", file=sys.stderr)
            return 2
    flags = {
        key: value
        for key, value in {
            "host": args.host,
            "http_port": args.http_port,
            "grpc_port": args.grpc_port,
            "model_repository": args.model_repository,
            "frontends": args.frontends,
            "model_control": args.model_control,
            "model_poll_s": args.poll_interval,
            "allow_shared_memory": args.allow_shared_memory,
        }.items()
        if value is not None
    }
    try:
        settings = _settings(flags)
    except _InputError as exc:
        return _usage_error("serve", exc)
    except ValueError as exc:  # pydantic-settings' SettingsError: an unparsable variable
        print(f"lossserve serve: error: {exc}", file=sys.stderr)
        return 2
    return _serve_command(settings, args.frontend)


def _usage_error(command: str, exc: _InputError) -> int:
    """Each problem on its own line, as argparse reports a bad flag; status 2 as argparse."""
    for problem in exc.problems:
        print(f"lossserve {command}: error: {problem}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
