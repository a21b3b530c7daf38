"""Round trip of POST /loss and ComputeLoss on a real server, as ratios to in-process.

    python bench/loss_service.py [--sizes 1024x32,65536x128] [--repeats 5] [--threads T]

Starts ``lossserve serve`` as a subprocess on free loopback ports (one ``cpu`` worker, its
torch held to ``--threads`` intra-op threads, the same count this process uses for the
in-process baseline) and, for each N x C, times the ``focal`` loss (gamma 2, a multiclass
loss built for imbalance; reduction "mean", ``return_grad`` true) over:

- gRPC unary: ``LossService.ComputeLoss``, one message each way, through a real channel
  with ``lossserve.client.CLIENT_OPTIONS`` (message limits raised to 512 MiB);
- gRPC chunked: ``LossService.ComputeLossChunked`` through ``lossserve.client``, the request
  and the answer streamed in messages of 2 MiB of tensor bytes (``compute_loss`` takes this
  path when the request's or the answer's tensors exceed 2 MiB, unary below);
- REST binary: JSON header + raw little-endian bytes (``Inference-Header-Content-Length``);
- REST base64: ``{"shape", "dtype", "b64"}`` tensors (pybase64 on the client);
- REST JSON lists: nested lists (orjson, numpy serialised directly);
- ``LossClient.grpc`` and ``LossClient.rest`` (the Python client: chunked gRPC above 2 MiB,
  REST binary above 1 MiB), and both with ``shared_memory=True``: the client copies the
  tensors into a registered segment of its own, the loss model ``loss.focal`` reads them
  there and writes the gradient there, and the client copies it out;
- the loss model ``loss.focal`` over the Open Inference Protocol: gRPC ``ModelInfer`` with
  raw contents, REST with the binary tensor extension, and through system shared memory
  with the tensors living in a registered region (as a trainer that writes its logits
  there would; the gradient is read where the server wrote it, no copy);
- the peer: ``bench/raw_loss_peer.py``, a hand-written FastAPI endpoint taking the raw
  bytes (shape in a header) and answering the raw gradient, computed on its event loop,
  in a process of its own with the same threads and glibc tunables.

REST runs through one keep-alive ``httpx.Client``. Every timing is the client's wall clock
around one whole call: encoding the request, the server's work, and decoding the answer's
gradient back into a numpy array. Each is reported as a ratio to calling
``losses.derivatives`` in-process on the same tensors. The paths are timed interleaved, in
rounds (each round calls every path once, the in-process baseline included), after
``--warmups`` untimed rounds, so that every path sees the same conditions; ``--repeats``
timed rounds (``--lists-repeats`` for JSON lists at the largest size). The table gives the
median (the ratios use it) and the best; its last column is the largest absolute
difference between the first answer's value and gradient and the in-process ones.

Then, at the largest size over gRPC, it asks whether splitting one large batch into
chunks over a stream beats one unary message, and at which chunk size (``--chunk-mib``):

- transport alone (uplink): a request whose loss name is unknown is received, fully
  deserialised and decoded (or reassembled from its chunks) by the server, then rejected
  with INVALID_ARGUMENT before any tensor work, so its round trip is the request's
  transport (client encode, send, server parse and decode) plus a tiny error answer: one
  ``ComputeLoss`` message vs one ``ComputeLossChunked`` stream per chunk size;
- end to end: one ``ComputeLoss`` vs one ``ComputeLossChunked`` (request and answer in
  chunks of that size) per chunk size, each answer checked against the in-process result.

The client and the server share this machine's cores; the server inherits this process's
environment (so e.g. glibc's ``MALLOC_*`` tunables apply to both), and this process keeps
freed memory for reuse as the server's workers do (``lossserve.workers.keep_freed_memory``),
so that the in-process baseline computes as fast as a worker. The last line says how
much CPU time other processes took while each part was measured (from ``/proc``): on a
shared machine torch's intra-op threads suffer most from it, so read the ratios with it.
A benchmark, not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import _server  # before import_losses takes this folder off sys.path
import grpc
import httpx
import numpy as np
import orjson
import pybase64
import torch
from _server import CpuShare, Server

from lossserve_proto.inference import grpc_service_pb2 as oip
from lossserve_proto.inference import grpc_service_pb2_grpc as oip_stubs
from lossserve_proto.lossserve.v1 import loss_service_pb2 as pb
from lossserve_proto.lossserve.v1 import loss_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from lossserve.core.types import LossRequest

ROOT = Path(__file__).resolve().parent.parent
LOSS = "focal"
PARAMS: dict[str, Any] = {"gamma": 2.0}
REDUCTION = "mean"
PROBE_LOSS = "__transport_probe__"  # not a registry name: rejected after the request is decoded
MiB = 1024 * 1024
GRPC_LIMIT = 512 * MiB
HEADER_LENGTH = "Inference-Header-Content-Length"
IN_PROCESS, BINARY = "in-process losses.derivatives", "REST binary"
GRPC, CHUNKED = "gRPC unary ComputeLoss", "gRPC ComputeLossChunked (2 MiB)"
PEER = "peer: hand-written FastAPI raw bytes"


def import_losses() -> ModuleType:
    """The ``losses`` package, imported by name once this file's folder is off ``sys.path``.

    Run as a script, ``bench/`` comes first on ``sys.path`` and ``bench/losses.py`` would
    shadow the package (mypy, given this file, resolves ``import losses`` to that file too).
    ``lossserve.client`` imports ``losses`` too, so it is imported after this, where used.
    """
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    return importlib.import_module("losses")


# --- the server ----------------------------------------------------------------------------


def running_server(threads: int, queue_depth: int) -> AbstractContextManager[Server]:
    env = {
        **os.environ,
        "LOSSSERVE_DEVICES": '["cpu"]',
        "LOSSSERVE_QUEUE_DEPTH": str(queue_depth),
        "LOSSSERVE_REQUEST_TIMEOUT_S": "600",
        "LOSSSERVE_GRPC_MAX_MESSAGE_BYTES": str(GRPC_LIMIT),
        # the defaults refuse JSON lists and b64 at 65536 x 128 (they would hold the server
        # for seconds); raised here, since comparing the encodings is the point
        "LOSSSERVE_MAX_BODY_BYTES": str(GRPC_LIMIT),
        "LOSSSERVE_MAX_JSON_BYTES": str(GRPC_LIMIT),
        "LOSSSERVE_MAX_JSON_VALUES": str(1 << 30),
        "LOSSSERVE_MAX_ELEMENTS": str(1 << 28),
        "LOSSSERVE_MAX_INFLIGHT_BYTES": str(2 * GRPC_LIMIT),
        "LOSSSERVE_FRONTENDS": "1",
        "LOSSSERVE_ALLOW_SHARED_MEMORY": "true",
        "LOSSSERVE_WORKER_THREADS": str(threads),
        "LOSSSERVE_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    return _server.running_server([], env, ["/v2/health/ready"])


def running_peer(threads: int) -> AbstractContextManager[Server]:
    """``bench/raw_loss_peer.py`` with ``threads`` torch threads."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        # glibc's tunables as the workers set them (keep_freed_memory): it computes as fast
        "MALLOC_MMAP_THRESHOLD_": str(256 * MiB),
        "MALLOC_TRIM_THRESHOLD_": str(256 * MiB),
    }
    program = (sys.executable, str(ROOT / "bench" / "raw_loss_peer.py"))
    return _server.running_server([], env, ["/health"], program=program)


# --- clients: encode the request, call, decode the answer to (value, grad) ----------------

Result = tuple[float, np.ndarray]


def grpc_tensor(array: np.ndarray) -> pb.Tensor:
    return pb.Tensor(shape=array.shape, dtype=array.dtype.name, data=array.tobytes())


def grpc_array(message: pb.Tensor) -> np.ndarray:
    return np.frombuffer(message.data, dtype=message.dtype).reshape(tuple(message.shape))


def grpc_request(
    logits: np.ndarray, targets: np.ndarray, loss: str = LOSS
) -> pb.ComputeLossRequest:
    return pb.ComputeLossRequest(
        loss=loss,
        params_json=orjson.dumps(PARAMS).decode(),
        logits=grpc_tensor(logits),
        targets=grpc_tensor(targets),
        reduction=REDUCTION,
        return_grad=True,
    )


def grpc_result(response: pb.ComputeLossResponse) -> Result:
    return float(grpc_array(response.value)), grpc_array(response.grad)


def grpc_compute(stub: Any, logits: np.ndarray, targets: np.ndarray) -> Result:
    return grpc_result(stub.ComputeLoss(grpc_request(logits, targets)))


def loss_request(logits: np.ndarray, targets: np.ndarray, loss: str = LOSS) -> LossRequest:
    from lossserve.core.types import LossRequest  # after import_losses (see there)

    return LossRequest(
        loss=loss,
        params=PARAMS,
        logits=logits,
        targets=targets,
        reduction=REDUCTION,
        return_grad=True,
    )


def grpc_chunked(
    stub: Any, logits: np.ndarray, targets: np.ndarray, chunk_bytes: int = 2 * MiB
) -> Result:
    """``ComputeLossChunked`` through ``lossserve.client``: encode, stream, reassemble."""
    from lossserve.client import compute_loss_chunked  # after import_losses (see there)

    result = compute_loss_chunked(stub, loss_request(logits, targets), chunk_bytes=chunk_bytes)
    assert result.grad is not None
    return float(result.value), result.grad


def in_process(derivatives: Callable[..., Any], x: torch.Tensor, y: torch.Tensor) -> Result:
    """The baseline: ``losses.derivatives`` on the tensors (as numpy only for the check)."""
    d = derivatives(LOSS, x, y, reduction=REDUCTION, **PARAMS)
    return float(d.value), d.grad.numpy()


def rest_document(**tensors: Any) -> dict[str, Any]:
    return {"loss": LOSS, "params": PARAMS, "reduction": REDUCTION, "return_grad": True, **tensors}


def rest_binary(client: httpx.Client, logits: np.ndarray, targets: np.ndarray) -> Result:
    header = orjson.dumps(
        rest_document(
            logits={
                "shape": list(logits.shape),
                "dtype": logits.dtype.name,
                "binary_data_size": logits.nbytes,
            },
            targets={
                "shape": list(targets.shape),
                "dtype": targets.dtype.name,
                "binary_data_size": targets.nbytes,
            },
        )
    )
    body = b"".join((header, logits.data, targets.data))
    response = client.post(
        "/loss",
        content=body,
        headers={HEADER_LENGTH: str(len(header)), "Content-Type": "application/octet-stream"},
    )
    response.raise_for_status()
    content = response.content
    length = int(response.headers[HEADER_LENGTH])
    answer = orjson.loads(content[:length])
    grad = answer["grad"]
    size = grad["binary_data_size"]
    data = memoryview(content)[length : length + size]  # value is a number: grad comes first
    return float(answer["value"]), np.frombuffer(data, dtype=grad["dtype"]).reshape(grad["shape"])


def b64_tensor(array: np.ndarray) -> dict[str, Any]:
    return {
        "shape": list(array.shape),
        "dtype": array.dtype.name,
        "b64": pybase64.b64encode(array.tobytes()).decode("ascii"),
    }


def rest_b64(client: httpx.Client, logits: np.ndarray, targets: np.ndarray) -> Result:
    body = orjson.dumps(rest_document(logits=b64_tensor(logits), targets=b64_tensor(targets)))
    response = client.post("/loss", content=body, headers={"Content-Type": "application/json"})
    response.raise_for_status()
    answer = orjson.loads(response.content)
    grad = answer["grad"]
    data = pybase64.b64decode(grad["b64"], validate=True)
    return float(answer["value"]), np.frombuffer(data, dtype=grad["dtype"]).reshape(grad["shape"])


def rest_lists(client: httpx.Client, logits: np.ndarray, targets: np.ndarray) -> Result:
    body = orjson.dumps(
        rest_document(logits=logits, targets=targets), option=orjson.OPT_SERIALIZE_NUMPY
    )
    response = client.post("/loss", content=body, headers={"Content-Type": "application/json"})
    response.raise_for_status()
    answer = orjson.loads(response.content)
    return float(answer["value"]), np.asarray(answer["grad"], dtype=np.float32)


def peer(client: httpx.Client, logits: np.ndarray, targets: np.ndarray) -> Result:
    body = b"".join((logits.data, targets.data))
    response = client.post(
        "/focal", content=body, headers={"X-Shape": f"{logits.shape[0]},{logits.shape[1]}"}
    )
    response.raise_for_status()
    grad = np.frombuffer(response.content, np.float32).reshape(logits.shape)
    return float(response.headers["x-loss"]), grad


def lossclient(client: Any, logits: np.ndarray, targets: np.ndarray) -> Result:
    result = client.compute_loss(LOSS, logits, targets, params=PARAMS, return_grad=True)
    return float(result.value), result.grad


def _oip_tensor(message: Any, name: str, array: np.ndarray) -> Any:
    datatype = {"float32": "FP32", "int64": "INT64"}[array.dtype.name]
    return message.inputs.add(name=name, datatype=datatype, shape=list(array.shape))


def _oip_message(logits: np.ndarray, targets: np.ndarray) -> Any:
    message = oip.ModelInferRequest(model_name=f"loss.{LOSS}")
    message.parameters["gamma"].double_param = PARAMS["gamma"]
    message.parameters["reduction"].string_param = REDUCTION
    for name in ("loss", "grad"):
        message.outputs.add(name=name)
    return message


def oip_infer(stub: Any, logits: np.ndarray, targets: np.ndarray) -> Result:
    """``loss.focal`` by ``ModelInfer``, the tensors in ``raw_input_contents``."""
    message = _oip_message(logits, targets)
    _oip_tensor(message, "logits", logits)
    _oip_tensor(message, "targets", targets)
    message.raw_input_contents.extend((logits.tobytes(), targets.tobytes()))
    answer = stub.ModelInfer(message)
    value = np.frombuffer(answer.raw_output_contents[0], np.float32)
    grad = np.frombuffer(answer.raw_output_contents[1], np.float32).reshape(logits.shape)
    return float(value[0]), grad


def oip_rest_binary(client: httpx.Client, logits: np.ndarray, targets: np.ndarray) -> Result:
    """``loss.focal`` over REST with the binary tensor extension, both ways."""
    header = orjson.dumps(
        {
            "parameters": {**PARAMS, "reduction": REDUCTION, "binary_data_output": True},
            "inputs": [
                {
                    "name": name,
                    "datatype": {"float32": "FP32", "int64": "INT64"}[array.dtype.name],
                    "shape": list(array.shape),
                    "parameters": {"binary_data_size": array.nbytes},
                }
                for name, array in (("logits", logits), ("targets", targets))
            ],
            "outputs": [{"name": "loss"}, {"name": "grad"}],
        }
    )
    response = client.post(
        f"/v2/models/loss.{LOSS}/infer",
        content=b"".join((header, logits.data, targets.data)),
        headers={HEADER_LENGTH: str(len(header)), "Content-Type": "application/octet-stream"},
    )
    response.raise_for_status()
    length = int(response.headers[HEADER_LENGTH])
    data = memoryview(response.content)[length:]
    value = np.frombuffer(data, np.float32, 1)
    return float(value[0]), np.frombuffer(data, np.float32, offset=4).reshape(logits.shape)


class Region:
    """A segment of this client's holding logits, targets and room for the gradient,
    registered with the server: the tensors live there (written once, as a trainer that
    produces its logits there would)."""

    def __init__(self, stub: Any, logits: np.ndarray, targets: np.ndarray) -> None:
        from multiprocessing import shared_memory

        self.shape = logits.shape
        self.sizes = (logits.nbytes, targets.nbytes, logits.nbytes)
        self.memory = shared_memory.SharedMemory(create=True, size=sum(self.sizes))
        buffer = np.frombuffer(cast(memoryview, self.memory.buf), np.uint8)
        buffer[: logits.nbytes] = logits.view(np.uint8).reshape(-1)
        buffer[logits.nbytes : logits.nbytes + targets.nbytes] = targets.view(np.uint8)
        del buffer
        self.name = f"bench-{os.getpid()}"
        self.stub = stub
        stub.SystemSharedMemoryRegister(
            oip.SystemSharedMemoryRegisterRequest(
                name=self.name, key="/" + self.memory.name, byte_size=sum(self.sizes)
            )
        )
        self.message = _oip_message(logits, targets)
        offsets = (0, logits.nbytes, logits.nbytes + targets.nbytes)
        for (name, array), offset, size in zip(
            (("logits", logits), ("targets", targets)), offsets, self.sizes, strict=False
        ):
            tensor = _oip_tensor(self.message, name, array)
            self._place(tensor.parameters, offset, size)
        self._place(self.message.outputs[1].parameters, offsets[2], self.sizes[2])

    def _place(self, parameters: Any, offset: int, size: int) -> None:
        parameters["shared_memory_region"].string_param = self.name
        parameters["shared_memory_byte_size"].int64_param = size
        parameters["shared_memory_offset"].int64_param = offset

    def call(self) -> Result:
        answer = self.stub.ModelInfer(self.message)
        value = np.frombuffer(answer.raw_output_contents[0], np.float32)
        count = self.shape[0] * self.shape[1]
        grad = np.frombuffer(
            cast(memoryview, self.memory.buf), np.float32, count, sum(self.sizes[:2])
        )
        return float(value[0]), grad.reshape(self.shape)

    def close(self) -> None:
        self.stub.SystemSharedMemoryUnregister(
            oip.SystemSharedMemoryUnregisterRequest(name=self.name)
        )
        self.memory.close()
        self.memory.unlink()


# --- timing --------------------------------------------------------------------------------


@dataclass
class Timing:
    median: float
    best: float
    repeats: int


R = TypeVar("R")


def measure(
    calls: Sequence[tuple[str, Callable[[], R], int]], warmups: int
) -> tuple[dict[str, Timing], dict[str, R]]:
    """Time ``(name, call, repeats)`` calls interleaved: round r times each call once.

    ``warmups`` untimed rounds come first (their first answers are returned, for checking);
    a call takes part in the first ``repeats`` timed rounds only. Interleaving puts every
    path under the same conditions (this machine's background, the allocator's state)
    rather than giving each its own stretch of time.
    """
    answers: dict[str, R] = {}
    for _ in range(warmups):
        for name, call, _ in calls:
            answer = call()
            answers.setdefault(name, answer)
    times: dict[str, list[float]] = {name: [] for name, _, _ in calls}
    for r in range(max(repeats for _, _, repeats in calls)):
        for name, call, repeats in calls:
            if r < repeats:
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    timings = {name: Timing(statistics.median(ts), min(ts), len(ts)) for name, ts in times.items()}
    return timings, answers


def max_diff(result: Result, value: float, grad: np.ndarray) -> float:
    got_value, got_grad = result
    if got_grad.shape != grad.shape:
        return float("inf")
    return max(abs(got_value - value), float(np.max(np.abs(got_grad - grad))))


def make_data(n: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits ~ 3 N(0, 1); labels from a long-tailed prior (class k has weight 1/(k+1))."""
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((n, c), dtype=np.float32) * 3).astype(np.float32)
    prior = 1.0 / np.arange(1, c + 1)
    targets = rng.choice(c, size=n, p=prior / prior.sum()).astype(np.int64)
    return logits, targets


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        n, _, c = item.strip().lower().partition("x")
        sizes.append((int(n), int(c)))
    return sizes


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}" if seconds < 10 else f"{seconds * 1e3:.0f}"


def cpu_share(share: CpuShare) -> str:
    """How busy the machine's CPUs were since ``share`` started, and how much of it was not
    us (see :class:`_server.CpuShare`)."""
    numbers = share.stop()
    if numbers is None:
        return "CPU share unknown"
    busy, others = numbers
    return f"CPUs {busy:.0f}% busy, other processes {others:.0f}% of all CPU time"


# --- the chunking question -----------------------------------------------------------------


def probe(stub: Any, logits: np.ndarray, targets: np.ndarray) -> None:
    """Send the tensors under an unknown loss name: the server decodes, then rejects them."""
    try:
        stub.ComputeLoss(grpc_request(logits, targets, loss=PROBE_LOSS))
    except grpc.RpcError as exc:
        _expect_probe_error(exc)
        return
    raise RuntimeError("the transport probe was accepted: it must be rejected")


def probe_chunked(stub: Any, logits: np.ndarray, targets: np.ndarray, chunk_bytes: int) -> None:
    """The probe over ``ComputeLossChunked``: the server reassembles, then rejects."""
    from lossserve.client import compute_loss_chunked  # after import_losses (see there)

    request = loss_request(logits, targets, loss=PROBE_LOSS)
    try:
        compute_loss_chunked(stub, request, chunk_bytes=chunk_bytes)
    except grpc.RpcError as exc:
        _expect_probe_error(exc)
        return
    raise RuntimeError("the transport probe was accepted: it must be rejected")


def _expect_probe_error(exc: grpc.RpcError) -> None:
    call = cast(grpc.Call, exc)
    if call.code() is not grpc.StatusCode.INVALID_ARGUMENT:
        raise exc


# --- main ----------------------------------------------------------------------------------


def chosen(name: str, paths: str) -> bool:
    """Whether ``--paths`` (comma-separated words, empty for all) takes the path ``name``."""
    words = [w.strip().lower() for w in paths.split(",") if w.strip()]
    return not words or any(w in name.lower() for w in words)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[4:]),
    )
    parser.add_argument(
        "--sizes", default="1024x32,65536x128", help="comma-separated NxC (default: %(default)s)"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed calls a path (default: %(default)s)"
    )
    parser.add_argument(
        "--lists-repeats",
        type=int,
        default=3,
        help="timed calls for REST JSON lists at the largest size (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch intra-op threads, in-process and in the server (default: %(default)s)",
    )
    parser.add_argument(
        "--chunk-mib",
        default="1,2,4,8",
        help="chunk sizes in MiB for ComputeLossChunked (default: %(default)s)",
    )
    parser.add_argument("--skip-chunks", action="store_true", help="skip the chunking question")
    parser.add_argument(
        "--warmups",
        type=int,
        default=2,
        help="untimed rounds first, at least 1: their answers are checked (default: %(default)s)",
    )
    parser.add_argument(
        "--paths",
        default="",
        help="only the paths whose names contain one of these comma-separated words "
        "(case-insensitive; the in-process baseline and the peer are always timed; "
        "default: all)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.warmups < 1:
        parser.error("--warmups: expected at least 1 (the check reads the warm-up answers)")
    sizes = parse_sizes(args.sizes)
    chunk_sizes = [int(float(k) * MiB) for k in args.chunk_mib.split(",") if k.strip()]
    torch.set_num_threads(args.threads)
    derivatives = import_losses().derivatives
    from lossserve.workers import keep_freed_memory

    keep_freed_memory()  # as the server's workers run: the baseline computes alike
    from lossserve.client import CLIENT_OPTIONS  # imports losses: after import_losses
    from lossserve_client import LossClient

    # SIGTERM ends this process through SystemExit, so the finally blocks stop the server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))

    largest = max(sizes, key=lambda s: s[0] * s[1])
    print(
        f"loss={LOSS} params={PARAMS} reduction={REDUCTION} return_grad=True; torch "
        f"{torch.__version__}, {args.threads} intra-op threads in-process and in the server "
        f"(one cpu worker); {os.cpu_count()} CPUs shared by client and server."
    )
    print(
        f"Paths timed interleaved: {args.warmups} untimed rounds, then median (and best) of "
        f"{args.repeats} timed rounds ({args.lists_repeats} for REST JSON lists at "
        f"{largest[0]} x {largest[1]}); ratio = median / median of in-process "
        "losses.derivatives in the same rounds."
    )
    print()

    queue_depth = 8
    rows: list[tuple[str, str, Timing, Timing, float]] = []
    chunk_lines: list[str] = []
    shares: list[str] = []
    with (
        running_server(args.threads, queue_depth) as server,
        running_peer(args.threads) as peer_server,
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}", options=CLIENT_OPTIONS) as channel,
        httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=600.0) as client,
        httpx.Client(base_url=f"http://{peer_server.http_url}", timeout=600.0) as peer_client,
        LossClient.grpc(server.grpc_url, timeout=600.0) as grpc_client,
        LossClient.rest(f"http://{server.http_url}", timeout=600.0) as rest_client,
        LossClient.grpc(server.grpc_url, timeout=600.0, shared_memory=True) as grpc_shared,
        LossClient.rest(
            f"http://{server.http_url}", timeout=600.0, shared_memory=True
        ) as rest_shared,
    ):
        grpc.channel_ready_future(channel).result(timeout=60)
        stub: Any = cast(Any, pb_grpc).LossServiceStub(channel)
        oip_stub: Any = cast(Any, oip_stubs).GRPCInferenceServiceStub(channel)
        for n, c in sizes:
            logits, targets = make_data(n, c, args.seed)
            x, y = torch.from_numpy(logits), torch.from_numpy(targets)
            region = Region(oip_stub, logits, targets)
            label = f"{n} x {c}"
            lists_repeats = args.lists_repeats if (n, c) == largest else args.repeats
            calls: list[tuple[str, Callable[[], Any], int]] = [
                (IN_PROCESS, partial(in_process, derivatives, x, y), args.repeats),
                (GRPC, partial(grpc_compute, stub, logits, targets), args.repeats),
                (CHUNKED, partial(grpc_chunked, stub, logits, targets), args.repeats),
                (BINARY, partial(rest_binary, client, logits, targets), args.repeats),
                ("REST base64", partial(rest_b64, client, logits, targets), args.repeats),
                ("REST JSON lists", partial(rest_lists, client, logits, targets), lists_repeats),
                (
                    "LossClient.grpc",
                    partial(lossclient, grpc_client, logits, targets),
                    args.repeats,
                ),
                (
                    "LossClient.rest",
                    partial(lossclient, rest_client, logits, targets),
                    args.repeats,
                ),
                (
                    "LossClient.grpc shared memory",
                    partial(lossclient, grpc_shared, logits, targets),
                    args.repeats,
                ),
                (
                    "LossClient.rest shared memory",
                    partial(lossclient, rest_shared, logits, targets),
                    args.repeats,
                ),
                (
                    "OIP loss.focal gRPC",
                    partial(oip_infer, oip_stub, logits, targets),
                    args.repeats,
                ),
                (
                    "OIP loss.focal REST binary",
                    partial(oip_rest_binary, client, logits, targets),
                    args.repeats,
                ),
                ("OIP loss.focal shared memory (tensors in the region)", region.call, args.repeats),
                (PEER, partial(peer, peer_client, logits, targets), args.repeats),
            ]
            calls = [c for c in calls if c[0] in (IN_PROCESS, PEER) or chosen(c[0], args.paths)]
            share = CpuShare(server.process.pid)
            timings, answers = measure(calls, args.warmups)
            shares.append(f"{label}: {cpu_share(share)}")
            value, grad = answers[IN_PROCESS]
            for name, _, _ in calls:
                diff = max_diff(answers[name], value, grad)
                rows.append((label, name, timings[name], timings[IN_PROCESS], diff))
            print(f"  measured {label}", file=sys.stderr, flush=True)
            if (n, c) == largest and not args.skip_chunks:
                share = CpuShare(server.process.pid)
                chunk_lines = chunking(
                    stub, logits, targets, chunk_sizes, args.repeats, args.warmups, (value, grad)
                )
                shares.append(f"{label} chunking: {cpu_share(share)}")
            del calls, answers, x, y  # free this size's tensors before the next
            region.close()

    print(
        "| N x C | path | median ms | best ms | ratio to in-process (median) "
        "| ratio to in-process (best) | ratio to the peer (median) | max abs diff |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    peers = {label: timing for label, name, timing, _, _ in rows if name == PEER}
    for label, name, timing, base, diff in rows:
        peer_ratio = f"{timing.median / peers[label].median:.2f}" if label in peers else "-"
        print(
            f"| {label} | {name} | {ms(timing.median)} | {ms(timing.best)} "
            f"| {timing.median / base.median:.2f} | {timing.best / base.best:.2f} "
            f"| {peer_ratio} | {diff:.1e} |"
        )
    print()
    head = f"{largest[0]} x {largest[1]}"
    if largest != (65536, 128):
        print(f"(65536 x 128 was not measured; the headline uses the largest size, {head}.)")
    verdicts, within = [], True
    for label, name, timing, base, _ in rows:
        if label == head and name in (GRPC, CHUNKED, BINARY):
            ratio = timing.median / base.median
            within = within and ratio <= 2
            verdicts.append(
                f"{name} {ratio:.2f}x by median ({timing.best / base.best:.2f}x by best)"
            )
    if verdicts:
        print(
            f"Headline: gRPC and REST binary within 2x of in-process at {head} (by median)? "
            f"{'yes' if within else 'no'}: {'; '.join(verdicts)}. (lossserve.client."
            "compute_loss sends unary up to 2 MiB of request or answer tensors, chunked above.)"
        )
    if chunk_lines:
        print()
        print("\n".join(chunk_lines))
    print()
    print(
        "Contention while measuring (busy CPU time not spent by this client or the server "
        "slows both sides, and torch's threads most): " + "; ".join(shares) + "."
    )


def chunking(
    stub: Any,
    logits: np.ndarray,
    targets: np.ndarray,
    chunk_sizes: Sequence[int],
    repeats: int,
    warmups: int,
    reference: Result,
) -> list[str]:
    """Whether chunks over a stream beat one unary ComputeLoss here; the lines of its table."""
    n, c = logits.shape
    megabytes = (logits.nbytes + targets.nbytes) / MiB
    lines = [
        f"gRPC at {n} x {c}, one message vs ComputeLossChunked (request {megabytes:.1f} MiB, "
        f"answer {logits.nbytes / MiB:.1f} MiB; median of {repeats} interleaved rounds after "
        f"{warmups} warm-up rounds; ratio = median / median of the one message):",
        "",
        "| what | how | median ms | best ms | ratio to one message | max abs diff |",
        "|---|---|---:|---:|---:|---:|",
    ]
    uplink = "uplink transport (rejected after decode)"
    probes: list[tuple[str, Callable[[], None], int]] = [
        ("1 ComputeLoss message", partial(probe, stub, logits, targets), repeats)
    ]
    calls: list[tuple[str, Callable[[], Result], int]] = [
        ("1 ComputeLoss message", partial(grpc_compute, stub, logits, targets), repeats)
    ]
    for size in chunk_sizes:
        how = f"ComputeLossChunked, {size / MiB:g} MiB chunks"
        probes.append((how, partial(probe_chunked, stub, logits, targets, size), repeats))
        calls.append((how, partial(grpc_chunked, stub, logits, targets, size), repeats))
    probe_times, _ = measure(probes, warmups)
    call_times, answers = measure(calls, warmups)
    for what, timings, first in (
        (uplink, probe_times, "1 ComputeLoss message"),
        ("ComputeLoss end to end", call_times, "1 ComputeLoss message"),
    ):
        for how, t in timings.items():
            diff = "-" if what == uplink else f"{max_diff(answers[how], *reference):.1e}"
            ratio = t.median / timings[first].median
            lines.append(
                f"| {what} | {how} | {ms(t.median)} | {ms(t.best)} | {ratio:.2f} | {diff} |"
            )
    return lines


if __name__ == "__main__":
    main()
