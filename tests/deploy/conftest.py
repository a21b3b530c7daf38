"""The containerized deployment, built and run for real with podman: the images from
nothing (``docker/build-local-base.sh`` for the base images, then ``docker/Dockerfile``),
``docker-compose.yml`` with ``docker-compose.local.yml`` under podman-compose, two replicas
behind nginx serving the model ``tiny``.

``make test-deploy`` runs these (``LOSSSERVE_DEPLOY_TESTS=1``; plain ``pytest`` leaves the
folder out: building takes minutes). Without podman, podman-compose or debootstrap, or
without root, every test is skipped with the reason, unless ``LOSSSERVE_DEPLOY_REQUIRED``
is set (CI sets it): then they fail.

podman here runs with a ``containers.conf`` of the session's own (``CONTAINERS_CONF``):
runc, netavark (container DNS), and explicit ulimits (this kernel refuses the defaults).
The image build finds torch's CPU wheel where pip on this machine finds it (pip's
``find-links``, mounted into the build; PyTorch's index otherwise, or ``TORCH_INDEX``), and
trusts the CA bundle pip trusts (``cert``), as a build behind a TLS-inspecting proxy must;
it runs on the host's network (podman's build network has no DNS here under netavark).
Image sizes and build times are printed (``pytest -s``) and written to
``$LOSSSERVE_DEPLOY_REPORT`` when set.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import output
from tests.service.models.builders import write_model

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/lossserve:cpu"
GPU_IMAGE = "localhost/lossserve:gpu-on-cpu-base"
"""docker/Dockerfile.gpu built on the CPU stand-in base (no CUDA base image can be had)."""
PYTHON_BASE = "docker.io/library/python:3.11-slim-bookworm"
PROJECT = "lossserve"
REPLICAS = [f"{PROJECT}_lossserve_{n}" for n in (1, 2)]
NGINX = f"{PROJECT}_nginx_1"
HTTP_URL = "http://127.0.0.1:8000"
GRPC_URL = "127.0.0.1:50051"
COMPOSE_FILES = ["-f", "docker-compose.yml", "-f", "docker-compose.local.yml"]


def _compose_command() -> str | None:
    beside = Path(sys.executable).with_name("podman-compose")
    return str(beside) if beside.exists() else shutil.which("podman-compose")


def _missing() -> str | None:
    for tool in ("podman", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman runc debootstrap ...)"
    if _compose_command() is None:
        return "podman-compose is not installed (pip install podman-compose)"
    if os.geteuid() != 0:
        return "debootstrap and rootful podman need root"
    return None


def _pip_config(key: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", key], capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else ""


@dataclass
class Deployment:
    env: dict[str, str]
    """The environment podman and podman-compose run in."""
    repository: Path
    report: dict[str, Any] = field(default_factory=dict)

    def run(self, *command: str, timeout: float = 900) -> str:
        return output(command, cwd=ROOT, env=self.env, timeout=timeout)

    def prune(self) -> None:
        """Remove the untagged images builds leave (each build stage's, ~2 GB): a CI machine's
        disk holds a few of them, not every build's."""
        self.run("podman", "image", "prune", "--force", timeout=300)

    def status(self, *command: str, timeout: float = 120) -> int:
        """The exit status of ``command``."""
        return subprocess.run(
            command, cwd=ROOT, env=self.env, capture_output=True, timeout=timeout
        ).returncode

    def compose(self, *args: str, timeout: float = 300) -> str:
        command = _compose_command()
        assert command is not None
        return self.run(command, "-p", PROJECT, *COMPOSE_FILES, *args, timeout=timeout)

    def address(self, container: str) -> str:
        """The container's address on the compose network (reachable from this host)."""
        return self.run(
            "podman",
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            container,
        ).strip()

    def wait_ready(self, url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        listed = subprocess.run(
            ["podman", "ps", "-a"], env=self.env, capture_output=True, text=True
        )
        raise AssertionError(f"{url} was not ready within {timeout:.0f} s:\n{listed.stdout}")


def _containers_conf(path: Path) -> Path:
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    path.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc=4096:4096"]\n\n'
        '[network]\nnetwork_backend = "netavark"\n\n'
        '[engine]\nruntime = "runc"\n'
    )
    return path


def build_args() -> list[str]:
    """Where torch's CPU wheel and the CA bundle come from, as for pip on this machine."""
    args: list[str] = []
    wheels = (
        os.environ.get("TORCH_WHEELS")
        or os.environ.get("PIP_FIND_LINKS")
        or _pip_config("global.find-links")
    )
    if wheels and any(Path(wheels).glob("torch-*.whl")):
        args += ["-v", f"{wheels}:/wheels:ro", "--build-arg", "PIP_FIND_LINKS=/wheels"]
        args += ["--build-arg", "TORCH_INDEX=https://pypi.org/simple"]
    elif os.environ.get("TORCH_INDEX"):
        args += ["--build-arg", f"TORCH_INDEX={os.environ['TORCH_INDEX']}"]
    cert = (
        os.environ.get("PIP_CERT")
        or _pip_config("global.cert")
        or ssl.get_default_verify_paths().openssl_cafile
    )
    if cert and Path(cert).is_file():
        args += ["-v", f"{cert}:/run/host-ca.crt:ro", "--build-arg", "PIP_CERT=/run/host-ca.crt"]
    return args


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    reason = _missing()
    if reason and os.environ.get("LOSSSERVE_DEPLOY_REQUIRED"):
        pytest.fail(f"LOSSSERVE_DEPLOY_REQUIRED is set (CI) but {reason}")
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("deploy")
    repository = work / "models"
    write_model(repository, "tiny", 1, seed=1)
    for path in [repository, *repository.rglob("*")]:  # readable by the image's uid 10001
        path.chmod(0o755 if path.is_dir() else 0o644)
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(_containers_conf(work / "containers.conf")),
        "LOSSSERVE_MODELS": str(repository),
    }
    deployed = Deployment(env, repository)

    graph_root = deployed.run("podman", "info", "--format", "{{.Store.GraphRoot}}").strip()
    deployed.report["disk_free_bytes_before"] = shutil.disk_usage(graph_root).free
    start = time.monotonic()
    deployed.run("bash", "docker/build-local-base.sh", timeout=1200)
    deployed.report["base_images_s"] = round(time.monotonic() - start, 1)
    start = time.monotonic()
    deployed.run(
        "podman", "build", "--pull=never", "--network", "host", "--format", "docker",
        *build_args(),
        "-f", "docker/Dockerfile", "-t", IMAGE, ".", timeout=1800,
    )  # fmt: skip
    deployed.report["cpu_image_build_s"] = round(time.monotonic() - start, 1)
    deployed.prune()
    deployed.report["cpu_image_bytes"] = int(
        deployed.run("podman", "image", "inspect", "--format", "{{.Size}}", IMAGE)
    )

    deployed.compose("down", "-t", "2", timeout=120)  # what an earlier run left
    deployed.compose("up", "-d")
    try:
        deployed.wait_ready(f"{HTTP_URL}/v2/health/ready")
        deployed.wait_ready(f"{HTTP_URL}/v2/models/tiny/ready")
        yield deployed
    finally:
        logs = work / "compose.log"
        logs.write_text(deployed.compose("logs", timeout=120))
        deployed.compose("down", "-t", "5", timeout=300)
        print(f"\ndeployment figures: {json.dumps(deployed.report)} (logs: {logs})")
        if os.environ.get("LOSSSERVE_DEPLOY_REPORT"):
            Path(os.environ["LOSSSERVE_DEPLOY_REPORT"]).write_text(
                json.dumps(deployed.report, indent=2)
            )
