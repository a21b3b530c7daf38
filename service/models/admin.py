"""The model repository API (index, load, unload), beside inference: one class for both
transports, behind a bearer token.

``LOSSSERVE_ADMIN_TOKEN`` unset or empty switches the API off (403 / PERMISSION_DENIED); a
missing or wrong ``Authorization: Bearer <token>`` is 401 / UNAUTHENTICATED. The request
``parameters`` Triton defines for load and unload are checked here once: only
``unload_dependents`` is accepted (and ignored: models have no dependents), since models
come from the repository folder only.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from ..core.errors import InvalidArgument, PermissionDenied, Unauthenticated
from .engine import IndexEntry, ModelEngine
from .repository import LoadedModel

__all__ = ["RepositoryAdmin"]

_ACCEPTED_PARAMETERS = ("unload_dependents",)


class RepositoryAdmin:
    """Index, load and unload the models of ``models``, for callers holding ``token``."""

    def __init__(self, models: ModelEngine, token: str | None) -> None:
        self._models = models
        self._token = token if token and token.strip() else None

    def authorize(self, authorization: str | None) -> None:
        """Check an ``Authorization`` value against the token (constant time)."""
        if self._token is None:
            raise PermissionDenied(
                "the model repository API is disabled: start the server with "
                "LOSSSERVE_ADMIN_TOKEN set to enable it"
            )
        if not authorization:
            raise Unauthenticated(
                "the model repository API needs the header 'Authorization: Bearer <token>'"
            )
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self._token.encode()
        ):
            raise Unauthenticated("the model repository API: the bearer token is not valid")

    def index(self, authorization: str | None, *, ready_only: bool = False) -> list[IndexEntry]:
        self.authorize(authorization)
        return self._models.index(ready_only=ready_only)

    async def load(
        self, authorization: str | None, name: str, parameters: Iterable[str] = ()
    ) -> LoadedModel:
        self.authorize(authorization)
        self._check_explicit()
        _check_parameters(parameters)
        return await self._models.load(name)

    async def unload(
        self, authorization: str | None, name: str, parameters: Iterable[str] = ()
    ) -> None:
        self.authorize(authorization)
        self._check_explicit()
        _check_parameters(parameters)
        await self._models.unload(name)

    def _check_explicit(self) -> None:
        if self._models.poll_s is not None:
            raise PermissionDenied(
                "the repository API cannot load or unload models while the server polls the "
                "repository (LOSSSERVE_MODEL_CONTROL=poll): add or remove version folders "
                "instead, or serve with LOSSSERVE_MODEL_CONTROL=explicit"
            )


def _check_parameters(parameters: Iterable[str]) -> None:
    unsupported = sorted(key for key in parameters if key not in _ACCEPTED_PARAMETERS)
    if unsupported:
        raise InvalidArgument(
            f"parameters.{unsupported[0]}: not supported; lossserve loads models only "
            "from the repository folder"
        )
