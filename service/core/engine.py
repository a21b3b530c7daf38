"""LossEngine: the transport-neutral core behind POST /loss, ComputeLoss and the registry."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

import losses
from losses import Coupling, LossParameterError

from ..workers import WorkerPool
from .errors import InvalidArgument, NotFound, field_message, invalid_params
from .types import LossRequest, LossResult

__all__ = [
    "LossEngine",
    "LossInfo",
    "validate_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class LossInfo:
    name: str
    tasks: list[str]
    summary: str
    formula: str
    reference: str
    when_to_use: str
    sample_separable: bool
    params_schema: dict[str, Any]


def _info(spec: losses.LossSpec) -> LossInfo:
    return LossInfo(
        name=spec.name,
        tasks=sorted(t.value for t in spec.tasks),
        summary=spec.summary,
        formula=spec.formula,
        reference=spec.reference,
        when_to_use=spec.when_to_use,
        sample_separable=spec.sample_separable,
        params_schema=spec.json_schema(),
    )


def _spec(name: str, field: str) -> losses.LossSpec:
    try:
        return losses.get(name)
    except (ValueError, TypeError) as exc:
        message = field_message(field, exc)
        raise (NotFound(message) if field == "name" else InvalidArgument(message)) from None


def validate_loss(loss: object, params: object) -> tuple[losses.LossSpec, Any]:
    """The registry's loss named ``loss`` and its validated ``params`` (the loss's own
    parameters object), or :class:`InvalidArgument` naming the field: the one check of a
    loss and its parameters, wherever a request names one."""
    if not isinstance(loss, str):
        raise InvalidArgument(f"loss: expected a loss name, got {type(loss).__name__}")
    if not isinstance(params, dict):
        raise InvalidArgument(f"params: expected an object, got {type(params).__name__}")
    spec = _spec(loss, "loss")
    try:
        return spec, spec.validate(params)
    except LossParameterError as exc:
        raise invalid_params(exc.errors) from None


class LossEngine:
    """Validates loss requests, runs them on the worker pool, and describes the registry."""

    def __init__(self, pool: WorkerPool, *, max_elements: int) -> None:
        self.pool = pool
        self.max_elements = max_elements

    def list_losses(self) -> list[LossInfo]:
        return [_info(losses.get(name)) for name in losses.names()]

    def describe(self, name: str) -> LossInfo:
        return _info(_spec(name, "name"))

    async def compute(
        self,
        request: LossRequest,
        *,
        timeout: float | None = None,
        validated: tuple[losses.LossSpec, Any] | None = None,
    ) -> LossResult:
        """``request`` on the worker pool; ``validated``: its loss and parameters as
        :func:`validate_loss` returned them (checked already: not checked again)."""
        job, split = self.prepare(request, validated)
        return await self.pool.run(job, timeout=timeout, split=split)

    def prepare(
        self, request: LossRequest, validated: tuple[losses.LossSpec, Any] | None = None
    ) -> tuple[Callable[[str], LossResult], Any]:
        """Validate ``request`` (its loss and parameters unless ``validated`` holds them)
        and return the job that computes it (and a splitter), both picklable: they run in
        a worker process."""
        spec, params = validated or validate_loss(request.loss, request.params)
        if request.reduction not in _REDUCTIONS:
            raise InvalidArgument(
                f"reduction: expected one of {', '.join(_REDUCTIONS)}, got {request.reduction!r}"
            )
        logits, targets, weight = _check_arrays(request, self.max_elements)
        task = _task(logits, targets)
        if task not in spec.tasks:
            allowed = ", ".join(sorted(t.value for t in spec.tasks))
            raise InvalidArgument(
                f"targets: expected targets for a task that loss {spec.name!r} supports "
                f"({allowed}), got {task.value} targets"
            )
        _check_targets(task, logits, targets, getattr(params, "ignore_index", None))
        coupling = spec.coupling(params, task)
        if request.return_hessian and coupling is Coupling.BATCH and not spec.hessian_diagonal:
            raise InvalidArgument(
                "return_hessian: the exact Hessian diagonal of a loss that couples the batch "
                "(scope='batch') costs O((N*C)^2); use scope='sample' or return_grad only"
            )
        job = _LossJob(
            loss=spec.name,
            logits=logits,
            targets=targets,
            weight=weight,
            params=dict(params),
            reduction=request.reduction,
            return_grad=request.return_grad,
            return_hessian=request.return_hessian,
            out=dict(request.out),
        )
        separable = spec.sample_separable and coupling is not Coupling.BATCH
        splittable = separable and request.reduction in ("none", "sum") and len(logits) > 1
        split = _row_splitter(job, len(logits), request.reduction) if splittable else None
        return job, split


def _tensor(array: np.ndarray, device: str) -> torch.Tensor:
    """A job's array as a tensor, without a copy. The arrays of a request arrive read-only
    (views of its bytes, and pickle keeps the flag across the process boundary), though the
    memory under them in the worker (its shared-memory segment, or the pipe message) is the
    job's own: torch's warning about writes to read-only memory does not apply (and no
    loss writes to its input)."""
    return _from_numpy(np.ascontiguousarray(array)).to(device)


def _from_numpy(array: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` without its warning about read-only memory: a request's arrays
    are read-only views of its bytes, and nothing here writes them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
        return torch.from_numpy(array)


@dataclass(frozen=True, eq=False)
class _LossJob:
    """One validated /loss request as a picklable job: it runs in a worker process.

    Called with the worker's device and optionally a row range ``[lo, hi)`` (what
    :func:`_row_splitter`'s halves ask for).
    """

    loss: str
    logits: np.ndarray
    targets: np.ndarray
    weight: np.ndarray | None
    params: dict[str, Any]
    reduction: str
    return_grad: bool
    return_hessian: bool
    out: dict[str, np.ndarray]
    """Where grad and hessian_diag go (views of shared memory, mapped here too)."""

    def __call__(self, device: str, lo: int = 0, hi: int | None = None) -> LossResult:
        rows = slice(lo, hi)
        x = _tensor(self.logits[rows], device)
        y = _tensor(self.targets[rows], device)
        w = None if self.weight is None else _tensor(self.weight[rows], device)
        place = self.out.get("grad") if rows == slice(0, None) else None
        try:
            if self.return_grad or self.return_hessian:
                d = losses.derivatives(
                    self.loss,
                    x,
                    y,
                    hessian=self.return_hessian,
                    reduction=self.reduction,
                    sample_weight=w,
                    grad_out=_place(place, x),
                    **self.params,
                )
                value, grad, hess = d.value, d.grad, d.hessian_diag
            else:
                with torch.no_grad():
                    value = losses.compute(
                        self.loss, x, y, reduction=self.reduction, sample_weight=w, **self.params
                    )
                grad, hess = None, None
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(str(exc)) from None
        return LossResult(
            loss=self.loss,
            reduction=self.reduction,
            value=_to_numpy(value),
            grad=None if grad is None else _into(self.out.get("grad"), grad, rows),
            hessian_diag=None if hess is None else _into(self.out.get("hessian_diag"), hess, rows),
            device=device,
        )


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


def _place(target: np.ndarray | None, x: torch.Tensor) -> torch.Tensor | None:
    """Where a whole job's gradient goes, as a tensor the loss writes it into (see
    :func:`losses.derivatives`): its output place, for float32 logits on the CPU."""
    if target is None or x.device.type != "cpu" or x.dtype != torch.float32:
        return None
    return torch.from_numpy(target) if target.dtype == np.float32 else None


def _into(target: np.ndarray | None, t: torch.Tensor, rows: slice) -> np.ndarray:
    """``t`` as float32, written into ``target``'s ``rows`` when there is a target: the
    target itself for all of its rows (it travels back as its place, not its bytes), the
    rows' values for a half of a split job (the merged halves are written again)."""
    if target is None:
        return _to_numpy(t)
    there = t.data_ptr() == target.ctypes.data and t.is_contiguous()  # written in place
    if not there or rows != slice(0, None):
        torch.from_numpy(np.asarray(target[rows])).copy_(t.detach())  # torch's copy: threaded
    return target if rows == slice(0, None) else np.array(target[rows])


def _task(logits: np.ndarray, targets: np.ndarray) -> losses.Task:
    try:
        return losses.infer_task(torch.empty(logits.shape), torch.empty(targets.shape))
    except ValueError as exc:
        raise InvalidArgument(f"targets: {exc}") from None


def _check_targets(
    task: losses.Task, logits: np.ndarray, targets: np.ndarray, ignore_index: int | None
) -> None:
    if task is losses.Task.MULTICLASS:
        c = logits.shape[1]
        bad = (targets < 0) | (targets >= c)
        if ignore_index is not None:  # (a comparison with None goes element by element)
            bad &= targets != ignore_index
        if bad.any():
            raise InvalidArgument(
                f"targets: expected class indices in [0, {c - 1}], got {int(targets[bad][0])}"
            )
        return
    bad = ~((targets >= 0) & (targets <= 1))
    if bad.any():
        raise InvalidArgument(f"targets: expected values in [0, 1], got {targets[bad][0]!r}")


def _all_finite(array: np.ndarray) -> bool:
    """Whether every value is finite. A NaN or an infinity makes the sum non-finite, so a
    finite sum (torch's, half the time of numpy's ``isfinite``) says so in one pass; a sum
    that is not (a fault, or large values that overflow it) is checked value by value."""
    summable = array.dtype in (np.float32, np.float64) and array.flags.c_contiguous
    if summable and bool(_from_numpy(array).sum().isfinite()):
        return True
    return bool(np.isfinite(array).all())


def _check_arrays(
    request: LossRequest, max_elements: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    logits, targets, weight = request.logits, request.targets, request.sample_weight
    for field, array in (("logits", logits), ("targets", targets), ("sample_weight", weight)):
        if array is not None and array.size > max_elements:
            raise InvalidArgument(
                f"{field}: expected at most {max_elements} elements, got {array.size}"
            )
    if logits.dtype.kind != "f":
        raise InvalidArgument(f"logits: expected a float dtype, got {logits.dtype.name}")
    if logits.ndim not in (1, 2) or logits.shape[0] == 0:
        raise InvalidArgument(
            f"logits: expected shape (N,) or (N, C) with N >= 1, got {list(logits.shape)}"
        )
    if not _all_finite(logits):
        finite = np.isfinite(logits)
        index = [int(i) for i in np.argwhere(~finite)[0]]
        raise InvalidArgument(
            f"logits: expected finite values, got {logits[tuple(index)]!r} at index {index}"
        )
    if targets.dtype.kind not in "biuf":
        raise InvalidArgument(f"targets: expected a numeric dtype, got {targets.dtype.name}")
    if targets.dtype.kind == "f" and targets.shape == logits.shape:
        targets = targets.astype(logits.dtype, copy=False)
    elif targets.dtype.kind == "f":
        if not np.isfinite(targets).all() or not np.all(np.mod(targets, 1) == 0):
            raise InvalidArgument("targets: expected integer class indices, got fractions")
        targets = targets.astype(np.int64, copy=False)
    elif targets.dtype.kind in "biu" and targets.shape == logits.shape:
        targets = targets.astype(logits.dtype, copy=False)
    else:
        targets = targets.astype(np.int64, copy=False)
    if weight is not None:
        if weight.shape != (logits.shape[0],):
            raise InvalidArgument(
                f"sample_weight: expected shape [{logits.shape[0]}], got {list(weight.shape)}"
            )
        weight = weight.astype(logits.dtype, copy=False)
    return logits, targets, weight


def _row_splitter(job: _LossJob, n: int, reduction: str) -> _RowSplitter:
    """Split a sample-separable job by rows; halves merge exactly (concat or sum)."""
    return _RowSplitter(n, reduction)


@dataclass(frozen=True)
class _RowSplitter:
    """Splits a job over ``n`` rows (or a half of one, :class:`_Rows`) into two halves.

    The pool calls it again on a half that still does not fit, so a half carries its own
    row range. Picklable: it runs in the worker process, where memory runs out.
    """

    n: int
    reduction: str

    def __call__(
        self, part: Callable[..., LossResult]
    ) -> tuple[_Rows, _Rows, Callable[[LossResult, LossResult], LossResult]]:
        job, lo, hi = (part.job, part.lo, part.hi) if isinstance(part, _Rows) else (part, 0, self.n)
        if hi - lo < 2:
            raise MemoryError("a single row does not fit")
        mid = (lo + hi) // 2
        return _Rows(job, lo, mid), _Rows(job, mid, hi), _merge(self.reduction)


@dataclass(frozen=True)
class _Rows:
    """The job restricted to rows [lo, hi)."""

    job: Callable[..., LossResult]
    lo: int
    hi: int

    def __call__(self, device: str) -> LossResult:
        return self.job(device, self.lo, self.hi)


def _merge(reduction: str) -> Callable[[LossResult, LossResult], LossResult]:
    return partial(_merge_results, reduction)


def _cat(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return None if a is None or b is None else np.concatenate([a, b])


def _merge_results(reduction: str, a: LossResult, b: LossResult) -> LossResult:
    value = np.concatenate([a.value, b.value]) if reduction == "none" else a.value + b.value
    return LossResult(
        loss=a.loss,
        reduction=a.reduction,
        value=value,
        grad=_cat(a.grad, b.grad),
        hessian_diag=_cat(a.hessian_diag, b.hessian_diag),
        device=a.device,
    )
