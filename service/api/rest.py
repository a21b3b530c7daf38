"""REST transport (FastAPI): decode, call the core, encode. No behaviour lives here."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import numpy as np
import orjson
from fastapi import Body, FastAPI, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

import losses

from ..core.documents import load_json_object
from ..core.errors import HTTP_STATUS, InvalidArgument, LossServeError, PayloadTooLarge
from ..core.state import ServiceState
from ..core.tensors import (
    BinaryReader,
    Encoding,
    decode_tensor,
    encode_b64,
    encode_binary_header,
    encode_lists,
    to_bytes,
)
from ..core.types import EvaluateRequest, LossRequest, LossResult, ThresholdsRequest
from . import wire
from .oip_rest import create_oip_routers

__all__ = ["create_app"]

T = TypeVar("T")
HEADER_LENGTH = "inference-header-content-length"
log = logging.getLogger("lossserve.http")

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_HEADER_PARAMETER = {
    "name": "Inference-Header-Content-Length",
    "in": "header",
    "required": False,
    "schema": {"type": "integer", "minimum": 0},
    "description": "Binary tensor extension: the length of the JSON header at the start of "
    "the body; the raw little-endian bytes of its binary_data_size tensors follow it, in order.",
}


def _operation_id(route: APIRoute) -> str:
    return route.name


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Documented error answers: every one is an ``ErrorBody``."""
    return {status: {"model": wire.ErrorBody} for status in statuses}


def _body_schema(model: type[Any], examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A hand-parsed body: JSON (``model``) or the binary tensor extension."""
    return {
        "parameters": [_HEADER_PARAMETER],
        "requestBody": {
            "required": True,
            "description": "JSON; or, with Inference-Header-Content-Length, a JSON header "
            "followed by raw tensor bytes (any content type).",
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"},
                    "examples": examples,
                },
                "application/octet-stream": _BINARY,
            },
        },
    }


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _error(exc: LossServeError) -> Response:
    return _json({"error": exc.to_dict()}, HTTP_STATUS[exc.code])


async def read_json_body(request: Request, max_bytes: int) -> tuple[Any, BinaryReader | None]:
    """The JSON header (orjson) and, with the binary extension, a reader over the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"body: expected at most {max_bytes} bytes, got {declared}")
    body = await request.body()
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"body: expected at most {max_bytes} bytes, got {len(body)}")
    header_length = request.headers.get(HEADER_LENGTH)
    binary: BinaryReader | None = None
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise InvalidArgument(
                f"Inference-Header-Content-Length: expected an integer in [0, {len(body)}], "
                f"got {header_length!r}"
            )
        split = int(header_length)
        body, binary = body[:split], BinaryReader(memoryview(body)[split:])
    return load_json_object(body, "body"), binary


def _field(document: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    """``document[name]`` checked against ``kind`` (``True`` is not a number here)."""
    value = document.get(name, default)
    if value is default:
        return value
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(k.__name__ for k in kinds)
        raise InvalidArgument(f"{name}: expected {expected}, got {value!r}")
    return value


_SCORES = ("logits", "scores")


def _decode(
    value: object, field: str, binary: BinaryReader | None, max_elements: int
) -> tuple[np.ndarray, Encoding]:
    """``decode_tensor``; nested lists of logits or scores that are all integral are floats.

    JSON has one number type and many writers (JavaScript's among them) print 1.0 as 1, so
    ``[[1, 0]]`` is as much a batch of logits as ``[[1.0, 0.0]]``.
    """
    array, encoding = decode_tensor(value, field, binary=binary, max_elements=max_elements)
    if encoding is Encoding.LISTS and field in _SCORES and array.dtype.kind in "iu":
        array = array.astype(np.float32)
    return array, encoding


def decode_loss_request(
    document: dict[str, Any], binary: BinaryReader | None, max_elements: int
) -> tuple[LossRequest, Encoding]:
    known = set(wire.LossRequestBody.model_fields)
    unknown = sorted(set(document) - known)
    if unknown:
        raise InvalidArgument(f"{unknown[0]}: unknown field; expected one of {sorted(known)}")
    for required in ("loss", "logits", "targets"):
        if required not in document:
            raise InvalidArgument(f"{required}: required field missing")
    loss = _field(document, "loss", str, None)
    params = _field(document, "params", dict, {})
    reduction = _field(document, "reduction", str, "mean")
    return_grad = _field(document, "return_grad", bool, False)
    return_hessian = _field(document, "return_hessian", bool, False)
    logits, encoding = _decode(document["logits"], "logits", binary, max_elements)
    targets, _ = decode_tensor(
        document["targets"], "targets", binary=binary, max_elements=max_elements
    )
    weight = None
    if document.get("sample_weight") is not None:
        weight, _ = decode_tensor(
            document["sample_weight"], "sample_weight", binary=binary, max_elements=max_elements
        )
    if binary is not None:
        binary.finish()
    request = LossRequest(
        loss=loss,
        params=params,
        logits=logits,
        targets=targets,
        sample_weight=weight,
        reduction=reduction,
        return_grad=return_grad,
        return_hessian=return_hessian,
    )
    return request, encoding


def encode_loss_result(result: LossResult, encoding: Encoding) -> Response:
    tensors = {"grad": result.grad, "hessian_diag": result.hessian_diag}
    body: dict[str, Any] = {"loss": result.loss, "reduction": result.reduction}
    chunks: list[bytes] = []
    value = result.value
    items: list[tuple[str, np.ndarray | None]] = [("value", value), *tensors.items()]
    for name, array in items:
        if array is None:
            body[name] = None
        elif name == "value" and array.ndim == 0:
            body[name] = float(array)
        elif encoding is Encoding.LISTS:
            body[name] = encode_lists(array)
        elif encoding is Encoding.B64:
            body[name] = encode_b64(array)
        else:
            body[name] = encode_binary_header(array)
            chunks.append(to_bytes(array))
    body["device"] = result.device
    if encoding is not Encoding.BINARY:
        return _json(body)
    header = orjson.dumps(body)
    return Response(
        header + b"".join(chunks),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


CLIENT_CLOSED_REQUEST = 499
"""The status logged for a client that went away (nginx's convention); nobody receives it."""


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """Await ``work``; a client that disconnects first cancels it, so its queued job is dropped.

    The body has been read, so the next ASGI message can only be the disconnect.
    """
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    log.info("client disconnected; its request was cancelled", extra={"path": request.url.path})
    return None


def create_app(state: ServiceState) -> FastAPI:
    """The FastAPI application over ``state``'s core objects."""
    app = FastAPI(
        title="lossserve",
        version="0.1.0",
        description="Losses, derivatives, evaluation and thresholds for imbalanced classification.",
        # operationId = the route function's name (compute_loss, predict, ...): the names
        # the generated clients give their calls
        generate_unique_id_function=_operation_id,
    )
    settings = state.settings
    metrics = state.metrics

    @app.exception_handler(LossServeError)
    async def on_error(request: Request, exc: LossServeError) -> Response:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": ["body"], "msg": "invalid"}
        field = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return _error(InvalidArgument(f"{field}: {first['msg']}"))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        code = "NOT_FOUND" if exc.status_code == 404 else "INVALID_ARGUMENT"
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return _json({"error": {"code": code, "message": message, "details": []}}, exc.status_code)

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        start = time.perf_counter()
        declared = request.headers.get("content-length", "")
        try:
            if declared.isdigit() and int(declared) > settings.max_body_bytes:
                response = _error(
                    PayloadTooLarge(
                        f"body: expected at most {settings.max_body_bytes} bytes, got {declared}"
                    )
                )
            else:
                response = await call_next(request)
        except Exception:  # an unexpected bug: a 500, logged, never a crash
            log.exception("unhandled error", extra={"request_id": request_id})
            response = _json(
                {"error": {"code": "INTERNAL", "message": "internal error", "details": []}}, 500
            )
        elapsed = time.perf_counter() - start
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        loss = request.scope.get("lossserve.loss", "")
        metrics.observe(path, loss, response.status_code, elapsed)
        response.headers["X-Request-ID"] = request_id
        log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1e3, 3),
                "loss": loss,
            },
        )
        return response

    @app.get(
        "/v2/health/live",
        response_model=wire.LiveResponse,
        tags=["health"],
        summary="Liveness (Open Inference Protocol v2)",
        name="server_live",
    )
    async def live() -> Response:
        return _json({"live": True})

    @app.get(
        "/v2/health/ready",
        response_model=wire.ReadyResponse,
        responses={
            503: {"model": wire.ReadyResponse, "description": "No live worker, or draining"}
        },
        tags=["health"],
        summary="Readiness (Open Inference Protocol v2): 200 when a worker runs, else 503",
        name="server_ready",
    )
    async def ready() -> Response:
        is_ready = state.ready()
        return _json({"ready": is_ready}, 200 if is_ready else 503)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
        tags=["health"],
        summary="Prometheus metrics: requests, latency, queue depth, worker state",
        name="metrics",
    )
    async def prometheus() -> Response:
        metrics.refresh(state)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/losses",
        response_model=wire.LossListResponse,
        tags=["losses"],
        summary="Every registry loss with its params JSON Schema",
    )
    async def list_losses() -> Response:
        return _json({"losses": [asdict(i) for i in state.engine.list_losses()]})

    @app.get(
        "/losses/{name}",
        response_model=wire.LossInfoBody,
        responses=_errors(404),
        tags=["losses"],
        summary="One registry loss with its params JSON Schema",
    )
    async def describe_loss(
        name: Annotated[
            str, Path(description="A registry name, see GET /losses.", examples=["focal"])
        ],
    ) -> Response:
        return _json(asdict(state.engine.describe(name)))

    @app.post(
        "/loss",
        response_model=wire.LossResponseBody,
        responses={
            200: {
                "description": "JSON; or, for a binary request, a JSON header (its length "
                "in Inference-Header-Content-Length) followed by the raw result tensors",
                "content": {"application/octet-stream": _BINARY},
            },
            **_errors(400, 413, 429, 503, 504),
        },
        openapi_extra=_body_schema(wire.LossRequestBody, wire.LOSS_EXAMPLES),
        tags=["losses"],
        summary="Value, gradient and Hessian diagonal of a registry loss",
    )
    async def compute_loss(request: Request) -> Response:
        document, binary = await read_json_body(request, settings.max_body_bytes)
        loss_request, encoding = decode_loss_request(document, binary, settings.max_elements)
        request.scope["lossserve.loss"] = loss_request.loss
        work = state.engine.compute(loss_request, timeout=settings.request_timeout_s)
        result = await _unless_disconnected(request, work)
        if result is None:
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        return encode_loss_result(result, encoding)

    @app.post(
        "/class-weights",
        response_model=wire.ClassWeightsResponse,
        responses=_errors(400, 413),
        tags=["losses"],
        summary="Per-class weights from labels or counts",
    )
    async def class_weights(
        body: Annotated[wire.ClassWeightsBody, Body(openapi_examples=wire.CLASS_WEIGHTS_EXAMPLES)],
    ) -> Response:
        limit = settings.max_elements
        for name, values in (("labels", body.labels), ("counts", body.counts)):
            if values is not None and len(values) > limit:
                raise PayloadTooLarge(
                    f"{name}: expected at most {limit} elements, got {len(values)}"
                )
        if body.num_classes is not None and body.num_classes > limit:
            raise PayloadTooLarge(f"num_classes: expected at most {limit}, got {body.num_classes}")
        if body.labels and max(body.labels) >= limit:
            raise PayloadTooLarge(
                f"labels: expected class indices below {limit}, got {max(body.labels)}"
            )
        try:
            weights = losses.class_weights(
                body.labels,
                counts=body.counts,
                strategy=body.strategy,
                num_classes=body.num_classes,
                beta=body.beta,
            )
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(str(exc)) from None
        return _json({"strategy": body.strategy, "weights": weights.tolist()})

    async def _tensors(
        request: Request, names: tuple[str, ...], optional: tuple[str, ...], body_model: type[Any]
    ) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray | None]]:
        document, binary = await read_json_body(request, settings.max_body_bytes)
        known = set(body_model.model_fields)
        unknown = sorted(set(document) - known)
        if unknown:
            raise InvalidArgument(f"{unknown[0]}: unknown field; expected one of {sorted(known)}")
        required: dict[str, np.ndarray] = {}
        extra: dict[str, np.ndarray | None] = {}
        for name in names + optional:
            if document.get(name) is None:
                if name in names:
                    raise InvalidArgument(f"{name}: required field missing")
                extra[name] = None
                continue
            array, _ = _decode(document[name], name, binary, settings.max_elements)
            (required if name in names else extra)[name] = array
        if binary is not None:
            binary.finish()
        return document, required, extra

    @app.post(
        "/evaluate",
        response_model=wire.EvaluateResponse,
        responses=_errors(400, 413, 504),
        openapi_extra=_body_schema(wire.EvaluateBody, wire.EVALUATE_EXAMPLES),
        tags=["metrics"],
        summary="Mean loss, confusion counts, per-class and macro/micro F1",
        name="evaluate",
    )
    async def evaluate_route(request: Request) -> Response:
        document, arrays, optional = await _tensors(
            request, ("logits", "targets"), ("thresholds",), wire.EvaluateBody
        )
        loss = _field(document, "loss", str, None)
        params = _field(document, "params", dict, {})
        request.scope["lossserve.loss"] = loss or ""
        result = await state.evaluate(
            EvaluateRequest(
                logits=arrays["logits"],
                targets=arrays["targets"],
                loss=loss,
                params=params,
                thresholds=optional["thresholds"],
            )
        )
        return _json(asdict(result))

    @app.post(
        "/thresholds",
        response_model=wire.ThresholdsResponse,
        responses=_errors(400, 413, 504),
        openapi_extra=_body_schema(wire.ThresholdsBody, wire.THRESHOLDS_EXAMPLES),
        tags=["metrics"],
        summary="Per-class thresholds (or multiclass logit offsets) that maximise F-beta",
        name="fit_thresholds",
    )
    async def thresholds_route(request: Request) -> Response:
        document, arrays, _ = await _tensors(
            request, ("scores", "targets"), (), wire.ThresholdsBody
        )
        beta = _field(document, "beta", (int, float), 1.0)
        result = await state.fit_thresholds(
            ThresholdsRequest(scores=arrays["scores"], targets=arrays["targets"], beta=beta)
        )
        body = asdict(result)
        body["values"] = result.values.tolist()
        return _json(body)

    for router in create_oip_routers(state):  # /v2 models (OIP) and /models/{name}/predict
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (
            wire.LossRequestBody,
            wire.EvaluateBody,
            wire.ThresholdsBody,
            wire.PredictBody,
        ):
            extra = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in extra.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components[model.__name__] = extra
        # Validation errors answer 400 with an ErrorBody (on_validation), never FastAPI's 422.
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
