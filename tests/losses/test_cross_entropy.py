"""cross_entropy: the STYLE.md checklist, and parity with torch.nn.functional.cross_entropy."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss

import losses
from losses._cross_entropy import CrossEntropyLoss, cross_entropy_loss

WEIGHT = [0.5, 2.0, 0.0, 1.5]


def _hessian_diagonal(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    full: torch.Tensor = torch.autograd.functional.hessian(fn, x)
    return full.reshape(x.numel(), x.numel()).diagonal().reshape(x.shape)


# -- hand-computed values ---------------------------------------------------------------------


def test_hand_computed_value() -> None:
    # logits [0, ln 3]: p = [1/4, 3/4]; target 1 gives -log(3/4) = ln(4/3).
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)
    value = cross_entropy_loss(logits, torch.tensor([1]))
    assert value.item() == pytest.approx(math.log(4.0 / 3.0), rel=1e-12)


def test_hand_computed_weight_ignore_and_sample_weight() -> None:
    # Three samples with logits [0, ln 3] (p = [1/4, 3/4]), targets [0, 1, ignored];
    # weight [3, 1]: per-sample losses 3 ln 4, 1 ln(4/3), 0.
    # mean = (3 ln 4 + ln(4/3)) / (3 + 1); with sample_weight [1, 2, 5] the sum is
    # 3 ln 4 + 2 ln(4/3) and the mean divides by 1*3 + 2*1 = 5 (the ignored sample drops out).
    logits = torch.tensor([[0.0, math.log(3.0)]] * 3, dtype=torch.float64)
    targets = torch.tensor([0, 1, -100])
    weight = [3.0, 1.0]
    none = cross_entropy_loss(logits, targets, weight=weight, reduction="none")
    expected = torch.tensor([3 * math.log(4.0), math.log(4.0 / 3.0), 0.0], dtype=torch.float64)
    torch.testing.assert_close(none, expected)
    mean = cross_entropy_loss(logits, targets, weight=weight)
    assert mean.item() == pytest.approx((3 * math.log(4.0) + math.log(4.0 / 3.0)) / 4, rel=1e-12)
    s = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64)
    weighted = cross_entropy_loss(logits, targets, weight=weight, sample_weight=s)
    assert weighted.item() == pytest.approx(
        (3 * math.log(4.0) + 2 * math.log(4.0 / 3.0)) / 5, rel=1e-12
    )


def test_hand_computed_label_smoothing_with_weight() -> None:
    # logits [0, ln 3] (-log p = [ln 4, ln(4/3)]), target 0, weight [3, 1], eps = 0.5, C = 2:
    # (1 - 0.5) * 3 * ln 4 + (0.5 / 2) * (3 ln 4 + 1 ln(4/3)); the mean divides by w_0 = 3.
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)
    total = 0.5 * 3 * math.log(4.0) + 0.25 * (3 * math.log(4.0) + math.log(4.0 / 3.0))
    value = cross_entropy_loss(
        logits, torch.tensor([0]), weight=[3.0, 1.0], label_smoothing=0.5, reduction="sum"
    )
    assert value.item() == pytest.approx(total, rel=1e-12)
    mean = cross_entropy_loss(logits, torch.tensor([0]), weight=[3.0, 1.0], label_smoothing=0.5)
    assert mean.item() == pytest.approx(total / 3, rel=1e-12)


# -- parity with torch over the grid, gradients included ---------------------------------------


@pytest.mark.parametrize(
    ("weight", "label_smoothing", "ignore_index", "reduction"),
    list(itertools.product([None, WEIGHT], [0.0, 0.1, 1.0], [-100, 1], ["none", "mean", "sum"])),
)
def test_parity_with_torch(
    weight: list[float] | None, label_smoothing: float, ignore_index: int, reduction: str
) -> None:
    gen = torch.Generator().manual_seed(0)
    x1 = torch.randn(24, 4, dtype=torch.float64, generator=gen).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.randint(0, 4, (24,), generator=gen)
    y[[3, 7, 11]] = ignore_index  # some ignored samples whichever ignore_index is used
    ours = cross_entropy_loss(
        x1,
        y,
        weight=weight,
        label_smoothing=label_smoothing,
        ignore_index=ignore_index,
        reduction=reduction,
    )
    ref = F.cross_entropy(
        x2,
        y,
        weight=None if weight is None else torch.tensor(weight, dtype=torch.float64),
        label_smoothing=label_smoothing,
        ignore_index=ignore_index,
        reduction=reduction,
    )
    torch.testing.assert_close(ours, ref)
    probe = torch.randn(ours.shape, dtype=torch.float64, generator=gen)
    (ours * probe).sum().backward()
    (ref * probe).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_parity_with_torch_on_device(dtype: torch.dtype, device: torch.device) -> None:
    x = torch.randn(16, 5, dtype=dtype, device=device)
    y = torch.randint(0, 5, (16,), device=device)
    weight = torch.rand(5, dtype=dtype, device=device) + 0.1
    ours = cross_entropy_loss(x, y, weight=weight, label_smoothing=0.2)
    ref = F.cross_entropy(x, y, weight=weight, label_smoothing=0.2)
    torch.testing.assert_close(ours, ref)


def test_sample_weight_mean_divides_by_weighted_class_weights() -> None:
    # No torch counterpart: sum_i s_i l_i / sum_i s_i w_{y_i}, over the non-ignored samples,
    # built from torch's per-sample losses.
    x = torch.randn(10, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (10,))
    y[2] = -100
    s = torch.rand(10, dtype=torch.float64)
    w = torch.tensor(WEIGHT, dtype=torch.float64)
    per = F.cross_entropy(x, y, weight=w, label_smoothing=0.3, reduction="none")
    valid = y != -100
    expected = (s * per).sum() / (s[valid] * w[y[valid]]).sum()
    ours = cross_entropy_loss(x, y, weight=WEIGHT, label_smoothing=0.3, sample_weight=s)
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(
        cross_entropy_loss(
            x, y, weight=WEIGHT, label_smoothing=0.3, sample_weight=s, reduction="sum"
        ),
        (s * per).sum(),
    )


def test_parity_with_sklearn_log_loss_with_sample_weight() -> None:
    # sklearn's log_loss is the unweighted-class, sample-weighted mean of -log p_{i,y_i}.
    x = torch.randn(30, 3, dtype=torch.float64)
    y = torch.randint(0, 3, (30,))
    s = torch.rand(30, dtype=torch.float64)
    ref = log_loss(y.numpy(), x.softmax(1).numpy(), sample_weight=s.numpy(), labels=[0, 1, 2])
    assert cross_entropy_loss(x, y, sample_weight=s).item() == pytest.approx(ref, rel=1e-10)


def test_all_ignored_mean_is_zero_where_torch_gives_nan() -> None:
    # Convention (reduce_loss): a zero denominator gives 0, not torch's 0/0 = NaN.
    x = torch.randn(3, 4, requires_grad=True)
    y = torch.full((3,), -100)
    value = cross_entropy_loss(x, y, label_smoothing=0.1)
    assert value.item() == 0.0
    assert torch.isnan(F.cross_entropy(x, y, label_smoothing=0.1))
    value.backward()
    assert x.grad is not None and bool((x.grad == 0).all())


# -- degenerate parameters ---------------------------------------------------------------------


def test_unit_weight_is_torch_cross_entropy_with_gradients() -> None:
    x1 = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.randint(0, 3, (12,))
    ours = cross_entropy_loss(x1, y, weight=[1.0, 1.0, 1.0], label_smoothing=0.2)
    ref = F.cross_entropy(x2, y, label_smoothing=0.2)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


def test_full_smoothing_is_uniform_target_cross_entropy() -> None:
    # eps = 1: the target is uniform, l_i = -(1/C) sum_c log p_{i,c}, whatever the label.
    x1 = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.randint(0, 5, (9,))
    ours = cross_entropy_loss(x1, y, label_smoothing=1.0, reduction="none")
    ref = -torch.log_softmax(x2, dim=1).mean(dim=1)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


# -- analytic property -------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.0, 0.25, 0.9])
def test_gradient_is_softmax_minus_smoothed_target(eps: float) -> None:
    # d/dx sum_i l_i = softmax(x_i) - ((1 - eps) onehot(y_i) + eps / C); 0 on ignored rows.
    x = torch.randn(10, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (10,))
    y[4] = -100
    cross_entropy_loss(x, y, label_smoothing=eps, reduction="sum").backward()
    valid = y != -100
    target = (1 - eps) * F.one_hot(y.clamp_min(0), 4).double() + eps / 4
    expected = torch.where(valid[:, None], x.detach().softmax(1) - target, 0.0)
    torch.testing.assert_close(x.grad, expected)


# -- gradcheck ---------------------------------------------------------------------------------


def test_gradcheck_float64() -> None:
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, -100, 1])
    s = torch.rand(6, dtype=torch.float64)

    def fn(z: torch.Tensor) -> torch.Tensor:
        return cross_entropy_loss(z, y, weight=WEIGHT, label_smoothing=0.2, sample_weight=s)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


# -- module ------------------------------------------------------------------------------------


def test_module_equals_function_and_keeps_state() -> None:
    x = torch.randn(8, 4)
    y = torch.tensor([0, 1, 2, 3, 2, 1, 0, 2])
    s = torch.rand(8)
    module = CrossEntropyLoss(weight=WEIGHT, label_smoothing=0.1, ignore_index=2, reduction="sum")
    before = module.weight.clone()
    expected = cross_entropy_loss(
        x, y, weight=WEIGHT, label_smoothing=0.1, ignore_index=2, reduction="sum", sample_weight=s
    )
    torch.testing.assert_close(module(x, y, s), expected)
    torch.testing.assert_close(module.weight, before)
    assert "weight" in dict(module.named_buffers())
    assert CrossEntropyLoss()(x, y).item() == pytest.approx(F.cross_entropy(x, y).item(), rel=1e-6)


@pytest.mark.parametrize(("reduction", "shape"), [("none", (7,)), ("mean", ()), ("sum", ())])
def test_reduction_shapes(reduction: str, shape: tuple[int, ...]) -> None:
    value = cross_entropy_loss(torch.randn(7, 3), torch.randint(0, 3, (7,)), reduction=reduction)
    assert value.shape == shape


# -- bad arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label_smoothing": 1.5}, "label_smoothing"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"weight": [1.0, -1.0, 1.0]}, "weight"),
        ({"weight": [1.0, float("inf"), 1.0]}, "weight"),
        ({"weight": [1.0, 2.0]}, "weight with one value per class"),
        ({"ignore_index": "x"}, "ignore_index"),
        ({"reduction": "avg"}, "reduction to be one of"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cross_entropy_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), **kwargs)  # type: ignore[arg-type]


def test_registry_rejects_unknown_and_bad_parameters() -> None:
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(losses.LossParameterError, match="smoothing: unknown parameter"):
        losses.compute("cross_entropy", x, y, smoothing=0.1)
    with pytest.raises(losses.LossParameterError, match=r"weight\[1\]: Input should be greater"):
        losses.compute("cross_entropy", x, y, weight=[1.0, -1.0, 1.0])


def test_bad_targets_raise() -> None:
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\] for 3 classes, got 3"):
        cross_entropy_loss(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="got -100"):
        cross_entropy_loss(torch.randn(2, 3), torch.tensor([0, -100]), ignore_index=-1)
    with pytest.raises(ValueError, match="supports"):
        cross_entropy_loss(torch.randn(2, 3), torch.ones(2, 3))
    with pytest.raises(TypeError, match="integer class indices"):
        cross_entropy_loss(torch.randn(2, 3), torch.tensor([0.0, 1.0]))


# -- numerical robustness ----------------------------------------------------------------------


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_extreme_logits_are_finite(label_smoothing: float) -> None:
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 0, 2])
    kwargs = {"weight": [1.0, 2.0, 3.0], "label_smoothing": label_smoothing}
    value = cross_entropy_loss(x, y, **kwargs)  # type: ignore[arg-type]
    value.backward()
    assert torch.isfinite(value)
    assert x.grad is not None and torch.isfinite(x.grad).all()
    d = losses.derivatives("cross_entropy", x.detach(), y, hessian=True, **kwargs)
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


@pytest.mark.parametrize("cls", [0, 2])
def test_single_class_batches_are_finite(cls: int) -> None:
    x = torch.randn(6, 3) * 1e4
    y = torch.full((6,), cls)
    d = losses.derivatives("cross_entropy", x, y, hessian=True, label_smoothing=0.1)
    assert torch.isfinite(d.value) and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


def test_half_precision_computes_in_float32(half_dtype: torch.dtype) -> None:
    x = (torch.randn(8, 3) * 100).to(half_dtype).requires_grad_(True)
    y = torch.randint(0, 3, (8,))
    value = cross_entropy_loss(x, y, weight=[1.0, 2.0, 0.5], label_smoothing=0.1)
    value.backward()
    assert value.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == half_dtype and torch.isfinite(x.grad).all()
    expected = cross_entropy_loss(
        x.detach().float(), y, weight=[1.0, 2.0, 0.5], label_smoothing=0.1
    )
    torch.testing.assert_close(value, expected)
    d = losses.derivatives("cross_entropy", x.detach(), y, hessian=True, label_smoothing=0.1)
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


# -- exact Hessian diagonal --------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_hessian_diagonal_is_exact(reduction: str) -> None:
    x = torch.randn(5, 4, dtype=torch.float64)
    y = torch.tensor([0, 3, -100, 1, 2])
    s = torch.rand(5, dtype=torch.float64)
    kwargs = {"weight": WEIGHT, "label_smoothing": 0.3}

    def total(z: torch.Tensor) -> torch.Tensor:
        return cross_entropy_loss(z, y, reduction=reduction, sample_weight=s, **kwargs).sum()  # type: ignore[arg-type]

    d = losses.derivatives(
        "cross_entropy", x, y, hessian=True, reduction=reduction, sample_weight=s, **kwargs
    )
    assert d.hessian_diag is not None
    torch.testing.assert_close(d.hessian_diag, _hessian_diagonal(total, x))


# -- registry ----------------------------------------------------------------------------------


def test_registry_entry() -> None:
    spec = losses.get("cross_entropy")
    assert spec.function is cross_entropy_loss
    assert spec.module is CrossEntropyLoss
    schema = spec.json_schema()
    assert schema["properties"]["ignore_index"]["default"] == -100
    assert schema["properties"]["label_smoothing"]["maximum"] == 1.0
    x, y = torch.randn(6, 4), torch.randint(0, 4, (6,))
    torch.testing.assert_close(
        losses.compute("cross_entropy", x, y, weight=WEIGHT, label_smoothing=0.2),
        F.cross_entropy(x, y, weight=torch.tensor(WEIGHT), label_smoothing=0.2),
    )
