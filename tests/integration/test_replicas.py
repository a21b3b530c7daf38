"""Two real replicas behind a real nginx running ``docker/nginx/nginx.conf``, the file the
compose deployment runs: load over HTTP and gRPC survives a replica killed mid-load, and
nginx retries the pure computations but never a model-repository call it already sent.

The test runs that very file (linked into a prefix directory) with its own
``deployment/upstreams.conf`` (the replicas' loopback ports) and ``deployment/listen.conf``
(free loopback ports), as ``docker-compose.yml`` mounts ``docker/nginx/compose/`` there.

What retries what when a replica dies:

- nginx resends any call that never reached a replica (refused connection), and an HTTP
  call of the pure computations even after the replica died under it, as long as no part
  of the answer had reached the client;
- a gRPC call is streamed to the replica, so nginx cannot resend one it sent; it answers
  UNAVAILABLE instead (trailers-only), which the client's retry policy sends again (the
  channel options of ``lossserve_client.client``: a gRPC service config retrying every pure
  call on UNAVAILABLE);
- an answer cut off after its headers had passed nginx (the replica died between writing its
  headers and its body) is the client's to retry: the HTTP client here retries an
  idempotent call once on a broken connection.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from bench._server import (
    ROOT,
    Server,
    die_with_parent,
    free_port,
    start_server,
    stop_server,
    wait_ready,
)
from tests.processes import SERVICE_ENV
from tests.service.models.builders import write_model

from ._mixed_load import mixed_load
from ._serving import served_requests

NGINX_CONF = ROOT / "docker" / "nginx" / "nginx.conf"


def nginx_binary() -> str:
    """The nginx executable; without one the test fails on CI and is skipped elsewhere."""
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)),
        None,
    )
    if found is None:
        message = "nginx is not installed: install nginx: apt-get install nginx (or nginx-light)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    prefix: Path
    http_port: int
    grpc_port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def access_log(self, entries: int = 0, timeout: float = 10) -> list[dict[str, Any]]:
        """The access log's entries, once it holds at least ``entries`` (nginx writes an
        entry after it has answered, so the last one may lag the client's answer)."""
        deadline = time.monotonic() + timeout
        while True:
            text = (self.prefix / "access.log").read_text()
            lines = [json.loads(line) for line in text.splitlines() if line.endswith("}")]
            if len(lines) >= entries or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)

    def error_log(self) -> str:
        return (self.prefix / "error.log").read_text()


@contextlib.contextmanager
def running_nginx(upstreams: str) -> Iterator[Nginx]:
    """nginx with ``docker/nginx/nginx.conf``, ``upstreams`` as its upstreams file, on two
    free loopback ports, unprivileged, in the foreground."""
    binary = nginx_binary()
    # Not pytest's tmp_path: nginx's workers may run as another user (nobody, when the test
    # runs as root) and must reach their temp directories.
    prefix = Path(tempfile.mkdtemp(prefix="lossserve-nginx-"))
    prefix.chmod(0o755)
    http_port, grpc_port = free_port(), free_port()
    (prefix / "nginx.conf").symlink_to(NGINX_CONF)
    (prefix / "deployment").mkdir()
    (prefix / "deployment" / "upstreams.conf").write_text(upstreams)
    (prefix / "deployment" / "listen.conf").write_text(
        f"listen 127.0.0.1:{http_port};\nlisten 127.0.0.1:{grpc_port} http2;\n"
    )
    command = [binary, "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-e", "stderr"]
    command += ["-g", "daemon off;"]
    with open(prefix / "access.log", "wb") as out, open(prefix / "error.log", "wb") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, preexec_fn=die_with_parent())
    nginx = Nginx(process, prefix, http_port, grpc_port)
    try:
        deadline = time.monotonic() + 10
        while not _accepts(http_port) or not _accepts(grpc_port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nginx did not start:\n{nginx.error_log()}")
            time.sleep(0.05)
        yield nginx
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(prefix, ignore_errors=True)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def upstreams(http: list[str], grpc_: list[str]) -> str:
    """An upstreams file like ``docker/nginx/compose/upstreams.conf``: each entry is an
    address and its parameters."""

    def block(name: str, servers: list[str], extra: str) -> str:
        lines = "".join(f"    server {server};\n" for server in servers)
        return f"upstream {name} {{\n{lines}    keepalive 16;\n{extra}}}\n"

    return block("lossserve_http", http, "    keepalive_timeout 4s;\n") + block(
        "lossserve_grpc", grpc_, ""
    )


PASSIVE = "max_fails=1 fail_timeout=5s"
"""The passive health checks of ``docker/nginx/compose/upstreams.conf``."""


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_model(root, "tiny", 1, seed=1)
    return root


@pytest.fixture(scope="module")
def replicas(repository: Path) -> Iterator[list[Server]]:
    """Two replicas serving the same model repository."""
    with contextlib.ExitStack() as stack:
        logs: list[IO[bytes]] = [stack.enter_context(tempfile.TemporaryFile()) for _ in "ab"]
        servers = [
            start_server(["--model-repository", str(repository)], SERVICE_ENV, log) for log in logs
        ]
        for server in servers:
            stack.callback(stop_server, server)
        for server in servers:
            wait_ready(server, ["/v2/health/ready", "/v2/models/tiny/ready"], timeout=120)
        yield servers


def _counts(server: Server) -> dict[str, float]:
    return served_requests(httpx.get(f"http://{server.http_url}/metrics", timeout=5).text)


def test_a_replica_killed_mid_load_fails_no_request(
    replicas: list[Server], repository: Path
) -> None:
    victim, survivor = replicas
    config = upstreams(
        [f"{s.http_url} {PASSIVE}" for s in replicas], [f"{s.grpc_url} {PASSIVE}" for s in replicas]
    )
    before: list[dict[str, float]] = []

    def kill() -> None:
        before.extend(_counts(server) for server in replicas)
        victim.process.send_signal(signal.SIGKILL)

    with running_nginx(config) as nginx:
        outcome = mixed_load(nginx.http_url, nginx.grpc_url, repository / "tiny" / "1", kill)
        after = _counts(survivor)
        log = nginx.access_log(entries=outcome.calls)  # one entry a call, or more (retries)
    retried, unavailable = outcome.survived(log)
    for server, counts in zip(replicas, before, strict=True):
        assert counts["http"] > 0 and counts["grpc"] > 0, f"{server.http_url} got no {counts}"
    assert sum(after.values()) > sum(before[1].values()), "the survivor served nothing after"
    # The kill was felt: requests met the dead replica and went on to the other one, through
    # nginx (two upstreams tried) or through the client's retry policy (a gRPC call that the
    # replica died under: nginx answered UNAVAILABLE, logged as 204 after the upstream's 502).
    assert retried or unavailable or outcome.http_retries, "no request met the killed replica"


class _Crash(threading.Thread):
    """A replica that dies under every request: it reads the request, then resets the
    connection without an answer."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0

    def run(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                self.accepted += 1
                with conn:
                    conn.settimeout(2)
                    with contextlib.suppress(OSError):
                        conn.recv(65536)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")

    def close(self) -> None:
        self.sock.close()


def test_nginx_retries_pure_calls_but_never_a_sent_repository_call(
    replicas: list[Server],
) -> None:
    crash = _Crash()
    crash.start()
    replica = replicas[1]
    # The crashing replica first, every time (never marked down); the real one as backup.
    config = upstreams(
        [f"{crash.address} max_fails=0", f"{replica.http_url} backup"],
        [f"{replica.grpc_url}"],
    )
    try:
        with running_nginx(config) as nginx, httpx.Client(base_url=nginx.http_url) as client:
            body = {"loss": "focal", "logits": [[1.0, 2.0]], "targets": [1]}
            computed = client.post("/loss", json=body)
            listed = client.get("/losses")
            sent = crash.accepted
            load = client.post("/v2/repository/models/tiny/load")
            log = nginx.access_log(entries=3)
    finally:
        crash.close()
    assert computed.status_code == 200, computed.text
    assert listed.status_code == 200
    assert sent == 2 and crash.accepted == 3, "each request should have met the crash first"
    assert load.status_code == 502  # not retried: the backup would have answered (403)
    assert [entry["upstream_status"] for entry in log] == ["502, 200", "502, 200", "502"]
