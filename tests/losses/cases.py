"""Inputs for registry-wide tests: one generator for every (loss, task) pair."""

from __future__ import annotations

from typing import Any

import torch

import losses
from losses import Task

# Parameters a loss needs beyond its defaults (a required field, or a choice of mode).
REQUIRED_PARAMS: dict[str, dict[str, Any]] = {
    "logit_adjusted_cross_entropy": {"class_prior": "counts"},
    "subset_softmax": {"max_k": 2},
}


def params_for(name: str, num_classes: int) -> dict[str, Any]:
    """The loss's defaults plus :data:`REQUIRED_PARAMS`."""
    params = dict(REQUIRED_PARAMS.get(name, {}))
    if params.get("class_prior") == "counts":
        params["class_prior"] = [float(10 * (c + 1)) for c in range(num_classes)]
    return params


def cases() -> list[tuple[str, Task]]:
    """Every (loss name, task) pair the registry declares."""
    return [
        (name, task)
        for name in losses.names()
        for task in sorted(losses.get(name).tasks, key=lambda t: t.value)
    ]


def make_targets(
    name: str, task: Task, n: int, c: int, generator: torch.Generator, kind: str = "mixed"
) -> torch.Tensor:
    """Targets for ``task``; ``kind`` is "mixed", "all_negative" or "all_positive"."""
    if task is Task.MULTICLASS:
        if kind == "all_negative":
            return torch.zeros(n, dtype=torch.long)
        if kind == "all_positive":
            return torch.full((n,), c - 1, dtype=torch.long)
        return torch.randint(0, c, (n,), generator=generator)
    shape = (n,) if task is Task.BINARY else (n, c)
    if kind == "all_negative":
        return torch.zeros(shape)
    if kind == "all_positive":
        y = torch.ones(shape)
    else:
        y = (torch.rand(shape, generator=generator) < 0.3).float()
    if name == "subset_softmax" and task is Task.MULTILABEL:
        # at most max_k positives per sample
        keep = torch.rand(shape, generator=generator).argsort(dim=1).argsort(dim=1) < 2
        y = y * keep
    return y


def make_inputs(
    name: str,
    task: Task,
    *,
    n: int = 5,
    c: int = 4,
    scale: float = 2.0,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    kind: str = "mixed",
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Logits, targets and params (:func:`params_for`)."""
    generator = torch.Generator().manual_seed(seed)
    shape = (n,) if task is Task.BINARY else (n, c)
    logits = (torch.randn(shape, generator=generator, dtype=torch.float64) * scale).to(dtype)
    targets = make_targets(name, task, n, c, generator, kind)
    return logits, targets, params_for(name, c)
