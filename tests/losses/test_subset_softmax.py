"""subset_softmax: the STYLE.md checklist, against brute force over all subsets."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import losses
from losses._subset_softmax import (
    SubsetSoftmaxLoss,
    SubsetSoftmaxParams,
    log_elementary_symmetric,
    subset_softmax_loss,
)

NAME = "subset_softmax"


def _brute_k(logits: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """log sum over all k-subsets S of e^{sum_S s}, minus the positives' sum: by enumeration."""
    combos = torch.tensor(list(itertools.combinations(range(logits.shape[1]), k)))
    log_z = torch.logsumexp(logits[:, combos].sum(-1), dim=1)
    return log_z - (logits * targets).sum(1)


def _brute_max_k(logits: torch.Tensor, targets: torch.Tensor, max_k: int) -> torch.Tensor:
    """-log P(label set) with max_k real padding columns of score 0, by enumeration.

    P(label set) sums e^{sum_T s} / Z over every max_k-subset T of the padded classes whose
    real part is exactly the positives (no binomial coefficient is used).
    """
    n, c = logits.shape
    padded = torch.cat([logits, logits.new_zeros(n, max_k)], dim=1)
    out = []
    for i in range(n):
        positives = {j for j in range(c) if targets[i, j] == 1}
        all_terms, label_terms = [], []
        for subset in itertools.combinations(range(c + max_k), max_k):
            term = padded[i, list(subset)].sum()
            all_terms.append(term)
            if {j for j in subset if j < c} == positives:
                label_terms.append(term)
        out.append(
            torch.logsumexp(torch.stack(all_terms), 0)
            - torch.logsumexp(torch.stack(label_terms), 0)
        )
    return torch.stack(out)


def _targets_with_counts(counts: list[int], c: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    y = torch.zeros(len(counts), c, dtype=torch.float64)
    for i, t in enumerate(counts):
        y[i, torch.randperm(c, generator=gen)[:t]] = 1.0
    return y


def _logits(n: int, c: int, scale: float = 2.0, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=gen, dtype=torch.float64) * scale


def test_hand_computed_values() -> None:
    # k = 2, s = [1, 2, 0], positives {0, 1}: e_2 = e^{1+2} + e^{1+0} + e^{2+0};
    #   loss = log(e^3 + e^1 + e^2) - 3
    x = torch.tensor([[1.0, 2.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    expected = math.log(math.exp(3) + math.exp(1) + math.exp(2)) - 3
    assert subset_softmax_loss(x, y, k=2).item() == pytest.approx(expected, rel=1e-12)
    # max_k = 2, s = [1, -1], positives {0}: padded classes [1, -1, 0, 0], all 2-subsets:
    #   Z = e^{0} + e^{1} + e^{1} + e^{-1} + e^{-1} + e^{0+0} = 2 + 2e + 2/e
    #   (pairs {1,-1}, {1,p1}, {1,p2}, {-1,p1}, {-1,p2}, {p1,p2});
    #   the label set {0} comes from {1,p1} and {1,p2}: 2e. loss = log(Z) - log(2e)
    x = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    z = 2 + 2 * math.e + 2 / math.e
    expected = math.log(z) - math.log(2 * math.e)
    assert subset_softmax_loss(x, y, max_k=2).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("c", "k"), [(4, 1), (5, 2), (6, 3), (6, 6)])
def test_fixed_k_matches_brute_force(c: int, k: int) -> None:
    x = _logits(8, c)
    y = _targets_with_counts([k] * 8, c)
    torch.testing.assert_close(subset_softmax_loss(x, y, k=k, reduction="none"), _brute_k(x, y, k))


@pytest.mark.parametrize(("c", "max_k"), [(4, 1), (4, 2), (5, 3), (3, 4)])
def test_max_k_matches_brute_force_over_padded_subsets(c: int, max_k: int) -> None:
    counts = [min(t, c) for t in range(max_k + 1)] * 2
    x = _logits(len(counts), c)
    y = _targets_with_counts(counts, c)
    torch.testing.assert_close(
        subset_softmax_loss(x, y, max_k=max_k, reduction="none"), _brute_max_k(x, y, max_k)
    )


@pytest.mark.parametrize("mode", ["k", "max_k"])
def test_gradients_match_brute_force(mode: str) -> None:
    x1 = _logits(6, 5).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    if mode == "k":
        y = _targets_with_counts([2] * 6, 5)
        ours, ref = subset_softmax_loss(x1, y, k=2, reduction="sum"), _brute_k(x2, y, 2).sum()
    else:
        y = _targets_with_counts([0, 1, 2, 3, 1, 2], 5)
        ours = subset_softmax_loss(x1, y, max_k=3, reduction="sum")
        ref = _brute_max_k(x2, y, 3).sum()
    ours.backward()
    ref.backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_float32_stays_accurate_where_newton_identities_fail() -> None:
    # C = 30, k = 5, logits of scale 20: e_k spans hundreds of orders of magnitude. The
    # float32 log-space recursion stays within 1e-5 relative of the float64 brute force over
    # all 142506 subsets; Newton's identities (e_k from power sums, max-shifted) in float32
    # cancel catastrophically on the same inputs.
    n, c, k = 4, 30, 5
    x = _logits(n, c, scale=20.0)
    y = _targets_with_counts([k] * n, c)
    ref = _brute_k(x, y, k)
    ours = subset_softmax_loss(x.float(), y.float(), k=k, reduction="none")
    assert ours.dtype == torch.float32
    rel = ((ours.double() - ref) / ref).abs()
    assert float(rel.max()) < 1e-5

    xf = x.float()
    z = torch.exp(xf - xf.amax(1, keepdim=True))
    power = [(z**j).sum(1) for j in range(1, k + 1)]
    e = [torch.ones(n)]
    for m in range(1, k + 1):
        e.append(sum((-1) ** (i - 1) * e[m - i] * power[i - 1] for i in range(1, m + 1)) / m)
    newton = torch.log(e[k]) + k * xf.amax(1) - (xf * y.float()).sum(1)
    newton_rel = ((newton.double() - ref) / ref).abs()
    assert not bool((newton_rel < 1e-5).all())  # NaN/inf or far off for some sample


def test_k_one_is_cross_entropy_with_gradients(dtype: torch.dtype, device: torch.device) -> None:
    x1 = _logits(16, 5).to(dtype=dtype, device=device).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    index = torch.randint(0, 5, (16,), device=device)
    y = F.one_hot(index, 5).to(dtype)
    ours = subset_softmax_loss(x1, y, k=1)
    ref = F.cross_entropy(x2, index)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


def test_max_k_one_is_cross_entropy_with_a_none_class() -> None:
    # One padding of score 0 is a "none" class: a sample with no positive targets it.
    x1 = _logits(12, 4).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    index = torch.tensor([0, 1, 2, 3, 4, 4, 0, 1, 2, 3, 4, 0])
    y = F.one_hot(index, 5)[:, :4].double()
    ours = subset_softmax_loss(x1, y, max_k=1, reduction="sum")
    ref = F.cross_entropy(torch.cat([x2, x2.new_zeros(12, 1)], 1), index, reduction="sum")
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


def test_gradient_is_inclusion_probability_minus_target() -> None:
    # Analytic property: d log e_k / d s_i = P(i in S), and sum_i P(i in S) = k, so each
    # sample's gradient sums to k - k = 0 and lies in [-1, 1].
    x = _logits(10, 6).requires_grad_(True)
    y = _targets_with_counts([3] * 10, 6)
    subset_softmax_loss(x, y, k=3, reduction="sum").backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad.sum(1), torch.zeros(10, dtype=torch.float64))
    inclusion = x.grad + y
    assert bool(((inclusion >= 0) & (inclusion <= 1)).all())


def test_log_elementary_symmetric_all_degrees() -> None:
    # e_j(1, 2, 3) = 1, 6, 11, 6, and 0 (a large negative log) past the number of classes.
    out = log_elementary_symmetric(
        torch.log(torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)), 4
    )
    torch.testing.assert_close(
        out[0, :4].exp(), torch.tensor([1.0, 6.0, 11.0, 6.0], dtype=torch.float64)
    )
    assert out[0, 4].item() < -1e300


def test_max_k_perfect_scores_drive_loss_to_zero() -> None:
    y = _targets_with_counts([0, 1, 2, 3, 3, 2], 6)
    x = torch.where(y.bool(), 50.0, -50.0)
    loss = subset_softmax_loss(x, y, max_k=3, reduction="none")
    assert bool((loss.abs() < 1e-15).all())
    # and a positive below 0 (or a negative above 0) costs at least ... something positive
    x_bad = x.clone()
    x_bad[1, y[1].bool()] = -1.0
    assert subset_softmax_loss(x_bad, y, max_k=3, reduction="none")[1].item() > 0.5


@pytest.mark.parametrize("mode", [{"k": 2}, {"max_k": 3}])
def test_gradcheck_float64(mode: dict[str, int]) -> None:
    x = _logits(4, 5).requires_grad_(True)
    counts = [2] * 4 if "k" in mode else [0, 1, 2, 3]
    y = _targets_with_counts(counts, 5)
    assert torch.autograd.gradcheck(lambda z: subset_softmax_loss(z, y, **mode), (x,))
    assert torch.autograd.gradgradcheck(lambda z: subset_softmax_loss(z, y, **mode), (x,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("mode", [{"k": 2}, {"max_k": 3}])
def test_exact_hessian_diagonal(mode: dict[str, int], reduction: str) -> None:
    """The closed form pi (1 - pi), pi the inclusion probabilities, against autograd's full
    Hessian, with sample weights."""
    assert losses.get(NAME).hessian_diagonal is not None
    x = _logits(4, 5, seed=1)
    counts = [2] * 4 if "k" in mode else [0, 1, 2, 3]
    y = _targets_with_counts(counts, 5)
    w = torch.tensor([1.0, 0.0, 2.5, 0.5], dtype=torch.float64)
    weighted = losses.derivatives(
        NAME, x, y, hessian=True, reduction=reduction, sample_weight=w, **mode
    )
    full = torch.autograd.functional.hessian(
        lambda z: subset_softmax_loss(z, y, reduction=reduction, sample_weight=w, **mode).sum(),
        x,
    )
    assert weighted.hessian_diag is not None
    torch.testing.assert_close(weighted.hessian_diag, full.reshape(20, 20).diagonal().reshape(4, 5))
    full = torch.autograd.functional.hessian(
        lambda z: subset_softmax_loss(z, y, reduction="sum", **mode), x
    )
    expected = full.reshape(20, 20).diagonal().reshape(4, 5)
    got = losses.derivatives(NAME, x, y, hessian=True, reduction="sum", **mode)
    assert got.hessian_diag is not None
    torch.testing.assert_close(got.hessian_diag, expected)
    # at all-equal logits (every logaddexp a tie) too
    zero = torch.zeros(4, 5, dtype=torch.float64)
    full = torch.autograd.functional.hessian(
        lambda z: subset_softmax_loss(z, y, reduction="sum", **mode), zero
    )
    got = losses.derivatives(NAME, zero, y, hessian=True, reduction="sum", **mode)
    assert got.hessian_diag is not None
    torch.testing.assert_close(got.hessian_diag, full.reshape(20, 20).diagonal().reshape(4, 5))


def test_module_equals_function_and_keeps_state() -> None:
    x = _logits(8, 4).float()
    y = _targets_with_counts([0, 1, 2, 2, 1, 0, 2, 1], 4).float()
    module = SubsetSoftmaxLoss(max_k=2, reduction="sum")
    before = module.hyperparameters()
    torch.testing.assert_close(module(x, y), subset_softmax_loss(x, y, max_k=2, reduction="sum"))
    assert module.hyperparameters() == before == {"k": None, "max_k": 2}
    assert dict(module.named_buffers()) == {}


@pytest.mark.parametrize(("reduction", "shape"), [("none", (7,)), ("mean", ()), ("sum", ())])
def test_reduction_shapes(reduction: str, shape: tuple[int, ...]) -> None:
    y = _targets_with_counts([1] * 7, 3)
    assert subset_softmax_loss(_logits(7, 3), y, k=1, reduction=reduction).shape == shape


def test_sample_weight_mean_is_weighted_average() -> None:
    x = _logits(5, 4)
    y = _targets_with_counts([2] * 5, 4)
    w = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    per = subset_softmax_loss(x, y, k=2, reduction="none")
    torch.testing.assert_close(
        subset_softmax_loss(x, y, k=2, sample_weight=w), (per * w).sum() / w.sum()
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of k and max_k"),
        ({"k": 2, "max_k": 2}, "exactly one of k and max_k"),
        ({"k": 0}, "k: Input should be greater than or equal to 1"),
        ({"max_k": 0}, "max_k: Input should be greater than or equal to 1"),
        ({"k": 2.0}, "k: Input should be a valid integer"),
        ({"k": True}, "k: Input should be a valid integer"),
        ({"k": 2, "reduction": "avg"}, "reduction to be one of"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    y = _targets_with_counts([2] * 4, 5)
    with pytest.raises(ValueError, match=message):
        subset_softmax_loss(_logits(4, 5), y, **kwargs)  # type: ignore[arg-type]


def test_wrong_number_of_positives_raises() -> None:
    y = _targets_with_counts([3, 3, 3, 3, 3, 2, 3], 6)
    with pytest.raises(
        ValueError, match="Expected exactly k=3 positive labels per sample, got 2 in sample 5"
    ):
        subset_softmax_loss(_logits(7, 6), y, k=3)
    with pytest.raises(
        ValueError, match="Expected at most max_k=2 positive labels per sample, got 3 in sample 0"
    ):
        subset_softmax_loss(_logits(7, 6), y, max_k=2)
    with pytest.raises(ValueError, match=r"Expected k <= the number of classes \(6\), got k=7"):
        subset_softmax_loss(_logits(7, 6), y, k=7)
    with pytest.raises(ValueError, match="exactly 0 or 1"):
        subset_softmax_loss(_logits(2, 3), torch.full((2, 3), 0.5), k=1)


@pytest.mark.parametrize("mode", [{"k": 2}, {"max_k": 3}])
def test_extreme_logits_are_finite(mode: dict[str, int]) -> None:
    x = torch.tensor([[1e4, 1e4, -1e4, -1e4], [-1e4, -1e4, 1e4, 1e4], [1e4, -1e4, 0.0, 1e4]])
    y = torch.tensor([[1.0, 1, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0]])
    d = losses.derivatives(NAME, x, y, hessian=True, reduction="none", **mode)
    assert torch.isfinite(d.value).all() and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()
    assert d.value[0].item() == pytest.approx(0.0, abs=1e-3)
    # sample 1 picks the two lowest scores: loss = 2e4 - (-2e4) = 4e4 for k = 2
    if "k" in mode:
        assert d.value[1].item() == pytest.approx(4e4, rel=1e-6)


@pytest.mark.parametrize(
    ("fill", "mode"), [(0.0, {"max_k": 2}), (1.0, {"max_k": 4}), (1.0, {"k": 4})]
)
def test_all_negative_and_all_positive_batches(fill: float, mode: dict[str, int]) -> None:
    x = torch.randn(6, 4) * 10
    y = torch.full((6, 4), fill)
    d = losses.derivatives(NAME, x, y, hessian=True, **mode)
    assert torch.isfinite(d.value) and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()
    if "k" in mode:  # the only 4-subset of 4 classes: probability 1, loss 0, no gradient
        assert abs(d.value.item()) < 1e-5
        torch.testing.assert_close(d.grad, torch.zeros_like(d.grad))


def test_half_precision_computes_in_float32(half_dtype: torch.dtype) -> None:
    x = (torch.randn(8, 5) * 100).to(half_dtype).requires_grad_(True)
    y = _targets_with_counts([2] * 8, 5).float()
    value = subset_softmax_loss(x, y, k=2)
    value.backward()
    assert value.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == half_dtype and torch.isfinite(x.grad).all()
    torch.testing.assert_close(value, subset_softmax_loss(x.detach().float(), y, k=2))


def test_registry_entry() -> None:
    spec = losses.get(NAME)
    assert spec.function is subset_softmax_loss
    assert spec.params is SubsetSoftmaxParams
    props = spec.json_schema()["properties"]
    assert set(props) == {"k", "max_k"}
    with pytest.raises(ValueError, match="exactly one of k and max_k"):
        spec.validate({})
    x = _logits(3, 4)
    y = _targets_with_counts([1, 2, 0], 4)
    torch.testing.assert_close(
        losses.compute(NAME, x, y, max_k=2), subset_softmax_loss(x, y, max_k=2)
    )


def test_a_bad_count_is_named_by_its_index_in_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The closed form runs blocks of rows; the count check runs once for the batch, so the
    error names the sample's index in the batch, on every path."""
    from losses import _chunks

    monkeypatch.setattr(_chunks, "BLOCK_ELEMENTS", 40)  # blocks of 32 rows of 5
    x = torch.randn(100, 5)
    y = torch.zeros(100, 5)
    y[:, 0] = 1.0
    y[90, :3] = 1.0
    message = "got 3 in sample 90"
    with pytest.raises(ValueError, match=message):
        subset_softmax_loss(x, y, k=1)
    with pytest.raises(ValueError, match=message):
        subset_softmax_loss(x.clone().requires_grad_(True), y, k=1)
    with pytest.raises(ValueError, match=message):
        losses.derivatives("subset_softmax", x, y, hessian=True, k=1)
