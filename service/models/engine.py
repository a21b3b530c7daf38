"""ModelEngine: the transport-neutral core of model serving, shared by REST and gRPC.

It owns the live models (one :class:`~lossserve.models.repository.LoadedModel` and one
:class:`~lossserve.models.batching.DynamicBatcher` each), answers metadata, configuration,
readiness and statistics, runs inference, and loads and unloads models. It speaks domain
types (numpy arrays, dataclasses) and raises :mod:`lossserve.core.errors`; the transports
only translate.

Every model answers three outputs for a batch of feature rows:

- ``logits`` and ``probabilities`` (FP32, ``[batch, columns]``) from the ONNX graph: one
  column per label, except a binary model's one column, its positive class (``labels[1]``);
- ``decisions`` (INT64) after the card's learned decision rule: for a multiclass model the
  class index ``argmax(logits + offsets)`` (``[batch]``); for a binary model the class index
  ``logits >= threshold`` (``[batch]``: 1 the positive class); for a multilabel model the
  multi-hot ``logits >= thresholds`` (``[batch, labels]``).

Triton's classification extension: an output requested with ``classification: k`` (or
``class_count: k``) answers, instead of its values, the top ``k`` classes of each row by
that output's value (for logits and probabilities alike, the most probable first) as
``BYTES`` strings ``"value:index:label"`` (``[batch, k]``, ``k`` capped at the label count).

Loading validates the new version completely (see :mod:`lossserve.models.repository`)
before it replaces the live one, so a failed load leaves the old version serving; the old
version's batcher then drains (requests already queued finish on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson

from ..core.documents import ascii_count
from ..core.errors import (
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
)
from ..core.shm import SharedInput, SharedRef
from .batching import DynamicBatcher
from .card import CATEGORICAL_INPUT, NUMERIC_INPUT, ColumnSpec, ModelCard, category
from .oip import config_type, datatype_of
from .repository import OUTPUTS, LoadedModel, ModelRepository, check_model_name

__all__ = [
    "DECISIONS",
    "OUTPUT_NAMES",
    "PLATFORM",
    "BatchStat",
    "IndexEntry",
    "InferRequest",
    "InferResult",
    "ModelEngine",
    "ModelMetadata",
    "ModelStats",
    "Prediction",
    "RequestedOutput",
    "TensorSpec",
    "classify",
    "decide",
]

PLATFORM = "onnxruntime_onnx"
DECISIONS = "decisions"
OUTPUT_NAMES = (*OUTPUTS, DECISIONS)
READY, UNAVAILABLE = "READY", "UNAVAILABLE"
R = TypeVar("R")

log = logging.getLogger("lossserve.models")

Scalar = str | int | float | bool


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]
    """-1 for the batch axis."""


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    parameters: dict[str, Scalar]
    """``execution_provider``, ``task``, ``labels`` (a JSON list), ``loss``, ``threshold_kind``."""


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    classification: int = 0
    """> 0: answer the top ``classification`` classes as strings instead of the values."""
    shared: SharedRef | None = None
    """Write it into this place of a registered shared-memory region instead of sending it."""


RESERVED_PARAMETERS = frozenset(
    {"binary_data_output", "priority", "timeout", "sequence_id", "sequence_start", "sequence_end"}
)
"""Request parameters of the protocol and its clients (tritonclient sends ``priority``,
``timeout`` and the ``sequence_*`` ones): the transports read or ignore them; they never
reach a model as its own parameters."""


@dataclass(frozen=True)
class InferRequest:
    model: str
    inputs: Mapping[str, np.ndarray]
    version: str = ""
    """Empty: the version being served."""
    outputs: tuple[RequestedOutput, ...] = ()
    """Empty: every output, without classification."""
    id: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """The request's own parameters (the transports' reserved ones taken out): the loss
    models' loss parameters and reduction; a trained model takes none."""
    shared: Mapping[str, SharedInput] = field(default_factory=dict)
    """Inputs in registered shared-memory regions, not read yet (the data plane reads them
    into ``inputs``)."""

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every input's shape, those in shared memory included."""
        shapes = {name: array.shape for name, array in self.inputs.items()}
        shapes.update({name: shared.shape for name, shared in self.shared.items()})
        return shapes


@dataclass(frozen=True)
class InferResult:
    model: str
    version: str
    id: str
    outputs: dict[str, np.ndarray]
    """In the order they were asked for (every output in :data:`OUTPUT_NAMES` order)."""
    shared: Mapping[str, SharedRef] = field(default_factory=dict)
    """Outputs written into shared memory, and where: their values are not sent."""


@dataclass(frozen=True)
class Prediction:
    labels: list[str]
    """The labels the learned decision rule picks (one for binary and multiclass, any
    number for multilabel)."""
    probabilities: dict[str, float]


@dataclass(frozen=True)
class IndexEntry:
    name: str
    version: str
    state: str
    """READY or UNAVAILABLE."""
    reason: str


@dataclass(frozen=True)
class ModelStats:
    name: str
    version: str
    last_inference_ms: int
    inference_count: int
    """Rows inferred."""
    execution_count: int
    """Model runs (merged requests are one run)."""
    success_count: int
    success_ns: int
    fail_count: int
    fail_ns: int
    queued: int
    """Requests waiting in the batcher now."""
    running: int = 0
    """Model runs in progress now."""
    queue_count: int = 0
    queue_ns: int = 0
    """Requests that reached a run, and their time waiting for it, summed."""
    compute_count: int = 0
    compute_ns: int = 0
    """Requests that reached a run, and their runs' time, summed (``compute_infer``)."""
    batch_stats: tuple[BatchStat, ...] = ()
    """Per rows a run: the runs and their time (a run above ``max_batch_size`` rows, a
    request that ran alone, is counted at the next power of two)."""
    batch_rows: int = 0
    """Rows sent to runs, summed (the batch-size histogram's sum)."""


@dataclass(frozen=True)
class BatchStat:
    batch_size: int
    count: int
    ns: int


def decide(card_task: str, thresholds: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """The learned decision rule on a batch of logits (see the module docstring)."""
    if card_task == "multiclass":
        decisions: np.ndarray = np.argmax(logits + thresholds, axis=1).astype(np.int64)
    elif card_task == "binary":
        decisions = (logits[:, 0] >= thresholds[0]).astype(np.int64)
    else:
        decisions = (logits >= thresholds).astype(np.int64)
    return decisions


def classify(values: np.ndarray, k: int, labels: Sequence[str]) -> np.ndarray:
    """Triton's classification: the top ``k`` of each row as ``b"value:index:label"``."""
    k = min(k, values.shape[1])
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    result = np.empty((values.shape[0], k), dtype=object)
    for row in range(values.shape[0]):
        for column, index in enumerate(order[row]):
            result[row, column] = f"{values[row, index]:f}:{index}:{labels[index]}".encode()
    return result


@dataclass(eq=False)
class _Live:
    """A model being served: its session, its batcher and its counters."""

    model: LoadedModel
    batcher: DynamicBatcher
    success: int = 0
    success_ns: int = 0
    fail: int = 0
    fail_ns: int = 0
    rows: int = 0
    last_inference_ms: int = 0
    thresholds: np.ndarray = field(init=False)
    """The card's decision thresholds, as the rule takes them."""

    def __post_init__(self) -> None:
        self.thresholds = np.asarray(self.model.card.thresholds, dtype=np.float32)

    def decide(self, logits: np.ndarray) -> np.ndarray:
        """The model's decisions for ``logits`` (computed for the requests that ask)."""
        return decide(self.model.card.task, self.thresholds, logits)


@dataclass
class _Slot:
    live: _Live | None = None
    reason: str = ""
    version: str = ""
    failed: bool = False
    """Its last load failed and no version of it is served."""


INLINE_RUN_S = 200e-6
"""A model run predicted to take less than this runs on the event loop: a thread's two
hand-offs (about 50 µs of CPU each way on a busy loop) cost more than such a run, and 0.2
ms holds the other requests less than parsing one JSON body does."""


def _parse_version(version: str) -> int | None:
    if version == "":
        return None
    number = ascii_count(version)
    if number is None or number < 1:
        raise InvalidArgument(f"model version: expected a positive integer, got {version!r}")
    return number


class ModelEngine:
    """The live models of one server process.

    Args:
        repository: where models come from; ``None`` serves no model (every model is unknown
            and the repository API answers that no repository is configured).
        timeout: the default deadline of an inference, in seconds.
        max_elements: the most elements one input tensor may have.
        poll_s: once started, look at the repository this often (:meth:`poll`); None:
            only :meth:`load` and :meth:`unload` change what is served.
    """

    def __init__(
        self,
        repository: ModelRepository | None,
        *,
        timeout: float = 30.0,
        max_elements: int = 64 * 1024 * 1024,
        poll_s: float | None = None,
    ) -> None:
        self.repository = repository
        self._timeout = timeout
        self.max_elements = max_elements
        self.poll_s = poll_s
        """Seconds between two :meth:`poll` calls once started; None: never polls."""
        self._slots: dict[str, _Slot] = {}
        self._lock: asyncio.Lock | None = None
        self._seen: dict[str, tuple[int, float]] = {}
        """Each model's latest version on disk and its files' newest mtime, at its last load
        attempt: a model whose load failed is retried when they change."""
        self._poller: asyncio.Task[None] | None = None
        self._retiring: set[DynamicBatcher] = set()
        """Batchers of versions no longer served, closing (their requests finishing)."""
        self._background: set[asyncio.Task[None]] = set()
        self.started = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Load the latest version of every model in the repository; a model that fails
        to load is listed UNAVAILABLE with the reason, and the others serve."""
        if self.repository is not None:
            for name in self.repository.names():
                try:
                    await self.load(name)
                except (InvalidArgument, NotFound) as exc:
                    log.warning(
                        "model failed to load", extra={"model": name, "reason": exc.message}
                    )
        self.started = True
        if self.poll_s is not None and self.repository is not None:
            self._poller = asyncio.get_running_loop().create_task(self._poll_forever(self.poll_s))

    async def _poll_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.poll()
            except Exception:  # a look at the disk that failed: logged, tried again next time
                log.exception("polling the model repository failed")

    async def poll(self) -> None:
        """Bring the served models in line with the repository folder, as Triton's poll
        mode does: a model with a newer version than the one served, or new, is loaded (the
        old version's queued requests finish on it); a model whose folder or versions are
        gone is unloaded; a model whose load failed is tried again once its files change."""
        repository = self._repository()
        listing = await asyncio.to_thread(_scan, repository)  # disk reads: off the loop
        for name, latest in sorted(listing.items()):
            if latest is None:  # an empty folder (a training that failed): nothing to serve
                await self._forget(name)
                continue
            if self._served(name) == latest[0] or self._seen.get(name) == latest:
                continue
            try:  # the old version drains in the background: other models need not wait
                await self.load(name, wait=False)
            except (InvalidArgument, NotFound) as exc:
                log.warning("model failed to load", extra={"model": name, "reason": exc.message})
        for name in sorted(set(self._slots) - set(listing)):
            await self._forget(name)

    def _served(self, name: str) -> int | None:
        slot = self._slots.get(name)
        return slot.live.model.version if slot is not None and slot.live is not None else None

    async def _forget(self, name: str) -> None:
        """A model with nothing left to serve on disk: unloaded if served (its requests
        finish in the background), and no longer listed."""
        if self._served(name) is not None:
            await self.unload(name, wait=False)
        self._slots.pop(name, None)
        self._seen.pop(name, None)

    def abort(self, message: str) -> None:
        """Answer every inference still waiting or running with ``Unavailable`` now."""
        for slot in self._slots.values():
            if slot.live is not None:
                slot.live.batcher.abort(message)
        for batcher in self._retiring:
            batcher.abort(message)

    async def stop(self) -> None:
        self.started = False
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self._background:  # replaced versions still draining
            await asyncio.gather(*self._background, return_exceptions=True)
        for slot in self._slots.values():
            if slot.live is not None:
                await slot.live.batcher.close()
                slot.live = None

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    # -- the repository API ------------------------------------------------------------

    def _repository(self) -> ModelRepository:
        if self.repository is None:
            raise NotFound("no model repository is configured (lossserve serve --model-repository)")
        return self.repository

    async def load(self, name: str, *, wait: bool = True) -> LoadedModel:
        """Validate and start serving the latest version of ``name``.

        On failure the version being served (if any) keeps serving and the error is raised.
        The replaced version's queued requests finish on it; ``wait``: before this returns,
        else in the background (:meth:`stop` waits for them).
        """
        repository = self._repository()
        check_model_name(name)
        async with self._guard():
            slot = self._slots.get(name)
            latest = _latest(repository, name)
            if latest is not None:
                self._seen[name] = latest
            try:
                model = await asyncio.to_thread(repository.open, name)
            except (InvalidArgument, NotFound) as exc:
                if slot is not None and slot.live is None:
                    slot.reason, slot.failed = exc.message, True
                elif slot is None and repository.contains(name):
                    self._slots[name] = _Slot(
                        reason=exc.message,
                        version=str(latest[0]) if latest is not None else "",
                        failed=True,
                    )
                raise
            batching = model.card.batching
            live = _Live(
                model=model,
                batcher=DynamicBatcher(
                    model.run,
                    max_batch_size=batching.max_batch_size,
                    max_queue_delay_us=batching.max_queue_delay_us,
                    queue_depth=batching.queue_depth,
                    inline_below_s=INLINE_RUN_S,
                ),
            )
            old = slot.live if slot is not None else None
            self._slots[name] = _Slot(live=live, version=str(model.version))
            log.info(
                "model loaded",
                extra={"model": name, "version": model.version, "provider": model.provider},
            )
        if old is not None:
            await self._retire(old.batcher, wait)
        return model

    async def unload(self, name: str, *, wait: bool = True) -> None:
        """Stop serving ``name``; requests already queued for it finish (``wait``: before
        this returns, else in the background)."""
        check_model_name(name)
        async with self._guard():
            slot = self._slots.get(name)
            if slot is None or slot.live is None:
                self._unknown(name)
                raise NotFound(f"model {name!r} is not loaded")
            live, slot.live, slot.reason, slot.failed = slot.live, None, "unloaded", False
            log.info("model unloaded", extra={"model": name, "version": live.model.version})
        await self._retire(live.batcher, wait)

    async def _retire(self, batcher: DynamicBatcher, wait: bool) -> None:
        """Close a batcher no longer served, once its requests finished."""
        if not wait:
            task = asyncio.get_running_loop().create_task(self._retire(batcher, True))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        self._retiring.add(batcher)
        try:
            await batcher.close()
        finally:
            self._retiring.discard(batcher)

    def failed(self) -> list[str]:
        """The models whose last load failed and that no version of serves."""
        return sorted(name for name, slot in self._slots.items() if slot.failed)

    def index(self, *, ready_only: bool = False) -> list[IndexEntry]:
        """Every model of the repository and every model served, with its state."""
        names = set(self._slots)
        if self.repository is not None:
            names.update(self.repository.names())
        entries = []
        for name in sorted(names):
            slot = self._slots.get(name)
            if slot is not None and slot.live is not None:
                entries.append(IndexEntry(name, str(slot.live.model.version), READY, ""))
                continue
            if ready_only:
                continue
            if slot is not None:
                entries.append(IndexEntry(name, slot.version, UNAVAILABLE, slot.reason))
            else:
                entries.append(IndexEntry(name, "", UNAVAILABLE, "not loaded"))
        return entries

    # -- lookups -----------------------------------------------------------------------

    def _unknown(self, name: str) -> None:
        """Raise NotFound when ``name`` is neither served nor in the repository."""
        if name in self._slots:
            return
        if self.repository is not None and self.repository.contains(name):
            return
        raise NotFound(f"unknown model {name!r}")

    def _live(self, name: str, version: str = "") -> _Live:
        slot = self._slots.get(name)
        if not version and slot is not None and slot.live is not None:
            return slot.live  # the hot path: a served model's name is valid by construction
        check_model_name(name)
        wanted = _parse_version(version)
        if slot is None or slot.live is None:
            self._unknown(name)
            reason = slot.reason if slot is not None and slot.reason else "not loaded"
            raise NotFound(f"model {name!r} is not available: {reason}")
        served = slot.live.model.version
        if wanted is not None and wanted != served:
            raise NotFound(
                f"model {name!r} has no version {wanted} being served (serving {served})"
            )
        return slot.live

    def admission_limit(self, name: str) -> int | None:
        """How many requests for ``name`` may be in flight: what its batcher runs and queues
        (None for a model not served: such a request is answered at once anyway)."""
        slot = self._slots.get(name)
        if slot is None or slot.live is None:
            return None
        batcher = slot.live.batcher
        return batcher.queue_depth + batcher.max_batch_size

    def model(self, name: str, version: str = "") -> LoadedModel:
        return self._live(name, version).model

    def is_ready(self, name: str, version: str = "") -> bool:
        """True when the model (and version, if given) is served; False when the model is
        known but not served; :class:`NotFound` for a model nobody knows."""
        try:
            self._live(name, version)
        except NotFound:
            self._unknown(check_model_name(name))
            return False
        return True

    def live_models(self) -> list[LoadedModel]:
        return [s.live.model for _, s in sorted(self._slots.items()) if s.live is not None]

    def metadata(self, name: str, version: str = "") -> ModelMetadata:
        model = self.model(name, version)
        card = model.card
        labels = card.output_columns
        decisions = (-1,) if card.class_index else (-1, labels)
        return ModelMetadata(
            name=name,
            versions=(str(model.version),),
            platform=PLATFORM,
            inputs=tuple(TensorSpec(n, t, tuple(shape)) for n, t, shape in card.inputs()),
            outputs=(
                TensorSpec("logits", "FP32", (-1, labels)),
                TensorSpec("probabilities", "FP32", (-1, labels)),
                TensorSpec(DECISIONS, "INT64", decisions),
            ),
            parameters={
                "execution_provider": model.provider,
                "task": card.task,
                "labels": orjson.dumps(card.labels).decode(),
                "loss": card.loss,
                "threshold_kind": card.threshold_kind,
            },
        )

    def config(self, name: str, version: str = "") -> dict[str, Any]:
        """The model's configuration in Triton's JSON form (``inference.ModelConfig``)."""
        model = self.model(name, version)
        card = model.card
        labels = card.output_columns
        decisions: dict[str, Any] = {"name": DECISIONS, "data_type": "TYPE_INT64"}
        if card.class_index:  # one index per row: Triton writes [1] reshaped to []
            decisions.update(dims=[1], reshape={"shape": []})
        else:
            decisions.update(dims=[labels])
        config: dict[str, Any] = {
            "name": name,
            "platform": PLATFORM,
            "backend": "onnxruntime",
            "version_policy": {"latest": {"num_versions": 1}},
            "max_batch_size": card.batching.max_batch_size,
            "input": [
                {"name": n, "data_type": config_type(t), "dims": shape[1:]}
                for n, t, shape in card.inputs()
            ],
            "output": [
                {"name": "logits", "data_type": "TYPE_FP32", "dims": [labels]},
                {"name": "probabilities", "data_type": "TYPE_FP32", "dims": [labels]},
                decisions,
            ],
            "instance_group": [
                {
                    "name": name,
                    "count": 1,
                    "kind": "KIND_GPU" if model.provider.startswith("CUDA") else "KIND_CPU",
                }
            ],
            "parameters": {
                key: {"string_value": str(value)}
                for key, value in self.metadata(name, version).parameters.items()
            },
        }
        batcher = self._live(name, version).batcher
        if batcher.batching:
            config["dynamic_batching"] = {
                "max_queue_delay_microseconds": batcher.max_queue_delay_us,
                "preferred_batch_size": [],
                "preserve_ordering": True,
            }
        return config

    def stats(self, name: str = "", version: str = "") -> list[ModelStats]:
        if name:
            lives = [self._live(name, version)]
        else:
            lives = [s.live for _, s in sorted(self._slots.items()) if s.live is not None]
        result = []
        for live in lives:
            batcher = live.batcher.stats()
            result.append(
                ModelStats(
                    name=live.model.name,
                    version=str(live.model.version),
                    last_inference_ms=live.last_inference_ms,
                    inference_count=live.rows,
                    execution_count=batcher.runs,
                    success_count=live.success,
                    success_ns=live.success_ns,
                    fail_count=live.fail,
                    fail_ns=live.fail_ns,
                    queued=batcher.waiting,
                    running=batcher.running,
                    queue_count=batcher.requests,
                    queue_ns=batcher.queue_ns,
                    compute_count=batcher.requests,
                    compute_ns=batcher.compute_ns,
                    batch_rows=batcher.rows,
                    batch_stats=tuple(
                        BatchStat(size, runs, ns)
                        for size, (runs, ns) in sorted(batcher.batch_sizes.items())
                    ),
                )
            )
        return result

    # -- inference ---------------------------------------------------------------------

    def _check_inputs(
        self, model: LoadedModel, inputs: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """The request's inputs as the model runs them, checked against its card: every
        input, its datatype and shape, the same rows in each; numbers finite (a model on
        raw columns takes NaN as a missing cell); BYTES elements UTF-8, as str."""
        expected = model.inputs
        names = [name for name, _, _ in expected]
        for name in inputs:
            if name not in names:
                has = f"one input, {names[0]!r}" if len(names) == 1 else f"the inputs {names}"
                raise InvalidArgument(f"unexpected input {name!r}: model {model.name!r} has {has}")
        checked: dict[str, np.ndarray] = {}
        rows: int | None = None
        for name, want, shape in expected:
            if name not in inputs:
                raise InvalidArgument(f"missing input {name!r} of model {model.name!r}")
            array = inputs[name]
            datatype = datatype_of(array)
            if datatype != want:
                raise InvalidArgument(f"input {name!r}: expected datatype {want}, got {datatype}")
            if array.ndim != len(shape) or any(
                w not in (-1, have) for w, have in zip(shape, array.shape, strict=False)
            ):
                raise InvalidArgument(
                    f"input {name!r}: expected shape {list(shape)}, got {list(array.shape)}"
                )
            if array.shape[0] == 0:
                raise InvalidArgument(f"input {name!r}: expected at least one row, got 0")
            if rows is not None and array.shape[0] != rows:
                raise InvalidArgument(
                    f"input {name!r}: expected {rows} rows, as the other inputs, got "
                    f"{array.shape[0]}"
                )
            rows = array.shape[0]
            if array.size > self.max_elements:
                raise PayloadTooLarge(
                    f"input {name!r}: expected at most {self.max_elements} elements, "
                    f"got {array.size}"
                )
            checked[name] = (
                _strings(name, array) if want == "BYTES" else _finite(name, array, model.card)
            )
        return checked

    @staticmethod
    def _check_outputs(outputs: tuple[RequestedOutput, ...]) -> tuple[RequestedOutput, ...]:
        if not outputs:
            return tuple(RequestedOutput(name) for name in OUTPUT_NAMES)
        seen: set[str] = set()
        for output in outputs:
            if output.name not in OUTPUT_NAMES:
                raise InvalidArgument(
                    f"unknown output {output.name!r}: expected one of {list(OUTPUT_NAMES)}"
                )
            if output.name in seen:
                raise InvalidArgument(f"output {output.name!r}: requested twice")
            seen.add(output.name)
            if output.classification < 0:
                raise InvalidArgument(
                    f"output {output.name!r}: expected classification >= 0, "
                    f"got {output.classification}"
                )
            if output.classification and output.name == DECISIONS:
                raise InvalidArgument(
                    f"output {DECISIONS!r}: classification applies to 'logits' or "
                    "'probabilities', not to decisions"
                )
        return outputs

    async def _run(
        self, live: _Live, inputs: dict[str, np.ndarray], timeout: float | None
    ) -> dict[str, np.ndarray]:
        start = time.perf_counter_ns()
        rows = next(iter(inputs.values())).shape[0]
        try:
            outputs = await live.batcher.infer(
                inputs, timeout=self._timeout if timeout is None else timeout
            )
        except Exception:
            live.fail += 1
            live.fail_ns += time.perf_counter_ns() - start
            raise
        live.success += 1
        live.success_ns += time.perf_counter_ns() - start
        live.rows += rows
        live.last_inference_ms = int(time.time() * 1000)
        return outputs

    async def infer(self, request: InferRequest, *, timeout: float | None = None) -> InferResult:
        """Run one inference request; see the module docstring for the outputs."""
        live = self._live(request.model, request.version)
        model = live.model
        rows = max((a.shape[0] for a in request.inputs.values() if a.ndim), default=0)
        inputs = await _off_loop_if_large(rows, self._check_inputs, model, request.inputs)
        wanted = self._check_outputs(request.outputs)
        outputs = await self._run(live, inputs, timeout)
        result = await _off_loop_if_large(rows, _select_outputs, live, outputs, wanted)
        return InferResult(
            model=model.name, version=str(model.version), id=request.id, outputs=result
        )

    def _rows(self, model: LoadedModel, instances: object) -> dict[str, np.ndarray]:
        """KServe v1 ``instances`` as the model's inputs: feature rows as lists, or objects
        keyed by feature name; for a model on raw columns, objects keyed by column name
        (numbers, strings for categories; null or an absent key for an empty cell)."""
        card = model.card
        if not isinstance(instances, list) or not instances:
            raise InvalidArgument("instances: expected a non-empty list of feature rows")
        names = card.feature_names
        width = len(names) if card.columns else card.inputs()[0][2][1]
        if len(instances) * width > self.max_elements:
            raise PayloadTooLarge(
                f"instances: expected at most {self.max_elements} values, "
                f"got {len(instances) * width}"
            )
        if card.columns:
            return _column_rows(card.columns, instances)
        rows = np.empty((len(instances), width), dtype=np.float32)
        for index, instance in enumerate(instances):
            where = f"instances[{index}]"
            if isinstance(instance, dict):
                missing = [n for n in names if n not in instance]
                extra = sorted(set(instance) - set(names))
                if missing or extra or len(names) != width:
                    raise InvalidArgument(
                        f"{where}: expected the features {names}, "
                        f"missing {missing}, unexpected {extra}"
                    )
                instance = [instance[n] for n in names]
            if not isinstance(instance, list) or len(instance) != width:
                got = len(instance) if isinstance(instance, list) else type(instance).__name__
                raise InvalidArgument(f"{where}: expected a row of {width} numbers, got {got}")
            for column, value in enumerate(instance):
                _check_number(f"{where}[{column}]", value)
            rows[index] = instance
        return {card.inputs()[0][0]: rows}

    async def predict(
        self, name: str, instances: object, *, timeout: float | None = None
    ) -> list[Prediction]:
        """Label names after the learned decision rule, with every label's probability."""
        live = self._live(name)
        model = live.model
        size = len(instances) if isinstance(instances, list) else 0
        inputs = await _off_loop_if_large(size, self._rows, model, instances)
        outputs = await self._run(live, inputs, timeout)
        return await _off_loop_if_large(size, _predictions, live, outputs)


def _scan(repository: ModelRepository) -> dict[str, tuple[int, float] | None]:
    """Each model folder's :func:`_latest`."""
    return {name: _latest(repository, name) for name in repository.names()}


def _latest(repository: ModelRepository, name: str) -> tuple[int, float] | None:
    """A model folder's latest version and its files' newest mtime (None: no version)."""
    versions = repository.versions(name)
    if not versions:
        return None
    return versions[-1], _newest_mtime(repository.root / name / str(versions[-1]))


def _newest_mtime(directory: Path) -> float:
    """The newest modification time of a version folder and its files (0 when unreadable)."""
    try:
        return max([directory.stat().st_mtime, *(p.stat().st_mtime for p in directory.iterdir())])
    except OSError:
        return 0.0


_LARGE_ROWS = 256
"""Requests with more rows than this are parsed and answered in a thread, off the loop."""


async def _off_loop_if_large(rows: int, fn: Callable[..., R], *args: Any) -> R:
    """``fn(*args)``: inline for a few rows, in a thread (off the event loop) for many."""
    if rows <= _LARGE_ROWS:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_number(where: str, value: object, or_else: str = "") -> None:
    """Refuse a JSON value that is not a finite float32 number (``or_else``: what else the
    field takes, for the message, e.g. ``" or null"``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{where}: expected a number{or_else}, got {value!r}")
    if not math.isfinite(value) or abs(value) > _FLOAT32_MAX:
        raise InvalidArgument(f"{where}: expected a finite float32 number{or_else}, got {value!r}")


def _finite(name: str, array: np.ndarray, card: ModelCard) -> np.ndarray:
    """``array`` when its numbers are finite (NaN allowed, as a missing cell, for a model on
    raw columns, whose graph imputes it); else :class:`InvalidArgument` at the first."""
    finite = np.isfinite(array)
    if card.columns:
        finite |= np.isnan(array)
    if not finite.all():
        index = [int(i) for i in np.argwhere(~finite)[0]]
        what = "finite values or NaN (a missing cell)" if card.columns else "finite values"
        raise InvalidArgument(
            f"input {name!r}: expected {what}, got {array[tuple(index)].item()!r} at index {index}"
        )
    return array


def _strings(name: str, array: np.ndarray) -> np.ndarray:
    """A BYTES tensor as str objects (what ONNX Runtime takes), each a category as training
    saw it (:func:`~lossserve.models.card.category`); UTF-8 or refused."""
    out = np.empty(array.shape, dtype=object)
    flat_in, flat_out = array.reshape(-1), out.reshape(-1)
    for index, value in enumerate(flat_in):
        if isinstance(value, str):
            flat_out[index] = category(value)
            continue
        try:
            flat_out[index] = category(bytes(value).decode("utf-8"))
        except UnicodeDecodeError:
            position = [int(i) for i in np.unravel_index(index, array.shape)]
            raise InvalidArgument(
                f"input {name!r}: expected UTF-8 strings, got {bytes(value)[:40]!r} at index "
                f"{position}"
            ) from None
    return out


def _column_rows(columns: Sequence[ColumnSpec], instances: list[Any]) -> dict[str, np.ndarray]:
    """Rows as objects keyed by column name, as a raw-column model's inputs."""
    numbers = [c.name for c in columns if c.kind == "number"]
    categories = [c.name for c in columns if c.kind == "category"]
    known = set(numbers) | set(categories)
    numeric = np.full((len(instances), len(numbers)), np.nan, dtype=np.float32)
    categorical = np.full((len(instances), len(categories)), "", dtype=object)
    for index, instance in enumerate(instances):
        where = f"instances[{index}]"
        if not isinstance(instance, dict):
            raise InvalidArgument(
                f"{where}: expected an object keyed by column name ({sorted(known)}), got "
                f"{type(instance).__name__}"
            )
        extra = sorted(set(instance) - known)
        if extra:
            raise InvalidArgument(
                f"{where}: unexpected columns {extra}; expected some of {sorted(known)}"
            )
        for column, name in enumerate(numbers):
            value = instance.get(name)
            if value is None:
                continue
            _check_number(f"{where}.{name}", value, " or null")
            numeric[index, column] = value
        for column, name in enumerate(categories):
            value = instance.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise InvalidArgument(f"{where}.{name}: expected a string or null, got {value!r}")
            categorical[index, column] = category(value)
    inputs = {NUMERIC_INPUT: numeric} if numbers else {}
    if categories:
        inputs[CATEGORICAL_INPUT] = categorical
    return inputs


def _select_outputs(
    live: _Live, outputs: dict[str, np.ndarray], wanted: tuple[RequestedOutput, ...]
) -> dict[str, np.ndarray]:
    result: dict[str, np.ndarray] = {}
    for output in wanted:
        if output.name == DECISIONS:
            values = live.decide(outputs["logits"])
        else:
            values = outputs[output.name]
        if output.classification:
            values = classify(values, output.classification, live.model.card.output_labels)
        result[output.name] = np.ascontiguousarray(values)
    return result


def _predictions(live: _Live, outputs: dict[str, np.ndarray]) -> list[Prediction]:
    card = live.model.card
    labels = card.labels
    predictions = []
    decisions = live.decide(outputs["logits"])
    every = outputs["probabilities"]
    if card.task == "binary":  # the positive class's column: the negative one's is 1 - p
        every = np.concatenate([1 - every, every], axis=1)
    for decision, probabilities in zip(decisions, every, strict=True):
        if card.class_index:
            chosen = [labels[int(decision)]]
        else:
            chosen = [labels[i] for i in np.flatnonzero(decision)]
        predictions.append(
            Prediction(
                labels=chosen,
                probabilities={
                    label: float(p) for label, p in zip(labels, probabilities, strict=True)
                },
            )
        )
    return predictions
