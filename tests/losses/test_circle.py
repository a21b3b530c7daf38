"""circle (unified form, eq. 1 of Sun et al. 2020): the STYLE.md checklist."""

from __future__ import annotations

import math

import pytest
import torch

import losses
from losses._circle import CircleLoss, CircleParams, circle_loss
from losses._zlpr import multilabel_categorical_crossentropy_loss as zlpr

NAME = "circle"


def _pairwise_reference(
    logits: torch.Tensor,
    targets: torch.Tensor,
    scale: float,
    margin: float,
    threshold_class: bool,
) -> torch.Tensor:
    """Eq. (1) literally: log(1 + sum over (negative, positive) pairs of e^{scale(s_n - s_p + m)}).

    The threshold class is a real extra column of score 0 in both sets; the pair of it with
    itself is skipped.
    """
    out = []
    for s, t in zip(logits.tolist(), targets.tolist(), strict=True):
        negs = [(c, v) for c, (v, y) in enumerate(zip(s, t, strict=True)) if y == 0]
        poss = [(c, v) for c, (v, y) in enumerate(zip(s, t, strict=True)) if y == 1]
        if threshold_class:
            negs.append((-1, 0.0))
            poss.append((-1, 0.0))
        total = 0.0
        for cn, sn in negs:
            for cp, sp in poss:
                if cn == cp == -1:
                    continue
                total += math.exp(scale * (sn - sp + margin))
        out.append(math.log1p(total))
    return torch.tensor(out, dtype=torch.float64)


def _random_multilabel(n: int, c: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=gen, dtype=torch.float64) * 2
    y = (torch.rand(n, c, generator=gen) < 0.4).double()
    y[0] = 0.0
    y[1] = 1.0
    return x, y


def test_hand_computed_values() -> None:
    # s = [2, -1], positive {0}, scale 2, margin 0.5.
    # without the threshold class: one pair, log(1 + e^{2(-1 - 2 + 0.5)}) = log(1 + e^-5)
    # with it: A = e^{2*-1} = e^-2, B = e^{-2*2} = e^-4,
    #   log(1 + e^{2*0.5} (A + B + AB)) = log(1 + e (e^-2 + e^-4 + e^-6))
    logits = torch.tensor([[2.0, -1.0]], dtype=torch.float64)
    targets = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    without = circle_loss(logits, targets, scale=2.0, margin=0.5, threshold_class=False)
    assert without.item() == pytest.approx(math.log1p(math.exp(-5.0)), rel=1e-12)
    with_threshold = circle_loss(logits, targets, scale=2.0, margin=0.5)
    expected = math.log1p(math.e * (math.exp(-2) + math.exp(-4) + math.exp(-6)))
    assert with_threshold.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("threshold_class", [True, False])
@pytest.mark.parametrize(("scale", "margin"), [(1.0, 0.0), (3.0, 0.25), (0.5, -1.0)])
def test_parity_with_literal_pairwise_sum(
    scale: float, margin: float, threshold_class: bool
) -> None:
    x, y = _random_multilabel(12, 5)
    ours = circle_loss(
        x, y, scale=scale, margin=margin, threshold_class=threshold_class, reduction="none"
    )
    torch.testing.assert_close(ours, _pairwise_reference(x, y, scale, margin, threshold_class))


def test_scale_one_margin_zero_is_zlpr_with_gradients_and_hessian() -> None:
    x1, y = _random_multilabel(16, 6)
    x1.requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    ours = circle_loss(x1, y, reduction="sum")
    ref = zlpr(x2, y, reduction="sum")
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)
    d_circle = losses.derivatives(NAME, x1.detach(), y, hessian=True)
    d_zlpr = losses.derivatives("multilabel_categorical_crossentropy", x1.detach(), y, hessian=True)
    torch.testing.assert_close(d_circle.hessian_diag, d_zlpr.hessian_diag)


def test_margin_shifts_the_logit_of_the_pair_sum() -> None:
    # Analytic property: log(e^loss - 1) = scale * margin + log(pair sum), so changing the
    # margin by d shifts softplus^{-1}(loss) by exactly scale * d (both forms of the loss).
    x, y = _random_multilabel(10, 4)
    for threshold_class in (True, False):
        base = circle_loss(x, y, scale=1.5, threshold_class=threshold_class, reduction="none")
        shifted = circle_loss(
            x, y, scale=1.5, margin=0.4, threshold_class=threshold_class, reduction="none"
        )
        keep = (y.sum(1) > 0) & (y.sum(1) < 4) if not threshold_class else torch.ones_like(base)
        keep = keep.bool()
        inv = torch.log(torch.expm1(shifted[keep])) - torch.log(torch.expm1(base[keep]))
        torch.testing.assert_close(inv, torch.full_like(inv, 1.5 * 0.4))


def test_without_threshold_empty_sets_give_zero_with_zero_gradient() -> None:
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[0.0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=torch.float64)
    value = circle_loss(x, y, threshold_class=False, reduction="none")
    assert value[0].item() == 0.0 and value[1].item() == 0.0 and value[3].item() == 0.0
    value.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad[[0, 1, 3]], torch.zeros(3, 3, dtype=torch.float64))
    assert bool((x.grad[2] != 0).all())


@pytest.mark.parametrize("threshold_class", [True, False])
def test_gradcheck_float64(threshold_class: bool) -> None:
    x, y = _random_multilabel(5, 4)
    x.requires_grad_(True)

    def fn(z: torch.Tensor) -> torch.Tensor:
        return circle_loss(z, y, scale=2.0, margin=0.3, threshold_class=threshold_class)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("threshold_class", [True, False])
def test_exact_hessian_diagonal(threshold_class: bool) -> None:
    x, y = _random_multilabel(4, 5, seed=1)
    params = {"scale": 1.5, "margin": 0.2, "threshold_class": threshold_class}
    full = torch.autograd.functional.hessian(
        lambda z: circle_loss(z, y, reduction="sum", **params),  # type: ignore[arg-type]
        x,
    )
    expected = full.reshape(20, 20).diagonal().reshape(4, 5)
    got = losses.derivatives(NAME, x, y, hessian=True, reduction="sum", **params)
    assert got.hessian_diag is not None
    torch.testing.assert_close(got.hessian_diag, expected)


def test_module_equals_function_and_keeps_state() -> None:
    x, y = _random_multilabel(8, 3)
    module = CircleLoss(scale=2.0, margin=0.1, threshold_class=False, reduction="sum")
    before = module.hyperparameters()
    expected = circle_loss(x, y, scale=2.0, margin=0.1, threshold_class=False, reduction="sum")
    torch.testing.assert_close(module(x, y), expected)
    assert module.hyperparameters() == before
    assert dict(module.named_buffers()) == {}


@pytest.mark.parametrize(("reduction", "shape"), [("none", (7,)), ("mean", ()), ("sum", ())])
def test_reduction_shapes(reduction: str, shape: tuple[int, ...]) -> None:
    x, y = _random_multilabel(7, 3)
    assert circle_loss(x, y, reduction=reduction).shape == shape


def test_sample_weight_mean_is_weighted_average() -> None:
    x, y = _random_multilabel(5, 3)
    w = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    per = circle_loss(x, y, scale=2.0, reduction="none")
    torch.testing.assert_close(
        circle_loss(x, y, scale=2.0, sample_weight=w), (per * w).sum() / w.sum()
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 0.0}, "scale"),
        ({"scale": -1.0}, "scale"),
        ({"margin": float("nan")}, "margin"),
        ({"margin": 1e3}, "margin"),
        ({"reduction": "avg"}, "reduction to be one of"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        circle_loss(torch.randn(4, 3), torch.zeros(4, 3), **kwargs)  # type: ignore[arg-type]


def test_bad_targets_raise() -> None:
    with pytest.raises(ValueError, match="exactly 0 or 1"):
        circle_loss(torch.randn(2, 3), torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="supports"):
        circle_loss(torch.randn(2, 3), torch.tensor([0, 1]))


@pytest.mark.parametrize("threshold_class", [True, False])
@pytest.mark.parametrize(("scale", "margin"), [(1.0, 0.0), (256.0, 0.25), (64.0, -0.5)])
def test_extreme_logits_are_finite(scale: float, margin: float, threshold_class: bool) -> None:
    # Perfect separation at +-1e4 makes A = B = 0 in float (T = 0 exactly in the expm1 form).
    x = torch.tensor(
        [
            [1e4, -1e4, -1e4],
            [-1e4, -1e4, -1e4],
            [1e4, 1e4, 1e4],
            [-1e4, 1e4, 0.0],
            [1e4, -1e4, 0.0],
        ]
    )
    y = torch.tensor([[1.0, 0, 0], [0, 0, 0], [1, 1, 1], [1, 0, 0], [1, 0, 0]])
    params = {"scale": scale, "margin": margin, "threshold_class": threshold_class}
    d = losses.derivatives(NAME, x, y, hessian=True, reduction="none", **params)
    assert torch.isfinite(d.value).all() and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()
    assert d.value[0].item() == 0.0  # log(1 + e^{scale m} * 0)


@pytest.mark.parametrize("threshold_class", [True, False])
@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_all_negative_and_all_positive_batches(fill: float, threshold_class: bool) -> None:
    x = torch.randn(6, 4) * 10
    y = torch.full((6, 4), fill)
    d = losses.derivatives(NAME, x, y, hessian=True, threshold_class=threshold_class, scale=4.0)
    assert torch.isfinite(d.value) and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()
    if not threshold_class:  # no pairs at all
        assert d.value.item() == 0.0 and bool((d.grad == 0).all())


def test_half_precision_computes_in_float32(half_dtype: torch.dtype) -> None:
    x = (torch.randn(8, 5) * 100).to(half_dtype).requires_grad_(True)
    y = (torch.rand(8, 5) < 0.3).float()
    value = circle_loss(x, y, scale=2.0, margin=0.25)
    value.backward()
    assert value.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == half_dtype and torch.isfinite(x.grad).all()
    torch.testing.assert_close(value, circle_loss(x.detach().float(), y, scale=2.0, margin=0.25))


def test_float32_matches_float64(device: torch.device) -> None:
    x, y = _random_multilabel(16, 6)
    x, y = x.to(device), y.to(device)
    torch.testing.assert_close(
        circle_loss(x.float(), y.float(), scale=3.0, margin=0.5, reduction="none"),
        circle_loss(x, y, scale=3.0, margin=0.5, reduction="none").float(),
    )


def test_registry_entry() -> None:
    spec = losses.get(NAME)
    assert spec.function is circle_loss
    assert spec.params is CircleParams
    props = spec.json_schema()["properties"]
    assert props["scale"]["default"] == 1.0
    assert props["margin"]["default"] == 0.0
    assert props["threshold_class"]["default"] is True
