"""The peer of ``bench/loss_service.py``: the loss endpoint a user would write by hand.

    python bench/raw_loss_peer.py serve --host H --http-port P [--grpc-port Q (ignored)]

FastAPI on uvicorn (httptools, uvloop), one route: ``POST /focal`` takes the raw float32
logits then the raw int64 targets (``X-Shape: N,C``), computes ``losses.derivatives``
(focal, gamma 2, mean) on the event loop, and answers the raw float32 gradient with the
value in ``X-Loss``. No validation, no limits, no workers: the floor a service is measured
against. torch's intra-op threads follow ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from pathlib import Path

import torch
import uvicorn
from fastapi import FastAPI, Request, Response

here = Path(__file__).resolve().parent  # bench/losses.py would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
losses = importlib.import_module("losses")
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
app = FastAPI()


@app.get("/health")
async def health() -> Response:
    return Response()


@app.post("/focal")
async def focal(request: Request) -> Response:
    n, c = (int(part) for part in request.headers["x-shape"].split(","))
    body = await request.body()
    with warnings.catch_warnings():  # read-only bytes: no loss writes its inputs
        warnings.simplefilter("ignore", UserWarning)
        logits = torch.frombuffer(body, dtype=torch.float32, count=n * c).reshape(n, c)
        targets = torch.frombuffer(body, dtype=torch.int64, count=n, offset=4 * n * c)
    d = losses.derivatives("focal", logits, targets, gamma=2.0)
    return Response(d.grad.numpy().tobytes(), headers={"x-loss": repr(float(d.value))})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.http_port,
        http="httptools",
        loop="uvloop",
        log_level="warning",
    )
