"""Per-class weights against class imbalance, from labels or from per-class counts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from ._validation import Params, validate_params

__all__ = [
    "CLASS_WEIGHT_STRATEGIES",
    "ClassWeightStrategy",
    "ClassWeightsParams",
    "class_weights",
]

NAME = "class_weights"


class ClassWeightStrategy(str, Enum):
    """How :func:`class_weights` turns per-class counts into weights."""

    BALANCED = "balanced"
    INVERSE = "inverse"
    INVERSE_SQRT = "inverse_sqrt"
    EFFECTIVE_NUMBER = "effective_number"
    LOG_RATIO = "log_ratio"

    @classmethod
    def parse(cls, value: str | ClassWeightStrategy) -> ClassWeightStrategy:
        """Return the member for ``value``; a bad value raises ``ValueError``."""
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"Expected strategy to be one of {allowed}, got {value!r}") from None


CLASS_WEIGHT_STRATEGIES: tuple[str, ...] = tuple(m.value for m in ClassWeightStrategy)

_SHOWN_ABSENT = 10
"""Absent classes an error lists (a message stays short whatever the number of classes)."""
"""The strategy names, in a stable order (the ``enum`` of the published schema)."""


class ClassWeightsParams(Params):
    """Parameters of :func:`class_weights`: the schema the service publishes."""

    strategy: ClassWeightStrategy = Field(
        ClassWeightStrategy.BALANCED,
        strict=False,  # the value's string is accepted, as JSON sends it
        description="balanced: n / (K n_c); inverse: 1 / n_c, mean 1; inverse_sqrt: "
        "1 / sqrt(n_c), mean 1; effective_number: (1 - beta) / (1 - beta^n_c), mean 1; "
        "log_ratio: log((n - n_c) / n_c + K).",
    )
    num_classes: int | None = Field(
        None, ge=1, description="Number of classes K; default: the largest label + 1."
    )
    beta: float = Field(
        0.999,
        ge=0.0,
        lt=1.0,
        description="effective_number only: 0 gives uniform weights, beta -> 1 gives inverse.",
    )


def class_weights(
    labels: Tensor | np.ndarray[Any, Any] | Sequence[int] | None = None,
    *,
    strategy: str | ClassWeightStrategy = "balanced",
    num_classes: int | None = None,
    counts: Tensor | np.ndarray[Any, Any] | Sequence[float] | None = None,
    beta: float = 0.999,
) -> Tensor:
    r"""Per-class weights from class frequencies, one weight per class.

    With :math:`n_c` the count of class :math:`c`, :math:`n = \sum_c n_c` and :math:`K`
    classes:

    .. math::
        \text{balanced: } w_c = \frac{n}{K n_c}, \qquad
        \text{inverse: } w_c \propto \frac{1}{n_c}, \qquad
        \text{inverse\_sqrt: } w_c \propto \frac{1}{\sqrt{n_c}},

        \text{effective\_number: } w_c \propto \frac{1 - \beta}{1 - \beta^{n_c}}, \qquad
        \text{log\_ratio: } w_c = \log\left(\frac{n - n_c}{n_c} + K\right)

    where :math:`\propto` means normalised so that :math:`\sum_c w_c = K` (mean 1).
    ``balanced`` is scikit-learn's ``compute_class_weight("balanced")``;
    ``effective_number`` is Cui et al., "Class-Balanced Loss Based on Effective Number of
    Samples", CVPR 2019, https://arxiv.org/abs/1901.05555; ``log_ratio`` is the
    unnormalised weight of Li et al., "Dice Loss for Data-imbalanced NLP Tasks", ACL 2020,
    https://arxiv.org/abs/1911.02855.

    Args:
        labels: ``(N,)`` integer class indices in ``[0, K)`` (tensor, numpy array or list).
            Exactly one of ``labels`` and ``counts`` is given.
        strategy: one of ``"balanced"`` (default), ``"inverse"``, ``"inverse_sqrt"``,
            ``"effective_number"``, ``"log_ratio"``.
        num_classes: ``K >= 1``; default the largest label + 1 (or ``len(counts)``).
        counts: ``(K,)`` per-class counts ``> 0`` (may be fractional, e.g. weighted).
        beta: ``effective_number`` only, ``0 <= beta < 1``; default 0.999. ``beta = 0``
            gives uniform weights, ``beta -> 1`` the ``inverse`` weights.

    Returns:
        ``(K,)`` float32 weights, on the device of a tensor ``labels``/``counts``.

    Raises:
        ValueError: both or neither of ``labels``/``counts``; a bad strategy, ``beta`` or
            ``num_classes``; a label outside ``[0, K)``; a class with no samples.
        TypeError: non-integer ``labels``.

    Example:
        >>> class_weights([0, 1, 1, 1])
        tensor([2.0000, 0.6667])
        >>> class_weights(counts=[1, 3], strategy="inverse")
        tensor([1.5000, 0.5000])

    Note:
        A class with no samples has no defined weight (every strategy divides by
        :math:`n_c`); it raises rather than returning ``inf``. Equal counts give weight 1
        for every class under every strategy except ``log_ratio``. ``K = 1`` gives ``[1]``
        except for ``log_ratio`` (``[0]``).
    """
    parsed = ClassWeightStrategy.parse(strategy)
    validate_params(NAME, ClassWeightsParams, {"num_classes": num_classes, "beta": beta})
    n_c = _class_counts(labels, counts, num_classes)
    n = n_c.sum()
    k = n_c.numel()
    if parsed is ClassWeightStrategy.BALANCED:
        weights = n / (k * n_c)
    elif parsed is ClassWeightStrategy.INVERSE:
        weights = _mean_one(1.0 / n_c)
    elif parsed is ClassWeightStrategy.INVERSE_SQRT:
        weights = _mean_one(torch.rsqrt(n_c))
    elif parsed is ClassWeightStrategy.EFFECTIVE_NUMBER:
        # 1 - beta^n_c = -expm1(n_c log beta): exact as beta -> 1, and 1 at beta = 0.
        log_beta = math.log(beta) if beta > 0.0 else -math.inf
        weights = _mean_one((1.0 - beta) / -torch.expm1(n_c * log_beta))
    else:  # LOG_RATIO
        weights = torch.log((n - n_c) / n_c + k)
    return weights.to(torch.float32)


def _mean_one(weights: Tensor) -> Tensor:
    return weights * (weights.numel() / weights.sum())


def _class_counts(
    labels: Tensor | np.ndarray[Any, Any] | Sequence[int] | None,
    counts: Tensor | np.ndarray[Any, Any] | Sequence[float] | None,
    num_classes: int | None,
) -> Tensor:
    """Per-class counts as float64, checked: one per class, all finite and > 0."""
    if (labels is None) == (counts is None):
        given = "both" if labels is not None else "neither"
        raise ValueError(f"Expected exactly one of labels and counts, got {given}")
    if labels is not None:
        n_c = _counts_from_labels(labels, num_classes)
    else:
        n_c = torch.as_tensor(counts).to(torch.float64)
        if n_c.dim() != 1 or n_c.numel() == 0:
            raise ValueError(
                f"Expected counts of shape (K,) with K >= 1, got shape {tuple(n_c.shape)}"
            )
        if num_classes is not None and n_c.numel() != num_classes:
            raise ValueError(
                f"Expected counts with num_classes={num_classes} entries, got {n_c.numel()}"
            )
        if not bool((torch.isfinite(n_c) & (n_c >= 0)).all()):
            raise ValueError(f"Expected counts finite and >= 0, got {n_c.tolist()}")
    absent = torch.nonzero(n_c == 0).flatten()
    if absent.numel():
        shown = absent[:_SHOWN_ABSENT].tolist()
        more = absent.numel() - len(shown)
        listed = f"{shown}" + (f" and {more} more" if more else "")
        raise ValueError(
            f"Expected at least one sample of every class, got none for class(es) {listed}; "
            "weights for an absent class are undefined — pass counts for present classes only "
            "or drop the class"
        )
    return n_c


def _counts_from_labels(
    labels: Tensor | np.ndarray[Any, Any] | Sequence[int], num_classes: int | None
) -> Tensor:
    y = labels if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels))
    if y.dim() != 1:
        raise ValueError(f"Expected labels of shape (N,), got shape {tuple(y.shape)}")
    if y.numel() == 0:
        if num_classes is None:
            raise ValueError("Expected at least one label or num_classes, got neither")
    elif y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"Expected labels as integer class indices, got {y.dtype}")
    y = y.long()
    if y.numel() and int(y.min()) < 0:
        raise ValueError(f"Expected labels >= 0, got {int(y.min())}")
    k = num_classes if num_classes is not None else int(y.max()) + 1
    if y.numel() and int(y.max()) >= k:
        raise ValueError(f"Expected labels in [0, {k - 1}] for num_classes={k}, got {int(y.max())}")
    return torch.bincount(y, minlength=k).to(torch.float64)
