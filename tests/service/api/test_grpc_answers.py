"""gRPC inference answers written with a remembered head: the same message protobuf writes,
each answer with its own tensors."""

from __future__ import annotations

import numpy as np

from lossserve.api import oip_grpc_convert as convert
from lossserve.api.oip_grpc import _serialize_result
from lossserve.models.engine import InferResult
from lossserve_proto.inference import grpc_service_pb2 as pb


def _result(seed: int, rows: int = 2, id: str = "") -> InferResult:
    rng = np.random.default_rng(seed)
    return InferResult(
        model="m",
        version="3",
        id=id,
        outputs={
            "logits": rng.normal(size=(rows, 4)).astype(np.float32),
            "decisions": rng.integers(0, 4, rows),
            "labels": np.array([f"class-{seed}-{i}" for i in range(rows)], dtype=object),
        },
    )


def test_answers_with_a_remembered_head_are_protobufs_own() -> None:
    for result in [_result(0), _result(1), _result(2, id="x"), _result(3, rows=5), _result(4)]:
        for stream in (False, True):
            wire = _serialize_result(result, stream=stream, limit=1 << 20)
            expected = convert.encode_infer_result(result)
            if stream:
                got = pb.ModelStreamInferResponse.FromString(wire).infer_response
            else:
                got = pb.ModelInferResponse.FromString(wire)
            assert got == expected
            decoded = convert.decode_infer_result(got)
            for name, array in result.outputs.items():
                if array.dtype == object:
                    assert [v.decode() for v in decoded.outputs[name]] == list(array)
                else:
                    np.testing.assert_array_equal(decoded.outputs[name], array)
