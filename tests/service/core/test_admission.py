"""Admission: lanes and in-flight bytes, taken at admission and given back by the ticket."""

from __future__ import annotations

import pytest

from lossserve.core.admission import Admission
from lossserve.core.errors import ResourceExhausted


def _admission() -> Admission:
    return Admission(100, lambda lane: 2 if lane == "pool" else None)


def test_a_full_lane_or_byte_budget_refuses_and_takes_nothing() -> None:
    admission = _admission()
    first, second = admission.admit("pool", 10), admission.admit("pool", 10)
    with pytest.raises(ResourceExhausted, match=r"^pool: 2 requests are running or queued"):
        admission.admit("pool", 10)
    with pytest.raises(ResourceExhausted, match=r"LOSSSERVE_MAX_INFLIGHT_BYTES"):
        admission.admit("model", 81)
    assert (admission.held("pool"), admission.held("model"), admission.inflight_bytes) == (2, 0, 20)
    first.release()
    second.release()
    second.release()  # twice: nothing more
    assert (admission.held("pool"), admission.inflight_bytes) == (0, 0)


def test_leaving_the_lane_keeps_the_bytes_until_release() -> None:
    """An answer still being sent holds its bytes, not a place in the workers' lane."""
    admission = _admission()
    sending = admission.admit("pool", 60)
    sending.grow(20)
    sending.leave_lane()
    sending.leave_lane()
    assert (admission.held("pool"), admission.inflight_bytes) == (0, 80)
    admission.admit("pool", 0)
    admission.admit("pool", 20)
    with pytest.raises(ResourceExhausted, match=r"LOSSSERVE_MAX_INFLIGHT_BYTES"):
        admission.admit("other", 1)
    sending.release()
    assert (admission.held("pool"), admission.inflight_bytes) == (2, 20)
