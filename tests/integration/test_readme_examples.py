"""A real `lossserve serve` process on loopback, driven by the README's examples as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import torch

import losses
from bench._server import start_server, stop_server, wait_ready
from lossserve.models.card import ModelCard
from tests.integration._serving import write_table

ROOT = Path(__file__).resolve().parents[2]
CPU = "CPUExecutionProvider"


def _example(name: str) -> str:
    """The fenced block right after ``<!-- example:NAME -->`` in the README."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- example:{name} -->\n```\w*\n(.*?)```", text, re.S)
    assert match, f"README has no example {name!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, int]]:
    """A server started as the README says; on teardown it must exit 0 after SIGTERM and
    have logged nothing but JSON lines."""
    env = {**os.environ, "LOSSSERVE_DEVICES": '["cpu"]'}
    with tempfile.TemporaryFile() as log:
        running = start_server([], env, log)
        try:
            wait_ready(running, ["/v2/health/ready"], timeout=60)
            yield running.http_port, running.grpc_port
        finally:
            stop_server(running)
        assert running.process.returncode == 0, running.log_tail()
        log.seek(0)
        for line in log.read().decode().splitlines():  # structured logs: one JSON object a line
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


def test_readme_loss_model_example(server: tuple[int, int]) -> None:
    """The loss as an Open Inference Protocol model, by curl as the README writes it."""
    http_port, _ = server
    command = _example("loss-model").replace("localhost:8000", f"127.0.0.1:{http_port}")
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    body = json.loads(result.stdout)
    assert body["model_name"] == "loss.focal"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["loss"]["data"][0] == pytest.approx(EXPECTED, rel=1e-6)
    assert outputs["grad"]["shape"] == [2, 3]


def test_readme_python_example(server: tuple[int, int]) -> None:
    http_port, grpc_port = server
    code = (
        _example("python")
        .replace("localhost:8000", f"127.0.0.1:{http_port}")
        .replace("localhost:50051", f"127.0.0.1:{grpc_port}")
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["rest", "grpc"]
    for line in lines[:2]:
        assert float(line.split()[1]) == pytest.approx(EXPECTED, rel=1e-6)
        assert line.endswith("cpu (2, 3)")  # the device, the gradient's shape


def test_metrics_and_health_on_the_real_server(server: tuple[int, int]) -> None:
    http_port, _ = server
    base = f"http://127.0.0.1:{http_port}"
    assert httpx.get(f"{base}/v2/health/live").json() == {"live": True}
    assert "lossserve_worker_alive" in httpx.get(f"{base}/metrics").text


def test_readme_table_example(tmp_path: Path) -> None:
    """The README's table example as written: train on a CSV with an ID column, strings and
    empty cells, serve the repository it wrote, predict raw rows with curl."""
    write_table(tmp_path / "customers.csv")
    train, predict = _example("table").split("\n", 1)
    command = train.replace("lossserve", f"{sys.executable} -m lossserve.cli", 1)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    trained = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "column 'customer_id' left out" in trained.stderr
    env["LOSSSERVE_DEVICES"] = '["cpu"]'
    with tempfile.TemporaryFile() as log:
        running = start_server(["--model-repository", str(tmp_path / "models")], env, log)
        try:
            wait_ready(running, ["/v2/health/ready"], timeout=60)
            command = predict.replace("localhost:8000", f"127.0.0.1:{running.http_port}")
            result = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
        finally:
            stop_server(running)
    assert result.returncode == 0, result.stderr
    predictions = json.loads(result.stdout)["predictions"]
    # the same rows through in-process ONNX Runtime and the card's threshold
    body = re.search(r"-d '(.*)'", predict, re.S)
    assert body, predict
    sent = json.loads(body[1])["instances"]
    directory = tmp_path / "models" / "churn" / "1"
    card = ModelCard.read(directory)
    numbers = [c.name for c in card.columns if c.kind == "number"]
    categories = [c.name for c in card.columns if c.kind == "category"]
    feed = {
        "numeric": np.array(
            [[np.nan if r.get(n) is None else r[n] for n in numbers] for r in sent], np.float32
        ),
        "categorical": np.array([[r.get(n) or "" for n in categories] for r in sent], object),
    }
    session = ort.InferenceSession(str(directory / "model.onnx"), providers=[CPU])
    logits, probabilities = session.run(["logits", "probabilities"], feed)
    decisions = logits[:, 0] >= card.thresholds[0]
    assert [p["labels"] for p in predictions] == [[card.labels[int(d)]] for d in decisions]
    positive = [p["probabilities"][card.labels[1]] for p in predictions]
    np.testing.assert_allclose(positive, probabilities[:, 0], rtol=1e-5)


def test_readme_training_commands(tmp_path: Path) -> None:
    """The training block as written, from a folder of its own: the first ``train`` runs
    whole; ``--loss auto`` runs with its budget cut to 1 s (every candidate after the
    reference is skipped, minutes saved); the experiment (minutes on page-blocks) is parsed
    by the command's own parser, every flag known."""
    import shlex

    from lossserve.cli import build_parser

    block = _example("training").replace("\\\n", " ")
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert [shlex.split(c)[1] for c in commands] == ["train", "train", "experiment"]
    lossserve = str(Path(sys.executable).with_name("lossserve"))
    for command in commands[:2]:
        words = [lossserve if w == ".venv/bin/lossserve" else w for w in shlex.split(command)]
        if "auto" in words:
            words[words.index("--budget") + 1] = "1"
        subprocess.run(words, cwd=tmp_path, check=True, capture_output=True, timeout=600)
    for name in ("digits", "breast"):
        card = json.loads((tmp_path / "models" / name / "1" / "card.json").read_text())
        assert (tmp_path / "models" / name / "1" / "report.html").is_file()
        assert card["name"] == name
    args = build_parser().parse_args(shlex.split(commands[2])[1:])
    assert (args.dataset, args.jobs, str(args.output)) == ("page-blocks", 2, "docs/results.md")


def test_readme_shared_memory_example() -> None:
    """LossClient through shared memory, as the README writes it, against a server that
    allows it: the segment it made (multiprocessing's psm_*) is gone afterwards."""
    env = {**os.environ, "LOSSSERVE_DEVICES": '["cpu"]', "LOSSSERVE_FRONTENDS": "1"}
    before = set(os.listdir("/dev/shm"))
    with tempfile.TemporaryFile() as log:
        running = start_server(["--allow-shared-memory"], env, log)
        try:
            wait_ready(running, ["/v2/health/ready"], timeout=60)
            code = _example("shared-memory").replace(
                "localhost:50051", f"127.0.0.1:{running.grpc_port}"
            )
            result = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
        finally:
            stop_server(running)
    value, shape = result.stdout.strip().split(" ", 1)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(65536, 128)).astype(np.float32)
    targets = rng.integers(0, 128, 65536)
    expected = losses.compute(
        "focal", torch.from_numpy(logits), torch.from_numpy(targets), gamma=2.0
    ).item()
    assert float(value) == pytest.approx(expected, rel=1e-5)
    assert shape == "(65536, 128)"
    assert {
        name for name in set(os.listdir("/dev/shm")) - before if name.startswith("psm_")
    } == set()
