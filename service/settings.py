"""Service configuration: every limit is a setting (environment prefix ``LOSSSERVE_``)."""

from __future__ import annotations

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
    log_level: str = "INFO"
