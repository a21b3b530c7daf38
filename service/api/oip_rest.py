"""Open Inference Protocol v2 over REST, and ``POST /models/{name}/predict``; translation only.

The routes decode JSON (and the binary tensor extension) into the domain types of
:mod:`lossserve.models.engine`, call the state's :class:`~lossserve.core.dataplane.DataPlane`
(the repository API: its :class:`~lossserve.models.admin.RepositoryAdmin`), and encode the
answers. Under ``/v2`` every error answers the protocol's
``{"error": "message"}`` with the status of its transport-neutral code (400 bad input, 401 /
403 for the repository API, 404 unknown model or version, 429 full queue), so that
tritonclient and other OIP clients read it; ``/models/{name}/predict`` is the project's own
JSON API and answers the project's structured error body.

The binary tensor extension: a request whose ``Inference-Header-Content-Length`` header is
set carries that many bytes of JSON, then the raw bytes of every input that has a
``binary_data_size`` parameter, in the order of ``inputs``. An output is answered in binary
when its ``binary_data`` parameter is true, or, without one, when the request's
``binary_data_output`` parameter is; the response then carries the JSON header (its length
in ``Inference-Header-Content-Length``) followed by those outputs' bytes. Request bodies
compressed with ``Content-Encoding: gzip`` or ``deflate`` are accepted.

``GET /v2/models/{m}[/versions/{v}]/ready`` answers 200 ``{"name", "ready": true}`` when
that model (and version) is served, 503 ``{"name", "ready": false}`` when the model is known
but not served (unloaded, failed to load, another version), and 404 for an unknown model.

The repository API (``/v2/repository/...``) needs ``Authorization: Bearer
<LOSSSERVE_ADMIN_TOKEN>`` (else 401); without that setting it is off and answers 403.

These routes are in the OpenAPI document (:mod:`.oip_wire`'s models, tag ``inference``, and
``repository``), so that the generated clients have typed calls; the tritonclient contract
tests hold them to the protocol.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from enum import Enum
from importlib import metadata
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from ..core.admission import Ticket
from ..core.dataplane import model_lane
from ..core.documents import ascii_count
from ..core.errors import ErrorCode, InvalidArgument, LossServeError
from ..core.offload import by_size
from ..core.shm import SharedInput, shared_parameters, shared_ref
from ..core.state import ServiceState
from ..models.engine import (
    OUTPUT_NAMES,
    RESERVED_PARAMETERS,
    InferRequest,
    InferResult,
    ModelStats,
    Prediction,
    RequestedOutput,
)
from ..models.oip import (
    check_datatype,
    datatype_of,
    decode_json,
    decode_raw,
    decode_shape,
    encode_json,
    raw_view,
)
from ..settings import Settings
from . import oip_wire, wire
from .http import (
    HEADER_LENGTH,
    binary_response,
    declared_size,
    error_status,
    held_until_sent,
    json_response,
    read_body,
    split_body,
)
from .http_protocol import WholeBody, WholeRoute
from .memo import Memo
from .templates import Template, template_of

__all__ = [
    "EXTENSIONS",
    "HEADER_LENGTH",
    "SERVER_NAME",
    "DirectRoute",
    "OIPRoute",
    "OutputEncoding",
    "create_oip_routers",
    "decode_infer_request",
    "encode_infer_result",
    "extensions",
    "stats_json",
]

SERVER_NAME = "lossserve"
EXTENSIONS = (
    "binary_tensor_data",
    "classification",
    "model_configuration",
    "model_repository",
    "parameters",
    "statistics",
)
"""The protocol extensions served (Triton's names), REST and gRPC alike."""

T = TypeVar("T")

# the documented bodies' fields (oip_wire), the only ones a request may carry
_INFER_FIELDS = tuple(oip_wire.InferenceRequest.model_fields)
_INPUT_FIELDS = tuple(oip_wire.RequestInput.model_fields)
_OUTPUT_FIELDS = tuple(oip_wire.RequestOutput.model_fields)


def server_version() -> str:
    """The installed package's version."""
    try:
        return metadata.version("lossserve")
    except metadata.PackageNotFoundError:  # a checkout that is not installed
        return "0+unknown"


_json = json_response


def oip_error(exc: LossServeError) -> Response:
    """The protocol's error body; a 401 also tells the scheme it wants."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.code is ErrorCode.UNAUTHENTICATED else None
    return _json({"error": exc.message}, error_status(exc), headers)


class OIPRoute(APIRoute):
    """A route whose errors answer ``{"error": "message"}``: one handler for all of /v2."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LossServeError as exc:
                return oip_error(exc)
            except RequestValidationError as exc:
                errors = exc.errors()
                first = errors[0] if errors else {"loc": ["request"], "msg": "invalid"}
                where = ".".join(str(p) for p in first["loc"])
                return oip_error(InvalidArgument(f"{where}: {first['msg']}"))

        return route


class DirectRoute(OIPRoute):
    """An OIP route the app may serve straight from its ASGI call (:meth:`serve`), without
    FastAPI's request machinery (middleware stack, dependency solving, validation: about
    half the CPU of a small inference). Its endpoint takes the ``Request`` and its path
    parameters, as strings, and nothing else; through FastAPI it answers the same.

    ``whole``, when set, answers the same requests from a body read whole by the HTTP
    protocol (:class:`~.http_protocol.WholeRoute`): small bodies skip ASGI altogether."""

    whole: WholeBody | None = None

    def whole_route(self) -> WholeRoute | None:
        """This route for the HTTP protocol, when it answers bodies read whole."""
        if self.whole is None:
            return None
        pattern = re.compile(self.path_regex.pattern.encode())
        return WholeRoute(self.path, pattern, self.whole, oip_error)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a request this route matched (``scope`` holds its ``path_params``)."""
        try:
            response = await self.endpoint(Request(scope, receive), **scope["path_params"])
        except LossServeError as exc:
            response = oip_error(exc)
        await response(scope, receive, send)


# -- the body ----------------------------------------------------------------------------


async def _body(
    request: Request, settings: Settings, ticket: Ticket | None = None
) -> tuple[dict[str, Any], memoryview | None]:
    """The JSON document and the binary bytes after it (gzip and deflate accepted)."""
    return await read_body(
        request,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout_s,
        ticket=ticket,
        compressed=True,
        max_values=settings.max_json_values,
        max_json_bytes=settings.max_json_bytes,
    )


def _known(document: dict[str, Any], fields: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(document) - set(fields))
    if unknown:
        raise InvalidArgument(f"{where}{unknown[0]}: unknown field; expected one of {list(fields)}")


def _parameters(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}parameters: expected an object, got {value!r}")
    return value


def _flag(parameters: dict[str, Any], name: str, where: str) -> bool | None:
    value = parameters.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidArgument(f"{where}parameters.{name}: expected true or false, got {value!r}")
    return value


def _count(parameters: dict[str, Any], where: str) -> int:
    """Triton's ``classification`` (or ``class_count``) output parameter."""
    value = parameters.get("classification", parameters.get("class_count", 0))
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(
            f"{where}parameters.classification: expected a non-negative integer, got {value!r}"
        )
    return value


@dataclass(frozen=True)
class OutputEncoding:
    """Which outputs a response carries as binary data."""

    default: bool = False
    """The request's ``binary_data_output``: for outputs without a ``binary_data`` of their own."""
    outputs: dict[str, bool] = field(default_factory=dict)
    """The ``binary_data`` parameter of each requested output that has one."""

    def binary(self, name: str) -> bool:
        return self.outputs.get(name, self.default)


def decode_infer_request(
    document: dict[str, Any],
    binary: memoryview | None,
    *,
    model: str,
    version: str,
    max_elements: int,
) -> tuple[InferRequest, OutputEncoding]:
    """An inference request, and how to encode its outputs."""
    _known(document, _INFER_FIELDS, "")
    request_id = document.get("id", "")
    if not isinstance(request_id, str):
        raise InvalidArgument(f"id: expected a string, got {request_id!r}")
    parameters = _parameters(document.get("parameters"), "")
    binary_default = bool(_flag(parameters, "binary_data_output", ""))
    entries = document.get("inputs")
    if not isinstance(entries, list) or not entries:
        raise InvalidArgument("inputs: expected a non-empty list of input tensors")
    inputs: dict[str, np.ndarray] = {}
    shared: dict[str, SharedInput] = {}
    offset = 0
    for index, entry in enumerate(entries):
        where = f"inputs[{index}]."
        if not isinstance(entry, dict):
            raise InvalidArgument(f"inputs[{index}]: expected an object, got {entry!r}")
        _known(entry, _INPUT_FIELDS, where)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"{where}name: expected a non-empty string, got {name!r}")
        if name in inputs or name in shared:
            raise InvalidArgument(f"input {name!r}: given twice")
        label = f"input {name!r}"
        datatype = entry.get("datatype")
        shape = decode_shape(entry.get("shape"), f"{label} shape", max_elements)
        in_parameters = _parameters(entry.get("parameters"), where)
        size = in_parameters.get("binary_data_size")
        ref = shared_ref(in_parameters, f"{label}: parameters.")
        if ref is not None:
            if size is not None or "data" in entry:
                raise InvalidArgument(
                    f"{label}: expected one of data, binary_data_size and "
                    "shared_memory_region, got more"
                )
            shared[name] = SharedInput(ref, check_datatype(datatype, label), shape)
        elif size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise InvalidArgument(
                    f"{label}: binary_data_size: expected a non-negative integer, got {size!r}"
                )
            if binary is None:
                raise InvalidArgument(f"{label}: binary_data_size needs the {HEADER_LENGTH} header")
            if "data" in entry:
                raise InvalidArgument(
                    f"{label}: expected either data or binary_data_size, not both"
                )
            if offset + size > len(binary):
                raise InvalidArgument(
                    f"{label}: binary_data_size is {size}, only {len(binary) - offset} bytes "
                    "are left after the header"
                )
            inputs[name] = decode_raw(binary[offset : offset + size], str(datatype), shape, label)
            offset += size
        elif "data" in entry:
            inputs[name] = decode_json(entry["data"], str(datatype), shape, label)
        else:
            raise InvalidArgument(f"{label}: expected data or a binary_data_size parameter")
    if binary is not None and offset != len(binary):
        raise InvalidArgument(
            f"body: the binary_data_size of the inputs add up to {offset} bytes, "
            f"{len(binary)} follow the header"
        )
    outputs = []
    per_output: dict[str, bool] = {}
    requested = document.get("outputs")
    if requested is not None and not isinstance(requested, list):
        raise InvalidArgument(f"outputs: expected a list, got {requested!r}")
    for index, entry in enumerate(requested or ()):
        where = f"outputs[{index}]."
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidArgument(
                f"outputs[{index}]: expected an object with a name, got {entry!r}"
            )
        _known(entry, _OUTPUT_FIELDS, where)
        out_parameters = _parameters(entry.get("parameters"), where)
        place = shared_ref(out_parameters, f"output {entry['name']!r}: parameters.")
        outputs.append(RequestedOutput(entry["name"], _count(out_parameters, where), place))
        as_binary = _flag(out_parameters, "binary_data", where)
        if as_binary is not None:
            per_output[entry["name"]] = as_binary
    request = InferRequest(
        model=model,
        version=version,
        inputs=inputs,
        outputs=tuple(outputs),
        id=request_id,
        parameters={k: v for k, v in parameters.items() if k not in RESERVED_PARAMETERS},
        shared=shared,
    )
    return request, OutputEncoding(binary_default, per_output)


class HeaderCache:
    """Requests decoded from their binary-extension headers, by model, version, header and
    body length (:mod:`.templates`): kept only when every input is numeric and sent as
    binary data. At most ``size`` headers of at most ``max_header`` bytes."""

    def __init__(self, size: int = 256, max_header: int = 4096) -> None:
        self._max_header = max_header
        self._kept: Memo[tuple[str, str, int, bytes], tuple[Template, OutputEncoding]] = Memo(size)

    def get(
        self, body: bytes, header_length: str | None, model: str, version: str
    ) -> tuple[InferRequest, OutputEncoding] | None:
        """The request of ``body`` when its header was decoded before, else None."""
        split = ascii_count(header_length) if header_length is not None else None
        if split is None or split > min(len(body), self._max_header):
            return None
        kept = self._kept.get((model, version, len(body), body[:split]))
        if kept is None:
            return None
        template, encoding = kept
        return template.request_of((body,)), encoding

    def put(
        self,
        body: bytes,
        document: dict[str, Any],
        split: int,
        decoded: tuple[InferRequest, OutputEncoding],
    ) -> None:
        """Keep ``body``'s decoded header (``split`` bytes long), when it decides it all."""
        request, encoding = decoded
        if split > self._max_header or any("data" in entry for entry in document["inputs"]):
            return
        places = []  # every tensor in the body, one after the other from the header's end
        offset = split
        for array in request.inputs.values():
            places.append((0, offset))
            offset += array.nbytes
        template = template_of(request, places)
        if template is not None:
            key = (request.model, request.version, len(body), body[:split])
            self._kept.put(key, (template, encoding))


def encode_infer_result(result: InferResult, encoding: OutputEncoding) -> Response:
    """JSON, or the JSON header then the binary outputs' bytes."""
    header: dict[str, Any] = {"model_name": result.model, "model_version": result.version}
    if result.id:
        header["id"] = result.id
    entries = []
    chunks = []
    for name, array in result.outputs.items():
        entry: dict[str, Any] = {
            "name": name,
            "datatype": datatype_of(array),
            "shape": list(array.shape),
        }
        place = result.shared.get(name)
        if place is not None:
            entry["parameters"] = shared_parameters(place)
        elif encoding.binary(name):
            raw = memoryview(raw_view(array))
            entry["parameters"] = {"binary_data_size": raw.nbytes}
            chunks.append(raw)
        else:
            entry["data"] = encode_json(array)
        entries.append(entry)
    header["outputs"] = entries
    if not chunks:
        return _json(header)
    return binary_response(header, chunks)


def stats_json(stats: list[ModelStats]) -> dict[str, Any]:
    """Triton's statistics extension body."""

    def duration(count: int, ns: int) -> dict[str, int]:
        return {"count": count, "ns": ns}

    return {
        "model_stats": [
            {
                "name": s.name,
                "version": s.version,
                "last_inference": s.last_inference_ms,
                "inference_count": s.inference_count,
                "execution_count": s.execution_count,
                "inference_stats": {
                    "success": duration(s.success_count, s.success_ns),
                    "fail": duration(s.fail_count, s.fail_ns),
                    "queue": duration(s.queue_count, s.queue_ns),
                    "compute_input": duration(0, 0),
                    "compute_infer": duration(s.compute_count, s.compute_ns),
                    "compute_output": duration(0, 0),
                },
                "batch_stats": [
                    {
                        "batch_size": b.batch_size,
                        "compute_input": duration(0, 0),
                        "compute_infer": duration(b.count, b.ns),
                        "compute_output": duration(0, 0),
                    }
                    for b in s.batch_stats
                ],
            }
            for s in stats
        ]
    }


# -- the routes --------------------------------------------------------------------------

ModelHandler = Callable[[Request, str, str], Coroutine[Any, Any, Response]]
"""A per-model route's endpoint: the request, the model's name and version ("" for latest)."""


def _oip_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Documented error answers under /v2: every one is the protocol's ``{"error"}`` body."""
    return {status: {"model": oip_wire.OIPError} for status in statuses}


def _documented(model: type[Any] | None, *statuses: int) -> dict[int | str, dict[str, Any]]:
    """A /v2 route's documented answers: ``model`` (an object when None), then its errors."""
    any_object = {"application/json": {"schema": {"type": "object"}}}
    answer = {"model": model} if model else {"content": any_object}
    return {200: answer, **_oip_errors(*statuses)}


def _with_body(
    options: dict[str, Any], model: type[Any], examples: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Route options plus an optional JSON body (``model``) that the endpoint parses itself."""
    body = wire.body_schema(model, examples, binary=False, required=False)
    return {**options, "openapi_extra": {**options.get("openapi_extra", {}), **body}}


def _add_model_routes(
    router: APIRouter, path: str, handler: ModelHandler, name: str, method: str, **options: Any
) -> None:
    """``handler`` at ``/v2/models/{model_name}<path>`` (the latest version) and at
    ``/v2/models/{model_name}/versions/{model_version}<path>``, named ``model_<name>`` and
    ``model_version_<name>`` (the operation ids)."""

    async def latest(request: Request, model_name: str) -> Response:
        return await handler(request, model_name, "")

    async def versioned(request: Request, model_name: str, model_version: str) -> Response:
        return await handler(request, model_name, model_version)

    base = "/v2/models/{model_name}"
    endpoints: list[tuple[str, Callable[..., Any], str]] = [
        ("", latest, f"model_{name}"),
        ("/versions/{model_version}", versioned, f"model_version_{name}"),
    ]
    for suffix, endpoint, operation in endpoints:
        router.add_api_route(
            base + suffix + path, endpoint, methods=[method], name=operation, **options
        )


_MANY_ROWS = 256
"""Answers with more rows than this are built in a thread, off the loop."""


def extensions(settings: Settings) -> list[str]:
    """The extensions this server serves: :data:`EXTENSIONS`, and system shared memory
    where it is allowed."""
    return [*EXTENSIONS, "system_shared_memory"] if settings.allow_shared_memory else [*EXTENSIONS]


_SHM_FIELDS = tuple(oip_wire.SharedMemoryRegisterBody.model_fields)


def _add_shared_memory_routes(router: APIRouter, state: ServiceState) -> None:
    """Triton's system shared memory extension: status, register and unregister."""
    regions, settings = state.regions, state.settings
    tags: list[str | Enum] = ["shared memory"]
    listed = {200: {"model": list[oip_wire.SharedMemoryRegion]}, **_oip_errors(400, 403, 404)}
    done = _documented(oip_wire.RepositoryResponse, 400, 403, 413)

    def status(name: str = "") -> Response:
        return _json([asdict(region) for region in regions.status(name)])

    @router.get("/v2/systemsharedmemory/status", responses=listed, tags=tags)
    async def shared_memory_status() -> Response:
        return status()

    @router.get("/v2/systemsharedmemory/region/{region_name}/status", responses=listed, tags=tags)
    async def shared_memory_region_status(region_name: str) -> Response:
        return status(region_name)

    @router.post(
        "/v2/systemsharedmemory/region/{region_name}/register",
        responses=done,
        tags=tags,
        openapi_extra=wire.body_schema(
            oip_wire.SharedMemoryRegisterBody, oip_wire.SHM_EXAMPLES, binary=False
        ),
    )
    async def shared_memory_register(request: Request, region_name: str) -> Response:
        regions.check()  # PermissionDenied before the body is read
        document, _ = await _body(request, settings)
        _known(document, _SHM_FIELDS, "")
        if "key" not in document or "byte_size" not in document:
            raise InvalidArgument("body: expected the fields key and byte_size (and offset)")
        regions.register(
            region_name, document["key"], document.get("offset", 0), document["byte_size"]
        )
        return _json({})

    @router.post("/v2/systemsharedmemory/unregister", responses=done, tags=tags)
    async def shared_memory_unregister_all() -> Response:
        regions.unregister()
        return _json({})

    @router.post(
        "/v2/systemsharedmemory/region/{region_name}/unregister", responses=done, tags=tags
    )
    async def shared_memory_unregister(region_name: str) -> Response:
        regions.unregister(region_name)
        return _json({})


def _predictions_json(predictions: list[Prediction]) -> dict[str, Any]:
    return {"predictions": [asdict(p) for p in predictions]}


def create_oip_routers(state: ServiceState) -> list[APIRouter]:
    """The ``/v2`` router (protocol errors) and the predict router (the app's errors)."""
    admin = state.admin
    plane = state.plane
    settings = state.settings
    v2 = APIRouter(route_class=OIPRoute, tags=["inference"])

    @v2.get("/v2", responses=_documented(oip_wire.ServerMetadataResponse))
    async def server_metadata() -> Response:
        return _json(
            {"name": SERVER_NAME, "version": server_version(), "extensions": extensions(settings)}
        )

    @v2.get("/v2/models/stats", responses=_documented(oip_wire.ModelStatisticsResponse))
    async def all_model_stats() -> Response:
        return _json(stats_json(plane.model_stats()))

    async def metadata(_: Request, model_name: str, model_version: str) -> Response:
        found = plane.model_metadata(model_name, model_version)
        body = asdict(found)
        for key in ("inputs", "outputs"):
            for tensor in body[key]:
                tensor["shape"] = list(tensor["shape"])
        body["versions"] = list(found.versions)
        return _json(body)

    async def ready(_: Request, model_name: str, model_version: str) -> Response:
        ready = plane.model_ready(model_name, model_version)
        return _json({"name": model_name, "ready": ready}, 200 if ready else 503)

    async def config(_: Request, model_name: str, model_version: str) -> Response:
        return _json(plane.model_config(model_name, model_version))

    async def stats(_: Request, model_name: str, model_version: str) -> Response:
        return _json(stats_json(plane.model_stats(model_name, model_version)))

    async def answer_infer(
        document: dict[str, Any],
        binary: memoryview | None,
        size: int,
        model_name: str,
        model_version: str,
    ) -> Response:
        infer_request, encoding = await by_size(
            size,
            decode_infer_request,
            document,
            binary,
            model=model_name,
            version=model_version,
            max_elements=settings.max_elements,
        )
        return await answer_decoded(infer_request, encoding)

    async def answer_decoded(infer_request: InferRequest, encoding: OutputEncoding) -> Response:
        names = [o.name for o in infer_request.outputs if o.shared is None]
        if not infer_request.outputs:
            names = list(OUTPUT_NAMES)
        plane.check_json_answer(infer_request, {n for n in names if not encoding.binary(n)})
        result = await plane.infer(infer_request)
        answer = sum(a.size for a in result.outputs.values()) * 8
        return await by_size(answer, encode_infer_result, result, encoding)

    async def infer(request: Request, model_name: str, model_version: str) -> Response:
        ticket = plane.admit(model_lane(model_name), declared_size(request))
        # the ticket counts the request until its answer has left
        answer = read_and_infer(request, ticket, model_name, model_version)
        return await held_until_sent(ticket, answer)

    async def read_and_infer(
        request: Request, ticket: Ticket, model_name: str, model_version: str
    ) -> Response:
        document, binary = await _body(request, settings, ticket)
        size = len(binary) if binary is not None else declared_size(request)
        return await answer_infer(document, binary, size, model_name, model_version)

    headers = HeaderCache()

    async def infer_whole(
        body: bytes, header_length: str | None, params: dict[str, str]
    ) -> Response:
        """``infer`` for a body the HTTP protocol read whole (:mod:`.http_protocol`), its
        binary-extension header decoded once (:class:`HeaderCache`)."""
        model_name = params["model_name"]
        version = params.get("model_version", "")
        try:
            with plane.admit(model_lane(model_name), len(body)):
                decoded = headers.get(body, header_length, model_name, version)
                if decoded is None:
                    document, binary = await split_body(
                        body, header_length, settings.max_json_values, settings.max_json_bytes
                    )
                    decoded = decode_infer_request(
                        document,
                        binary,
                        model=model_name,
                        version=version,
                        max_elements=settings.max_elements,
                    )
                    if binary is not None:
                        headers.put(body, document, len(body) - len(binary), decoded)
                return await answer_decoded(*decoded)
        except LossServeError as exc:
            return oip_error(exc)

    ready_answer = {"model": oip_wire.ModelReadyResponse}
    per_model: list[tuple[str, ModelHandler, str, dict[int | str, dict[str, Any]]]] = [
        ("", metadata, "metadata", _documented(oip_wire.ModelMetadataResponse, 400, 404, 503)),
        ("/ready", ready, "ready", {200: ready_answer, 503: ready_answer, **_oip_errors(400, 404)}),
        ("/config", config, "config", _documented(None, 400, 404, 503)),
        ("/stats", stats, "stats", _documented(oip_wire.ModelStatisticsResponse, 400, 404)),
    ]
    for path, handler, name, responses in per_model:
        _add_model_routes(v2, path, handler, name, "GET", responses=responses)
    inferred = _documented(oip_wire.InferenceResponse, 400, 404, 413, 429, 503, 504)
    inferred[200] |= {
        "description": "JSON; or, where an output is asked for as binary data, a JSON header "
        "(its length in Inference-Header-Content-Length) followed by the raw bytes of those "
        "outputs",
        "content": {"application/octet-stream": wire.BINARY_CONTENT},
    }
    _add_model_routes(
        v2,
        "/infer",
        infer,
        "infer",
        "POST",
        route_class_override=DirectRoute,
        responses=inferred,
        openapi_extra=wire.body_schema(oip_wire.InferenceRequest, oip_wire.INFER_EXAMPLES),
    )
    for route in v2.routes:
        if isinstance(route, DirectRoute):
            route.whole = infer_whole

    def authorization(request: Request) -> str | None:
        return request.headers.get("authorization")

    repository = {
        "tags": ["repository"],
        "openapi_extra": {"security": [{"bearer": []}]},
    }

    async def repository_index(request: Request) -> Response:
        admin.authorize(authorization(request))
        document, _ = await _body(request, settings)
        ready = _flag(document, "ready", "") or False
        index = admin.index(authorization(request), ready_only=ready)
        return _json([asdict(entry) for entry in index])

    v2.add_api_route(
        "/v2/repository/index",
        repository_index,
        methods=["POST"],
        responses={
            200: {"model": list[oip_wire.RepositoryIndexEntry]},
            **_oip_errors(400, 401, 403, 413),
        },
        **_with_body(repository, oip_wire.RepositoryIndexBody, oip_wire.INDEX_EXAMPLES),
    )
    # Triton answers GET too; the protocol documents POST
    v2.add_api_route(
        "/v2/repository/index",
        repository_index,
        methods=["GET"],
        include_in_schema=False,
        name="repository_index_get",
    )

    async def _parameters_of(request: Request) -> list[str]:
        document, _ = await _body(request, settings)
        return list(_parameters(document.get("parameters"), ""))

    model_change = _with_body(repository, oip_wire.RepositoryModelBody, oip_wire.MODEL_EXAMPLES)
    model_change_errors = _documented(oip_wire.RepositoryResponse, 400, 401, 403, 404, 413, 503)

    @v2.post(
        "/v2/repository/models/{model_name}/load", responses=model_change_errors, **model_change
    )
    async def repository_model_load(request: Request, model_name: str) -> Response:
        admin.authorize(authorization(request))  # before the body is read
        parameters = await _parameters_of(request)
        await admin.load(authorization(request), model_name, parameters)
        return _json({})

    @v2.post(
        "/v2/repository/models/{model_name}/unload", responses=model_change_errors, **model_change
    )
    async def repository_model_unload(request: Request, model_name: str) -> Response:
        admin.authorize(authorization(request))
        parameters = await _parameters_of(request)
        await admin.unload(authorization(request), model_name, parameters)
        return _json({})

    _add_shared_memory_routes(v2, state)
    predict_router = APIRouter()

    @predict_router.post(
        "/models/{model_name}/predict",
        response_model=wire.PredictResponse,
        responses={status: {"model": wire.ErrorBody} for status in (400, 404, 413, 429, 503, 504)},
        openapi_extra=wire.body_schema(wire.PredictBody, wire.PREDICT_EXAMPLES, binary=False),
        tags=["models"],
        summary="Label names after the model's learned thresholds, with every probability",
    )
    async def predict(request: Request, model_name: str) -> Response:
        ticket = plane.admit(model_lane(model_name), declared_size(request))
        return await held_until_sent(ticket, read_and_predict(request, ticket, model_name))

    async def read_and_predict(request: Request, ticket: Ticket, model_name: str) -> Response:
        document, binary = await _body(request, settings, ticket)
        if binary is not None:
            raise InvalidArgument(f"{HEADER_LENGTH}: not supported here; send JSON instances")
        _known(document, ("instances",), "")
        instances = document.get("instances")
        predictions = await plane.predict(model_name, instances)
        if len(predictions) > _MANY_ROWS:
            return _json(await asyncio.to_thread(_predictions_json, predictions))
        return _json(_predictions_json(predictions))

    return [v2, predict_router]
