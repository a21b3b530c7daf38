"""Service configuration: every limit is a setting (environment prefix ``LOSSSERVE_``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "available_cpus"]


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as ``taskset`` or a cpuset
    limits it; a CFS quota, such as a Kubernetes CPU limit, does not show here)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Settings(BaseSettings):
    """Limits and addresses; ``LOSSSERVE_MAX_BODY_BYTES=...`` and so on override them."""

    model_config = SettingsConfigDict(env_prefix="LOSSSERVE_", extra="ignore")

    host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=0, le=65535)
    grpc_port: int = Field(50051, ge=0, le=65535)
    max_body_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        description="Largest request body, checked from Content-Length before it is read, and "
        "counted as a chunked or compressed body streams in (once inflated); likewise the "
        "tensors a ComputeLossChunked header declares.",
    )
    max_elements: int = Field(
        16 * 1024 * 1024, gt=0, description="Largest number of elements in one tensor."
    )
    max_json_values: int = Field(
        200_000,
        gt=0,
        description="Numbers (more exactly: commas) one JSON document may hold, in a request "
        "or an answer. Parsing or writing JSON holds the interpreter (about 0.2 us a number), "
        "so a huge nested list would stall every other request: at the default, a parse "
        "takes at most about 40 ms. Large tensors go with the binary tensor extension.",
    )
    max_json_bytes: int = Field(
        24 * 1024 * 1024,
        gt=0,
        description="Largest JSON document (a whole JSON body, or the JSON header of a binary "
        "one); b64 strings parse at about 500 MB/s, holding the interpreter as they do.",
    )
    max_request_memory_bytes: int = Field(
        512 * 1024 * 1024,
        gt=0,
        description="Memory one request may need, estimated from its shapes and params before "
        "anything is allocated (tensors, autograd, Hessian products, confusion matrices, the "
        "answer); above it the request is refused with 413 / RESOURCE_EXHAUSTED.",
    )
    max_request_work: float = Field(
        1e10,
        gt=0,
        description="Elementary operations one request may need (about 1e9 a second a core), "
        "estimated the same way; above it the request is refused with 413.",
    )
    max_inflight_bytes: int = Field(
        256 * 1024 * 1024,
        gt=0,
        description="Request bodies admitted and not yet answered, per frontend process; a "
        "request that would pass it is refused with 429 before its body is read.",
    )
    body_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Longest wait for the next piece of a request body (REST) or stream "
        "message (gRPC streams) before the request is refused.",
    )
    send_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Longest wait for a REST client to take more of an answer that fills the "
        "socket's buffers (nginx's send_timeout) before its connection is reset; meanwhile "
        "the answer counts against max_inflight_bytes.",
    )
    queue_depth: int = Field(8, ge=1, description="Requests waiting per worker before 429.")
    request_timeout_s: float = Field(30.0, gt=0, description="Deadline of each request.")
    devices: list[str] | None = Field(
        None,
        description="Worker devices, each cpu, cuda (= cuda:0) or cuda:N; default: every "
        "cuda:N torch sees, else cpu.",
    )
    workers_per_device: int = Field(
        1, ge=1, description="Worker processes per entry of devices (each runs one job at a time)."
    )
    worker_threads: int | None = Field(
        None,
        ge=1,
        description="Torch threads in each worker process; default: the available CPUs divided "
        "by the number of worker processes, at least 1.",
    )
    worker_cpus: list[int] | None = Field(
        None,
        description="The CPUs the worker processes run on (a JSON list, as taskset's CPU "
        "numbers); default: those the process starting them may use.",
    )
    grpc_max_message_bytes: int = Field(
        16 * 1024 * 1024,
        gt=0,
        description="Largest gRPC message; larger loss batches go through ComputeLossChunked "
        "(the Python client chunks above 2 MiB). grpcio copies a received message while it "
        "holds the interpreter (about 1 ms per MiB here, more on a busy machine): this "
        "bounds that stall.",
    )
    grpc_threads: int = Field(
        64,
        ge=1,
        description="gRPC RPCs served at once, each on a thread of grpcio's threaded server "
        "(its handler runs on the event loop; a stream holds its thread while open, and "
        "streams take at most half of them); beyond it an RPC is refused at once with "
        "RESOURCE_EXHAUSTED.",
    )
    model_repository: Path | None = Field(
        None, description="<repo>/<model>/<version>/{model.onnx,card.json}; None: no models."
    )
    admin_token: str | None = Field(
        None,
        repr=False,
        description="Bearer token of the model repository API (LOSSSERVE_ADMIN_TOKEN); "
        "None or empty turns that API off.",
    )
    allow_shared_memory: bool = Field(
        False,
        description="Serve the system shared-memory extension (Triton's): a client on this "
        "host registers POSIX shared-memory regions and passes tensors by region, offset and "
        "size. A client that may do so may have the server read and write any shared-memory "
        "object the server's user may open: turn it on only where every client is trusted "
        "that far (a trainer beside its loss server, a sidecar).",
    )
    shared_memory_registry: Path | None = Field(
        None,
        description="The directory of the registered regions' records, shared by the "
        "frontends of one server (lossserve serve makes one for them when this is unset).",
    )
    model_threads: int = Field(
        1, ge=0, description="ONNX Runtime intra-op threads per model session (0: ORT's default)."
    )
    shutdown_grace_s: int = Field(
        30,
        ge=0,
        description="On SIGTERM or SIGINT, how many seconds in-flight requests (HTTP and gRPC, "
        "their queued jobs included) may take to finish once new connections are refused; past "
        "it they answer 503 / UNAVAILABLE (retryable), or are cancelled a second later. The "
        "process then exits with status 0.",
    )
    shutdown_delay_s: float = Field(
        0.0,
        ge=0,
        description="On SIGTERM or SIGINT, how long to go on serving with readiness reporting "
        "not ready (REST 503, gRPC NOT_SERVING) before refusing new connections, so that load "
        "balancers that poll readiness stop routing first (Kubernetes: a few seconds; 0 behind "
        "nginx's passive checks, which retry a refused connection on another replica).",
    )
    model_control: Literal["explicit", "poll"] = Field(
        "explicit",
        description="As Triton's --model-control-mode: 'poll' loads new versions and new "
        "models of the repository, and unloads removed ones, every model_poll_s seconds "
        "(in-flight requests finish on the version they started on; the repository API's "
        "load and unload are then refused); 'explicit' loads the repository at start and "
        "changes only through the repository API.",
    )
    model_poll_s: float = Field(
        5.0, gt=0, le=3600, description="Seconds between two looks at the repository (poll)."
    )
    strict_readiness: bool = Field(
        True,
        description="Report ready (REST /v2/health/ready, gRPC ServerReady and health) only "
        "while every model of the repository that the server tried to load is served, as "
        "Triton's --strict-readiness: a model that failed to load keeps a replica out of a "
        "load balancer instead of answering NOT_FOUND. false: ready once started.",
    )
    log_level: str = "INFO"
    frontends: int = Field(
        default_factory=available_cpus,
        ge=1,
        description="Server processes serving REST and gRPC on the same two ports, each with "
        "its own models, batchers and workers (default: the CPUs the process may use). 1 "
        "serves from the lossserve process itself. Per process: /metrics, model statistics "
        "and the model repository API (load / unload) answer for the process that took the "
        "connection.",
    )
    frontend_affinity: Literal["auto", "pinned", "shared"] = Field(
        "auto",
        description="With several frontends: pinned puts frontend i on the i-th CPU the "
        "process may use (round robin), so that its threads hand the interpreter lock to each "
        "other on one core, as nginx's worker_cpu_affinity; shared leaves them to the "
        "scheduler. auto pins when the process was given a subset of the machine's CPUs "
        "(taskset, a cpuset, Kubernetes' static CPU manager) and runs one frontend per CPU, "
        "and shares otherwise (other processes may need those CPUs). Worker processes run on "
        "worker_cpus, not on their frontend's CPU.",
    )

    @field_validator("worker_cpus")
    @classmethod
    def _cpu_numbers(cls, value: list[int] | None) -> list[int] | None:
        """CPUs this machine has (whether this process may use them is the kernel's to
        say: a frontend pinned to one CPU reads the supervisor's whole set here)."""
        if value is not None and (not value or min(value) < 0):
            raise ValueError(f"expected a non-empty list of CPU numbers >= 0, got {value!r}")
        count = os.cpu_count()
        if value is not None and count is not None and max(value) >= count:
            raise ValueError(
                f"expected CPU numbers below {count} (this machine's CPUs), got {max(value)}"
            )
        return value

    @field_validator("devices")
    @classmethod
    def _torch_devices(cls, value: list[str] | None) -> list[str] | None:
        """``cpu``, ``cuda:N``, or ``cuda`` read as ``cuda:0`` (a worker pins one device,
        so the index is needed); anything else is refused here, not by a worker that dies."""
        if value is None:
            return None
        if not value:
            raise ValueError("expected at least one device, got []")
        devices = []
        for device in value:
            name = device.strip().lower()
            name = "cuda:0" if name == "cuda" else name
            kind, _, index = name.partition(":")
            if name != "cpu" and not (kind == "cuda" and index.isascii() and index.isdigit()):
                raise ValueError(f"expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
            devices.append(name if name == "cpu" else f"cuda:{int(index)}")
        return devices

    @field_validator("admin_token")
    @classmethod
    def _no_empty_token(cls, value: str | None) -> str | None:
        """``LOSSSERVE_ADMIN_TOKEN=`` (empty or blank) means off, never "any token"."""
        return value if value and value.strip() else None
