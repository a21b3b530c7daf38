"""Stability over the whole registry: extreme logits, half precision, one-sided batches."""

from __future__ import annotations

import pytest
import torch

import losses
from losses import Task

from .cases import cases, make_inputs

CASES = cases()
IDS = [f"{n}-{t.value}" for n, t in CASES]


def _assert_finite_derivatives(
    name: str, x: torch.Tensor, y: torch.Tensor, **params: object
) -> None:
    result = losses.derivatives(name, x, y, hessian=True, **params)
    assert torch.isfinite(result.value).all(), "value"
    assert torch.isfinite(result.grad).all(), "gradient"
    assert result.hessian_diag is not None and torch.isfinite(result.hessian_diag).all(), "hessian"


@pytest.mark.parametrize(("name", "task"), CASES, ids=IDS)
@pytest.mark.parametrize("kind", ["mixed", "all_negative", "all_positive"])
def test_logits_of_1e4_are_finite(name: str, task: Task, kind: str, device: torch.device) -> None:
    x, y, params = make_inputs(name, task, n=8, c=4, dtype=torch.float32, kind=kind)
    x, y = torch.sign(x).to(device) * 1e4, y.to(device)
    x[0] = 0.0  # one undecided sample beside the saturated ones
    _assert_finite_derivatives(name, x, y, **params)


@pytest.mark.parametrize(("name", "task"), CASES, ids=IDS)
def test_perfect_and_perfectly_wrong_predictions_are_finite(
    name: str, task: Task, device: torch.device
) -> None:
    _, y, params = make_inputs(name, task, n=6, c=4, dtype=torch.float32)
    y = y.to(device)
    right = torch.nn.functional.one_hot(y, 4).float() if task is Task.MULTICLASS else y.float()
    for sign in (1.0, -1.0):
        _assert_finite_derivatives(name, sign * (2 * right - 1) * 1e4, y, **params)


@pytest.mark.parametrize(("name", "task"), CASES, ids=IDS)
def test_half_precision_is_computed_in_float32(
    name: str, task: Task, half_dtype: torch.dtype, device: torch.device
) -> None:
    x, y, params = make_inputs(name, task, n=8, c=4, dtype=torch.float32, scale=30.0)
    y = y.to(device)
    low = x.to(device=device, dtype=half_dtype).requires_grad_(True)
    value = losses.compute(name, low, y, **params)
    value.backward()
    assert value.dtype == torch.float32
    assert low.grad is not None and low.grad.dtype == half_dtype
    assert torch.isfinite(value) and torch.isfinite(low.grad).all()
    torch.testing.assert_close(value, losses.compute(name, low.detach().float(), y, **params))
