"""multilabel_categorical_crossentropy (ZLPR): the STYLE.md checklist."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import losses
from losses._zlpr import (
    MultilabelCategoricalCrossentropyLoss,
    MultilabelCategoricalCrossentropyParams,
)
from losses._zlpr import (
    multilabel_categorical_crossentropy_loss as zlpr,
)

NAME = "multilabel_categorical_crossentropy"


def _su_reference(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Su's published implementation (bert4keras ``multilabel_categorical_crossentropy``).

    Flip the positives' sign, mask the other set with -1e12, append a 0 column, logsumexp.
    """
    y_pred = (1 - 2 * targets) * logits
    y_pred_neg = y_pred - targets * 1e12
    y_pred_pos = y_pred - (1 - targets) * 1e12
    zeros = torch.zeros_like(y_pred[..., :1])
    y_pred_neg = torch.cat([y_pred_neg, zeros], dim=-1)
    y_pred_pos = torch.cat([y_pred_pos, zeros], dim=-1)
    return torch.logsumexp(y_pred_neg, dim=-1) + torch.logsumexp(y_pred_pos, dim=-1)


def _random_multilabel(
    n: int, c: int, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(n * 100 + c)
    x = torch.randn(n, c, generator=gen, dtype=dtype) * 2
    y = (torch.rand(n, c, generator=gen) < 0.3).to(dtype)
    y[0] = 0.0  # a sample with no positives
    y[1] = 1.0  # a sample with no negatives
    return x, y


def test_hand_computed_values() -> None:
    # sample 0: s = [1, -2, 0.5], positives {0}: negatives {-2, 0.5} joined by 0:
    #   log(1 + e^-2 + e^0.5) + log(1 + e^-1)
    # sample 1: no positives: log(1 + e^1 + e^-2 + e^0.5) + log(1) (the 0 class only)
    # sample 2: all positive: log(1) + log(1 + e^-1 + e^2 + e^-0.5)
    logits = torch.tensor([[1.0, -2.0, 0.5]] * 3, dtype=torch.float64)
    targets = torch.tensor([[1.0, 0, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.float64)
    e = math.exp
    expected = torch.tensor(
        [
            math.log(1 + e(-2) + e(0.5)) + math.log(1 + e(-1)),
            math.log(1 + e(1) + e(-2) + e(0.5)),
            math.log(1 + e(-1) + e(2) + e(-0.5)),
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(zlpr(logits, targets, reduction="none"), expected)


def test_one_class_is_binary_cross_entropy_with_gradients() -> None:
    # C = 1: a positive gives log(1) + log(1 + e^{-s}) = softplus(-s), a negative
    # log(1 + e^{s}) + log(1) = softplus(s): binary cross-entropy with logits exactly.
    x1 = torch.randn(10, 1, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = (torch.rand(10, 1) < 0.5).double()
    ours = zlpr(x1, y, reduction="sum")
    ref = F.binary_cross_entropy_with_logits(x2, y, reduction="sum")
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


def test_gradient_is_softmax_over_each_set() -> None:
    # d/ds_n = e^{s_n} / (1 + sum_neg e^s); d/ds_p = -e^{-s_p} / (1 + sum_pos e^{-s})
    x, y = _random_multilabel(6, 5)
    x.requires_grad_(True)
    zlpr(x, y, reduction="sum").backward()
    neg = torch.where(y.bool(), torch.zeros_like(x), x.detach().exp())
    pos = torch.where(y.bool(), (-x.detach()).exp(), torch.zeros_like(x))
    expected = neg / (1 + neg.sum(1, keepdim=True)) - pos / (1 + pos.sum(1, keepdim=True))
    torch.testing.assert_close(x.grad, expected)


def test_loss_bounds_pairwise_and_threshold_errors() -> None:
    # (1 + A)(1 + B) = 1 + A + B + AB >= 1 + e^{s_n - s_p} for every (negative, positive)
    # pair, and a positive below 0 (or a negative above 0) alone contributes > log 2.
    x, y = _random_multilabel(32, 6)
    loss = zlpr(x, y, reduction="none")
    worst_neg = x.masked_fill(y.bool(), float("-inf")).amax(1)
    worst_pos = x.masked_fill(~y.bool(), float("inf")).amin(1)
    both = (y.sum(1) > 0) & (y.sum(1) < 6)
    assert bool((loss[both] >= F.softplus(worst_neg - worst_pos)[both]).all())
    violated = ((y == 1) & (x < 0)) | ((y == 0) & (x > 0))
    assert bool(violated.any())
    assert bool((loss[violated.any(1)] > math.log(2.0)).all())


def test_parity_with_su_reference(dtype: torch.dtype, device: torch.device) -> None:
    x, y = _random_multilabel(16, 7, dtype)
    x, y = x.to(device), y.to(device)
    torch.testing.assert_close(zlpr(x, y, reduction="none"), _su_reference(x, y))


def test_gradcheck_float64() -> None:
    x, y = _random_multilabel(5, 4)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: zlpr(z, y), (x,))
    assert torch.autograd.gradgradcheck(lambda z: zlpr(z, y), (x,))


def test_exact_hessian_diagonal() -> None:
    x, y = _random_multilabel(4, 5)
    full = torch.autograd.functional.hessian(lambda z: zlpr(z, y, reduction="sum"), x)
    expected = full.reshape(20, 20).diagonal().reshape(4, 5)
    got = losses.derivatives(NAME, x, y, hessian=True, reduction="sum")
    assert got.hessian_diag is not None
    torch.testing.assert_close(got.hessian_diag, expected)


def test_module_equals_function_and_keeps_state() -> None:
    x, y = _random_multilabel(8, 3, torch.float32)
    module = MultilabelCategoricalCrossentropyLoss(reduction="sum")
    before = module.hyperparameters()
    torch.testing.assert_close(module(x, y), zlpr(x, y, reduction="sum"))
    assert module.hyperparameters() == before
    assert dict(module.named_buffers()) == {}


@pytest.mark.parametrize(("reduction", "shape"), [("none", (7,)), ("mean", ()), ("sum", ())])
def test_reduction_shapes(reduction: str, shape: tuple[int, ...]) -> None:
    x, y = _random_multilabel(7, 3, torch.float32)
    assert zlpr(x, y, reduction=reduction).shape == shape


def test_sample_weight_mean_is_weighted_average() -> None:
    x, y = _random_multilabel(5, 3)
    w = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    per = zlpr(x, y, reduction="none")
    torch.testing.assert_close(zlpr(x, y, sample_weight=w), (per * w).sum() / w.sum())


def test_bad_arguments_raise() -> None:
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="exactly 0 or 1"):
        zlpr(x, torch.full((4, 3), 0.5))
    with pytest.raises(ValueError, match="supports"):
        zlpr(x, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="reduction to be one of"):
        zlpr(x, torch.zeros(4, 3), reduction="avg")
    with pytest.raises(ValueError, match="unknown parameter"):
        losses.compute(NAME, x, torch.zeros(4, 3), gamma=1.0)


def test_extreme_logits_are_finite() -> None:
    # The first three samples are perfectly separated (loss 0); the last has its positive at
    # -1e4 and a negative at +1e4: log(1 + e^1e4 + e^0) + log(1 + e^1e4) = 2e4 in float32.
    x = torch.tensor([[1e4, -1e4, -1e4], [-1e4, -1e4, -1e4], [1e4, 1e4, 1e4], [-1e4, 1e4, 0.0]])
    y = torch.tensor([[1.0, 0, 0], [0, 0, 0], [1, 1, 1], [1, 0, 0]])
    d = losses.derivatives(NAME, x, y, hessian=True, reduction="none")
    torch.testing.assert_close(d.value, torch.tensor([0.0, 0.0, 0.0, 2e4]))
    assert torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_all_negative_and_all_positive_batches(fill: float) -> None:
    x = torch.randn(6, 4) * 10
    y = torch.full((6, 4), fill)
    d = losses.derivatives(NAME, x, y, hessian=True)
    assert torch.isfinite(d.value) and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()
    # one set is empty: the loss is the other term only
    torch.testing.assert_close(d.value, _su_reference(x, y).mean())


def test_half_precision_computes_in_float32(half_dtype: torch.dtype) -> None:
    x = (torch.randn(8, 5) * 100).to(half_dtype).requires_grad_(True)
    y = (torch.rand(8, 5) < 0.3).float()
    value = zlpr(x, y)
    value.backward()
    assert value.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == half_dtype and torch.isfinite(x.grad).all()
    torch.testing.assert_close(value, zlpr(x.detach().float(), y))


def test_registry_entry() -> None:
    spec = losses.get(NAME)
    assert spec.function is zlpr
    assert spec.params is MultilabelCategoricalCrossentropyParams
    assert spec.json_schema()["properties"] == {}
    x, y = _random_multilabel(4, 3)
    torch.testing.assert_close(losses.compute(NAME, x, y), zlpr(x, y))
