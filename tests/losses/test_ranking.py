"""ranking (CR-CNN, dos Santos et al. 2015): the STYLE.md checklist."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import losses
from losses._ranking import RankingLoss, RankingParams, ranking_loss

NAME = "ranking"


def _softplus(v: float) -> float:
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


def _loop_reference(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma: float = 2.0,
    margin_pos: float = 2.5,
    margin_neg: float = 0.5,
    other_class: int | None = None,
) -> torch.Tensor:
    """The paper's loss sample by sample, in plain Python floats."""
    out = []
    for s, y in zip(logits.tolist(), targets.tolist(), strict=True):
        loss = 0.0
        if y != other_class:
            loss += _softplus(gamma * (margin_pos - s[y]))
        negatives = [v for c, v in enumerate(s) if c not in (y, other_class)]
        if negatives:
            loss += _softplus(gamma * (margin_neg + max(negatives)))
        out.append(loss)
    return torch.tensor(out, dtype=torch.float64)


def _inputs(n: int, c: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, c, (n,), generator=gen)
    return x, y


def test_hand_computed_values() -> None:
    # gamma 2, m+ 2.5, m- 0.5.
    # sample 0: s = [1, 0.3, -2], y = 0: c- = 1 (0.3):
    #   log(1 + e^{2(2.5 - 1)}) + log(1 + e^{2(0.5 + 0.3)}) = log(1 + e^3) + log(1 + e^1.6)
    x = torch.tensor([[1.0, 0.3, -2.0]], dtype=torch.float64)
    expected = math.log1p(math.exp(3.0)) + math.log1p(math.exp(1.6))
    assert ranking_loss(x, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-12)
    # with other_class = 2 and y = 2: no first term; c- = argmax over {0, 1} = 0 (score 1):
    #   log(1 + e^{2(0.5 + 1)}) = log(1 + e^3)
    value = ranking_loss(x, torch.tensor([2]), other_class=2)
    assert value.item() == pytest.approx(math.log1p(math.exp(3.0)), rel=1e-12)
    # s = [5, 0.3, -2], other_class = 0, y = 1: class 0's 5 is ignored, c- = 2 (score -2):
    #   log(1 + e^{2(2.5 - 0.3)}) + log(1 + e^{2(0.5 - 2)}) = log(1 + e^4.4) + log(1 + e^-3)
    x = torch.tensor([[5.0, 0.3, -2.0]], dtype=torch.float64)
    value = ranking_loss(x, torch.tensor([1]), other_class=0)
    expected = math.log1p(math.exp(4.4)) + math.log1p(math.exp(-3.0))
    assert value.item() == pytest.approx(expected, rel=1e-12)


def test_two_classes_unit_gamma_zero_margins_is_one_hot_bce_with_gradients() -> None:
    # C = 2, gamma = 1, m+ = m- = 0: softplus(-s_y) + softplus(s_{1-y}), the summed binary
    # cross-entropy of both columns against the one-hot target.
    x1, y = _inputs(12, 2)
    x1.requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    ours = ranking_loss(x1, y, gamma=1.0, margin_pos=0.0, margin_neg=0.0, reduction="sum")
    ref = F.binary_cross_entropy_with_logits(x2, F.one_hot(y, 2).double(), reduction="sum")
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("other_class", [None, 0, 3])
@pytest.mark.parametrize(("gamma", "margin_pos", "margin_neg"), [(2.0, 2.5, 0.5), (0.7, -1.0, 2.0)])
def test_parity_with_loop_reference(
    gamma: float, margin_pos: float, margin_neg: float, other_class: int | None
) -> None:
    x, y = _inputs(40, 4)
    ours = ranking_loss(
        x,
        y,
        gamma=gamma,
        margin_pos=margin_pos,
        margin_neg=margin_neg,
        other_class=other_class,
        reduction="none",
    )
    ref = _loop_reference(x, y, gamma, margin_pos, margin_neg, other_class)
    torch.testing.assert_close(ours, ref)


def test_gamma_scales_scores_and_margins() -> None:
    # Analytic property: every term is softplus(gamma * (affine in s and m)), so
    # loss(x; gamma, m+, m-) = loss(gamma x; 1, gamma m+, gamma m-).
    x, y = _inputs(20, 5)
    a = ranking_loss(x, y, gamma=3.0, margin_pos=1.5, margin_neg=0.2, other_class=1)
    b = ranking_loss(3.0 * x, y, gamma=1.0, margin_pos=4.5, margin_neg=0.6, other_class=1)
    torch.testing.assert_close(a, b)


def test_gradient_touches_only_the_true_and_hardest_wrong_class() -> None:
    # d/ds_y = -gamma sigmoid(gamma(m+ - s_y)), d/ds_{c-} = gamma sigmoid(gamma(m- + s_{c-}));
    # every other column, the other_class one included, gets 0.
    x, y = _inputs(16, 5)
    x.requires_grad_(True)
    ranking_loss(x, y, other_class=4, reduction="sum").backward()
    assert x.grad is not None
    xd = x.detach()
    expected = torch.zeros_like(xd)
    for i in range(16):
        yi = int(y[i])
        if yi != 4:
            expected[i, yi] = -2.0 * torch.sigmoid(2.0 * (2.5 - xd[i, yi]))
        candidates = [c for c in range(4) if c != yi]
        hardest = max(candidates, key=lambda c: float(xd[i, c]))
        expected[i, hardest] = 2.0 * torch.sigmoid(2.0 * (0.5 + xd[i, hardest]))
    torch.testing.assert_close(x.grad, expected)
    assert bool((x.grad[:, 4] == 0).all())


def test_no_negative_candidate_keeps_only_the_first_term() -> None:
    # C = 2 with other_class = 1 and y = 0: the only other class is "Other".
    x = torch.tensor([[0.5, 9.0], [0.5, 9.0]], dtype=torch.float64)
    value = ranking_loss(x, torch.tensor([0, 1]), other_class=1, reduction="none")
    # sample 0: log(1 + e^{2(2.5 - 0.5)}) = log(1 + e^4); sample 1: c- = 0,
    #   log(1 + e^{2(0.5 + 0.5)}) = log(1 + e^2)
    expected = torch.tensor([math.log1p(math.exp(4.0)), math.log1p(math.exp(2.0))])
    torch.testing.assert_close(value, expected.double())
    single = ranking_loss(torch.tensor([[0.5]]), torch.tensor([0]))  # C = 1
    assert single.item() == pytest.approx(math.log1p(math.exp(4.0)), rel=1e-6)


@pytest.mark.parametrize("other_class", [None, 2])
def test_gradcheck_float64_away_from_ties(other_class: int | None) -> None:
    x, y = _inputs(6, 4)
    x.requires_grad_(True)

    def fn(z: torch.Tensor) -> torch.Tensor:
        return ranking_loss(z, y, gamma=1.5, other_class=other_class)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("other_class", [None, 1])
def test_exact_hessian_diagonal(other_class: int | None) -> None:
    x, y = _inputs(4, 5, seed=1)
    full = torch.autograd.functional.hessian(
        lambda z: ranking_loss(z, y, other_class=other_class, reduction="sum"), x
    )
    expected = full.reshape(20, 20).diagonal().reshape(4, 5)
    got = losses.derivatives(NAME, x, y, hessian=True, reduction="sum", other_class=other_class)
    assert got.hessian_diag is not None
    torch.testing.assert_close(got.hessian_diag, expected)


def test_module_equals_function_and_keeps_state() -> None:
    x, y = _inputs(8, 3)
    module = RankingLoss(gamma=1.0, margin_pos=1.0, margin_neg=0.0, other_class=0, reduction="sum")
    before = module.hyperparameters()
    expected = ranking_loss(
        x, y, gamma=1.0, margin_pos=1.0, margin_neg=0.0, other_class=0, reduction="sum"
    )
    torch.testing.assert_close(module(x, y), expected)
    assert module.hyperparameters() == before
    assert dict(module.named_buffers()) == {}


@pytest.mark.parametrize(("reduction", "shape"), [("none", (7,)), ("mean", ()), ("sum", ())])
def test_reduction_shapes(reduction: str, shape: tuple[int, ...]) -> None:
    x, y = _inputs(7, 3)
    assert ranking_loss(x, y, reduction=reduction).shape == shape


def test_sample_weight_mean_is_weighted_average() -> None:
    x, y = _inputs(5, 3)
    w = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    per = ranking_loss(x, y, reduction="none")
    torch.testing.assert_close(ranking_loss(x, y, sample_weight=w), (per * w).sum() / w.sum())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gamma": 0.0}, "gamma: Input should be greater than 0"),
        ({"margin_pos": float("inf")}, "margin_pos"),
        ({"margin_neg": -1e3}, "margin_neg"),
        ({"other_class": -1}, "other_class: Input should be greater than or equal to 0"),
        ({"other_class": 1.0}, "other_class: Input should be a valid integer"),
        ({"other_class": 3}, r"Expected other_class in \[0, 2\] for 3 classes, got 3"),
        ({"reduction": "avg"}, "reduction to be one of"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ranking_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), **kwargs)  # type: ignore[arg-type]


def test_bad_targets_raise() -> None:
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\]"):
        ranking_loss(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="supports"):
        ranking_loss(torch.randn(2, 3), torch.ones(2, 3))


@pytest.mark.parametrize("other_class", [None, 2])
def test_extreme_logits_are_finite(other_class: int | None) -> None:
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4, -1e4]])
    y = torch.tensor([0, 0, 2])
    d = losses.derivatives(NAME, x, y, hessian=True, reduction="none", other_class=other_class)
    assert torch.isfinite(d.value).all() and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()
    # sample 0: s_y = 1e4 meets m+; c- is the 0 score: log(1 + e^{2 * 0.5}) = log(1 + e),
    # unless that column is the other_class: then c- scores -1e4 and the loss is 0.
    expected = math.log1p(math.e) if other_class is None else 0.0
    assert d.value[0].item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("label", [0, 2])
def test_single_class_batches(label: int) -> None:
    # every sample of one class (with other_class = 2: all "Other", or none of them)
    x = torch.randn(6, 3) * 10
    y = torch.full((6,), label)
    d = losses.derivatives(NAME, x, y, hessian=True, other_class=2)
    assert torch.isfinite(d.value) and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()
    torch.testing.assert_close(d.value, _loop_reference(x, y, other_class=2).mean().float())


def test_half_precision_computes_in_float32(half_dtype: torch.dtype) -> None:
    x = (torch.randn(8, 5) * 100).to(half_dtype).requires_grad_(True)
    y = torch.randint(0, 5, (8,))
    value = ranking_loss(x, y, other_class=0)
    value.backward()
    assert value.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == half_dtype and torch.isfinite(x.grad).all()
    torch.testing.assert_close(value, ranking_loss(x.detach().float(), y, other_class=0))


def test_float32_on_device(device: torch.device) -> None:
    x, y = _inputs(16, 4)
    value = ranking_loss(x.float().to(device), y.to(device), other_class=3, reduction="none")
    torch.testing.assert_close(value.cpu(), _loop_reference(x, y, other_class=3).float())


def test_registry_entry() -> None:
    spec = losses.get(NAME)
    assert spec.function is ranking_loss
    assert spec.params is RankingParams
    props = spec.json_schema()["properties"]
    assert props["gamma"]["default"] == 2.0
    assert props["margin_pos"]["default"] == 2.5
    assert props["margin_neg"]["default"] == 0.5
    assert props["other_class"]["default"] is None
