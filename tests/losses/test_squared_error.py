"""squared_error (Brier score): the STYLE.md checklist and parity with scikit-learn."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import brier_score_loss

import losses
from losses._squared_error import SquaredErrorLoss, squared_error_loss


def _hessian_diagonal(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    full: torch.Tensor = torch.autograd.functional.hessian(fn, x)
    return full.reshape(x.numel(), x.numel()).diagonal().reshape(x.shape)


def _inputs(task: str, n: int = 6, c: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    if task == "binary":
        return torch.randn(n, dtype=torch.float64), torch.rand(n, dtype=torch.float64)
    if task == "multiclass":
        return torch.randn(n, c, dtype=torch.float64), torch.randint(0, c, (n,))
    return torch.randn(n, c, dtype=torch.float64), torch.rand(n, c, dtype=torch.float64)


TASKS = ["binary", "multiclass", "multilabel"]


# -- hand-computed values ---------------------------------------------------------------------


def test_hand_computed_binary_and_multilabel() -> None:
    # logits [0, ln 3]: sigma = [1/2, 3/4]; targets [1, 0]: (1/2 - 1)^2 = 1/4, (3/4)^2 = 9/16;
    # mean = (4/16 + 9/16) / 2 = 13/32. Multilabel (one row of the same) gives the same mean.
    logits = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)
    targets = torch.tensor([1.0, 0.0], dtype=torch.float64)
    assert squared_error_loss(logits, targets).item() == pytest.approx(13 / 32, rel=1e-12)
    rows = squared_error_loss(logits[None], targets[None], reduction="none")
    torch.testing.assert_close(rows, torch.tensor([[1 / 4, 9 / 16]], dtype=torch.float64))


def test_hand_computed_multiclass() -> None:
    # logits [0, ln 3]: p = [1/4, 3/4]; target 0: (1/4 - 1)^2 + (3/4 - 0)^2 = 9/16 + 9/16 = 9/8;
    # target 1: (1/4)^2 + (3/4 - 1)^2 = 1/8. sample_weight [1, 3]: (9/8 + 3/8) / 4 = 3/8.
    logits = torch.tensor([[0.0, math.log(3.0)]] * 2, dtype=torch.float64)
    targets = torch.tensor([0, 1])
    none = squared_error_loss(logits, targets, reduction="none")
    torch.testing.assert_close(none, torch.tensor([9 / 8, 1 / 8], dtype=torch.float64))
    s = torch.tensor([1.0, 3.0], dtype=torch.float64)
    assert squared_error_loss(logits, targets, sample_weight=s).item() == pytest.approx(3 / 8)


# -- the known loss (MSE on probabilities), gradients included --------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_equals_mse_of_probabilities_with_gradients(
    task: str, dtype: torch.dtype, device: torch.device
) -> None:
    x, y = _inputs(task, n=12)
    x1 = x.to(dtype=dtype, device=device).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = y.to(device)
    ours = squared_error_loss(x1, y if task == "multiclass" else y.to(dtype))
    if task == "multiclass":
        onehot = F.one_hot(y, x.shape[1]).to(dtype)
        ref = F.mse_loss(x2.softmax(1), onehot, reduction="sum") / x.shape[0]
    else:
        ref = F.mse_loss(torch.sigmoid(x2), y.to(dtype))
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


# -- analytic properties -----------------------------------------------------------------------


def test_two_class_softmax_is_twice_the_binary_score() -> None:
    # softmax of (0, x) is (1 - sigma(x), sigma(x)): both classes are off by the same amount,
    # so the multiclass score is 2 (sigma(x) - y)^2. Gradients w.r.t. x agree likewise.
    x1 = torch.randn(10, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.randint(0, 2, (10,))
    two = torch.stack([torch.zeros_like(x1), x1], dim=1)
    multi = squared_error_loss(two, y, reduction="none")
    binary = squared_error_loss(x2, y.double(), reduction="none")
    torch.testing.assert_close(multi, 2 * binary)
    multi.sum().backward()
    binary.sum().backward()
    torch.testing.assert_close(x1.grad, 2 * x2.grad)  # type: ignore[operator]


def test_binary_gradient_closed_form() -> None:
    # d/dx (sigma(x) - y)^2 = 2 (sigma(x) - y) sigma(x) (1 - sigma(x)): it vanishes on both
    # confidently right and confidently wrong samples.
    x = torch.tensor([-30.0, -1.0, 0.0, 2.0, 30.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0, 0.3, 0.0], dtype=torch.float64)
    squared_error_loss(x, y, reduction="sum").backward()
    p = torch.sigmoid(x.detach())
    torch.testing.assert_close(x.grad, 2 * (p - y) * p * (1 - p))
    assert x.grad is not None and abs(x.grad[0].item()) < 1e-12


@pytest.mark.parametrize("task", TASKS)
def test_bounded(task: str) -> None:
    # Per sample at most 2 (multiclass) or 1 (per element), however wrong the logits.
    x, y = _inputs(task, n=20)
    value = squared_error_loss(x * 1e3, y, reduction="none")
    assert bool((value <= (2.0 if task == "multiclass" else 1.0)).all())


# -- gradcheck ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_gradcheck_float64(task: str) -> None:
    x, y = _inputs(task, n=4)
    x.requires_grad_(True)
    s = torch.rand(4, dtype=torch.float64)

    def fn(z: torch.Tensor) -> torch.Tensor:
        return squared_error_loss(z, y, sample_weight=s)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


# -- module ------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_module_equals_function_and_keeps_state(task: str) -> None:
    x, y = _inputs(task)
    s = torch.rand(6, dtype=torch.float64)
    module = SquaredErrorLoss(reduction="sum")
    state = dict(module.state_dict())
    torch.testing.assert_close(
        module(x, y, s), squared_error_loss(x, y, reduction="sum", sample_weight=s)
    )
    assert dict(module.state_dict()) == state == {}
    assert module.reduction == "sum"


@pytest.mark.parametrize(
    ("task", "reduction", "shape"),
    [
        ("binary", "none", (6,)),
        ("multiclass", "none", (6,)),
        ("multilabel", "none", (6, 3)),
        ("binary", "mean", ()),
        ("multiclass", "mean", ()),
        ("multilabel", "mean", ()),
        ("multilabel", "sum", ()),
    ],
)
def test_reduction_shapes(task: str, reduction: str, shape: tuple[int, ...]) -> None:
    x, y = _inputs(task)
    assert squared_error_loss(x, y, reduction=reduction).shape == shape


# -- bad arguments -----------------------------------------------------------------------------


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="reduction to be one of"):
        squared_error_loss(torch.randn(4), torch.ones(4), reduction="avg")
    with pytest.raises(ValueError, match=r"binary targets in \[0, 1\]"):
        squared_error_loss(torch.randn(2), torch.tensor([0.0, 2.0]))
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\]"):
        squared_error_loss(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="Expected logits"):
        squared_error_loss(torch.randn(2, 3), torch.ones(3))
    with pytest.raises(losses.LossParameterError, match="gamma: unknown parameter"):
        losses.compute("squared_error", torch.randn(3), torch.ones(3), gamma=1.0)


# -- parity with scikit-learn ------------------------------------------------------------------


def test_parity_with_sklearn_binary() -> None:
    # sklearn's binary Brier score is mean (p - y)^2 by default: its scale_by_half="auto" halves
    # the two-column sum for binary problems, which is our per-element form. With
    # scale_by_half=False it is the two-class sum, twice ours.
    gen = torch.Generator().manual_seed(0)
    x = 2 * torch.randn(40, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 2, (40,), generator=gen).double()
    s = torch.rand(40, dtype=torch.float64, generator=gen)
    p = torch.sigmoid(x).numpy()
    ours = squared_error_loss(x, y, sample_weight=s).item()
    assert ours == pytest.approx(brier_score_loss(y.numpy(), p, sample_weight=s.numpy()))
    assert squared_error_loss(x, y).item() == pytest.approx(brier_score_loss(y.numpy(), p))
    full = brier_score_loss(y.numpy(), p, sample_weight=s.numpy(), scale_by_half=False)
    assert 2 * ours == pytest.approx(full)


def test_parity_with_sklearn_multiclass() -> None:
    # sklearn >= 1.7 scores (N, C) probabilities as mean_i sum_c (p_ic - y_ic)^2; its
    # scale_by_half="auto" does not halve multiclass problems, so it is our score as is.
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(40, 4, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 4, (40,), generator=gen)
    s = torch.rand(40, dtype=torch.float64, generator=gen)
    p = x.softmax(1).numpy()
    labels = [0, 1, 2, 3]
    ref = brier_score_loss(y.numpy(), p, sample_weight=s.numpy(), labels=labels)
    assert squared_error_loss(x, y, sample_weight=s).item() == pytest.approx(ref)
    ref_plain = brier_score_loss(y.numpy(), p, labels=labels)
    assert squared_error_loss(x, y).item() == pytest.approx(ref_plain)


# -- numerical robustness ----------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("fill", [0, 1])
def test_extreme_logits_and_one_sided_batches_are_finite(task: str, fill: int) -> None:
    # All-negative / all-positive targets (multiclass: every target class 0, or class 1).
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]])
    if task == "binary":
        x, y = x.flatten(), torch.full((6,), float(fill))
    elif task == "multiclass":
        y = torch.full((2,), fill)
    else:
        y = torch.full((2, 3), float(fill))
    x.requires_grad_(True)
    value = squared_error_loss(x, y)
    value.backward()
    assert torch.isfinite(value)
    assert x.grad is not None and torch.isfinite(x.grad).all()
    d = losses.derivatives("squared_error", x.detach(), y, hessian=True)
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


@pytest.mark.parametrize("task", TASKS)
def test_half_precision_computes_in_float32(task: str, half_dtype: torch.dtype) -> None:
    x, y = _inputs(task, n=8)
    xh = (x * 100).to(half_dtype).requires_grad_(True)
    yh = y if task == "multiclass" else y.to(half_dtype)
    value = squared_error_loss(xh, yh)
    value.backward()
    assert value.dtype == torch.float32
    assert xh.grad is not None and xh.grad.dtype == half_dtype and torch.isfinite(xh.grad).all()
    expected = squared_error_loss(xh.detach().float(), y if task == "multiclass" else yh.float())
    torch.testing.assert_close(value, expected)
    d = losses.derivatives("squared_error", xh.detach(), yh, hessian=True)
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


# -- exact Hessian diagonal --------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_hessian_diagonal_is_exact(task: str, reduction: str) -> None:
    # Multiclass couples a sample's classes (Coupling.SAMPLE); binary and multilabel are
    # element-wise (Coupling.ELEMENT, one Hessian-vector product): both must be exact.
    x, y = _inputs(task, n=5, c=4)
    s = torch.rand(5, dtype=torch.float64)

    def total(z: torch.Tensor) -> torch.Tensor:
        return squared_error_loss(z, y, reduction=reduction, sample_weight=s).sum()

    d = losses.derivatives(
        "squared_error", x, y, hessian=True, reduction=reduction, sample_weight=s
    )
    assert d.hessian_diag is not None
    torch.testing.assert_close(d.hessian_diag, _hessian_diagonal(total, x))


# -- registry ----------------------------------------------------------------------------------


def test_registry_entry() -> None:
    spec = losses.get("squared_error")
    assert spec.function is squared_error_loss
    assert spec.module is SquaredErrorLoss
    params = spec.validate({})
    assert spec.coupling(params, losses.Task.MULTICLASS) is losses.Coupling.SAMPLE
    assert spec.coupling(params, losses.Task.BINARY) is losses.Coupling.ELEMENT
    assert spec.coupling(params, losses.Task.MULTILABEL) is losses.Coupling.ELEMENT
    assert spec.json_schema()["properties"] == {}
    x, y = torch.randn(5, 3), torch.randint(0, 3, (5,))
    torch.testing.assert_close(losses.compute("squared_error", x, y), squared_error_loss(x, y))
