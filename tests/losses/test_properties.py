"""Hypothesis property tests over the whole registry.

Random shapes, classes and parameters: the loss is finite and non-negative, and its gradient
matches finite differences in float64. Logits come from a drawn seed and scale (not raw
drawn floats) so that ties at the kinks of hinge and ranking have probability zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import losses
from losses import Task

from .cases import cases, make_targets

Draw = Callable[[st.SearchStrategy[Any]], Any]
unit = st.floats(0.0, 1.0)
positive = st.floats(0.1, 5.0)


def _per_class(draw: Draw, c: int, low: float = 0.1, high: float = 5.0) -> list[float]:
    return draw(st.lists(st.floats(low, high), min_size=c, max_size=c))


def _params(name: str, task: Task, c: int, draw: Draw) -> dict[str, Any]:
    scope = {"scope": draw(st.sampled_from(["sample", "batch"]))}
    per = {
        "cross_entropy": lambda: {
            "label_smoothing": draw(unit),
            "weight": draw(st.none() | st.just(_per_class(draw, c))),
        },
        "binary_cross_entropy": lambda: {"pos_weight": draw(st.none() | positive)},
        "focal": lambda: {"gamma": draw(st.floats(0.0, 5.0)), "alpha": draw(st.none() | unit)},
        "sigmoid_focal": lambda: {
            "gamma": draw(st.floats(0.0, 5.0)),
            "alpha": draw(st.none() | unit),
        },
        "dice": lambda: {
            "smooth": draw(st.floats(0.0, 2.0)),
            "square_denominator": draw(st.booleans()),
            **scope,
        },
        "tversky": lambda: {"alpha": draw(unit), "beta": draw(unit), "smooth": 1.0, **scope},
        "self_adjusting_dice": lambda: {
            "alpha": draw(st.floats(0.0, 3.0)),
            "coefficient": draw(st.sampled_from([1.0, 2.0])),
            **scope,
        },
        "hinge": lambda: {
            "margin": draw(positive),
            "squared": draw(st.booleans()),
            **(
                {"variant": draw(st.sampled_from(["crammer_singer", "weston_watkins"]))}
                if task is Task.MULTICLASS
                else {}
            ),
        },
        "power_bce": lambda: {"n": draw(st.floats(0.5, 8.0))},
        "circle": lambda: {
            "scale": draw(positive),
            "margin": draw(st.floats(-1.0, 1.0)),
            "threshold_class": draw(st.booleans()),
        },
        "subset_softmax": lambda: {"max_k": 2},
        "ranking": lambda: {"gamma": draw(positive)},
        "logit_adjusted_cross_entropy": lambda: {
            "tau": draw(st.floats(0.0, 2.0)),
            "class_prior": _per_class(draw, c),
        },
        "asymmetric": lambda: {
            "gamma_pos": draw(st.floats(0.0, 2.0)),
            "gamma_neg": draw(st.floats(0.0, 6.0)),
            "clip": draw(st.floats(0.0, 0.2)),
        },
    }
    return per[name]() if name in per else {}


CASES = cases()


@pytest.mark.parametrize(("name", "task"), CASES, ids=[f"{n}-{t.value}" for n, t in CASES])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_finite_non_negative_and_gradient_matches_finite_differences(
    name: str, task: Task, data: st.DataObject
) -> None:
    n = data.draw(st.integers(1, 6), label="n")
    c = data.draw(st.integers(2, 5), label="c")
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    scale = data.draw(st.sampled_from([0.1, 1.0, 5.0]), label="scale")
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction")
    params = _params(name, task, c, data.draw)
    generator = torch.Generator().manual_seed(seed)
    shape = (n,) if task is Task.BINARY else (n, c)
    x = (torch.randn(shape, generator=generator, dtype=torch.float64) * scale).requires_grad_()
    kind = data.draw(st.sampled_from(["mixed", "all_negative", "all_positive"]), label="kind")
    y = make_targets(name, task, n, c, generator, kind)

    value = losses.compute(name, x, y, reduction=reduction, **params)
    assert torch.isfinite(value).all()
    assert (value >= -1e-9).all()
    assert torch.autograd.gradcheck(
        lambda z: losses.compute(name, z, y, reduction=reduction, **params), (x,)
    )
