"""The loss engine's checks of a request's arrays, before any job runs."""

from __future__ import annotations

import numpy as np
import pytest

from lossserve.core.engine import LossEngine
from lossserve.core.errors import InvalidArgument
from lossserve.core.types import LossRequest

TARGETS = np.arange(64) % 8


def prepare(logits: np.ndarray) -> None:
    request = LossRequest("cross_entropy", logits, TARGETS[: len(logits)])
    LossEngine(None, max_elements=1 << 20).prepare(request)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "read-only"])
def test_a_value_that_is_not_finite_is_named_by_its_index(
    dtype: type, bad: float, layout: str
) -> None:
    logits = np.zeros((64, 8), dtype)
    logits[37, 5] = bad
    if layout == "strided":
        logits = np.repeat(logits, 2, axis=1)[:, ::2]
    if layout == "read-only":
        logits.flags.writeable = False
    with pytest.raises(
        InvalidArgument, match=r"^logits: expected finite values, got .* at index \[37, 5\]"
    ):
        prepare(logits)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_finite_values_whose_sum_overflows_pass(dtype: type) -> None:
    logits = np.full((64, 8), np.finfo(dtype).max, dtype)  # their sum is infinite
    prepare(logits)
    prepare(-logits)
