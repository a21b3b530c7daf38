"""The hostile suite's server, its health checks and the request helpers its modules share.

One ``lossserve serve`` subprocess (``bench/_server.py``'s ``start_server``) serves the two
demo models under a memory limit (see ``conftest.py`` for how the limit is enforced). Every
test case runs its hostile requests inside :meth:`Harness.batch`, which afterwards checks
that the process is alive, ``/v2/health/live`` answers, known-good requests over REST and
gRPC answer values equal to an independent computation, and the peak memory of the
server's process tree (see :class:`MemorySampler`) stayed under :data:`MEMORY_LIMIT`. A
server that failed those checks is replaced before the next case, so that one defect fails
its own cases and not the rest.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import resource
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

import grpc
import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pybase64

from bench._server import Server, start_server, stop_server, wait_ready
from lossserve.settings import Settings
from lossserve_proto.inference import grpc_service_pb2_grpc as oip_grpc
from lossserve_proto.lossserve.v1 import loss_service_pb2 as pb
from lossserve_proto.lossserve.v1 import loss_service_pb2_grpc as pb_grpc
from tests.processes import SERVICE_ENV

MEMORY_LIMIT = 2 * 1024**3
"""The server's memory budget: the peak memory of its whole process tree stays under it."""
ADDRESS_SPACE_LIMIT = MEMORY_LIMIT + int(2.5 * 1024**3)
"""RLIMIT_AS of the server: the memory budget plus the ~1.7 GiB of address space torch,
ONNX Runtime and gRPC reserve at start-up without touching it (measured: VmSize 1.65 GiB at
an RSS of 0.3 GiB), and room for thread stacks."""
DEADLINE_S = 5.0
"""The server's ``LOSSSERVE_REQUEST_TIMEOUT_S``."""
BODY_TIMEOUT_S = 2.0
"""The server's ``LOSSSERVE_BODY_TIMEOUT_S``: the longest wait for the next piece of a body
or stream message (short, so that the stalled-client cases take little time)."""
SEND_TIMEOUT_S = 2.0
"""The server's ``LOSSSERVE_SEND_TIMEOUT_S``: the longest wait for a client to take more of
an answer that fills the socket's buffers (short, so that the unread-answer cases take
little time)."""
SLACK_S = 2.0
"""What an answer may take beyond the deadline: moving a large body over loopback, and
scheduling on a 2-core machine."""
CLIENT_TIMEOUT_S = DEADLINE_S + 3.0
"""Client-side timeouts: a bit above the server's deadline."""
LIVE_PROBE_S = 0.1

DEFAULTS = Settings()
MAX_BODY = DEFAULTS.max_body_bytes
MAX_ELEMENTS = DEFAULTS.max_elements
MAX_GRPC_MESSAGE = DEFAULTS.grpc_max_message_bytes
HEADER_LENGTH = "Inference-Header-Content-Length"
FEATURES = 64
"""The digits model's input width (``lossserve train --dataset digits-lt``)."""

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 1536 * 1024 * 1024),
    ("grpc.max_receive_message_length", 1536 * 1024 * 1024),
]

SERVER_ENV = {
    **SERVICE_ENV,
    "LOSSSERVE_REQUEST_TIMEOUT_S": str(DEADLINE_S),
    "LOSSSERVE_ADMIN_TOKEN": "",  # empty: the repository API must not accept an empty token
    "LOSSSERVE_ALLOW_SHARED_MEMORY": "true",  # its routes and parameters attacked too
    "LOSSSERVE_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
    "LOSSSERVE_SEND_TIMEOUT_S": str(SEND_TIMEOUT_S),
    "LOSSSERVE_SHUTDOWN_GRACE_S": "2",
    "LOSSSERVE_LOG_LEVEL": "INFO",
}


# -- memory ------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc (each thread's ``children`` file)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with (
                    contextlib.suppress(OSError),
                    open(f"/proc/{current}/task/{task}/children") as f,
                ):
                    stack.extend(int(child) for child in f.read().split())
    return found


def tree_rss(pid: int) -> int:
    """The resident set of ``pid``'s process tree, summed, in bytes (cheap: ``statm``)."""
    total = 0
    for member in process_tree(pid):
        with (
            contextlib.suppress(OSError, ValueError, IndexError),
            open(f"/proc/{member}/statm") as f,
        ):
            total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return total


def tree_pss(pid: int) -> int:
    """The proportional set of ``pid``'s process tree, summed, in bytes: each page shared by
    k processes counts 1/k in each (``smaps_rollup``; about 5 ms a process)."""
    total = 0
    for member in process_tree(pid):
        with (
            contextlib.suppress(OSError, ValueError, IndexError),
            open(f"/proc/{member}/smaps_rollup") as f,
        ):
            for line in f:
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


class MemorySampler:
    """The server tree's memory, sampled every 20 ms in a thread; the peak since a reset.

    The server forks its workers (and frontends) from processes that have imported torch
    and ONNX Runtime, so those pages are shared: summing RSS over the tree counts them once
    per process (about 1.65 GiB at rest on 2 CPUs, where the PSS sum, what a cgroup would
    charge, is about 0.9 GiB). Reading PSS is too slow to sample every 20 ms, so the charge
    is estimated as the tree's PSS at rest (once per server) plus the growth of its RSS sum
    since then: new allocations are private pages and count in full.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rest_pss = tree_pss(pid)
        self.rest_rss = tree_rss(pid)
        self.peak_rss = self.rest_rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_rss = max(self.peak_rss, tree_rss(self.pid))

    def charge(self, rss: int) -> int:
        """The estimated memory charge of the tree when its RSS sum is ``rss``."""
        return self.rest_pss + max(0, rss - self.rest_rss)

    def reset(self) -> None:
        self.peak_rss = tree_rss(self.pid)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def limit_memory(pid: int) -> str:
    """Cap the started server's memory; return how (see ``conftest.py``).

    ``LOSSSERVE_HOSTILE_CGROUP``: a cgroup v2 folder the caller may write (a delegated one):
    its ``memory.max`` is set to the budget and the server moved into it. Otherwise
    RLIMIT_AS on the server process (inherited by any child it starts)."""
    folder = os.environ.get("LOSSSERVE_HOSTILE_CGROUP")
    if folder:
        Path(folder, "memory.max").write_text(str(MEMORY_LIMIT))
        Path(folder, "cgroup.procs").write_text(str(pid))
        return f"cgroup v2 {folder}: memory.max={MEMORY_LIMIT}"
    resource.prlimit(pid, resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    return f"RLIMIT_AS={ADDRESS_SPACE_LIMIT} + RSS watchdog at {MEMORY_LIMIT}"


# -- replies -----------------------------------------------------------------------------


@dataclass
class Reply:
    """What a REST request got: a status and body, or the transport error; how long it took."""

    status: int | None
    body: bytes
    elapsed: float
    error: str = ""

    @property
    def message(self) -> str:
        """The error message of either error body (the project's or the OIP's)."""
        try:
            document = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return self.body[:300].decode(errors="replace")
        if isinstance(document, dict):
            error = document.get("error")
            if isinstance(error, dict):
                return str(error.get("message", ""))
            if isinstance(error, str):
                return error
        return str(document)[:300]

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error}) after {self.elapsed:.2f} s"
        return f"status {self.status} after {self.elapsed:.2f} s: {self.message[:300]!r}"


@dataclass
class GReply:
    """What a gRPC call got: a status code and details (or OK and the response)."""

    code: grpc.StatusCode
    details: str
    elapsed: float
    response: Any = None

    def describe(self) -> str:
        return f"{self.code.name} after {self.elapsed:.2f} s: {self.details[:300]!r}"


def grpc_call(fn: Callable[[], Any]) -> GReply:
    start = time.monotonic()
    try:
        response = fn()
    except grpc.RpcError as exc:
        return GReply(exc.code(), exc.details() or "", time.monotonic() - start)
    return GReply(grpc.StatusCode.OK, "", time.monotonic() - start, response)


def names(message: str, field: str) -> bool:
    """Whether ``message`` names ``field`` (case-insensitive; ``a|b``: either)."""
    return any(name.lower() in message.lower() for name in field.split("|"))


def assert_refused(reply: Reply, field: str) -> None:
    """A 4xx in time whose message names ``field`` (see :func:`names`)."""
    facts = reply.describe()
    assert reply.status is not None, f"expected a 4xx naming {field!r}; {facts}"
    assert reply.status < 500, f"expected a 4xx naming {field!r}, got a 5xx; {facts}"
    assert reply.elapsed <= DEADLINE_S + SLACK_S, f"slower than the deadline; {facts}"
    assert 400 <= reply.status < 500, f"expected a 4xx naming {field!r}; {facts}"
    assert names(reply.message, field), f"message does not name {field!r}; {facts}"


def assert_grpc_refused(reply: GReply, field: str) -> None:
    """A non-OK status other than INTERNAL / UNKNOWN, in time, whose details name ``field``."""
    facts = reply.describe()
    assert reply.elapsed <= DEADLINE_S + SLACK_S, f"slower than the deadline; {facts}"
    assert reply.code is not grpc.StatusCode.OK, f"expected a refusal naming {field!r}; {facts}"
    assert reply.code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), facts
    assert reply.code is not grpc.StatusCode.DEADLINE_EXCEEDED, f"no answer in time; {facts}"
    assert names(reply.details, field), f"details do not name {field!r}; {facts}"


def log_problems(lines: Iterable[str]) -> list[str]:
    """Log lines that carry a traceback or an error-level record."""
    bad = []
    for line in lines:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            if line.strip():
                bad.append(line)  # not one JSON object: a traceback or stray print
            continue
        if not isinstance(record, dict):
            bad.append(line)
        elif "exception" in record or record.get("level") in ("error", "critical"):
            bad.append(line[:400])
    return bad


# -- the server --------------------------------------------------------------------------


def known_good_batch() -> tuple[np.ndarray, np.ndarray, float]:
    """Logits, targets and their mean cross-entropy computed with numpy."""
    logits = np.array([[2.0, -1.0, 0.5], [0.1, 0.3, -0.2], [-3.0, 4.0, 0.0]], np.float32)
    targets = np.array([0, 2, 1], np.int64)
    shifted = logits.astype(np.float64)
    lse = np.log(np.exp(shifted).sum(axis=1))
    value = float(np.mean(lse - shifted[np.arange(3), targets]))
    return logits, targets, value


class Reference:
    """The digits model run in-process by ONNX Runtime with its card's decision rule."""

    def __init__(self, repository: Path) -> None:
        folder = repository / "digits" / "1"
        card = orjson.loads((folder / "card.json").read_bytes())
        self.labels: list[str] = card["labels"]
        self.offsets = np.asarray(card["thresholds"], np.float32)
        self.session = ort.InferenceSession(
            str(folder / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        self.rows = np.random.default_rng(7).normal(size=(3, FEATURES)).astype(np.float32) * 4

    def labels_of(self, rows: np.ndarray) -> list[list[str]]:
        (logits,) = self.session.run(["logits"], {"features": rows})
        return [[self.labels[int(i)]] for i in np.argmax(logits + self.offsets, axis=1)]


class Harness:
    """The server under attack; replaced whenever a batch left it unhealthy."""

    def __init__(self, repository: Path, logs: Path) -> None:
        self.repository = repository
        self.logs = logs
        self.reference = Reference(repository)
        self.starts = 0
        self.broken = False
        self.mechanism = ""
        self.server: Server | None = None
        self._log: IO[bytes] | None = None
        self.sampler: MemorySampler | None = None
        self.http: httpx.Client | None = None
        self.channel: grpc.Channel | None = None
        self.loss_stub: pb_grpc.LossServiceStub
        self.oip_stub: oip_grpc.GRPCInferenceServiceStub
        self.start()

    # lifecycle

    def start(self) -> None:
        self.starts += 1
        self._log = open(self.logs / f"server-{self.starts}.log", "w+b")  # noqa: SIM115
        server = start_server(["--model-repository", str(self.repository)], SERVER_ENV, self._log)
        self.mechanism = limit_memory(server.process.pid)
        wait_ready(
            server,
            ["/v2/health/ready", "/v2/models/digits/ready", "/v2/models/multilabel/ready"],
            timeout=120,
        )
        self.server = server
        self.http = httpx.Client(base_url=f"http://{server.http_url}", timeout=CLIENT_TIMEOUT_S)
        self.channel = grpc.insecure_channel(server.grpc_url, options=GRPC_OPTIONS)
        self.loss_stub = pb_grpc.LossServiceStub(self.channel)
        self.oip_stub = oip_grpc.GRPCInferenceServiceStub(self.channel)
        self.broken = False
        for _ in range(2):  # warm every frontend and worker before measuring memory at rest
            self._known_good()
        self.sampler = MemorySampler(server.process.pid)

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.http is not None:
            self.http.close()
        if self.sampler is not None:
            self.sampler.stop()
        if self.server is not None:
            stop_server(self.server)
            if self.server.process.poll() is None:
                self.server.process.kill()
                self.server.process.wait()
        if self._log is not None:
            self._log.close()
        self.server = self.sampler = self.http = self.channel = self._log = None

    def restart(self) -> None:
        """Replace the server; a broken one is killed at once (its workers die with it)."""
        if self.server is not None and self.server.process.poll() is None:
            self.server.process.kill()
            self.server.process.wait()
        self.stop()
        self.start()

    @property
    def srv(self) -> Server:
        assert self.server is not None
        return self.server

    @property
    def pid(self) -> int:
        return self.srv.process.pid

    @property
    def port(self) -> int:
        return self.srv.http_port

    # logs

    def log_offset(self) -> int:
        assert self._log is not None
        self._log.flush()
        return os.fstat(self._log.fileno()).st_size

    def log_since(self, offset: int) -> list[str]:
        with open(self.logs / f"server-{self.starts}.log", "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace").splitlines()

    # requests

    def post(
        self,
        path: str,
        *,
        json: Any = None,
        content: bytes | Iterable[bytes] | None = None,
        headers: dict[str, Any] | None = None,
        timeout: float = CLIENT_TIMEOUT_S,
    ) -> Reply:
        assert self.http is not None
        if json is not None:
            content = orjson.dumps(json)
            headers = {"content-type": "application/json", **(headers or {})}
        return self._send("POST", path, content, headers, timeout)

    def get(self, path: str, *, headers: dict[str, Any] | None = None) -> Reply:
        return self._send("GET", path, None, headers, CLIENT_TIMEOUT_S)

    def _send(
        self,
        method: str,
        path: str,
        content: bytes | Iterable[bytes] | None,
        headers: dict[str, Any] | None,
        timeout: float,
    ) -> Reply:
        assert self.http is not None
        start = time.monotonic()
        try:
            response = self.http.request(
                method, path, content=content, headers=headers, timeout=timeout
            )
        except httpx.HTTPError as exc:
            return Reply(None, b"", time.monotonic() - start, f"{type(exc).__name__}: {exc}")
        return Reply(response.status_code, response.content, time.monotonic() - start)

    # health

    def health(self) -> list[str]:
        """What is wrong with the server after a batch (empty: healthy)."""
        server, sampler = self.srv, self.sampler
        assert sampler is not None
        if server.process.poll() is not None:
            return [f"the server exited with {server.process.returncode}"]
        problems = self._known_good()
        peak, now = sampler.peak_rss, tree_rss(self.pid)
        charge = sampler.charge(max(peak, now))
        if charge >= MEMORY_LIMIT:
            problems.append(
                f"memory of the server tree (PSS at rest + RSS growth): peak "
                f"{sampler.charge(peak) / 2**20:.0f} MiB, now {sampler.charge(now) / 2**20:.0f} "
                f"MiB, limit {MEMORY_LIMIT / 2**20:.0f} MiB (RSS sum: peak {peak / 2**20:.0f} "
                f"MiB, at rest {sampler.rest_rss / 2**20:.0f} MiB)"
            )
        if server.process.poll() is not None:
            problems.append(f"the server exited with {server.process.returncode}")
        return problems

    def _known_good(self) -> list[str]:
        """Liveness, and known-good requests checked against independent computations."""
        problems = []
        live = self._send("GET", "/v2/health/live", None, None, 2.0)
        if live.status != 200 or orjson.loads(live.body or b"null") != {"live": True}:
            problems.append(f"/v2/health/live: {live.describe()}")
        logits, targets, value = known_good_batch()
        body = {
            "loss": "cross_entropy",
            "logits": logits.tolist(),
            "targets": targets.tolist(),
        }
        reply = self.post("/loss", json=body)
        got = orjson.loads(reply.body).get("value") if reply.status == 200 else None
        if not isinstance(got, float) or not math.isclose(got, value, rel_tol=1e-5):
            problems.append(f"known-good POST /loss: expected {value:.6f}; {reply.describe()}")
        rpc = grpc_call(
            lambda: self.loss_stub.ComputeLoss(
                pb.ComputeLossRequest(
                    loss="cross_entropy", logits=tensor(logits), targets=tensor(targets)
                ),
                timeout=CLIENT_TIMEOUT_S,
            )
        )
        if rpc.code is not grpc.StatusCode.OK or not math.isclose(
            float(np.frombuffer(rpc.response.value.data, np.float32)[0]), value, rel_tol=1e-5
        ):
            problems.append(f"known-good gRPC ComputeLoss: expected {value:.6f}; {rpc.describe()}")
        rows = self.reference.rows
        reply = self.post("/models/digits/predict", json={"instances": rows.tolist()})
        expected = self.reference.labels_of(rows)
        got_labels = (
            [p["labels"] for p in orjson.loads(reply.body)["predictions"]]
            if reply.status == 200
            else None
        )
        if got_labels != expected:
            problems.append(
                f"known-good predict: expected {expected}, got {got_labels}; {reply.describe()}"
            )
        return problems

    @contextlib.contextmanager
    def batch(self) -> Iterator[Harness]:
        """Run a batch of hostile requests, then check the server (see the module docstring).

        The server is replaced first when an earlier batch left it unhealthy."""
        if self.broken or self.server is None or self.srv.process.poll() is not None:
            self.restart()
        assert self.sampler is not None
        self.sampler.reset()
        failure: BaseException | None = None
        try:
            yield self
        except Exception as exc:
            failure = exc
        problems = self.health()
        if problems:
            self.broken = True
            tail = self.srv.log_tail(8)
            report = "after the batch, the server is unhealthy:\n  " + "\n  ".join(problems)
            report += f"\nserver log tail:\n{tail}"
            if failure is not None:
                raise AssertionError(f"{failure}\n{report}") from failure
            raise AssertionError(report)
        if failure is not None:
            raise failure


# -- tensors and bodies ------------------------------------------------------------------


def tensor(array: np.ndarray) -> pb.Tensor:
    return pb.Tensor(shape=array.shape, dtype=array.dtype.name, data=array.tobytes())


def b64(array: np.ndarray) -> dict[str, Any]:
    return {
        "shape": list(array.shape),
        "dtype": array.dtype.name,
        "b64": pybase64.b64encode(array.tobytes()).decode(),
    }


def raw_b64(shape: list[Any], dtype: str, data: bytes) -> dict[str, Any]:
    return {"shape": shape, "dtype": dtype, "b64": pybase64.b64encode(data).decode()}


def binary_body(header: dict[str, Any], *chunks: bytes) -> tuple[bytes, dict[str, str]]:
    """The binary tensor extension: a JSON header, then raw bytes."""
    head = orjson.dumps(header)
    return head + b"".join(chunks), {
        HEADER_LENGTH: str(len(head)),
        "content-type": "application/octet-stream",
    }


def features(rows: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, FEATURES)).astype(np.float32)


def infer_json(data: Any, *, shape: Any = None, datatype: str = "FP32") -> dict[str, Any]:
    """An OIP JSON inference request for the digits model's input."""
    return {
        "inputs": [
            {
                "name": "features",
                "shape": [2, FEATURES] if shape is None else shape,
                "datatype": datatype,
                "data": data,
            }
        ]
    }


def infer_binary(raw: bytes, shape: Any, datatype: str = "FP32") -> tuple[bytes, dict[str, str]]:
    return binary_body(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": shape,
                    "datatype": datatype,
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        },
        raw,
    )


def with_value(array: np.ndarray, value: float) -> np.ndarray:
    array = array.copy()
    array.flat[1] = value
    return array


@cache
def gzip_zeros(size: int) -> bytes:
    """``size`` zero bytes, gzipped (about 1/1000 of the size)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


@cache
def gzip_json_zeros(elements: int) -> bytes:
    """A gzipped OIP request for [elements / 64, 64] features, every value a JSON ``0``."""
    rows = elements // FEATURES
    head = orjson.dumps({"name": "features", "shape": [rows, FEATURES], "datatype": "FP32"})
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b'{"inputs":[' + head[:-1] + b',"data":[0')]
    block = b",0" * (512 * 1024)
    for _ in range((elements - 1) // (512 * 1024)):
        parts.append(compressor.compress(block))
    parts.append(compressor.compress(b",0" * ((elements - 1) % (512 * 1024))))
    parts.append(compressor.compress(b"]}]}"))
    parts.append(compressor.flush())
    return b"".join(parts)


def gzip_small(data: bytes) -> bytes:
    return gzip.compress(data)


# -- raw HTTP ----------------------------------------------------------------------------


@dataclass
class RawReply:
    status: int | None
    data: bytes
    elapsed: float
    closed: bool
    """The server closed the connection (EOF or reset)."""
    error: str = ""

    def describe(self) -> str:
        if self.status is None:
            how = "closed the connection" if self.closed else f"no answer ({self.error})"
            return f"{how} after {self.elapsed:.2f} s"
        return f"status {self.status} after {self.elapsed:.2f} s: {self.data[-300:]!r}"


def raw_http(
    port: int,
    head: bytes,
    parts: Iterable[bytes] = (),
    *,
    wait: float = CLIENT_TIMEOUT_S,
    close: bool = False,
) -> RawReply:
    """Send ``head`` then ``parts`` over a plain socket; read the answer for up to ``wait`` s.

    Sending stops quietly when the server closes or answers first. ``close``: close right
    after sending, without reading (a client that goes away)."""
    start = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=wait)
    closed = False
    try:
        try:
            sock.sendall(head)
            for part in parts:
                sock.sendall(part)
        except OSError:
            closed = True
        if close:
            return RawReply(None, b"", time.monotonic() - start, False, "closed by the client")
        data = b""
        deadline = start + wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return RawReply(None, data, time.monotonic() - start, False, "timed out")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                closed = True
                break
            data += chunk
            if _complete(data):
                break
    finally:
        sock.close()
    status = None
    if data.startswith(b"HTTP/1.1 "):
        with contextlib.suppress(ValueError):
            status = int(data[9:12])
    return RawReply(status, data, time.monotonic() - start, closed)


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def request_head(path: str, headers: dict[str, str | bytes], method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    for name, value in headers.items():
        lines.append(
            name.encode() + b": " + (value if isinstance(value, bytes) else value.encode())
        )
    return b"\r\n".join(lines) + b"\r\n\r\n"


def chunked(total: int, piece: int = 1024 * 1024) -> Iterator[bytes]:
    block = b"0" * piece
    sent = 0
    while sent < total:
        size = min(piece, total - sent)
        yield f"{size:x}\r\n".encode() + block[:size] + b"\r\n"
        sent += size
    yield b"0\r\n\r\n"
