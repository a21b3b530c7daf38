"""The registry contract: names, lookups, schemas, and the public surface."""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest
import torch

import losses
from losses import LossSpec, Task
from losses._catalog import REGISTRY

# Public contract (DESIGN.md, issue 2): tests outside this repo rely on these names.
CONTRACT_NAMES = [
    "asymmetric",
    "binary_cross_entropy",
    "circle",
    "cross_entropy",
    "dice",
    "focal",
    "hinge",
    "logit_adjusted_cross_entropy",
    "multilabel_categorical_crossentropy",
    "power_bce",
    "ranking",
    "self_adjusting_dice",
    "sigmoid_focal",
    "squared_error",
    "subset_softmax",
    "tversky",
]


def test_names_are_the_contract_and_sorted() -> None:
    assert losses.names() == CONTRACT_NAMES


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_spec_is_complete(name: str) -> None:
    spec = losses.get(name)
    assert spec.name == name
    assert spec.tasks and spec.tasks <= set(Task)
    assert spec.summary and spec.formula and spec.reference and spec.when_to_use
    schema = spec.json_schema()
    assert schema["type"] == "object"
    assert schema.get("additionalProperties") is False
    doc = spec.function.__doc__ or ""
    for section in (".. math::", "Args:", "Returns:", "Raises:", ">>>", "Note"):
        assert section in doc, f"{name}: docstring lacks {section!r}"
    assert issubclass(spec.module, losses.LossModule)


def test_unknown_name_has_a_did_you_mean_hint() -> None:
    with pytest.raises(ValueError, match=r"Unknown loss 'focall'.*Did you mean 'focal'\?"):
        losses.get("focall")
    with pytest.raises(ValueError, match="Unknown loss 'zzz'; expected one of: asymmetric"):
        losses.get("zzz")


@pytest.fixture
def scratch_registry() -> Iterator[None]:
    """Restore the global registry whatever the test registers."""
    before = dict(REGISTRY.items())
    yield
    for name in list(REGISTRY):
        if name not in before:
            REGISTRY.unregister(name)
    assert dict(REGISTRY.items()) == before


def test_duplicate_registration_raises(scratch_registry: None) -> None:
    with pytest.raises(ValueError, match="registered twice"):
        REGISTRY.register(losses.get("focal"))


def test_a_new_loss_can_be_registered_and_computed(scratch_registry: None) -> None:
    spec = losses.get("focal")
    REGISTRY.register(LossSpec(**{**spec.__dict__, "name": "focal_copy"}))
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    torch.testing.assert_close(losses.compute("focal_copy", x, y), losses.compute("focal", x, y))


def test_compute_validates_params_against_the_schema() -> None:
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(losses.LossParameterError, match="gamma: Input should be greater than or"):
        losses.compute("focal", x, y, gamma=-1)
    with pytest.raises(ValueError, match="reduction to be one of 'none', 'mean', 'sum'"):
        losses.compute("focal", x, y, reduction="average")


def test_exported_members_are_deliberate() -> None:
    assert losses.__all__ == sorted(losses.__all__)
    public = {
        name
        for name, value in vars(losses).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(losses.__all__)
    for name in losses.__all__:
        assert getattr(losses, name).__module__.startswith("losses")


def test_every_loss_function_and_module_is_exported() -> None:
    for name in losses.names():
        spec = losses.get(name)
        assert getattr(losses, spec.function.__name__) is spec.function
        assert getattr(losses, spec.module.__name__) is spec.module
        assert getattr(losses, spec.params.__name__) is spec.params


def test_forward_and_compute_do_not_revalidate(monkeypatch: pytest.MonkeyPatch) -> None:
    # Validation happens once, in __init__ / at the registry boundary; forward only computes
    # (re-validating would read per-class buffers back to the host on every call).
    from losses import _validation

    module = losses.FocalLoss(gamma=1.0, alpha=[1.0, 2.0, 3.0])
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    expected = losses.focal_loss(x, y, gamma=1.0, alpha=[1.0, 2.0, 3.0])
    calls: list[str] = []
    original = _validation.validate_params

    def counting(loss: str, model: type, values: dict[str, object]) -> object:
        calls.append(loss)
        return original(loss, model, values)

    monkeypatch.setattr(_validation, "validate_params", counting)
    torch.testing.assert_close(module(x, y), expected)
    assert calls == []
    losses.compute("focal", x, y, gamma=1.0)
    assert calls == []  # the spec validated through the registry's own path, once
    losses.focal_loss(x, y, gamma=1.0)
    assert calls == ["focal"]
