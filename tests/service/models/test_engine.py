"""ModelEngine: outputs equal in-process ONNX Runtime, the decision rule, classification,
bad requests, and loading/unloading with the old version kept on failure."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lossserve.core.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from lossserve.core.state import ServiceState
from lossserve.models.admin import RepositoryAdmin
from lossserve.models.engine import (
    InferRequest,
    ModelEngine,
    RequestedOutput,
    classify,
    decide,
)
from lossserve.models.repository import LoadedModel

from .builders import LABELS, reference, rows, write_model
from .conftest import TOKEN, with_state


@pytest.mark.parametrize(("model", "version"), [("tiny", "2"), ("tags", "1"), ("spam", "1")])
def test_outputs_equal_onnxruntime_and_the_cards_decision_rule(
    repository: Path, model: str, version: str
) -> None:
    features = rows(7, seed=3)
    expected = reference(repository / model / version, features)

    async def scenario(state: ServiceState) -> None:
        result = await state.models.infer(InferRequest(model, {"features": features}))
        assert (result.model, result.version) == (model, version)
        assert list(result.outputs) == ["logits", "probabilities", "decisions"]
        np.testing.assert_allclose(result.outputs["logits"], expected["logits"], atol=1e-6)
        np.testing.assert_allclose(
            result.outputs["probabilities"], expected["probabilities"], atol=1e-6
        )
        np.testing.assert_array_equal(result.outputs["decisions"], expected["decisions"])
        assert result.outputs["decisions"].dtype == np.int64

    with_state(repository, scenario)


def test_decision_rule_by_hand() -> None:
    logits = np.array([[1.0, 0.9, 0.0], [0.0, 0.0, 0.1]], dtype=np.float32)
    offsets = np.array([0.0, 0.2, -0.5], dtype=np.float32)
    np.testing.assert_array_equal(decide("multiclass", offsets, logits), [1, 1])
    thresholds = np.array([0.5, 0.0, 0.1], dtype=np.float32)
    np.testing.assert_array_equal(decide("multilabel", thresholds, logits), [[1, 1, 0], [0, 1, 1]])


def test_classification_strings() -> None:
    values = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]], dtype=np.float32)
    top = classify(values, 2, ["a", "b", "c"])
    assert top.tolist() == [
        [b"0.700000:1:b", b"0.200000:2:c"],
        [b"0.500000:0:a", b"0.250000:1:b"],
    ]
    assert classify(values, 9, ["a", "b", "c"]).shape == (2, 3)


def test_requested_outputs_in_order_with_classification(repository: Path) -> None:
    async def scenario(state: ServiceState) -> None:
        result = await state.models.infer(
            InferRequest(
                "tiny",
                {"features": rows(2)},
                outputs=(RequestedOutput("decisions"), RequestedOutput("logits", classification=1)),
                id="r1",
            )
        )
        assert list(result.outputs) == ["decisions", "logits"]
        assert result.outputs["logits"].shape == (2, 1)
        assert result.id == "r1"

    with_state(repository, scenario)


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (InferRequest("tiny", {"x": rows(1)}), InvalidArgument,
         "unexpected input 'x': model 'tiny' has one input, 'features'"),
        (InferRequest("tiny", {}), InvalidArgument, "missing input 'features' of model 'tiny'"),
        (InferRequest("tiny", {"features": rows(2).astype(np.float64)}), InvalidArgument,
         "input 'features': expected datatype FP32, got FP64"),
        (InferRequest("tiny", {"features": rows(2)[:, :3]}), InvalidArgument,
         "input 'features': expected shape [-1, 4], got [2, 3]"),
        (InferRequest("tiny", {"features": rows(1)[0]}), InvalidArgument,
         "input 'features': expected shape [-1, 4], got [4]"),
        (InferRequest("tiny", {"features": rows(1)[:0]}), InvalidArgument,
         "input 'features': expected at least one row, got 0"),
        (InferRequest("tiny", {"features": rows(1)}, outputs=(RequestedOutput("nope"),)),
         InvalidArgument,
         "unknown output 'nope': expected one of ['logits', 'probabilities', 'decisions']"),
        (InferRequest("tiny", {"features": rows(1)}, outputs=(RequestedOutput("decisions", 2),)),
         InvalidArgument, "output 'decisions': classification applies to 'logits' or "
         "'probabilities', not to decisions"),
        (InferRequest("tiny", {"features": rows(1)}, outputs=(RequestedOutput("logits"),) * 2),
         InvalidArgument, "output 'logits': requested twice"),
        (InferRequest("nosuch", {"features": rows(1)}), NotFound, "unknown model 'nosuch'"),
        (InferRequest("tiny", {"features": rows(1)}, version="1"), NotFound,
         "model 'tiny' has no version 1 being served (serving 2)"),
        (InferRequest("tiny", {"features": rows(1)}, version="v2"), InvalidArgument,
         "model version: expected a positive integer, got 'v2'"),
        (InferRequest("../tiny", {"features": rows(1)}), InvalidArgument,
         "model name: expected 1-64 letters, digits, '_', '.' or '-', starting with a letter "
         "or digit, got '../tiny'"),
    ],
)  # fmt: skip
def test_bad_requests(
    repository: Path, request_: InferRequest, error: type[Exception], message: str
) -> None:
    async def scenario(state: ServiceState) -> None:
        with pytest.raises(error) as caught:
            await state.models.infer(request_)
        assert str(caught.value) == message

    with_state(repository, scenario)


def test_metadata_config_and_readiness(repository: Path) -> None:
    async def scenario(state: ServiceState) -> None:
        models = state.models
        metadata = models.metadata("tags")
        assert metadata.versions == ("1",)
        assert [(o.name, o.shape) for o in metadata.outputs][-1] == ("decisions", (-1, 3))
        assert metadata.parameters["task"] == "multilabel"
        assert metadata.parameters["execution_provider"] == models.model("tags").provider
        config = models.config("tiny", "2")
        assert config["max_batch_size"] == 16
        assert config["input"] == [{"name": "features", "data_type": "TYPE_FP32", "dims": [4]}]
        assert config["output"][2] == {
            "name": "decisions",
            "data_type": "TYPE_INT64",
            "dims": [1],
            "reshape": {"shape": []},
        }
        assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 500
        assert models.is_ready("tiny") and models.is_ready("tiny", "2")
        assert not models.is_ready("tiny", "1")
        with pytest.raises(NotFound, match="unknown model 'nosuch'"):
            models.is_ready("nosuch")

    with_state(repository, scenario)


def test_predict_answers_labels_after_thresholds(repository: Path) -> None:
    features = rows(3, seed=8)
    expected = reference(repository / "tags" / "1", features)

    async def scenario(state: ServiceState) -> None:
        named = [
            dict(zip([f"x{i}" for i in range(4)], row, strict=True)) for row in features.tolist()
        ]
        for instances in (features.tolist(), named):
            predictions = await state.models.predict("tags", instances)
            for prediction, decisions, probabilities in zip(
                predictions, expected["decisions"], expected["probabilities"], strict=True
            ):
                labels = LABELS["multilabel"]
                assert prediction.labels == [labels[i] for i in np.flatnonzero(decisions)]
                assert list(prediction.probabilities) == labels
                np.testing.assert_allclose(
                    list(prediction.probabilities.values()), probabilities, atol=1e-6
                )
        for bad, message in [
            ([], "instances: expected a non-empty list of feature rows"),
            ([[1, 2, 3]], "instances[0]: expected a row of 4 numbers, got 3"),
            ([[1, 2, 3, "4"]], "instances[0][3]: expected a number, got '4'"),
            ([[1, 2, 3, True]], "instances[0][3]: expected a number, got True"),
            (
                [{"x0": 1}],
                "instances[0]: expected the features ['x0', 'x1', 'x2', 'x3'], "
                "missing ['x1', 'x2', 'x3'], unexpected []",
            ),
        ]:
            with pytest.raises(InvalidArgument) as caught:
                await state.models.predict("tags", bad)
            assert str(caught.value) == message

    with_state(repository, scenario)


def test_failed_load_keeps_the_old_version_and_unload_then_load(repository: Path) -> None:
    async def scenario(state: ServiceState) -> None:
        models = state.models
        features = rows(2)
        before = (await models.infer(InferRequest("tiny", {"features": features}))).outputs
        directory = write_model(repository, "tiny", 3, seed=9)
        with (directory / "model.onnx").open("ab") as handle:
            handle.write(b"junk")
        with pytest.raises(
            InvalidArgument, match=r"^failed to load model 'tiny' version 3: the sha256"
        ):
            await models.load("tiny")
        after = await models.infer(InferRequest("tiny", {"features": features}))
        assert after.version == "2"
        np.testing.assert_array_equal(after.outputs["logits"], before["logits"])
        assert [(e.name, e.version, e.state) for e in models.index()] == [
            ("spam", "1", "READY"),
            ("tags", "1", "READY"),
            ("tiny", "2", "READY"),
        ]
        await models.unload("tags")
        assert not models.is_ready("tags")
        with pytest.raises(NotFound, match=r"^model 'tags' is not available: unloaded$"):
            await models.infer(InferRequest("tags", {"features": features}))
        assert [e.name for e in models.index(ready_only=True)] == ["spam", "tiny"]
        assert models.index()[1].state == "UNAVAILABLE"
        with pytest.raises(NotFound, match=r"^model 'tags' is not loaded$"):
            await models.unload("tags")
        shutil.rmtree(directory)
        write_model(repository, "tiny", 3, seed=9)
        assert (await models.load("tiny")).version == 3
        assert (await models.infer(InferRequest("tiny", {"features": features}))).version == "3"
        await models.load("tags")
        assert models.is_ready("tags")
        with pytest.raises(NotFound, match=r"^model 'nosuch' is not in the repository$"):
            await models.load("nosuch")

    with_state(repository, scenario)


def test_a_model_broken_at_start_is_listed_with_its_reason(repository: Path) -> None:
    (repository / "spam" / "1" / "card.json").unlink()

    async def scenario(state: ServiceState) -> None:
        entry = next(e for e in state.models.index() if e.name == "spam")
        assert (entry.version, entry.state) == ("1", "UNAVAILABLE")
        assert entry.reason == "failed to load model 'spam' version 1: card.json is missing"
        with pytest.raises(NotFound, match=r"is not available: failed to load model 'spam'"):
            await state.models.infer(InferRequest("spam", {"features": rows(1)}))
        # strict readiness, as Triton's: not ready while a model of the repository fails
        assert state.models.failed() == ["spam"] and not state.ready()
        write_model(repository, "spam", 2, task="binary", seed=4)  # a good version: loaded
        await state.models.load("spam")
        assert state.models.failed() == [] and state.ready()
        await state.models.unload("spam")  # unloaded on purpose: not a failure
        assert state.ready()

    with_state(repository, scenario)


def test_without_strict_readiness_a_broken_model_leaves_the_server_ready(
    repository: Path,
) -> None:
    (repository / "spam" / "1" / "card.json").unlink()

    async def scenario(state: ServiceState) -> None:
        assert state.models.failed() == ["spam"]
        assert state.ready()  # the other models serve

    with_state(repository, scenario, strict_readiness=False)


def test_admin_token_checks() -> None:
    for off in (None, "", "  "):  # unset or empty: the API is off, never "any token"
        with pytest.raises(PermissionDenied, match="the model repository API is disabled"):
            RepositoryAdmin(ModelEngine(None), off).authorize("Bearer ")
    admin = RepositoryAdmin(ModelEngine(None), "t0k")
    admin.authorize("Bearer t0k")
    admin.authorize("bearer  t0k ")
    for bad in (None, "", "t0k", "Basic t0k", "Bearer t0k2", "Bearer "):
        with pytest.raises(Unauthenticated):
            admin.authorize(bad)


def test_without_a_repository_nothing_is_served() -> None:
    async def scenario(state: ServiceState) -> None:
        assert state.models.index() == []
        with pytest.raises(NotFound, match=r"^unknown model 'tiny'$"):
            await state.models.infer(InferRequest("tiny", {"features": rows(1)}))
        with pytest.raises(NotFound, match="no model repository is configured"):
            await state.models.load("tiny")

    with_state(None, scenario)


def test_concurrent_requests_each_get_their_own_rows(repository: Path) -> None:
    batches = [rows(1 + i % 3, seed=100 + i) for i in range(24)]

    async def scenario(state: ServiceState) -> None:
        results = await asyncio.gather(
            *(state.models.infer(InferRequest("tiny", {"features": b})) for b in batches)
        )
        for features, result in zip(batches, results, strict=True):
            expected = reference(repository / "tiny" / "2", features)
            np.testing.assert_allclose(result.outputs["logits"], expected["logits"], atol=1e-6)
        stats = state.models.stats("tiny")[0]
        assert stats.success_count == 24
        assert stats.inference_count == sum(len(b) for b in batches)
        assert stats.execution_count < 24  # merged by the dynamic batcher

    with_state(repository, scenario)


async def _eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the timeout"
        await asyncio.sleep(0.02)


def _listed(state: ServiceState) -> list[str]:
    return [entry.name for entry in state.models.index()]


def test_poll_follows_the_repository_folder(repository: Path) -> None:
    """Triton's poll mode: new versions and new models are loaded, removed ones unloaded, a
    version that fails to load leaves the served one serving and is retried once its files
    change; the repository API's load and unload are refused meanwhile."""

    async def scenario(state: ServiceState) -> None:
        models = state.models
        assert models.model("tiny").version == 2
        # written file by file, as a copy would: the first looks may see it half written
        write_model(repository, "tiny", 3, seed=5)
        await _eventually(lambda: models.model("tiny").version == 3)
        result = await models.infer(InferRequest("tiny", {"features": rows(3)}))
        expected = reference(repository / "tiny" / "3", rows(3))
        np.testing.assert_allclose(result.outputs["logits"], expected["logits"], rtol=1e-5)

        write_model(repository, "fresh", 1, task="multilabel", seed=6)
        await _eventually(lambda: models.is_ready("fresh") if "fresh" in _listed(state) else False)

        shutil.rmtree(repository / "tags")
        await _eventually(lambda: "tags" not in _listed(state))
        with pytest.raises(NotFound, match="unknown model 'tags'"):
            await models.infer(InferRequest("tags", {"features": rows(1)}))

        assert models.repository is not None
        opened: list[str] = []
        open_model = models.repository.open

        def counting(name: str) -> LoadedModel:
            opened.append(name)
            return open_model(name)

        models.repository.open = counting  # type: ignore[method-assign]
        broken = write_model(repository.parent / "elsewhere", "tiny", 4, seed=7)
        (broken / "card.json").write_text("{}")
        broken.rename(repository / "tiny" / "4")  # at once, as a trained version arrives
        await _eventually(lambda: bool(opened))  # the poll found it and tried it
        await asyncio.sleep(0.5)  # ten polls more: one failed load, not retried without a change
        assert opened == ["tiny"]
        assert models.model("tiny").version == 3
        write_model(repository, "tiny", 5, seed=8)
        await _eventually(lambda: models.model("tiny").version == 5)

        for call in (state.admin.load, state.admin.unload):
            with pytest.raises(PermissionDenied, match="LOSSSERVE_MODEL_CONTROL=poll"):
                await call(f"Bearer {TOKEN}", "tiny")

    with_state(repository, scenario, model_control="poll", model_poll_s=0.05, admin_token=TOKEN)


def test_explicit_control_does_not_poll(repository: Path) -> None:
    async def scenario(state: ServiceState) -> None:
        write_model(repository, "tiny", 3, seed=5)
        await asyncio.sleep(0.3)
        assert state.models.model("tiny").version == 2
        await state.admin.load(f"Bearer {TOKEN}", "tiny")
        assert state.models.model("tiny").version == 3

    with_state(repository, scenario, model_poll_s=0.05, admin_token=TOKEN)
