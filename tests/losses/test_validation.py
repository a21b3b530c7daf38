"""The target checks every loss runs (losses/_validation.py): the values they refuse and
the error that names the first of them."""

from __future__ import annotations

import math
import re

import pytest
import torch

import losses
from losses import Task
from losses._validation import all_hard, check_targets


def _next(value: float, toward: float, dtype: torch.dtype) -> float:
    """The next ``dtype`` number after ``value`` toward ``toward``."""
    return torch.nextafter(
        torch.tensor(value, dtype=dtype), torch.tensor(toward, dtype=dtype)
    ).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("bad", "hard"),
    [
        (float("nan"), False),
        (float("inf"), False),
        (-float("inf"), False),
        ("1 + ulp", False),
        (-1e-30, False),
        (float("nan"), True),
        (0.5, True),
        ("1 - ulp", True),
        (1e-40, True),  # a float32 subnormal: not exactly 0
        (2.0, True),
    ],
)
def test_a_bad_target_among_many_is_refused_and_named(
    bad: float | str, hard: bool, dtype: torch.dtype
) -> None:
    if bad == "1 + ulp":
        bad = _next(1.0, 2.0, dtype)
    elif bad == "1 - ulp":
        bad = _next(1.0, 0.0, dtype)
    logits = torch.zeros(3000, 7, dtype=dtype)
    targets = (torch.rand(3000, 7, generator=torch.Generator().manual_seed(0)) < 0.3).to(dtype)
    targets[2718, 3] = float(bad)
    stored = targets[2718, 3].item()
    expected = "of exactly 0 or 1" if hard else r"in \[0, 1\]"
    with pytest.raises(ValueError, match=f"Expected multilabel targets {expected}, got") as info:
        check_targets(Task.MULTILABEL, logits, targets, hard=hard)
    assert repr(stored) in str(info.value) or (math.isnan(stored) and "nan" in str(info.value))


@pytest.mark.parametrize("hard", [False, True])
def test_good_targets_pass_unchanged(hard: bool) -> None:
    logits = torch.zeros(3000, 7)
    targets = (torch.rand(3000, 7, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    targets[0, 0] = -0.0  # equal to 0
    if not hard:
        below_one = _next(1.0, 0.0, torch.float32)
        targets[1, :] = torch.tensor([0.25, below_one, 1e-40, 0.5, 1.0, 0.0, 0.75])
    out = check_targets(Task.MULTILABEL, logits, targets, hard=hard)
    assert torch.equal(out, targets)
    assert all_hard(targets) is hard


def test_the_losses_refuse_soft_targets_where_they_need_hard_ones() -> None:
    y = torch.zeros(5, 3)
    y[:, 0] = 1.0
    y[4, 1] = 0.999
    for name in ("asymmetric", "circle", "multilabel_categorical_crossentropy"):
        with pytest.raises(ValueError, match=re.escape("of exactly 0 or 1, got 0.999")):
            losses.compute(name, torch.zeros(5, 3), y)
