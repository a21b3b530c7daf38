"""power_bce: the STYLE.md checklist, plus accuracy of two derivatives around the switches."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch
import torch.nn.functional as F

import losses
from losses._power_bce import PowerBCELoss, power_bce_loss

# The logit where log(softplus(-x)) changes form, and z = n softplus(-x) where
# log(1 - exp(-z)) changes form (both in losses/_power_bce.py).
X_SWITCH = 4.0
Z_SWITCH = 0.1


def _z_switch_logit(n: float) -> float:
    """The logit where n * softplus(-x) = 0.1: softplus(-x) = s <=> x = -log(expm1(s))."""
    s = Z_SWITCH / n
    return -(s + math.log(-math.expm1(-s)))


def _reference(x: float, y: float, n: float) -> tuple[float, float, float]:
    """Loss, first and second derivative in 80-digit arithmetic, from closed forms.

    s = sigmoid(x), q = s^n (log(1 - q) from log1p, 1 - q from expm1, both exact near 0):
    loss = -y n log s - (1 - y) log(1 - q);
    q' = n q (1 - s), q'' = n q (1 - s) (n (1 - s) - s);
    d/dx log(1 - q) = -q' / (1 - q), d2/dx2 = -(q'' (1 - q) + q'^2) / (1 - q)^2;
    d/dx log s = 1 - s, d2/dx2 = -s (1 - s).
    """
    with mpmath.workdps(80):
        xm, ym, nm = mpmath.mpf(x), mpmath.mpf(y), mpmath.mpf(n)
        s = 1 / (1 + mpmath.exp(-xm))
        q = s**nm
        one_minus_q = -mpmath.expm1(nm * mpmath.log(s))
        dq = nm * q * (1 - s)
        d2q = nm * q * (1 - s) * (nm * (1 - s) - s)
        value = -ym * nm * mpmath.log(s) - (1 - ym) * mpmath.log1p(-q)
        grad = -ym * nm * (1 - s) + (1 - ym) * dq / one_minus_q
        hess = ym * nm * s * (1 - s) + (1 - ym) * (d2q * one_minus_q + dq**2) / one_minus_q**2
        return float(value), float(grad), float(hess)


def _ours(x: float, y: float, n: float) -> tuple[float, float, float]:
    d = losses.derivatives(
        "power_bce",
        torch.tensor([x], dtype=torch.float64),
        torch.tensor([y], dtype=torch.float64),
        hessian=True,
        n=n,
        reduction="sum",
    )
    assert d.hessian_diag is not None
    return d.value.item(), d.grad.item(), d.hessian_diag.item()


def test_hand_computed_values() -> None:
    # n = 2, x = 0: sigma = 1/2, q = 1/4. y = 1: -log(1/4) = 2 log 2; y = 0: -log(3/4).
    # n = 3, x = ln 3: sigma = 3/4, q = 27/64. y = 1: -3 log(3/4); y = 0: -log(37/64);
    # y = 1/2: the mean of the two.
    x = torch.tensor([0.0, 0.0], dtype=torch.float64)
    value = power_bce_loss(x, torch.tensor([1.0, 0.0], dtype=torch.float64), reduction="none")
    expected = torch.tensor([2 * math.log(2.0), -math.log(0.75)], dtype=torch.float64)
    torch.testing.assert_close(value, expected, rtol=1e-14, atol=0.0)
    x3 = torch.full((3,), math.log(3.0), dtype=torch.float64)
    y3 = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    value3 = power_bce_loss(x3, y3, n=3.0, reduction="none")
    pos, neg = -3 * math.log(0.75), -math.log(37.0 / 64.0)
    expected3 = torch.tensor([pos, neg, (pos + neg) / 2], dtype=torch.float64)
    torch.testing.assert_close(value3, expected3, rtol=1e-14, atol=0.0)


def test_asymptotes_at_extreme_logits() -> None:
    # y = 0, x -> +inf: 1 - sigma^n ~ n e^{-x}, so the loss is x - log n.
    # y = 1, x -> -inf: -n log sigma(x) ~ n |x|. The other two are 0.
    x = torch.tensor([1e4, -1e4, 1e4, -1e4], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    value = power_bce_loss(x, y, n=2.5, reduction="none")
    expected = torch.tensor([1e4 - math.log(2.5), 2.5e4, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(value, expected, rtol=1e-15, atol=0.0)


def test_n_one_is_bce_with_gradients(dtype: torch.dtype, device: torch.device) -> None:
    x1 = (4 * torch.randn(32, dtype=dtype, device=device)).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.rand(32, dtype=dtype, device=device)
    y[:16] = y[:16].round()
    ours = power_bce_loss(x1, y, n=1.0)
    ref = F.binary_cross_entropy_with_logits(x2, y)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


def test_n_one_hessian_is_bce_hessian() -> None:
    # BCE's second derivative is sigma(x) sigma(-x) (times the 1/N of the mean).
    x = torch.linspace(-12, 12, 25, dtype=torch.float64)
    y = torch.rand(25, dtype=torch.float64)
    d = losses.derivatives("power_bce", x, y, hessian=True, n=1.0, reduction="sum")
    assert d.hessian_diag is not None
    torch.testing.assert_close(d.hessian_diag, torch.sigmoid(x) * torch.sigmoid(-x))


@pytest.mark.parametrize("n", [0.5, 2.0, 7.0])
def test_is_bce_on_the_powered_probability(n: float) -> None:
    # The defining property: BCE(q, y) with q = sigmoid(x)^n (moderate logits, so
    # torch's probability-space BCE is accurate).
    x = 3 * torch.randn(40, dtype=torch.float64)
    y = torch.rand(40, dtype=torch.float64)
    q = torch.sigmoid(x) ** n
    torch.testing.assert_close(
        power_bce_loss(x, y, n=n, reduction="none"),
        F.binary_cross_entropy(q, y, reduction="none"),
    )


def test_positive_term_is_n_times_bce() -> None:
    x = torch.linspace(-30, 30, 13, dtype=torch.float64)
    y = torch.ones(13, dtype=torch.float64)
    torch.testing.assert_close(
        power_bce_loss(x, y, n=4.0, reduction="none"),
        4.0 * F.binary_cross_entropy_with_logits(x, y, reduction="none"),
    )


@pytest.mark.parametrize("n", [1e-9, 0.3, 1.0, 2.0, 7.5, 100.0])
@pytest.mark.parametrize("y", [0.0, 1.0, 0.3])
def test_value_and_two_derivatives_are_accurate(n: float, y: float) -> None:
    # Against 80-digit closed forms, on a grid that crosses both switches (x = 5 and the
    # z switch), the large-x asymptote and the far negative side.
    xz = _z_switch_logit(n)
    grid = [-60.0, -20.0, -3.0, -0.5, 0.0, 0.7, 3.0, 9.0, 19.9, 20.1, 35.0, 60.0]
    grid += [X_SWITCH + d for d in (-1e-9, 0.0, 1e-9)]
    if abs(xz) < 700:
        grid += [xz + d for d in (-1e-9, 0.0, 1e-9)]
    for x in grid:
        ours = _ours(x, y, n)
        ref = _reference(x, y, n)
        for got, want in zip(ours, ref, strict=True):
            assert got == pytest.approx(want, rel=1e-12, abs=1e-300), (x, ours, ref)


@pytest.mark.parametrize("n", [1e-9, 0.3, 1.0, 2.0, 7.5, 100.0])
@pytest.mark.parametrize("y", [0.0, 1.0, 0.3])
def test_one_pass_value_and_gradient_are_accurate(n: float, y: float) -> None:
    # The forward without a graph takes its own forms (no series): against the 80-digit
    # closed forms too, across its switches (n softplus(-x) = log 2, x = 60) and the others.
    log2_logit = -(math.log(2) / n + math.log(-math.expm1(-math.log(2) / n)))
    grid = [-1e4, -700.0, -60.0, -3.0, 0.0, 0.7, 3.0, 19.9, 35.0, 59.0, 61.0, 700.0, 1e4]
    grid += [60.0 + d for d in (-1e-9, 0.0, 1e-9)]
    grid += [_z_switch_logit(n), X_SWITCH]
    if abs(log2_logit) < 700:
        grid += [log2_logit + d for d in (-1e-9, 0.0, 1e-9)]
    x = torch.tensor(grid, dtype=torch.float64, requires_grad=True)
    value = power_bce_loss(x, torch.full_like(x, y), n=n, reduction="none")
    value.sum().backward()
    assert x.grad is not None
    for point, got, slope in zip(grid, value.tolist(), x.grad.tolist(), strict=True):
        if abs(point) > 100:  # 1 + e^{-x} is 1 in 80 digits; the asymptotes: below
            continue
        want, want_slope, _ = _reference(point, y, n)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300), (point, got, want)
        assert slope == pytest.approx(want_slope, rel=1e-12, abs=1e-300), (point, slope)
    far = torch.tensor(grid).abs() > 100
    assert torch.isfinite(value[far]).all()
    assert torch.isfinite(x.grad[far]).all()


@pytest.mark.parametrize("n", [1e-13, 1e-9, 1e-3])
def test_one_pass_float32_keeps_accuracy_for_a_tiny_power(n: float) -> None:
    # n softplus(-x) leaves float32's normal range before x = 60 once n < ~1e-12: the
    # forward must not divide by a clamped expm1 there.
    grid = [-20.0, -1.0, 0.0, 3.0, 30.0, 59.0, 61.0]
    x = torch.tensor(grid, dtype=torch.float32, requires_grad=True)
    value = power_bce_loss(x, torch.zeros_like(x), n=n, reduction="none")
    value.sum().backward()
    assert x.grad is not None
    for point, got, slope in zip(grid, value.tolist(), x.grad.tolist(), strict=True):
        want, want_slope, _ = _reference(point, 0.0, n)
        assert got == pytest.approx(want, rel=1e-5), (point, got, want)
        assert slope == pytest.approx(want_slope, rel=1e-5, abs=1e-30), (point, slope)


@pytest.mark.parametrize("n", [0.3, 2.0, 100.0])
def test_continuous_across_switches(n: float) -> None:
    # Across each switch the value and the two derivatives move only by their own Taylor
    # increments: f(x + h) - f(x - h) = 2 h f'(x) + O(h^3), f'(x + h) - f'(x - h) = 2 h f''.
    h = 1e-7
    for x0 in (X_SWITCH, _z_switch_logit(n)):
        lo, hi = _ours(x0 - h, 0.0, n), _ours(x0 + h, 0.0, n)
        mid = _reference(x0, 0.0, n)
        assert hi[0] - lo[0] == pytest.approx(2 * h * mid[1], rel=1e-6, abs=1e-15)
        assert hi[1] - lo[1] == pytest.approx(2 * h * mid[2], rel=1e-5, abs=1e-15)
        assert hi[2] == pytest.approx(lo[2], rel=1e-5)


def test_float32_hessian_keeps_relative_accuracy() -> None:
    # torch's logsigmoid double backward is sigma (sigma - 1): in float32 it rounds to 0
    # for x >~ 17. Ours keeps the relative accuracy there.
    x = torch.tensor([-30.0, -16.0, 8.0, 16.0, 25.0, 40.0])
    for y_value in (0.0, 1.0):
        y = torch.full_like(x, y_value)
        d32 = losses.derivatives("power_bce", x, y, hessian=True, n=3.0, reduction="sum")
        d64 = losses.derivatives(
            "power_bce", x.double(), y.double(), hessian=True, n=3.0, reduction="sum"
        )
        assert d32.hessian_diag is not None and d64.hessian_diag is not None
        torch.testing.assert_close(d32.hessian_diag.double(), d64.hessian_diag, rtol=1e-5, atol=0.0)
        torch.testing.assert_close(d32.grad.double(), d64.grad, rtol=1e-5, atol=0.0)


@pytest.mark.parametrize("n", [1e-6, 0.5, 3.0, 100.0])
def test_gradcheck_float64(n: float) -> None:
    # Points on both sides of both switches, plus a soft target.
    xz = _z_switch_logit(n)
    points = [-4.0, 0.3, X_SWITCH - 1e-3, X_SWITCH + 1e-3, 25.0]
    if abs(xz) < 700:
        points += [xz - 1e-3, xz + 1e-3]
    x = torch.tensor(points, dtype=torch.float64, requires_grad=True)
    y = torch.zeros_like(x)
    y[1] = 1.0
    y[2] = 0.4

    def fn(z: torch.Tensor) -> torch.Tensor:
        return power_bce_loss(z, y, n=n, reduction="sum")

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_module_equals_function_and_keeps_state() -> None:
    x = torch.randn(8, 3)
    y = torch.randint(0, 2, (8, 3)).float()
    module = PowerBCELoss(n=3.0, reduction="sum")
    before = module.hyperparameters()
    torch.testing.assert_close(module(x, y), power_bce_loss(x, y, n=3.0, reduction="sum"))
    assert module.hyperparameters() == before == {"n": 3.0}


@pytest.mark.parametrize(
    ("shape", "reduction", "out"),
    [((7,), "none", (7,)), ((7, 3), "none", (7, 3)), ((7, 3), "mean", ()), ((7,), "sum", ())],
)
def test_reduction_shapes(shape: tuple[int, ...], reduction: str, out: tuple[int, ...]) -> None:
    y = torch.randint(0, 2, shape).float()
    assert power_bce_loss(torch.randn(shape), y, reduction=reduction).shape == out


def test_sample_weight_mean_is_weighted_average_over_elements() -> None:
    x = torch.randn(5, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (5, 3)).to(torch.float64)
    w = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    per = power_bce_loss(x, y, reduction="none")
    expected = (per * w[:, None]).sum() / (w.sum() * 3)
    torch.testing.assert_close(power_bce_loss(x, y, sample_weight=w), expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0.0}, "n: Input should be greater than 0"),
        ({"n": -1.0}, "n: Input should be greater than 0"),
        ({"n": 101.0}, "n: Input should be less than or equal to 100"),
        ({"reduction": "avg"}, "reduction to be one of"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        power_bce_loss(torch.randn(4), torch.tensor([0.0, 1.0, 1.0, 0.0]), **kwargs)  # type: ignore[arg-type]


def test_bad_targets_raise() -> None:
    with pytest.raises(ValueError, match=r"multilabel targets in \[0, 1\]"):
        power_bce_loss(torch.randn(2, 3), torch.full((2, 3), -0.5))
    with pytest.raises(ValueError, match="supports"):
        power_bce_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]))


@pytest.mark.parametrize("n", [1e-30, 0.5, 2.0, 100.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logits_are_finite(n: float, dtype: torch.dtype) -> None:
    x = torch.tensor([1e4, -1e4, 1e4, -1e4, 1e4, -1e4, 20.0, 87.0, 88.0, 0.0], dtype=dtype)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0], dtype=dtype)
    d = losses.derivatives("power_bce", x, y, hessian=True, n=n, reduction="none")
    assert torch.isfinite(d.value).all() and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


@pytest.mark.parametrize("target", [0.0, 1.0])
def test_all_negative_or_all_positive_batch_is_finite(target: float) -> None:
    x = torch.tensor([[-1e4, -30.0, 0.0], [5.0, 30.0, 1e4]])
    y = torch.full_like(x, target)
    d = losses.derivatives("power_bce", x, y, hessian=True, n=2.0)
    assert torch.isfinite(d.value) and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


def test_half_precision_computes_in_float32(half_dtype: torch.dtype) -> None:
    x = (torch.randn(8, 3) * 100).to(half_dtype).requires_grad_(True)
    y = torch.randint(0, 2, (8, 3)).to(half_dtype)
    value = power_bce_loss(x, y, n=3.0)
    value.backward()
    assert value.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == half_dtype and torch.isfinite(x.grad).all()
    torch.testing.assert_close(value, power_bce_loss(x.detach().float(), y.float(), n=3.0))
    d = losses.derivatives("power_bce", x.detach(), y, hessian=True, n=3.0)
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


@pytest.mark.parametrize("shape", [(6,), (3, 4)])
def test_exact_hessian_diagonal(shape: tuple[int, ...]) -> None:
    x = 4 * torch.randn(shape, dtype=torch.float64)
    y = torch.rand(shape, dtype=torch.float64)
    d = losses.derivatives("power_bce", x, y, hessian=True, n=2.5)
    full = torch.autograd.functional.hessian(lambda z: power_bce_loss(z, y, n=2.5), x)
    expected = full.reshape(x.numel(), x.numel()).diagonal().reshape(shape)
    assert d.hessian_diag is not None
    torch.testing.assert_close(d.hessian_diag, expected)


def test_registry_entry() -> None:
    spec = losses.get("power_bce")
    assert spec.function is power_bce_loss
    assert spec.module is PowerBCELoss
    assert spec.json_schema()["properties"]["n"]["default"] == 2.0
    assert spec.coupling(spec.validate({}), losses.Task.BINARY) is losses.Coupling.ELEMENT
    x, y = torch.randn(6), torch.randint(0, 2, (6,)).float()
    torch.testing.assert_close(
        losses.compute("power_bce", x, y, n=3.0), power_bce_loss(x, y, n=3.0)
    )


@pytest.mark.parametrize("n", [1e-3, 0.5, 1.0, 2.0, 37.5, 100.0])
def test_closed_forms_equal_autograd_of_the_value_everywhere(n: float) -> None:
    """The one-pass gradient and the closed-form Hessian diagonal against the derivatives of
    the value's own formula (under ``torch.func`` the one-pass function steps aside, so
    these are autograd's), float64, soft targets, from -1e4 to 1e4 and at the switches."""
    special = [-1e4, -700.0, -40.0, 2.25, 3.99, 4.0, 4.01, 6.9, 40.0, 700.0, 1e4]
    x = torch.cat([torch.linspace(-50, 50, 1001, dtype=torch.float64), torch.tensor(special)])
    y = torch.rand(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    d = losses.derivatives("power_bce", x, y, hessian=True, reduction="sum", n=n)

    def total(t: torch.Tensor) -> torch.Tensor:
        return power_bce_loss(t, y, n=n, reduction="sum")

    grad = torch.func.grad(total)
    torch.testing.assert_close(d.grad, grad(x), rtol=1e-12, atol=0.0)
    element_wise = torch.func.grad(lambda t: grad(t).sum())  # the diagonal, element-wise loss
    assert d.hessian_diag is not None
    torch.testing.assert_close(d.hessian_diag, element_wise(x), rtol=1e-12, atol=0.0)
