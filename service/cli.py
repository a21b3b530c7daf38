"""The ``lossserve`` command: serve, train, experiment."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from .api.rest import create_app
from .core.state import ServiceState
from .observability import configure_logging
from .settings import Settings

if TYPE_CHECKING:
    from .training import TrainOptions

__all__ = ["main", "serve"]

log = logging.getLogger("lossserve")

_ANSWER_S = 1
"""Seconds past the grace period for cut-off requests to send their 503 / UNAVAILABLE."""


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handlers: :func:`serve` owns SIGINT and SIGTERM, and
    decides when the listener closes."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings) -> None:
    """Serve HTTP and gRPC from one process until SIGINT or SIGTERM, then drain.

    The drain: readiness turns false at once (REST ``/v2/health/ready`` 503, gRPC
    ``ServerReady`` false, gRPC health NOT_SERVING) while requests are still served for
    ``shutdown_delay_s``; then both transports refuse new connections and RPCs, and the
    requests in flight (and the jobs they queued) get ``shutdown_grace_s`` to finish. Past
    it they are cancelled; since a thread running cancelled work cannot be interrupted, the
    process then exits at once (status 0) instead of returning.
    """
    from .api.grpc import create_grpc_server

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    state = ServiceState.create(settings)
    await state.start()
    config = uvicorn.Config(
        create_app(state),
        host=settings.host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=settings.shutdown_grace_s + _ANSWER_S,
    )
    http = _HttpServer(config)
    grpc_server = create_grpc_server(state)
    grpc_port = grpc_server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    await grpc_server.start()
    log.info(
        "serving",
        extra={"host": settings.host, "http_port": settings.http_port, "grpc_port": grpc_port},
    )
    http_task = asyncio.create_task(http.serve())
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


def _add_training_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--architecture", choices=("linear", "mlp"), default="mlp")
    command.add_argument("--hidden", type=int, default=128, help="units per hidden layer (mlp)")
    command.add_argument("--epochs", type=int, default=200, help="most epochs (early stopping)")
    command.add_argument(
        "--patience",
        type=int,
        default=20,
        help="epochs without a better validation macro-F1 before stopping",
    )
    command.add_argument("--batch-size", type=int, default=64)
    command.add_argument("--learning-rate", type=float, default=1e-3)
    command.add_argument("--weight-decay", type=float, default=1e-4)
    command.add_argument(
        "--threads", type=int, default=1, help="torch threads while training (0: torch's default)"
    )
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def _training_options(args: argparse.Namespace, seed: int = 0) -> TrainOptions:
    from .training import TrainOptions

    return TrainOptions(
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

    config = TrainConfig(
        dataset=args.dataset,
        loss=args.loss,
        params=args.params,
        name=args.name,
        repository=args.model_repository or Settings().model_repository or Path("models"),
        class_weights=args.class_weights,
        options=_training_options(args, args.seed),
        beta=args.beta,
        refit_thresholds=args.refit_thresholds,
        label=args.label,
        features=args.features,
        split_column=args.split_column,
        quiet=args.quiet,
    )
    result = train(config)
    card, seconds = result.card, result.seconds
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


def _experiment(args: argparse.Namespace) -> int:
    from .training import run_experiment

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = run_experiment(
        args.dataset,
        seeds=args.seeds,
        options=_training_options(args),
        variants=args.losses,
        quiet=args.quiet,
        log=log,
    )
    text = result.markdown()
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        log(f"wrote {args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lossserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the REST and gRPC APIs")
    run.add_argument("--host", default=None)
    run.add_argument("--http-port", type=int, default=None)
    run.add_argument("--grpc-port", type=int, default=None)
    run.add_argument("--model-repository", type=Path, default=None)

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
        help="digits-lt, breast-cancer-imbalanced, multilabel-synth, or a .csv/.parquet/.npz file",
    )
    fit.add_argument("--loss", required=True, help="a registry loss name (GET /losses)")
    fit.add_argument("--params", type=_params, default={}, help="the loss's params as JSON")
    fit.add_argument("--name", required=True, help="the model's name in the repository")
    fit.add_argument(
        "--model-repository",
        type=Path,
        default=None,
        help="default: LOSSSERVE_MODEL_REPOSITORY, else ./models",
    )
    fit.add_argument(
        "--class-weights",
        default=None,
        metavar="STRATEGY",
        help="balanced, inverse, inverse_sqrt, effective_number or log_ratio: "
        "fills weight (cross_entropy), alpha (focal) or pos_weight "
        "(binary_cross_entropy)",
    )
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument(
        "--label",
        type=_columns,
        default=None,
        metavar="COL[,COL...]",
        help="user file: the label column, or several 0/1 columns (multilabel)",
    )
    fit.add_argument(
        "--features",
        type=_columns,
        default=None,
        metavar="COL[,COL...]",
        help="user file: the feature columns (default: all others)",
    )
    fit.add_argument(
        "--split-column",
        default=None,
        metavar="COL",
        help="user file: a train/validation/test column (default: a stratified 60/20/20 split)",
    )
    fit.add_argument("--beta", type=float, default=1.0, help="F-beta of the thresholds")
    fit.add_argument(
        "--refit-thresholds",
        action="store_true",
        help="fit thresholds for losses whose threshold is 0 by design (ZLPR, circle) too",
    )
    _add_training_options(fit)

    experiment = commands.add_parser(
        "experiment",
        help="compare losses on a built-in dataset over seeds",
        description="Train the same model with each loss over several seeds and print test "
        "macro-F1 (plain and with learned thresholds) beside LogisticRegression.",
    )
    experiment.add_argument(
        "dataset", help="digits-lt, breast-cancer-imbalanced or multilabel-synth"
    )
    experiment.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    experiment.add_argument(
        "--losses",
        type=_columns,
        default=None,
        metavar="NAME[,NAME...]",
        help="a subset of the variants, e.g. cross_entropy,focal",
    )
    experiment.add_argument(
        "--output",
        type=Path,
        default=None,
        help="also write the Markdown table here, e.g. docs/results.md",
    )
    _add_training_options(experiment)

    args = parser.parse_args(argv)
    if args.command in ("train", "experiment"):
        command = _train if args.command == "train" else _experiment
        try:
            return command(args)
        except ValueError as exc:  # the caller's input: pydantic's ValidationError included
            print(f"lossserve {args.command}: error: {exc}", file=sys.stderr)
            return 2
    overrides = {
        key: value
        for key, value in {
            "host": args.host,
            "http_port": args.http_port,
            "grpc_port": args.grpc_port,
            "model_repository": args.model_repository,
        }.items()
        if value is not None
    }
    settings = Settings(**overrides)
    configure_logging(settings.log_level)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
