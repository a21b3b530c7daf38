"""One error hierarchy with transport-neutral codes, mapped once per transport.

::

    LossServeError                      code            HTTP  gRPC
    ├── InvalidArgument                 INVALID_ARGUMENT 400  INVALID_ARGUMENT
    │   └── PayloadTooLarge             PAYLOAD_TOO_LARGE 413 RESOURCE_EXHAUSTED
    ├── NotFound                        NOT_FOUND        404  NOT_FOUND
    ├── Unauthenticated                 UNAUTHENTICATED  401  UNAUTHENTICATED
    ├── PermissionDenied                PERMISSION_DENIED 403 PERMISSION_DENIED
    ├── ResourceExhausted               RESOURCE_EXHAUSTED 429 RESOURCE_EXHAUSTED
    ├── DeadlineExceeded                DEADLINE_EXCEEDED 504 DEADLINE_EXCEEDED
    ├── Unavailable                     UNAVAILABLE      503  UNAVAILABLE   (retryable)
    └── Internal                        INTERNAL         500  INTERNAL

The REST layer maps ``code`` to a status with :data:`HTTP_STATUS` in one exception handler;
the gRPC layer maps it with its own table in one interceptor. Nothing inside ``core`` knows
either number.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = [
    "HTTP_STATUS",
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


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


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
