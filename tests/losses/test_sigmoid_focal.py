"""sigmoid_focal: the STYLE.md checklist."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import kornia.losses
import pytest
import torch
import torch.nn.functional as F
from monai.losses.focal_loss import FocalLoss as MonaiFocalLoss
from torch import Tensor

import losses
from losses._sigmoid_focal import SigmoidFocalLoss, sigmoid_focal_loss


def _textbook(x: Tensor, y: Tensor, alpha: float | None, gamma: float) -> Tensor:
    """The paper's formula as torchvision.ops.sigmoid_focal_loss writes it (reduction none).

    torchvision is not installed beside this torch build; this is its arithmetic:
    ce = BCE-with-logits, p_t = p y + (1 - p)(1 - y), loss = alpha_t (1 - p_t)^gamma ce.
    """
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


def test_hand_computed_values() -> None:
    # x = ln 3: p = 3/4.
    # y = 1: p_t = 3/4, ce = -log(3/4), alpha_t = 0.25 -> 0.25 * (1/4)^2 * log(4/3)
    # y = 0: p_t = 1/4, ce = log 4,      alpha_t = 0.75 -> 0.75 * (3/4)^2 * log 4
    # x = 0, y = 1/2 (soft): p = 1/2, p_t = 1/2, ce = log 2, alpha_t = 0.5 -> 0.5 * 1/4 * log 2
    x = torch.tensor([math.log(3.0), math.log(3.0), 0.0], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    value = sigmoid_focal_loss(x, y, alpha=0.25, gamma=2.0, reduction="none")
    expected = torch.tensor(
        [
            0.25 * 0.25**2 * math.log(4.0 / 3.0),
            0.75 * 0.75**2 * math.log(4.0),
            0.5 * 0.25 * math.log(2.0),
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(value, expected, rtol=1e-13, atol=0.0)


def test_hand_computed_soft_target_fractional_gamma() -> None:
    # x = ln 3 (p = 3/4), y = 1/4, gamma = 1/2, alpha = None:
    # p_t = 3/4 * 1/4 + 1/4 * 3/4 = 3/8, 1 - p_t = 5/8;
    # ce = -(1/4 log(3/4) + 3/4 log(1/4)) -> loss = sqrt(5/8) * ce
    x = torch.tensor([math.log(3.0)], dtype=torch.float64)
    y = torch.tensor([0.25], dtype=torch.float64)
    ce = -(0.25 * math.log(0.75) + 0.75 * math.log(0.25))
    value = sigmoid_focal_loss(x, y, alpha=None, gamma=0.5, reduction="sum")
    assert value.item() == pytest.approx(math.sqrt(5.0 / 8.0) * ce, rel=1e-13)


def test_gamma_zero_no_alpha_is_bce_with_gradients(
    dtype: torch.dtype, device: torch.device
) -> None:
    x1 = (3 * torch.randn(16, 5, dtype=dtype, device=device)).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.rand(16, 5, dtype=dtype, device=device)
    y[:8] = y[:8].round()
    ours = sigmoid_focal_loss(x1, y, alpha=None, gamma=0.0)
    ref = F.binary_cross_entropy_with_logits(x2, y)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [None, 0.25, 0.9])
def test_ratio_to_bce_is_modulating_factor(gamma: float, alpha: float | None) -> None:
    # The analytic property (torchvision's test_correct_ratio): loss / BCE = alpha_t (1-p_t)^g.
    x = 4 * torch.randn(64, dtype=torch.float64)
    y = torch.rand(64, dtype=torch.float64)
    y[:32] = y[:32].round()
    ratio = sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma, reduction="none") / (
        F.binary_cross_entropy_with_logits(x, y, reduction="none")
    )
    p = torch.sigmoid(x)
    p_t = p * y + (1 - p) * (1 - y)
    expected = (1 - p_t) ** gamma
    if alpha is not None:
        expected = expected * (alpha * y + (1 - alpha) * (1 - y))
    torch.testing.assert_close(ratio, expected)


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (None, 0.5), (0.6, 3.0)])
def test_matches_textbook_formula_values_and_gradients(alpha: float | None, gamma: float) -> None:
    x1 = (3 * torch.randn(12, 4, dtype=torch.float64)).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.rand(12, 4, dtype=torch.float64)
    y[:6] = y[:6].round()
    ours = sigmoid_focal_loss(x1, y, alpha=alpha, gamma=gamma, reduction="none")
    ref = _textbook(x2, y, alpha, gamma)
    torch.testing.assert_close(ours, ref)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_parity_with_kornia_on_hard_targets(gamma: float, alpha: float | None) -> None:
    # kornia's binary_focal_loss_with_logits wants (B, C, *): a binary batch is (N, 1). Its
    # "mean" divides by the number of elements, as ours does without sample weights; its
    # per-channel `pos_weight` and `weight` (None here) have no counterpart in this loss.
    x = 3 * torch.randn(10, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (10, 3)).to(torch.float64)
    ref = kornia.losses.binary_focal_loss_with_logits(
        x, y, alpha=alpha, gamma=gamma, reduction="mean"
    )
    torch.testing.assert_close(sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma), ref)
    xb, yb = x[:, 0], y[:, 0]
    ref_b = kornia.losses.binary_focal_loss_with_logits(
        xb[:, None], yb[:, None], alpha=alpha, gamma=gamma, reduction="none"
    )[:, 0]
    ours_b = sigmoid_focal_loss(xb, yb, alpha=alpha, gamma=gamma, reduction="none")
    torch.testing.assert_close(ours_b, ref_b)


def test_soft_targets_differ_from_kornia_by_convention() -> None:
    # For a soft target t kornia interpolates the two hard-target losses,
    # t * FL(x, 1) + (1 - t) * FL(x, 0); we (like torchvision) apply alpha_t (1 - p_t)^gamma
    # to the soft-target BCE. They agree on hard targets only.
    x = 3 * torch.randn(8, 2, dtype=torch.float64)
    t = torch.full((8, 2), 0.3, dtype=torch.float64)
    kw = {"alpha": 0.25, "gamma": 2.0}
    ref = kornia.losses.binary_focal_loss_with_logits(x, t, reduction="none", **kw)
    ones, zeros = torch.ones_like(t), torch.zeros_like(t)
    interpolated = 0.3 * sigmoid_focal_loss(x, ones, reduction="none", **kw) + 0.7 * (
        sigmoid_focal_loss(x, zeros, reduction="none", **kw)
    )
    torch.testing.assert_close(ref, interpolated)
    assert not torch.allclose(sigmoid_focal_loss(x, t, reduction="none", **kw), ref)


def _value_and_grad(
    fn: Callable[..., Tensor], x: Tensor, y: Tensor, **kwargs: Any
) -> tuple[Tensor, Tensor]:
    z = x.detach().clone().requires_grad_(True)
    value = fn(z, y, **kwargs)
    (grad,) = torch.autograd.grad(value, z)
    return value.detach(), grad


def _monai(x: Tensor, y: Tensor, **kwargs: Any) -> Tensor:
    # MONAI wants (B, C, spatial...): a multilabel (N, C) batch is (N, C, 1), a binary (N,)
    # batch (N, 1, 1); the output is brought back to the input's shape. The spatial axis
    # matters: on a 2-D (N, C) input MONAI's "sum" first takes mean(dim=[]), which averages
    # over everything. include_background=True keeps channel 0; targets are already one
    # value per channel, so to_onehot_y=False.
    shaped = (lambda t: t[:, :, None]) if x.ndim == 2 else (lambda t: t[:, None, None])
    loss = MonaiFocalLoss(include_background=True, to_onehot_y=False, use_softmax=False, **kwargs)
    out: Tensor = loss(shaped(x), shaped(y))
    return out.reshape(x.shape) if out.ndim else out


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25, 0.9])
@pytest.mark.parametrize("shape", [(16,), (10, 3)])
def test_parity_with_monai_values_and_gradients(
    gamma: float, alpha: float | None, shape: tuple[int, ...]
) -> None:
    # MONAI's FocalLoss(use_softmax=False) is element-wise alpha_t (1 - p_t)^gamma BCE with
    # alpha_t = alpha y + (1 - alpha)(1 - y) for a scalar alpha, the textbook formula, and its
    # "mean" divides by the element count, as ours does without sample weights. Its alpha as
    # a per-class sequence (weighting positives only) has no counterpart here. MONAI
    # computes in float32 (input.float()), so the inputs are float32; hard targets (see
    # test_soft_targets_differ_from_monai_by_convention).
    x = 3 * torch.randn(shape)
    y = torch.randint(0, 2, shape).float()
    kw: dict[str, Any] = {"alpha": alpha, "gamma": gamma}
    torch.testing.assert_close(
        sigmoid_focal_loss(x, y, reduction="none", **kw), _monai(x, y, reduction="none", **kw)
    )
    for reduction in ("mean", "sum"):
        ours, ours_grad = _value_and_grad(sigmoid_focal_loss, x, y, reduction=reduction, **kw)
        ref, ref_grad = _value_and_grad(_monai, x, y, reduction=reduction, **kw)
        torch.testing.assert_close(ours, ref)
        torch.testing.assert_close(ours_grad, ref_grad)


def test_soft_targets_differ_from_monai_by_convention() -> None:
    # MONAI's modulating factor is sigmoid(-x (2t - 1))^gamma, which is 1 - p_t for hard
    # targets only; for a soft target t it is not t (1 - p) + (1 - t) p, the 1 - p_t we (like
    # torchvision) use. Its BCE and alpha_t are the same as ours for soft targets.
    x = 3 * torch.randn(8, 2, dtype=torch.float64)
    t = torch.full((8, 2), 0.3, dtype=torch.float64)
    kw: dict[str, Any] = {"alpha": 0.25, "gamma": 2.0}
    ref = _monai(x, t, reduction="none", **kw)
    bce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    alpha_t = 0.25 * t + 0.75 * (1 - t)
    monai_formula = alpha_t * torch.sigmoid(-x * (2 * t - 1)) ** 2 * bce
    torch.testing.assert_close(ref, monai_formula.float())
    assert not torch.allclose(sigmoid_focal_loss(x, t, reduction="none", **kw).float(), ref)


def test_gradcheck_float64() -> None:
    x = (2 * torch.randn(4, 2, dtype=torch.float64)).requires_grad_(True)
    y = torch.rand(4, 2, dtype=torch.float64)
    y[:2] = y[:2].round()
    assert torch.autograd.gradcheck(lambda z: sigmoid_focal_loss(z, y, alpha=0.3, gamma=1.5), (x,))
    assert torch.autograd.gradgradcheck(lambda z: sigmoid_focal_loss(z, y, gamma=0.5), (x,))
    assert torch.autograd.gradgradcheck(lambda z: sigmoid_focal_loss(z, y, gamma=2.0), (x,))


def test_module_equals_function_and_keeps_state() -> None:
    x = torch.randn(8, 3)
    y = torch.randint(0, 2, (8, 3)).float()
    module = SigmoidFocalLoss(alpha=0.4, gamma=1.0, reduction="sum")
    before = module.hyperparameters()
    torch.testing.assert_close(
        module(x, y), sigmoid_focal_loss(x, y, alpha=0.4, gamma=1.0, reduction="sum")
    )
    assert module.hyperparameters() == before == {"alpha": 0.4, "gamma": 1.0}
    w = torch.rand(8)
    torch.testing.assert_close(
        module(x, y, w),
        sigmoid_focal_loss(x, y, alpha=0.4, gamma=1.0, reduction="sum", sample_weight=w),
    )


@pytest.mark.parametrize(
    ("shape", "reduction", "out"),
    [
        ((7,), "none", (7,)),
        ((7, 3), "none", (7, 3)),
        ((7, 3), "mean", ()),
        ((7,), "sum", ()),
    ],
)
def test_reduction_shapes(shape: tuple[int, ...], reduction: str, out: tuple[int, ...]) -> None:
    y = torch.randint(0, 2, shape).float()
    assert sigmoid_focal_loss(torch.randn(shape), y, reduction=reduction).shape == out


def test_sample_weight_mean_is_weighted_average_over_elements() -> None:
    x = torch.randn(5, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (5, 3)).to(torch.float64)
    w = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    per = sigmoid_focal_loss(x, y, reduction="none")
    expected = (per * w[:, None]).sum() / (w.sum() * 3)
    torch.testing.assert_close(sigmoid_focal_loss(x, y, sample_weight=w), expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1.5}, "alpha: Input should be less than or equal to 1"),
        ({"alpha": -0.1}, "alpha: Input should be greater than or equal to 0"),
        ({"gamma": -1.0}, "gamma"),
        ({"gamma": 21.0}, "gamma"),
        ({"reduction": "avg"}, "reduction to be one of"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sigmoid_focal_loss(torch.randn(4), torch.tensor([0.0, 1.0, 1.0, 0.0]), **kwargs)  # type: ignore[arg-type]


def test_bad_targets_raise() -> None:
    with pytest.raises(ValueError, match=r"binary targets in \[0, 1\]"):
        sigmoid_focal_loss(torch.randn(3), torch.tensor([0.0, 1.5, 1.0]))
    with pytest.raises(ValueError, match="supports"):
        sigmoid_focal_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"sample_weight of shape \(3,\)"):
        sigmoid_focal_loss(torch.randn(3), torch.ones(3), sample_weight=torch.ones(4))


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 2.0])
def test_extreme_logits_values_gradients_and_hessian(gamma: float) -> None:
    x = torch.tensor([1e4, -1e4, 1e4, -1e4, 1e4, -1e4, 0.0])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.3, 0.7, 1.0])
    d = losses.derivatives("sigmoid_focal", x, y, hessian=True, reduction="none", gamma=gamma)
    assert torch.isfinite(d.value).all() and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()
    # Confident and right: 0. Confident and wrong: alpha_t * |x| (1 - p_t rounds to 1).
    assert d.value[0].item() == 0.0 and d.value[1].item() == 0.0
    assert d.value[2].item() == pytest.approx(0.75 * 1e4)
    assert d.value[3].item() == pytest.approx(0.25 * 1e4)
    # Soft targets. x = 1e4 (p = 1): 1 - p_t = 1 - y, ce = (1 - y) x; y = 0.3:
    # alpha_t = 0.25 * 0.3 + 0.75 * 0.7 -> alpha_t 0.7^gamma 0.7e4.
    # x = -1e4 (p = 0): 1 - p_t = y, ce = y |x|; y = 0.7: alpha_t = 0.25 * 0.7 + 0.75 * 0.3.
    assert d.value[4].item() == pytest.approx((0.25 * 0.3 + 0.75 * 0.7) * 0.7**gamma * 0.7e4)
    assert d.value[5].item() == pytest.approx((0.25 * 0.7 + 0.75 * 0.3) * 0.7**gamma * 0.7e4)


@pytest.mark.parametrize("target", [0.0, 1.0])
def test_all_negative_or_all_positive_batch_is_finite(target: float) -> None:
    x = torch.tensor([[-1e4, -30.0, 0.0], [5.0, 30.0, 1e4]])
    y = torch.full_like(x, target)
    d = losses.derivatives("sigmoid_focal", x, y, hessian=True, gamma=0.5)
    assert torch.isfinite(d.value) and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


def test_half_precision_computes_in_float32(half_dtype: torch.dtype) -> None:
    x = (torch.randn(8, 3) * 100).to(half_dtype).requires_grad_(True)
    y = torch.randint(0, 2, (8, 3)).to(half_dtype)
    value = sigmoid_focal_loss(x, y, gamma=0.5)
    value.backward()
    assert value.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == half_dtype and torch.isfinite(x.grad).all()
    torch.testing.assert_close(value, sigmoid_focal_loss(x.detach().float(), y.float(), gamma=0.5))
    d = losses.derivatives("sigmoid_focal", x.detach(), y, hessian=True)
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


@pytest.mark.parametrize("shape", [(5,), (3, 4)])
def test_exact_hessian_diagonal(shape: tuple[int, ...]) -> None:
    x = 2 * torch.randn(shape, dtype=torch.float64)
    y = torch.rand(shape, dtype=torch.float64)
    y.view(-1)[::2] = y.view(-1)[::2].round()
    kw = {"alpha": 0.3, "gamma": 1.5}
    d = losses.derivatives("sigmoid_focal", x, y, hessian=True, **kw)
    full = torch.autograd.functional.hessian(lambda z: sigmoid_focal_loss(z, y, **kw), x)
    expected = full.reshape(x.numel(), x.numel()).diagonal().reshape(shape)
    assert d.hessian_diag is not None
    torch.testing.assert_close(d.hessian_diag, expected)
    torch.testing.assert_close(d.value, sigmoid_focal_loss(x, y, **kw))


def test_registry_entry() -> None:
    spec = losses.get("sigmoid_focal")
    assert spec.function is sigmoid_focal_loss
    assert spec.module is SigmoidFocalLoss
    schema = spec.json_schema()["properties"]
    assert schema["alpha"]["default"] == 0.25 and schema["gamma"]["default"] == 2.0
    assert spec.coupling(spec.validate({}), losses.Task.MULTILABEL) is losses.Coupling.ELEMENT
    x, y = torch.randn(4, 3), torch.randint(0, 2, (4, 3)).float()
    torch.testing.assert_close(
        losses.compute("sigmoid_focal", x, y, gamma=1.0), sigmoid_focal_loss(x, y, gamma=1.0)
    )
