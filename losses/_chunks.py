"""Row-local computations run a block of rows at a time, on the CPU.

A closed form of a few dozen element-wise operations over ``N x C`` logits, run on the whole
tensor at once, makes each operation a pass through main memory and each temporary a fresh
allocation of the full size (page faults included). Run on blocks of about a megabyte, the
temporaries stay in the cache and their memory is reused, so the same operations cost a
third or less. Only computations whose every output row depends on the same rows of the
inputs (element-wise losses, sample-coupled ones) may run this way. On other devices the
function runs once on the whole tensors: their kernels gain nothing from it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["BLOCK_ELEMENTS", "LIGHT_BLOCKS", "by_rows", "curvature_by_rows"]

# Elements of one block: 1 MiB of float32 a tensor.
BLOCK_ELEMENTS = 1 << 18
# The block size, in BLOCK_ELEMENTS, for a computation of a few in-place operations: four
# times the usual size (4 MiB of float32) was the fastest both with glibc's defaults and
# with freed memory kept (the service's workers); a few dozen operations prefer 1.
LIGHT_BLOCKS = 4


def by_rows(
    fn: Callable[..., tuple[Tensor, ...]], *tensors: Tensor, blocks: int = 1
) -> tuple[Tensor, ...]:
    """``fn(*tensors)``, computed on blocks of rows and gathered: every input and every
    output has the rows on its first axis, and output rows depend on their input rows only.
    Inputs of another length (per-class parameters) belong in ``fn``'s closure. ``blocks``:
    the block's size in units of :data:`BLOCK_ELEMENTS` (for a loop over the columns, whose
    Python overhead a larger block spreads)."""
    first = tensors[0]
    rows = first.shape[0] if first.dim() else 0
    size = BLOCK_ELEMENTS * blocks
    step = max(1, size // max(1, first[0].numel())) if rows else 1
    if first.device.type != "cpu" or rows <= step:
        return fn(*tensors)
    outputs: tuple[Tensor, ...] = ()
    with torch.no_grad():
        for start in range(0, rows, step):
            part = fn(*(t[start : start + step] for t in tensors))
            if not outputs:
                outputs = tuple(p.new_empty((rows, *p.shape[1:])) for p in part)
            for out, piece in zip(outputs, part, strict=True):
                out[start : start + step].copy_(piece)
    return outputs


def curvature_by_rows(
    terms: Callable[..., tuple[Tensor, Tensor, Tensor | None]], *tensors: Tensor, blocks: int = 1
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`by_rows` of a closed form ``terms(*rows) -> (value, slope, curvature)`` that
    was asked for its curvature: the three, gathered."""

    def block(*rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        value, slope, bend = terms(*rows)
        if bend is None:
            raise RuntimeError("a closed form asked for its curvature gave none")
        return value, slope, bend

    value, slope, bend = by_rows(block, *tensors, blocks=blocks)
    return value, slope, bend
