"""Schemathesis against the served OpenAPI document: every operation, no 5xx, no response
that breaks its documented status codes, content type or schema.

The app runs in process over schemathesis's ASGI transport. The ASGI lifespan starts a
fresh :class:`ServiceState` (a running worker pool, which ``POST /loss`` needs) on the
event loop that serves the requests, and stops it when schemathesis ends the lifespan
after the test; small limits keep every generated case cheap. The schema is loaded at
import (``schemathesis.pytest.from_fixture`` fails under pytest 9.2 with schemathesis 4.32:
it sets ``Function._nodeid``, which pytest no longer has). Every operation runs the
examples phase (the documented examples, so each 200 answer is checked too), the coverage
phase and ``MAX_EXAMPLES`` fuzzed cases, about 1,900 requests in all (600 of them to the
Open Inference Protocol's routes, whose path parameters name the served model ``tiny``);
``test_openapi.py`` holds the document to every served route.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lossserve.api.rest import create_app
from lossserve.core.state import ServiceState
from lossserve.settings import Settings
from tests.service.models.builders import write_model

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

REPOSITORY = Path(tempfile.mkdtemp(prefix="schemathesis-models-"))
write_model(REPOSITORY, "tiny")  # /v2 inference and /predict reach a model's code paths
atexit.register(shutil.rmtree, REPOSITORY, ignore_errors=True)
SETTINGS = Settings(
    devices=["cpu"],
    model_repository=REPOSITORY,
    max_elements=4096,
    max_body_bytes=1024 * 1024,
    request_timeout_s=5.0,
    queue_depth=8,
)
MAX_EXAMPLES = 25
"""Fuzzed cases per operation, besides the coverage phase's boundary cases."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class LifespanApp:
    """``create_app`` over a state the ASGI lifespan starts and stops, fresh each time.

    A stopped worker pool cannot start again, and schemathesis ends the lifespan after
    every test, so each startup builds a new state and app.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state: ServiceState | None = None
        self.app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            assert self.app is not None, "the lifespan has not started"
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.state = ServiceState.create(self.settings)
                await self.state.start()
                self.app = create_app(self.state)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.state is not None:
                    await self.state.stop()
                self.state, self.app = None, None
                await send({"type": "lifespan.shutdown.complete"})
                return


APP = LifespanApp(SETTINGS)
# Loading serves /openapi.json through a started lifespan; an idle pool holds no thread.
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
# Path parameters that name the served model, so that fuzzed bodies reach its code paths (an
# unknown model's 404 is held by the other tests).
schema.config.update(parameters={"path.model_name": "tiny", "path.model_version": "1"})


@schema.parametrize()
def test_every_response_is_documented_and_never_a_server_error(
    case: schemathesis.Case[Any],
) -> None:
    case.call_and_validate(checks=CHECKS)
