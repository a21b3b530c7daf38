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
