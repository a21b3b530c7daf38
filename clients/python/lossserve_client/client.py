"""One facade over REST and gRPC: :class:`LossClient`.

``LossClient.rest("http://127.0.0.1:8000")`` calls the REST API through the client that
openapi-python-client generated (:mod:`lossserve_client.openapi`);
``LossClient.grpc("127.0.0.1:50051")`` calls ``lossserve.v1.LossService`` and the Open
Inference Protocol's ``inference.GRPCInferenceService`` through the generated stubs
(:mod:`lossserve_proto`). Both take numpy arrays (or anything ``numpy.asarray``
takes), return the same types (:mod:`lossserve_client.types`) and raise the same
:class:`~lossserve_client.types.LossServeError`.

Large tensors go in the binary encoding: over REST, a request whose tensors exceed
``binary_bytes`` is sent as a JSON header followed by the raw bytes (the Open Inference
Protocol's binary tensor extension) and answered the same way, smaller ones as base64 in
JSON; over gRPC, a request (or its answer) over ``chunk_bytes`` goes over
``ComputeLossChunked`` in pieces of ``chunk_bytes``, smaller ones as one ``ComputeLoss``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType
from typing import Any, Protocol, TypeVar

import grpc
import httpx
import numpy as np
from numpy.typing import ArrayLike

from lossserve_proto.chunks import Assembler, answer_bytes, split
from lossserve_proto.inference import grpc_service_pb2 as oip
from lossserve_proto.inference import grpc_service_pb2_grpc as oip_grpc
from lossserve_proto.lossserve.v1 import loss_service_pb2 as pb
from lossserve_proto.lossserve.v1 import loss_service_pb2_grpc as pb_grpc
from lossserve_proto.tensors import (
    as_array,
    binary_entry,
    bytes_view,
    decode_tensor,
    encode_b64,
    encode_tensor,
    from_json,
)
from lossserve_proto.tensors import to_bytes as tensor_bytes

from ._shared import SharedTensors, loss_call, loss_result
from .openapi import Client as RestApiClient
from .openapi.api.losses import compute_loss as rest_compute_loss
from .openapi.api.losses import list_losses as rest_list_losses
from .openapi.api.metrics import evaluate as rest_evaluate
from .openapi.api.metrics import fit_thresholds as rest_fit_thresholds
from .openapi.api.models import predict as rest_predict
from .openapi.models import (
    ErrorBody,
    EvaluateBody,
    EvaluateResponse,
    LossListResponse,
    LossRequestBody,
    PredictBody,
    PredictResponse,
    ThresholdsBody,
    ThresholdsResponse,
)
from .openapi.types import File
from .types import (
    ClassMetrics,
    EvaluateUpdate,
    LossInfo,
    LossResult,
    LossServeError,
    Metrics,
    Prediction,
    Thresholds,
)

__all__ = [
    "DEFAULT_BINARY_BYTES",
    "DEFAULT_CHUNK_BYTES",
    "GRPC_OPTIONS",
    "RETRY_POLICY",
    "LossClient",
]

DEFAULT_BINARY_BYTES = 1024 * 1024
"""REST: requests whose tensors hold more bytes than this go in the binary encoding."""

DEFAULT_CHUNK_BYTES = 2 * 1024 * 1024
"""gRPC: requests or answers over this many tensor bytes go over ComputeLossChunked."""

RETRY_POLICY: dict[str, Any] = {
    "methodConfig": [
        {
            "name": [
                {"service": "lossserve.v1.LossService"},
                *(
                    {"service": "inference.GRPCInferenceService", "method": method}
                    for method in (
                        "ServerLive",
                        "ServerReady",
                        "ModelReady",
                        "ServerMetadata",
                        "ModelMetadata",
                        "ModelInfer",
                        "ModelConfig",
                        "ModelStatistics",
                    )
                ),
            ],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.05s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}
"""gRPC's own retries for the calls that are pure computations (every one but the model
repository's load/unload): a call that answers ``UNAVAILABLE`` (a replica that stopped under
it, behind a balancer) is sent again, up to 4 attempts in all, before any answer message."""

GRPC_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", 512 * 1024 * 1024),
    ("grpc.max_receive_message_length", 512 * 1024 * 1024),
    ("grpc.enable_retries", 1),
    ("grpc.service_config", json.dumps(RETRY_POLICY)),
    # gRPC keeps at most this much of a call to send it again (its default, 256 KiB, would
    # leave unary calls up to DEFAULT_CHUNK_BYTES without retries); a stream that sent more
    # is not retried
    ("grpc.per_rpc_retry_buffer_size", 4 * DEFAULT_CHUNK_BYTES),
]
"""Channel options: the server's default message limit, and :data:`RETRY_POLICY`."""

HEADER_LENGTH = "Inference-Header-Content-Length"
T = TypeVar("T")
Batch = tuple[ArrayLike, ArrayLike]


class _Transport(Protocol):
    def list_losses(self) -> list[LossInfo]: ...

    def compute_loss(self, request: dict[str, Any], tensors: dict[str, np.ndarray]) -> LossResult:
        """``request``: the loss, params, reduction and flags; ``tensors``: logits, targets
        and sample_weight when given."""
        ...

    def evaluate(
        self, batches: Iterable[dict[str, np.ndarray]], options: dict[str, Any]
    ) -> Iterator[EvaluateUpdate]: ...

    def fit_thresholds(
        self, scores: np.ndarray, targets: np.ndarray, beta: float
    ) -> Thresholds: ...

    def predict(self, model: str, instances: np.ndarray) -> list[Prediction]: ...

    def close(self) -> None: ...


class LossClient:
    """Losses, gradients, evaluation, thresholds and predictions from a lossserve server.

    >>> client = LossClient.rest("http://127.0.0.1:8000")  # doctest: +SKIP
    >>> client.compute_loss("focal", logits, targets, return_grad=True).grad  # doctest: +SKIP

    Use it as a context manager, or call :meth:`close`, to release its connections.
    """

    def __init__(self, transport: _Transport) -> None:
        self._transport = transport

    @classmethod
    def rest(
        cls,
        url: str,
        *,
        timeout: float | None = 60.0,
        binary_bytes: int = DEFAULT_BINARY_BYTES,
        headers: dict[str, str] | None = None,
        shared_memory: bool = False,
    ) -> LossClient:
        """A client of the REST API at ``url`` (e.g. ``http://127.0.0.1:8000``).

        ``shared_memory``: the server is on this host and allows system shared memory
        (``LOSSSERVE_ALLOW_SHARED_MEMORY=true``); ``compute_loss`` then passes its tensors,
        gradient and Hessian through a shared-memory segment of this client's instead of
        the socket (see :mod:`lossserve_client._shared`).
        """
        transport = _Rest(url, timeout=timeout, binary_bytes=binary_bytes, headers=headers)
        if shared_memory:
            transport.share()
        return cls(transport)

    @classmethod
    def grpc(
        cls,
        target: str,
        *,
        timeout: float | None = 60.0,
        stream_timeout: float | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        options: Sequence[tuple[str, Any]] = GRPC_OPTIONS,
        shared_memory: bool = False,
    ) -> LossClient:
        """A client of the gRPC API at ``target`` (e.g. ``127.0.0.1:50051``), insecure.

        ``timeout`` is the deadline of each unary call and of a chunked ``compute_loss``;
        ``stream_timeout`` that of a whole ``evaluate_stream`` (None: as long as it takes).
        ``shared_memory``: as for :meth:`rest`.
        """
        transport = _Grpc(
            target,
            timeout=timeout,
            stream_timeout=stream_timeout,
            chunk_bytes=chunk_bytes,
            options=options,
        )
        if shared_memory:
            transport.share()
        return cls(transport)

    def __enter__(self) -> LossClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    def list_losses(self) -> list[LossInfo]:
        """Every registry loss, with the JSON Schema of its params."""
        return self._transport.list_losses()

    def compute_loss(
        self,
        loss: str,
        logits: ArrayLike,
        targets: ArrayLike,
        *,
        params: dict[str, Any] | None = None,
        sample_weight: ArrayLike | None = None,
        reduction: str = "mean",
        return_grad: bool = False,
        return_hessian: bool = False,
    ) -> LossResult:
        """The value of registry loss ``loss`` and, when asked, its gradient and exact
        Hessian diagonal w.r.t. ``logits``."""
        tensors = {"logits": as_array(logits, "logits"), "targets": as_array(targets, "targets")}
        if sample_weight is not None:
            tensors["sample_weight"] = as_array(sample_weight, "sample_weight")
        request = {
            "loss": loss,
            "params": params or {},
            "reduction": reduction,
            "return_grad": return_grad,
            "return_hessian": return_hessian,
        }
        return self._transport.compute_loss(request, tensors)

    def evaluate_stream(
        self,
        batches: Iterable[Batch],
        *,
        loss: str | None = None,
        params: dict[str, Any] | None = None,
        thresholds: ArrayLike | None = None,
        beta: float = 1.0,
    ) -> Iterator[EvaluateUpdate]:
        """Metrics over ``(logits, targets)`` batches as they come.

        Over gRPC every batch is streamed to ``StreamEvaluate`` as it is drawn and each
        answer (running metrics) is yielded as it arrives; the last update (``final``)
        carries the final metrics and the decision thresholds fitted to maximise F-beta.
        REST has no streaming call: there the batches are gathered and one final update is
        yielded (``POST /evaluate`` and ``POST /thresholds``). ``stream_timeout`` (see
        :meth:`grpc`) bounds the whole stream.
        """
        options = {"loss": loss, "params": params or {}, "beta": beta, "fit_thresholds": True}
        return self._transport.evaluate(_batches(batches, thresholds), options)

    def evaluate(
        self,
        logits: ArrayLike,
        targets: ArrayLike,
        *,
        loss: str | None = None,
        params: dict[str, Any] | None = None,
        thresholds: ArrayLike | None = None,
        batch_size: int | None = None,
    ) -> Metrics:
        """Precision, recall, F1 per class, macro/micro F1, the confusion matrix and the mean
        ``loss`` of one labelled set (streamed in ``batch_size`` rows over gRPC)."""
        logits_array, targets_array = as_array(logits, "logits"), as_array(targets, "targets")
        step = batch_size or max(1, len(logits_array))
        batches = [
            (logits_array[start : start + step], targets_array[start : start + step])
            for start in range(0, max(1, len(logits_array)), step)
        ]
        options = {"loss": loss, "params": params or {}, "beta": 1.0, "fit_thresholds": False}
        return _last(self._transport.evaluate(_batches(batches, thresholds), options)).metrics

    def fit_thresholds(
        self, scores: ArrayLike, targets: ArrayLike, *, beta: float = 1.0
    ) -> Thresholds:
        """Per-class thresholds (binary/multilabel) or logit offsets (multiclass) that
        maximise F-beta on ``scores`` (logits or any monotone scores) and ``targets``."""
        return self._transport.fit_thresholds(
            as_array(scores, "scores"), as_array(targets, "targets"), beta
        )

    def predict(self, model: str, instances: ArrayLike) -> list[Prediction]:
        """Label names after ``model``'s learned decision rule, with every probability, for
        each feature row of ``instances``."""
        rows = np.asarray(instances, dtype=np.float32)
        if rows.ndim != 2:
            raise ValueError(f"instances: expected a 2-D array of feature rows, got {rows.shape}")
        return self._transport.predict(model, rows)


def _batches(
    batches: Iterable[Batch], thresholds: ArrayLike | None
) -> Iterator[dict[str, np.ndarray]]:
    """Each ``(logits, targets)`` batch as wire arrays, with the fixed ``thresholds`` if any,
    drawn as the transport asks for the next one (``thresholds`` is checked now)."""
    fixed = None if thresholds is None else as_array(thresholds, "thresholds")

    def draw() -> Iterator[dict[str, np.ndarray]]:
        for logits, targets in batches:
            batch = {"logits": as_array(logits, "logits"), "targets": as_array(targets, "targets")}
            if fixed is not None:
                batch["thresholds"] = fixed
            yield batch

    return draw()


def _last(updates: Iterator[EvaluateUpdate]) -> EvaluateUpdate:
    final = None
    for update in updates:
        final = update
    if final is None or not final.final:
        raise LossServeError("INTERNAL", "the evaluation ended without a final update", status="")
    return final


# --- decoding the shared answer types ----------------------------------------------------------


def _loss_info(info: Any, params_schema: dict[str, Any]) -> LossInfo:
    """A registry entry from either transport's message (the same field names)."""
    return LossInfo(
        name=info.name,
        tasks=list(info.tasks),
        summary=info.summary,
        formula=info.formula,
        reference=info.reference,
        when_to_use=info.when_to_use,
        sample_separable=info.sample_separable,
        params_schema=params_schema,
    )


def _metrics(body: dict[str, Any]) -> Metrics:
    return Metrics(
        task=body["task"],
        num_samples=int(body["num_samples"]),
        loss=body.get("loss"),
        confusion=[list(map(int, row)) for row in body["confusion"]],
        per_class=[ClassMetrics(**c) for c in body["per_class"]],
        macro_f1=float(body["macro_f1"]),
        micro_f1=float(body["micro_f1"]),
        f1_positive=body.get("f1_positive"),
    )


def _thresholds(body: dict[str, Any]) -> Thresholds:
    return Thresholds(
        task=body["task"],
        kind=body["kind"],
        values=np.asarray(body["values"], dtype=np.float32),
        before=_metrics(body["before"]),
        after=_metrics(body["after"]),
    )


# --- REST --------------------------------------------------------------------------------------


class _Rest:
    """The REST API through the generated client: its request builders (each operation's
    ``_get_kwargs``), its models and its ``httpx`` client.

    The generated ``sync_detailed`` is not used: it parses every documented status as JSON,
    so a proxy's HTML error page, or a binary answer, would escape as ``JSONDecodeError``.
    Here every failure, a transport's included, becomes a :class:`LossServeError`.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float | None,
        binary_bytes: int,
        headers: dict[str, str] | None,
    ) -> None:
        self._api = RestApiClient(
            base_url=url.rstrip("/"),
            timeout=httpx.Timeout(timeout),
            headers=headers or {},
            raise_on_unexpected_status=False,
        )
        self._binary_bytes = binary_bytes
        self._shared: SharedTensors | None = None

    def share(self) -> None:
        """Send ``compute_loss``'s tensors through shared memory from now on."""
        self._shared = SharedTensors(self._register, self._unregister)

    def _register(self, name: str, key: str, byte_size: int) -> None:
        body = {"key": key, "offset": 0, "byte_size": byte_size}
        self._post_oip(f"/v2/systemsharedmemory/region/{name}/register", body)

    def _unregister(self, name: str) -> None:
        self._post_oip(f"/v2/systemsharedmemory/region/{name}/unregister", None)

    def _post_oip(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """POST a JSON body to an Open Inference Protocol route; its JSON answer."""
        try:
            response = self._api.get_httpx_client().post(path, json=body)
        except httpx.HTTPError as exc:
            raise LossServeError("UNAVAILABLE", f"{type(exc).__name__}: {exc}", status=0) from None
        if response.status_code != 200:
            raise _oip_error(response)
        answer: dict[str, Any] = _json_answer(response)
        return answer

    def close(self) -> None:
        try:
            if self._shared is not None:
                self._shared.close()
        finally:
            self._api.get_httpx_client().close()

    def _compute_shared(
        self, request: dict[str, Any], tensors: dict[str, np.ndarray]
    ) -> LossResult:
        """One call through the segment; the caller holds its lock."""
        assert self._shared is not None
        call = loss_call(self._shared, request, tensors)
        region = self._shared.region
        document = {
            "parameters": call.parameters,
            "inputs": [
                {
                    "name": place.name,
                    "datatype": place.datatype,
                    "shape": list(place.shape),
                    "parameters": place.parameters(region),
                }
                for place in call.inputs
            ],
            "outputs": [
                {"name": "loss"},
                *({"name": p.name, "parameters": p.parameters(region)} for p in call.outputs),
            ],
        }
        answer = self._post_oip(f"/v2/models/{call.model}/infer", document)
        loss = answer["outputs"][0]
        value = np.asarray(loss["data"], np.float32).reshape(loss["shape"])
        return LossResult(**loss_result(self._shared, call, request, value))

    def _send(self, operation: ModuleType, *args: Any, **kwargs: Any) -> httpx.Response:
        """The generated ``operation``'s request; its 200 answer, else a LossServeError."""
        try:
            response = self._api.get_httpx_client().request(
                **operation._get_kwargs(*args, **kwargs)
            )
        except httpx.HTTPError as exc:  # refused, reset, timed out
            raise LossServeError("UNAVAILABLE", f"{type(exc).__name__}: {exc}", status=0) from None
        if response.status_code != 200:
            raise _rest_error(response)
        return response

    def _send_tensors(
        self,
        operation: ModuleType,
        body_model: Any,
        document: dict[str, Any],
        tensors: dict[str, np.ndarray],
    ) -> tuple[dict[str, Any], memoryview | None]:
        """``document`` with ``tensors``: base64 in JSON when small, else the binary encoding
        (a JSON header, then the raw bytes in the header's order). Returns the answer's JSON
        and, for a binary answer, the bytes after its header."""
        if sum(t.nbytes for t in tensors.values()) <= self._binary_bytes:
            body = body_model.from_dict(
                {**document, **{name: encode_b64(t) for name, t in tensors.items()}}
            )
            return _json_answer(self._send(operation, body=body)), None
        header = json.dumps({**document, **{n: binary_entry(t) for n, t in tensors.items()}})
        head = header.encode()
        payload = b"".join((head, *(bytes_view(t) for t in tensors.values())))  # one copy
        response = self._send(
            operation,
            body=File(payload=io.BytesIO(payload), mime_type="application/octet-stream"),
            inference_header_content_length=len(head),
        )
        if HEADER_LENGTH not in response.headers:
            return _json_answer(response), None
        length = int(response.headers[HEADER_LENGTH])
        return _json_answer(response, length), memoryview(response.content)[length:]

    def list_losses(self) -> list[LossInfo]:
        body = _parse(LossListResponse, _json_answer(self._send(rest_list_losses)))
        return [_loss_info(info, info.params_schema.to_dict()) for info in body.losses]

    def compute_loss(self, request: dict[str, Any], tensors: dict[str, np.ndarray]) -> LossResult:
        if self._shared is not None:
            with self._shared.lock:  # calls from several threads take turns on the segment
                return self._compute_shared(request, tensors)
        body, binary = self._send_tensors(rest_compute_loss, LossRequestBody, request, tensors)
        arrays: dict[str, np.ndarray | None] = {}
        offset = 0
        for name in ("value", "grad", "hessian_diag"):
            value = body.get(name)
            if value is None:
                arrays[name] = None
            elif isinstance(value, dict) and "binary_data_size" in value and binary is not None:
                size = int(value["binary_data_size"])
                arrays[name] = from_json(value, binary[offset : offset + size])
                offset += size
            else:
                arrays[name] = from_json(value)
        value = arrays["value"]
        if value is None:
            raise LossServeError("INTERNAL", "the answer has no value", status=200)
        return LossResult(
            loss=body["loss"],
            reduction=body["reduction"],
            value=value,
            grad=arrays["grad"],
            hessian_diag=arrays["hessian_diag"],
            device=body["device"],
        )

    def evaluate(
        self, batches: Iterable[dict[str, np.ndarray]], options: dict[str, Any]
    ) -> Iterator[EvaluateUpdate]:
        gathered = list(batches)
        if not gathered:
            raise ValueError("batches: expected at least one (logits, targets) batch, got none")
        tensors = {
            "logits": np.concatenate([b["logits"] for b in gathered]),
            "targets": np.concatenate([b["targets"] for b in gathered]),
        }
        if "thresholds" in gathered[0]:
            tensors["thresholds"] = gathered[0]["thresholds"]
        document: dict[str, Any] = {"params": options["params"]}
        if options["loss"] is not None:
            document["loss"] = options["loss"]
        body, _ = self._send_tensors(rest_evaluate, EvaluateBody, document, tensors)
        metrics = _metrics(_parse(EvaluateResponse, body).to_dict())
        thresholds = None
        if options["fit_thresholds"]:
            thresholds = self.fit_thresholds(tensors["logits"], tensors["targets"], options["beta"])
        yield EvaluateUpdate(
            batches=len(gathered), metrics=metrics, final=True, thresholds=thresholds
        )

    def fit_thresholds(self, scores: np.ndarray, targets: np.ndarray, beta: float) -> Thresholds:
        tensors = {"scores": scores, "targets": targets}
        body, _ = self._send_tensors(rest_fit_thresholds, ThresholdsBody, {"beta": beta}, tensors)
        return _thresholds(_parse(ThresholdsResponse, body).to_dict())

    def predict(self, model: str, instances: np.ndarray) -> list[Prediction]:
        body = PredictBody.from_dict({"instances": instances.tolist()})
        answer = _parse(PredictResponse, _json_answer(self._send(rest_predict, model, body=body)))
        return [
            Prediction(labels=list(p.labels), probabilities=dict(p.probabilities.to_dict()))
            for p in answer.predictions
        ]


def _json_answer(response: httpx.Response, length: int | None = None) -> dict[str, Any]:
    """The JSON object of a 200 answer (its first ``length`` bytes: a binary answer's header)."""
    try:
        body = json.loads(response.content if length is None else response.content[:length])
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.content[:200].decode(errors="replace")
        raise LossServeError(
            "INTERNAL", f"expected a JSON object in the answer, got {text!r}", status=200
        )
    return body


def _parse(model: type[T], body: dict[str, Any]) -> T:
    """``body`` as the generated response ``model``; a mismatch is a LossServeError."""
    try:
        parsed: T = model.from_dict(body)  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError) as exc:
        raise LossServeError(
            "INTERNAL", f"expected a {model.__name__} answer: {exc!r}", status=200
        ) from None
    return parsed


def _rest_error(response: httpx.Response) -> LossServeError:
    """The service's ``{"error": {...}}`` body as a LossServeError; any other body (a proxy's
    page, say) keeps its status, as UNAVAILABLE for a 5xx."""
    status = response.status_code
    try:
        error = ErrorBody.from_dict(json.loads(response.content)).error
        details = [d.to_dict() for d in error.details] if error.details else []
        return LossServeError(error.code, error.message, status=status, details=details)
    except (ValueError, KeyError, TypeError, AttributeError):
        text = response.content.decode(errors="replace")[:500]
        code = "UNAVAILABLE" if status >= 500 else "UNKNOWN"
        return LossServeError(code, f"HTTP {status}: {text}", status=status)


# --- gRPC --------------------------------------------------------------------------------------


_OIP_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "PAYLOAD_TOO_LARGE",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
"""The service's code of each status an Open Inference Protocol route answers."""


def _oip_error(response: httpx.Response) -> LossServeError:
    """The protocol's ``{"error": "message"}`` body (under ``/v2``) as a LossServeError."""
    status = response.status_code
    try:
        message = str(json.loads(response.content)["error"])
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {status}: {response.content.decode(errors='replace')[:500]}"
    return LossServeError(_OIP_CODES.get(status, "UNKNOWN"), message, status=status)


def _set_parameter(parameter: Any, value: Any) -> None:
    """An ``inference.InferParameter`` holding ``value``."""
    if isinstance(value, bool):
        parameter.bool_param = value
    elif isinstance(value, int):
        parameter.int64_param = value
    elif isinstance(value, float):
        parameter.double_param = value
    else:
        parameter.string_param = str(value)


def _grpc_error(error: grpc.RpcError) -> LossServeError:
    """The service's code (trailing metadata ``lossserve-error-code``) and message."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = error.details() if isinstance(error, grpc.Call) else str(error)
    trailing: dict[str, Any] = {}
    if isinstance(error, grpc.Call):
        trailing = {key: value for key, value in error.trailing_metadata() or ()}
    details = trailing.get("lossserve-error-details")
    return LossServeError(
        str(trailing.get("lossserve-error-code", code.name)),
        message or "",
        status=code.name,
        details=json.loads(details) if isinstance(details, str) else None,
    )


def _grpc_metrics(message: pb.EvaluateMetrics) -> Metrics:
    return Metrics(
        task=message.task,
        num_samples=message.num_samples,
        loss=message.loss if message.HasField("loss") else None,
        confusion=[list(row.counts) for row in message.confusion],
        per_class=[
            ClassMetrics(
                label=c.label, support=c.support, precision=c.precision, recall=c.recall, f1=c.f1
            )
            for c in message.per_class
        ],
        macro_f1=message.macro_f1,
        micro_f1=message.micro_f1,
        f1_positive=message.f1_positive if message.HasField("f1_positive") else None,
    )


class _Grpc:
    """``lossserve.v1.LossService`` and ``inference.GRPCInferenceService`` through the
    generated stubs, on one channel."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None,
        stream_timeout: float | None,
        chunk_bytes: int,
        options: Sequence[tuple[str, Any]],
    ) -> None:
        self._stream_timeout = stream_timeout
        self._channel = grpc.insecure_channel(target, options=list(options))
        self._losses = pb_grpc.LossServiceStub(self._channel)
        self._inference = oip_grpc.GRPCInferenceServiceStub(self._channel)
        self._timeout = timeout
        self._chunk_bytes = chunk_bytes
        self._shared: SharedTensors | None = None

    def share(self) -> None:
        """Send ``compute_loss``'s tensors through shared memory from now on."""
        self._shared = SharedTensors(self._register, self._unregister)

    def _register(self, name: str, key: str, byte_size: int) -> None:
        message = oip.SystemSharedMemoryRegisterRequest(name=name, key=key, byte_size=byte_size)
        try:
            self._inference.SystemSharedMemoryRegister(message, timeout=self._timeout)
        except grpc.RpcError as error:
            raise _grpc_error(error) from None

    def _unregister(self, name: str) -> None:
        message = oip.SystemSharedMemoryUnregisterRequest(name=name)
        try:
            self._inference.SystemSharedMemoryUnregister(message, timeout=self._timeout)
        except grpc.RpcError as error:
            raise _grpc_error(error) from None

    def close(self) -> None:
        try:
            if self._shared is not None:
                self._shared.close()
        finally:
            self._channel.close()

    def _compute_shared(
        self, request: dict[str, Any], tensors: dict[str, np.ndarray]
    ) -> LossResult:
        """One call through the segment; the caller holds its lock."""
        assert self._shared is not None
        call = loss_call(self._shared, request, tensors)
        region = self._shared.region
        message = oip.ModelInferRequest(model_name=call.model)
        for key, value in call.parameters.items():
            _set_parameter(message.parameters[key], value)
        for place in call.inputs:
            tensor = message.inputs.add(
                name=place.name, datatype=place.datatype, shape=list(place.shape)
            )
            for key, value in place.parameters(region).items():
                _set_parameter(tensor.parameters[key], value)
        message.outputs.add(name="loss")
        for place in call.outputs:
            output = message.outputs.add(name=place.name)
            for key, value in place.parameters(region).items():
                _set_parameter(output.parameters[key], value)
        try:
            answer = self._inference.ModelInfer(message, timeout=self._timeout)
        except grpc.RpcError as error:
            raise _grpc_error(error) from None
        loss = np.frombuffer(answer.raw_output_contents[0], np.float32)
        value = loss.reshape(tuple(answer.outputs[0].shape))
        return LossResult(**loss_result(self._shared, call, request, value))

    def list_losses(self) -> list[LossInfo]:
        try:
            answer = self._losses.ListLosses(pb.ListLossesRequest(), timeout=self._timeout)
        except grpc.RpcError as error:
            raise _grpc_error(error) from None
        return [_loss_info(info, json.loads(info.params_schema)) for info in answer.losses]

    def compute_loss(self, request: dict[str, Any], tensors: dict[str, np.ndarray]) -> LossResult:
        if self._shared is not None:
            with self._shared.lock:  # calls from several threads take turns on the segment
                return self._compute_shared(request, tensors)
        header = pb.ComputeLossRequest(
            loss=request["loss"],
            params_json=json.dumps(request["params"]) if request["params"] else "",
            reduction=request["reduction"],
            return_grad=request["return_grad"],
            return_hessian=request["return_hessian"],
        )
        answer_size = answer_bytes(
            tensors["logits"].shape,
            return_grad=header.return_grad,
            return_hessian=header.return_hessian,
            reduction=header.reduction,
        )
        sent = sum(t.nbytes for t in tensors.values())
        try:
            if max(sent, answer_size) <= self._chunk_bytes:
                for name, array in tensors.items():
                    getattr(header, name).CopyFrom(encode_tensor(array))
                answer = self._losses.ComputeLoss(header, timeout=self._timeout)
                return self._loss_result(
                    answer,
                    {
                        name: decode_tensor(getattr(answer, name))
                        for name in ("value", "grad", "hessian_diag")
                        if answer.HasField(name)
                    },
                )
            return self._compute_chunked(header, tensors)
        except grpc.RpcError as error:
            raise _grpc_error(error) from None

    def _compute_chunked(
        self, header: pb.ComputeLossRequest, tensors: dict[str, np.ndarray]
    ) -> LossResult:
        def wrap(**part: Any) -> pb.ComputeLossRequestChunk:
            if "header" in part:
                part["response_chunk_bytes"] = self._chunk_bytes
            return pb.ComputeLossRequestChunk(**part)

        chunks = split(header, tensors, self._chunk_bytes, wrap)
        assembler: Assembler[pb.ComputeLossResponse, pb.ComputeLossResponseChunk] = Assembler(
            ("value", "grad", "hessian_diag")
        )
        try:
            for chunk in self._losses.ComputeLossChunked(chunks, timeout=self._timeout):
                assembler.add(chunk)
            answer, arrays = assembler.finish()
        except ValueError as exc:  # the answer's framing, not the caller's input
            raise LossServeError("INTERNAL", f"a malformed answer: {exc}", status="OK") from None
        return self._loss_result(answer, arrays)

    @staticmethod
    def _loss_result(answer: pb.ComputeLossResponse, arrays: dict[str, np.ndarray]) -> LossResult:
        return LossResult(
            loss=answer.loss,
            reduction=answer.reduction,
            value=arrays["value"],
            grad=arrays.get("grad"),
            hessian_diag=arrays.get("hessian_diag"),
            device=answer.device,
        )

    def evaluate(
        self, batches: Iterable[dict[str, np.ndarray]], options: dict[str, Any]
    ) -> Iterator[EvaluateUpdate]:
        params = json.dumps(options["params"]) if options["params"] else ""

        def messages() -> Iterator[pb.EvaluateBatch]:
            for batch in batches:
                message = pb.EvaluateBatch(
                    logits=encode_tensor(batch["logits"]),
                    targets=encode_tensor(batch["targets"]),
                    loss=options["loss"] or "",
                    params_json=params,
                    beta=options["beta"],
                )
                if "thresholds" in batch:
                    message.thresholds.CopyFrom(encode_tensor(batch["thresholds"]))
                yield message

        try:
            for update in self._losses.StreamEvaluate(messages(), timeout=self._stream_timeout):
                thresholds = None
                if update.HasField("thresholds"):
                    t = update.thresholds
                    thresholds = Thresholds(
                        task=t.task,
                        kind=t.kind,
                        values=decode_tensor(t.values),
                        before=_grpc_metrics(t.before),
                        after=_grpc_metrics(t.after),
                    )
                yield EvaluateUpdate(
                    batches=update.batches,
                    metrics=_grpc_metrics(update.metrics),
                    final=update.final,
                    thresholds=thresholds,
                )
        except grpc.RpcError as error:
            raise _grpc_error(error) from None

    def fit_thresholds(self, scores: np.ndarray, targets: np.ndarray, beta: float) -> Thresholds:
        """The final thresholds of a one-batch ``StreamEvaluate`` (gRPC has no unary fit)."""
        batch = {"logits": scores, "targets": targets}
        options: dict[str, Any] = {"loss": None, "params": {}, "beta": beta, "fit_thresholds": True}
        final = _last(self.evaluate([batch], options))
        if final.thresholds is None:
            raise LossServeError("INTERNAL", "the final update has no thresholds", status="OK")
        return final.thresholds

    def _model(self, model: str) -> tuple[str, list[str], str]:
        """The model's input name, labels and task, from its metadata (asked every time: a
        reload may change them)."""
        metadata = self._inference.ModelMetadata(
            oip.ModelMetadataRequest(name=model), timeout=self._timeout
        )
        try:
            labels = json.loads(metadata.parameters["labels"].string_param)
            task = metadata.parameters["task"].string_param
            return metadata.inputs[0].name, [str(label) for label in labels], task
        except (ValueError, TypeError, IndexError) as exc:
            raise LossServeError(
                "INTERNAL",
                f"{model}: expected labels and task in its metadata: {exc!r}",
                status="OK",
            ) from None

    def predict(self, model: str, instances: np.ndarray) -> list[Prediction]:
        try:
            name, labels, task = self._model(model)
            request = oip.ModelInferRequest(
                model_name=model,
                inputs=[
                    oip.ModelInferRequest.InferInputTensor(
                        name=name, datatype="FP32", shape=instances.shape
                    )
                ],
                outputs=[
                    oip.ModelInferRequest.InferRequestedOutputTensor(name="probabilities"),
                    oip.ModelInferRequest.InferRequestedOutputTensor(name="decisions"),
                ],
                raw_input_contents=[tensor_bytes(instances)],
            )
            answer = self._inference.ModelInfer(request, timeout=self._timeout)
        except grpc.RpcError as error:
            raise _grpc_error(error) from None
        outputs = {}
        for output, raw in zip(answer.outputs, answer.raw_output_contents, strict=True):
            kind = np.float32 if output.datatype == "FP32" else np.int64
            outputs[output.name] = np.frombuffer(raw, dtype=np.dtype(kind).newbyteorder("<"))
        probabilities = outputs["probabilities"].reshape(len(instances), -1)
        if task == "binary":  # one column, the positive class (labels[1]): add the negative
            probabilities = np.concatenate([1 - probabilities, probabilities], axis=1)
        decisions = outputs["decisions"].reshape(len(instances), -1)
        predictions = []
        for decision, row in zip(decisions, probabilities, strict=True):
            if task in ("multiclass", "binary"):  # a class index a row
                chosen = [labels[int(decision[0])]]
            else:
                chosen = [labels[i] for i in np.flatnonzero(decision)]
            predictions.append(
                Prediction(
                    labels=chosen,
                    probabilities={label: float(p) for label, p in zip(labels, row, strict=True)},
                )
            )
        return predictions
