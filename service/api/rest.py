"""REST transport (FastAPI): decode, call the core, encode. No behaviour lives here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import FastAPI, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.dataplane import POOL, ClassWeightsRequest
from ..core.errors import InvalidArgument, LossServeError
from ..core.offload import by_size
from ..core.state import ServiceState
from ..core.tensors import (
    BinaryReader,
    Encoding,
    bytes_view,
    decode_tensor,
    encode_b64,
    encode_binary_header,
    encode_lists,
)
from ..core.types import (
    EvaluateRequest,
    EvaluateResult,
    LossRequest,
    LossResult,
    ThresholdsRequest,
    ThresholdsResult,
)
from . import oip_wire, wire
from .http import (
    CLIENT_CLOSED_REQUEST,
    HEADER_LENGTH,
    ObserveMiddleware,
    binary_response,
    declared_size,
    error_status,
    held_until_sent,
    json_response,
    read_body,
)
from .http_protocol import WholeRoute
from .oip_rest import DirectRoute, create_oip_routers

__all__ = ["create_app"]

T = TypeVar("T")
log = logging.getLogger("lossserve.http")


def _operation_id(route: APIRoute) -> str:
    return route.name


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Documented error answers: every one is an ``ErrorBody``."""
    return {status: {"model": wire.ErrorBody} for status in statuses}


_json = json_response


def _error(exc: LossServeError) -> Response:
    return _json({"error": exc.to_dict()}, error_status(exc))


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
    """``POST /loss``'s body, checked against :class:`wire.LossRequestBody`'s fields."""
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
    chunks: list[memoryview] = []
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
            chunks.append(bytes_view(array))
    body["device"] = result.device
    if encoding is not Encoding.BINARY:
        return _json(body)
    return binary_response(body, chunks)


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


def _answer_size(result: LossResult) -> int:
    arrays = (result.value, result.grad, result.hessian_diag)
    return sum(a.nbytes for a in arrays if a is not None)


def evaluate_json(result: EvaluateResult) -> dict[str, Any]:
    """``POST /evaluate``'s answer; the confusion stays an array (orjson writes it)."""
    body = {f: getattr(result, f) for f in ("task", "num_samples", "loss")}
    body["confusion"] = result.confusion
    body["per_class"] = [asdict(c) for c in result.per_class]
    body["macro_f1"], body["micro_f1"] = result.macro_f1, result.micro_f1
    body["f1_positive"] = result.f1_positive
    return body


def thresholds_json(result: ThresholdsResult) -> dict[str, Any]:
    return {
        "task": result.task,
        "kind": result.kind,
        "values": result.values.tolist(),
        "before": evaluate_json(result.before),
        "after": evaluate_json(result.after),
    }


class _App(FastAPI):
    """FastAPI, serving its :class:`DirectRoute` routes (OIP inference: the hot path) from
    its ASGI call, with the request ID and metrics of every route; the rest as FastAPI does.
    """

    direct: tuple[DirectRoute, ...] = ()
    whole: tuple[WholeRoute, ...] = ()
    """The ``direct`` routes that also answer bodies read whole by the HTTP protocol
    (:func:`~.http_protocol.http_protocol`)."""
    observed: ASGIApp | None = None
    """``direct`` routes' server, inside :class:`ObserveMiddleware`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.observed is not None:
            for route in self.direct:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    await self.observed(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


async def _serve_direct(scope: Scope, receive: Receive, send: Send) -> None:
    await scope["route"].serve(scope, receive, send)


_DOCS_ASSETS = "/docs/assets"


def _add_docs(app: FastAPI) -> None:
    """``GET /docs``: Swagger UI over the OpenAPI document, every asset served from the
    ``swagger-ui-bundle`` package under ``/docs/assets``."""
    import swagger_ui_bundle

    app.mount(
        _DOCS_ASSETS,
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="docs-assets",
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_DOCS_ASSETS}/favicon-32x32.png",
        )


def create_app(state: ServiceState) -> _App:
    """The FastAPI application over ``state``'s core objects."""
    app = _App(
        title="lossserve",
        version="0.1.0",
        description="Losses, derivatives, evaluation and thresholds for imbalanced classification.",
        # operationId = the route function's name (compute_loss, predict, ...): the names
        # the generated clients give their calls
        generate_unique_id_function=_operation_id,
        # /docs from the Swagger UI that swagger-ui-bundle ships (below), not from a CDN:
        # it works offline and behind egress rules; no ReDoc (a CDN script only)
        docs_url=None,
        redoc_url=None,
    )
    _add_docs(app)
    settings = state.settings
    metrics = state.metrics
    plane = state.plane

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

    app.add_middleware(ObserveMiddleware, metrics=metrics)

    async def body(request: Request, lane: str) -> tuple[dict[str, Any], BinaryReader | None]:
        """Admit the request on ``lane`` (429 at once when it is full), then read its body;
        the ticket is released when the request's answer has been sent."""
        ticket = plane.admit(lane, min(declared_size(request), settings.max_body_bytes))
        request.state.ticket = ticket
        try:
            document, binary = await read_body(
                request,
                max_bytes=settings.max_body_bytes,
                timeout=settings.body_timeout_s,
                ticket=ticket,
                max_values=settings.max_json_values,
                max_json_bytes=settings.max_json_bytes,
            )
        except BaseException:
            ticket.release()
            raise
        return document, None if binary is None else BinaryReader(binary)

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
        is_ready = plane.server_ready()
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
        text = await asyncio.to_thread(generate_latest, metrics.registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

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
                "content": {"application/octet-stream": wire.BINARY_CONTENT},
            },
            **_errors(400, 413, 429, 503, 504),
        },
        openapi_extra=wire.body_schema(wire.LossRequestBody, wire.LOSS_EXAMPLES),
        tags=["losses"],
        summary="Value, gradient and Hessian diagonal of a registry loss",
    )
    async def compute_loss(request: Request) -> Response:
        document, binary = await body(request, POOL)
        # the ticket counts the request until its answer has left
        return await held_until_sent(request.state.ticket, loss_answer(request, document, binary))

    async def loss_answer(
        request: Request, document: dict[str, Any], binary: BinaryReader | None
    ) -> Response:
        loss_request, encoding = await by_size(
            declared_size(request), decode_loss_request, document, binary, settings.max_elements
        )
        request.scope["lossserve.loss"] = loss_request.loss
        result = await _unless_disconnected(request, plane.compute_loss(loss_request))
        if result is None:
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        return await by_size(_answer_size(result), encode_loss_result, result, encoding)

    @app.post(
        "/class-weights",
        response_model=wire.ClassWeightsResponse,
        responses=_errors(400, 413, 429),
        openapi_extra=wire.body_schema(
            wire.ClassWeightsBody, wire.CLASS_WEIGHTS_EXAMPLES, binary=False
        ),
        tags=["losses"],
        summary="Per-class weights from labels or counts",
    )
    async def class_weights(request: Request) -> Response:
        document, binary = await body(request, POOL)
        request.state.ticket.release()  # no worker: computed here, bounded by its cost
        if binary is not None:
            raise InvalidArgument(f"{HEADER_LENGTH}: not supported here; send JSON")
        size = declared_size(request)
        try:
            parsed = await by_size(size, wire.ClassWeightsBody.model_validate, document)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "body"
            raise InvalidArgument(f"{field}: {first['msg']}") from None
        weighting = ClassWeightsRequest(
            strategy=parsed.strategy,
            labels=parsed.labels,
            counts=parsed.counts,
            num_classes=parsed.num_classes,
            beta=parsed.beta,
        )
        weights = await by_size(size, plane.class_weights, weighting)
        return _json({"strategy": parsed.strategy, "weights": weights})

    def _tensors(
        document: dict[str, Any],
        binary: BinaryReader | None,
        names: tuple[str, ...],
        optional: tuple[str, ...],
        body_model: type[Any],
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | None]]:
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
        return required, extra

    @app.post(
        "/evaluate",
        response_model=wire.EvaluateResponse,
        responses=_errors(400, 413, 504),
        openapi_extra=wire.body_schema(wire.EvaluateBody, wire.EVALUATE_EXAMPLES),
        tags=["metrics"],
        summary="Mean loss, confusion counts, per-class and macro/micro F1",
        name="evaluate",
    )
    async def evaluate_route(request: Request) -> Response:
        document, binary = await body(request, POOL)
        try:
            arrays, optional = await by_size(
                declared_size(request),
                _tensors,
                document,
                binary,
                ("logits", "targets"),
                ("thresholds",),
                wire.EvaluateBody,
            )
            loss = _field(document, "loss", str, None)
            params = _field(document, "params", dict, {})
            request.scope["lossserve.loss"] = loss or ""
            evaluation = EvaluateRequest(
                logits=arrays["logits"],
                targets=arrays["targets"],
                loss=loss,
                params=params,
                thresholds=optional["thresholds"],
            )
            result = await _unless_disconnected(request, plane.evaluate(evaluation))
            if result is None:
                return Response(status_code=CLIENT_CLOSED_REQUEST)
            return _json(await by_size(result.confusion.size * 8, evaluate_json, result))
        finally:
            request.state.ticket.release()

    @app.post(
        "/thresholds",
        response_model=wire.ThresholdsResponse,
        responses=_errors(400, 413, 504),
        openapi_extra=wire.body_schema(wire.ThresholdsBody, wire.THRESHOLDS_EXAMPLES),
        tags=["metrics"],
        summary="Per-class thresholds (or multiclass logit offsets) that maximise F-beta",
        name="fit_thresholds",
    )
    async def thresholds_route(request: Request) -> Response:
        document, binary = await body(request, POOL)
        try:
            arrays, _ = await by_size(
                declared_size(request),
                _tensors,
                document,
                binary,
                ("scores", "targets"),
                (),
                wire.ThresholdsBody,
            )
            beta = _field(document, "beta", (int, float), 1.0)
            fit = ThresholdsRequest(scores=arrays["scores"], targets=arrays["targets"], beta=beta)
            result = await _unless_disconnected(request, plane.fit_thresholds(fit))
            if result is None:
                return Response(status_code=CLIENT_CLOSED_REQUEST)
            size = result.before.confusion.size * 16
            return _json(await by_size(size, thresholds_json, result))
        finally:
            request.state.ticket.release()

    routers = create_oip_routers(state)  # /v2 models (OIP) and /models/{name}/predict
    for router in routers:
        app.include_router(router)
    app.direct = tuple(r for router in routers for r in router.routes if isinstance(r, DirectRoute))
    app.observed = ObserveMiddleware(_serve_direct, metrics)
    app.whole = tuple(w for w in (r.whole_route() for r in app.direct) if w is not None)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        # the repository API: Authorization: Bearer <LOSSSERVE_ADMIN_TOKEN>
        schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for model in (
            wire.ClassWeightsBody,
            wire.LossRequestBody,
            wire.EvaluateBody,
            wire.ThresholdsBody,
            wire.PredictBody,
            oip_wire.InferenceRequest,
            oip_wire.RepositoryIndexBody,
            oip_wire.RepositoryModelBody,
            oip_wire.SharedMemoryRegisterBody,
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
