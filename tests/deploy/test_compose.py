"""The compose deployment, as built and run by ``tests/deploy/conftest.py``: two replicas of
the CPU image behind nginx, every call through nginx's published ports as a user makes it.

The replica-kill and drain tests change the deployment, so they run last and leave it as
they found it (the replica started again, nginx restarted to resolve it anew).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import torch
import yaml

import losses
from lossserve_proto.lossserve.v1 import loss_service_pb2_grpc as pb_grpc
from tests.integration._mixed_load import mixed_load
from tests.integration._serving import batch, loss_body, loss_message
from tests.service.models.builders import reference, rows

from .conftest import (
    GPU_IMAGE,
    GRPC_URL,
    HTTP_URL,
    IMAGE,
    NGINX,
    PYTHON_BASE,
    REPLICAS,
    ROOT,
    Deployment,
    build_args,
)

TRITON_DECISIONS = Path(__file__).parents[1] / "integration" / "task_kinds" / "triton_decisions.py"


def test_the_image_runs_unprivileged_on_a_read_only_root(deployment: Deployment) -> None:
    user = deployment.run("podman", "image", "inspect", "--format", "{{.Config.User}}", IMAGE)
    assert user.strip() == "10001:10001"
    for replica in REPLICAS:
        inspected = json.loads(deployment.run("podman", "inspect", replica))[0]
        assert inspected["HostConfig"]["ReadonlyRootfs"] is True
        assert deployment.run("podman", "exec", replica, "id", "-u").strip() == "10001"
        # nothing to write but /tmp (in memory), not even the user's own home
        assert deployment.status("podman", "exec", replica, "touch", "/home/lossserve/x") != 0
        assert deployment.status("podman", "exec", replica, "touch", "/tmp/x") == 0
        # tensors go between the replica's processes through /dev/shm: room for the largest
        # body (64 MiB) in and its gradient and Hessian out, past the runtime's 64 MiB
        statvfs = "import os; s = os.statvfs('/dev/shm'); print(s.f_blocks * s.f_frsize)"
        shm = deployment.run("podman", "exec", replica, "python", "-c", statvfs)
        assert int(shm) >= 3 * 64 * 2**20, f"/dev/shm holds {int(shm) / 2**20:.0f} MiB"


def test_health_checks_turn_healthy(deployment: Deployment) -> None:
    # podman runs health checks from systemd timers, which this machine lacks: run each once
    for container in [*REPLICAS, NGINX]:
        deployment.run("podman", "healthcheck", "run", container, timeout=60)


def test_tritonclient_through_nginx(deployment: Deployment, tmp_path: Path) -> None:
    """The unmodified tritonclient, http and grpc, through nginx's published ports (in a
    child process: its generated protobuf package cannot share an interpreter with ours)."""
    features = rows(5, seed=7)
    expected = reference(deployment.repository / "tiny" / "1", features)
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, features=features)
    command = [sys.executable, str(TRITON_DECISIONS), HTTP_URL.removeprefix("http://")]
    command += [GRPC_URL, "tiny", str(inputs)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    decided = json.loads(done.stdout)
    for protocol in ("http", "grpc"):
        np.testing.assert_array_equal(decided[protocol], expected["decisions"], err_msg=protocol)


def test_losses_through_nginx(deployment: Deployment) -> None:
    logits, targets = batch(32, 4, seed=3)
    x = torch.from_numpy(logits.astype(np.float64)).requires_grad_()
    value = losses.compute("focal", x, torch.from_numpy(targets), gamma=2.0)
    (grad,) = torch.autograd.grad(value, x)
    body = {**loss_body("focal", logits, targets, return_grad=True), "params": {"gamma": 2.0}}
    answer = httpx.post(f"{HTTP_URL}/loss", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["value"] == pytest.approx(value.item(), rel=1e-5)
    message = loss_message("focal", logits, targets, return_grad=True)
    message.params_json = '{"gamma": 2.0}'
    with grpc.insecure_channel(GRPC_URL) as channel:
        result = pb_grpc.LossServiceStub(channel).ComputeLoss(message, timeout=30)
    got = np.frombuffer(result.grad.data, dtype=np.float32).reshape(list(result.grad.shape))
    np.testing.assert_allclose(got, grad.numpy(), rtol=1e-4, atol=1e-6)


def test_the_prometheus_scrape_config_finds_both_replicas(deployment: Deployment) -> None:
    """prom/prometheus cannot be pulled here: its scrape config is held to the deployment
    instead. From a container on the compose network, the DNS name and port it scrapes
    answer one address per replica, each serving Prometheus text on its metrics path."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "lossserve"]
    (sd,) = job["dns_sd_configs"]
    (name,) = sd["names"]
    script = (
        "import socket, sys, urllib.request\n"
        f"addresses = sorted({{a[4][0] for a in socket.getaddrinfo({name!r}, {sd['port']})}})\n"
        "for a in addresses:\n"
        f"    text = urllib.request.urlopen(f'http://{{a}}:{sd['port']}{job['metrics_path']}',"
        " timeout=10).read().decode()\n"
        "    assert 'lossserve_requests_total' in text, a\n"
        "print(len(addresses))\n"
    )
    network = deployment.run(
        "podman",
        "inspect",
        "--format",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
        REPLICAS[0],
    ).strip()
    found = deployment.run(
        "podman", "run", "--rm", "--network", network, "--entrypoint", "python", IMAGE,
        "-c", script, timeout=120,
    )  # fmt: skip
    assert found.strip() == str(len(REPLICAS))


def test_the_gpu_image_builds_on_the_cpu_stand_in_base(deployment: Deployment) -> None:
    """docker/Dockerfile.gpu, unchanged, on the CPU stand-in base in place of CUDA 13 on
    Ubuntu (no CUDA image can be pulled here): its apt packages, its Python layer with the
    GPU requirements (onnxruntime-gpu and the server extra at the pinned versions), its
    user and entry point. torch is the wheel pip finds here, 2.13.0's CPU build, which
    satisfies the image's ``torch==2.13.0``; on a registry the image takes the cu130 build
    from PyTorch's index, which this machine cannot reach."""
    try:
        start = time.monotonic()
        deployment.run(
            "podman", "build", "--pull=never", "--network", "host", "--format", "docker",
            *build_args(), "--build-arg", f"CUDA_IMAGE={PYTHON_BASE}",
            "-f", "docker/Dockerfile.gpu", "-t", GPU_IMAGE, ".", timeout=1800,
        )  # fmt: skip
        deployment.report["gpu_image_on_cpu_base_build_s"] = round(time.monotonic() - start, 1)
        deployment.report["gpu_image_on_cpu_base_bytes"] = int(
            deployment.run("podman", "image", "inspect", "--format", "{{.Size}}", GPU_IMAGE)
        )
        probe = (
            "import json, onnxruntime, torch, lossserve.cli; "
            "print(json.dumps(onnxruntime.get_available_providers()))"
        )
        run = ["podman", "run", "--rm", "--read-only", "--entrypoint", "python", GPU_IMAGE]
        providers = json.loads(deployment.run(*run, "-c", probe, timeout=120))
        assert "CUDAExecutionProvider" in providers  # onnxruntime-gpu, not the CPU package
        user = deployment.run(
            "podman", "image", "inspect", "--format", "{{.Config.User}}", GPU_IMAGE
        )
        assert user.strip() == "10001:10001"
    finally:  # nothing else uses it: its ~2 GB go back to the disk
        deployment.status("podman", "rmi", "--force", GPU_IMAGE)
        deployment.prune()


def _restore(deployment: Deployment, replica: str) -> None:
    """The replica running again and nginx resolving both replicas anew (Debian's nginx
    resolves upstream names once, at start)."""
    deployment.run("podman", "start", replica)
    deployment.wait_ready(f"http://{deployment.address(replica)}:8000/v2/health/ready")
    deployment.run("podman", "restart", "-t", "5", NGINX)
    deployment.wait_ready(f"{HTTP_URL}/v2/models/tiny/ready")


def test_a_replica_killed_under_load_fails_no_request(deployment: Deployment) -> None:
    victim = REPLICAS[1]
    killed: dict[str, float] = {}

    def kill() -> None:
        killed["at"] = time.time()  # nginx logs $msec: seconds since the epoch
        deployment.run("podman", "kill", victim)

    start = time.monotonic()
    try:
        outcome = mixed_load(HTTP_URL, GRPC_URL, deployment.repository / "tiny" / "1", kill)
        entries = [
            json.loads(line)
            for line in deployment.run("podman", "logs", NGINX).splitlines()
            if line.startswith("{")
        ]
        log = [entry for entry in entries if entry["ts"] >= killed["at"]]  # the load's, after
    finally:
        _restore(deployment, victim)
    deployment.report["kill"] = {
        "calls": outcome.calls,
        "failed": len(outcome.failures),
        "killed_after_calls": outcome.interrupted_at,
        "http_retried_by_client": outcome.http_retries,
        "load_s": round(time.monotonic() - start, 2),
    }
    retried, unavailable = outcome.survived(log)
    # The kill was felt: calls met the dead replica and nginx sent them on to the other one
    # (two upstreams logged), or answered a gRPC call UNAVAILABLE for the client to retry.
    assert retried or unavailable, "no call met the killed replica"


def test_a_stopped_replica_drains_its_requests_in_flight(deployment: Deployment) -> None:
    """SIGTERM (``podman stop``) while the replica computes: every request it had accepted
    is answered, then it exits 0 within the grace period."""
    replica = REPLICAS[0]
    url = f"http://{deployment.address(replica)}:8000"
    # subset softmax's gradient and Hessian diagonal, a recursion over the classes: about a
    # quarter of a second each, one after another on the replica's worker (every other
    # loss's diagonal is a closed form of a few passes; a larger request would pass the
    # default memory budget: 25,000 x 20 up to 5 is estimated at 450 MB of 512 MiB)
    logits, classes = batch(25_000, 20, seed=5)
    targets = np.eye(20, dtype=np.float32)[classes]
    body: dict[str, Any] = loss_body(
        "subset_softmax", logits, targets, return_grad=True, return_hessian=True,
        params={"max_k": 5},
    )  # fmt: skip
    in_flight = 4
    started = threading.Barrier(in_flight + 1)

    def call() -> int:
        started.wait()
        return httpx.post(f"{url}/loss", json=body, timeout=60).status_code

    try:
        with ThreadPoolExecutor(in_flight) as pool:
            answers = [pool.submit(call) for _ in range(in_flight)]
            started.wait()
            time.sleep(0.3)  # the requests reach the replica
            stop_start = time.monotonic()
            deployment.run("podman", "stop", "-t", "40", replica, timeout=60)
            stopped_s = time.monotonic() - stop_start
            statuses = [a.result() for a in answers]
        exit_code = deployment.run(
            "podman", "inspect", "--format", "{{.State.ExitCode}}", replica
        ).strip()
    finally:
        _restore(deployment, replica)
    deployment.report["drain"] = {
        "in_flight": in_flight,
        "answered_200": statuses.count(200),
        "stop_s": round(stopped_s, 2),
        "exit_code": int(exit_code),
    }
    assert statuses == [200] * in_flight
    assert exit_code == "0"
    assert stopped_s < 40
