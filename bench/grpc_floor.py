"""What a gRPC call costs Python's servers before any handler runs: the floor under every
gRPC row of ``bench/peers.py``.

    python bench/grpc_floor.py [--duration 4] [--rounds 2] [--server-cpus 0] [--client-cpus 1]

Serves ``inference.GRPCInferenceService/ModelInfer`` with a handler that answers a fixed
13-byte message at once, in four ways, each in a process of its own pinned to
``--server-cpus``, and loads it with ``h2load`` (32 connections, one call in flight each,
pinned to ``--client-cpus``), the ways interleaved in ``--rounds`` rounds:

- ``aio``: a grpc.aio server on uvloop (as KServe and MLServer serve gRPC, and lossserve did);
- ``aio-interceptor``: the same with one pass-through server interceptor;
- ``threaded``: grpcio's threaded server, 64 threads, the handler a plain function;
- ``threaded+loop``: the threaded server whose handler hands each call to an event loop in
  another thread and waits for it (what :mod:`lossserve.api.grpc_threads` does).

Prints calls a second for each, and each over ``aio``. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

PORT = 50199
METHOD = "/inference.GRPCInferenceService/ModelInfer"
WAYS = ("aio", "aio-interceptor", "threaded", "threaded+loop")

SERVER = r"""
import asyncio, sys, threading
from concurrent import futures
import grpc, uvloop

WAY, PORT = sys.argv[1], int(sys.argv[2])
ANSWER = b"\x0a\x05digits"
SERVICE = "inference.GRPCInferenceService"


def handlers(behavior):
    return {"ModelInfer": grpc.unary_unary_rpc_method_handler(behavior)}


def register(server, behavior):
    table = handlers(behavior)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, table),))
    server.add_registered_method_handlers(SERVICE, table)


class Pass(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, details):
        handler = await continuation(details)

        async def behavior(request, context):
            return await handler.unary_unary(request, context)

        return grpc.unary_unary_rpc_method_handler(behavior)


async def answer(request, context):
    return ANSWER


async def aio(interceptors):
    server = grpc.aio.server(interceptors=interceptors)
    register(server, answer)
    server.add_insecure_port(f"127.0.0.1:{PORT}")
    await server.start()
    await server.wait_for_termination()


def threaded(hop):
    behavior = lambda request, context: ANSWER
    if hop:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        behavior = lambda request, context: asyncio.run_coroutine_threadsafe(
            answer(request, context), loop
        ).result()
    server = grpc.server(futures.ThreadPoolExecutor(64), maximum_concurrent_rpcs=64)
    register(server, behavior)
    server.add_insecure_port(f"127.0.0.1:{PORT}")
    server.start()
    server.wait_for_termination()


if WAY == "aio":
    uvloop.run(aio(None))
elif WAY == "aio-interceptor":
    uvloop.run(aio([Pass()]))
else:
    threaded(WAY == "threaded+loop")
"""


def measure(way: str, args: argparse.Namespace, frame: Path) -> float:
    server = subprocess.Popen(
        ["taskset", "-c", args.server_cpus, sys.executable, "-c", SERVER, way, str(PORT)]
    )
    try:
        time.sleep(1.5)
        command = [
            *("taskset", "-c", args.client_cpus, "h2load", "-c", "32", "-m", "1"),
            *("-D", f"{args.duration:g}", "--warm-up-time", "1", "-d", str(frame)),
            *("-H", "content-type: application/grpc", "-H", "te: trailers"),
            f"http://127.0.0.1:{PORT}{METHOD}",
        ]
        out = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        server.terminate()
        server.wait()
    found = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    if found is None or " 0 2xx" in out:
        raise SystemExit(f"{way}: h2load answered\n{out}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds a way")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    args = parser.parse_args()
    frame = Path(f"/tmp/grpc-floor-{os.getpid()}.frame")
    message = b"\x0a\x06digits"  # model_name: "digits"
    frame.write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)
    results: dict[str, list[float]] = {way: [] for way in WAYS}
    for round_ in range(args.rounds):
        for way in WAYS if round_ % 2 == 0 else reversed(WAYS):
            results[way].append(measure(way, args, frame))
    frame.unlink()
    base = sum(results["aio"]) / len(results["aio"])
    print(f"empty unary handler, h2load -c 32 -m 1, {args.rounds} x {args.duration:g} s")
    print("| server | calls/s (each round) | mean | vs aio |")
    print("|---|---|---:|---:|")
    for way, rates in results.items():
        mean = sum(rates) / len(rates)
        each = ", ".join(f"{r:,.0f}" for r in rates)
        print(f"| {way} | {each} | {mean:,.0f} | {mean / base:.2f}x |")


if __name__ == "__main__":
    main()
