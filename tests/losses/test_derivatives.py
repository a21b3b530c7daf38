"""losses.derivatives: exact gradients and Hessian diagonals for every registry loss."""

from __future__ import annotations

import pytest
import torch

import losses
from losses import Task

from .cases import cases, make_inputs

CASES = cases()


def _full_hessian_diagonal(
    name: str, x: torch.Tensor, y: torch.Tensor, reduction: str, **params: object
) -> torch.Tensor:
    def total(z: torch.Tensor) -> torch.Tensor:
        value = losses.compute(name, z, y, reduction=reduction, **params)
        return value.sum()

    h = torch.autograd.functional.hessian(total, x)
    return h.reshape(x.numel(), x.numel()).diagonal().reshape(x.shape)


@pytest.mark.parametrize(("name", "task"), CASES, ids=[f"{n}-{t.value}" for n, t in CASES])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_hessian_diagonal_is_exact(
    name: str, task: Task, reduction: str, device: torch.device
) -> None:
    x, y, params = make_inputs(name, task)
    x, y = x.to(device), y.to(device)
    result = losses.derivatives(name, x, y, hessian=True, reduction=reduction, **params)
    expected_value = losses.compute(name, x, y, reduction=reduction, **params)
    torch.testing.assert_close(result.value, expected_value)
    z = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(
        losses.compute(name, z, y, reduction=reduction, **params).sum(), z
    )
    torch.testing.assert_close(result.grad, grad)
    assert result.hessian_diag is not None
    torch.testing.assert_close(
        result.hessian_diag, _full_hessian_diagonal(name, x, y, reduction, **params)
    )


def test_hessian_is_not_computed_unless_asked() -> None:
    x, y, _ = make_inputs("focal", Task.MULTICLASS)
    assert losses.derivatives("focal", x, y).hessian_diag is None


def test_batched_directions_cover_every_class_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Force several chunks of directions and compare with the single-chunk answer.
    from losses import _derivatives

    x, y, _ = make_inputs("focal", Task.MULTICLASS, n=6, c=7)
    whole = losses.derivatives("focal", x, y, hessian=True).hessian_diag
    monkeypatch.setattr(_derivatives, "_MAX_BATCHED_ELEMENTS", 2 * x.numel())
    chunked = losses.derivatives("focal", x, y, hessian=True).hessian_diag
    assert whole is not None and chunked is not None
    torch.testing.assert_close(chunked, whole)


def test_half_precision_derivatives_are_float32() -> None:
    x, y, _ = make_inputs("focal", Task.MULTICLASS, dtype=torch.float16)
    result = losses.derivatives("focal", x, y, hessian=True)
    assert result.grad.dtype == torch.float32
    assert result.hessian_diag is not None and result.hessian_diag.dtype == torch.float32


def test_unknown_parameter_is_refused() -> None:
    x, y, _ = make_inputs("focal", Task.MULTICLASS)
    with pytest.raises(ValueError, match="gama: unknown parameter; expected one of: alpha, gamma"):
        losses.derivatives("focal", x, y, gama=2.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("cross_entropy", {"weight": [0.5, 2.0, 1.0, 3.0], "label_smoothing": 0.2}),
        ("cross_entropy", {"ignore_index": 1, "label_smoothing": 0.1}),
        ("logit_adjusted_cross_entropy", {"class_prior": [5.0, 1.0, 2.0, 8.0], "tau": 1.5}),
        ("focal", {"gamma": 0.0}),
        ("focal", {"gamma": 0.5, "alpha": 0.25}),
        ("focal", {"gamma": 1.0, "alpha": [0.5, 2.0, 1.0, 3.0]}),
        ("focal", {"gamma": 3.7}),
        ("ranking", {}),
        ("ranking", {"gamma": 0.5, "margin_pos": -1.0, "margin_neg": 2.0, "other_class": 2}),
    ],
)
def test_closed_form_hessian_diagonal_equals_autograd(
    name: str, params: dict[str, object], reduction: str
) -> None:
    assert losses.get(name).hessian_diagonal is not None
    x, y, _ = make_inputs(name, Task.MULTICLASS, n=6, c=4)
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    w = torch.tensor([1.0, 0.5, 2.0, 0.0, 1.5, 1.0], dtype=torch.float64)
    result = losses.derivatives(
        name, x, y, hessian=True, reduction=reduction, sample_weight=w, **params
    )

    def total(z: torch.Tensor) -> torch.Tensor:
        return losses.compute(name, z, y, reduction=reduction, sample_weight=w, **params).sum()

    full = torch.autograd.functional.hessian(total, x).reshape(x.numel(), x.numel())
    assert result.hessian_diag is not None
    torch.testing.assert_close(result.hessian_diag, full.diagonal().reshape(x.shape))


def test_closed_form_is_accurate_where_p_rounds_to_one() -> None:
    # p_0 = 1 / (1 + 2 e^-30): p (1 - p) = 2 e^-30 to first order, not 0 from 1 - p.
    x = torch.tensor([[30.0, 0.0, 0.0]])
    result = losses.derivatives("cross_entropy", x, torch.tensor([0]), hessian=True)
    assert result.hessian_diag is not None
    expected = 2 * torch.exp(torch.tensor(-30.0, dtype=torch.float64))
    assert result.hessian_diag[0, 0].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_focal_closed_form_is_accurate_where_p_rounds_to_one(gamma: float) -> None:
    # q = 1 - p_0 = 2 e^-30 / (1 + 2 e^-30); the loss -q^g log(1 - q) ~ q^(g+1), and q ~ 2
    # e^(-x_0), so d2/dx_0^2 ~ (g+1)^2 q^(g+1): not the 0 that 1 - p would give.
    x = torch.tensor([[30.0, 0.0, 0.0]], dtype=torch.float64)
    result = losses.derivatives("focal", x, torch.tensor([0]), hessian=True, gamma=gamma)
    assert result.hessian_diag is not None
    q = 2 * torch.exp(torch.tensor(-30.0, dtype=torch.float64))
    expected = (gamma + 1) ** 2 * q ** (gamma + 1)
    assert result.hessian_diag[0, 0].item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_focal_closed_form_is_finite_at_extreme_logits(dtype: torch.dtype) -> None:
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]]).to(dtype)
    for gamma in (0.0, 0.5, 2.0):
        h = losses.derivatives("focal", x, torch.tensor([0, 0, 2]), hessian=True, gamma=gamma)
        assert h.hessian_diag is not None and h.hessian_diag.dtype == torch.float32
        assert torch.isfinite(h.hessian_diag).all() and (h.hessian_diag[2] > 0).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("multilabel_categorical_crossentropy", {}),
        ("circle", {}),
        ("circle", {"scale": 4.0, "margin": 0.5}),
        ("circle", {"scale": 2.0, "margin": -0.3, "threshold_class": False}),
        ("circle", {"threshold_class": False}),
    ],
)
def test_multilabel_closed_form_hessian_diagonal_equals_autograd(
    name: str, params: dict[str, object], reduction: str
) -> None:
    assert losses.get(name).hessian_diagonal is not None
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(6, 5, generator=generator, dtype=torch.float64) * 2
    y = (torch.rand(6, 5, generator=generator) < 0.4).double()
    y[1], y[2] = 0.0, 1.0  # a row with no positives, one with no negatives
    w = torch.tensor([1.0, 0.5, 2.0, 0.0, 1.5, 1.0], dtype=torch.float64)
    result = losses.derivatives(
        name, x, y, hessian=True, reduction=reduction, sample_weight=w, **params
    )

    def total(z: torch.Tensor) -> torch.Tensor:
        return losses.compute(name, z, y, reduction=reduction, sample_weight=w, **params).sum()

    full = torch.autograd.functional.hessian(total, x).reshape(x.numel(), x.numel())
    assert result.hessian_diag is not None
    torch.testing.assert_close(result.hessian_diag, full.diagonal().reshape(x.shape))


def test_circle_closed_form_is_accurate_where_autograd_rounds_to_zero() -> None:
    # Positives s = 10, 0 and negatives 5, -5, -10, scale 4, no threshold class: the loss is
    # softplus(u), u = a + b, a = log(e^20 + e^-20 + e^-40), b = log(e^-40 + 1). The positive
    # at 0 has softmax weight rho = 1 / (1 + e^-40) among the positives (-4 s), so its
    # H = 16 (sigma(u) sigma(-u) rho^2 + sigma(u) rho (1 - rho)); autograd's 1 - sigma(u)
    # rounds to 0 there and gives 0.
    import math

    x = torch.tensor([[10.0, -10.0, 0.0, 5.0, -5.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    result = losses.derivatives(
        "circle", x, y, hessian=True, scale=4.0, threshold_class=False, reduction="sum"
    )
    u = math.log(math.exp(20) + math.exp(-20) + math.exp(-40)) + math.log1p(math.exp(-40))
    sigma, sigma_bar = 1 / (1 + math.exp(-u)), 1 / (1 + math.exp(u))
    rho = 1 / (1 + math.exp(-40))
    expected = 16 * (sigma * sigma_bar * rho**2 + sigma * rho * math.exp(-40) * rho)
    assert result.hessian_diag is not None
    assert result.hessian_diag[0, 2].item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    ("name", "params", "task"),
    [
        (name, params, task)
        for name, params in [
            ("squared_error", {}),
            ("hinge", {}),
            ("hinge", {"squared": True}),
            ("hinge", {"squared": True, "variant": "weston_watkins", "margin": 0.7}),
            ("binary_cross_entropy", {"pos_weight": 3.0}),
            ("sigmoid_focal", {}),
            ("sigmoid_focal", {"alpha": 0.7, "gamma": 0.5}),
            ("asymmetric", {}),
            ("asymmetric", {"gamma_pos": 1.0, "gamma_neg": 2.0, "clip": 0.2}),
            ("asymmetric", {"gamma_pos": 0.5, "gamma_neg": 1.5, "clip": 0.0}),
        ]
        for task in sorted(losses.get(name).tasks, key=lambda t: t.value)
    ],
)
def test_element_wise_and_piecewise_closed_forms_equal_autograd(
    name: str, params: dict[str, object], task: Task, reduction: str
) -> None:
    generator = torch.Generator().manual_seed(5)
    shape = (7,) if task is Task.BINARY else (7, 4)
    x = torch.randn(shape, generator=generator, dtype=torch.float64) * 2
    if task is Task.MULTICLASS:
        y = torch.randint(0, 4, (7,), generator=generator)
    else:
        y = (torch.rand(shape, generator=generator) < 0.4).double()
    w = torch.linspace(0.0, 2.0, 7, dtype=torch.float64)
    kwargs = {"reduction": reduction, "sample_weight": w, **params}
    result = losses.derivatives(name, x, y, hessian=True, **kwargs)

    def total(z: torch.Tensor) -> torch.Tensor:
        return losses.compute(name, z, y, **kwargs).sum()

    full = torch.autograd.functional.hessian(total, x).reshape(x.numel(), x.numel())
    assert result.hessian_diag is not None
    torch.testing.assert_close(result.hessian_diag, full.diagonal().reshape(x.shape))


def test_sigmoid_focal_soft_targets_take_one_hessian_vector_product() -> None:
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(6, 3, generator=generator, dtype=torch.float64) * 3
    y = torch.rand(6, 3, generator=generator, dtype=torch.float64)  # soft
    result = losses.derivatives("sigmoid_focal", x, y, hessian=True, reduction="sum")

    def total(z: torch.Tensor) -> torch.Tensor:
        return losses.compute("sigmoid_focal", z, y, reduction="sum")

    full = torch.autograd.functional.hessian(total, x).reshape(18, 18)
    assert result.hessian_diag is not None
    torch.testing.assert_close(result.hessian_diag, full.diagonal().reshape(6, 3))
