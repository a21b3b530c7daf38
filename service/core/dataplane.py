"""DataPlane: the one object every transport calls, for every request that does work.

As MLServer's ``DataPlane`` serves both its servers, the REST routes and the gRPC servicers
decode a request, call one method here, and encode what it returns. This class owns what
must not differ between them:

- **admission** (:meth:`DataPlane.admit`): a bounded lane per resource (the worker pool;
  each model's batcher) and a bound on the request bodies in flight, decided before the
  body is read, so that overload answers 429 / RESOURCE_EXHAUSTED in microseconds;
- **cost** (:mod:`lossserve.core.costs`): every request's memory and work estimated from its
  shapes and params, and refused with 413 / RESOURCE_EXHAUSTED over the budget, before
  anything is allocated;
- **deadlines**: the caller's, capped by ``request_timeout_s``; work past it is stopped by
  the worker pool;
- **validation** of everything the transports do not already type (shapes, params).

The transports keep only their codecs and their status tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

import losses

from ..models import loss_models
from . import costs
from .admission import Admission, Ticket
from .engine import validate_loss
from .errors import (
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
)
from .evaluator import StreamFit
from .offload import by_size
from .shm import Held
from .types import (
    EvaluateRequest,
    EvaluateResult,
    LossRequest,
    LossResult,
    ThresholdsRequest,
    ThresholdsResult,
)

if TYPE_CHECKING:
    from ..models.engine import InferRequest, InferResult, ModelMetadata, ModelStats, Prediction
    from .state import ServiceState

__all__ = ["INFERENCE", "POOL", "ClassWeightsRequest", "DataPlane", "model_lane"]

R = TypeVar("R")

POOL = "worker pool"
"""The lane of loss, evaluation and threshold requests."""
INFERENCE = "inference"
"""Inference requests whose model is not known before they are parsed (gRPC): their bytes
count, and each is admitted on its model's lane once parsed."""


_MODEL_LANE = "model "


def model_lane(name: str) -> str:
    """The lane of inference requests for model ``name`` (its batcher); a loss model's
    requests run on the worker pool, as ``POST /loss`` does."""
    if loss_models.is_loss_model(name):
        return POOL
    return f"{_MODEL_LANE}{name}"


@dataclass(frozen=True)
class ClassWeightsRequest:
    strategy: str
    labels: list[int] | None = None
    counts: list[float] | None = None
    num_classes: int | None = None
    beta: float = 0.999


class DataPlane:
    """Admission, cost, deadlines and the calls into the engines, for both transports."""

    def __init__(self, state: ServiceState) -> None:
        self._state = state
        settings = state.settings
        self.settings = settings
        self.budget = costs.Budget(
            memory=settings.max_request_memory_bytes, work=int(settings.max_request_work)
        )
        self.admission = Admission(settings.max_inflight_bytes, self._lane_limit)

    # -- admission ---------------------------------------------------------------------

    def _lane_limit(self, lane: str) -> int | None:
        if lane == POOL:
            workers = len(self._state.pool.stats())
            return workers * (self._state.pool.queue_depth + 1)
        if lane.startswith(_MODEL_LANE):
            return self._state.models.admission_limit(lane.removeprefix(_MODEL_LANE))
        return None

    def admit(self, lane: str, size: int = 0) -> Ticket:
        """Hold a place on ``lane`` for a request whose body has ``size`` bytes (more can be
        added as a chunked body streams in); ``ResourceExhausted`` when there is none."""
        return self.admission.admit(lane, size)

    def deadline(self, remaining: float | None = None) -> float:
        """The seconds a request may take: the caller's ``remaining``, capped by the
        configured ``request_timeout_s``."""
        limit = self.settings.request_timeout_s
        return limit if remaining is None else max(0.0, min(limit, remaining))

    # -- losses ------------------------------------------------------------------------

    async def compute_loss(
        self, request: LossRequest, *, remaining: float | None = None
    ) -> LossResult:
        """``POST /loss`` and ``ComputeLoss``: costed, then run on the worker pool."""
        limit = self.settings.max_elements
        costs.check_shape(request.logits.shape, "logits", limit)
        costs.check_shape(request.targets.shape, "targets", limit)
        if request.sample_weight is not None:
            costs.check_shape(request.sample_weight.shape, "sample_weight", limit)
        validated = validate_loss(request.loss, request.params)  # here only
        self.budget.check(
            self._loss_cost(
                validated,
                request.logits.shape,
                request.targets.shape,
                grad=request.return_grad,
                hessian=request.return_hessian,
            )
        )
        return await self._state.engine.compute(
            request, timeout=self.deadline(remaining), validated=validated
        )

    def _loss_cost(
        self,
        validated: tuple[losses.LossSpec, Any],
        logits: tuple[int, ...],
        targets: tuple[int, ...],
        *,
        grad: bool,
        hessian: bool,
    ) -> costs.Cost:
        """The cost of a loss (as :func:`validate_loss` returned it) on these shapes."""
        spec, params = validated
        costs.check_shape(logits, "logits", self.settings.max_elements)
        if len(logits) not in (1, 2):
            return costs.Cost(0, 0, "logits")  # the engine refuses the shape, naming it
        return costs.loss_cost(
            spec, params, logits, targets, return_grad=grad, return_hessian=hessian
        )

    def class_weights(self, request: ClassWeightsRequest) -> list[float]:
        """``POST /class-weights``: per-class weights (costed by the number of classes)."""
        labels, counts = request.labels, request.counts
        limit = self.settings.max_elements
        for name, values in (("labels", labels), ("counts", counts)):
            if values is not None and len(values) > limit:
                raise PayloadTooLarge(
                    f"{name}: expected at most {limit} elements, got {len(values)}"
                )
        classes = request.num_classes
        if labels:
            top = max(labels)
            if top >= limit:
                raise PayloadTooLarge(f"labels: expected class indices below {limit}, got {top}")
            classes = max(classes or 0, top + 1)
        if classes is not None and classes > limit:
            raise PayloadTooLarge(f"num_classes: expected at most {limit}, got {classes}")
        self.budget.check(costs.class_weights_cost(len(labels or ()), len(counts or ()), classes))
        try:
            weights = losses.class_weights(
                labels,
                counts=counts,
                strategy=request.strategy,
                num_classes=request.num_classes,
                beta=request.beta,
            )
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(str(exc)) from None
        answer: list[float] = weights.tolist()
        return answer

    # -- metrics -----------------------------------------------------------------------

    def cost_evaluate(self, request: EvaluateRequest) -> None:
        """Refuse an evaluation (or one streamed batch of it) over the budget."""
        self._check_pair(request.logits, request.targets, "logits")
        cost = costs.evaluate_cost(request.logits.shape, request.targets.shape, loss=False)
        if request.loss is not None:
            cost = cost + self._loss_cost(
                validate_loss(request.loss, request.params),
                request.logits.shape,
                request.targets.shape,
                grad=False,
                hessian=False,
            )
        self.budget.check(cost)

    async def evaluate(
        self, request: EvaluateRequest, *, remaining: float | None = None
    ) -> EvaluateResult:
        """``POST /evaluate``: costed (a ``C x C`` confusion), then run on the worker pool."""
        self.cost_evaluate(request)
        return await self._state.evaluate(request)

    async def fit_thresholds(
        self, request: ThresholdsRequest, *, remaining: float | None = None
    ) -> ThresholdsResult:
        """``POST /thresholds``: costed (sweeps, offsets), then run on the worker pool."""
        self._check_pair(request.scores, request.targets, "scores")
        self.budget.check(costs.thresholds_cost(request.scores.shape, request.targets.shape))
        return await self._state.fit_thresholds(request)

    async def fit_stream(self, fit: StreamFit) -> ThresholdsResult:
        """The thresholds at the end of ``StreamEvaluate``: costed as ``/thresholds`` on
        every batch, then run on the worker pool (stopped at the deadline)."""
        self.budget.check(costs.thresholds_cost(*fit.shapes))
        return await self._state.fit_stream(fit)

    async def in_thread(
        self, fn: Callable[..., R], *args: Any, remaining: float | None = None
    ) -> R:
        """``fn(*args)`` in a thread, within the request's deadline (for work that keeps
        state across a stream's messages, costed message by message)."""
        timeout = self.deadline(remaining)
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout)
        except TimeoutError:
            raise DeadlineExceeded(
                f"request: expected to finish within {timeout:g} s, took longer"
            ) from None

    def _check_pair(self, scores: np.ndarray, targets: np.ndarray, field: str) -> None:
        limit = self.settings.max_elements
        costs.check_shape(scores.shape, field, limit)
        costs.check_shape(targets.shape, "targets", limit)

    # -- models ------------------------------------------------------------------------

    async def infer(self, request: InferRequest, *, remaining: float | None = None) -> InferResult:
        request, held = self._read_shared(request)
        if loss_models.is_loss_model(request.model):
            loss_request, names = loss_models.loss_request(request)
            loss_request = _loss_destinations(held, loss_request)
            answer = await self.compute_loss(loss_request, remaining=remaining)
            return await _write_shared(held, loss_models.infer_result(request, answer, names))
        limit = self.settings.max_elements
        rows = largest = strings = 0  # rows: the first input's
        for name, array in request.inputs.items():
            if array.ndim == 0:
                raise InvalidArgument(f"input {name!r}: expected a shape [rows, ...], got []")
            costs.check_shape(array.shape, f"input {name!r}", limit)
            rows = rows or array.shape[0]
            largest = max(largest, array.size)
            if array.dtype == object:
                strings += array.size
        features = largest // max(1, rows)
        outputs = _outputs_per_row(self._state, request)
        self.budget.check(costs.infer_cost(rows, features, outputs, strings=strings))
        result = await self._state.models.infer(request, timeout=self.deadline(remaining))
        return await _write_shared(held, result)

    # System shared memory: inputs read from a client's regions (views, not copies), outputs
    # written into them (a loss's gradient and Hessian by the worker itself). A request holds
    # its places from its start: a region unregistered meanwhile does not affect it.

    def _read_shared(self, request: InferRequest) -> tuple[InferRequest, dict[str, Held]]:
        regions = self._state.regions
        held = {
            o.name: regions.hold(o.shared, f"output {o.name!r}")
            for o in request.outputs
            if o.shared is not None
        }
        if not request.shared:
            return request, held
        inputs = dict(request.inputs)
        for name, shared in request.shared.items():
            inputs[name] = regions.read(shared, f"input {name!r}")
        return replace(request, inputs=inputs, shared={}), held

    # Reads of the served models (cheap, constant-size: no admission, no cost)

    def server_ready(self) -> bool:
        """Started, not draining, at least one worker alive, and (strict readiness) every
        model of the repository served."""
        return self._state.ready()

    def model_ready(self, name: str, version: str = "") -> bool:
        if loss_models.is_loss_model(name):
            loss_models.spec_of(name, version)  # NotFound for a loss nobody registered
            return True
        return self._state.models.is_ready(name, version)

    def model_metadata(self, name: str, version: str = "") -> ModelMetadata:
        if loss_models.is_loss_model(name):
            return loss_models.metadata(name, version)
        return self._state.models.metadata(name, version)

    def model_config(self, name: str, version: str = "") -> dict[str, Any]:
        if loss_models.is_loss_model(name):
            return loss_models.config(name, version)
        return self._state.models.config(name, version)

    def model_stats(self, name: str = "", version: str = "") -> list[ModelStats]:
        if loss_models.is_loss_model(name):
            loss_models.spec_of(name, version)
            return []  # counted in the loss metrics (lossserve_requests_total), not here
        return self._state.models.stats(name, version)

    def check_json_answer(self, request: InferRequest, json_outputs: set[str]) -> None:
        """Refuse an inference whose answer would carry more JSON values than a JSON
        request may (``max_json_values``): writing them holds the interpreter as parsing
        does. Outputs asked for as binary data are not counted."""
        shapes = request.shapes()
        if not json_outputs or not shapes:
            return
        if any(len(shape) == 0 for shape in shapes.values()):
            return  # the inference itself refuses it
        if loss_models.is_loss_model(request.model):
            self._check_json_values(loss_models.json_values(request, json_outputs), "")
            return
        try:
            model = self._state.models.model(request.model, request.version)
        except (NotFound, InvalidArgument):
            return  # the inference itself says so
        labels = model.card.output_columns
        rows = next(iter(shapes.values()))[0]
        asked = {o.name: o.classification for o in request.outputs} or {
            name: 0 for name in json_outputs
        }
        decisions = 1 if model.card.class_index else labels
        per_row = sum(
            min(asked[name], labels) or (decisions if name == "decisions" else labels)
            for name in json_outputs
            if name in asked
        )
        self._check_json_values(rows * per_row, f" ({rows} rows)")

    def _check_json_values(self, values: int, rows: str) -> None:
        limit = self.settings.max_json_values
        if values > limit:
            raise PayloadTooLarge(
                f"outputs: the answer would hold {values} JSON values{rows}, above "
                f"the limit of {limit} (LOSSSERVE_MAX_JSON_VALUES); ask for the outputs with "
                "binary_data, or send fewer rows"
            )

    async def predict(
        self, name: str, instances: Any, *, remaining: float | None = None
    ) -> list[Prediction]:
        return await self._state.models.predict(name, instances, timeout=self.deadline(remaining))


def _loss_destinations(held: dict[str, Held], loss: LossRequest) -> LossRequest:
    """A loss request whose gradient and Hessian go into their regions (the worker writes
    them there)."""
    shape = loss.logits.shape
    out = {
        name: place.destination(np.dtype("<f4"), shape, f"output {name!r}")
        for name, place in held.items()
        if name in ("grad", "hessian_diag")
    }
    return replace(loss, out=out) if out else loss


async def _write_shared(held: dict[str, Held], result: InferResult) -> InferResult:
    """The result, its outputs in shared memory written there (a copy, unless computed
    there), and marked as such."""
    if not held:
        return result
    for name, place in held.items():
        array = result.outputs.get(name)
        if array is not None and not place.holds(array):  # else: computed there
            await by_size(array.nbytes, place.write, array, f"output {name!r}")
    return replace(result, shared={name: place.ref for name, place in held.items()})


def _outputs_per_row(state: ServiceState, request: InferRequest) -> int:
    """Values per row of every output asked for (labels x 3 when the model is unknown yet)."""
    try:
        labels = state.models.model(request.model, request.version).card.output_columns
    except (NotFound, InvalidArgument):
        return 0
    return 3 * labels + sum(min(o.classification, labels) for o in request.outputs)
