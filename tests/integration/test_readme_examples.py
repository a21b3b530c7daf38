"""A real `lossserve serve` process on loopback, driven by the README's examples as written."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

import losses

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _example(name: str) -> str:
    """The fenced block right after ``<!-- example:NAME -->`` in the README."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- example:{name} -->\n```\w*\n(.*?)```", text, re.S)
    assert match, f"README has no example {name!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, int]]:
    http_port, grpc_port = _free_port(), _free_port()
    env = {**os.environ, "LOSSSERVE_DEVICES": '["cpu"]'}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("server did not become ready (its output follows the teardown)")
            time.sleep(0.2)
        yield http_port, grpc_port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        logs = ""
        if process.stdout is not None:
            with process.stdout:
                logs = process.stdout.read().decode()
        assert code == 0, logs
        for line in logs.splitlines():  # structured logs: one JSON object a line
            json.loads(line)


EXPECTED = losses.compute(
    "focal",
    torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.3, -0.2]]),
    torch.tensor([0, 2]),
    gamma=2.0,
).item()


def test_readme_curl_example(server: tuple[int, int]) -> None:
    http_port, _ = server
    command = _example("curl").replace("localhost:8000", f"127.0.0.1:{http_port}")
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    body = json.loads(result.stdout)
    assert body["value"] == pytest.approx(EXPECTED, rel=1e-6)
    assert len(body["grad"]) == 2
    assert body["device"] == "cpu"


def test_readme_grpc_example(server: tuple[int, int]) -> None:
    _, grpc_port = server
    code = _example("grpc").replace("localhost:50051", f"127.0.0.1:{grpc_port}")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    first = result.stdout.splitlines()[0]
    assert first.endswith("cpu")
    value = float(first.strip("[] ").split("]")[0].strip("[ "))
    assert value == pytest.approx(EXPECTED, rel=1e-6)


def test_metrics_and_health_on_the_real_server(server: tuple[int, int]) -> None:
    http_port, _ = server
    base = f"http://127.0.0.1:{http_port}"
    assert httpx.get(f"{base}/v2/health/live").json() == {"live": True}
    assert "lossserve_worker_alive" in httpx.get(f"{base}/metrics").text
