"""The repository: what a model must be to go live, and the messages when it is not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from lossserve.core.errors import InvalidArgument, NotFound
from lossserve.models.card import ModelCard, sha256_of
from lossserve.models.repository import CPU, CUDA, ModelRepository, check_model_name

from .builders import FEATURES, export, reference, rows, write_model


def test_opens_the_latest_version_with_a_reported_provider(repository: Path) -> None:
    store = ModelRepository(repository)
    assert store.names() == ["spam", "tags", "tiny"]
    assert store.versions("tiny") == [1, 2]
    model = store.open("tiny")
    assert (model.name, model.version, model.input_names, model.card.output_columns) == (
        "tiny",
        2,
        ["features"],
        3,
    )
    assert model.provider == model.session.get_providers()[0]
    assert model.provider in (CPU, CUDA)
    if CUDA not in ort.get_available_providers():
        assert model.provider == CPU
    features = rows(4)
    outputs = model.run({"features": features})
    expected = reference(repository / "tiny" / "2", features)
    np.testing.assert_array_equal(outputs["logits"], expected["logits"])
    np.testing.assert_array_equal(outputs["probabilities"], expected["probabilities"])


def test_folders_that_are_not_model_names_are_ignored(repository: Path) -> None:
    (repository / ".cache").mkdir()
    (repository / "with space").mkdir()
    (repository / "README.md").write_text("not a model")
    assert ModelRepository(repository).names() == ["spam", "tags", "tiny"]


@pytest.mark.parametrize("name", ["..", "../tiny", ".env", "a/b", "", "x" * 65, "tiny\n", 3])
def test_names_that_could_leave_the_repository_are_refused(repository: Path, name: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^model name: expected 1-64 letters"):
        check_model_name(name)
    with pytest.raises(InvalidArgument, match=r"^model name: expected"):
        ModelRepository(repository).open(name)  # type: ignore[arg-type]


def test_unknown_model_and_a_model_without_versions(repository: Path) -> None:
    store = ModelRepository(repository)
    with pytest.raises(NotFound, match=r"^model 'nosuch' is not in the repository$"):
        store.open("nosuch")
    (repository / "empty").mkdir()
    with pytest.raises(NotFound, match=r"^model 'empty' has no version folder"):
        store.open("empty")


def _rewrite_card(directory: Path, **changes: object) -> None:
    card = json.loads((directory / "card.json").read_text())
    card.update(changes)
    (directory / "card.json").write_text(json.dumps(card))


def test_sha256_mismatch_is_refused(repository: Path) -> None:
    with (repository / "tiny" / "2" / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(
        InvalidArgument,
        match=r"^failed to load model 'tiny' version 2: the sha256 of model.onnx is [0-9a-f]{64}, "
        r"expected [0-9a-f]{64} \(card.json\); the file is corrupt or was replaced$",
    ):
        ModelRepository(repository).open("tiny")


def test_a_card_for_another_model_or_version_is_refused(repository: Path) -> None:
    _rewrite_card(repository / "tiny" / "2", version=1)
    with pytest.raises(
        InvalidArgument,
        match=r"card.json describes model 'tiny' version 1, expected 'tiny' version 2$",
    ):
        ModelRepository(repository).open("tiny")


def test_missing_and_invalid_cards_are_refused(repository: Path) -> None:
    (repository / "tags" / "1" / "card.json").unlink()
    with pytest.raises(
        InvalidArgument, match=r"^failed to load model 'tags' version 1: card.json is missing$"
    ):
        ModelRepository(repository).open("tags")
    _rewrite_card(repository / "tiny" / "2", task="regression")
    with pytest.raises(InvalidArgument, match=r"card.json is invalid: task: "):
        ModelRepository(repository).open("tiny")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input": {"name": "x", "shape": [-1, FEATURES], "dtype": "float32"}},
         r"model.onnx has inputs \[features tensor\(float\) \['batch', 4\]\], "
         r"expected one input 'x'"),
        ({"input": {"name": "features", "shape": [-1, 5], "dtype": "float32"}},
         r"input 'features' of model.onnx has shape \['batch', 4\], expected \[-1, 5\]"),
        ({"input": {"name": "features", "shape": [8, FEATURES], "dtype": "float32"}},
         r"input 'features' of model.onnx has shape \['batch', 4\], expected \[8, 4\]"),
        ({"labels": ["a", "b"], "thresholds": [0.0, 0.0]},
         r"output 'logits' of model.onnx has shape \['batch', 3\], expected \[batch, 2\]"),
        ({"thresholds": [0.0]}, r"card.json has 1 thresholds, expected one per label \(3\)"),
    ],
)  # fmt: skip
def test_the_graph_must_match_the_card(
    repository: Path, change: dict[str, object], message: str
) -> None:
    _rewrite_card(repository / "tiny" / "2", **change)
    with pytest.raises(
        InvalidArgument, match=r"^failed to load model 'tiny' version 2: " + message
    ):
        ModelRepository(repository).open("tiny")


def test_a_binary_model_has_two_labels_and_one_column(repository: Path) -> None:
    model = ModelRepository(repository).open("spam")
    assert model.card.labels == ["ham", "spam"]
    assert (model.card.output_columns, model.card.output_labels) == (1, ["spam"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": ["spam"]}, r"card.json has 1 labels for a binary task, expected 2 "
         r"\(\[negative, positive\]\)"),
        ({"thresholds": [0.0, 0.0]}, r"card.json has 2 thresholds, expected one \(the positive "
         r"class\) \(1\)"),
        ({"task": "multilabel"}, r"card.json has 1 thresholds, expected one per label \(2\)"),
    ],
)  # fmt: skip
def test_a_binary_card_must_match_its_one_column(
    repository: Path, change: dict[str, object], message: str
) -> None:
    _rewrite_card(repository / "spam" / "1", **change)
    prefix = r"^failed to load model 'spam' version 1: "
    with pytest.raises(InvalidArgument, match=prefix + message):
        ModelRepository(repository).open("spam")


def test_a_file_that_is_not_onnx_is_refused(repository: Path) -> None:
    directory = repository / "tiny" / "2"
    (directory / "model.onnx").write_bytes(b"not a model")
    _rewrite_card(directory, sha256=sha256_of(directory / "model.onnx"))
    with pytest.raises(
        InvalidArgument, match=r"version 2: model.onnx does not load in ONNX Runtime: "
    ):
        ModelRepository(repository).open("tiny")


def test_a_graph_without_probabilities_is_refused(tmp_path: Path) -> None:
    directory = write_model(tmp_path, "tiny", 1)
    card = ModelCard.read(directory)
    export(directory / "model.onnx", 3, "multiclass", seed=0)
    import onnx

    graph = onnx.load(str(directory / "model.onnx"))
    graph.graph.output.pop()  # drop "probabilities"
    onnx.save(graph, str(directory / "model.onnx"))
    card.model_copy(update={"sha256": sha256_of(directory / "model.onnx")}).write(directory)
    with pytest.raises(InvalidArgument, match=r"expected \['logits', 'probabilities'\]$"):
        ModelRepository(tmp_path).open("tiny")
