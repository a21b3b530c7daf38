"""focal: the STYLE.md checklist."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import kornia.losses
import pytest
import torch
import torch.nn.functional as F
from monai.losses.focal_loss import FocalLoss as MonaiFocalLoss

import losses
from losses import FocalLoss, focal_loss


def test_hand_computed_value() -> None:
    # logits [0, ln 3] for target 1: p = [1/4, 3/4]; loss = -(1/4)^2 * log(3/4)
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)
    value = focal_loss(logits, torch.tensor([1]), gamma=2.0)
    assert value.item() == pytest.approx(-(0.25**2) * math.log(0.75), rel=1e-12)


def test_hand_computed_per_class_alpha() -> None:
    logits = torch.tensor([[0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    value = focal_loss(
        logits, torch.tensor([0, 1]), gamma=1.0, alpha=[0.25, 0.75], reduction="none"
    )
    expected = torch.tensor([0.25, 0.75], dtype=torch.float64) * 0.5 * math.log(2.0)
    torch.testing.assert_close(value, expected)


def test_gamma_zero_is_cross_entropy_with_gradients(
    dtype: torch.dtype, device: torch.device
) -> None:
    x1 = torch.randn(16, 5, dtype=dtype, device=device, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.randint(0, 5, (16,), device=device)
    ours = focal_loss(x1, y, gamma=0.0)
    ref = F.cross_entropy(x2, y)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 5.0])
def test_ratio_to_cross_entropy_is_modulating_factor(gamma: float) -> None:
    x = torch.randn(32, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (32,))
    alpha = [0.1, 0.2, 0.3, 0.4]
    ratio = focal_loss(x, y, gamma=gamma, alpha=alpha, reduction="none") / F.cross_entropy(
        x, y, reduction="none"
    )
    p_t = x.softmax(1).gather(1, y[:, None]).squeeze(1)
    torch.testing.assert_close(ratio, (1 - p_t) ** gamma * torch.tensor(alpha, dtype=x.dtype)[y])


def test_gradcheck_float64() -> None:
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (6,))
    assert torch.autograd.gradcheck(lambda z: focal_loss(z, y, gamma=1.5, alpha=0.3), (x,))
    assert torch.autograd.gradgradcheck(lambda z: focal_loss(z, y, gamma=2.0), (x,))


def test_module_equals_function_and_keeps_state() -> None:
    x = torch.randn(8, 3)
    y = torch.randint(0, 3, (8,))
    module = FocalLoss(gamma=1.0, alpha=[1.0, 2.0, 3.0], reduction="sum")
    before = module.alpha.clone()
    torch.testing.assert_close(
        module(x, y), focal_loss(x, y, gamma=1.0, alpha=[1.0, 2.0, 3.0], reduction="sum")
    )
    torch.testing.assert_close(module.alpha, before)
    assert "alpha" in dict(module.named_buffers())


@pytest.mark.parametrize(("reduction", "shape"), [("none", (7,)), ("mean", ()), ("sum", ())])
def test_reduction_shapes(reduction: str, shape: tuple[int, ...]) -> None:
    assert (
        focal_loss(torch.randn(7, 3), torch.randint(0, 3, (7,)), reduction=reduction).shape == shape
    )


def test_sample_weight_mean_is_weighted_average() -> None:
    x = torch.randn(5, 3, dtype=torch.float64)
    y = torch.randint(0, 3, (5,))
    w = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    per = focal_loss(x, y, reduction="none")
    torch.testing.assert_close(focal_loss(x, y, sample_weight=w), (per * w).sum() / w.sum())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gamma": -1.0}, "gamma"),
        ({"alpha": [1.0, 2.0]}, "alpha with one value per class"),
        ({"reduction": "avg"}, "reduction to be one of"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        focal_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), **kwargs)  # type: ignore[arg-type]


def test_bad_targets_raise() -> None:
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\]"):
        focal_loss(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="supports"):
        focal_loss(torch.randn(2, 3), torch.ones(2, 3))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_parity_with_kornia(gamma: float) -> None:
    # kornia reads a scalar alpha as the binary convention (1 - alpha for class 0, alpha for
    # the rest) and its mean divides by N*C; its per-class `weight` with reduction="sum" is
    # the textbook formula, our per-class alpha.
    x = torch.randn(20, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (20,))
    weight = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    ref = kornia.losses.focal_loss(x, y, alpha=None, gamma=gamma, weight=weight, reduction="sum")
    torch.testing.assert_close(focal_loss(x, y, gamma=gamma, alpha=weight, reduction="sum"), ref)


def _value_and_grad(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    z = x.detach().clone().requires_grad_(True)
    value = fn(z)
    (grad,) = torch.autograd.grad(value, z)
    return value.detach(), grad


def _monai(x: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    # MONAI wants (B, C, spatial...) logits and, with to_onehot_y=True, (B, 1, spatial...)
    # class indices: our (N, C) batch is N "images" of one voxel, (N, C, 1) with (N, 1, 1).
    # include_background=True keeps channel 0 (False drops it: samples of class 0 would
    # contribute nothing, and a scalar alpha would be ignored with a warning).
    loss = MonaiFocalLoss(include_background=True, to_onehot_y=True, use_softmax=True, **kwargs)
    out: torch.Tensor = loss(x[:, :, None], y[:, None, None])
    return out


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, [0.1, 0.2, 0.3, 0.4]])
def test_parity_with_monai_values_and_gradients(gamma: float, alpha: list[float] | None) -> None:
    # MONAI's softmax focal loss returns one term per (sample, class) -alpha_c (1 - p_c)^gamma
    # log p_c * onehot(y)_c, non-zero on the target class only: its reduction="sum" (which
    # first averages over the size-1 spatial axis, a no-op) is our sum, and a per-class alpha
    # sequence is our per-class alpha indexed by the target class. Its "mean" divides by the
    # N*C elements of the (N, C, 1) output, ours by the N samples: ours = C * MONAI's.
    # MONAI computes in float32 (input.float()), so the inputs are float32.
    x = 2 * torch.randn(20, 4)
    y = torch.randint(0, 4, (20,))
    ours, ours_grad = _value_and_grad(
        lambda z: focal_loss(z, y, gamma=gamma, alpha=alpha, reduction="sum"), x
    )
    ref, ref_grad = _value_and_grad(
        lambda z: _monai(z, y, gamma=gamma, alpha=alpha, reduction="sum"), x
    )
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours_grad, ref_grad)
    ours_mean, ours_mean_grad = _value_and_grad(
        lambda z: focal_loss(z, y, gamma=gamma, alpha=alpha), x
    )
    ref_mean, ref_mean_grad = _value_and_grad(
        lambda z: 4 * _monai(z, y, gamma=gamma, alpha=alpha, reduction="mean"), x
    )
    torch.testing.assert_close(ours_mean, ref_mean)
    torch.testing.assert_close(ours_mean_grad, ref_mean_grad)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_monai_scalar_alpha_is_background_convention(gamma: float) -> None:
    # Convention difference: MONAI (like kornia) reads a scalar alpha with use_softmax=True as
    # segmentation's background/foreground balance, 1 - alpha for class 0 and alpha for every
    # other class; ours multiplies every sample by alpha (the paper's alpha is per class, a
    # scalar is the same weight for all). MONAI's alpha=a is our per-class [1 - a, a, a, a].
    x = 2 * torch.randn(20, 4)
    y = torch.randint(0, 4, (20,))
    per_class = [0.7, 0.3, 0.3, 0.3]
    ours, ours_grad = _value_and_grad(
        lambda z: focal_loss(z, y, gamma=gamma, alpha=per_class, reduction="sum"), x
    )
    ref, ref_grad = _value_and_grad(
        lambda z: _monai(z, y, gamma=gamma, alpha=0.3, reduction="sum"), x
    )
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours_grad, ref_grad)
    scalar = focal_loss(x, y, gamma=gamma, alpha=0.3, reduction="sum")
    assert not torch.allclose(scalar, ref)


def test_extreme_logits_are_finite() -> None:
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    value = focal_loss(x, torch.tensor([0, 0, 2]), gamma=0.5)
    value.backward()
    assert torch.isfinite(value)
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_half_precision_computes_in_float32(half_dtype: torch.dtype) -> None:
    x = (torch.randn(8, 3) * 100).to(half_dtype).requires_grad_(True)
    y = torch.randint(0, 3, (8,))
    value = focal_loss(x, y)
    value.backward()
    assert value.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == half_dtype and torch.isfinite(x.grad).all()
    torch.testing.assert_close(value, focal_loss(x.detach().float(), y))


def test_registry_entry() -> None:
    spec = losses.get("focal")
    assert spec.function is focal_loss
    assert spec.json_schema()["properties"]["gamma"]["default"] == 2.0
