"""The test processes start servers with a ``preexec_fn`` (``bench/_server.py``'s
``die_with_parent``), that is with fork(), while their own grpc channels are busy. grpc's
fork handlers then abort about 1 child in 10 before it execs (-6, "epoll_wait error: Bad file
descriptor"), which failed a server start now and then in CI; ``tests/conftest.py`` turns
those handlers off before grpc loads. This holds the suite to it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from concurrent import futures

import grpc

from bench._server import die_with_parent


def test_servers_started_while_grpc_is_busy_are_not_aborted_in_the_fork() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t", {"E": echo}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    done = threading.Event()

    call = channel.unary_unary("/t/E")

    def busy() -> None:  # keeps grpc's poller working while the forks happen
        while not done.is_set():
            with contextlib.suppress(grpc.RpcError):
                call(b"ping", timeout=1)

    thread = threading.Thread(target=busy, daemon=True)
    thread.start()
    try:
        codes = [
            subprocess.run([sys.executable, "-c", ""], preexec_fn=die_with_parent()).returncode
            for _ in range(100)
        ]
    finally:
        done.set()
        thread.join()
        channel.close()
        server.stop(None)
    assert codes.count(0) == len(codes), sorted(set(codes))
