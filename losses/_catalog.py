"""The explicit list of registered losses, in the order of the README's table."""

from __future__ import annotations

from . import (
    _asymmetric,
    _binary_cross_entropy,
    _circle,
    _cross_entropy,
    _dice,
    _focal,
    _hinge,
    _logit_adjusted,
    _power_bce,
    _ranking,
    _sigmoid_focal,
    _squared_error,
    _subset_softmax,
    _zlpr,
)
from ._registry import LossSpec, Registry

__all__ = ["REGISTRY"]

_MODULES = (
    _cross_entropy,
    _binary_cross_entropy,
    _focal,
    _sigmoid_focal,
    _dice,
    _hinge,
    _squared_error,
    _power_bce,
    _zlpr,
    _circle,
    _subset_softmax,
    _ranking,
    _logit_adjusted,
    _asymmetric,
)


def _build() -> Registry:
    registry = Registry()
    for module in _MODULES:
        specs: tuple[LossSpec, ...] = module.SPECS
        for spec in specs:
            registry.register(spec)
    return registry


REGISTRY = _build()
