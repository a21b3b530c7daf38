"""Input checks shared by every loss: tasks, shapes, dtypes, targets and parameters.

Every check raises ``ValueError`` (or ``TypeError`` for a wrong dtype) whose message reads
"expected X, got Y" and names the argument. Nothing here uses ``assert``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from enum import Enum
from typing import Annotated, Any, TypeVar, cast

import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from torch import Tensor

from ._chunks import by_rows

__all__ = [
    "LossParameterError",
    "NonNegativePerClass",
    "Params",
    "PerClass",
    "PositivePerClass",
    "Prepared",
    "Task",
    "all_hard",
    "as_float_logits",
    "check_params",
    "check_per_class",
    "check_sample_weight",
    "check_targets",
    "check_task",
    "infer_task",
    "params_trusted",
    "per_class_tensor",
    "prepare",
    "validate_params",
]


class Task(str, Enum):
    """The three classification tasks. The shapes of logits and targets decide which one."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"


class LossParameterError(ValueError):
    """A loss parameter failed its schema; ``errors`` lists ``(field, message)`` pairs."""

    def __init__(self, loss: str, errors: list[tuple[str, str]]) -> None:
        self.loss = loss
        self.errors = errors
        text = "; ".join(f"{field}: {message}" for field, message in errors)
        super().__init__(f"Invalid parameters for loss {loss!r}: {text}")


def _tensor_to_list(value: Any) -> Any:
    """Read a tensor, an array or a tuple as a list (a 0-d tensor as a number)."""
    if isinstance(value, Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, tuple) or hasattr(value, "__array__"):
        return list(value) if isinstance(value, tuple) else value.tolist()
    return value


PerClass = Annotated[
    list[Annotated[float, Field(allow_inf_nan=False)]], BeforeValidator(_tensor_to_list)
]
"""A per-class list of finite numbers; a tensor is accepted and read as a list."""

NonNegativePerClass = Annotated[
    list[Annotated[float, Field(ge=0.0, allow_inf_nan=False)]],
    BeforeValidator(_tensor_to_list),
]
"""A per-class list of finite numbers ``>= 0``; a tensor is accepted and read as a list."""

PositivePerClass = Annotated[
    list[Annotated[float, Field(gt=0.0, allow_inf_nan=False)]],
    BeforeValidator(_tensor_to_list),
]
"""A per-class list of finite numbers ``> 0``; a tensor is accepted and read as a list."""


class Params(BaseModel):
    """Base of every loss's params model: strict types, finite numbers, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


P = TypeVar("P", bound=Params)


_PARAMS_TRUSTED: ContextVar[bool] = ContextVar("losses_params_trusted", default=False)


@contextmanager
def params_trusted() -> Iterator[None]:
    """Let the loss functions called in this block skip re-validating their parameters.

    For callers that validated already: a module (in ``__init__``), ``compute`` and
    ``derivatives``. It keeps ``forward`` free of per-call validation, which would read
    per-class buffers back to the host (a device sync on CUDA) on every call.
    """
    token = _PARAMS_TRUSTED.set(True)
    try:
        yield
    finally:
        _PARAMS_TRUSTED.reset(token)


def check_params(loss: str, model: type[P], values: dict[str, Any]) -> P:
    """What a loss function calls first: :func:`validate_params`, unless the caller is trusted.

    Inside :func:`params_trusted` the values are taken as they are
    (``model.model_construct``), without conversion or checks.
    """
    if _PARAMS_TRUSTED.get():
        return cast(P, model.model_construct(**values))
    return validate_params(loss, model, values)


def validate_params(loss: str, model: type[P], values: dict[str, Any]) -> P:
    """Validate ``values`` against ``model``; failures raise :class:`LossParameterError`."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        # One entry per field: a union's members each report, so their messages are joined.
        grouped: dict[str, list[str]] = {}
        inputs: dict[str, Any] = {}
        for err in exc.errors():
            loc = err["loc"]
            field = (str(loc[0]) if loc else "params") + "".join(
                f"[{part}]" for part in loc[1:] if isinstance(part, int)
            )
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(sorted(model.model_fields)) or "none"
                message = f"unknown parameter; expected one of: {allowed}"
            else:
                message = err["msg"]
                inputs.setdefault(field, err.get("input"))
            if message not in grouped.setdefault(field, []):
                grouped[field].append(message)
        errors = [
            (
                field,
                " or ".join(messages) + (f", got {inputs[field]!r}" if field in inputs else ""),
            )
            for field, messages in grouped.items()
        ]
        raise LossParameterError(loss, errors) from None


def as_float_logits(logits: Tensor) -> Tensor:
    """Check ``logits`` is a floating tensor; half precision is computed in float32."""
    if not isinstance(logits, Tensor):
        raise TypeError(f"Expected logits to be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"Expected logits of a floating dtype, got {logits.dtype}")
    if logits.dtype in (torch.float16, torch.bfloat16):
        return logits.float()
    return logits


def infer_task(logits: Tensor, targets: Tensor) -> Task:
    """Tell the task from the shapes.

    ``logits (N,)`` with ``targets (N,)`` is binary; ``logits (N, C)`` with class indices
    ``targets (N,)`` is multiclass; ``logits (N, C)`` with multi-hot ``targets (N, C)`` is
    multilabel.
    """
    if not isinstance(targets, Tensor):
        raise TypeError(f"Expected targets to be a torch.Tensor, got {type(targets).__name__}")
    if logits.dim() == 1 and targets.shape == logits.shape:
        return Task.BINARY
    if logits.dim() == 2 and targets.shape == logits.shape:
        return Task.MULTILABEL
    if logits.dim() == 2 and targets.dim() == 1 and targets.shape[0] == logits.shape[0]:
        return Task.MULTICLASS
    raise ValueError(
        "Expected logits (N,) with targets (N,) for binary, logits (N, C) with class-index "
        "targets (N,) for multiclass, or logits (N, C) with multi-hot targets (N, C) for "
        f"multilabel; got logits {tuple(logits.shape)} and targets {tuple(targets.shape)}"
    )


def check_task(loss: str, task: Task, tasks: frozenset[Task]) -> None:
    """Raise when ``loss`` does not support ``task``."""
    if task not in tasks:
        allowed = ", ".join(sorted(t.value for t in tasks))
        raise ValueError(
            f"Expected targets for a task that loss {loss!r} supports ({allowed}), "
            f"got {task.value} targets"
        )


def check_targets(
    task: Task,
    logits: Tensor,
    targets: Tensor,
    *,
    hard: bool = False,
    ignore_index: int | None = None,
) -> Tensor:
    """Check target values for ``task`` and return them in the dtype the loss computes with.

    Multiclass targets must be integer class indices in ``[0, C)`` (``ignore_index`` aside)
    and come back as ``int64``. Binary and multilabel targets must lie in ``[0, 1]`` (exactly
    0 or 1 when ``hard``) and come back in the logits' dtype.
    """
    if task is Task.MULTICLASS:
        if targets.is_floating_point() or targets.dtype == torch.bool:
            raise TypeError(
                f"Expected multiclass targets as integer class indices, got {targets.dtype}"
            )
        num_classes = logits.shape[1]
        valid = targets if ignore_index is None else targets[targets != ignore_index]
        if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= num_classes):
            bad = valid[(valid < 0) | (valid >= num_classes)][0].item()
            raise ValueError(
                f"Expected class indices in [0, {num_classes - 1}] for {num_classes} classes, "
                f"got {bad}"
            )
        return targets.long()
    values = targets.to(logits.dtype)
    if values.numel():
        low, high = torch.aminmax(values)  # NaN fails both comparisons
        if not (bool(low >= 0) and bool(high <= 1)) or (hard and not all_hard(values)):
            invalid = ~((values == 0) | (values == 1)) if hard else ~((values >= 0) & (values <= 1))
            expected = "of exactly 0 or 1" if hard else "in [0, 1]"
            raise ValueError(
                f"Expected {task.value} targets {expected}, got {values[invalid][0].item()!r}"
            )
    return values


def all_hard(values: Tensor) -> bool:
    """Whether targets already in ``[0, 1]`` are all exactly 0 or 1: ``v (1 - v)`` is 0 at
    both and positive between, so its maximum tells. (A block of rows at a time: on the CPU
    that costs a tenth of two comparisons, an or and an all over the whole tensor.)"""
    if not values.numel():
        return True

    def row_peak(block: Tensor) -> tuple[Tensor]:
        return (torch.rsub(block, 1.0).mul_(block).reshape(block.shape[0], -1).amax(dim=1),)

    (peaks,) = by_rows(row_peak, values)
    return not bool(peaks.amax() > 0)


def check_sample_weight(sample_weight: Tensor | None, logits: Tensor) -> Tensor | None:
    """Check ``sample_weight`` is ``(N,)``, finite and non-negative; return it as float."""
    if sample_weight is None:
        return None
    if not isinstance(sample_weight, Tensor):
        sample_weight = torch.as_tensor(sample_weight)
    n = logits.shape[0]
    if sample_weight.shape != (n,):
        raise ValueError(
            f"Expected sample_weight of shape ({n},), got {tuple(sample_weight.shape)}"
        )
    weight = sample_weight.to(device=logits.device, dtype=logits.dtype)
    bad = ~(torch.isfinite(weight) & (weight >= 0))
    if weight.numel() and bool(bad.any()):
        raise ValueError(
            f"Expected sample_weight to be finite and >= 0, got {weight[bad][0].item()!r}"
        )
    return weight


def per_class_tensor(name: str, value: Tensor | Sequence[float], logits: Tensor) -> Tensor:
    """Turn a per-class parameter into a tensor on the logits' device and dtype."""
    tensor = torch.as_tensor(value, dtype=logits.dtype, device=logits.device)
    return check_per_class(name, tensor, logits)


def check_per_class(name: str, value: Tensor, logits: Tensor) -> Tensor:
    """Check a per-class tensor has one entry per class (the last axis of ``logits``)."""
    num_classes = logits.shape[-1] if logits.dim() > 1 else 1
    if value.dim() != 1 or value.shape[0] != num_classes:
        raise ValueError(
            f"Expected {name} with one value per class ({num_classes}), "
            f"got shape {tuple(value.shape)}"
        )
    return value


class Prepared:
    """Checked inputs of one loss call: float logits, typed targets, weights, the task."""

    __slots__ = ("logits", "sample_weight", "targets", "task")

    def __init__(
        self, logits: Tensor, targets: Tensor, sample_weight: Tensor | None, task: Task
    ) -> None:
        self.logits = logits
        self.targets = targets
        self.sample_weight = sample_weight
        self.task = task


def prepare(
    loss: str,
    tasks: frozenset[Task],
    logits: Tensor,
    targets: Tensor,
    sample_weight: Tensor | None,
    *,
    hard: bool = False,
    ignore_index: int | None = None,
) -> Prepared:
    """Run the common checks of a loss call and return the inputs to compute with."""
    x = as_float_logits(logits)
    task = infer_task(x, targets)
    check_task(loss, task, tasks)
    y = check_targets(task, x, targets, hard=hard, ignore_index=ignore_index)
    return Prepared(x, y, check_sample_weight(sample_weight, x), task)
