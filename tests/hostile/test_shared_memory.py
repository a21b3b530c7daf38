"""Hostile use of the system shared memory extension, over REST and gRPC (the harness's
server allows it): registrations of objects that are not there, not ours, too small or at
absurd offsets; inferences naming regions that are not registered, places past a region's
end, sizes that do not match, outputs that do not fit. Each is refused with a 4xx (a non-OK
status) naming what was wrong, and the server stays as it was (``Harness.batch``).

The one thing a client on the host can do that no test here does: shrink an object under a
registered region while a request reads it (the server then faults on it). Allowing the
extension trusts local clients that far, as the README says.
"""

from __future__ import annotations

from collections.abc import Iterator
from multiprocessing import shared_memory
from typing import Any

import grpc
import pytest

from lossserve_proto.inference import grpc_service_pb2 as oip

from ._harness import Harness, assert_grpc_refused, assert_refused, grpc_call

pytestmark = pytest.mark.slow

SIZE = 4096


@pytest.fixture(scope="module")
def segment() -> Iterator[str]:
    """A 4 KiB object of this test's, its key."""
    memory = shared_memory.SharedMemory(create=True, size=SIZE)
    try:
        yield "/" + memory.name
    finally:
        memory.close()
        memory.unlink()


REGISTRATIONS = [
    # (id, key (KEY: the segment's), offset, byte_size, field)
    ("no-such-object", "/no-such-object-anywhere", 0, 8, "key"),
    ("traversal", "/../../etc/passwd", 0, 8, "key"),
    ("slash-inside", "/dev/shm/x", 0, 8, "key"),
    ("server-segment", "/lossserve-1-abcd1234-0in", 0, 8, "key"),
    ("dot-dot", "..", 0, 8, "key"),
    ("empty-key", "", 0, 8, "key"),
    ("long-key", "/" + "k" * 5000, 0, 8, "key"),
    ("zero-size", "KEY", 0, 0, "byte_size"),
    ("past-the-end", "KEY", 0, SIZE + 1, "key"),
    ("offset-past-the-end", "KEY", SIZE, 1, "key"),
    ("huge-offset", "KEY", 2**63, 8, "key"),
    ("huge-size", "KEY", 0, 2**63, "key"),
]


@pytest.mark.parametrize(
    ("key", "offset", "size", "field"),
    [case[1:] for case in REGISTRATIONS],
    ids=[case[0] for case in REGISTRATIONS],
)
def test_bad_registrations_are_refused(
    hostile: Harness, segment: str, key: str, offset: int, size: int, field: str
) -> None:
    key = segment if key == "KEY" else key
    body = {"key": key, "offset": offset, "byte_size": size}
    assert_refused(hostile.post("/v2/systemsharedmemory/region/bad/register", json=body), field)
    message = oip.SystemSharedMemoryRegisterRequest(
        name="bad", key=key, offset=offset, byte_size=size
    )
    reply = grpc_call(lambda: hostile.oip_stub.SystemSharedMemoryRegister(message))
    assert_grpc_refused(reply, field)
    assert hostile.get("/v2/systemsharedmemory/region/bad/status").status == 404


def test_bad_register_bodies_are_refused(hostile: Harness, segment: str) -> None:
    path = "/v2/systemsharedmemory/region/bad/register"
    for body, field in (
        ({"key": segment}, "byte_size"),
        ({"byte_size": 8}, "key"),
        ({"key": segment, "byte_size": 8, "extra": 1}, "extra"),
        ({"key": 7, "byte_size": 8}, "key"),
        ({"key": segment, "byte_size": "8"}, "byte_size"),
        ({"key": segment, "byte_size": 8, "offset": -1}, "offset"),
        ({"key": segment, "byte_size": 8.5}, "byte_size"),
    ):
        assert_refused(hostile.post(path, json=body), field)
    long_name = "/v2/systemsharedmemory/region/" + "n" * 200 + "/register"
    assert_refused(hostile.post(long_name, json={"key": segment, "byte_size": 8}), "name")
    assert hostile.get("/v2/systemsharedmemory/status").status == 200


def _place(region: str, size: int, offset: int = 0) -> dict[str, Any]:
    return {
        "shared_memory_region": region,
        "shared_memory_byte_size": size,
        "shared_memory_offset": offset,
    }


PLACES = [
    # (id, input parameters, output parameters, field)
    ("unknown-region", _place("nowhere", 256), None, "region"),
    ("offset-past-region", _place("r", 256, SIZE), None, "shared_memory_offset"),
    ("size-unlike-shape", _place("r", 255), None, "shared_memory_byte_size"),
    ("no-size", {"shared_memory_region": "r"}, None, "shared_memory_byte_size"),
    ("size-not-integer", _place("r", "256"), None, "shared_memory_byte_size"),  # type: ignore[arg-type]
    ("size-without-region", {"shared_memory_byte_size": 256}, None, "shared_memory_region"),
    ("output-too-small", _place("r", 256), _place("r", 8, 512), "grad"),
    ("output-unknown-region", _place("r", 256), _place("nowhere", 256), "region"),
    ("output-past-region", _place("r", 256), _place("r", 256, SIZE - 8), "shared_memory_offset"),
]


@pytest.mark.parametrize(
    ("inputs", "outputs", "field"),
    [case[1:] for case in PLACES],
    ids=[case[0] for case in PLACES],
)
def test_bad_places_are_refused(
    hostile: Harness,
    segment: str,
    inputs: dict[str, Any],
    outputs: dict[str, Any] | None,
    field: str,
) -> None:
    register = {"key": segment, "byte_size": SIZE}
    assert hostile.post("/v2/systemsharedmemory/region/r/register", json=register).status == 200
    try:
        document: dict[str, Any] = {
            "inputs": [
                {"name": "logits", "datatype": "FP32", "shape": [16, 4], "parameters": inputs},
                {"name": "targets", "datatype": "INT64", "shape": [16], "data": [0] * 16},
            ]
        }
        if outputs is not None:
            document["outputs"] = [{"name": "grad", "parameters": outputs}]
        assert_refused(hostile.post("/v2/models/loss.focal/infer", json=document), field)
        message = oip.ModelInferRequest(model_name="loss.focal")
        logits = message.inputs.add(name="logits", datatype="FP32", shape=[16, 4])
        _set(logits.parameters, inputs)
        targets = message.inputs.add(name="targets", datatype="INT64", shape=[16])
        targets.contents.int64_contents.extend([0] * 16)
        if outputs is not None:
            _set(message.outputs.add(name="grad").parameters, outputs)
        reply = grpc_call(lambda: hostile.oip_stub.ModelInfer(message))
        assert_grpc_refused(reply, field)
    finally:
        assert hostile.post("/v2/systemsharedmemory/region/r/unregister").status == 200


def _set(parameters: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, str):
            parameters[key].string_param = value
        else:
            parameters[key].int64_param = value


def test_a_model_input_in_a_region_that_is_not_registered(hostile: Harness) -> None:
    document = {
        "inputs": [
            {
                "name": "features",
                "datatype": "FP32",
                "shape": [1, 64],
                "parameters": _place("nowhere", 256),
            }
        ]
    }
    assert_refused(hostile.post("/v2/models/digits/infer", json=document), "region")


def test_status_of_an_unknown_region_is_not_found_on_both_transports(hostile: Harness) -> None:
    reply = hostile.get("/v2/systemsharedmemory/region/nowhere/status")
    assert reply.status == 404, reply.describe()
    request = oip.SystemSharedMemoryStatusRequest(name="nowhere")
    answer = grpc_call(lambda: hostile.oip_stub.SystemSharedMemoryStatus(request))
    assert answer.code is grpc.StatusCode.NOT_FOUND, answer.describe()
