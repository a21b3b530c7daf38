"""What a request will cost, estimated from its shapes and params before anything is allocated.

Every route that computes runs its request through :class:`Budget` first. The estimates are
deliberately simple upper-bound models of the code that runs (not measurements), in two
units:

- ``memory``: peak bytes the request makes this process (and its worker) hold: the decoded
  tensors, autograd's intermediates, Hessian-vector products and their ``eye(C)``
  directions, a ``C x C`` confusion matrix, per-class answers, and the encoded answer;
- ``work``: elementary operations (one per element touched per pass), which at roughly
  ``1e9`` a second on one core says whether the request can finish within its deadline.

A request over either limit is refused with
:class:`~lossserve.core.errors.PayloadTooLarge` (413 / RESOURCE_EXHAUSTED), whose message
names the estimate, what dominates it, and the limit (with the setting that raises it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import losses
from losses import Coupling, Task
from lossserve_proto.chunks import MAX_DIMS

from .errors import InvalidArgument, PayloadTooLarge

__all__ = [
    "MAX_DIMS",
    "Budget",
    "Cost",
    "check_shape",
    "class_weights_cost",
    "evaluate_cost",
    "infer_cost",
    "loss_cost",
    "thresholds_cost",
]

_FLOAT = 4
"""Bytes of a float32 element (the wire's and the workers' dtype)."""
_AUTOGRAD_PASSES = 12
"""Tensors of the logits' size a loss's forward and backward keep alive (intermediates,
saved activations, the gradient); measured on the heaviest registry losses (Dice, focal)."""
_OPS_PER_PASS = 30
"""Element operations of one forward + backward pass over one logit."""
_MAX_BATCHED_ELEMENTS = 1 << 25
"""``losses._derivatives``: elements of Hessian-vector products batched at once."""
_PY_OBJECT = 40
"""Bytes of one Python number in a list (object + pointer), for answers built as lists."""
_JSON_NUMBER = 24
"""Bytes of one float as JSON text, separator included."""
_LARGEST_DIMENSION = 1 << 40
"""Without an element limit: the largest dimension a tensor may have (numpy's is 2**63)."""
_THRESHOLD_SWEEPS = 20
"""``evaluator._MAX_SWEEPS``: coordinate-ascent sweeps of the multiclass offsets."""


@dataclass(frozen=True)
class Cost:
    memory: int
    """Peak bytes (estimate)."""
    work: int
    """Elementary operations (estimate)."""
    what: str
    """The term that dominates, for the caller's message."""

    def __add__(self, other: Cost) -> Cost:
        what = self.what if self.memory >= other.memory else other.what
        return Cost(self.memory + other.memory, self.work + other.work, what)


def _size(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def _apart(
    need: str, limit: str, exact_need: float, exact_limit: float, unit: str = ""
) -> tuple[str, str]:
    """Estimate and limit as written, or exactly where rounding makes them look equal
    ("512.0 MiB, above the limit of 512.0 MiB")."""
    if need != limit:
        return need, limit
    return f"{int(exact_need)}{unit}", f"{int(exact_limit)}{unit}"


@dataclass(frozen=True)
class Budget:
    """The limits one request may use (``LOSSSERVE_MAX_REQUEST_MEMORY_BYTES`` and
    ``LOSSSERVE_MAX_REQUEST_WORK``)."""

    memory: int
    work: int

    def check(self, cost: Cost) -> Cost:
        """``cost`` when it fits; else raise ``PayloadTooLarge`` naming estimate and limit."""
        if cost.memory > self.memory:
            need, limit = _apart(
                _size(cost.memory), _size(self.memory), cost.memory, self.memory, " B"
            )
            raise PayloadTooLarge(
                f"request: needs an estimated {need} of memory ({cost.what}), "
                f"above the limit of {limit} per request "
                "(LOSSSERVE_MAX_REQUEST_MEMORY_BYTES); send a smaller batch"
            )
        if cost.work > self.work:
            need, limit = _apart(f"{cost.work:.2g}", f"{self.work:.2g}", cost.work, self.work)
            raise PayloadTooLarge(
                f"request: needs an estimated {need} operations ({cost.what}), above "
                f"the limit of {limit} per request (LOSSSERVE_MAX_REQUEST_WORK); send "
                "a smaller batch"
            )
        return cost


def check_shape(
    shape: Sequence[int], field: str, max_elements: int | None, *, empty: bool = False
) -> int:
    """The element count of ``shape``, checked: at most :data:`MAX_DIMS` dimensions, none
    negative, each and their product within ``max_elements``; and, unless ``empty``, every
    dimension at least 1. A dimension of 0 passes a product check and leaves the others to
    be anything (``[2**64 - 1, 0]``), so the dimensions are bounded one by one too. The
    converters decode any well-formed tensor (``empty=True``); the data plane refuses
    empty ones, which no loss, metric or model computes on."""
    if len(shape) > MAX_DIMS:
        raise InvalidArgument(f"{field}: expected at most {MAX_DIMS} dimensions, got {len(shape)}")
    largest = max_elements if max_elements is not None else _LARGEST_DIMENSION
    for axis, dim in enumerate(shape):
        if dim < (0 if empty else 1):
            raise InvalidArgument(
                f"{field}.shape: expected {'non-negative' if empty else 'positive'} "
                f"dimensions, got {dim} at axis {axis} of {list(shape)}"
            )
        if dim > largest:
            raise PayloadTooLarge(
                f"{field}: expected at most {largest} elements, got a dimension of {dim}"
            )
    count = math.prod(shape)
    if max_elements is not None and count > max_elements:
        raise PayloadTooLarge(f"{field}: expected at most {max_elements} elements, got {count}")
    return count


def _dims(shape: Sequence[int]) -> tuple[int, int]:
    """Rows and classes of ``(N,)`` or ``(N, C)`` logits."""
    n = shape[0] if shape else 1
    c = shape[1] if len(shape) > 1 else 1
    return n, c


def _task(logits: Sequence[int], targets: Sequence[int]) -> Task:
    if len(logits) < 2:
        return Task.BINARY
    return Task.MULTILABEL if tuple(targets) == tuple(logits) else Task.MULTICLASS


def loss_cost(
    spec: losses.LossSpec,
    params: Any,
    logits: Sequence[int],
    targets: Sequence[int],
    *,
    return_grad: bool,
    return_hessian: bool,
) -> Cost:
    """``POST /loss`` / ``ComputeLoss``: value, gradient and Hessian diagonal of ``spec``."""
    n, c = _dims(logits)
    elements = n * c
    passes = _AUTOGRAD_PASSES if (return_grad or return_hessian) else _AUTOGRAD_PASSES // 2
    k = _subset_size(params, c)
    what = f"logits: a forward and backward pass over {n} x {c}"
    if k:
        # log_elementary_symmetric: a recursion over C classes of (N, k + 1) tensors
        passes *= k + 1
        name = "max_k" if getattr(params, "max_k", None) else "k"
        what = f"params.{name}={k}: elementary symmetric sums up to {k} over {n} x {c} logits"
    memory = elements * _FLOAT * (passes + 3)
    work = elements * _OPS_PER_PASS * max(1, passes // _AUTOGRAD_PASSES)
    if return_hessian and spec.hessian_diagonal is not None and k:
        # subset softmax's closed form reruns the recursion and its gradient, in float64
        memory += 2 * elements * _FLOAT * (passes + 3)
        work += elements * _OPS_PER_PASS * max(1, passes // _AUTOGRAD_PASSES)
    if return_hessian and spec.hessian_diagonal is None:
        coupling = spec.coupling(params, _task(logits, targets))
        products = 1 if coupling is Coupling.ELEMENT or len(logits) < 2 else c
        if products > 1:
            batched = max(1, min(c, _MAX_BATCHED_ELEMENTS // max(1, elements)))
            memory += 3 * batched * elements * _FLOAT * max(1, k + 1 if k else 1)
            memory += c * c * _FLOAT  # the eye(C) of directions
            what = (
                f"return_hessian: the exact Hessian diagonal, {products} Hessian-vector "
                f"products over {n} x {c} logits"
            )
        work += products * elements * _OPS_PER_PASS * 2 * max(1, k + 1 if k else 1)
    return Cost(memory, work, what)


def _subset_size(params: Any, num_classes: int) -> int:
    """``subset_softmax``'s ``k`` / ``max_k`` (the size of its recursion), else 0."""
    k = getattr(params, "k", None)
    max_k = getattr(params, "max_k", None)
    size = max_k if isinstance(max_k, int) else k if isinstance(k, int) else 0
    return int(size)


def evaluate_cost(logits: Sequence[int], targets: Sequence[int], *, loss: bool) -> Cost:
    """``POST /evaluate``: counts, per-class metrics (and the loss), and the answer."""
    n, c = _dims(logits)
    elements = n * c
    memory = elements * 8 * 4  # float64 scores, booleans, decisions
    work = elements * 10
    what = f"logits: metrics over {n} x {c}"
    per_class = c * (5 * _PY_OBJECT + 5 * _JSON_NUMBER)
    memory += per_class
    if _task(logits, targets) is Task.MULTICLASS:
        confusion = c * c
        memory += confusion * (8 + 8 + _JSON_NUMBER)  # int64 counts, bincount, JSON text
        work += confusion * 4
        if confusion * 8 > elements * 32:
            what = f"logits: {c} classes, a {c} x {c} confusion matrix"
    if loss:
        loss_memory = elements * _FLOAT * _AUTOGRAD_PASSES
        memory += loss_memory
        work += elements * _OPS_PER_PASS
    return Cost(memory, work, what)


def thresholds_cost(scores: Sequence[int], targets: Sequence[int]) -> Cost:
    """``POST /thresholds``: per-class sweeps, or multiclass offsets by coordinate ascent."""
    n, c = _dims(scores)
    before_after = evaluate_cost(scores, targets, loss=False)
    if _task(scores, targets) is Task.MULTICLASS:
        # each sweep: one exact line search per class, O(N log N + C) each
        per_class = n * (2 * max(1, math.ceil(math.log2(max(n, 2)))) + 40) + 8 * c
        work = _THRESHOLD_SWEEPS * c * per_class
        memory = n * c * 8 * 3 + n * 8 * 30
        what = f"scores: multiclass offsets, up to {_THRESHOLD_SWEEPS} sweeps of {c} line searches"
    else:
        work = n * c * (2 * max(1, math.ceil(math.log2(max(n, 2)))) + 20)
        memory = n * c * 8 * 3
        what = f"scores: {c} exact F-beta sweeps over {n} scores"
    cost = Cost(memory, work, what)
    return Cost(
        before_after.memory * 2 + cost.memory,
        before_after.work * 2 + cost.work,
        what
        if cost.memory >= before_after.memory
        else before_after.what.replace("logits", "scores", 1),
    )


def class_weights_cost(labels: int, counts: int, num_classes: int | None) -> Cost:
    """``POST /class-weights``: counts per class and one weight each (and the answer)."""
    classes = max(counts, num_classes or 0)
    memory = labels * (8 + _PY_OBJECT) + classes * (8 * 4 + _PY_OBJECT + _JSON_NUMBER)
    field = "num_classes" if num_classes and num_classes >= classes else "labels"
    return Cost(memory, labels + classes * 10, f"{field}: weights for {classes} classes")


_STRING = 3 * _PY_OBJECT + 3 * 8
"""A BYTES element as the model runs it: the bytes object decoded, the str made of it,
ONNX Runtime's copy, and a pointer in each of their arrays."""


def infer_cost(rows: int, features: int, outputs: int, *, strings: int = 0) -> Cost:
    """One inference: the inputs (``strings`` of their elements BYTES), every output
    (``outputs`` values a row), the answer."""
    memory = rows * (features * _FLOAT * 2 + outputs * (_FLOAT * 3 + _JSON_NUMBER))
    memory += strings * _STRING
    work = rows * (features + outputs) * 4 + strings * 100
    return Cost(memory, work, f"inputs: inference on {rows} rows")
