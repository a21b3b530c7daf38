"""Running ``lossserve serve`` as a subprocess for the benchmarks in this folder.

Shared by ``bench/inference.py``, ``bench/loss_service.py`` and ``tests/integration``. It
imports nothing from ``service`` or ``losses``: ``bench/inference.py`` must not load the
server's generated ``inference`` protobuf package, and ``bench/loss_service.py`` imports
``losses`` only once this folder is off ``sys.path``.
"""

from __future__ import annotations

import os

# grpc's fork handlers (on unless this says otherwise, read once when grpc loads) restart its
# poller in a forked child; the child that ``die_with_parent``'s preexec_fn runs in then
# closes that poller's descriptor before exec and grpc aborts it (-6, "epoll_wait error: Bad
# file descriptor": 1 in 10 forks while a channel is busy, grpc/grpc#43055). A process that
# uses grpc and starts servers from here must import this module first (tests/conftest.py
# sets the same).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import atexit  # after the environment grpc reads
import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    http_port: int
    grpc_port: int

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log_tail(self, lines: int = 30) -> str:
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that, on Linux, has the kernel send the child (a server, or the nginx
    of ``tests/integration/test_replicas.py``) SIGTERM if this process dies, even killed."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def set_death_signal() -> None:  # runs in the child, between fork and exec
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_death_signal


SERVER_PROGRAM = (sys.executable, "-m", "lossserve.cli")
"""The ``lossserve`` command of this interpreter's environment, run from the repository."""


def start_server(
    args: Sequence[str],
    env: Mapping[str, str],
    log: IO[bytes],
    *,
    program: Sequence[str] = SERVER_PROGRAM,
    cwd: Path = ROOT,
) -> Server:
    """``program serve`` (``python -m lossserve.cli serve``) on two free loopback ports, with
    ``args`` appended, run from ``cwd`` in ``env`` (the whole environment), output to
    ``log``."""
    http_port, grpc_port = free_port(), free_port()
    while grpc_port == http_port:
        grpc_port = free_port()
    command = [
        *program,
        "serve",
        "--host",
        "127.0.0.1",
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        *args,
    ]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent(),
    )
    server = Server(process, log, http_port, grpc_port)
    atexit.register(stop_server, server)  # a second net behind the caller's finally
    return server


def wait_ready(server: Server, paths: Sequence[str], timeout: float) -> None:
    """Poll the server's HTTP ``paths`` (e.g. ``/v2/health/ready``) until every one answers
    200; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    urls = [f"http://{server.http_url}{path}" for path in paths]
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if all(httpx.get(url, timeout=1.0).status_code == 200 for url in urls):
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server was not ready within {timeout:.0f} s:\n{server.log_tail()}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()  # SIGTERM: the server drains and stops both transports
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextlib.contextmanager
def running_server(
    args: Sequence[str],
    env: Mapping[str, str],
    ready_paths: Sequence[str],
    timeout: float = 120,
    *,
    program: Sequence[str] = SERVER_PROGRAM,
    cwd: Path = ROOT,
) -> Iterator[Server]:
    """A started server (see :func:`start_server`), ready on ``ready_paths`` (see
    :func:`wait_ready`), stopped on exit."""
    with tempfile.TemporaryFile() as log:
        server = start_server(args, env, log, program=program, cwd=cwd)
        try:
            wait_ready(server, ready_paths, timeout=timeout)
            yield server
        finally:
            stop_server(server)


class CpuShare:
    """How busy the CPUs were between construction and :meth:`stop`, and how much of that
    was other processes (all CPU time minus this process's and the server's), from /proc.

    ``children``: count the server's waited-for children's CPU time as the server's too.
    """

    def __init__(self, server_pid: int, *, children: bool = False) -> None:
        self.server_pid = server_pid
        self.children = children
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        last = 15 if self.children else 13  # utime, stime (, cutime, cstime)
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
            with open(f"/proc/{self.server_pid}/stat") as f:
                server = [int(v) for v in f.read().rsplit(")", 1)[1].split()[11:last]]
        except (OSError, ValueError, IndexError):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        own = os.times()
        return (
            sum(fields) / tick,
            (sum(fields) - idle) / tick,
            sum(server) / tick + own.user + own.system,
        )

    def stop(self) -> tuple[float, float] | None:
        """(busy, others): percentages of all CPU time since construction; None if unknown."""
        end = self._sample()
        if self.start is None or end is None or end[0] <= self.start[0]:
            return None
        total, busy, ours = (e - s for e, s in zip(end, self.start, strict=True))
        others = max(0.0, busy - ours)
        return 100 * busy / total, 100 * others / total
