"""hinge: the STYLE.md checklist."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import hinge_loss as sk_hinge_loss

import losses
from losses._hinge import HingeLoss, hinge_loss

VARIANTS = ["crammer_singer", "weston_watkins"]


def test_hand_computed_binary() -> None:
    # t = 2y - 1 = [+1, -1, +1, -1]; margin - t x = [1 - 0.25, 1 - 3, 1 - 2, 1 - 0.5].
    x = torch.tensor([0.25, -3.0, 2.0, -0.5], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    expected = torch.tensor([0.75, 0.0, 0.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(hinge_loss(x, y, reduction="none"), expected)
    torch.testing.assert_close(hinge_loss(x, y, squared=True, reduction="none"), expected**2)
    # margin 2: [2 - 0.25, 2 - 3 -> 0, 2 - 2 -> 0, 2 - 0.5]
    torch.testing.assert_close(
        hinge_loss(x, y, margin=2.0, reduction="none"),
        torch.tensor([1.75, 0.0, 0.0, 1.5], dtype=torch.float64),
    )


def test_hand_computed_multiclass() -> None:
    # Row 0, y = 0: CS 1 + max(2, 0.5) - 1.5 = 1.5; WW [1 - 1.5 + 2] + [1 - 1.5 + 0.5] = 1.5 + 0.
    # Row 1, y = 2: CS 1 + 2 - 0.5 = 2.5; WW [1 - 0.5 + 1.5] + [1 - 0.5 + 2] = 2 + 2.5 = 4.5.
    # Row 2, y = 1, all cleared by the margin: 0.
    x = torch.tensor([[1.5, 2.0, 0.5], [1.5, 2.0, 0.5], [0.0, 3.0, 1.5]], dtype=torch.float64)
    y = torch.tensor([0, 2, 1])
    cs = hinge_loss(x, y, variant="crammer_singer", reduction="none")
    ww = hinge_loss(x, y, variant="weston_watkins", reduction="none")
    torch.testing.assert_close(cs, torch.tensor([1.5, 2.5, 0.0], dtype=torch.float64))
    torch.testing.assert_close(ww, torch.tensor([1.5, 4.5, 0.0], dtype=torch.float64))
    # Squared: CS [2.25, 6.25, 0]; WW [1.5^2 + 0, 2^2 + 2.5^2 = 10.25, 0].
    torch.testing.assert_close(
        hinge_loss(x, y, squared=True, reduction="none"),
        torch.tensor([2.25, 6.25, 0.0], dtype=torch.float64),
    )
    torch.testing.assert_close(
        hinge_loss(x, y, squared=True, variant="weston_watkins", reduction="none"),
        torch.tensor([2.25, 10.25, 0.0], dtype=torch.float64),
    )


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("squared", [False, True])
def test_binary_is_two_class_multiclass_with_gradients(
    variant: str, squared: bool, dtype: torch.dtype, device: torch.device
) -> None:
    # The degenerate case: on two classes with scores (0, x), both multiclass forms are the
    # binary hinge margin - t x (t = +1 for class 1).
    x1 = (3 * torch.randn(20, dtype=dtype, device=device)).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.randint(0, 2, (20,), device=device)
    binary = hinge_loss(x1, y.to(dtype), squared=squared, margin=1.5)
    two_class = torch.stack([torch.zeros_like(x2), x2], dim=1)
    multi = hinge_loss(two_class, y, squared=squared, margin=1.5, variant=variant)  # type: ignore[arg-type]
    binary.backward()
    multi.backward()
    torch.testing.assert_close(binary, multi)
    torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("squared", [False, True])
def test_positive_homogeneity(variant: str, squared: bool) -> None:
    # Analytic property: scaling scores and margin by k > 0 scales the hinge by k (its square
    # by k^2).
    x = torch.randn(10, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (10,))
    k = 2.5
    base = hinge_loss(x, y, margin=0.7, squared=squared, variant=variant, reduction="none")  # type: ignore[arg-type]
    scaled = hinge_loss(
        k * x, y, margin=k * 0.7, squared=squared, variant=variant, reduction="none"
    )  # type: ignore[arg-type]
    torch.testing.assert_close(scaled, (k**2 if squared else k) * base)


def test_crammer_singer_bounds_weston_watkins() -> None:
    # Each WW term is at most the CS term and the CS term is one of them: CS <= WW <= (C-1) CS.
    x = torch.randn(50, 5, dtype=torch.float64)
    y = torch.randint(0, 5, (50,))
    cs = hinge_loss(x, y, reduction="none")
    ww = hinge_loss(x, y, variant="weston_watkins", reduction="none")
    assert (cs <= ww + 1e-12).all() and (ww <= 4 * cs + 1e-12).all()


def test_parity_with_sklearn_binary() -> None:
    # sklearn reads labels through LabelBinarizer(neg_label=-1): our {0, 1} are its {-1, +1}.
    # Its margin is fixed at 1 and it averages with np.average(weights=sample_weight), our
    # weighted mean.
    x = 2 * torch.randn(30, dtype=torch.float64)
    y = torch.randint(0, 2, (30,)).to(torch.float64)
    w = torch.rand(30, dtype=torch.float64)
    y_pm = (2 * y - 1).numpy()
    assert hinge_loss(x, y).item() == pytest.approx(sk_hinge_loss(y_pm, x.numpy()), rel=1e-12)
    assert hinge_loss(x, y, sample_weight=w).item() == pytest.approx(
        sk_hinge_loss(y_pm, x.numpy(), sample_weight=w.numpy()), rel=1e-12
    )


def test_parity_with_sklearn_multiclass_is_crammer_singer() -> None:
    # sklearn's multiclass hinge is 1 - (x_y - max_{c != y} x_c), clipped at 0: Crammer-Singer.
    x = 2 * torch.randn(40, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (40,))
    w = torch.rand(40, dtype=torch.float64)
    labels = np.arange(4)
    ref = sk_hinge_loss(y.numpy(), x.numpy(), labels=labels)
    ref_w = sk_hinge_loss(y.numpy(), x.numpy(), labels=labels, sample_weight=w.numpy())
    assert hinge_loss(x, y).item() == pytest.approx(ref, rel=1e-12)
    assert hinge_loss(x, y, sample_weight=w).item() == pytest.approx(ref_w, rel=1e-12)


@pytest.mark.parametrize("margin", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("squared", [False, True])
def test_parity_with_torch_multi_margin_is_weston_watkins(margin: float, squared: bool) -> None:
    # torch's multi_margin_loss divides the per-sample sum by C; Weston-Watkins (and cs231n)
    # sums, as we do, so we compare with C * torch. p=2 squares each term, our squared=True.
    x1 = (2 * torch.randn(16, 5, dtype=torch.float64)).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    y = torch.randint(0, 5, (16,))
    ours = hinge_loss(
        x1, y, margin=margin, squared=squared, variant="weston_watkins", reduction="none"
    )
    ref = 5 * F.multi_margin_loss(x2, y, p=2 if squared else 1, margin=margin, reduction="none")
    torch.testing.assert_close(ours, ref)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_gradient_at_the_kinks() -> None:
    # Autograd's subgradients, documented: relu gives 0 where its argument is exactly 0, so a
    # binary sample exactly on the margin (t x = margin) gets gradient 0; Crammer-Singer
    # splits the gradient evenly between tied largest other classes (amax).
    x = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(hinge_loss(x, torch.tensor([1.0, 0.0]), reduction="sum"), x)
    torch.testing.assert_close(g, torch.zeros(2, dtype=torch.float64))
    xm = torch.tensor([[0.0, 1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    loss = hinge_loss(xm, torch.tensor([0]), reduction="sum")  # 1 + 1 - 0 = 2
    (gm,) = torch.autograd.grad(loss, xm)
    assert loss.item() == 2.0
    torch.testing.assert_close(gm, torch.tensor([[-1.0, 0.5, 0.5]], dtype=torch.float64))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("squared", [False, True])
def test_gradcheck_float64_away_from_kinks(variant: str, squared: bool) -> None:
    # Hinge arguments are at least 0.5 away from 0 and there are no ties among the others.
    # Multiclass, 1 + x_c - x_y per row: [-1, -4], [0.8, 4.8], [1 - 1.5 - 0.1, 1 + 1.7 - 0.1]
    # = [-0.6, 2.6]. Binary, 1 - t x: [0.5, -1, -2, 0.8].
    x = torch.tensor(
        [[2.0, 0.0, -3.0], [0.0, 0.2, 4.0], [-1.5, 1.7, 0.1]], dtype=torch.float64
    ).requires_grad_(True)
    y = torch.tensor([0, 1, 2])
    xb = torch.tensor([0.5, -2.0, 3.0, -0.2], dtype=torch.float64).requires_grad_(True)
    yb = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)

    def multi(z: torch.Tensor) -> torch.Tensor:
        return hinge_loss(z, y, squared=squared, variant=variant)  # type: ignore[arg-type]

    def binary(z: torch.Tensor) -> torch.Tensor:
        return hinge_loss(z, yb, squared=squared)

    assert torch.autograd.gradcheck(multi, (x,))
    assert torch.autograd.gradgradcheck(multi, (x,))
    assert torch.autograd.gradcheck(binary, (xb,))
    assert torch.autograd.gradgradcheck(binary, (xb,))


def test_module_equals_function_and_keeps_state() -> None:
    x = torch.randn(8, 3)
    y = torch.randint(0, 3, (8,))
    module = HingeLoss(margin=0.5, squared=True, variant="weston_watkins", reduction="sum")
    before = module.hyperparameters()
    torch.testing.assert_close(
        module(x, y),
        hinge_loss(x, y, margin=0.5, squared=True, variant="weston_watkins", reduction="sum"),
    )
    assert module.hyperparameters() == before
    assert before == {"margin": 0.5, "squared": True, "variant": "weston_watkins"}


@pytest.mark.parametrize(
    ("logits_shape", "targets", "reduction", "out"),
    [
        ((7,), torch.randint(0, 2, (7,)).float(), "none", (7,)),
        ((7, 3), torch.randint(0, 3, (7,)), "none", (7,)),
        ((7, 3), torch.randint(0, 3, (7,)), "mean", ()),
        ((7,), torch.randint(0, 2, (7,)).float(), "sum", ()),
    ],
)
def test_reduction_shapes(
    logits_shape: tuple[int, ...], targets: torch.Tensor, reduction: str, out: tuple[int, ...]
) -> None:
    assert hinge_loss(torch.randn(logits_shape), targets, reduction=reduction).shape == out


def test_sample_weight_mean_is_weighted_average() -> None:
    x = torch.randn(5, 3, dtype=torch.float64)
    y = torch.randint(0, 3, (5,))
    w = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    per = hinge_loss(x, y, variant="weston_watkins", reduction="none")
    torch.testing.assert_close(
        hinge_loss(x, y, variant="weston_watkins", sample_weight=w), (per * w).sum() / w.sum()
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": 0.0}, "margin: Input should be greater than 0"),
        ({"margin": -1.0}, "margin: Input should be greater than 0"),
        (
            {"variant": "one_vs_rest"},
            "variant: Input should be 'crammer_singer' or 'weston_watkins'",
        ),
        ({"squared": "yes"}, "squared: Input should be a valid boolean"),
        ({"reduction": "avg"}, "reduction to be one of"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hinge_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), **kwargs)  # type: ignore[arg-type]


def test_bad_targets_raise() -> None:
    with pytest.raises(ValueError, match="binary targets of exactly 0 or 1"):
        hinge_loss(torch.randn(3), torch.tensor([0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\]"):
        hinge_loss(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="supports"):
        hinge_loss(torch.randn(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="at least 2 classes for a multiclass hinge, got 1"):
        hinge_loss(torch.randn(2, 1), torch.tensor([0, 0]))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("squared", [False, True])
def test_extreme_logits_are_finite(variant: str, squared: bool) -> None:
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([0, 0, 2])
    d = losses.derivatives("hinge", x, y, hessian=True, squared=squared, variant=variant)
    assert torch.isfinite(d.value) and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()
    # Row 1 (y = 0): terms 1 + 1e4 + 1e4 = 20001 and 1 + 0 + 1e4 = 10001; CS keeps the
    # largest, WW sums both.
    per = hinge_loss(x, y, squared=squared, variant=variant, reduction="none")  # type: ignore[arg-type]
    terms = [20001.0**2, 10001.0**2] if squared else [20001.0, 10001.0]
    expected = terms[0] if variant == "crammer_singer" else sum(terms)
    assert per[1].item() == pytest.approx(expected)
    xb = torch.tensor([1e4, -1e4, 1e4, -1e4])
    yb = torch.tensor([1.0, 0.0, 0.0, 1.0])
    db = losses.derivatives("hinge", xb, yb, hessian=True, squared=squared, reduction="none")
    assert db.hessian_diag is not None and torch.isfinite(db.hessian_diag).all()
    wrong = 10001.0**2 if squared else 10001.0
    assert db.value.tolist() == pytest.approx([0.0, 0.0, wrong, wrong])


@pytest.mark.parametrize("target", [0.0, 1.0])
def test_all_negative_or_all_positive_batch_is_finite(target: float) -> None:
    x = torch.tensor([-1e4, -30.0, 0.0, 5.0, 30.0, 1e4])
    d = losses.derivatives("hinge", x, torch.full_like(x, target), hessian=True, squared=True)
    assert torch.isfinite(d.value) and torch.isfinite(d.grad).all()
    assert d.hessian_diag is not None and torch.isfinite(d.hessian_diag).all()


def test_half_precision_computes_in_float32(half_dtype: torch.dtype) -> None:
    x = (torch.randn(8, 3) * 100).to(half_dtype).requires_grad_(True)
    y = torch.randint(0, 3, (8,))
    value = hinge_loss(x, y, squared=True)
    value.backward()
    assert value.dtype == torch.float32
    assert x.grad is not None and x.grad.dtype == half_dtype and torch.isfinite(x.grad).all()
    torch.testing.assert_close(value, hinge_loss(x.detach().float(), y, squared=True))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("squared", [False, True])
def test_exact_hessian_diagonal(variant: str, squared: bool) -> None:
    x = 2 * torch.randn(5, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (5,))
    kw = {"squared": squared, "variant": variant}
    d = losses.derivatives("hinge", x, y, hessian=True, **kw)
    full = torch.autograd.functional.hessian(lambda z: hinge_loss(z, y, **kw), x)  # type: ignore[arg-type]
    expected = full.reshape(20, 20).diagonal().reshape(5, 4)
    assert d.hessian_diag is not None
    torch.testing.assert_close(d.hessian_diag, expected)
    if not squared:
        assert (d.hessian_diag == 0).all()
    xb = 2 * torch.randn(6, dtype=torch.float64)
    yb = torch.randint(0, 2, (6,)).to(torch.float64)
    db = losses.derivatives("hinge", xb, yb, hessian=True, squared=squared)
    full_b = torch.autograd.functional.hessian(lambda z: hinge_loss(z, yb, squared=squared), xb)
    assert db.hessian_diag is not None
    torch.testing.assert_close(db.hessian_diag, full_b.diagonal())


def test_registry_entry() -> None:
    spec = losses.get("hinge")
    assert spec.function is hinge_loss
    assert spec.module is HingeLoss
    props = spec.json_schema()["properties"]
    assert props["margin"]["default"] == 1.0 and props["variant"]["default"] == "crammer_singer"
    params = spec.validate({})
    assert spec.coupling(params, losses.Task.BINARY) is losses.Coupling.ELEMENT
    assert spec.coupling(params, losses.Task.MULTICLASS) is losses.Coupling.SAMPLE
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    torch.testing.assert_close(
        losses.compute("hinge", x, y, variant="weston_watkins"),
        hinge_loss(x, y, variant="weston_watkins"),
    )
