"""The one-pass losses (value and closed-form gradient in one autograd function): where
they hand over to plain autograd, and their extremes."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import forward_ad

import losses


def test_focal_at_gamma_0_is_cross_entropy_where_p_rounds_to_one() -> None:
    x = torch.tensor([[1e4, 0.0, -3.0], [0.0, 1e4, 0.0]])
    y = torch.tensor([0, 0])
    torch.testing.assert_close(
        losses.compute("focal", x, y, gamma=0.0, reduction="none"),
        F.cross_entropy(x, y, reduction="none"),
    )


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_autograd_hessian_of_focal_is_finite_at_extreme_logits(gamma: float) -> None:
    for logits in ([[1e4, -1e4, 0.0]], [[800.0, 0.0, 0.0]], [[-1e4, 1e4, 0.0]]):
        x = torch.tensor(logits, dtype=torch.float64)
        h = torch.autograd.functional.hessian(
            lambda z: losses.compute("focal", z, torch.tensor([0]), gamma=gamma), x
        )
        assert torch.isfinite(h).all(), logits


# forward-mode AD's first use scripts torch's own decompositions, which warns (torch.jit)
@pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")
def test_focal_under_torch_func_and_forward_mode_matches_autograd() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    z = x.clone().requires_grad_(True)
    losses.compute("focal", z, y, gamma=1.5).backward()
    assert z.grad is not None
    functional = torch.func.grad(lambda v: losses.compute("focal", v, y, gamma=1.5))(x)
    torch.testing.assert_close(functional, z.grad)
    tangent = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    with forward_ad.dual_level():
        out = losses.compute("focal", forward_ad.make_dual(x, tangent), y, gamma=1.5)
        jvp = forward_ad.unpack_dual(out).tangent
    torch.testing.assert_close(jvp, (z.grad * tangent).sum())


def test_soft_targets_that_ask_for_a_gradient_get_it() -> None:
    """d/dy of -(y log s + (1 - y) log(1 - s)) is log(1 - s) - log s = -x."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    y = torch.rand(5, 3, generator=generator, dtype=torch.float64).requires_grad_(True)
    losses.compute("binary_cross_entropy", x, y, reduction="sum").backward()
    assert y.grad is not None
    torch.testing.assert_close(y.grad, -x)


ROW_LOCAL = [
    "asymmetric",
    "binary_cross_entropy",
    "circle",
    "focal",
    "multilabel_categorical_crossentropy",
    "power_bce",
    "sigmoid_focal",
    "squared_error",
    "subset_softmax",
]
PARAMS = {"subset_softmax": {"max_k": 7}}


@pytest.mark.parametrize("name", ROW_LOCAL)
def test_blocks_of_rows_give_what_one_block_gives(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the CPU the closed forms run a block of rows at a time: many small blocks, the
    last one short, against the whole tensor as one block (values, gradients, Hessian
    diagonals; binary and multilabel or multiclass)."""
    from losses import _chunks

    generator = torch.Generator().manual_seed(3)
    spec = losses.get(name)
    multiclass = losses.Task.MULTICLASS in spec.tasks
    x = torch.randn(301, 7, generator=generator, dtype=torch.float64) * 6
    x[0, :3] = torch.tensor([1e4, -1e4, 60.0], dtype=torch.float64)
    if multiclass:
        shapes = [(x, torch.randint(0, 7, (301,), generator=generator))]
    else:
        y = (torch.rand(301, 7, generator=generator) < 0.3).to(torch.float64)
        shapes = [(x, y)]
        if losses.Task.BINARY in spec.tasks:
            shapes.append((x[:, 0].contiguous(), y[:, 0].contiguous()))

    def run() -> list[torch.Tensor]:
        out = []
        for logits, targets in shapes:
            params = PARAMS.get(name, {})
            d = losses.derivatives(name, logits, targets, hessian=True, reduction="sum", **params)
            z = logits.clone().requires_grad_(True)
            losses.compute(name, z, targets, reduction="sum", **params).backward()
            assert z.grad is not None and d.hessian_diag is not None
            out += [d.value, d.grad, d.hessian_diag, z.grad]
        return out

    monkeypatch.setattr(_chunks, "BLOCK_ELEMENTS", 1 << 30)
    whole = run()
    # 5 rows of 7 a block (22 in subset softmax's fourfold blocks), 40 binary rows
    monkeypatch.setattr(_chunks, "BLOCK_ELEMENTS", 40)
    for got, want in zip(run(), whole, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-13, atol=0.0)


@pytest.mark.parametrize("name", ["dice", "tversky", "self_adjusting_dice"])
@pytest.mark.parametrize("scope", ["batch", "sample"])
@pytest.mark.parametrize("task", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_overlap_losses_one_pass_gradient_is_autograds(
    name: str, scope: str, task: str, reduction: str
) -> None:
    """The Dice family's backward takes the closed form's gradient from one pass; under
    ``torch.func`` the differentiable formula runs instead, so its gradient is autograd's:
    the two agree in float64, with sample weights, at ±1e4 logits too, and the double
    backward (autograd through the formula) is finite."""
    generator = torch.Generator().manual_seed(11)
    shape = (23,) if task == "binary" else (23, 5)
    x = torch.randn(shape, generator=generator, dtype=torch.float64) * 3
    x.view(-1)[:2] = torch.tensor([1e4, -1e4], dtype=torch.float64)
    if task == "multiclass":
        y = torch.randint(0, 5, (23,), generator=generator)
    else:
        y = (torch.rand(shape, generator=generator) < 0.4).to(torch.float64)
    weight = torch.rand(23, generator=generator, dtype=torch.float64)
    kwargs = {"scope": scope, "reduction": reduction, "sample_weight": weight}
    upstream = torch.rand(
        losses.compute(name, x, y, **kwargs).shape, generator=generator, dtype=torch.float64
    )
    z = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(losses.compute(name, z, y, **kwargs), z, upstream)
    reference = torch.func.vjp(lambda t: losses.compute(name, t, y, **kwargs), x)[1](upstream)
    torch.testing.assert_close(grad, reference[0], rtol=1e-10, atol=1e-14)
    value = losses.compute(name, z, y, **kwargs)
    (again,) = torch.autograd.grad(value, z, upstream, create_graph=True)  # the formula's
    torch.testing.assert_close(again, grad, rtol=1e-10, atol=1e-14)
    (second,) = torch.autograd.grad(again.sum(), z)
    assert torch.isfinite(second).all()
    if scope == "sample":  # one Hessian block a sample: class c's direction in every sample
        value = losses.compute(name, z, y, **kwargs)
        (slope,) = torch.autograd.grad(value, z, torch.ones_like(value), create_graph=True)
        columns = 1 if task == "binary" else shape[1]
        diagonal = torch.empty_like(x)
        for c in range(columns):
            direction = torch.zeros_like(x)
            direction.view(x.shape[0], -1)[:, c] = 1.0
            (product,) = torch.autograd.grad(slope, z, direction, retain_graph=True)
            diagonal.view(x.shape[0], -1)[:, c] = product.view(x.shape[0], -1)[:, c]
        closed = losses.derivatives(name, x, y, hessian=True, **kwargs).hessian_diag
        torch.testing.assert_close(diagonal, closed, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("name", [*ROW_LOCAL, "dice", "tversky", "self_adjusting_dice"])
def test_a_kept_graph_gives_the_same_gradient_every_backward(name: str) -> None:
    """The first backward scales the kept gradient in place and hands it on: a second and
    third backward of the same graph (``retain_graph``), with other upstream gradients,
    compute it again, and agree with a graph of their own."""
    generator = torch.Generator().manual_seed(5)
    spec = losses.get(name)
    x = torch.randn(37, 6, generator=generator, dtype=torch.float64) * 4
    if losses.Task.MULTICLASS in spec.tasks:
        y = torch.randint(0, 6, (37,), generator=generator)
    else:
        y = (torch.rand(37, 6, generator=generator) < 0.3).to(torch.float64)
    params = {"max_k": 6} if name == "subset_softmax" else {}
    z = x.clone().requires_grad_(True)
    value = losses.compute(name, z, y, reduction="none", **params)
    for scale in (1.0, 0.5, -2.0):
        upstream = torch.full_like(value, scale)
        (grad,) = torch.autograd.grad(value, z, upstream, retain_graph=True)
        fresh = z.detach().clone().requires_grad_(True)
        (want,) = torch.autograd.grad(
            losses.compute(name, fresh, y, reduction="none", **params), fresh, upstream
        )
        torch.testing.assert_close(grad, want, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("hessian", [False, True])
@pytest.mark.parametrize(
    ("name", "direct"),
    [("focal", True), ("sigmoid_focal", True), ("dice", True), ("cross_entropy", False)],
)
def test_grad_out_receives_the_gradient(
    name: str, direct: bool, hessian: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``grad_out`` gets the gradient ``derivatives`` gives without it; a one-pass loss's
    backward writes it there (no copy after), others' gradients are copied in. Logits given
    as their own ``grad_out`` are read whole before they are overwritten."""
    generator = torch.Generator().manual_seed(8)
    x = torch.randn(29, 5, generator=generator) * 3
    if losses.Task.MULTICLASS in losses.get(name).tasks:
        y = torch.randint(0, 5, (29,), generator=generator)
    else:
        y = (torch.rand(29, 5, generator=generator) < 0.3).float()
    want = losses.derivatives(name, x, y, hessian=hessian)
    copied: list[torch.Tensor] = []
    copy = torch.Tensor.copy_

    def counted(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        copied.append(self)
        return copy(self, *args, **kwargs)

    target = torch.full_like(x, float("nan"))
    monkeypatch.setattr(torch.Tensor, "copy_", counted)
    got = losses.derivatives(name, x, y, hessian=hessian, grad_out=target)
    monkeypatch.undo()
    assert got.grad is target
    torch.testing.assert_close(target, want.grad, rtol=0.0, atol=0.0)
    if not hessian:  # (with it, a closed form of all three may give the gradient: copied)
        assert any(t is target for t in copied) is not direct
    same = x.clone()
    again = losses.derivatives(name, same, y, hessian=hessian, grad_out=same)
    torch.testing.assert_close(same, want.grad, rtol=0.0, atol=0.0)
    torch.testing.assert_close(again.value, want.value, rtol=0.0, atol=0.0)
    if hessian:
        torch.testing.assert_close(again.hessian_diag, want.hessian_diag, rtol=0.0, atol=0.0)
    with pytest.raises(ValueError, match="grad_out shaped as the logits"):
        losses.derivatives(name, x, y, grad_out=torch.empty(3))


@pytest.mark.parametrize("name", ["focal", "binary_cross_entropy", "dice"])
def test_a_batched_backward_gets_the_jacobian(name: str) -> None:
    """``is_grads_batched`` (vmap over the backward) hands a batched upstream, which the
    in-place scaling must leave alone."""
    generator = torch.Generator().manual_seed(9)
    x = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    if losses.Task.MULTICLASS in losses.get(name).tasks:
        y = torch.randint(0, 4, (6,), generator=generator)
    else:
        y = (torch.rand(6, 4, generator=generator) < 0.4).to(torch.float64)
    kwargs: dict[str, Any] = {"reduction": "none"}
    z = x.clone().requires_grad_(True)
    value = losses.compute(name, z, y, **kwargs)
    directions = torch.eye(value.numel(), dtype=torch.float64).reshape(-1, *value.shape)
    (rows,) = torch.autograd.grad(value, z, directions, is_grads_batched=True)
    jacobian = torch.func.jacrev(lambda t: losses.compute(name, t, y, **kwargs))(x)
    torch.testing.assert_close(rows.reshape(jacobian.shape), jacobian)


def test_grad_out_is_written_only_by_a_function_of_the_logits_themselves() -> None:
    """A loss that hands the one-pass function a view of the logits (here their
    transpose, of the same shape) gets its gradient through autograd: the place is
    filled by the copy at the end, with the right values."""
    from losses._fused import gradient_into

    generator = torch.Generator().manual_seed(10)
    x = torch.randn(5, 5, generator=generator)
    y = (torch.rand(5, 5, generator=generator) < 0.4).float()
    target = torch.full_like(x, float("nan"))
    z = x.clone().requires_grad_(True)
    with gradient_into(target, z):
        (grad,) = torch.autograd.grad(losses.compute("binary_cross_entropy", z.T, y), z)
    assert torch.isnan(target).all()
    want = losses.derivatives("binary_cross_entropy", x.T.contiguous(), y).grad.T
    torch.testing.assert_close(grad, want)


def test_logits_made_under_inference_mode_have_derivatives() -> None:
    with torch.inference_mode():
        x = torch.randn(7, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    got = losses.derivatives("focal", x, y, hessian=True)
    want = losses.derivatives("focal", x.clone(), y, hessian=True)
    torch.testing.assert_close(got.grad, want.grad, rtol=0.0, atol=0.0)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "sigmoid_focal", "asymmetric"])
def test_grad_out_over_the_targets_or_weights_is_written_after_they_are_read(name: str) -> None:
    generator = torch.Generator().manual_seed(12)
    x = torch.randn(9, 4, generator=generator)
    y = (torch.rand(9, 4, generator=generator) < 0.4).float()
    weight = torch.rand(9, generator=generator)
    want = losses.derivatives(name, x, y, hessian=True, sample_weight=weight)
    both = torch.cat([y.reshape(-1), weight])  # the targets, then the weights, in one tensor
    targets, weights = both[: y.numel()].view(9, 4), both[y.numel() :]
    got = losses.derivatives(
        name, x, targets, hessian=True, sample_weight=weights, grad_out=targets
    )
    torch.testing.assert_close(targets, want.grad, rtol=0.0, atol=0.0)
    assert got.hessian_diag is not None and want.hessian_diag is not None
    torch.testing.assert_close(got.hessian_diag, want.hessian_diag, rtol=0.0, atol=0.0)
