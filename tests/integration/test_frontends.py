"""``lossserve serve`` as real processes: a port in use stops it at once with one line on
stderr, and ``--frontends 2`` serves REST and gRPC from two processes on the same two
ports, spreads the connections over them, restarts one that dies and drains both on
SIGTERM; pinned frontends run on a CPU each and their workers on all.

A frontend is known by its pid from its ``serving`` log line; that both serve both ports
is shown by killing each in turn while the other answers on both.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench._server import ROOT, Server, free_port, start_server, stop_server, wait_ready
from lossserve.api.oip_grpc_convert import decode_infer_result
from lossserve_proto.inference import grpc_service_pb2 as oip
from lossserve_proto.inference import grpc_service_pb2_grpc as oip_grpc
from tests.processes import SERVICE_ENV
from tests.service.models.builders import reference, rows, write_model

ENV = {**SERVICE_ENV, "LOSSSERVE_FRONTENDS": "1"}
"""One frontend unless a test asks for more (``--frontends`` overrides it)."""


def serve(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``lossserve serve`` on 127.0.0.1 with ``args``, expected to exit by itself."""
    command = [sys.executable, "-m", "lossserve.cli", "serve", "--host", "127.0.0.1", *args]
    return subprocess.run(
        command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout, check=False
    )


def check_refused(done: subprocess.CompletedProcess[str], transport: str, port: int) -> None:
    """Status 1 and exactly one line on stderr, naming the port; nothing served or logged."""
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"lossserve serve: error: {transport} port {port} on 127.0.0.1 is already in use"
    ]
    assert done.stdout == ""


def records(server: Server) -> list[dict[str, object]]:
    server.log.seek(0)
    lines = server.log.read().decode(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def serving_pids(server: Server) -> list[int]:
    return [int(str(r["pid"])) for r in records(server) if r["message"] == "serving"]


def wait_serving(server: Server, count: int, timeout: float = 90) -> list[int]:
    """The pids of the first ``count`` ``serving`` lines, once there are that many."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = serving_pids(server)
        if len(pids) >= count:
            return pids[:count]
        assert server.process.poll() is None, server.log_tail()
        time.sleep(0.1)
    pytest.fail(f"fewer than {count} frontends served within {timeout:.0f} s:\n{server.log_tail()}")


def wait_restarting(server: Server, count: int, timeout: float = 30) -> None:
    """Until the supervisor has seen ``count`` frontends die (their sockets are closed by
    then: a connection made earlier could still land in the dying one's queue)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = [r["message"] for r in records(server)]
        if messages.count("frontend exited; restarting it") >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"the supervisor never saw {count} frontends die:\n{server.log_tail()}")


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# -- a port in use ---------------------------------------------------------------------


@pytest.mark.parametrize("frontends", ["1", "2"])
@pytest.mark.parametrize("transport", ["HTTP", "gRPC"])
def test_a_port_bound_by_another_socket_stops_serve_with_one_line(
    transport: str, frontends: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        other = free_port()
        http, grpc_port = (port, other) if transport == "HTTP" else (other, port)
        done = serve(
            "--http-port", str(http), "--grpc-port", str(grpc_port), "--frontends", frontends
        )
    check_refused(done, transport, port)


@pytest.fixture(scope="module")
def running() -> Iterator[Server]:
    """One real server with one frontend, for a second one to collide with."""
    with tempfile.TemporaryFile() as log:
        server = start_server(["--frontends", "1"], ENV, log)
        try:
            wait_ready(server, ["/v2/health/ready"], timeout=90)
            yield server
        finally:
            stop_server(server)


@pytest.mark.parametrize("frontends", ["1", "2"])
@pytest.mark.parametrize("transport", ["HTTP", "gRPC"])
def test_a_port_a_running_server_serves_stops_a_second_server(
    running: Server, transport: str, frontends: str
) -> None:
    """gRPC listens with SO_REUSEPORT: without the check the second server would share the
    port and take half of its connections."""
    if transport == "HTTP":
        port, args = running.http_port, ["--http-port", str(running.http_port), "--grpc-port", "0"]
    else:
        port, args = running.grpc_port, ["--http-port", "0", "--grpc-port", str(running.grpc_port)]
    check_refused(serve(*args, "--frontends", frontends), transport, port)
    with grpc.insecure_channel(running.grpc_url) as channel:  # the first one still serves
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert status.status == health_pb2.HealthCheckResponse.SERVING


def test_ports_zero_serve_on_the_ports_the_serving_line_names() -> None:
    command = [sys.executable, "-m", "lossserve.cli", "serve", "--host", "127.0.0.1"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*command, "--http-port", "0", "--grpc-port", "0", "--frontends", "1"],
            cwd=ROOT,
            env=ENV,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = Server(process, log, 0, 0)
        try:
            pid = wait_serving(server, 1)[0]
            assert pid == process.pid  # one frontend: the lossserve process itself
            line = next(r for r in records(server) if r["message"] == "serving")
            server.http_port, server.grpc_port = (
                int(str(line["http_port"])),
                int(str(line["grpc_port"])),
            )
            assert 0 not in (server.http_port, server.grpc_port)
            assert line["loop"] == "uvloop" and line["http_parser"] == "httptools"
            wait_ready(server, ["/v2/health/ready"], timeout=30)
            with grpc.insecure_channel(server.grpc_url) as channel:
                checked = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
            assert checked.status == health_pb2.HealthCheckResponse.SERVING
        finally:
            stop_server(server)
        assert process.returncode == 0


# -- two frontends ---------------------------------------------------------------------


def infer_both_ways(server: Server, features: np.ndarray, expected: np.ndarray) -> None:
    """A REST and a gRPC inference, each on a connection of its own, answer ``expected``."""
    body = {
        "inputs": [
            {
                "name": "features",
                "datatype": "FP32",
                "shape": list(features.shape),
                "data": features.ravel().tolist(),
            }
        ],
        "outputs": [{"name": "probabilities"}],
    }
    response = httpx.post(f"http://{server.http_url}/v2/models/tiny/infer", json=body, timeout=10)
    assert response.status_code == 200, response.text
    answer = response.json()["outputs"][0]
    np.testing.assert_allclose(
        np.asarray(answer["data"], np.float32).reshape(answer["shape"]), expected, rtol=1e-5
    )
    request = oip.ModelInferRequest(
        model_name="tiny",
        inputs=[
            oip.ModelInferRequest.InferInputTensor(
                name="features", datatype="FP32", shape=list(features.shape)
            )
        ],
        outputs=[oip.ModelInferRequest.InferRequestedOutputTensor(name="probabilities")],
        raw_input_contents=[features.tobytes()],
    )
    with grpc.insecure_channel(server.grpc_url) as channel:
        result = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    np.testing.assert_allclose(
        decode_infer_result(result).outputs["probabilities"], expected, rtol=1e-5
    )


def test_two_frontends_serve_both_ports_survive_a_crash_and_drain(tmp_path: Path) -> None:
    directory = write_model(tmp_path, "tiny")
    features = rows(3)
    expected = reference(directory, features)["probabilities"]
    env = {**ENV, "LOSSSERVE_MODEL_REPOSITORY": str(tmp_path)}
    with tempfile.TemporaryFile() as log:
        server = start_server(["--frontends", "2"], env, log)
        try:
            first, second = wait_serving(server, 2)
            assert len({first, second, server.process.pid}) == 3
            wait_ready(server, ["/v2/health/ready", "/v2/models/tiny/ready"], timeout=30)
            infer_both_ways(server, features, expected)
            supervising = next(
                r for r in records(server) if r["message"] == "supervising frontends"
            )
            assert (supervising["http_port"], supervising["grpc_port"]) == (
                server.http_port,
                server.grpc_port,
            )

            # One dies: the other serves both ports meanwhile, and a new one replaces it.
            subprocess.run(["kill", "-KILL", str(first)], check=True)
            wait_restarting(server, 1)
            for _ in range(5):
                infer_both_ways(server, features, expected)
            third = wait_serving(server, 3)[2]
            assert third not in (first, second)
            # The other dies too: the replacement serves both ports.
            subprocess.run(["kill", "-KILL", str(second)], check=True)
            wait_restarting(server, 2)
            for _ in range(5):
                infer_both_ways(server, features, expected)
            wait_serving(server, 4)
            restarts = [
                r for r in records(server) if r["message"] == "frontend exited; restarting it"
            ]
            assert [r["code"] for r in restarts] == [-signal.SIGKILL, -signal.SIGKILL]

            server.process.send_signal(signal.SIGTERM)
            code = server.process.wait(timeout=30)
        finally:
            stop_server(server)
        logs = records(server)
    assert code == 0, "\n".join(json.dumps(r) for r in logs[-20:])
    assert [r["message"] for r in logs].count("drained") == 2
    assert port_is_free(server.http_port) and port_is_free(server.grpc_port)


# -- connections spread, frontends pinned ----------------------------------------------


def allowed_cpus(pid: int) -> list[int]:
    return sorted(os.sched_getaffinity(pid))


def children(pid: int) -> list[int]:
    listing = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True)
    pairs = [line.split() for line in listing.stdout.splitlines()]
    return [int(child) for child, parent in pairs if int(parent) == pid]


def connections_of(pid: int, port: int) -> int:
    """Established TCP connections to local ``port`` on the sockets ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and local_port == port and fields[9] in inodes:
                count += 1
    return count


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning two frontends needs 2 CPUs")
def test_pinned_frontends_each_on_a_cpu_workers_on_all_connections_spread() -> None:
    cpus = allowed_cpus(os.getpid())
    env = {**ENV, "LOSSSERVE_FRONTEND_AFFINITY": "pinned"}
    with tempfile.TemporaryFile() as log:
        server = start_server(["--frontends", "2"], env, log)
        try:
            frontends = wait_serving(server, 2)
            wait_ready(server, ["/v2/health/ready"], timeout=30)
            assert sorted(allowed_cpus(pid) for pid in frontends) == [[cpus[0]], [cpus[1]]]
            # A frontend's workers are children of its forkserver: they run on every CPU.
            workers = [w for pid in frontends for fork in children(pid) for w in children(fork)]
            assert len(workers) >= 2, server.log_tail()
            assert all(allowed_cpus(pid) == cpus for pid in workers)

            # Sixteen connections: each frontend takes some (on its own socket, by a hash of
            # the addresses; a socket shared by both can give a burst to whichever wakes).
            clients = [socket.create_connection(("127.0.0.1", server.http_port)) for _ in range(16)]
            try:
                for client in clients:
                    client.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                for client in clients:
                    assert client.recv(4096).startswith(b"HTTP/1.1 200")
                taken = [connections_of(pid, server.http_port) for pid in frontends]
            finally:
                for client in clients:
                    client.close()
            assert sum(taken) == 16 and min(taken) >= 1, taken
        finally:
            stop_server(server)
