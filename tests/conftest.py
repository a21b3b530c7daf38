"""Shared fixtures: device and dtype are fixtures (CPU always, CUDA when present)."""

from __future__ import annotations

import os

# Before any test module loads grpc: its fork handlers would abort the servers the tests
# start (see bench/_server.py).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from collections.abc import Iterator

import pytest
import torch

# tests/deploy builds container images (minutes): `make test-deploy` runs it.
collect_ignore = [] if os.environ.get("LOSSSERVE_DEPLOY_TESTS") else ["deploy"]

_DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _seeded_torch() -> Iterator[None]:
    """Seed torch's global RNG before every test and restore its state afterwards.

    Tests that draw with ``torch.randn`` and no generator are then deterministic and
    independent of the order they run in; the caller's RNG state is left as it was.
    """
    cpu_state = torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    torch.manual_seed(0)
    yield
    torch.random.set_rng_state(cpu_state)
    if cuda_states is not None:
        torch.cuda.set_rng_state_all(cuda_states)


@pytest.fixture(params=_DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


@pytest.fixture(params=[torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def half_dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)
