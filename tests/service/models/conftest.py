"""A model repository built once per session, copied for every test that changes it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lossserve.core.state import ServiceState
from lossserve.settings import Settings

from .builders import write_model

T = TypeVar("T")
TOKEN = "s3cret"


@pytest.fixture(scope="session")
def built_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_model(root, "tiny", 1, seed=1)
    write_model(root, "tiny", 2, seed=2)
    write_model(root, "tags", 1, task="multilabel", seed=3)
    write_model(root, "spam", 1, task="binary", seed=4)
    return root


@pytest.fixture
def repository(built_repository: Path, tmp_path: Path) -> Path:
    """A copy of the session's repository that the test may change."""
    root = tmp_path / "models"
    shutil.copytree(built_repository, root)
    return root


def with_state(
    repository: Path | None,
    scenario: Callable[[ServiceState], Awaitable[T]],
    **settings: Any,
) -> T:
    """Run ``scenario`` against a started state over ``repository`` (one cpu worker)."""

    async def main() -> T:
        options: dict[str, Any] = {"devices": ["cpu"], "model_repository": repository, **settings}
        state = ServiceState.create(Settings(**options))
        await state.start()
        try:
            return await scenario(state)
        finally:
            await state.stop()

    return asyncio.run(main())
