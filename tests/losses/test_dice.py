"""dice, tversky, self_adjusting_dice: the STYLE.md checklist for the three overlap losses."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kornia.losses
import monai.losses
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import losses
from losses import Coupling, LossModule, Task
from losses._dice import (
    DiceLoss,
    SelfAdjustingDiceLoss,
    TverskyLoss,
    dice_loss,
    self_adjusting_dice_loss,
    tversky_loss,
)
from tests.scripts import load_script

LossFn = Callable[..., Tensor]
NAMES = ["dice", "tversky", "self_adjusting_dice"]
FUNCTIONS: dict[str, LossFn] = {
    "dice": dice_loss,
    "tversky": tversky_loss,
    "self_adjusting_dice": self_adjusting_dice_loss,
}
# Non-default parameters for each loss, so that every term of the formula is exercised.
PARAMS: dict[str, dict[str, Any]] = {
    "dice": {"smooth": 0.5, "square_denominator": False},
    "tversky": {"alpha": 0.4, "beta": 0.8, "smooth": 0.5},
    "self_adjusting_dice": {"alpha": 1.5, "smooth": 0.5, "coefficient": 1.0},
}
# The per-sample forms the hand computations below use (the defaults are batch-level).
SAMPLE: dict[str, Any] = {"scope": "sample"}
TASKS = [Task.BINARY, Task.MULTICLASS, Task.MULTILABEL]
SCOPES = ["sample", "batch"]


def make(
    task: Task,
    n: int = 6,
    c: int = 3,
    *,
    seed: int = 0,
    scale: float = 2.0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """Logits and targets for ``task``; multiclass targets hit every class when ``n >= c``."""
    g = torch.Generator().manual_seed(seed)
    if task is Task.BINARY:
        x = torch.randn(n, generator=g, dtype=torch.float64) * scale
        y = (torch.rand(n, generator=g) < 0.4).double()
        y[0], y[-1] = 1.0, 0.0
    elif task is Task.MULTICLASS:
        x = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
        y = torch.cat([torch.arange(c), torch.randint(0, c, (n - c,), generator=g)])
    else:
        x = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
        y = (torch.rand(n, c, generator=g) < 0.4).double()
        y[0] = 1.0
    return x.to(device=device, dtype=dtype), y.to(device)


# --- hand-computed values ----------------------------------------------------------------------


def test_dice_hand_computed_binary() -> None:
    # x = [0, ln 3] -> p = [1/2, 3/4]; y = [1, 0]; s = 1, one element per sample:
    # sample 0: 1 - (2 * 1/2 + 1) / (1/2 + 1 + 1) = 1 - 2 / 2.5 = 0.2
    # sample 1: 1 - (0 + 1) / (3/4 + 0 + 1) = 1 - 4/7 = 3/7
    x = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    expected = torch.tensor([0.2, 3.0 / 7.0], dtype=torch.float64)
    plain = {"scope": "sample", "square_denominator": False}
    torch.testing.assert_close(dice_loss(x, y, reduction="none", **plain), expected)
    torch.testing.assert_close(dice_loss(x, y, **plain), expected.mean())


def test_dice_hand_computed_defaults_binary_batch_squared() -> None:
    # The defaults (the authors' released scripts): one overlap over the batch, squared
    # denominator, s = 1. x = [0, ln 3] -> p = [1/2, 3/4]; y = [1, 0]:
    # TP = 1/2, Σp² = 1/4 + 9/16 = 13/16, Σy² = 1: 1 - (1 + 1) / (13/16 + 1 + 1) = 13/45
    x = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    assert dice_loss(x, y).item() == pytest.approx(13 / 45, rel=1e-12)
    assert dice_loss(x, y, reduction="none").shape == ()


def test_dice_hand_computed_multiclass_and_squared() -> None:
    # x = [0, ln 3] -> softmax p = [1/4, 3/4]; target 1 -> one-hot [0, 1]; s = 1:
    # TP = 3/4, Σp = 1, Σy = 1: 1 - (3/2 + 1) / (1 + 1 + 1) = 1/6
    # squared: Σp² = 1/16 + 9/16 = 5/8, Σy² = 1: 1 - (5/2) / (5/8 + 1 + 1) = 1 - 20/21 = 1/21
    x = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)
    y = torch.tensor([1])
    plain = dice_loss(x, y, scope="sample", square_denominator=False)
    assert plain.item() == pytest.approx(1.0 / 6.0, rel=1e-12)
    squared = dice_loss(x, y, scope="sample", square_denominator=True)
    assert squared.item() == pytest.approx(1.0 / 21.0, rel=1e-12)


def test_dice_hand_computed_batch_scope_with_sample_weight() -> None:
    # p = 1/2 everywhere; y = [[1, 0], [1, 1]]; s = 1; sums over samples, per class:
    # class 0: TP = 1, Σp = 1, Σy = 2: 1 - 3/4 = 1/4
    # class 1: TP = 1/2, Σp = 1, Σy = 1: 1 - 2/3 = 1/3
    # weights [1, 3]: class 0: TP = 1/2 + 3/2 = 2, Σp = 2, Σy = 4: 1 - 5/7 = 2/7
    #                 class 1: TP = 3/2, Σp = 2, Σy = 3: 1 - 4/6 = 1/3
    x = torch.zeros(2, 2, dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    w = torch.tensor([1.0, 3.0], dtype=torch.float64)
    plain = {"scope": "batch", "square_denominator": False}
    per_class = dice_loss(x, y, reduction="none", **plain)
    torch.testing.assert_close(per_class, torch.tensor([0.25, 1 / 3], dtype=torch.float64))
    assert dice_loss(x, y, **plain).item() == pytest.approx(7 / 24, rel=1e-12)
    assert dice_loss(x, y, reduction="sum", **plain).item() == pytest.approx(7 / 12)
    weighted = dice_loss(x, y, reduction="none", sample_weight=w, **plain)
    torch.testing.assert_close(weighted, torch.tensor([2 / 7, 1 / 3], dtype=torch.float64))
    # the mean folds classes, not samples: the weights are not applied a second time
    assert dice_loss(x, y, sample_weight=w, **plain).item() == pytest.approx(
        (2 / 7 + 1 / 3) / 2, rel=1e-12
    )


def test_tversky_hand_computed() -> None:
    # x = [ln 3, -ln 3] -> sigmoid p = [3/4, 1/4]; y = [1, 0]:
    # TP = 3/4, FP = 1/4, FN = 1/4; alpha = 0.3, beta = 0.7, s = 1:
    # 1 - (3/4 + 1) / (3/4 + 0.075 + 0.175 + 1) = 1 - 1.75 / 2 = 0.125
    x = torch.tensor([[math.log(3.0), -math.log(3.0)]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    value = tversky_loss(x, y, alpha=0.3, beta=0.7, **SAMPLE)
    assert value.item() == pytest.approx(0.125, rel=1e-12)


def test_self_adjusting_dice_hand_computed() -> None:
    # x = [0, ln 3] -> softmax p = [1/4, 3/4], 1 - p = [3/4, 1/4]; alpha = 1:
    # p~ = [3/16, 3/16]; target 1: TP = 3/16, Σp~ = 3/8, Σy = 1, s = 1:
    # coefficient 2: 1 - (3/8 + 1) / (3/8 + 1 + 1) = 1 - 11/19 = 8/19
    # coefficient 1: 1 - (3/16 + 1) / (19/8) = 1 - 19/38 = 1/2
    x = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)
    y = torch.tensor([1])
    paper = {"alpha": 1.0, "scope": "sample", "square_denominator": False}
    assert self_adjusting_dice_loss(x, y, **paper).item() == pytest.approx(8 / 19, rel=1e-12)
    value = self_adjusting_dice_loss(x, y, coefficient=1.0, **paper)
    assert value.item() == pytest.approx(0.5, rel=1e-12)


def test_self_adjusting_dice_hand_computed_at_p_one() -> None:
    # x = 1e4 -> p = 1 exactly, (1-p)^1 = exp(logsigmoid(-1e4)) = 0, so p~ = 0; y = 1, s = 1:
    # 1 - (0 + 1) / (0 + 1 + 1) = 1/2: the easy positive is pushed back to ratio 1/2.
    x = torch.tensor([1e4], requires_grad=True)
    value = self_adjusting_dice_loss(x, torch.tensor([1.0]), alpha=1.0)
    value.backward()
    assert value.item() == pytest.approx(0.5)
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_smooth_zero_empty_sets_are_continuous_in_the_logits() -> None:
    # binary y = 0, smooth = 0: any p > 0 gives ratio 0 / p = 0, loss 1; p = 0 exactly
    # (x = -1e4 in float32, 0 / 0) must read the same, not jump to 0.
    x = torch.tensor([-1e4, -104.0, -100.0, 0.0], requires_grad=True)
    y = torch.zeros(4)
    for fn in FUNCTIONS.values():
        value = fn(x, y, smooth=0.0, reduction="none", **SAMPLE)
        torch.testing.assert_close(value, torch.ones(4))
        (grad,) = torch.autograd.grad(value.sum(), x)
        assert torch.isfinite(grad).all()


# --- degenerate parameters: equality with the known loss, gradients included ---------------------


def _value_and_grad(fn: LossFn, x: Tensor, y: Tensor, **kwargs: Any) -> tuple[Tensor, Tensor]:
    z = x.detach().clone().requires_grad_(True)
    value = fn(z, y, **kwargs)
    (grad,) = torch.autograd.grad(value.sum(), z)
    return value.detach(), grad


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_tversky_half_half_is_dice_with_twice_the_smoothing(
    task: Task, scope: str, smooth: float, dtype: torch.dtype, device: torch.device
) -> None:
    # (TP + s) / (TP + FP/2 + FN/2 + s) = (2 TP + 2s) / (Σp + Σy + 2s): Dice with smooth 2s.
    x, y = make(task, dtype=dtype, device=device)
    w = torch.rand(x.shape[0], dtype=dtype, device=device)
    kwargs: dict[str, Any] = {"scope": scope, "reduction": "none", "sample_weight": w}
    v1, g1 = _value_and_grad(tversky_loss, x, y, alpha=0.5, beta=0.5, smooth=smooth, **kwargs)
    v2, g2 = _value_and_grad(dice_loss, x, y, smooth=2 * smooth, square_denominator=False, **kwargs)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("square", [False, True])
def test_self_adjusting_alpha_zero_is_dice_exactly(task: Task, scope: str, square: bool) -> None:
    x, y = make(task)
    kwargs: dict[str, Any] = {"scope": scope, "square_denominator": square, "smooth": 0.7}
    v1, g1 = _value_and_grad(self_adjusting_dice_loss, x, y, alpha=0.0, coefficient=2.0, **kwargs)
    v2, g2 = _value_and_grad(dice_loss, x, y, **kwargs)
    torch.testing.assert_close(v1, v2, rtol=0, atol=0)
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
def test_tversky_one_one_is_soft_jaccard(task: Task) -> None:
    # alpha = beta = 1: TP + FP + FN = Σp + Σy - TP, the soft Jaccard (Tanimoto) loss.
    x, y = make(task)
    p = x.sigmoid() if task is not Task.MULTICLASS else x.softmax(1)
    t = y if task is not Task.MULTICLASS else F.one_hot(y, x.shape[1]).double()
    tp = p * t if task is Task.BINARY else (p * t).sum(1)
    union = p + t - p * t if task is Task.BINARY else (p + t - p * t).sum(1)
    expected = 1 - (tp + 1.0) / (union + 1.0)
    value = tversky_loss(x, y, alpha=1.0, beta=1.0, reduction="none", **SAMPLE)
    torch.testing.assert_close(value, expected)


# --- analytic properties -------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.9])
def test_tversky_index_is_weighted_harmonic_mean_of_soft_precision_and_recall(alpha: float) -> None:
    # For alpha + beta = 1 and s = 0: TP / (TP + a FP + b FN) = 1 / (a / P + b / R) with the
    # soft precision P = TP / Σp and recall R = TP / Σy (a/P + b/R = 1 + a FP/TP + b FN/TP).
    x, y = make(Task.MULTILABEL, n=8, c=4)
    beta = 1.0 - alpha
    p = x.sigmoid()
    tp = (p * y).sum(0)
    precision, recall = tp / p.sum(0), tp / y.sum(0)
    expected = 1 - 1 / (alpha / precision + beta / recall)
    value = tversky_loss(x, y, alpha=alpha, beta=beta, smooth=0.0, scope="batch", reduction="none")
    torch.testing.assert_close(value, expected)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("square", [False, True])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_self_adjusting_dice_is_dice_of_the_adjusted_probability(
    scope: str, square: bool, alpha: float
) -> None:
    # The paper's substitution: Dice computed on p~ = (1 - p)^alpha p instead of p. Feeding
    # dice_loss the logits of p~ (log p~ - log(1 - p~)) gives the same loss.
    x, y = make(Task.MULTILABEL, n=7, c=3)
    p = x.sigmoid()
    p_adj = (1 - p) ** alpha * p
    x_adj = torch.log(p_adj) - torch.log1p(-p_adj)
    kwargs: dict[str, Any] = {"scope": scope, "square_denominator": square, "reduction": "none"}
    torch.testing.assert_close(
        self_adjusting_dice_loss(x, y, alpha=alpha, **kwargs), dice_loss(x_adj, y, **kwargs)
    )


@pytest.mark.parametrize("name", NAMES)
def test_batch_scope_is_sample_scope_of_the_transpose(name: str) -> None:
    # Batch scope sums each class over the samples: the sample scope of the (C, N) transpose.
    x, y = make(Task.MULTILABEL, n=5, c=3)
    fn = FUNCTIONS[name]
    batch = fn(x, y, scope="batch", reduction="none", **PARAMS[name])
    torch.testing.assert_close(
        batch, fn(x.T, y.T, scope="sample", reduction="none", **PARAMS[name])
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
def test_batch_scope_integer_weight_is_repetition(name: str, task: Task) -> None:
    # sample_weight multiplies each sample's terms in the sums: weight 2 counts a sample twice,
    # weight 0 drops it.
    x, y = make(task, n=4)
    w = torch.tensor([1.0, 2.0, 0.0, 1.0], dtype=torch.float64)
    index = torch.tensor([0, 1, 1, 3])
    fn = FUNCTIONS[name]
    weighted = fn(x, y, scope="batch", sample_weight=w, reduction="none", **PARAMS[name])
    repeated = fn(x[index], y[index], scope="batch", reduction="none", **PARAMS[name])
    torch.testing.assert_close(weighted, repeated)


@pytest.mark.parametrize("name", NAMES)
def test_sample_scope_mean_is_weighted_average(name: str) -> None:
    x, y = make(Task.MULTICLASS, n=5)
    w = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    fn = FUNCTIONS[name]
    per = fn(x, y, reduction="none", **SAMPLE, **PARAMS[name])
    weighted = fn(x, y, sample_weight=w, **SAMPLE, **PARAMS[name])
    torch.testing.assert_close(weighted, (per * w).sum() / w.sum())


def test_perfect_and_opposite_predictions() -> None:
    # With s = 0 a perfect (saturated) prediction is loss 0 and a fully wrong one is loss 1.
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    right = (2 * y - 1) * 1e4
    for name, fn in FUNCTIONS.items():
        extra = {"alpha": 0.0} if name == "self_adjusting_dice" else {}
        assert fn(right, y, smooth=0.0, **extra).item() == 0.0
        assert fn(-right, y, smooth=0.0, **extra).item() == 1.0


# --- gradcheck / gradgradcheck -------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
@pytest.mark.parametrize("scope", SCOPES)
def test_gradcheck_and_gradgradcheck_float64(name: str, task: Task, scope: str) -> None:
    x, y = make(task, n=4, c=3)
    w = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=torch.float64)
    fn = FUNCTIONS[name]

    def loss(z: Tensor) -> Tensor:
        return fn(z, y, scope=scope, sample_weight=w, **PARAMS[name])

    z = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(loss, (z,), fast_mode=True)
    assert torch.autograd.gradgradcheck(loss, (z,), fast_mode=True)


# --- module, reductions, bad arguments -----------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (DiceLoss(smooth=0.5, square_denominator=False, scope="batch", reduction="sum"), "dice"),
        (TverskyLoss(alpha=0.4, beta=0.8, smooth=0.5, scope="batch", reduction="sum"), "tversky"),
        (
            SelfAdjustingDiceLoss(
                alpha=1.5, smooth=0.5, coefficient=1.0, scope="batch", reduction="sum"
            ),
            "self_adjusting_dice",
        ),
    ],
)
def test_module_equals_function_and_keeps_state(module: LossModule, name: str) -> None:
    x, y = make(Task.MULTICLASS)
    w = torch.rand(x.shape[0], dtype=torch.float64)
    before = dict(module.hyperparameters())
    expected = FUNCTIONS[name](
        x, y, scope="batch", reduction="sum", sample_weight=w, **PARAMS[name]
    )
    torch.testing.assert_close(module(x, y, w), expected)
    torch.testing.assert_close(module(x, y, w), expected)
    assert module.hyperparameters() == before
    assert module.reduction == "sum"
    assert list(module.state_dict()) == []


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("task", "scope", "reduction", "shape"),
    [
        (Task.BINARY, "sample", "none", (6,)),
        (Task.MULTICLASS, "sample", "none", (6,)),
        (Task.MULTILABEL, "sample", "none", (6,)),
        (Task.BINARY, "batch", "none", ()),
        (Task.MULTICLASS, "batch", "none", (3,)),
        (Task.MULTILABEL, "batch", "none", (3,)),
        (Task.MULTICLASS, "sample", "mean", ()),
        (Task.MULTICLASS, "sample", "sum", ()),
        (Task.MULTILABEL, "batch", "mean", ()),
        (Task.BINARY, "batch", "sum", ()),
    ],
)
def test_reduction_shapes(
    name: str, task: Task, scope: str, reduction: str, shape: tuple[int, ...]
) -> None:
    x, y = make(task, n=6, c=3)
    value = FUNCTIONS[name](x, y, scope=scope, reduction=reduction)
    assert value.shape == shape


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("dice", {"smooth": -1.0}, "smooth"),
        ("dice", {"smooth": float("inf")}, "smooth"),
        ("dice", {"scope": "global"}, "scope"),
        ("dice", {"reduction": "avg"}, "reduction to be one of"),
        ("tversky", {"alpha": -0.1}, "alpha"),
        ("tversky", {"beta": -0.1}, "beta"),
        ("tversky", {"scope": "dataset"}, "scope"),
        ("self_adjusting_dice", {"alpha": -1.0}, "alpha"),
        ("self_adjusting_dice", {"coefficient": 0.0}, "coefficient"),
        ("self_adjusting_dice", {"reduction": "avg"}, "reduction to be one of"),
    ],
)
def test_bad_arguments_raise(name: str, kwargs: dict[str, Any], message: str) -> None:
    x, y = make(Task.MULTICLASS)
    with pytest.raises(ValueError, match=message):
        FUNCTIONS[name](x, y, **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise(name: str) -> None:
    fn = FUNCTIONS[name]
    with pytest.raises(ValueError, match="at least 2 classes"):
        fn(torch.randn(3, 1), torch.tensor([0, 0, 0]))
    with pytest.raises(ValueError, match=r"targets in \[0, 1\]"):
        fn(torch.randn(3), torch.tensor([0.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\]"):
        fn(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"sample_weight of shape \(2,\)"):
        fn(torch.randn(2, 3), torch.tensor([0, 1]), sample_weight=torch.ones(3))
    with pytest.raises(ValueError, match="unknown parameter"):
        losses.compute(name, torch.randn(2, 3), torch.tensor([0, 1]), gamma=2.0)


# --- peers ---------------------------------------------------------------------------------------

# kornia has eps in the denominator only, 1 - 2 TP / (Σp + Σy + eps): compare with smooth=0 and
# eps=1e-12 (relative effect ~1e-12, under assert_close's float64 tolerance).
_EPS = 1e-12


def _released_dice(logits: Tensor, targets: Tensor, alpha: float) -> Tensor:
    """The authors' released ``DiceLoss`` on one logit per example (ShannonAI/dice_loss_for_NLP,
    ``loss/dice_loss.py``, ``_binary_class`` then ``_compute_dice_loss``), with their
    scripts' flags ``--dice_smooth 1 --dice_square --dice_alpha``: the sigmoid of the flattened
    batch, ``p <- (1 - p)^alpha p``, one overlap over the whole batch."""
    p = torch.sigmoid(logits.reshape(-1))
    p = ((1 - p) ** alpha) * p
    intersection = torch.sum(p * targets)
    smooth = 1.0
    return 1 - (2 * intersection + smooth) / (
        torch.sum(torch.square(p)) + torch.sum(torch.square(targets)) + smooth
    )


@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_defaults_are_the_authors_released_configuration(alpha: float) -> None:
    x, y = make(Task.BINARY, n=16)
    expected, expected_grad = _value_and_grad(lambda z, t: _released_dice(z, t, alpha), x, y)
    fn = dice_loss if alpha == 0.0 else self_adjusting_dice_loss
    value, grad = _value_and_grad(fn, x, y)  # the defaults: alpha 0.01 for the latter
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)


def test_parity_kornia_dice_micro_is_sample_scope() -> None:
    # kornia takes (B, C, H, W) logits with the softmax inside and (B, H, W) targets.
    # average="micro" sums over classes and pixels of each sample, then means the batch: with
    # H = W = 1 that is our multiclass scope="sample" with reduction="mean".
    x, y = make(Task.MULTICLASS, n=10, c=4)
    v1, g1 = _value_and_grad(dice_loss, x, y, smooth=0.0, square_denominator=False, **SAMPLE)
    ref = lambda z, t: kornia.losses.dice_loss(  # noqa: E731
        z.reshape(10, 4, 1, 1), y.reshape(10, 1, 1), average="micro", eps=_EPS
    )
    v2, g2 = _value_and_grad(ref, x, y)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1, g2)


def test_parity_kornia_dice_macro_is_batch_scope() -> None:
    # kornia's "macro" is one Dice per (sample, class) over the pixels, averaged over the classes
    # present in that sample's target. Our samples on the pixel axis of one kornia sample,
    # (1, C, N, 1), make it per class over the batch: our scope="batch" with reduction="mean"
    # once every class is present (kornia leaves absent classes out of the mean; we keep them,
    # where the loss is 1 - s / (Σp + s)).
    x, y = make(Task.MULTICLASS, n=12, c=4)
    v1, g1 = _value_and_grad(dice_loss, x, y, smooth=0.0, scope="batch", square_denominator=False)
    ref = lambda z, t: kornia.losses.dice_loss(  # noqa: E731
        z.T.reshape(1, 4, 12, 1), y.reshape(1, 12, 1), average="macro", eps=_EPS
    )
    v2, g2 = _value_and_grad(ref, x, y)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize(("alpha", "beta"), [(0.5, 0.5), (0.3, 0.7), (1.0, 1.0), (0.1, 2.0)])
def test_parity_kornia_tversky_is_batch_scope(alpha: float, beta: float) -> None:
    # kornia's tversky_loss is per (sample, class) over the pixels, averaged over present
    # classes, then over the batch: as for "macro" above, (1, C, N, 1) is our scope="batch".
    x, y = make(Task.MULTICLASS, n=12, c=4)
    v1, g1 = _value_and_grad(tversky_loss, x, y, alpha=alpha, beta=beta, smooth=0.0, scope="batch")
    ref = lambda z, t: kornia.losses.tversky_loss(  # noqa: E731
        z.T.reshape(1, 4, 12, 1), y.reshape(1, 12, 1), alpha=alpha, beta=beta, eps=_EPS
    )
    v2, g2 = _value_and_grad(ref, x, y)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1, g2)


def _monai_inputs(task: Task, scope: str, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Reshape ours for MONAI, whose sums run over the spatial axes (2, ...) of (B, ch, ...).

    scope="sample": the label axis becomes the spatial axis of one channel, (N, 1, C): MONAI's
    per-(sample, channel) sum is our per-sample sum over classes. scope="batch": the label axis
    is the channel axis, (N, C, 1), and batch=True adds axis 0 to the sums: per class over the
    batch. Binary is (N, 1, 1) in both (MONAI's dim=[] would sum over everything).
    """
    n = x.shape[0]
    if task is Task.BINARY:
        return x.reshape(n, 1, 1), y.reshape(n, 1, 1)
    if task is Task.MULTICLASS:
        if scope == "sample":
            # softmax=True/to_onehot_y=True are skipped (with a warning) on one channel, so
            # the caller applies the softmax on the last axis and passes one-hot targets.
            return x.reshape(n, 1, -1), F.one_hot(y, x.shape[1]).double().reshape(n, 1, -1)
        return x.reshape(n, -1, 1), y.reshape(n, 1, 1)  # softmax over channels, to_onehot_y
    if scope == "sample":
        return x.reshape(n, 1, -1), y.reshape(n, 1, -1)
    return x.reshape(n, -1, 1), y.reshape(n, -1, 1)


def _monai_activation(task: Task, scope: str) -> dict[str, Any]:
    if task is not Task.MULTICLASS:
        return {"sigmoid": True}
    if scope == "sample":
        return {"other_act": lambda t: torch.softmax(t, dim=-1)}
    return {"softmax": True, "to_onehot_y": True}


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("square", [False, True])
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_parity_monai_dice(task: Task, scope: str, square: bool, smooth: float) -> None:
    # MONAI: 1 - (2 TP + smooth_nr) / (Σp + Σy + smooth_dr) (squared_pred: Σp² + Σy², its TP
    # from norms equal to Σ p y); smooth_nr = smooth_dr = s is our one smooth. soft_label=False
    # (its default) is the paper's Σ p y. reduction="mean" means MONAI's (N, 1) or (C,) outputs.
    x, y = make(task, n=8, c=4)
    v1, g1 = _value_and_grad(dice_loss, x, y, smooth=smooth, square_denominator=square, scope=scope)
    criterion = monai.losses.DiceLoss(
        squared_pred=square,
        smooth_nr=smooth,
        smooth_dr=smooth,
        batch=scope == "batch",
        **_monai_activation(task, scope),
    )
    v2, g2 = _value_and_grad(lambda z, t: criterion(*_monai_inputs(task, scope, z, t)), x, y)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize(("alpha", "beta"), [(0.5, 0.5), (0.3, 0.7), (2.0, 0.1)])
def test_parity_monai_tversky(task: Task, scope: str, alpha: float, beta: float) -> None:
    # MONAI: 1 - (TP + smooth_nr) / (TP + alpha FP + beta FN + smooth_dr), FP = Σ p (1 - y),
    # FN = Σ (1 - p) y: our convention with smooth_nr = smooth_dr = s.
    x, y = make(task, n=8, c=4)
    v1, g1 = _value_and_grad(tversky_loss, x, y, alpha=alpha, beta=beta, smooth=0.7, scope=scope)
    criterion = monai.losses.TverskyLoss(
        alpha=alpha,
        beta=beta,
        smooth_nr=0.7,
        smooth_dr=0.7,
        batch=scope == "batch",
        **_monai_activation(task, scope),
    )
    v2, g2 = _value_and_grad(lambda z, t: criterion(*_monai_inputs(task, scope, z, t)), x, y)
    torch.testing.assert_close(v1, v2)
    torch.testing.assert_close(g1, g2)


# --- extremes, half precision, all-negative / all-positive batches -------------------------------


def _extreme(task: Task) -> tuple[Tensor, Tensor]:
    """±1e4 logits, p exactly 1 (and 0) in float32, with mixed targets."""
    if task is Task.BINARY:
        return torch.tensor([1e4, -1e4, 1e4, -1e4, 0.0]), torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0])
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4], [0.0, 0.0, 1e4], [1e4, 1e4, -1e4]])
    if task is Task.MULTICLASS:
        return x, torch.tensor([0, 0, 2, 1])
    return x, torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_extreme_logits_value_gradient_hessian_finite(name: str, task: Task, smooth: float) -> None:
    x, y = _extreme(task)
    params = {**PARAMS[name], "smooth": smooth}
    out = losses.derivatives(name, x, y, hessian=True, **SAMPLE, **params)
    assert torch.isfinite(out.value).all()
    assert torch.isfinite(out.grad).all()
    assert out.hessian_diag is not None and torch.isfinite(out.hessian_diag).all()
    batch = losses.derivatives(name, x, y, scope="batch", **params)
    assert torch.isfinite(batch.value).all() and torch.isfinite(batch.grad).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
@pytest.mark.parametrize("kind", ["all_negative", "all_positive"])
def test_all_negative_and_all_positive_batches_finite(name: str, task: Task, kind: str) -> None:
    # moderate logits in the first samples, saturated ones (±1e4) in the last ones
    x, _ = make(task, n=6, c=3, dtype=torch.float32)
    x[3:] = x[3:].sign() * 1e4
    if task is Task.MULTICLASS:
        y = torch.zeros(6, dtype=torch.long) if kind == "all_negative" else torch.full((6,), 2)
    else:
        y = torch.zeros_like(x) if kind == "all_negative" else torch.ones_like(x)
    for smooth in (0.0, 1.0):
        params = {**PARAMS[name], "smooth": smooth}
        out = losses.derivatives(name, x, y, hessian=True, **SAMPLE, **params)
        assert torch.isfinite(out.value) and torch.isfinite(out.grad).all()
        assert out.hessian_diag is not None and torch.isfinite(out.hessian_diag).all()
        batch = losses.derivatives(name, x, y, scope="batch", **params)
        assert torch.isfinite(batch.value) and torch.isfinite(batch.grad).all()


def test_all_negative_saturated_binary_is_zero_loss() -> None:
    # y = 0 and p = 0 (x = -1e4): TP = 0, Σp = Σy = 0 -> 1 - s / s = 0 for s = 1; all positive
    # with p = 1: 1 - (2 + 1) / (1 + 1 + 1) = 0.
    assert dice_loss(torch.full((4,), -1e4), torch.zeros(4)).item() == 0.0
    assert dice_loss(torch.full((4,), 1e4), torch.ones(4)).item() == 0.0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
@pytest.mark.parametrize("scope", SCOPES)
def test_half_precision_computes_in_float32(
    name: str, task: Task, scope: str, half_dtype: torch.dtype
) -> None:
    x, y = make(task, n=8, c=3, dtype=torch.float32, scale=100.0)
    xh = x.to(half_dtype).requires_grad_(True)
    fn = FUNCTIONS[name]
    value = fn(xh, y, scope=scope, **PARAMS[name])
    value.backward()
    assert value.dtype == torch.float32
    assert xh.grad is not None and xh.grad.dtype == half_dtype and torch.isfinite(xh.grad).all()
    torch.testing.assert_close(value, fn(xh.detach().float(), y, scope=scope, **PARAMS[name]))


# --- Hessian diagonal, coupling, registry --------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
def test_exact_hessian_diagonal(name: str, task: Task) -> None:
    x, y = make(task, n=4, c=3)
    w = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=torch.float64)
    out = losses.derivatives(name, x, y, hessian=True, sample_weight=w, **SAMPLE, **PARAMS[name])
    full = torch.autograd.functional.hessian(
        lambda z: FUNCTIONS[name](z, y, sample_weight=w, **SAMPLE, **PARAMS[name]), x
    )
    diag = full.reshape(x.numel(), x.numel()).diagonal().reshape(x.shape)
    assert out.hessian_diag is not None
    torch.testing.assert_close(out.hessian_diag, diag)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_batch_scope_hessian_diagonal_is_exact(name: str, task: Task, reduction: str) -> None:
    """The batch couples every logit, but each logit's own second derivative needs only its
    set's sums: the closed form, held to autograd's full Hessian."""
    x, y = make(task, n=5, c=3)
    w = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.0], dtype=torch.float64)
    kwargs = {"scope": "batch", "reduction": reduction, "sample_weight": w, **PARAMS[name]}
    out = losses.derivatives(name, x, y, hessian=True, **kwargs)
    full = torch.autograd.functional.hessian(lambda z: FUNCTIONS[name](z, y, **kwargs).sum(), x)
    assert out.hessian_diag is not None
    torch.testing.assert_close(
        out.hessian_diag, full.reshape(x.numel(), x.numel()).diagonal().reshape(x.shape)
    )


@pytest.mark.parametrize("name", NAMES)
def test_registry_entry_and_coupling(name: str) -> None:
    spec = losses.get(name)
    assert spec.function is FUNCTIONS[name]
    assert spec.tasks == frozenset(TASKS)
    assert spec.sample_separable is False
    for task in TASKS:
        assert spec.coupling(spec.validate({}), task) is Coupling.BATCH
        assert spec.coupling(spec.validate({"scope": "sample"}), task) is Coupling.SAMPLE
    schema = spec.json_schema()["properties"]
    assert schema["scope"]["enum"] == ["sample", "batch"]
    assert schema["scope"]["default"] == "batch"
    assert schema["smooth"]["default"] == 1.0
    x, y = make(Task.MULTICLASS)
    torch.testing.assert_close(
        losses.compute(name, x, y, **PARAMS[name]), FUNCTIONS[name](x, y, **PARAMS[name])
    )


# --- the degeneracies at alpha near 1 that the docstring and its figure state ---------------


def test_self_adjusting_dice_at_alpha_one_is_degenerate_per_example() -> None:
    p = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)
    z = (torch.log(p) - torch.log1p(-p)).requires_grad_(True)
    paper = {"alpha": 1.0, "scope": "sample", "square_denominator": False, "reduction": "none"}
    positive = self_adjusting_dice_loss(z, torch.ones_like(p), **paper)
    (grad,) = torch.autograd.grad(positive.sum(), z)
    # a positive's loss is lowest at p = 1/2, and past it the gradient pushes the logit down
    assert p[positive.argmin()].item() == pytest.approx(0.5)
    assert (grad[p > 0.5] > 0).all() and (grad[p < 0.5] < 0).all()
    # a negative's loss falls to 0 at both ends: the wrong pole costs nothing
    ends = torch.tensor([-30.0, 30.0], dtype=torch.float64)
    negative = self_adjusting_dice_loss(ends, torch.zeros(2, dtype=torch.float64), **paper)
    assert negative.max().item() < 1e-12
    # at the defaults (alpha 0.01) a lone positive's loss falls all the way to p = 0.98
    default = self_adjusting_dice_loss(
        z.detach(), torch.ones_like(p), scope="sample", reduction="none"
    )
    assert default.argmin().item() == len(p) - 1


def test_the_figure_script_draws_every_registry_loss(tmp_path: Path) -> None:
    figures = load_script("loss_figures")
    assert figures.main(["--out", str(tmp_path)]) == 0
    for name in ("losses_vs_pt.png", "self_adjusting_dice.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pt = torch.tensor([0.2, 0.9], dtype=torch.float64)
    for name in losses.names():
        values, _ = figures.loss_at(name, pt)
        assert torch.isfinite(values).all(), name


@pytest.mark.parametrize("scope", ["sample", "batch"])
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.value)
def test_hessian_diagonal_in_chunks_of_rows_is_the_whole(
    scope: str, task: Task, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The closed form runs over chunks of rows (its memory stays bounded): the batch
    scope's sums over every chunk first."""
    from losses import _dice

    x, y = make(task, n=9, c=3)
    w = torch.linspace(0.5, 2.0, 9, dtype=torch.float64)
    whole = losses.derivatives(
        "self_adjusting_dice", x, y, hessian=True, scope=scope, sample_weight=w
    )
    monkeypatch.setattr(_dice, "_CHUNK_ELEMENTS", 4)  # chunks of 1 to 4 rows
    chunked = losses.derivatives(
        "self_adjusting_dice", x, y, hessian=True, scope=scope, sample_weight=w
    )
    assert whole.hessian_diag is not None and chunked.hessian_diag is not None
    torch.testing.assert_close(chunked.hessian_diag, whole.hessian_diag)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scope", ["sample", "batch"])
@pytest.mark.parametrize("task", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("focus", [0.01, 0.5, 3.0])
def test_float32_closed_forms_keep_float64s_answer(
    name: str, scope: str, task: str, focus: float
) -> None:
    """The closed forms work in the logits' precision: in float32, with a focus term too,
    value, gradient and Hessian diagonal stay within a few float32 rounding errors of the
    float64 answer (relative to each's largest entry), at logits of ±1e4 as well."""
    generator = torch.Generator().manual_seed(5)
    shape = (64,) if task == "binary" else (64, 6)
    x = torch.randn(shape, generator=generator, dtype=torch.float64) * 8
    x.view(-1)[:6] = torch.tensor([1e4, -1e4, 50.0, -50.0, 20.0, -20.0], dtype=torch.float64)
    if task == "multiclass":
        y = torch.randint(0, 6, (64,), generator=generator)
    else:
        y = (torch.rand(shape, generator=generator) < 0.4).to(torch.float64)
    params: dict[str, Any] = {"scope": scope}
    if name == "self_adjusting_dice":
        params["alpha"] = focus
    wide = losses.derivatives(name, x, y, hessian=True, **params)
    narrow_y = y.float() if y.is_floating_point() else y
    narrow = losses.derivatives(name, x.float(), narrow_y, hessian=True, **params)
    assert wide.hessian_diag is not None and narrow.hessian_diag is not None
    for got, want in [
        (narrow.value, wide.value),
        (narrow.grad, wide.grad),
        (narrow.hessian_diag, wide.hessian_diag),
    ]:
        assert got.dtype == torch.float32
        error = (got.double() - want).abs().max() / want.abs().max().clamp_min(1e-30)
        assert error < 2e-6, (got, want)
