"""The one ``Reduction`` enum and the one ``_reduce`` helper every loss uses."""

from __future__ import annotations

from enum import Enum

import torch
from torch import Tensor

__all__ = [
    "Reduction",
    "element_scale",
    "reduce_loss",
    "sample_scale",
    "scaled_derivatives",
]


class Reduction(str, Enum):
    """How a loss folds its per-sample (or per-element, or per-class) values."""

    NONE = "none"
    MEAN = "mean"
    SUM = "sum"

    @classmethod
    def parse(cls, value: str | Reduction) -> Reduction:
        """Return the member for ``value``; a bad value raises ``ValueError``."""
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"Expected reduction to be one of {allowed}, got {value!r}") from None


def reduce_loss(
    loss: Tensor,
    reduction: str | Reduction,
    sample_weight: Tensor | None = None,
    *,
    denominator: Tensor | None = None,
) -> Tensor:
    """Fold ``loss`` (leading axis: samples) by ``reduction``.

    ``sample_weight`` (shape ``(N,)``) multiplies each sample's values, broadcast over any
    trailing axes. ``mean`` divides by ``denominator`` when given (cross-entropy passes the
    summed class weights, as torch does), else by the summed sample weights times the
    number of trailing elements, else by the number of elements. A zero denominator (an
    empty or fully ignored batch) gives 0, not NaN.
    """
    mode = Reduction.parse(reduction)
    if sample_weight is not None:
        loss = loss * sample_weight.reshape(sample_weight.shape + (1,) * (loss.dim() - 1))
    if mode is Reduction.NONE:
        return loss
    total = loss.sum()
    if mode is Reduction.SUM:
        return total
    if denominator is None:
        if sample_weight is None:
            denominator = torch.tensor(float(loss.numel()), dtype=loss.dtype, device=loss.device)
        else:
            per_sample = loss[0].numel() if loss.dim() > 0 and loss.shape[0] > 0 else 1
            denominator = sample_weight.sum() * per_sample
    return total / denominator.to(loss.dtype).clamp_min(torch.finfo(loss.dtype).tiny)


def sample_scale(
    reduction: str | Reduction,
    sample_weight: Tensor | None,
    like: Tensor,
    *,
    per_sample: int = 1,
) -> Tensor:
    """``(N,)``: the derivative of :func:`reduce_loss`'s result (without ``denominator``)
    with respect to each sample's value, for values shaped ``like`` (leading axis: samples;
    ``per_sample`` elements each). ``none`` is taken as its sum, as ``losses.derivatives``
    does. Closed-form derivatives multiply each sample's own by it."""
    n = like.shape[0]
    scale = like.new_ones(n) if sample_weight is None else sample_weight.to(like.dtype)
    if Reduction.parse(reduction) is Reduction.MEAN:
        total = float(n) if sample_weight is None else scale.sum()
        denominator = torch.as_tensor(total * per_sample, dtype=like.dtype, device=like.device)
        scale = scale / denominator.clamp_min(torch.finfo(like.dtype).tiny)
    return scale


def element_scale(reduction: str | Reduction, sample_weight: Tensor | None, like: Tensor) -> Tensor:
    """:func:`sample_scale` for an element-wise loss: each element's factor, broadcastable
    to ``like`` (``(N,)`` or ``(N, C)``)."""
    per_sample = 1 if like.dim() == 1 else like.shape[1]
    scale = sample_scale(reduction, sample_weight, like, per_sample=per_sample)
    return scale.unsqueeze(1) if like.dim() == 2 else scale


def scaled_derivatives(
    value: Tensor,
    slope: Tensor,
    curvature: Tensor,
    reduction: str | Reduction,
    sample_weight: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """A loss's reduced value, gradient and Hessian diagonal from its unreduced values and
    their first and second derivatives (the last two scaled in place: they are the
    caller's own). Values shaped as the derivatives are an element-wise loss's; ``(N,)``
    values beside ``(N, C)`` derivatives are one a sample."""
    if value.shape == slope.shape:
        scale = element_scale(reduction, sample_weight, slope)
    else:
        scale = sample_scale(reduction, sample_weight, slope).unsqueeze(1)
    return reduce_loss(value, reduction, sample_weight), slope.mul_(scale), curvature.mul_(scale)
