"""lossserve against the servers a user would pick instead, on the same ONNX model, with h2load.

    python bench/peers.py [--quick] [--heavy] [--json OUT] [--server-cpus 0] [--client-cpus 1]

Run it with the project's venv python (``.venv/bin/python bench/peers.py``). It trains the
``digits-lt`` model (``lossserve train --dataset digits-lt --loss
logit_adjusted_cross_entropy``, an MLP, FP32 ``features`` [batch, 64]; about ten seconds) into
a temporary repository as ``bench/inference.py`` does, or takes the latest version of
``--model`` from ``--model-repository DIR`` (never written to), and serves that one
``model.onnx`` from every server at once:

- lossserve: ``lossserve serve`` (``bench/_server.py``), ``LOSSSERVE_MODEL_THREADS=1``, the
  model twice as in ``bench/inference.py``: ``<model>-batching-on`` (the card's dynamic
  batching, or 64 rows / 500 us) and ``<model>-batching-off`` (1 row, no delay); over OIP
  gRPC, OIP REST binary (the binary tensor extension, inputs and outputs) and OIP REST JSON;
- MLServer: a custom runtime running ONNX Runtime (MLServer ships none for ONNX), its OIP
  v2 REST JSON and gRPC, no parallel inference workers, gzip and debug logging off;
- KServe: a ``kserve.Model`` running ONNX Runtime in ``kserve.ModelServer`` (one worker,
  no access or latency log lines), its OIP v2 REST JSON, REST binary and gRPC;
- LitServe: a ``litserve.LitAPI`` running ONNX Runtime on its own ``POST /predict``;
- a naive FastAPI + ONNX Runtime endpoint of about twenty lines on uvicorn with uvloop and
  httptools (``POST /predict``, JSON).

The peers' scripts are ``bench/peers_servers/<peer>.py``; each peer runs from a venv of its
own under ``--venv`` (``/work/peers-venv/<peer>``, made on the first run with ``python3 -m
venv`` and the versions pinned in :data:`PINS`, remade when those change), so that their
dependencies never meet the project's. A peer that cannot be installed or started gets a
row saying why and the run goes on. Every server runs ONNX Runtime at one intra-op thread
(one inter-op thread, no spinning: lossserve's session options), and every server process,
with its threads and child processes, is pinned with ``taskset -c`` to ``--server-cpus``
(lossserve: the same affinity, set on the process that starts it; given a subset of the
machine's CPUs, it pins each frontend to one of them; the script checks every thread's
``Cpus_allowed_list`` afterwards).

Load comes only from ``h2load`` (nghttp2, a C load generator; ``apt-get install
nghttp2-client``), pinned to ``--client-cpus``: HTTP/1.1 (``--h1``) for REST, h2c for gRPC,
where the request file is the whole gRPC message frame (the 5-byte prefix and a serialized
``inference.ModelInferRequest`` built with ``tritonclient.grpc.service_pb2``, never the
server's generated package) posted to ``/inference.GRPCInferenceService/ModelInfer`` with
``content-type: application/grpc`` and ``te: trailers``. Every request carries the same one
real digits row and, over OIP, asks for ``logits`` and ``probabilities``; every request
sends ``accept-encoding: identity``. Concurrency C is C connections with one request in
flight each (``-c C -m 1``), at C = 1, 8 and 32; each setting runs ``--duration`` seconds
after ``--warmup`` seconds of warm-up on the same connections (h2load's ``-D`` and
``--warm-up-time``). The settings run interleaved in ``--rounds`` rounds, the order reversed
every other round, so that drift on a shared machine spreads over all of them.

Before any timing, each server and transport is checked once: the exact bytes h2load will
send, and the same encoding of three other digits rows, are sent with a Python client
(httpx, or grpcio with the raw frame), and the returned logits and probabilities must match
in-process ONNX Runtime on the same rows within 1e-4; a target that fails is not timed.

Reported, per server and transport: throughput (2xx answers per second of the measured
duration, less gRPC answers whose ``grpc-status`` was not OK, counted from the DATA bytes,
since h2load only sees HTTP 200) at C = 1, 8 and 32; p50 and p99 latency at C = 1 from
h2load's per-request log (``--log-file``); the server's CPU time per request at C = 32
(utime + stime from ``/proc/<pid>/stat`` summed over the server's process tree over the
measured duration); each row's throughput as a ratio to the fastest peer at the same
concurrency, and lossserve's also to the fastest gRPC peer; ``rows/run`` for lossserve
(``inference_count / execution_count`` from ``/v2/models/<m>/stats``, warm-up included).
The idle CPU of each server (all are up together) is printed before the table.

``--heavy`` adds a compute-heavy model: an MLP built with ``onnx.helper`` (64 -> W -> W -> W
-> 10, random weights; W the narrowest of a few widths whose single-row run takes at least
``--heavy-ms`` in-process at one thread), with the digits card's labels and input and its
own name and sha256, served by lossserve with batching on and off over the same three
transports and timed at C = 32 only: what dynamic batching buys when compute dominates.

``--quick`` is a smoke run (1 round of 1 s settings). ``--json OUT`` writes every number. A
benchmark, not a test: nothing here passes or fails. The machine's cores are shared with
whatever else runs; the last line says how busy they were, and how much of their time went
to processes other than the servers, h2load and this script.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import _server
import grpc
import httpx
import inference
import numpy as np
import onnxruntime as ort
from _server import CpuShare, Server
from tritonclient.grpc import service_pb2  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
SERVERS_DIR = Path(__file__).resolve().parent / "peers_servers"
CONCURRENCIES = (1, 8, 32)
HEAVY_CONCURRENCY = 32
OUTPUTS = ("logits", "probabilities")
TOLERANCE = 1e-4
GRPC_PATH = "/inference.GRPCInferenceService/ModelInfer"
HEADER_LENGTH = "Inference-Header-Content-Length"
LOSSSERVE = "lossserve"
CPU = "CPUExecutionProvider"

PINS: dict[str, list[str]] = {
    "mlserver": [
        "mlserver==1.7.1",
        "onnxruntime==1.32.0",
        "numpy==2.4.6",
        "fastapi==0.115.14",
        "uvicorn==0.55.0",
        "uvloop==0.23.0",
        "httptools==0.9.0",
        "grpcio==1.85.3",
        "protobuf==6.33.6",
    ],
    "kserve": [
        "kserve==0.21.0",
        "onnxruntime==1.32.0",
        "numpy==2.4.6",
        "fastapi==0.165.0",
        "uvicorn==0.55.0",
        "uvloop==0.23.0",
        "httptools==0.9.0",
        "grpcio==1.85.3",
        "protobuf==6.33.6",
    ],
    "litserve": [
        "litserve==0.2.19",
        "onnxruntime==1.32.0",
        "numpy==2.4.6",
        "fastapi==0.165.0",
        "uvicorn==0.55.0",
        "uvloop==0.23.0",
        "httptools==0.9.0",
        "pyzmq==27.3.0",
    ],
    "fastapi": [
        "fastapi==0.165.0",
        "pydantic==2.14.4",
        "uvicorn==0.55.0",
        "uvloop==0.23.0",
        "httptools==0.9.0",
        "onnxruntime==1.32.0",
        "numpy==2.4.6",
    ],
}
"""Each peer's venv: the top-level package and what decides its speed, pinned."""

PEER_NAMES = {
    "mlserver": "MLServer",
    "kserve": "KServe",
    "litserve": "LitServe",
    "fastapi": "FastAPI naive",
}

Arrays = dict[str, np.ndarray]


class UnavailableError(Exception):
    """A peer that cannot be installed, started or checked; the message says why."""


# --- the peers' venvs ----------------------------------------------------------------------


def tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def ensure_venv(root: Path, peer: str, python: str) -> Path:
    """The peer's venv python, the venv made (or remade, when :data:`PINS` changed) first."""
    venv = root / peer
    stamp = venv / ".peers-pins"
    pins = "\n".join(PINS[peer]) + "\n"
    executable = venv / "bin" / "python"
    if executable.exists() and stamp.exists() and stamp.read_text() == pins:
        return executable
    print(f"installing {peer} into {venv}: {' '.join(PINS[peer])}", flush=True)
    if not executable.exists():
        made = subprocess.run(
            [python, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            raise UnavailableError(f"{python} -m venv failed: {tail(made.stderr)}")
    pip = [str(executable), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    done = subprocess.run([*pip, *PINS[peer]], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UnavailableError(f"pip install failed: {tail(done.stderr or done.stdout)}")
    stamp.write_text(pins)
    return executable


# --- models --------------------------------------------------------------------------------


def heavy_graph(width: int, seed: int = 0) -> bytes:
    """An MLP 64 -> width -> width -> width -> 10 with ``logits`` and ``probabilities``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    sizes = [64, width, width, width, 10]
    nodes, weights = [], []
    current = "features"
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        b = np.zeros(fan_out, dtype=np.float32)
        weights += [
            numpy_helper.from_array(w, f"w{layer}"),
            numpy_helper.from_array(b, f"b{layer}"),
        ]
        last = layer == len(sizes) - 2
        out = "logits" if last else f"h{layer}"
        nodes.append(helper.make_node("Gemm", [current, f"w{layer}", f"b{layer}"], [out]))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"r{layer}"]))
            out = f"r{layer}"
        current = out
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes,
        "heavy_mlp",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 64])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10]),
        ],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def single_row_ms(model: bytes, row: np.ndarray, repeats: int = 200) -> float:
    session = ort.InferenceSession(model, inference.session_options(1), providers=[CPU])
    for _ in range(20):
        session.run(list(OUTPUTS), {"features": row})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(list(OUTPUTS), {"features": row})
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def build_heavy(target_ms: float, row: np.ndarray) -> tuple[bytes, int, float]:
    """The narrowest heavy MLP whose single-row run takes at least ``target_ms``: (ONNX
    bytes, width, measured ms)."""
    best = (b"", 0, 0.0)
    for width in (256, 512, 768, 1024, 1536, 2048, 3072, 4096):
        model = heavy_graph(width)
        best = (model, width, single_row_ms(model, row, repeats=100))
        if best[2] >= target_ms:
            break
    return best


def write_heavy_source(directory: Path, model: bytes, digits_card: dict[str, Any]) -> Path:
    """``directory/{model.onnx,card.json}``: the heavy model with the digits card's labels,
    decision rule and input spec (the same features), its own sha256 and name."""
    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(model)
    card = dict(digits_card)
    card["name"], card["version"] = "heavy", 1
    card["sha256"] = hashlib.sha256(model).hexdigest()
    card["dataset"] = "synthetic (bench/peers.py --heavy, random weights)"
    (directory / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return directory


def reference(session: ort.InferenceSession, row: np.ndarray) -> Arrays:
    logits, probabilities = session.run(list(OUTPUTS), {"features": row})
    return {"logits": np.asarray(logits), "probabilities": np.asarray(probabilities)}


# --- the transports: what h2load sends, and how a Python client reads the answer ----------


@dataclass(frozen=True)
class Transport:
    name: str
    grpc: bool
    encode: Callable[[str, np.ndarray], tuple[bytes, dict[str, str]]]
    """(model, row) -> request body (gRPC: the message, without the frame prefix), headers."""
    path: Callable[[str], str]
    decode: Callable[[bytes, Mapping[str, str]], Arrays]
    """(response body (gRPC: the message), response headers) -> outputs."""


def oip_json_request(model: str, row: np.ndarray) -> tuple[bytes, dict[str, str]]:
    body = {
        "inputs": [
            {
                "name": "features",
                "shape": list(row.shape),
                "datatype": "FP32",
                "data": [float(v) for v in row.reshape(-1)],
            }
        ],
        "outputs": [{"name": name} for name in OUTPUTS],
    }
    return json.dumps(body).encode(), {"content-type": "application/json"}


def oip_binary_request(model: str, row: np.ndarray) -> tuple[bytes, dict[str, str]]:
    raw = np.ascontiguousarray(row, dtype="<f4").tobytes()
    header = {
        "inputs": [
            {
                "name": "features",
                "shape": list(row.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in OUTPUTS],
    }
    encoded = json.dumps(header).encode()
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(encoded))}
    return encoded + raw, headers


def oip_response(body: bytes, headers: Mapping[str, str]) -> Arrays:
    """An OIP REST answer, JSON or with the binary tensor extension."""
    length = headers.get(HEADER_LENGTH)
    split = int(length) if length is not None else len(body)
    document = json.loads(body[:split])
    offset, out = split, {}
    for entry in document["outputs"]:
        size = (entry.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            data = np.frombuffer(body[offset : offset + size], dtype="<f4")
            offset += size
        else:
            data = np.asarray(entry["data"], dtype=np.float32)
        out[entry["name"]] = data.reshape(entry["shape"])
    return out


def instances_request(model: str, row: np.ndarray) -> tuple[bytes, dict[str, str]]:
    body = {"instances": [[float(v) for v in r] for r in row]}
    return json.dumps(body).encode(), {"content-type": "application/json"}


def instances_response(body: bytes, headers: Mapping[str, str]) -> Arrays:
    document = json.loads(body)
    return {name: np.asarray(document[name], dtype=np.float32) for name in OUTPUTS}


def grpc_request(model: str, row: np.ndarray) -> tuple[bytes, dict[str, str]]:
    request = service_pb2.ModelInferRequest(model_name=model)
    tensor = request.inputs.add()
    tensor.name, tensor.datatype = "features", "FP32"
    tensor.shape.extend(row.shape)
    for name in OUTPUTS:
        request.outputs.add().name = name
    request.raw_input_contents.append(np.ascontiguousarray(row, dtype="<f4").tobytes())
    return request.SerializeToString(), {"content-type": "application/grpc", "te": "trailers"}


def grpc_response(body: bytes, headers: Mapping[str, str]) -> Arrays:
    response = service_pb2.ModelInferResponse.FromString(body)
    out = {}
    for index, tensor in enumerate(response.outputs):
        if response.raw_output_contents:
            data = np.frombuffer(response.raw_output_contents[index], dtype="<f4")
        else:
            data = np.asarray(tensor.contents.fp32_contents, dtype=np.float32)
        out[tensor.name] = data.reshape(list(tensor.shape))
    return out


def grpc_frame(message: bytes) -> bytes:
    """The gRPC length-prefixed message: not compressed, 4-byte big-endian length."""
    return struct.pack(">BI", 0, len(message)) + message


OIP_GRPC = Transport("OIP gRPC", True, grpc_request, lambda m: GRPC_PATH, grpc_response)
OIP_BINARY = Transport(
    "OIP REST binary", False, oip_binary_request, lambda m: f"/v2/models/{m}/infer", oip_response
)
OIP_JSON = Transport(
    "OIP REST JSON", False, oip_json_request, lambda m: f"/v2/models/{m}/infer", oip_response
)
PREDICT_JSON = Transport(
    "/predict JSON", False, instances_request, lambda m: "/predict", instances_response
)


@dataclass(frozen=True)
class Target:
    server: str
    transport: Transport
    port: int
    model: str
    batching: str = "-"
    heavy: bool = False

    @property
    def label(self) -> str:
        batching = f", batching {self.batching}" if self.batching != "-" else ""
        return f"{self.server} {self.transport.name}{batching}" + (" (heavy)" if self.heavy else "")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.transport.path(self.model)}"


@dataclass(frozen=True)
class Answer:
    body: bytes
    """What h2load sends for this row: the request body (gRPC: the framed message)."""
    outputs: Arrays
    data_bytes: int | None
    """gRPC: the answer's DATA bytes (its framed message); REST: None."""


def call(target: Target, row: np.ndarray) -> Answer:
    """One request with a Python client (grpcio with raw bytes, or httpx)."""
    body, headers = target.transport.encode(target.model, row)
    if target.transport.grpc:
        with grpc.insecure_channel(f"127.0.0.1:{target.port}") as channel:
            method: Callable[..., bytes] = channel.unary_unary(GRPC_PATH)  # bytes in and out
            answer = method(body, timeout=30)
        outputs = target.transport.decode(answer, {})
        return Answer(grpc_frame(body), outputs, len(grpc_frame(answer)))
    response = httpx.post(target.url, content=body, headers=headers, timeout=30)
    if response.status_code != 200:
        raise UnavailableError(f"HTTP {response.status_code}: {response.text[:200]}")
    return Answer(body, target.transport.decode(response.content, response.headers), None)


def check(
    target: Target, session: ort.InferenceSession, rows: Sequence[np.ndarray]
) -> tuple[str, Answer]:
    """(the largest difference, the first row's answer); raise :class:`UnavailableError`
    unless every row's logits and probabilities match in-process ORT within TOLERANCE."""
    worst = 0.0
    answers = []
    for row in rows:
        try:
            answers.append(call(target, row))
        except (grpc.RpcError, httpx.HTTPError, ValueError, KeyError) as exc:
            raise UnavailableError(f"check failed: {str(exc).splitlines()[0][:200]}") from None
        answer = answers[-1].outputs
        want = reference(session, row)
        for name in OUTPUTS:
            got = answer.get(name)
            if got is None or got.shape != want[name].shape:
                shape = None if got is None else got.shape
                raise UnavailableError(f"check failed: {name} {shape}, expected {want[name].shape}")
            worst = max(worst, float(np.max(np.abs(got - want[name]))))
    if worst > TOLERANCE:
        raise UnavailableError(f"check failed: max |diff| {worst:.1e} > {TOLERANCE:.0e}")
    return f"max |diff| {worst:.1e}", answers[0]


# --- processes: pinning and CPU time -------------------------------------------------------


def parse_cpus(text: str) -> list[int]:
    cpus: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return sorted(set(cpus))


def cpu_list(cpus: Sequence[int]) -> str:
    return ",".join(str(c) for c in cpus)


@contextlib.contextmanager
def pinned(cpus: Sequence[int]) -> Iterator[None]:
    """This thread's CPU affinity set to ``cpus`` for the block, so that a server started in
    it inherits the same affinity as under ``taskset -c``."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def tree_cpu(pid: int) -> float:
    """utime + stime, in seconds, of ``pid`` and its live descendants."""
    ticks = 0
    for process in descendants(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{process}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class TreeShare(CpuShare):
    """:class:`CpuShare` where "ours" is the servers' process trees, this process and the
    h2load runs it waited for: "others" is then everything else on the machine."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        super().__init__(self.pids[0])

    def _sample(self) -> tuple[float, float, float] | None:
        base = super()._sample()
        if base is None:
            return None
        total, busy, _ = base
        own = os.times()
        mine = own.user + own.system + own.children_user + own.children_system
        return total, busy, mine + sum(tree_cpu(pid) for pid in self.pids)


def tree_affinity(pid: int) -> set[str]:
    """The ``Cpus_allowed_list`` of every thread of ``pid``'s process tree."""
    found = set()
    for process in descendants(pid):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{process}/task"):
                with contextlib.suppress(OSError):
                    status = Path(f"/proc/{process}/task/{task}/status").read_text()
                    match = re.search(r"^Cpus_allowed_list:\s*(\S+)", status, re.M)
                    if match:
                        found.add(match.group(1))
    return found


# --- starting the servers ------------------------------------------------------------------


@dataclass(frozen=True)
class PeerCommand:
    command: list[str]
    ready: list[str]
    """HTTP paths that answer 200 once the model is served."""
    env: dict[str, str]
    http_port: int
    grpc_port: int


def start_peer(
    peer: PeerCommand, cpus: Sequence[int], env: Mapping[str, str], log: IO[bytes]
) -> Server:
    """``taskset -c CPUS command`` in a process group of its own, as a :class:`Server`."""
    process = subprocess.Popen(
        ["taskset", "-c", cpu_list(cpus), *peer.command],
        cwd=ROOT,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_server.die_with_parent(),
        start_new_session=True,  # its own process group: LitServe's workers stop with it
    )
    return Server(process, log, peer.http_port, peer.grpc_port)


def stop_group(server: Server) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=5)


def peer_command(key: str, python: Path, model: Path, model_name: str, work: Path) -> PeerCommand:
    """How to start one peer on fresh ports."""
    http, grpc_port = _server.free_port(), _server.free_port()
    while grpc_port == http:
        grpc_port = _server.free_port()
    script = str(SERVERS_DIR / f"{key}_ort.py")
    env = {"PYTHONPATH": str(SERVERS_DIR), "PEER_ORT_THREADS": "1", "OMP_NUM_THREADS": "1"}
    v2_ready = ["/v2/health/ready", f"/v2/models/{model_name}/ready"]
    if key in ("fastapi", "litserve"):
        command = [str(python), script, str(model), str(http)]
        return PeerCommand(command, ["/health"], env, http, 0)
    if key == "kserve":
        command = [
            str(python),
            script,
            str(model),
            "--model_name",
            model_name,
            "--http_port",
            str(http),
            "--grpc_port",
            str(grpc_port),
            "--workers",
            "1",
            "--enable_latency_logging",
            "false",
        ]
        return PeerCommand(command, v2_ready, env, http, grpc_port)
    if key == "mlserver":
        folder = work / "mlserver"
        (folder / model_name).mkdir(parents=True)
        settings = {
            "debug": False,
            "parallel_workers": 0,
            "host": "127.0.0.1",
            "http_port": http,
            "grpc_port": grpc_port,
            "metrics_endpoint": None,
            "gzip_enabled": False,
        }
        (folder / "settings.json").write_text(json.dumps(settings))
        model_settings = {
            "name": model_name,
            "implementation": "mlserver_ort.OrtRuntime",
            "parameters": {"uri": str(model)},
        }
        (folder / model_name / "model-settings.json").write_text(json.dumps(model_settings))
        command = [str(python.parent / "mlserver"), "start", str(folder)]
        return PeerCommand(command, v2_ready, env, http, grpc_port)
    raise ValueError(f"unknown peer {key!r}")


PEER_TRANSPORTS = {
    "mlserver": (OIP_JSON, OIP_GRPC),
    "kserve": (OIP_JSON, OIP_BINARY, OIP_GRPC),
    "litserve": (PREDICT_JSON,),
    "fastapi": (PREDICT_JSON,),
}


# --- h2load --------------------------------------------------------------------------------


@dataclass
class Part:
    """One h2load run: what it counted."""

    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu: float = float("nan")
    latencies_us: list[int] = field(default_factory=list)
    first_error: str = ""


@dataclass
class Result:
    parts: list[Part] = field(default_factory=list)
    rows: int = 0
    runs: int = 0

    @property
    def ok(self) -> int:
        return sum(p.ok for p in self.parts)

    @property
    def errors(self) -> int:
        return sum(p.errors for p in self.parts)

    @property
    def throughput(self) -> float:
        seconds = sum(p.seconds for p in self.parts)
        return self.ok / seconds if seconds > 0 else float("nan")

    def percentile_ms(self, q: float) -> float:
        values = [v for p in self.parts for v in p.latencies_us]
        return float(np.percentile(values, q)) / 1e3 if values else float("nan")

    @property
    def cpu_ms_per_request(self) -> float:
        cpu = [p.cpu for p in self.parts if np.isfinite(p.cpu)]
        ok = sum(p.ok for p in self.parts if np.isfinite(p.cpu))
        return 1e3 * sum(cpu) / ok if ok else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "throughput": self.throughput,
            "p50_ms": self.percentile_ms(50),
            "p99_ms": self.percentile_ms(99),
            "cpu_ms_per_request": self.cpu_ms_per_request,
            "rows_per_run": self.rows / self.runs if self.runs else None,
            "first_error": next((p.first_error for p in self.parts if p.first_error), ""),
        }


def h2load_command(
    target: Target,
    body_file: Path,
    headers: Mapping[str, str],
    concurrency: int,
    duration: float,
    warmup: float,
    client_cpus: Sequence[int],
    log_file: Path,
) -> list[str]:
    command = ["taskset", "-c", cpu_list(client_cpus), "h2load"]
    if not target.transport.grpc:
        command.append("--h1")
    command += [
        "-c",
        str(concurrency),
        "-m",
        "1",
        "-t",
        str(max(1, min(len(client_cpus), concurrency))),
        "-D",
        f"{round(duration * 1e3)}ms",
        "--warm-up-time",
        f"{round(warmup * 1e3)}ms",
        "-d",
        str(body_file),
        "--log-file",
        str(log_file),
        "-H",
        "accept-encoding: identity",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    return [*command, target.url]


def parse_h2load(output: str, response_bytes: int | None) -> tuple[int, int, str]:
    """(answers that were OK, errors, first error) from h2load's summary. gRPC answers are
    HTTP 200 whatever their ``grpc-status``: an OK one has a DATA frame of ``response_bytes``,
    an error none, so OK answers are the DATA bytes over ``response_bytes``."""
    requests = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        output,
    )
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    if requests is None or codes is None:
        return 0, 1, f"h2load: {tail(output)}"  # counted as one error, to show
    ok, errors = int(requests.group(4)), int(requests.group(5))  # succeeded, failed
    first = f"{codes.group(0)}; {requests.group(0)}" if errors else ""
    data = re.search(r"\((\d+)\) data", output)
    if response_bytes and data is not None:
        served = int(data.group(1)) // response_bytes
        if served < ok:
            first = first or f"{ok - served} answers with a grpc-status other than OK"
            errors += ok - served
            ok = served
    return ok, errors, first


def run_h2load(
    target: Target,
    pid: int,
    body_file: Path,
    headers: Mapping[str, str],
    response_bytes: int | None,
    concurrency: int,
    args: argparse.Namespace,
    work: Path,
) -> Part:
    log_file = work / "h2load.log"
    log_file.unlink(missing_ok=True)
    command = h2load_command(
        target,
        body_file,
        headers,
        concurrency,
        args.duration,
        args.warmup,
        args.client_cpus,
        log_file,
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(args.warmup)
    cpu_start = tree_cpu(pid)
    output, _ = process.communicate(timeout=args.duration + args.warmup + 120)
    cpu = tree_cpu(pid) - cpu_start
    ok, errors, first = parse_h2load(output, response_bytes)
    latencies = []
    with contextlib.suppress(OSError):
        for line in log_file.read_text().splitlines():
            fields = line.split("\t")
            if len(fields) == 3 and fields[1].startswith("2"):
                latencies.append(int(fields[2]))
    if process.returncode != 0 and not first:
        first = f"h2load exited {process.returncode}: {tail(output)}"
    return Part(ok, errors, args.duration, cpu, latencies, first)


# --- the report ----------------------------------------------------------------------------


def ratio(value: float, base: float) -> str:
    if not (base > 0 and np.isfinite(value) and np.isfinite(base)):
        return "-"
    return f"{value / base:.2f}"


def number(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}" if np.isfinite(value) else "-"


@dataclass
class Row:
    target: Target | None
    server: str
    transport: str
    batching: str
    status: str = "ok"
    check: str = ""
    results: dict[int, Result] = field(default_factory=dict)

    @property
    def is_peer(self) -> bool:
        return self.server != LOSSSERVE

    @property
    def grpc(self) -> bool:
        return self.target is not None and self.target.transport.grpc

    def throughput(self, concurrency: int) -> float:
        result = self.results.get(concurrency)
        return result.throughput if result is not None else float("nan")


def best(rows: Sequence[Row], concurrency: int, grpc_only: bool = False) -> float:
    values = [
        r.throughput(concurrency)
        for r in rows
        if r.is_peer and r.status == "ok" and (r.grpc or not grpc_only)
    ]
    values = [v for v in values if np.isfinite(v)]
    return max(values, default=float("nan"))


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| server | transport | batching | req/s c=1 | req/s c=8 | req/s c=32 | p50 ms c=1 "
        "| p99 ms c=1 | CPU ms/req c=32 | vs best peer c=1/8/32 | vs best gRPC peer c=1/8/32 "
        "| rows/run c=32 | errors |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---|",
    ]
    bests = {c: best(rows, c) for c in CONCURRENCIES}
    grpc_bests = {c: best(rows, c, grpc_only=True) for c in CONCURRENCIES}
    for row in rows:
        if row.status != "ok":
            lines.append(
                f"| {row.server} | {row.transport} | {row.batching} | n/a: {row.status} "
                "| | | | | | | | | |"
            )
            continue
        r1 = row.results[1]
        r32 = row.results[32]
        vs = "/".join(ratio(row.throughput(c), bests[c]) for c in CONCURRENCIES)
        vs_grpc = (
            "/".join(ratio(row.throughput(c), grpc_bests[c]) for c in CONCURRENCIES)
            if not row.is_peer
            else ""
        )
        rows_per_run = f"{r32.rows / r32.runs:.2f}" if r32.runs else ""
        errors = sum(row.results[c].errors for c in CONCURRENCIES)
        first = next(
            (p.first_error for c in CONCURRENCIES for p in row.results[c].parts if p.first_error),
            "",
        )
        lines.append(
            f"| {row.server} | {row.transport} | {row.batching} | "
            + " | ".join(number(row.throughput(c)) for c in (1, 8, 32))
            + f" | {number(r1.percentile_ms(50), 3)} | {number(r1.percentile_ms(99), 3)} "
            f"| {number(r32.cpu_ms_per_request, 3)} | {vs} | {vs_grpc} | {rows_per_run} "
            f"| {errors}{f' ({first[:60]})' if errors else ''} |"
        )
    return lines


def heavy_table(rows: Sequence[Row]) -> list[str]:
    lines = [
        f"| lossserve, heavy model | batching | req/s c={HEAVY_CONCURRENCY} "
        f"| p50 ms c={HEAVY_CONCURRENCY} | p99 ms c={HEAVY_CONCURRENCY} | CPU ms/req "
        "| rows/run | on / off | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    offs = {
        r.transport: r.throughput(HEAVY_CONCURRENCY)
        for r in rows
        if r.batching == "off" and r.status == "ok"
    }
    for row in rows:
        if row.status != "ok":
            lines.append(f"| {row.transport} | {row.batching} | n/a: {row.status} | | | | | | |")
            continue
        r = row.results[HEAVY_CONCURRENCY]
        factor = ratio(r.throughput, offs.get(row.transport, float("nan")))
        lines.append(
            f"| {row.transport} | {row.batching} | {number(r.throughput)} "
            f"| {number(r.percentile_ms(50), 3)} | {number(r.percentile_ms(99), 3)} "
            f"| {number(r.cpu_ms_per_request, 3)} "
            f"| {f'{r.rows / r.runs:.2f}' if r.runs else ''} "
            f"| {factor if row.batching == 'on' else ''} | {r.errors} |"
        )
    return lines


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Throughput and latency of lossserve against MLServer, KServe, LitServe and "
        "a naive FastAPI endpoint serving the same ONNX model, loaded with h2load.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model-repository",
        type=Path,
        help="take the latest version of --model from here instead of training one",
    )
    parser.add_argument("--model", default="digits", help="the model's name")
    parser.add_argument("--venv", type=Path, default=Path("/work/peers-venv"), help="peer venvs")
    parser.add_argument("--python", default="python3", help="the python that makes the venvs")
    parser.add_argument(
        "--peers",
        default=",".join(PINS),
        help=f"comma-separated peers to run, of {','.join(PINS)} (empty: lossserve alone)",
    )
    parser.add_argument("--server-cpus", default="0", help="CPUs every server is pinned to")
    parser.add_argument(
        "--client-cpus", default=None, help="CPUs h2load is pinned to (default: all the others)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--duration", type=float, default=2.0, help="measured seconds a setting")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds a setting")
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s settings")
    parser.add_argument("--heavy", action="store_true", help="add the compute-heavy model")
    parser.add_argument(
        "--heavy-ms", type=float, default=1.0, help="single-row run time the heavy model aims at"
    )
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 1.0, 0.3
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--rounds and --duration must be positive, --warmup at least 0")
    args.peers = [p for p in args.peers.split(",") if p]
    for peer in args.peers:
        if peer not in PINS:
            parser.error(f"--peers: unknown peer {peer!r}, expected some of {','.join(PINS)}")
    online = sorted(os.sched_getaffinity(0))
    args.server_cpus = parse_cpus(args.server_cpus)
    if args.client_cpus is None:
        args.client_cpus = [c for c in online if c not in args.server_cpus] or online
    else:
        args.client_cpus = parse_cpus(args.client_cpus)
    if shutil.which("h2load") is None:
        raise SystemExit(
            "h2load not found: apt-get update && apt-get install -y nghttp2-client "
            "(Debian's nghttp2 load generator)"
        )
    return args


@dataclass
class Prepared:
    """A checked target and what h2load sends it."""

    target: Target
    row: Row
    pid: int
    """The server's process (its whole tree is counted for CPU)."""
    body_file: Path
    headers: dict[str, str]
    answer_bytes: int | None
    """An OK gRPC answer's DATA bytes (None over REST)."""


@dataclass
class Models:
    source: Path
    """The digits version folder (model.onnx, card.json)."""
    card: dict[str, Any]
    serving: Path
    names: dict[str, str]
    """batching "on" / "off" -> served digits model."""
    session: ort.InferenceSession
    heavy_names: dict[str, str] = field(default_factory=dict)
    heavy_session: ort.InferenceSession | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def served(self) -> list[str]:
        return [*self.names.values(), *self.heavy_names.values()]


def prepare_models(args: argparse.Namespace, work: Path, row: np.ndarray) -> Models:
    """The digits model (trained, or from --model-repository), and the serving repository
    with its batching-on and -off copies (and the heavy model's, with --heavy)."""
    if args.model_repository is not None:
        source = inference.latest_version(args.model_repository / args.model)
        print(f"model: {source}")
    else:
        source = inference.train(work / "trained", args.model)
    card = json.loads((source / "card.json").read_text())
    serving = work / "serving"
    on = inference.batching_on(card)
    names = {"on": f"{args.model}-batching-on", "off": f"{args.model}-batching-off"}
    inference.write_version(source, serving, names["on"], on)
    inference.write_version(source, serving, names["off"], inference.BATCHING_OFF)
    session = ort.InferenceSession(
        str(source / "model.onnx"), inference.session_options(1), providers=[CPU]
    )
    models = Models(source, card, serving, names, session)
    models.notes.append(
        f"model {card['name']} v{card['version']} ({card['architecture']}, input FP32 [1, 64], "
        f"one real digits row a request); lossserve batching on: {inference.describe(on)}; "
        "ONNX Runtime at 1 intra-op thread everywhere"
    )
    if args.heavy:
        heavy, width, single = build_heavy(args.heavy_ms, row)
        heavy_source = write_heavy_source(work / "heavy-source", heavy, card)
        models.heavy_names = {"on": "heavy-batching-on", "off": "heavy-batching-off"}
        inference.write_version(heavy_source, serving, models.heavy_names["on"], on)
        inference.write_version(
            heavy_source, serving, models.heavy_names["off"], inference.BATCHING_OFF
        )
        models.heavy_session = ort.InferenceSession(
            heavy, inference.session_options(1), providers=[CPU]
        )
        models.notes.append(
            f"heavy model: MLP 64-{width}-{width}-{width}-10, {single:.2f} ms a single row "
            "in-process at one thread"
        )
    return models


def lossserve_env() -> dict[str, str]:
    """``bench/inference.py``'s server environment, at one intra-op thread."""
    env = {
        **os.environ,
        "LOSSSERVE_DEVICES": '["cpu"]',
        "LOSSSERVE_MODEL_THREADS": "1",
        "LOSSSERVE_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    env.pop("LOSSSERVE_ADMIN_TOKEN", None)
    return env


def lossserve_targets(server: Server, names: Mapping[str, str], heavy: bool) -> list[Row]:
    out = []
    for transport in (OIP_GRPC, OIP_BINARY, OIP_JSON):
        port = server.grpc_port if transport.grpc else server.http_port
        for batching, model in names.items():
            target = Target(LOSSSERVE, transport, port, model, batching, heavy)
            out.append(Row(target, LOSSSERVE, transport.name, batching))
    return out


def start_servers(
    args: argparse.Namespace, models: Models, work: Path, stack: contextlib.ExitStack
) -> tuple[dict[str, Server], list[Row]]:
    """lossserve and every peer in ``--peers``, all pinned to the server CPUs and stopped
    when ``stack`` closes; the rows to measure (a peer that failed: rows with its reason)."""
    log = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (the stack closes it)
    with pinned(args.server_cpus):  # start_server builds its own command line: no taskset
        lossserve = _server.start_server(
            ["--model-repository", str(models.serving)], lossserve_env(), log
        )
    stack.callback(_server.stop_server, lossserve)
    ready = ["/v2/health/ready"] + [f"/v2/models/{m}/ready" for m in models.served]
    _server.wait_ready(lossserve, ready, timeout=180)
    servers = {LOSSSERVE: lossserve}
    rows = lossserve_targets(lossserve, models.names, heavy=False)
    for key in args.peers:
        name = PEER_NAMES[key]
        try:
            python = ensure_venv(args.venv, key, args.python)
            peer = peer_command(key, python, models.source / "model.onnx", args.model, work)
            peer_log = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
            server = start_peer(peer, args.server_cpus, {**os.environ, **peer.env}, peer_log)
            stack.callback(stop_group, server)
            _server.wait_ready(server, peer.ready, timeout=180)
        except (UnavailableError, RuntimeError, OSError) as exc:
            reason = tail(str(exc), 2)[:160]
            print(f"{name}: unavailable: {reason}", flush=True)
            rows += [Row(None, name, t.name, "-", reason) for t in PEER_TRANSPORTS[key]]
            continue
        servers[name] = server
        for transport in PEER_TRANSPORTS[key]:
            port = server.grpc_port if transport.grpc else server.http_port
            target = Target(name, transport, port, args.model)
            rows.append(Row(target, name, transport.name, "-"))
    if models.heavy_names:
        rows += lossserve_targets(lossserve, models.heavy_names, heavy=True)
    return servers, rows


def prepare(
    rows: Sequence[Row],
    models: Models,
    servers: Mapping[str, Server],
    digits: Sequence[np.ndarray],
    work: Path,
) -> list[Prepared]:
    """Check every target once against in-process ONNX Runtime, then write its request
    file (the first checked row's exact bytes); a target that fails keeps its reason as its
    row's status and is not timed."""
    check_rows = [digits[0], digits[1], digits[100], digits[1000]]
    prepared: list[Prepared] = []
    for row in rows:
        target = row.target
        if target is None:
            continue
        session = models.heavy_session if target.heavy else models.session
        if session is None:
            raise RuntimeError("the heavy model has no in-process session")
        try:
            row.check, first = check(target, session, check_rows)
        except UnavailableError as exc:
            row.status = tail(str(exc), 1)[:160]
        print(f"check {target.label}: {row.check or row.status}", flush=True)
        if row.status != "ok":
            continue
        body_file = work / f"body-{len(prepared)}.bin"
        body_file.write_bytes(first.body)
        _, headers = target.transport.encode(target.model, digits[0])
        pid = servers[target.server].process.pid
        prepared.append(Prepared(target, row, pid, body_file, headers, first.data_bytes))
    return prepared


def measure(
    prepared: Sequence[Prepared], lossserve: Server, args: argparse.Namespace, work: Path
) -> None:
    """Every (target, concurrency) setting, in ``--rounds`` interleaved rounds (the order
    reversed every other round), into each row's results."""
    settings = [
        (entry, c)
        for c in CONCURRENCIES
        for entry in prepared
        if not entry.target.heavy or c == HEAVY_CONCURRENCY
    ]
    print(
        f"{len(settings)} settings x {args.rounds} round(s) x "
        f"{args.duration + args.warmup:g} s; servers on CPUs {cpu_list(args.server_cpus)}, "
        f"h2load on CPUs {cpu_list(args.client_cpus)}",
        flush=True,
    )
    for round_ in range(args.rounds):
        for entry, concurrency in settings[:: 1 if round_ % 2 == 0 else -1]:
            target = entry.target
            before = model_stats(lossserve, target)
            part = run_h2load(
                target,
                entry.pid,
                entry.body_file,
                entry.headers,
                entry.answer_bytes,
                concurrency,
                args,
                work,
            )
            result = entry.row.results.setdefault(concurrency, Result())
            result.parts.append(part)
            after = model_stats(lossserve, target)
            if before is not None and after is not None:
                result.rows += after[0] - before[0]
                result.runs += after[1] - before[1]
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)


def model_stats(server: Server, target: Target) -> tuple[int, int] | None:
    if target.server != LOSSSERVE:
        return None
    return inference.model_stats(server, target.model)


def idle_cpu(servers: Mapping[str, Server], seconds: float) -> dict[str, float]:
    start = {name: tree_cpu(s.process.pid) for name, s in servers.items()}
    time.sleep(seconds)
    return {
        name: 100 * (tree_cpu(s.process.pid) - start[name]) / seconds for name, s in servers.items()
    }


def idle_text(idle: Mapping[str, float]) -> list[str]:
    return [f"{name} {value:.1f}%" for name, value in idle.items()]


def write_json(
    args: argparse.Namespace,
    rows: Sequence[Row],
    heavy_rows: Sequence[Row],
    idle: Mapping[str, float],
    notes: Sequence[str],
) -> None:
    def dump(row: Row) -> dict[str, Any]:
        return {
            "server": row.server,
            "transport": row.transport,
            "batching": row.batching,
            "status": row.status,
            "check": row.check,
            "results": {str(c): r.summary() for c, r in sorted(row.results.items())},
        }

    document = {
        "settings": {
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "server_cpus": args.server_cpus,
            "client_cpus": args.client_cpus,
            "pins": PINS,
        },
        "idle_cpu_percent": dict(idle),
        "notes": list(notes),
        "rows": [dump(r) for r in rows],
        "heavy": [dump(r) for r in heavy_rows],
    }
    args.json.write_text(json.dumps(finite(document), indent=2, allow_nan=False) + "\n")


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="lossserve-peers-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        digits = inference.digits_rows()
        models = prepare_models(args, work, digits[0])
        servers, all_rows = start_servers(args, models, work, stack)
        os.sched_setaffinity(0, args.client_cpus)  # this process waits beside h2load
        notes = list(models.notes)
        want = set(args.server_cpus)  # compared as sets: the kernel writes 0,1 as "0-1"
        pinning = {name: tree_affinity(s.process.pid) for name, s in servers.items()}
        stray = {  # a subset is fine: lossserve pins each frontend to one of the CPUs
            name: sorted(lists)
            for name, lists in pinning.items()
            if any(not set(parse_cpus(cpus)) <= want for cpus in lists) or not lists
        }
        notes.append(
            f"warning: server threads allowed on other CPUs: {stray}"
            if stray
            else f"every server thread is allowed on CPUs {cpu_list(args.server_cpus)} only"
        )
        prepared = prepare(all_rows, models, servers, digits, work)
        idle = idle_cpu(servers, seconds=2.0)
        print("idle CPU of each server (% of one CPU): " + ", ".join(idle_text(idle)))
        cpu = TreeShare([s.process.pid for s in servers.values()])
        measuring = time.perf_counter()
        measure(prepared, servers[LOSSSERVE], args, work)
        share = inference.cpu_share(cpu)
        seconds = time.perf_counter() - measuring

    rows = [r for r in all_rows if r.target is None or not r.target.heavy]
    heavy_rows = [r for r in all_rows if r.target is not None and r.target.heavy]
    print()
    print("\n".join(notes))
    print()
    print("\n".join(table(rows)))
    if heavy_rows:
        print()
        print("\n".join(heavy_table(heavy_rows)))
    print()
    print(
        "req/s: 2xx answers (gRPC: grpc-status OK) a second; 'vs best peer': this row's req/s "
        "over the fastest peer's at the same concurrency; CPU ms/req: the server's whole "
        "process tree; rows/run: lossserve's rows a model run (warm-up included)"
    )
    whole = time.perf_counter() - started
    print(f"{share}; measurements {seconds:.0f} s, whole run {whole:.0f} s")
    if args.json is not None:
        write_json(args, rows, heavy_rows, idle, notes)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
