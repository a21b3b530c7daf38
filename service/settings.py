"""Service configuration: every limit is a setting (environment prefix ``LOSSSERVE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Limits and addresses; ``LOSSSERVE_MAX_BODY_BYTES=...`` and so on override them."""

    model_config = SettingsConfigDict(env_prefix="LOSSSERVE_", extra="ignore")

    host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=0, le=65535)
    grpc_port: int = Field(50051, ge=0, le=65535)
    max_body_bytes: int = Field(256 * 1024 * 1024, gt=0, description="Largest request body.")
    max_elements: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest number of elements in one tensor."
    )
    queue_depth: int = Field(8, ge=1, description="Requests waiting per worker before 429.")
    request_timeout_s: float = Field(30.0, gt=0, description="Deadline of each request.")
    devices: list[str] | None = Field(
        None, description="Worker devices; default: every cuda:N torch sees, else cpu."
    )
    grpc_max_message_bytes: int = Field(512 * 1024 * 1024, gt=0)
    model_repository: Path | None = Field(
        None, description="<repo>/<model>/<version>/{model.onnx,card.json}; None: no models."
    )
    admin_token: str | None = Field(
        None,
        repr=False,
        description="Bearer token of the model repository API (LOSSSERVE_ADMIN_TOKEN); "
        "None turns that API off.",
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
    log_level: str = "INFO"
