"""binary_cross_entropy: the STYLE.md checklist, parity with torch and scikit-learn."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss

import losses
from losses._binary_cross_entropy import BinaryCrossEntropyLoss, binary_cross_entropy_loss

POS_WEIGHT = [0.5, 2.0, 3.0]


def _hessian_diagonal(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    full: torch.Tensor = torch.autograd.functional.hessian(fn, x)
    return full.reshape(x.numel(), x.numel()).diagonal().reshape(x.shape)


# -- hand-computed values ---------------------------------------------------------------------


def test_hand_computed_values() -> None:
    # logits [0, ln 3]: sigma = [1/2, 3/4]; targets [1, 0]:
    # -log(1/2) = ln 2 and -log(1 - 3/4) = ln 4 = 2 ln 2; mean = 3 ln 2 / 2.
    # pos_weight 2 doubles the positive term only: sum = 2 ln 2 + 2 ln 2 = 4 ln 2.
    logits = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)
    targets = torch.tensor([1.0, 0.0], dtype=torch.float64)
    assert binary_cross_entropy_loss(logits, targets).item() == pytest.approx(
        1.5 * math.log(2.0), rel=1e-12
    )
    value = binary_cross_entropy_loss(logits, targets, pos_weight=2.0, reduction="sum")
    assert value.item() == pytest.approx(4 * math.log(2.0), rel=1e-12)


def test_hand_computed_soft_target_and_sample_weight() -> None:
    # Multilabel, one row: logits [ln 3, 0], targets [1/4, 1], pos_weight [2, 1]:
    # element 0: -(2 * 1/4 * log(3/4) + 3/4 * log(1/4)); element 1: -log(1/2) = ln 2.
    # Second row identical with sample_weight 3 (first row 1): mean = (1 + 3) * sum / (4 * C=2).
    logits = torch.tensor([[math.log(3.0), 0.0]] * 2, dtype=torch.float64)
    targets = torch.tensor([[0.25, 1.0]] * 2, dtype=torch.float64)
    e0 = -(2 * 0.25 * math.log(0.75) + 0.75 * math.log(0.25))
    e1 = math.log(2.0)
    none = binary_cross_entropy_loss(logits, targets, pos_weight=[2.0, 1.0], reduction="none")
    torch.testing.assert_close(none, torch.tensor([[e0, e1]] * 2, dtype=torch.float64))
    s = torch.tensor([1.0, 3.0], dtype=torch.float64)
    mean = binary_cross_entropy_loss(logits, targets, pos_weight=[2.0, 1.0], sample_weight=s)
    assert mean.item() == pytest.approx(4 * (e0 + e1) / (4 * 2), rel=1e-12)


# -- parity with torch, gradients included ----------------------------------------------------


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(
    ("shape", "pos_weight"),
    [
        ((20,), None),
        ((20,), 3.0),
        ((20, 3), None),
        ((20, 3), 0.25),
        ((20, 3), POS_WEIGHT),
    ],
)
def test_parity_with_torch(
    shape: tuple[int, ...], pos_weight: float | list[float] | None, reduction: str
) -> None:
    gen = torch.Generator().manual_seed(0)
    x1 = (3 * torch.randn(shape, dtype=torch.float64, generator=gen)).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.rand(shape, dtype=torch.float64, generator=gen)  # soft targets
    y[:5] = y[:5].round()
    ours = binary_cross_entropy_loss(x1, y, pos_weight=pos_weight, reduction=reduction)
    ref = F.binary_cross_entropy_with_logits(
        x2,
        y,
        pos_weight=None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64),
        reduction=reduction,
    )
    torch.testing.assert_close(ours, ref)
    probe = torch.randn(ours.shape, dtype=torch.float64, generator=gen)
    (ours * probe).sum().backward()
    (ref * probe).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_parity_with_torch_on_device(dtype: torch.dtype, device: torch.device) -> None:
    x = torch.randn(16, 3, dtype=dtype, device=device)
    y = torch.randint(0, 2, (16, 3), device=device).to(dtype)
    pw = torch.tensor(POS_WEIGHT, dtype=dtype, device=device)
    ours = binary_cross_entropy_loss(x, y, pos_weight=pw)
    torch.testing.assert_close(ours, F.binary_cross_entropy_with_logits(x, y, pos_weight=pw))


def test_sample_weight_mean_is_over_weighted_elements() -> None:
    # torch's `weight=s[:, None]` with reduction="sum" gives sum_ij s_i l_ij; our mean divides
    # it by C * sum_i s_i (torch's weighted "mean" would divide by N * C instead).
    x = torch.randn(10, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (10, 3)).double()
    s = torch.rand(10, dtype=torch.float64)
    total = F.binary_cross_entropy_with_logits(x, y, weight=s[:, None], reduction="sum")
    torch.testing.assert_close(
        binary_cross_entropy_loss(x, y, sample_weight=s), total / (3 * s.sum())
    )


def test_parity_with_sklearn_log_loss() -> None:
    # Binary log_loss on p = sigmoid(x) with sample_weight: sum_i s_i l_i / sum_i s_i, our
    # weighted mean. sklearn clips p to [eps, 1 - eps]; these logits stay far from it.
    gen = torch.Generator().manual_seed(1)
    x = 2 * torch.randn(50, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 2, (50,), generator=gen).double()
    s = torch.rand(50, dtype=torch.float64, generator=gen)
    p = torch.sigmoid(x).numpy()
    ref = log_loss(y.numpy(), p, sample_weight=s.numpy())
    assert binary_cross_entropy_loss(x, y, sample_weight=s).item() == pytest.approx(ref, rel=1e-10)
    assert binary_cross_entropy_loss(x, y).item() == pytest.approx(
        log_loss(y.numpy(), p), rel=1e-10
    )


def test_pos_weight_as_tensor_scalar_or_per_class() -> None:
    # torch takes pos_weight as a tensor; a 0-d tensor is one scalar for every element.
    x, y = torch.randn(6, 3), torch.rand(6, 3)
    for pw in (torch.tensor(2.0), torch.tensor(POS_WEIGHT)):
        ref = F.binary_cross_entropy_with_logits(x, y, pos_weight=pw)
        torch.testing.assert_close(binary_cross_entropy_loss(x, y, pos_weight=pw), ref)


# -- degenerate parameters ---------------------------------------------------------------------


@pytest.mark.parametrize("unit", [1.0, [1.0, 1.0, 1.0]])
def test_unit_pos_weight_is_torch_bce_with_gradients(unit: float | list[float]) -> None:
    x1 = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.rand(8, 3, dtype=torch.float64)
    ours = binary_cross_entropy_loss(x1, y, pos_weight=unit)
    ref = F.binary_cross_entropy_with_logits(x2, y)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


# -- analytic properties -----------------------------------------------------------------------


@pytest.mark.parametrize("pos_weight", [None, 2.5, POS_WEIGHT])
def test_gradient_closed_form(pos_weight: float | list[float] | None) -> None:
    # d l / d x = (1 + (w - 1) y) sigma(x) - w y, with w = pos_weight (1 when None).
    x = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    y = torch.rand(12, 3, dtype=torch.float64)
    binary_cross_entropy_loss(x, y, pos_weight=pos_weight, reduction="sum").backward()
    w = torch.tensor(1.0 if pos_weight is None else pos_weight, dtype=torch.float64)
    expected = (1 + (w - 1) * y) * torch.sigmoid(x.detach()) - w * y
    torch.testing.assert_close(x.grad, expected)


def test_minimum_at_soft_target_is_its_entropy() -> None:
    # At x = logit(t) the loss is the binary entropy H(t) and the gradient is 0.
    t = torch.tensor([0.1, 0.3, 0.5, 0.9], dtype=torch.float64)
    x = torch.logit(t).requires_grad_(True)
    value = binary_cross_entropy_loss(x, t, reduction="none")
    value.sum().backward()
    torch.testing.assert_close(value, -(t * t.log() + (1 - t) * (1 - t).log()))
    torch.testing.assert_close(x.grad, torch.zeros_like(t))


# -- gradcheck ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pos_weight", [None, 2.0, POS_WEIGHT])
def test_gradcheck_float64(pos_weight: float | list[float] | None) -> None:
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    y = torch.rand(5, 3, dtype=torch.float64)
    s = torch.rand(5, dtype=torch.float64)

    def fn(z: torch.Tensor) -> torch.Tensor:
        return binary_cross_entropy_loss(z, y, pos_weight=pos_weight, sample_weight=s)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


# -- module ------------------------------------------------------------------------------------


def test_module_equals_function_and_keeps_state() -> None:
    x = torch.randn(8, 3)
    y = torch.randint(0, 2, (8, 3)).float()
    s = torch.rand(8)
    module = BinaryCrossEntropyLoss(pos_weight=POS_WEIGHT, reduction="sum")
    before = module.pos_weight.clone()
    expected = binary_cross_entropy_loss(
        x, y, pos_weight=POS_WEIGHT, reduction="sum", sample_weight=s
    )
    torch.testing.assert_close(module(x, y, s), expected)
    torch.testing.assert_close(module.pos_weight, before)
    assert "pos_weight" in dict(module.named_buffers())
    scalar = BinaryCrossEntropyLoss(pos_weight=2.0)
    torch.testing.assert_close(scalar(x, y), binary_cross_entropy_loss(x, y, pos_weight=2.0))


@pytest.mark.parametrize(
    ("shape", "reduction", "expected"),
    [
        ((7,), "none", (7,)),
        ((7, 3), "none", (7, 3)),
        ((7,), "mean", ()),
        ((7, 3), "mean", ()),
        ((7, 3), "sum", ()),
    ],
)
def test_reduction_shapes(
    shape: tuple[int, ...], reduction: str, expected: tuple[int, ...]
) -> None:
    x, y = torch.randn(shape), torch.rand(shape)
    assert binary_cross_entropy_loss(x, y, reduction=reduction).shape == expected


# -- bad arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pos_weight": 0.0}, "pos_weight"),
        ({"pos_weight": -1.0}, "pos_weight"),
        ({"pos_weight": [1.0, -2.0, 1.0]}, "pos_weight"),
        ({"pos_weight": [1.0, 2.0]}, "pos_weight with one value per class"),
        ({"reduction": "avg"}, "reduction to be one of"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        binary_cross_entropy_loss(torch.randn(4, 3), torch.rand(4, 3), **kwargs)  # type: ignore[arg-type]


def test_bad_targets_raise() -> None:
    with pytest.raises(ValueError, match=r"multilabel targets in \[0, 1\]"):
        binary_cross_entropy_loss(torch.randn(2, 3), torch.full((2, 3), 1.5))
    with pytest.raises(ValueError, match=r"binary targets in \[0, 1\]"):
        binary_cross_entropy_loss(torch.randn(2), torch.tensor([0.0, -1.0]))
    with pytest.raises(ValueError, match="supports"):
        binary_cross_entropy_loss(torch.randn(2, 3), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"sample_weight of shape \(2,\)"):
        binary_cross_entropy_loss(torch.randn(2), torch.ones(2), sample_weight=torch.ones(3))


def test_registry_rejects_unknown_parameter() -> None:
    with pytest.raises(losses.LossParameterError, match="gamma: unknown parameter"):
        losses.compute("binary_cross_entropy", torch.randn(3), torch.ones(3), gamma=1.0)


# -- numerical robustness ----------------------------------------------------------------------


@pytest.mark.parametrize("fill", [0.0, 1.0])
@pytest.mark.parametrize("pos_weight", [None, POS_WEIGHT])
def test_extreme_logits_and_one_sided_batches_are_finite(
    fill: float, pos_weight: list[float] | None
) -> None:
    # All-negative (fill 0) and all-positive (fill 1) batches, logits at +-1e4.
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], requires_grad=True)
    y = torch.full((2, 3), fill)
    value = binary_cross_entropy_loss(x, y, pos_weight=pos_weight)
    value.backward()
    assert torch.isfinite(value)
    assert x.grad is not None and torch.isfinite(x.grad).all()
    d = losses.derivatives(
        "binary_cross_entropy", x.detach(), y, hessian=True, pos_weight=pos_weight
    )
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()
    # The wrong-side logits cost 1e4 each (times pos_weight on positives), not inf.
    assert value.item() > 1e3


def test_half_precision_computes_in_float32(half_dtype: torch.dtype) -> None:
    x = (torch.randn(8, 3) * 100).to(half_dtype).requires_grad_(True)
    y = torch.randint(0, 2, (8, 3)).to(half_dtype)
    value = binary_cross_entropy_loss(x, y, pos_weight=POS_WEIGHT)
    value.backward()
    assert value.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == half_dtype and torch.isfinite(x.grad).all()
    expected = binary_cross_entropy_loss(x.detach().float(), y.float(), pos_weight=POS_WEIGHT)
    torch.testing.assert_close(value, expected)
    d = losses.derivatives("binary_cross_entropy", x.detach(), y, hessian=True)
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


# -- exact Hessian diagonal --------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6,), (4, 3)])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_hessian_diagonal_is_exact(shape: tuple[int, ...], reduction: str) -> None:
    x = torch.randn(shape, dtype=torch.float64)
    y = torch.rand(shape, dtype=torch.float64)
    s = torch.rand(shape[0], dtype=torch.float64)
    pos_weight: float | list[float] = 2.0 if len(shape) == 1 else POS_WEIGHT

    def total(z: torch.Tensor) -> torch.Tensor:
        return binary_cross_entropy_loss(
            z, y, pos_weight=pos_weight, reduction=reduction, sample_weight=s
        ).sum()

    d = losses.derivatives(
        "binary_cross_entropy",
        x,
        y,
        hessian=True,
        reduction=reduction,
        sample_weight=s,
        pos_weight=pos_weight,
    )
    assert d.hessian_diag is not None
    torch.testing.assert_close(d.hessian_diag, _hessian_diagonal(total, x))


# -- registry ----------------------------------------------------------------------------------


def test_registry_entry() -> None:
    spec = losses.get("binary_cross_entropy")
    assert spec.function is binary_cross_entropy_loss
    assert spec.module is BinaryCrossEntropyLoss
    assert spec.coupling(spec.validate({}), losses.Task.MULTILABEL) is losses.Coupling.ELEMENT
    assert spec.json_schema()["properties"]["pos_weight"]["default"] is None
    x, y = torch.randn(5, 3), torch.rand(5, 3)
    torch.testing.assert_close(
        losses.compute("binary_cross_entropy", x, y, pos_weight=POS_WEIGHT),
        F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor(POS_WEIGHT)),
    )
