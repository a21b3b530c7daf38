"""What one small REST inference costs in Python, layer by layer, without sockets: the
in-process part of the REST rows of ``bench/peers.py``.

    python bench/rest_floor.py [--requests 2000] [--rounds 7] [--cpu 0] [--model-repository DIR]

Trains the digits model (or takes the latest version of ``digits`` from
``--model-repository``), then, pinned to ``--cpu``, calls each of these ``--requests`` times
a round, the calls interleaved in ``--rounds`` rounds, and prints the best round's CPU time a
call (this thread's CPU clock, so that a busy neighbour on a shared machine counts less):

- ``ORT run``: the model's ONNX Runtime session, one row (``LoadedModel.run``);
- ``DataPlane.infer``: lossserve's inference below the transports (costs, model checks, the
  batcher running it inline, output selection);
- ``lossserve protocol, OIP binary`` / ``OIP JSON``: the request's bytes fed to the HTTP
  protocol that ``lossserve serve`` runs (``service/api/http_protocol.py``): httptools
  parsing, then the inference route called from the parser's callbacks, its answer written
  to a transport that keeps it. This is the path a small inference takes on the wire; it
  includes the HTTP parsing that the ASGI rows below leave to uvicorn;
- ``lossserve ASGI, OIP binary`` / ``OIP JSON``: lossserve's whole REST app (request ID,
  metrics, admission, body reading, decoding, inference, encoding), one-row binary-extension
  and JSON requests, as the ``OIP REST`` rows of ``bench/peers.py`` send them;
- ``naive FastAPI, JSON``: ``bench/peers_servers/fastapi_ort.py``'s app, the same row.

The ASGI calls get the body in one ``http.request`` message and their answer is kept, not
written: what uvicorn and the kernel add on the wire is outside this figure (about the same
for both apps, which run on the same uvicorn). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.update(
    {
        "LOSSSERVE_DEVICES": '["cpu"]',
        "LOSSSERVE_MODEL_THREADS": "1",
        "LOSSSERVE_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
    }
)
os.environ.pop("LOSSSERVE_ADMIN_TOKEN", None)

Call = Callable[[], Awaitable[Any]]
MODEL = "digits-batching-off"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="calls a round, each way")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cpu", type=int, default=0, help="the CPU this process is pinned to")
    parser.add_argument("--model-repository", type=Path, help="take digits from here")
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)  # the child's folder
    return parser.parse_args()


def asgi_call(app: Any, path: str, body: bytes, headers: dict[str, str]) -> Call:
    """One POST of ``body`` to ``app``; the answer's status is checked to be 200."""
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw += [(b"content-length", str(len(body)).encode()), (b"host", b"bench")]
    message = {"type": "http.request", "body": body, "more_body": False}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(answer: dict[str, Any]) -> None:
        if answer["type"] == "http.response.start" and answer["status"] != 200:
            raise RuntimeError(f"{path}: expected 200, got {answer}")
        sent.append(answer)

    async def call() -> None:
        sent.clear()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        await app(scope, receive, send)

    return call


class _Kept(asyncio.Transport):
    """A connection's transport that keeps the answer written to it (no socket)."""

    answered: asyncio.Future[bytes]

    def write(self, data: Any) -> None:
        self.answered.set_result(bytes(data))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def protocol_call(app: Any, state: Any, path: str, body: bytes, headers: dict[str, str]) -> Call:
    """One POST of ``body`` as bytes fed to the HTTP protocol ``lossserve serve`` runs
    (httptools parsing, the route called from the parser's callbacks, the answer written to
    the transport); its status is checked to be 200."""
    import uvicorn
    from uvicorn.server import ServerState

    from lossserve.api.http_protocol import http_protocol

    settings = state.settings
    protocol_class = http_protocol(
        settings.body_timeout_s, app.whole, state.metrics, settings.max_body_bytes
    )
    config = uvicorn.Config(
        app, http=protocol_class, log_config=None, access_log=False, lifespan="off"
    )
    config.load()
    protocol = protocol_class(config, ServerState(), {})
    transport = _Kept()
    protocol.connection_made(transport)
    lines = [f"POST {path} HTTP/1.1", "host: bench", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def call() -> None:
        transport.answered = asyncio.get_running_loop().create_future()
        protocol.data_received(data)
        answer = await transport.answered
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{path}: expected 200, got {answer[:200]!r}")

    return call


def naive_app(model: Path) -> Any:
    """``fastapi_ort.py``'s app (it reads the model from its command line when imported)."""
    argv = sys.argv
    sys.argv = ["fastapi_ort.py", str(model), "0"]
    sys.path.insert(0, str(ROOT / "bench" / "peers_servers"))
    try:
        import fastapi_ort  # type: ignore[import-not-found]
    finally:
        sys.argv = argv
    return fastapi_ort.app


async def measure(ways: dict[str, Call], requests: int, rounds: int) -> dict[str, float]:
    for call in ways.values():  # warm-up, and every answer checked once
        for _ in range(200):
            await call()
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(rounds):
        for name, call in ways.items():
            start = time.thread_time()
            for _ in range(requests):
                await call()
            best[name] = min(best[name], (time.thread_time() - start) / requests * 1e6)
    return best


async def run(args: argparse.Namespace, work: Path) -> None:
    from lossserve.api.oip_rest import decode_infer_request
    from lossserve.api.rest import create_app
    from lossserve.core.documents import load_json_object
    from lossserve.core.state import ServiceState
    from lossserve.settings import Settings

    def prepared(name: str) -> tuple[bytes, dict[str, str]]:
        headers = json.loads((work / f"{name}.headers").read_text())
        return (work / f"{name}.body").read_bytes(), headers

    state = ServiceState.create(Settings(model_repository=work / "serving"))
    await state.start()
    try:
        app = create_app(state)
        path = f"/v2/models/{MODEL}/infer"
        live = state.models.model(MODEL)
        binary, binary_headers = prepared("binary")
        document, json_headers = prepared("json")
        naive, naive_headers = prepared("naive")
        split = int(binary_headers["Inference-Header-Content-Length"])
        request, _ = decode_infer_request(
            load_json_object(binary[:split], "body"),
            memoryview(binary)[split:],
            model=MODEL,
            version="",
            max_elements=10**7,
        )

        async def ort_run() -> None:
            live.run(dict(request.inputs))

        ways: dict[str, Call] = {
            "ORT run": ort_run,
            "DataPlane.infer": lambda: state.plane.infer(request),
            "lossserve protocol, OIP binary": protocol_call(
                app, state, path, binary, binary_headers
            ),
            "lossserve protocol, OIP JSON": protocol_call(app, state, path, document, json_headers),
            "lossserve ASGI, OIP binary": asgi_call(app, path, binary, binary_headers),
            "lossserve ASGI, OIP JSON": asgi_call(app, path, document, json_headers),
            "naive FastAPI, JSON": asgi_call(
                naive_app(work / "serving" / MODEL / "1" / "model.onnx"),
                "/predict",
                naive,
                naive_headers,
            ),
        }
        best = await measure(ways, args.requests, args.rounds)
    finally:
        await state.stop()
    naive_us = best["naive FastAPI, JSON"]
    print(f"\none row a call, CPU {args.cpu}, best of {args.rounds} rounds x {args.requests}\n")
    print("| in process | CPU us a call | vs naive FastAPI |")
    print("|---|---:|---:|")
    for name, us in best.items():
        print(f"| {name} | {us:.1f} | {us / naive_us:.2f}x |")


def prepare(work: Path, repository: Path | None) -> None:
    """The model and the request bodies, in a process of their own: ``peers`` loads
    tritonclient's ``inference`` protobuf package, which lossserve's would clash with."""
    sys.path.insert(0, str(ROOT / "bench"))
    import inference
    import numpy as np
    import peers
    from sklearn.datasets import load_digits

    if repository is not None:
        source = inference.latest_version(repository / "digits")
    else:
        source = inference.train(work / "trained", "digits")
    inference.write_version(source, work / "serving", MODEL, inference.BATCHING_OFF)
    row = load_digits().data[:1].astype(np.float32)
    for name, encode in (
        ("binary", peers.oip_binary_request),
        ("json", peers.oip_json_request),
        ("naive", peers.instances_request),
    ):
        body, headers = encode(MODEL, row)
        (work / f"{name}.body").write_bytes(body)
        (work / f"{name}.headers").write_text(json.dumps(headers))


def main() -> None:
    args = parse_args()
    if args.prepare is not None:
        prepare(args.prepare, args.model_repository)
        return
    with tempfile.TemporaryDirectory() as work:
        command = [sys.executable, __file__, "--prepare", work]
        if args.model_repository is not None:
            command += ["--model-repository", str(args.model_repository)]
        subprocess.run(command, check=True)
        # this folder off the path: its losses.py is not the library
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
        os.sched_setaffinity(0, {args.cpu})
        import uvloop

        uvloop.run(run(args, Path(work)))


if __name__ == "__main__":
    main()
