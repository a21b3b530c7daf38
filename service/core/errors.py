"""One error hierarchy with transport-neutral codes, mapped once per transport.

::

    LossServeError                      code            HTTP  gRPC
    ├── InvalidArgument                 INVALID_ARGUMENT 400  INVALID_ARGUMENT
    │   ├── PayloadTooLarge             PAYLOAD_TOO_LARGE 413 RESOURCE_EXHAUSTED
    │   └── BodyTimeout (api.http)      INVALID_ARGUMENT 408  -
    ├── NotFound                        NOT_FOUND        404  NOT_FOUND
    ├── Unauthenticated                 UNAUTHENTICATED  401  UNAUTHENTICATED
    ├── PermissionDenied                PERMISSION_DENIED 403 PERMISSION_DENIED
    ├── ResourceExhausted               RESOURCE_EXHAUSTED 429 RESOURCE_EXHAUSTED
    ├── DeadlineExceeded                DEADLINE_EXCEEDED 504 DEADLINE_EXCEEDED
    ├── Unavailable                     UNAVAILABLE      503  UNAVAILABLE   (retryable)
    └── Internal                        INTERNAL         500  INTERNAL

The HTTP and gRPC numbers are the transports' tables (:data:`lossserve.api.http.HTTP_STATUS`
in one exception handler, :data:`lossserve.api.grpc.GRPC_STATUS` in the wrapper of every gRPC
handler); nothing inside ``core`` knows either number, and every layer may import this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

__all__ = [
    "DeadlineExceeded",
    "ErrorCode",
    "Internal",
    "InvalidArgument",
    "LossServeError",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "field_message",
    "invalid_params",
]


class ErrorCode(str, Enum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    NOT_FOUND = "NOT_FOUND"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


def field_message(field: str, exc: Exception) -> str:
    """``"field: message"`` from an exception of the library (whose messages start with a
    capital, "Expected ..."), in the service's form: one message for one fault on every
    path."""
    text = str(exc)
    return f"{field}: {text[:1].lower()}{text[1:]}"


class LossServeError(Exception):
    """Base of every error the service answers with; ``details`` are JSON-able dicts."""

    code: ErrorCode = ErrorCode.INTERNAL
    retryable: bool = False

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "details": self.details}


class InvalidArgument(LossServeError):
    """The caller's input is wrong; the message names the field and what was expected."""

    code = ErrorCode.INVALID_ARGUMENT


class PayloadTooLarge(InvalidArgument):
    """A body or tensor above the configured limit."""

    code = ErrorCode.PAYLOAD_TOO_LARGE


class NotFound(LossServeError):
    code = ErrorCode.NOT_FOUND


class Unauthenticated(LossServeError):
    """A call that needs credentials came without valid ones (a missing or wrong token)."""

    code = ErrorCode.UNAUTHENTICATED


class PermissionDenied(LossServeError):
    """The call is not allowed at all here (e.g. the repository API is switched off)."""

    code = ErrorCode.PERMISSION_DENIED


class ResourceExhausted(LossServeError):
    """Every queue is full: try again later (nothing was queued)."""

    code = ErrorCode.RESOURCE_EXHAUSTED
    retryable = True


class DeadlineExceeded(LossServeError):
    code = ErrorCode.DEADLINE_EXCEEDED
    retryable = True


class Unavailable(LossServeError):
    """A worker failed while holding the request; retrying is safe."""

    code = ErrorCode.UNAVAILABLE
    retryable = True


class Internal(LossServeError):
    code = ErrorCode.INTERNAL


def invalid_params(errors: Sequence[tuple[str, str]]) -> InvalidArgument:
    """The error for a loss's parameters that failed validation (``(field, message)``
    pairs, as ``losses.LossParameterError.errors``): every one named, under ``params.``."""
    return InvalidArgument(
        "; ".join(f"params.{field}: {message}" for field, message in errors),
        details=[{"field": f"params.{field}", "message": message} for field, message in errors],
    )
