"""Placeholder: a helper is writing this module."""

from __future__ import annotations

from ._registry import LossSpec

SPECS: tuple[LossSpec, ...] = ()
