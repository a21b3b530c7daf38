"""The per-request budget's refusals name the estimate and the limit."""

from __future__ import annotations

import re

import pytest

from lossserve.core.costs import Budget, Cost
from lossserve.core.errors import PayloadTooLarge

MiB = 1 << 20


@pytest.mark.parametrize(
    ("cost", "words"),
    [
        (Cost(600 * MiB, 1, "logits"), "needs an estimated 600.0 MiB of memory (logits), "
         "above the limit of 512.0 MiB"),
        # one decimal would show 512.0 MiB twice: in bytes instead
        (Cost(512 * MiB + 5, 1, "logits"), "needs an estimated 536870917 B of memory "
         "(logits), above the limit of 536870912 B"),
        (Cost(1, 3 * 10**9, "hessian"), "needs an estimated 3e+09 operations (hessian), "
         "above the limit of 1e+09"),
        (Cost(1, 10**9 + 3, "hessian"), "needs an estimated 1000000003 operations (hessian), "
         "above the limit of 1000000000"),
    ],
)  # fmt: skip
def test_refusals_tell_estimate_and_limit_apart(cost: Cost, words: str) -> None:
    with pytest.raises(PayloadTooLarge, match=re.escape(words)):
        Budget(512 * MiB, 10**9).check(cost)


def test_what_fits_passes() -> None:
    cost = Cost(512 * MiB, 10**9, "logits")
    assert Budget(512 * MiB, 10**9).check(cost) is cost
