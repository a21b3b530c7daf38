"""asymmetric (ASL): the STYLE.md checklist."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import losses
from losses._asymmetric import AsymmetricLoss, asymmetric_hessian_diagonal, asymmetric_loss
from losses._sigmoid_focal import sigmoid_focal_loss


def _official(
    x: Tensor, y: Tensor, gamma_pos: float, gamma_neg: float, clip: float, eps: float = 1e-8
) -> Tensor:
    """The official repository's formulation (Alibaba-MIIL/ASL, src/loss_functions/losses.py,
    class AsymmetricLoss), gradient through the focusing weight. It returns -loss.sum(): our
    reduction="sum". Its log(clamp(min=eps)) only differs from ours for p < 1e-8, i.e. logits
    below -18, which these tests avoid.
    """
    x_sigmoid = torch.sigmoid(x)
    xs_pos = x_sigmoid
    xs_neg = 1 - x_sigmoid
    if clip > 0:
        xs_neg = (xs_neg + clip).clamp(max=1)
    loss = y * torch.log(xs_pos.clamp(min=eps)) + (1 - y) * torch.log(xs_neg.clamp(min=eps))
    if gamma_neg > 0 or gamma_pos > 0:
        pt = xs_pos * y + xs_neg * (1 - y)
        one_sided_gamma = gamma_pos * y + gamma_neg * (1 - y)
        loss = loss * torch.pow(1 - pt, one_sided_gamma)
    return -loss.sum()


def test_hand_computed_values() -> None:
    # Positive, x = ln 3 (p = 3/4), gamma_pos = 1: (1 - 3/4) * -log(3/4) = log(4/3) / 4.
    # Negative, x = 0 (p = 1/2), clip 0.05, gamma_neg = 4: p_m = 0.45 -> 0.45^4 * -log(0.55).
    # Negative, x = -3 (p = 0.0474 < clip): 0.
    # Negative, x = ln 3 (p = 3/4), clip 0.05: p_m = 0.7 -> 0.7^4 * -log(0.3).
    x = torch.tensor([[math.log(3.0), 0.0, -3.0, math.log(3.0)]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    value = asymmetric_loss(x, y, gamma_pos=1.0, gamma_neg=4.0, clip=0.05, reduction="none")
    expected = torch.tensor(
        [[math.log(4.0 / 3.0) / 4, 0.45**4 * -math.log(0.55), 0.0, 0.7**4 * -math.log(0.3)]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(value, expected, rtol=1e-13, atol=0.0)


def test_hand_computed_without_clip() -> None:
    # clip = 0, gamma_neg = 2, x = ln 3 (p = 3/4), negative: (3/4)^2 * -log(1/4) = 9/16 log 4.
    # gamma_pos = 0.5, x = -ln 3 (p = 1/4), positive: sqrt(3/4) * -log(1/4).
    x = torch.tensor([math.log(3.0), -math.log(3.0)], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0], dtype=torch.float64)
    value = asymmetric_loss(x, y, gamma_pos=0.5, gamma_neg=2.0, clip=0.0, reduction="none")
    expected = torch.tensor(
        [9 / 16 * math.log(4.0), math.sqrt(0.75) * math.log(4.0)], dtype=torch.float64
    )
    torch.testing.assert_close(value, expected, rtol=1e-13, atol=0.0)


def test_no_focusing_no_clip_is_bce_with_gradients(
    dtype: torch.dtype, device: torch.device
) -> None:
    x1 = (4 * torch.randn(16, 5, dtype=dtype, device=device)).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.randint(0, 2, (16, 5), device=device).to(dtype)
    ours = asymmetric_loss(x1, y, gamma_pos=0.0, gamma_neg=0.0, clip=0.0)
    ref = F.binary_cross_entropy_with_logits(x2, y)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("gamma", [0.5, 2.0, 4.0])
def test_symmetric_focusing_without_clip_is_sigmoid_focal(gamma: float) -> None:
    x = 4 * torch.randn(10, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (10, 3)).to(torch.float64)
    torch.testing.assert_close(
        asymmetric_loss(x, y, gamma_pos=gamma, gamma_neg=gamma, clip=0.0, reduction="none"),
        sigmoid_focal_loss(x, y, alpha=None, gamma=gamma, reduction="none"),
    )


@pytest.mark.parametrize("clip", [0.05, 0.2])
@pytest.mark.parametrize("gamma_neg", [0.0, 1.0, 4.0])
def test_clip_shifts_the_negative_probability(clip: float, gamma_neg: float) -> None:
    # The analytic property of probability shifting: a negative at logit x with margin m
    # costs what an unclipped negative costs at p' = p - m, i.e. at logit logit(p - m).
    x = torch.linspace(-1.0, 6.0, 15, dtype=torch.float64)
    y = torch.zeros_like(x)
    p_shifted = torch.sigmoid(x) - clip
    assert (p_shifted > 0).all()
    shifted_logit = torch.log(p_shifted) - torch.log1p(-p_shifted)
    ours = asymmetric_loss(x, y, gamma_neg=gamma_neg, clip=clip, reduction="none")
    ref = asymmetric_loss(shifted_logit, y, gamma_neg=gamma_neg, clip=0.0, reduction="none")
    torch.testing.assert_close(ours, ref)


def test_negatives_below_the_margin_cost_nothing_and_get_no_gradient() -> None:
    clip = 0.05
    threshold = math.log(clip / (1 - clip))  # p = clip
    x = torch.tensor([-1e4, -20.0, -5.0, threshold - 1e-3], dtype=torch.float64)
    x.requires_grad_(True)
    value = asymmetric_loss(x, torch.zeros_like(x), clip=clip, gamma_neg=0.0, reduction="none")
    (grad,) = torch.autograd.grad(value.sum(), x)
    assert (value == 0).all() and (grad == 0).all()


@pytest.mark.parametrize(
    ("gamma_pos", "gamma_neg", "clip"),
    [(0.0, 4.0, 0.05), (1.0, 4.0, 0.05), (2.0, 2.0, 0.0), (0.0, 0.0, 0.1), (0.0, 1.0, 0.2)],
)
def test_parity_with_official_code_values_and_gradients(
    gamma_pos: float, gamma_neg: float, clip: float
) -> None:
    x1 = (3 * torch.randn(12, 6, dtype=torch.float64)).clamp(-15, 15).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.randint(0, 2, (12, 6)).to(torch.float64)
    kw = {"gamma_pos": gamma_pos, "gamma_neg": gamma_neg, "clip": clip}
    ours = asymmetric_loss(x1, y, reduction="sum", **kw)
    ref = _official(x2, y, **kw)
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_gradcheck_float64() -> None:
    # Points away from p = clip (logit(0.05) = -2.94), where gamma_neg < 1 is not smooth.
    x = torch.tensor(
        [[-2.0, 0.5, 3.0], [-4.0, 1.5, -0.5], [2.5, -1.0, 0.0]], dtype=torch.float64
    ).requires_grad_(True)
    y = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    for kw in ({"gamma_pos": 1.0, "gamma_neg": 4.0, "clip": 0.05}, {"gamma_neg": 0.5, "clip": 0.0}):
        assert torch.autograd.gradcheck(lambda z, kw=kw: asymmetric_loss(z, y, **kw), (x,))
        assert torch.autograd.gradgradcheck(lambda z, kw=kw: asymmetric_loss(z, y, **kw), (x,))


def test_module_equals_function_and_keeps_state() -> None:
    x = torch.randn(8, 3)
    y = torch.randint(0, 2, (8, 3)).float()
    module = AsymmetricLoss(gamma_pos=1.0, gamma_neg=3.0, clip=0.1, reduction="sum")
    before = module.hyperparameters()
    torch.testing.assert_close(
        module(x, y), asymmetric_loss(x, y, gamma_pos=1.0, gamma_neg=3.0, clip=0.1, reduction="sum")
    )
    assert module.hyperparameters() == before == {"gamma_pos": 1.0, "gamma_neg": 3.0, "clip": 0.1}


@pytest.mark.parametrize(
    ("shape", "reduction", "out"),
    [((7, 3), "none", (7, 3)), ((7,), "none", (7,)), ((7, 3), "mean", ()), ((7, 3), "sum", ())],
)
def test_reduction_shapes(shape: tuple[int, ...], reduction: str, out: tuple[int, ...]) -> None:
    y = torch.randint(0, 2, shape).float()
    assert asymmetric_loss(torch.randn(shape), y, reduction=reduction).shape == out


def test_sample_weight_mean_is_weighted_average_over_elements() -> None:
    x = torch.randn(5, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (5, 3)).to(torch.float64)
    w = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    per = asymmetric_loss(x, y, reduction="none")
    expected = (per * w[:, None]).sum() / (w.sum() * 3)
    torch.testing.assert_close(asymmetric_loss(x, y, sample_weight=w), expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gamma_pos": -1.0}, "gamma_pos"),
        ({"gamma_neg": -0.5}, "gamma_neg"),
        ({"clip": 1.0}, "clip: Input should be less than 1"),
        ({"clip": -0.1}, "clip: Input should be greater than or equal to 0"),
        ({"reduction": "avg"}, "reduction to be one of"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        asymmetric_loss(torch.randn(2, 2), torch.tensor([[0.0, 1.0], [1.0, 0.0]]), **kwargs)  # type: ignore[arg-type]


def test_bad_targets_raise() -> None:
    with pytest.raises(ValueError, match="multilabel targets of exactly 0 or 1"):
        asymmetric_loss(torch.randn(2, 2), torch.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="supports"):
        asymmetric_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]))


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"gamma_pos": 0.5, "gamma_neg": 0.5, "clip": 0.0},
        {"gamma_pos": 1.0, "gamma_neg": 0.0, "clip": 0.2},
        {"gamma_pos": 0.0, "gamma_neg": 0.25, "clip": 0.05},
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logits_and_margin_boundary_are_finite(
    kw: dict[str, float], dtype: torch.dtype
) -> None:
    # +-1e4 both ways, and a sweep of logits around p = clip, where log(p - clip) -> -inf.
    threshold = math.log(0.05 / 0.95)
    near = [threshold + d for d in (-1e-6, -1e-12, 0.0, 1e-15, 1e-12, 1e-9, 1e-6)]
    x = torch.tensor([[1e4, -1e4, 1e4, -1e4, *near]], dtype=dtype)
    y = torch.tensor([[1.0, 0.0, 0.0, 1.0] + [0.0] * len(near)], dtype=dtype)
    d = losses.derivatives("asymmetric", x, y, hessian=True, reduction="none", **kw)
    assert torch.isfinite(d.value).all() and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()
    # Right and confident: 0. Wrong and confident: |x| for a positive (gamma_pos weight 1);
    # a negative at p = 1 has p_m = 1 - clip: (1 - clip)^gamma_neg * -log(clip).
    clip, gamma_neg = kw.get("clip", 0.05), kw.get("gamma_neg", 4.0)
    assert d.value[0, 0].item() == 0.0 and d.value[0, 1].item() == 0.0
    assert d.value[0, 3].item() == pytest.approx(1e4)
    if clip > 0:
        expected = (1 - clip) ** gamma_neg * -math.log(clip)
        assert d.value[0, 2].item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("target", [0.0, 1.0])
def test_all_negative_or_all_positive_batch_is_finite(target: float) -> None:
    x = torch.tensor([[-1e4, -30.0, 0.0], [5.0, 30.0, 1e4]])
    y = torch.full_like(x, target)
    d = losses.derivatives("asymmetric", x, y, hessian=True)
    assert torch.isfinite(d.value) and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


def test_half_precision_computes_in_float32(half_dtype: torch.dtype) -> None:
    x = (torch.randn(8, 3) * 100).to(half_dtype).requires_grad_(True)
    y = torch.randint(0, 2, (8, 3)).to(half_dtype)
    value = asymmetric_loss(x, y)
    value.backward()
    assert value.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == half_dtype and torch.isfinite(x.grad).all()
    torch.testing.assert_close(value, asymmetric_loss(x.detach().float(), y.float()))
    d = losses.derivatives("asymmetric", x.detach(), y, hessian=True)
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


def test_exact_hessian_diagonal() -> None:
    x = 3 * torch.randn(4, 5, dtype=torch.float64)
    y = torch.randint(0, 2, (4, 5)).to(torch.float64)
    kw = {"gamma_pos": 1.0, "gamma_neg": 4.0, "clip": 0.05}
    d = losses.derivatives("asymmetric", x, y, hessian=True, **kw)
    full = torch.autograd.functional.hessian(lambda z: asymmetric_loss(z, y, **kw), x)
    expected = full.reshape(20, 20).diagonal().reshape(4, 5)
    assert d.hessian_diag is not None
    torch.testing.assert_close(d.hessian_diag, expected)


def test_registry_entry() -> None:
    spec = losses.get("asymmetric")
    assert spec.function is asymmetric_loss
    assert spec.module is AsymmetricLoss
    props = spec.json_schema()["properties"]
    assert (props["gamma_pos"]["default"], props["gamma_neg"]["default"]) == (0.0, 4.0)
    assert props["clip"]["default"] == 0.05
    assert spec.coupling(spec.validate({}), losses.Task.MULTILABEL) is losses.Coupling.ELEMENT
    x, y = torch.randn(4, 3), torch.randint(0, 2, (4, 3)).float()
    torch.testing.assert_close(losses.compute("asymmetric", x, y), asymmetric_loss(x, y))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_pass_derivatives_keep_the_negatives_tiny_log_q(dtype: torch.dtype) -> None:
    """``losses.derivatives(hessian=True)`` (value, gradient and diagonal from one pass)
    gives the Hessian closed form's diagonal at very negative logits too, where ``log q``
    is tiny and ``log p - x`` would round it to 0 (half the curvature, in float32)."""
    x = torch.linspace(-40.0, 10.0, 501, dtype=dtype)
    y = torch.zeros_like(x)
    kw = {"gamma_pos": 1.0, "gamma_neg": 2.5, "clip": 0.0}
    d = losses.derivatives("asymmetric", x, y, hessian=True, reduction="sum", **kw)
    expected = asymmetric_hessian_diagonal(x, y, reduction="sum", **kw)
    assert d.hessian_diag is not None
    torch.testing.assert_close(d.hessian_diag, expected, rtol=1e-5, atol=0.0)
