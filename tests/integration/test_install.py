"""The three wheels, built from the committed files and installed into a clean venv as a user
installs them.

- ``lossserve`` alone is the loss library: it brings torch, numpy and pydantic and nothing of
  the server's; ``import losses`` computes derivatives; the ``lossserve`` command says in one
  line what to install for the rest.
- ``lossserve[server]`` with ``lossserve-proto`` (the wire, shared with the client) trains a
  built-in dataset with the ``lossserve`` command and serves it.
- ``lossserve-client`` with the same ``lossserve-proto``, in a venv of its own (no torch, no
  server), predicts with that model and computes a loss, over REST and gRPC.

Everything runs from a folder outside the repository, so nothing is imported from the
checkout. torch comes from where ``make`` finds it (``TORCH_INDEX`` as in the Makefile).
The install sizes are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench._server import running_server
from tests.processes import SERVICE_ENV, output

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
PROJECTS = {"lossserve": ".", "lossserve_proto": "proto", "lossserve_client": "clients/python"}
"""Each wheel's file-name stem and the folder its pyproject.toml is in."""
SERVER_ONLY = {
    "fastapi",
    "uvicorn",
    "grpcio",
    "protobuf",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "scikit-learn",
    "lossserve-proto",
    "lossserve-client",
}
"""Distributions that the loss library alone must not bring."""
ENV = {k: v for k, v in SERVICE_ENV.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}

LIBRARY_CHECK = """
import importlib.util, json, torch, losses
logits = torch.randn(16, 5, dtype=torch.float64)
targets = torch.randint(0, 5, (16,))
d = losses.derivatives("focal", logits, targets, hessian=True, gamma=2.0)
print(json.dumps({
    "names": len(losses.names()),
    "grad": list(d.grad.shape),
    "hessian": list(d.hessian_diag.shape),
    "server_importable": importlib.util.find_spec("fastapi") is not None,
}))
"""

CLIENT_CHECK = """
import json, sys
import numpy as np
from lossserve_client import LossClient
http, grpc_url, model = sys.argv[1:4]
rows = np.asarray(json.loads(sys.stdin.read()), dtype=np.float32)
answers = {}
clients = {"rest": LossClient.rest("http://" + http), "grpc": LossClient.grpc(grpc_url)}
for name, client in clients.items():
    with client:
        loss = client.compute_loss(
            "focal", np.zeros((2, 3), np.float32), np.array([0, 2]), return_grad=True
        )
        answers[name] = {
            "labels": [p.labels for p in client.predict(model, rows)],
            "grad": list(loss.grad.shape),
        }
print(json.dumps(answers))
"""


def run(command: list[str | Path], cwd: Path, timeout: float = 900) -> str:
    return output(command, cwd=cwd, env=ENV, timeout=timeout)


def installed(venv: Path) -> set[str]:
    listed = run([venv / "bin" / "python", "-m", "pip", "list", "--format=json"], venv)
    return {entry["name"].lower().replace("_", "-") for entry in json.loads(listed)}


def size_mib(venv: Path) -> float:
    files = (p for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    return sum(p.stat().st_size for p in files) / 2**20


def sources(out: Path) -> Path:
    """The committed and untracked-but-not-ignored files, copied: a build sees no stale
    ``build/`` folder and nothing that git ignores."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, out / name)
    return out


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tree = sources(tmp_path_factory.mktemp("tree"))
    out = tmp_path_factory.mktemp("wheels")
    folders = [tree / folder for folder in PROJECTS.values()]
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, *folders], tree)
    built = {}
    for stem in PROJECTS:
        (wheel,) = out.glob(f"{stem}-*.whl")
        built[stem] = wheel
    return built


def new_venv(path: Path) -> tuple[Path, list[str | Path], float]:
    """A clean venv at ``path``: its python, its pip install command, its size in MiB."""
    run([sys.executable, "-m", "venv", path], path.parent)
    python = path / "bin" / "python"
    pip: list[str | Path] = [python, "-m", "pip", "install", "--quiet", "-c", CONSTRAINTS]
    if os.environ.get("TORCH_INDEX"):
        pip += ["--extra-index-url", os.environ["TORCH_INDEX"]]
    return python, pip, size_mib(path)


def test_the_wheels_install_train_and_serve_in_a_clean_venv(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    python, pip, bare = new_venv(venv)
    command = venv / "bin" / "lossserve"

    # The loss library alone.
    run([*pip, wheels["lossserve"]], tmp_path)
    assert not installed(venv) & SERVER_ONLY
    library = json.loads(run([python, "-c", LIBRARY_CHECK], tmp_path))
    assert library == {
        "names": library["names"],
        "grad": [16, 5],
        "hessian": [16, 5],
        "server_importable": False,
    }
    assert library["names"] > 10
    hint = subprocess.run(
        [command, "--version"], cwd=tmp_path, env=ENV, capture_output=True, text=True
    )
    assert hint.returncode == 1
    assert hint.stdout == ""
    assert len(hint.stderr.splitlines()) == 1
    assert "lossserve[server]" in hint.stderr, hint.stderr
    library_mib = size_mib(venv) - bare

    # The server, from the wheels.
    run([*pip, wheels["lossserve_proto"], f"{wheels['lossserve']}[server]"], tmp_path)
    run([python, "-m", "pip", "check"], tmp_path)
    assert run([command, "--version"], tmp_path).strip() == "lossserve 0.1.0"
    server_mib = size_mib(venv) - bare

    # The client, in a venv of its own.
    client_venv = tmp_path / "client-venv"
    client_python, client_pip, client_bare = new_venv(client_venv)
    run([*client_pip, wheels["lossserve_proto"], wheels["lossserve_client"]], tmp_path)
    assert not installed(client_venv) & {"torch", "lossserve", "fastapi", "onnxruntime-gpu"}
    client_mib = size_mib(client_venv) - client_bare
    print(
        f"\ninstall sizes (MiB, beyond an empty venv): the loss library {library_mib:.0f}, "
        f"the server {server_mib:.0f}, the client {client_mib:.0f}"
    )

    repository = tmp_path / "models"
    train = [command, "train", "--dataset", "breast-cancer-imbalanced", "--loss", "sigmoid_focal"]
    train += ["--epochs", "20", "--quiet", "--name", "bc", "--model-repository", repository]
    run(train, tmp_path)
    rows = [[0.0] * 30, [1.0] * 30]
    with running_server(
        ["--model-repository", str(repository)],
        ENV,
        ["/v2/health/ready", "/v2/models/bc/ready"],
        program=[str(command)],
        cwd=tmp_path,
    ) as served:
        answers = subprocess.run(
            [client_python, "-c", CLIENT_CHECK, served.http_url, served.grpc_url, "bc"],
            cwd=tmp_path,
            env=ENV,
            input=json.dumps(rows),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert answers.returncode == 0, answers.stderr
    decoded = json.loads(answers.stdout)
    assert decoded["rest"] == decoded["grpc"]
    assert decoded["rest"]["grad"] == [2, 3]
    labels = decoded["rest"]["labels"]
    assert len(labels) == 2
    assert all(len(chosen) == 1 and chosen[0] in ("benign", "malignant") for chosen in labels)
