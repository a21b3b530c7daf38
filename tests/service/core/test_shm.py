"""System shared memory: the registry of regions, views that cross to worker processes as
their place, and inference with inputs and outputs in regions over REST and gRPC (in
process; ``tests/contract/tritonclient_cases.py`` drives a real server with tritonclient's
own shared-memory utilities)."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import torch

import losses
from lossserve.api import oip_grpc_convert as convert
from lossserve.api.http import HTTP_STATUS
from lossserve.core import shm
from lossserve.core.errors import InvalidArgument, NotFound, PermissionDenied
from lossserve.core.shm import (
    Region,
    RegionArray,
    SharedInput,
    SharedMemoryRegistry,
    SharedRef,
    shared_ref,
)
from lossserve.core.types import LossRequest
from lossserve.models.engine import InferRequest

from ..models.test_oip_grpc import with_servers

RNG = np.random.default_rng(5)
LOGITS = RNG.normal(0, 2, (64, 5)).astype(np.float32)
TARGETS = RNG.integers(0, 5, 64).astype(np.int64)


class Segment:
    """A client's POSIX shared-memory object (as tritonclient makes one), unlinked after."""

    def __init__(self, size: int, name: str | None = None) -> None:
        self.memory = shared_memory.SharedMemory(name=name, create=True, size=size)
        self.key = "/" + self.memory.name

    def array(self, dtype: Any, shape: tuple[int, ...], offset: int = 0) -> np.ndarray:
        count = int(np.prod(shape))
        return np.frombuffer(self.memory.buf, dtype, count, offset).reshape(shape)

    def close(self) -> None:
        self.memory.close()
        self.memory.unlink()


@pytest.fixture
def segments() -> Iterator[list[Segment]]:
    made: list[Segment] = []
    yield made
    for segment in made:
        try:
            segment.close()
        except BufferError:  # a view still held by the test's frame: unlink all the same
            shared_memory._posixshmem.shm_unlink(segment.memory._name)  # type: ignore[attr-defined]
            resource_tracker.unregister(segment.memory._name, "shared_memory")  # type: ignore[attr-defined]


def _segment(segments: list[Segment], size: int) -> Segment:
    segment = Segment(size)
    segments.append(segment)
    return segment


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[SharedMemoryRegistry]:
    made = SharedMemoryRegistry(tmp_path, enabled=True)
    yield made
    made.close()


def test_register_status_and_unregister(
    registry: SharedMemoryRegistry, segments: list[Segment]
) -> None:
    segment = _segment(segments, 4096)
    registry.register("b", segment.key, 0, 4096)
    registry.register("a", segment.key, 1024, 512)
    assert registry.status() == [
        Region("a", segment.key, 1024, 512),
        Region("b", segment.key, 0, 4096),
    ]
    assert registry.status("a") == [Region("a", segment.key, 1024, 512)]
    registry.unregister("a")
    registry.unregister("a")  # an unknown name is no error, as in Triton
    with pytest.raises(NotFound, match="no shared-memory region 'a' is registered"):
        registry.status("a")
    registry.unregister()
    assert registry.status() == []


def test_frontends_sharing_a_directory_see_one_anothers_regions(
    tmp_path: Path, segments: list[Segment]
) -> None:
    segment = _segment(segments, 64)
    first = SharedMemoryRegistry(tmp_path, enabled=True)
    second = SharedMemoryRegistry(tmp_path, enabled=True)
    first.register("r", segment.key, 0, 64)
    assert second.status() == [Region("r", segment.key, 0, 64)]
    with pytest.raises(InvalidArgument, match="a region 'r' is registered already"):
        second.register("r", segment.key, 0, 32)
    second.unregister("r")
    assert first.status() == []
    ref = SharedRef("r", 64)
    with pytest.raises(InvalidArgument, match="'r': no such region is registered"):
        first.read(SharedInput(ref, "FP32", (16,)), "input 'x'")


@pytest.mark.parametrize(
    ("name", "key", "offset", "size", "message"),
    [
        ("", "KEY", 0, 8, "name: expected a region name of 1 to 128 characters"),
        ("x" * 129, "KEY", 0, 8, "name: expected a region name"),
        ("r", "/a/b", 0, 8, "key: expected a shared-memory object's name"),
        ("r", "/..", 0, 8, "key: expected a shared-memory object's name"),
        ("r", "/lossserve-1-2-3in", 0, 8, "key: '/lossserve-1-2-3in' names one of the server's"),
        ("r", "/no-such-object-here", 0, 8, "key: no shared-memory object '/no-such-object-here'"),
        ("r", "KEY", -1, 8, "offset: expected a non-negative integer, got -1"),
        ("r", "KEY", 0, 0, "byte_size: expected a positive size, got 0"),
        ("r", "KEY", 0, True, "byte_size: expected a non-negative integer, got True"),
        ("r", "KEY", 60, 8, "has 64 bytes, expected at least 68"),
    ],
)
def test_bad_registrations_name_what_is_wrong(
    registry: SharedMemoryRegistry,
    segments: list[Segment],
    name: str,
    key: str,
    offset: int,
    size: int,
    message: str,
) -> None:
    segment = _segment(segments, 64)
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        registry.register(name, segment.key if key == "KEY" else key, offset, size)
    assert registry.status() == []


def test_off_unless_allowed(segments: list[Segment]) -> None:
    registry = SharedMemoryRegistry(None, enabled=False)
    segment = _segment(segments, 64)
    for call in (
        lambda: registry.register("r", segment.key, 0, 64),
        registry.status,
        registry.unregister,
        lambda: registry.read(SharedInput(SharedRef("r", 64), "FP32", (16,)), "input 'x'"),
    ):
        with pytest.raises(PermissionDenied, match="LOSSSERVE_ALLOW_SHARED_MEMORY=true"):
            call()


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"shared_memory_byte_size": 8}, "shared_memory_byte_size: given without"),
        ({"shared_memory_region": 3, "shared_memory_byte_size": 8}, "expected a region's name"),
        ({"shared_memory_region": "r"}, "shared_memory_byte_size: expected with"),
        (
            {"shared_memory_region": "r", "shared_memory_byte_size": 8, "shared_memory_offset": -2},
            "shared_memory_offset: expected a non-negative integer, got -2",
        ),
    ],
)
def test_bad_tensor_parameters(parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        shared_ref(parameters, "input 'x': parameters.")


def test_tensors_must_fit_their_region(
    registry: SharedMemoryRegistry, segments: list[Segment]
) -> None:
    segment = _segment(segments, 256)
    registry.register("r", segment.key, 128, 128)
    with pytest.raises(InvalidArgument, match="offset 64 \\+ shared_memory_byte_size 128 exceed"):
        registry.read(SharedInput(SharedRef("r", 128, 64), "FP32", (32,)), "input 'x'")
    with pytest.raises(InvalidArgument, match="expected shared_memory_byte_size 64 for its shape"):
        registry.read(SharedInput(SharedRef("r", 128), "FP32", (16,)), "input 'x'")
    with pytest.raises(InvalidArgument, match=r"the output takes 256 bytes, .* is 128"):
        registry.hold(SharedRef("r", 128), "output 'y'").destination(
            np.dtype("<f4"), (64,), "output 'y'"
        )


def test_a_view_is_the_clients_memory_and_pickles_as_its_place(
    registry: SharedMemoryRegistry, segments: list[Segment]
) -> None:
    segment = _segment(segments, 1 << 20)
    values = segment.array(np.float32, (1 << 18,))
    values[:] = np.arange(1 << 18)
    registry.register("r", segment.key, 0, 1 << 20)
    view = registry.read(SharedInput(SharedRef("r", 1 << 20), "FP32", (1 << 18,)), "input 'x'")
    assert isinstance(view, RegionArray)
    values[3] = 42  # another mapping of the same bytes: the client's writes show
    assert view[3] == 42
    payload = pickle.dumps(view, protocol=5)
    assert len(payload) < 1024  # its place, not its 1 MiB
    back = pickle.loads(payload)
    np.testing.assert_array_equal(back, values)
    values[7] = -1  # the client writes: the view sees it
    assert back[7] == -1
    part = pickle.dumps(view[:1000], protocol=5)  # a slice is an ordinary view: its values
    assert len(part) > 4000
    registry.unregister("r")  # in use: the views still read the region
    assert view[7] == -1


def test_a_loss_model_reads_and_writes_regions_over_rest_and_grpc(
    tmp_path: Path, segments: list[Segment]
) -> None:
    inputs = _segment(segments, LOGITS.nbytes + TARGETS.nbytes)
    outputs = _segment(segments, 2 * LOGITS.nbytes)
    inputs.array(np.float32, LOGITS.shape)[:] = LOGITS
    inputs.array(np.int64, TARGETS.shape, LOGITS.nbytes)[:] = TARGETS
    exact = losses.derivatives(
        "focal", torch.from_numpy(LOGITS), torch.from_numpy(TARGETS), hessian=True, gamma=1.5
    )
    size = LOGITS.nbytes
    document = {
        "parameters": {"gamma": 1.5},
        "inputs": [
            {
                "name": "logits",
                "datatype": "FP32",
                "shape": list(LOGITS.shape),
                "parameters": {"shared_memory_region": "in", "shared_memory_byte_size": size},
            },
            {
                "name": "targets",
                "datatype": "INT64",
                "shape": list(TARGETS.shape),
                "parameters": {
                    "shared_memory_region": "in",
                    "shared_memory_byte_size": TARGETS.nbytes,
                    "shared_memory_offset": size,
                },
            },
        ],
        "outputs": [
            {"name": "loss"},
            {
                "name": "grad",
                "parameters": {"shared_memory_region": "out", "shared_memory_byte_size": size},
            },
            {
                "name": "hessian_diag",
                "parameters": {
                    "shared_memory_region": "out",
                    "shared_memory_byte_size": size,
                    "shared_memory_offset": size,
                },
            },
        ],
    }
    grad = outputs.array(np.float32, LOGITS.shape)
    hessian = outputs.array(np.float32, LOGITS.shape, size)

    async def scenario(stub: Any, client: httpx.AsyncClient, state: Any) -> None:
        for body in (
            {"key": inputs.key, "byte_size": LOGITS.nbytes + TARGETS.nbytes},
            {"key": outputs.key, "offset": 0, "byte_size": 2 * size},
        ):
            name = "in" if body["key"] == inputs.key else "out"
            response = await client.post(
                f"/v2/systemsharedmemory/region/{name}/register", json=body
            )
            assert response.status_code == 200, response.text
        # REST
        grad[:] = hessian[:] = 0
        response = await client.post("/v2/models/loss.focal/infer", json=document)
        assert response.status_code == 200, response.text
        answered = {o["name"]: o for o in response.json()["outputs"]}
        assert answered["grad"]["parameters"] == {
            "shared_memory_region": "out",
            "shared_memory_byte_size": size,
        }
        assert "data" not in answered["grad"] and "data" not in answered["hessian_diag"]
        assert answered["loss"]["data"] == pytest.approx([float(exact.value)], rel=1e-6)
        np.testing.assert_allclose(grad, exact.grad.numpy(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(hessian, exact.hessian_diag.numpy(), rtol=1e-6, atol=1e-9)
        # gRPC, the same request as protobuf
        grad[:] = hessian[:] = 0
        message = convert.encode_infer_request(
            InferRequest("loss.focal", {}, parameters={"gamma": 1.5})
        )
        for entry in document["inputs"]:
            tensor = message.inputs.add(
                name=entry["name"], datatype=entry["datatype"], shape=entry["shape"]
            )
            for key, value in entry["parameters"].items():
                _set(tensor.parameters[key], value)
        for entry in document["outputs"]:
            wanted = message.outputs.add(name=entry["name"])
            for key, value in entry.get("parameters", {}).items():
                _set(wanted.parameters[key], value)
        answer = await stub.ModelInfer(message)
        assert [len(raw) for raw in answer.raw_output_contents] == [4, 0, 0]
        assert answer.outputs[1].parameters["shared_memory_region"].string_param == "out"
        np.testing.assert_allclose(grad, exact.grad.numpy(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(hessian, exact.hessian_diag.numpy(), rtol=1e-6, atol=1e-9)
        status = await client.get("/v2/systemsharedmemory/status")
        assert [r["name"] for r in status.json()] == ["in", "out"]
        assert (await client.post("/v2/systemsharedmemory/unregister")).status_code == 200

    with_servers(None, scenario, allow_shared_memory=True, shared_memory_registry=tmp_path)


def _set(parameter: Any, value: Any) -> None:
    if isinstance(value, str):
        parameter.string_param = value
    else:
        parameter.int64_param = value


BAD = [
    (
        {"shared_memory_region": "nope", "shared_memory_byte_size": 1280},
        400,
        "'nope': no such region",
    ),
    (
        {
            "shared_memory_region": "in",
            "shared_memory_byte_size": 1280,
            "shared_memory_offset": 4096,
        },
        400,
        "shared_memory_offset 4096 + shared_memory_byte_size 1280 exceed region 'in'",
    ),
    (
        {"shared_memory_region": "in", "shared_memory_byte_size": 1276},
        400,
        "expected shared_memory_byte_size 1280 for its shape and datatype, got 1276",
    ),
]


@pytest.mark.parametrize(("parameters", "status", "message"), BAD)
def test_bad_places_answer_the_same_over_rest_and_grpc(
    tmp_path: Path, segments: list[Segment], parameters: dict[str, Any], status: int, message: str
) -> None:
    inputs = _segment(segments, 4096)

    async def scenario(stub: Any, client: httpx.AsyncClient, state: Any) -> None:
        state.regions.register("in", inputs.key, 0, 4096)
        document = {
            "inputs": [
                {"name": "logits", "datatype": "FP32", "shape": [64, 5], "parameters": parameters},
                {"name": "targets", "datatype": "INT64", "shape": [64], "data": TARGETS.tolist()},
            ]
        }
        response = await client.post("/v2/models/loss.focal/infer", json=document)
        assert response.status_code == status
        assert message in response.json()["error"]
        request = InferRequest("loss.focal", {"targets": TARGETS})
        grpc_message = convert.encode_infer_request(request)
        tensor = grpc_message.inputs.add(name="logits", datatype="FP32", shape=[64, 5])
        for key, value in parameters.items():
            _set(tensor.parameters[key], value)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ModelInfer(grpc_message)
        assert HTTP_STATUS[caught.value.code().name] == status
        assert caught.value.details() == response.json()["error"]

    with_servers(None, scenario, allow_shared_memory=True, shared_memory_registry=tmp_path)


def test_off_by_default_over_rest() -> None:
    async def scenario(stub: Any, client: httpx.AsyncClient, state: Any) -> None:
        response = await client.post(
            "/v2/systemsharedmemory/region/r/register", json={"key": "/x", "byte_size": 8}
        )
        assert response.status_code == 403
        assert "LOSSSERVE_ALLOW_SHARED_MEMORY" in response.json()["error"]
        metadata = (await client.get("/v2")).json()
        assert "system_shared_memory" not in metadata["extensions"]
        document = {
            "inputs": [
                {
                    "name": "logits",
                    "datatype": "FP32",
                    "shape": [1, 2],
                    "parameters": {"shared_memory_region": "r", "shared_memory_byte_size": 8},
                },
                {"name": "targets", "datatype": "INT64", "shape": [1], "data": [0]},
            ]
        }
        response = await client.post("/v2/models/loss.focal/infer", content=json.dumps(document))
        assert response.status_code == 403

    with_servers(None, scenario)


def test_a_worker_computes_from_the_region_and_writes_the_gradient_into_it(
    tmp_path: Path, segments: list[Segment]
) -> None:
    segment = _segment(segments, 2 * LOGITS.nbytes)
    segment.array(np.float32, LOGITS.shape)[:] = LOGITS
    exact = losses.derivatives("focal", torch.from_numpy(LOGITS), torch.from_numpy(TARGETS))

    async def scenario(stub: Any, client: httpx.AsyncClient, state: Any) -> None:
        state.regions.register("r", segment.key, 0, 2 * LOGITS.nbytes)
        size = LOGITS.nbytes
        logits = state.regions.read(SharedInput(SharedRef("r", size), "FP32", LOGITS.shape), "x")
        grad = state.regions.hold(SharedRef("r", size, size), "g").destination(
            np.dtype("<f4"), LOGITS.shape, "g"
        )
        request = LossRequest("focal", logits, TARGETS, return_grad=True, out={"grad": grad})
        result = await state.engine.compute(request)
        # the worker's answer came back as the region's place: this process's own view of it
        assert np.shares_memory(result.grad, grad)
        np.testing.assert_allclose(
            segment.array(np.float32, LOGITS.shape, size), exact.grad.numpy(), rtol=1e-6
        )

    with_servers(None, scenario, allow_shared_memory=True, shared_memory_registry=tmp_path)


def test_a_json_answer_from_inputs_in_shared_memory_is_counted(
    tmp_path: Path, segments: list[Segment]
) -> None:
    """Logits in a region still count toward the JSON answer's limit (the answer is as
    large as when they came in the body); a loss counts as the values it has: one mean, or
    with reduction none one a sample, a class or a logit as the loss gives them."""
    logits = np.zeros((3000, 100), np.float32)
    segment = _segment(segments, 2 * logits.nbytes)  # logits, then multi-hot targets (0)

    async def scenario(stub: Any, client: httpx.AsyncClient, state: Any) -> None:
        state.regions.register("r", segment.key, 0, 2 * logits.nbytes)
        place = {"shared_memory_region": "r", "shared_memory_byte_size": logits.nbytes}
        document = {
            "inputs": [
                {"name": "logits", "datatype": "FP32", "shape": [3000, 100], "parameters": place},
                {"name": "targets", "datatype": "INT64", "shape": [3000], "data": [0] * 3000},
            ],
            "outputs": [{"name": "grad"}],
        }
        response = await client.post("/v2/models/loss.focal/infer", json=document)
        assert response.status_code == 413
        assert "300000 JSON values" in response.json()["error"]
        # the loss alone is one value (its mean), not one a logit
        document["outputs"] = [{"name": "loss"}]
        response = await client.post("/v2/models/loss.focal/infer", json=document)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["shape"] == [1]
        # with reduction none, as many as the loss gives: a sample's, a class's, a logit's
        document["parameters"] = {"reduction": "none"}
        response = await client.post("/v2/models/loss.focal/infer", json=document)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["shape"] == [3000]
        document["parameters"] = {"reduction": "none", "scope": "batch"}
        response = await client.post("/v2/models/loss.dice/infer", json=document)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["shape"] == [100]
        multi_hot = {**place, "shared_memory_offset": logits.nbytes}
        document["inputs"][1] = {
            "name": "targets", "datatype": "FP32", "shape": [3000, 100], "parameters": multi_hot
        }  # fmt: skip
        document["parameters"] = {"reduction": "none"}
        response = await client.post("/v2/models/loss.binary_cross_entropy/infer", json=document)
        assert response.status_code == 413
        assert "300000 JSON values" in response.json()["error"]

    with_servers(None, scenario, allow_shared_memory=True, shared_memory_registry=tmp_path)


def test_a_region_registered_again_is_read_anew_by_every_frontend(
    tmp_path: Path, segments: list[Segment]
) -> None:
    """Unregistered and registered again under the same name (its record file's inode is
    reused): another frontend reads the new place, not the one it saw before."""
    first, second = _segment(segments, 4096), _segment(segments, 4096)
    one = SharedMemoryRegistry(tmp_path, enabled=True)
    other = SharedMemoryRegistry(tmp_path, enabled=True)
    for _ in range(5):
        one.register("r", first.key, 0, 1024)
        assert other.status("r") == [Region("r", first.key, 0, 1024)]
        one.unregister("r")
        one.register("r", second.key, 1024, 2048)
        assert other.status("r") == [Region("r", second.key, 1024, 2048)]
        assert other.hold(SharedRef("r", 8), "x").place.key == second.key
        one.unregister("r")


def test_names_and_keys_of_any_length_or_kind_answer_4xx(
    registry: SharedMemoryRegistry, segments: list[Segment], tmp_path: Path
) -> None:
    segment = _segment(segments, 64)
    long = "é" * 200  # 400 bytes: longer than a file name may be
    with pytest.raises(InvalidArgument, match="name: expected a region name of 1 to 128"):
        registry.register(long, segment.key, 0, 8)
    registry.register("é" * 128, segment.key, 0, 8)  # the longest name, 256 bytes
    assert registry.status("é" * 128)[0].name == "é" * 128
    with pytest.raises(NotFound):
        registry.status(long)
    with pytest.raises(InvalidArgument, match="no such region"):
        registry.hold(SharedRef(long, 8), "input 'x'")
    registry.unregister(long)  # unknown: no error
    directory = Path("/dev/shm") / f"tc-dir-{os.getpid()}"
    directory.mkdir()
    try:
        with pytest.raises(InvalidArgument, match="key: cannot open the shared-memory object"):
            registry.register("d", f"/{directory.name}", 0, 8)
    finally:
        directory.rmdir()
    (tmp_path / "lost+found").mkdir()  # not a record: ignored
    assert [r.name for r in registry.status()] == ["é" * 128]


def test_input_views_are_read_only_and_output_places_writable(
    registry: SharedMemoryRegistry, segments: list[Segment]
) -> None:
    segment = _segment(segments, 1024)
    registry.register("r", segment.key, 0, 1024)
    view = registry.read(SharedInput(SharedRef("r", 256), "FP32", (64,)), "input 'x'")
    with pytest.raises(ValueError, match="read-only"):
        view[0] = 1.0
    back = pickle.loads(pickle.dumps(view, protocol=5))  # as a worker gets it
    assert not back.flags.writeable
    out = registry.hold(SharedRef("r", 256, 512), "output 'y'").destination(
        np.dtype("<f4"), (64,), "output 'y'"
    )
    out[:] = 2.0
    assert pickle.loads(pickle.dumps(out, protocol=5)).flags.writeable
    np.testing.assert_array_equal(segment.array(np.float32, (64,), 512), 2.0)


def test_an_output_place_is_given_pages_once_per_object(
    registry: SharedMemoryRegistry, segments: list[Segment], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []
    fallocate = os.posix_fallocate

    def counted(fd: int, offset: int, length: int) -> None:
        calls.append((offset, length))
        fallocate(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", counted)
    monkeypatch.setattr(shm, "_ALLOCATED", {})  # this process's record, left as it was
    first = _segment(segments, 4096)
    registry.register("r", first.key, 0, 4096)
    for _ in range(3):
        registry.hold(SharedRef("r", 1024, 512), "output 'y'")
    registry.hold(SharedRef("r", 1024, 2048), "output 'z'")
    registry.read(SharedInput(SharedRef("r", 256), "FP32", (64,)), "input 'x'")
    assert calls == [(512, 1024), (2048, 1024)]  # a new place; inputs take none
    # another object under the same key (its client made it again): its pages are given anew
    first.close()
    segments.remove(first)
    segments.append(Segment(4096, name=first.memory.name))
    registry.hold(SharedRef("r", 1024, 512), "output 'y'")
    assert calls == [(512, 1024), (2048, 1024), (512, 1024)]


def test_inputs_of_the_loss_dtype_reach_the_job_as_views_of_the_region(
    registry: SharedMemoryRegistry, segments: list[Segment]
) -> None:
    """Multi-hot targets, sample weights and class indices that need no conversion are not
    copied on their way to the worker: they cross as their place."""
    from lossserve.core.engine import LossEngine

    rows = LOGITS.shape[0]
    sizes = (LOGITS.nbytes, LOGITS.nbytes, 4 * rows)
    segment = _segment(segments, sum(sizes))
    registry.register("r", segment.key, 0, sum(sizes))
    segment.array(np.float32, LOGITS.shape)[:] = LOGITS
    segment.array(np.float32, LOGITS.shape, sizes[0])[:] = LOGITS > 0
    segment.array(np.float32, (rows,), sizes[0] + sizes[1])[:] = 1.0

    def read(offset: int, size: int, shape: tuple[int, ...]) -> np.ndarray:
        return registry.read(SharedInput(SharedRef("r", size, offset), "FP32", shape), "x")

    request = LossRequest(
        "binary_cross_entropy",
        read(0, sizes[0], LOGITS.shape),
        read(sizes[0], sizes[1], LOGITS.shape),
        sample_weight=read(sizes[0] + sizes[1], sizes[2], (rows,)),
        return_grad=True,
    )
    job, _ = LossEngine(None, max_elements=1 << 20).prepare(request)  # type: ignore[arg-type]
    for array in (job.logits, job.targets, job.weight):  # type: ignore[attr-defined]
        assert isinstance(array, RegionArray) and array.place is not None
        assert pickle.loads(pickle.dumps(array, protocol=5)).place == array.place


def test_an_output_computed_in_its_place_is_not_copied(
    registry: SharedMemoryRegistry, segments: list[Segment]
) -> None:
    segment = _segment(segments, 1024)
    registry.register("r", segment.key, 0, 1024)
    held = registry.hold(SharedRef("r", 256, 512), "output 'y'")
    there = held.destination(np.dtype("<f4"), (64,), "output 'y'")
    there[:] = 3.0
    assert held.holds(there)
    assert not held.holds(there.copy())
    elsewhere = registry.hold(SharedRef("r", 256, 256), "output 'z'")
    assert not elsewhere.holds(there)
    elsewhere.write(there, "output 'z'")  # copied
    np.testing.assert_array_equal(segment.array(np.float32, (64,), 256), 3.0)
