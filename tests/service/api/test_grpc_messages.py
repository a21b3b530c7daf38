"""The wire helpers that keep tensor bytes away from protobuf (``lossserve.api.grpc_messages``)
held to protobuf itself: a message split and parsed here equals protobuf's parse of it, an
answer written here parses with protobuf to the message protobuf would have written, and
anything that is not plain wire format is left to protobuf."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from lossserve.api import oip_grpc_convert as convert
from lossserve.api.grpc_messages import Undecodable, bytes_field, parser, split_bytes
from lossserve.api.oip_grpc import PARSERS, _serialize_result, parse_infer_request
from lossserve.models.engine import InferResult
from lossserve_proto.inference import grpc_service_pb2 as pb

RAW = pb.ModelInferRequest.DESCRIPTOR.fields_by_name["raw_input_contents"].number

names = st.text(min_size=0, max_size=12)
contents = st.lists(st.binary(max_size=300), max_size=4)


def _request(
    model: str, version: str, request_id: str, raw: list[bytes], shapes: list[list[int]]
) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name=model, model_version=version, id=request_id)
    for index, shape in enumerate(shapes):
        message.inputs.add(name=f"in{index}", datatype="FP32", shape=shape)
    message.outputs.add(name="out").parameters["classification"].int64_param = 3
    message.parameters["priority"].int64_param = 2
    message.raw_input_contents.extend(raw)
    return message


@settings(max_examples=200, deadline=None)
@given(
    names,
    names,
    names,
    contents,
    st.lists(st.lists(st.integers(0, 2**40), max_size=3), max_size=3),
)
def test_a_split_request_equals_protobufs_parse(
    model: str, version: str, request_id: str, raw: list[bytes], shapes: list[list[int]]
) -> None:
    wire = _request(model, version, request_id, raw, shapes).SerializeToString()
    message, split, *_ = parse_infer_request(wire)
    expected = pb.ModelInferRequest.FromString(wire)
    assert [bytes(view) for view in split] == list(expected.raw_input_contents)
    assert not message.raw_input_contents
    message.raw_input_contents.extend(bytes(view) for view in split)
    assert message == expected


def test_the_tensor_bytes_are_views_of_the_received_message_not_copies() -> None:
    data = np.arange(1000, dtype=np.float32).tobytes()
    wire = _request("m", "", "", [data, b"xy"], [[1000], [2]]).SerializeToString()
    split = split_bytes(wire, RAW)
    assert split is not None
    _, views = split
    assert [view.obj is wire for view in views] == [True, True]
    assert [bytes(view) for view in views] == [data, b"xy"]


def test_fields_in_any_order_and_interleaved_contents_keep_their_order() -> None:
    # protobuf accepts fields in any order; a repeated field's values keep theirs
    first = pb.ModelInferRequest(raw_input_contents=[b"one"]).SerializeToString()
    middle = pb.ModelInferRequest(model_name="m").SerializeToString()
    last = pb.ModelInferRequest(raw_input_contents=[b"two"]).SerializeToString()
    message, views, *_ = parse_infer_request(first + middle + last)
    assert message.model_name == "m"
    assert [bytes(view) for view in views] == [b"one", b"two"]


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(b"\x0a\x05ab", id="truncated-string"),
        pytest.param(b"\x3a\x7f" + b"x" * 3, id="truncated-contents"),
        pytest.param(b"\x08", id="truncated-varint"),
        pytest.param(b"\x0f", id="wire-type-7"),
        pytest.param(b"\x08" + b"\xff" * 11, id="varint-too-long"),
    ],
)
def test_what_is_not_plain_wire_format_is_left_to_protobuf(wire: bytes) -> None:
    assert split_bytes(wire, RAW) is None
    parse, descriptor = PARSERS["/inference.GRPCInferenceService/ModelInfer"]
    outcome = parser(parse, "ModelInfer", descriptor)(wire)
    with pytest.raises(DecodeError):
        pb.ModelInferRequest.FromString(wire)
    assert isinstance(outcome, Undecodable), outcome
    assert outcome.message.startswith("request: expected a valid ModelInfer message")


def test_a_group_is_left_to_protobuf_which_keeps_it_as_an_unknown_field() -> None:
    wire = b"\x0b\x0c" + pb.ModelInferRequest(raw_input_contents=[b"z"]).SerializeToString()
    assert split_bytes(wire, RAW) is None
    message, views, *_ = parse_infer_request(wire)
    assert message == pb.ModelInferRequest.FromString(wire)
    assert [bytes(view) for view in views] == [b"z"]


def test_a_string_that_is_not_utf8_is_named_with_the_custom_parser() -> None:
    wire = b"\x0a\x02\xff\xfe" + pb.ModelInferRequest(raw_input_contents=[b"z"]).SerializeToString()
    parse, descriptor = PARSERS["/inference.GRPCInferenceService/ModelInfer"]
    outcome = parser(parse, "ModelInfer", descriptor)(wire)
    assert isinstance(outcome, Undecodable)
    assert outcome.message == "model_name: expected a UTF-8 string, got other bytes"


def test_a_message_of_many_small_fields_is_left_to_protobuf() -> None:
    # walking millions of fields in Python would cost more than protobuf's parse
    wire = pb.ModelInferRequest(model_name="m").SerializeToString() * 5000
    assert split_bytes(wire, RAW) is None
    message, views, *_ = parse_infer_request(wire)
    assert message.model_name == "m" and len(views) == 0


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_written_here_is_the_one_protobuf_writes(stream: bool) -> None:
    outputs = {
        "probabilities": np.random.default_rng(0).random((300, 10), dtype=np.float32),
        "labels": np.arange(300, dtype=np.int64)[::2],  # not contiguous
        "flag": np.array([[True, False]]),
        "big-endian": np.arange(6, dtype=">f4").reshape(2, 3),
        "names": np.array([b"a", "ü".encode(), b""], dtype=object),
    }
    result = InferResult(model="digits", version="1", id="r-1", outputs=outputs)
    wire = _serialize_result(result, stream=stream, limit=1 << 30)
    expected = convert.encode_infer_result(result)
    if stream:
        answer = pb.ModelStreamInferResponse.FromString(wire)
        assert answer == pb.ModelStreamInferResponse(infer_response=expected)
        message = answer.infer_response
    else:
        message = pb.ModelInferResponse.FromString(wire)
        assert message == expected
    back = convert.decode_infer_result(message).outputs
    assert list(back) == list(outputs)
    for name, array in outputs.items():
        np.testing.assert_array_equal(back[name], array)


@given(st.lists(st.binary(max_size=200_000), max_size=3))
@settings(max_examples=50, deadline=None)
def test_bytes_field_is_protobufs_encoding(values: list[bytes]) -> None:
    wire = b"".join(bytes(piece) for piece in bytes_field(RAW, values))
    assert wire == pb.ModelInferRequest(raw_input_contents=values).SerializeToString()
