"""Export: the card, the sha256, ONNX Runtime against torch, versions that only increment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from losses import Task
from lossserve.models.card import ModelCard, sha256_of
from lossserve.training import (
    Dataset,
    ExportError,
    TrainConfig,
    TrainOptions,
    TrainResult,
    export_onnx,
    fit,
    resolve_loss,
    train,
    verify_onnx,
)
from lossserve.training import export as export_module
from lossserve.training.export import next_version
from lossserve.training.model import ExportedClassifier

TINY = TrainOptions(epochs=3, patience=3, hidden=16)


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("repository")


@pytest.fixture(scope="module")
def published(repository: Path) -> TrainResult:
    config = TrainConfig(
        dataset="digits-lt",
        loss="focal",
        class_weights="balanced",
        name="digits",
        repository=repository,
        options=TINY,
        quiet=True,
    )
    return train(config)


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_layout_and_card(published: TrainResult, repository: Path, digits: Dataset) -> None:
    directory = repository / "digits" / "1"
    assert published.directory == directory
    assert sorted(p.name for p in directory.iterdir()) == ["card.json", "model.onnx", "report.html"]
    card = ModelCard.read(directory)  # validates against the schema
    assert card == published.card
    assert card.name == "digits" and card.version == 1 and card.task == "multiclass"
    assert card.labels == digits.labels and card.feature_names == digits.feature_names
    assert card.loss == "focal" and card.loss_params["gamma"] == 2.0
    assert len(card.loss_params["alpha"]) == 10  # balanced class weights went to alpha
    assert card.architecture == "mlp" and card.dataset == "digits-lt"
    assert card.threshold_kind == "offsets" and len(card.thresholds) == 10
    assert card.input.name == "features" and card.input.shape == [-1, 64]
    assert card.outputs == ["logits", "probabilities"]
    assert card.validation.macro_f1_thresholds >= card.validation.macro_f1_argmax
    assert 0.0 <= card.onnx_tolerance <= 1e-4
    assert card.created_at.endswith("+00:00")
    assert json.loads((directory / "card.json").read_text())["sha256"] == card.sha256


def test_sha256_matches(published: TrainResult) -> None:
    assert sha256_of(published.model_path) == published.card.sha256


def test_onnx_runtime_equals_torch(published: TrainResult, digits: Dataset) -> None:
    session = _session(published.model_path)
    (feature,) = session.get_inputs()
    assert feature.name == "features" and feature.type == "tensor(float)"
    assert feature.shape[1] == 64 and not isinstance(feature.shape[0], int)  # dynamic batch
    assert [o.name for o in session.get_outputs()] == ["logits", "probabilities"]
    x = digits.test.features
    logits, probabilities = session.run(None, {"features": x})
    wrapper = ExportedClassifier(published.fit.model, Task.MULTICLASS).eval()
    with torch.inference_mode():
        ref_logits, ref_probabilities = (t.numpy() for t in wrapper(torch.from_numpy(x)))
    tolerance = published.card.onnx_tolerance
    assert np.abs(logits - ref_logits).max() <= tolerance
    assert np.abs(probabilities - ref_probabilities).max() <= tolerance
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # The card's thresholds reproduce its test metrics from ONNX Runtime's logits.
    offsets = np.asarray(published.card.thresholds, dtype=np.float32)
    predicted = np.argmax(logits + offsets, axis=1)
    assert (predicted == digits.test.targets).mean() > 0.0
    for rows in (1, 7):  # any batch size
        (out, _) = session.run(None, {"features": x[:rows]})
        assert out.shape == (rows, 10)


@pytest.mark.parametrize(
    ("fixture", "loss", "width"),
    [("breast", "binary_cross_entropy", 1), ("synth", "asymmetric", 8)],
)
def test_binary_and_multilabel_export(
    fixture: str, loss: str, width: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    dataset: Dataset = request.getfixturevalue(fixture)
    model = fit(dataset, resolve_loss(dataset, loss), TINY).model
    path = tmp_path / "model.onnx"
    export_onnx(model, dataset.task, path)
    tolerance = verify_onnx(path, model, dataset.task, dataset.test.features)
    assert tolerance <= 1e-4
    logits, probabilities = _session(path).run(None, {"features": dataset.test.features})
    assert logits.shape == probabilities.shape == (len(dataset.test), width)
    sigmoid = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    assert np.allclose(probabilities, sigmoid, atol=1e-6)


def test_versions_increment_and_nothing_is_overwritten(
    published: TrainResult, repository: Path
) -> None:
    first = published.directory / "model.onnx"
    before = (first.read_bytes(), (published.directory / "card.json").read_text())
    again = train(
        TrainConfig(
            dataset="digits-lt",
            loss="cross_entropy",
            name="digits",
            repository=repository,
            options=TINY.model_copy(update={"seed": 1}),
            quiet=True,
        )
    )
    assert again.directory == repository / "digits" / "2"
    assert again.card.version == 2 and again.card.loss == "cross_entropy"
    assert (first.read_bytes(), (published.directory / "card.json").read_text()) == before
    assert sorted(p.name for p in (repository / "digits").iterdir()) == ["1", "2"]  # no staging


def test_failed_verification_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_module, "MAX_ONNX_DIFFERENCE", -1.0)  # nothing can pass
    config = TrainConfig(
        dataset="breast-cancer-imbalanced",
        loss="binary_cross_entropy",
        name="breast",
        repository=tmp_path,
        options=TINY,
        quiet=True,
    )
    with pytest.raises(ExportError, match="expected ONNX Runtime to match torch within -1"):
        train(config)
    assert list((tmp_path / "breast").iterdir()) == []


@pytest.mark.parametrize("name", ["../escape", "", "a/b", ".hidden", "x" * 65])
def test_bad_model_name_fails_before_training(name: str, tmp_path: Path) -> None:
    config = TrainConfig(dataset="nope", loss="focal", name=name, repository=tmp_path)
    with pytest.raises(ValueError, match="name: expected 1-64 letters"):
        train(config)
    assert list(tmp_path.iterdir()) == []


def test_next_version(tmp_path: Path) -> None:
    assert next_version(tmp_path / "missing") == 1
    for name in ("1", "3", "07", "latest", ".staging-abc"):
        (tmp_path / name).mkdir()
    (tmp_path / "9").write_text("a file, not a version")
    assert next_version(tmp_path) == 4
