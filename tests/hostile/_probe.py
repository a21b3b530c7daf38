"""Liveness prober, run as its own process (``python -m tests.hostile._probe HTTP GRPC``), so
that the test process's GIL (busy encoding or sending a heavy request) never delays a probe.

It warms one connection per transport, prints ``ready``, then alternates ``GET
/v2/health/live`` and gRPC ``ServerLive`` every 50 ms until its stdin closes, and prints one
JSON line: ``{"rest": [[start, seconds], ...], "grpc": [...]}`` (``start`` on the
``time.monotonic`` clock, which every process shares; ``seconds`` is null for a failed probe).
"""

from __future__ import annotations

import sys
import threading
import time

import grpc
import httpx
import orjson

from lossserve_proto.inference import grpc_service_pb2 as oip
from lossserve_proto.inference import grpc_service_pb2_grpc as oip_grpc


def main(http_url: str, grpc_url: str) -> None:
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    rest: list[tuple[float, float | None]] = []
    rpc: list[tuple[float, float | None]] = []
    with (
        httpx.Client(base_url=http_url, timeout=2.0) as client,
        grpc.insecure_channel(grpc_url) as channel,
    ):
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        client.get("/v2/health/live")
        stub.ServerLive(oip.ServerLiveRequest(), timeout=2.0)
        print("ready", flush=True)
        while not done.wait(0.05):
            start = time.monotonic()
            try:
                ok = client.get("/v2/health/live").status_code == 200
            except httpx.HTTPError:
                ok = False
            rest.append((start, time.monotonic() - start if ok else None))
            start = time.monotonic()
            try:
                ok = stub.ServerLive(oip.ServerLiveRequest(), timeout=2.0).live
            except grpc.RpcError:
                ok = False
            rpc.append((start, time.monotonic() - start if ok else None))
    print(orjson.dumps({"rest": rest, "grpc": rpc}).decode(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
