"""logit_adjusted_cross_entropy: the STYLE.md checklist (Menon et al. 2021, arXiv:2007.07314)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

import losses
from losses._cross_entropy import cross_entropy_loss
from losses._logit_adjusted import (
    LogitAdjustedCrossEntropyLoss,
    logit_adjusted_cross_entropy_loss,
)

PRIOR = [50.0, 20.0, 5.0, 1.0]  # counts of a long-tailed training set


def _hessian_diagonal(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    full: torch.Tensor = torch.autograd.functional.hessian(fn, x)
    return full.reshape(x.numel(), x.numel()).diagonal().reshape(x.shape)


# -- hand-computed values ---------------------------------------------------------------------


def test_hand_computed_values() -> None:
    # counts [3, 1] -> prior [3/4, 1/4]; logits 0, tau = 1: adjusted logits [ln 3/4, ln 1/4],
    # so p = [3/4, 1/4]: target 1 costs ln 4, target 0 costs ln(4/3).
    # tau = 2: exp of the adjusted logits [9/16, 1/16], p = [9/10, 1/10]: target 1 costs ln 10.
    logits = torch.zeros(2, 2, dtype=torch.float64)
    targets = torch.tensor([1, 0])
    value = logit_adjusted_cross_entropy_loss(
        logits, targets, class_prior=[3.0, 1.0], reduction="none"
    )
    torch.testing.assert_close(
        value, torch.tensor([math.log(4.0), math.log(4.0 / 3.0)], dtype=torch.float64)
    )
    tau2 = logit_adjusted_cross_entropy_loss(
        logits[:1], targets[:1], class_prior=[3.0, 1.0], tau=2.0
    )
    assert tau2.item() == pytest.approx(math.log(10.0), rel=1e-12)


def test_hand_computed_sample_weight_mean() -> None:
    # Same two samples (losses ln 4, ln(4/3)) with sample_weight [1, 3]:
    # (ln 4 + 3 ln(4/3)) / 4.
    value = logit_adjusted_cross_entropy_loss(
        torch.zeros(2, 2, dtype=torch.float64),
        torch.tensor([1, 0]),
        class_prior=[3.0, 1.0],
        sample_weight=torch.tensor([1.0, 3.0], dtype=torch.float64),
    )
    assert value.item() == pytest.approx((math.log(4.0) + 3 * math.log(4.0 / 3.0)) / 4, rel=1e-12)


# -- degenerate parameters, gradients included ------------------------------------------------


@pytest.mark.parametrize(("tau", "prior"), [(0.0, PRIOR), (1.0, [5.0] * 4), (2.5, [0.25] * 4)])
def test_degenerate_cases_are_cross_entropy(
    tau: float, prior: list[float], dtype: torch.dtype, device: torch.device
) -> None:
    # tau = 0 removes the adjustment; a uniform prior shifts every logit by the same constant.
    x1 = torch.randn(16, 4, dtype=dtype, device=device, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    x3 = x1.detach().clone().requires_grad_(True)
    y = torch.randint(0, 4, (16,), device=device)
    ours = logit_adjusted_cross_entropy_loss(x1, y, class_prior=prior, tau=tau)
    ref = F.cross_entropy(x2, y)
    ce = cross_entropy_loss(x3, y)
    ours.backward()
    ref.backward()
    ce.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ce, ref)
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(x3.grad, x2.grad)


# -- analytic properties -----------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_equals_cross_entropy_of_adjusted_logits(tau: float, reduction: str) -> None:
    # The paper's loss: CE(x + tau * log pi), pi the normalised prior; gradients included.
    x1 = torch.randn(20, 4, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.randint(0, 4, (20,))
    prior = torch.tensor(PRIOR, dtype=torch.float64)
    ours = logit_adjusted_cross_entropy_loss(x1, y, class_prior=PRIOR, tau=tau, reduction=reduction)
    ref = F.cross_entropy(x2 + tau * torch.log(prior / prior.sum()), y, reduction=reduction)
    torch.testing.assert_close(ours, ref)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_prior_scale_does_not_matter() -> None:
    # Counts and frequencies are the same prior: it is normalised to sum 1 inside.
    x = torch.randn(10, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (10,))
    counts = logit_adjusted_cross_entropy_loss(x, y, class_prior=PRIOR, tau=1.3)
    total = sum(PRIOR)
    freqs = logit_adjusted_cross_entropy_loss(x, y, class_prior=[c / total for c in PRIOR], tau=1.3)
    torch.testing.assert_close(counts, freqs)


def test_rare_class_costs_more_than_under_cross_entropy() -> None:
    # With equal logits the adjusted softmax is pi^tau normalised: the rarest class gets the
    # smallest probability, so a rare-class target costs more than CE's ln C (and the gradient
    # pushes its logit up harder); the most frequent class costs less.
    x = torch.zeros(2, 4, dtype=torch.float64)
    value = logit_adjusted_cross_entropy_loss(
        x, torch.tensor([3, 0]), class_prior=PRIOR, reduction="none"
    )
    assert value[0].item() > math.log(4.0) > value[1].item()
    assert value[0].item() == pytest.approx(math.log(sum(PRIOR) / PRIOR[3]), rel=1e-12)


# -- gradcheck ---------------------------------------------------------------------------------


def test_gradcheck_float64() -> None:
    x = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 3, 2, 1])
    s = torch.rand(4, dtype=torch.float64)

    def fn(z: torch.Tensor) -> torch.Tensor:
        return logit_adjusted_cross_entropy_loss(z, y, class_prior=PRIOR, tau=1.5, sample_weight=s)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


# -- module ------------------------------------------------------------------------------------


def test_module_equals_function_and_keeps_state() -> None:
    x = torch.randn(8, 4)
    y = torch.randint(0, 4, (8,))
    s = torch.rand(8)
    module = LogitAdjustedCrossEntropyLoss(class_prior=PRIOR, tau=0.7, reduction="sum")
    before = module.class_prior.clone()
    expected = logit_adjusted_cross_entropy_loss(
        x, y, class_prior=PRIOR, tau=0.7, reduction="sum", sample_weight=s
    )
    torch.testing.assert_close(module(x, y, s), expected)
    torch.testing.assert_close(module.class_prior, before)
    assert "class_prior" in dict(module.named_buffers())


@pytest.mark.parametrize(("reduction", "shape"), [("none", (7,)), ("mean", ()), ("sum", ())])
def test_reduction_shapes(reduction: str, shape: tuple[int, ...]) -> None:
    value = logit_adjusted_cross_entropy_loss(
        torch.randn(7, 4), torch.randint(0, 4, (7,)), class_prior=PRIOR, reduction=reduction
    )
    assert value.shape == shape


# -- bad arguments -----------------------------------------------------------------------------


def test_missing_class_prior_raises_naming_it() -> None:
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(losses.LossParameterError, match="class_prior: Field required"):
        losses.compute("logit_adjusted_cross_entropy", x, y)
    with pytest.raises(losses.LossParameterError, match="class_prior"):
        losses.compute("logit_adjusted_cross_entropy", x, y, class_prior=None)
    with pytest.raises(TypeError, match="class_prior"):
        logit_adjusted_cross_entropy_loss(x, y)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="class_prior"):
        LogitAdjustedCrossEntropyLoss()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"class_prior": [1.0, 0.0, 2.0]}, "class_prior"),
        ({"class_prior": [1.0, -1.0, 2.0]}, "class_prior"),
        ({"class_prior": [1.0, float("nan"), 2.0]}, "class_prior"),
        ({"class_prior": [1.0, 2.0]}, "class_prior with one value per class"),
        ({"class_prior": [1.0, 2.0, 3.0], "tau": -0.5}, "tau"),
        ({"class_prior": [1.0, 2.0, 3.0], "reduction": "avg"}, "reduction to be one of"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        logit_adjusted_cross_entropy_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), **kwargs)  # type: ignore[arg-type]


def test_bad_targets_raise() -> None:
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\]"):
        logit_adjusted_cross_entropy_loss(
            torch.randn(2, 3), torch.tensor([0, 3]), class_prior=[1.0, 1.0, 1.0]
        )
    with pytest.raises(ValueError, match="supports"):
        logit_adjusted_cross_entropy_loss(
            torch.randn(2, 3), torch.ones(2, 3), class_prior=[1.0, 1.0, 1.0]
        )


# -- numerical robustness ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [0, 3])
def test_extreme_logits_and_single_class_batches_are_finite(cls: int) -> None:
    x = torch.tensor(
        [[1e4, -1e4, 0.0, 0.0], [-1e4, 1e4, 0.0, 0.0], [0.0, 0.0, -1e4, 1e4]], requires_grad=True
    )
    y = torch.full((3,), cls)
    value = logit_adjusted_cross_entropy_loss(x, y, class_prior=PRIOR, tau=2.0)
    value.backward()
    assert torch.isfinite(value)
    assert x.grad is not None and torch.isfinite(x.grad).all()
    d = losses.derivatives(
        "logit_adjusted_cross_entropy", x.detach(), y, hessian=True, class_prior=PRIOR, tau=2.0
    )
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


def test_half_precision_computes_in_float32(half_dtype: torch.dtype) -> None:
    x = (torch.randn(8, 4) * 100).to(half_dtype).requires_grad_(True)
    y = torch.randint(0, 4, (8,))
    value = logit_adjusted_cross_entropy_loss(x, y, class_prior=PRIOR)
    value.backward()
    assert value.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == half_dtype and torch.isfinite(x.grad).all()
    torch.testing.assert_close(
        value, logit_adjusted_cross_entropy_loss(x.detach().float(), y, class_prior=PRIOR)
    )
    d = losses.derivatives(
        "logit_adjusted_cross_entropy", x.detach(), y, hessian=True, class_prior=PRIOR
    )
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


# -- exact Hessian diagonal --------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_hessian_diagonal_is_exact(reduction: str) -> None:
    x = torch.randn(5, 4, dtype=torch.float64)
    y = torch.tensor([0, 3, 2, 1, 3])
    s = torch.rand(5, dtype=torch.float64)

    def total(z: torch.Tensor) -> torch.Tensor:
        return logit_adjusted_cross_entropy_loss(
            z, y, class_prior=PRIOR, tau=1.5, reduction=reduction, sample_weight=s
        ).sum()

    d = losses.derivatives(
        "logit_adjusted_cross_entropy",
        x,
        y,
        hessian=True,
        reduction=reduction,
        sample_weight=s,
        class_prior=PRIOR,
        tau=1.5,
    )
    assert d.hessian_diag is not None
    torch.testing.assert_close(d.hessian_diag, _hessian_diagonal(total, x))


# -- registry ----------------------------------------------------------------------------------


def test_registry_entry() -> None:
    spec = losses.get("logit_adjusted_cross_entropy")
    assert spec.function is logit_adjusted_cross_entropy_loss
    assert spec.module is LogitAdjustedCrossEntropyLoss
    schema = spec.json_schema()
    assert schema["required"] == ["class_prior"]
    assert schema["properties"]["tau"]["default"] == 1.0
    assert "2007.07314" in spec.reference
    x, y = torch.randn(6, 4), torch.randint(0, 4, (6,))
    torch.testing.assert_close(
        losses.compute("logit_adjusted_cross_entropy", x, y, class_prior=PRIOR, tau=1.0),
        logit_adjusted_cross_entropy_loss(x, y, class_prior=PRIOR),
    )
