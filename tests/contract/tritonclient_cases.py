"""The unmodified tritonclient (http and grpc) against a real ``lossserve serve`` process.

Run by ``test_tritonclient.py`` in an interpreter of its own, never collected beside the
rest of the suite (``conftest.py`` ignores this file unless ``LOSSSERVE_TRITON_CASES=1``):
tritonclient.grpc's generated ``service_pb2`` and lossserve's ``grpc_service_pb2`` both
define the protobuf package ``inference``, and one process's descriptor pool cannot hold
both. The server is ``python -m lossserve.cli serve --model-repository DIR`` on 127.0.0.1
with ``LOSSSERVE_ADMIN_TOKEN`` set; the repository holds models exported with
``torch.onnx.export`` (``tests/service/models/builders.py``), and every output is checked
against in-process ONNX Runtime on the same rows.
"""

from __future__ import annotations

import queue
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as shm
from tritonclient.utils import InferenceServerException

from bench._server import running_server
from tests.processes import SERVICE_ENV
from tests.service.models.builders import LABELS, reference, rows, write_model

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "contract-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
KINDS = ("http", "grpc")
BAD_REQUEST = {"http": "400", "grpc": "StatusCode.INVALID_ARGUMENT"}
NOT_FOUND = {"http": "404", "grpc": "StatusCode.NOT_FOUND"}
UNAUTHENTICATED = {"http": "401", "grpc": "StatusCode.UNAUTHENTICATED"}


@dataclass(frozen=True)
class Server:
    http_port: int
    grpc_port: int
    repository: Path

    def client(self, kind: str) -> Any:
        if kind == "http":
            return httpclient.InferenceServerClient(f"127.0.0.1:{self.http_port}")
        return grpcclient.InferenceServerClient(f"127.0.0.1:{self.grpc_port}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    repository = tmp_path_factory.mktemp("models")
    write_model(repository, "tiny", 1, seed=1)
    write_model(repository, "tiny", 2, seed=2)  # the latest: the one served
    write_model(repository, "tags", 1, task="multilabel", seed=3)
    write_model(repository, "swap", 1, seed=4)
    env = {**SERVICE_ENV, "LOSSSERVE_ADMIN_TOKEN": TOKEN}
    with running_server(
        ["--model-repository", str(repository)], env, ["/v2/health/ready"], timeout=60
    ) as running:
        yield Server(running.http_port, running.grpc_port, repository)


def _module(kind: str) -> ModuleType:
    return httpclient if kind == "http" else grpcclient


def _input(kind: str, array: np.ndarray, *, binary: bool = True, name: str = "features") -> Any:
    datatype = {np.float32: "FP32", np.float64: "FP64"}[array.dtype.type]
    tensor = _module(kind).InferInput(name, list(array.shape), datatype)
    if kind == "http":
        tensor.set_data_from_numpy(array, binary_data=binary)
    else:
        tensor.set_data_from_numpy(array)
    return tensor


def _output(kind: str, name: str, *, binary: bool = True, class_count: int = 0) -> Any:
    if kind == "http":
        return httpclient.InferRequestedOutput(name, binary_data=binary, class_count=class_count)
    return grpcclient.InferRequestedOutput(name, class_count=class_count)


def _failure(call: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value


def _as_json(kind: str) -> dict[str, Any]:
    return {} if kind == "http" else {"as_json": True}


@pytest.mark.parametrize("kind", KINDS)
def test_health_and_readiness(server: Server, kind: str) -> None:
    client = server.client(kind)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("tiny")
    assert client.is_model_ready("tiny", "2")
    assert not client.is_model_ready("tiny", "1")  # on disk, not served: the latest is


@pytest.mark.parametrize("kind", KINDS)
def test_server_metadata(server: Server, kind: str) -> None:
    metadata = server.client(kind).get_server_metadata(**_as_json(kind))
    assert metadata["name"] == "lossserve"
    assert {"classification", "binary_tensor_data", "model_repository"} <= set(
        metadata["extensions"]
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("version", ["", "2"])
def test_model_metadata(server: Server, kind: str, version: str) -> None:
    metadata = server.client(kind).get_model_metadata("tiny", version, **_as_json(kind))
    assert metadata["name"] == "tiny"
    assert metadata["versions"] == ["2"]
    assert metadata["platform"] == "onnxruntime_onnx"
    tensors = {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in metadata["inputs"]}
    assert tensors == {"features": ("FP32", [-1, 4])}
    outputs = {
        t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in metadata["outputs"]
    }
    assert outputs == {
        "logits": ("FP32", [-1, 3]),
        "probabilities": ("FP32", [-1, 3]),
        "decisions": ("INT64", [-1]),
    }
    if kind == "http":  # gRPC's metadata carries it too, in a field tritonclient skips
        assert metadata["parameters"]["execution_provider"] in (
            "CPUExecutionProvider",
            "CUDAExecutionProvider",
        )


@pytest.mark.parametrize("kind", KINDS)
def test_model_config(server: Server, kind: str) -> None:
    config = server.client(kind).get_model_config("tiny", **_as_json(kind))
    config = config if kind == "http" else config["config"]
    assert config["name"] == "tiny"
    assert config["platform"] == "onnxruntime_onnx"
    assert int(config["max_batch_size"]) == 16
    assert [(i["name"], i["data_type"], [int(d) for d in i["dims"]]) for i in config["input"]] == [
        ("features", "TYPE_FP32", [4])
    ]
    assert [o["name"] for o in config["output"]] == ["logits", "probabilities", "decisions"]
    assert int(config["dynamic_batching"]["max_queue_delay_microseconds"]) == 500


@pytest.mark.parametrize(("kind", "binary"), [("http", True), ("http", False), ("grpc", True)])
def test_infer_equals_in_process_onnxruntime(server: Server, kind: str, binary: bool) -> None:
    features = rows(5, seed=11)
    expected = reference(server.repository / "tiny" / "2", features)
    result = server.client(kind).infer(
        "tiny",
        [_input(kind, features, binary=binary)],
        outputs=[_output(kind, name, binary=binary) for name in expected],
        request_id="req-1",
    )
    response = result.get_response(**_as_json(kind))
    assert response["model_name"] == "tiny"
    assert response["model_version"] == "2"
    assert response["id"] == "req-1"
    np.testing.assert_allclose(result.as_numpy("logits"), expected["logits"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), expected["probabilities"], rtol=1e-6, atol=1e-7
    )
    np.testing.assert_array_equal(result.as_numpy("decisions"), expected["decisions"])


@pytest.mark.parametrize("kind", KINDS)
def test_infer_without_requested_outputs_answers_all(server: Server, kind: str) -> None:
    features = rows(3, seed=12)
    expected = reference(server.repository / "tags" / "1", features)
    result = server.client(kind).infer("tags", [_input(kind, features)], model_version="1")
    for name, values in expected.items():
        np.testing.assert_allclose(result.as_numpy(name), values, rtol=1e-6, atol=1e-6)
    assert result.as_numpy("decisions").shape == (3, len(LABELS["multilabel"]))


@pytest.mark.parametrize("kind", KINDS)
def test_classification_extension(server: Server, kind: str) -> None:
    features = rows(4, seed=13)
    expected = reference(server.repository / "tiny" / "2", features)["probabilities"]
    result = server.client(kind).infer(
        "tiny",
        [_input(kind, features)],
        outputs=[_output(kind, "probabilities", class_count=2)],
    )
    top = result.as_numpy("probabilities")
    assert top.shape == (4, 2)
    labels = LABELS["multiclass"]
    for row in range(4):
        order = np.argsort(-expected[row])[:2]
        entries = [item.decode().split(":") for item in top[row]]
        assert [int(index) for _, index, _ in entries] == list(order)
        assert [label for _, _, label in entries] == [labels[i] for i in order]
        np.testing.assert_allclose(
            [float(value) for value, _, _ in entries], expected[row][order], atol=1e-6
        )


def test_grpc_stream_infer_answers_in_order_and_survives_an_error(server: Server) -> None:
    client = server.client("grpc")
    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    try:
        batches = [rows(2, seed=21), rows(3, seed=22)]
        client.async_stream_infer("tiny", [_input("grpc", batches[0])], request_id="a")
        client.async_stream_infer("tiny", [_input("grpc", batches[0], name="nope")], request_id="b")
        client.async_stream_infer("tiny", [_input("grpc", batches[1])], request_id="c")
        got = [answers.get(timeout=30) for _ in range(3)]
    finally:
        client.stop_stream()
    (first, error_a), (failed, error), (third, error_c) = got
    assert error_a is None and error_c is None
    assert failed is None
    assert "unexpected input 'nope'" in error.message()
    for result, features in ((first, batches[0]), (third, batches[1])):
        expected = reference(server.repository / "tiny" / "2", features)
        np.testing.assert_allclose(result.as_numpy("logits"), expected["logits"], atol=1e-6)
        np.testing.assert_array_equal(result.as_numpy("decisions"), expected["decisions"])


def _bad_shape(kind: str) -> Any:
    return [_input(kind, np.zeros((2, 5), dtype=np.float32))]


def _bad_dtype(kind: str) -> Any:
    return [_input(kind, np.zeros((2, 4), dtype=np.float64))]


def _bad_length(kind: str) -> Any:
    tensor = _input(kind, np.zeros((2, 4), dtype=np.float32))
    tensor.set_shape([3, 4])  # the 32 bytes already set no longer match the shape
    return [tensor]


ERRORS = {
    "input name": ("tiny", "", lambda k: [_input(k, rows(2), name="feature")], BAD_REQUEST,
                   "unexpected input 'feature': model 'tiny' has one input, 'features'"),
    "shape": ("tiny", "", _bad_shape, BAD_REQUEST,
              "input 'features': expected shape [-1, 4], got [2, 5]"),
    "dtype": ("tiny", "", _bad_dtype, BAD_REQUEST,
              "input 'features': expected datatype FP32, got FP64"),
    "byte length": ("tiny", "", _bad_length, BAD_REQUEST,
                    "input 'features': expected 48 bytes for shape [3, 4] of FP32, got 32"),
    "unknown model": ("nosuch", "", lambda k: [_input(k, rows(2))], NOT_FOUND,
                      "unknown model 'nosuch'"),
    "unknown version": ("tiny", "7", lambda k: [_input(k, rows(2))], NOT_FOUND,
                        "model 'tiny' has no version 7 being served (serving 2)"),
}  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_requests_answer_clear_errors(server: Server, kind: str, case: str) -> None:
    model, version, inputs, status, message = ERRORS[case]
    client = server.client(kind)
    error = _failure(lambda: client.infer(model, inputs(kind), model_version=version))
    assert error.status() == status[kind]
    assert error.message() == message


def test_malformed_header_length_is_a_400_with_the_protocols_body(server: Server) -> None:
    url = f"http://127.0.0.1:{server.http_port}/v2/models/tiny/infer"
    for value in ("abc", "-1", "99999"):
        response = httpx.post(
            url, content=b'{"inputs": []}', headers={"Inference-Header-Content-Length": value}
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "Inference-Header-Content-Length: expected an integer in [0, 14] (the "
            f"body's length), got {value!r}"
        }


@pytest.mark.parametrize("kind", KINDS)
def test_repository_api_needs_the_token(server: Server, kind: str) -> None:
    client = server.client(kind)
    for headers in (None, {"authorization": "Bearer wrong"}):
        error = _failure(lambda h=headers: client.get_model_repository_index(headers=h))
        assert error.status() == UNAUTHENTICATED[kind]
        error = _failure(lambda h=headers: client.unload_model("swap", headers=h))
        assert error.status() == UNAUTHENTICATED[kind]
    assert client.is_model_ready("swap")


@pytest.mark.parametrize("kind", KINDS)
def test_repository_index_unload_and_load(server: Server, kind: str) -> None:
    client = server.client(kind)
    index = client.get_model_repository_index(headers=AUTH, **_as_json(kind))
    models = index if kind == "http" else index["models"]
    states = {m["name"]: (m.get("version"), m.get("state")) for m in models}
    assert states == {"swap": ("1", "READY"), "tags": ("1", "READY"), "tiny": ("2", "READY")}
    client.unload_model("swap", headers=AUTH)
    assert not client.is_model_ready("swap")
    error = _failure(lambda: client.infer("swap", [_input(kind, rows(1))]))
    assert error.status() == NOT_FOUND[kind]
    assert error.message() == "model 'swap' is not available: unloaded"
    client.load_model("swap", headers=AUTH)
    assert client.is_model_ready("swap")
    client.infer("swap", [_input(kind, rows(1))])


@pytest.mark.parametrize("kind", KINDS)
def test_a_corrupt_new_version_fails_to_load_and_the_old_keeps_serving(
    server: Server, kind: str
) -> None:
    client = server.client(kind)
    features = rows(3, seed=31)
    before = client.infer("swap", [_input(kind, features)]).as_numpy("logits")
    directory = write_model(server.repository, "swap", 2, seed=5)
    try:
        with (directory / "model.onnx").open("ab") as handle:
            handle.write(b"\0")  # the sha256 no longer matches the card
        error = _failure(lambda: client.load_model("swap", headers=AUTH))
        assert error.status() == BAD_REQUEST[kind]
        assert error.message().startswith("failed to load model 'swap' version 2: the sha256 of")
        assert client.is_model_ready("swap", "1")
        after = client.infer("swap", [_input(kind, features)])
        assert after.get_response(**_as_json(kind))["model_version"] == "1"
        np.testing.assert_array_equal(after.as_numpy("logits"), before)
    finally:
        shutil.rmtree(directory)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["..", ".env", "a b", "x" * 65])
def test_model_names_that_could_leave_the_repository_are_refused(
    server: Server, kind: str, name: str
) -> None:
    error = _failure(lambda: server.client(kind).load_model(name, headers=AUTH))
    assert error.status() in (BAD_REQUEST[kind], NOT_FOUND[kind])
    if error.status() == BAD_REQUEST[kind]:
        assert error.message().startswith("model name: expected 1-64 letters")


def test_grpc_path_traversal_name_is_refused(server: Server) -> None:
    error = _failure(lambda: server.client("grpc").load_model("../tiny", headers=AUTH))
    assert error.status() == BAD_REQUEST["grpc"]
    assert error.message() == (
        "model name: expected 1-64 letters, digits, '_', '.' or '-', starting with a letter "
        "or digit, got '../tiny'"
    )


def test_metrics_report_each_models_execution_provider(server: Server) -> None:
    text = httpx.get(f"http://127.0.0.1:{server.http_port}/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("lossserve_model_info{")]
    assert any('model="tiny"' in line and 'version="2"' in line for line in lines), lines
    assert all("ExecutionProvider" in line for line in lines), lines


def test_our_proto_numbers_its_fields_as_tritonclient_does(tmp_path: Path) -> None:
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc
    from tritonclient.grpc import model_config_pb2, service_pb2

    out = tmp_path / "inference.pb"
    status = protoc.main(
        ["protoc", f"-I{ROOT / 'proto'}", f"--descriptor_set_out={out}",
         str(ROOT / "proto" / "inference" / "grpc_service.proto")]
    )  # fmt: skip
    assert status == 0
    ours = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    theirs: dict[str, descriptor_pb2.DescriptorProto] = {}

    def index(messages: Any, prefix: str, into: dict[str, Any]) -> None:
        for message in messages:
            into[prefix + message.name] = message
            index(message.nested_type, f"{prefix}{message.name}.", into)

    for module in (service_pb2, model_config_pb2):
        file = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(file)
        index(file.message_type, "", theirs)
    mine: dict[str, descriptor_pb2.DescriptorProto] = {}
    index(ours.message_type, "", mine)
    compared = 0
    for name, message in mine.items():
        if name == "ModelMetadataResponse.ParametersEntry":
            continue  # our addition (field 6 of ModelMetadataResponse): clients skip it
        fields = {f.number: f for f in theirs[name].field}
        for field in message.field:
            if name == "ModelMetadataResponse" and field.number == 6:
                continue
            other = fields[field.number]
            assert (field.name, field.type, field.label) == (other.name, other.type, other.label)
            assert field.type_name.rsplit(".", 1)[-1] == other.type_name.rsplit(".", 1)[-1]
            compared += 1
    assert compared > 80
    their_service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for method in ours.service[0].method:
        other = their_service.methods_by_name[method.name]
        assert method.input_type.rsplit(".", 1)[-1] == other.input_type.name
        assert method.output_type.rsplit(".", 1)[-1] == other.output_type.name


# -------------------------------------------------------------------------- loss models


def _loss_input(kind: str, name: str, array: np.ndarray, binary: bool = True) -> Any:
    datatype = {np.float32: "FP32", np.int64: "INT64"}[array.dtype.type]
    tensor = _module(kind).InferInput(name, list(array.shape), datatype)
    if kind == "http":
        tensor.set_data_from_numpy(array, binary_data=binary)
    else:
        tensor.set_data_from_numpy(array)
    return tensor


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("binary", [True, False])
def test_a_loss_model_computes_value_gradient_and_hessian(
    server: Server, kind: str, binary: bool
) -> None:
    """loss.focal through the unmodified client, its parameters as request parameters:
    the same numbers as losses.derivatives in this process."""
    import torch

    import losses

    client = server.client(kind)
    assert client.is_model_ready("loss.focal")
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (64, 5)).astype(np.float32)
    targets = rng.integers(0, 5, 64).astype(np.int64)
    weight = rng.uniform(0.5, 2.0, 64).astype(np.float32)
    inputs = [
        _loss_input(kind, "logits", logits, binary),
        _loss_input(kind, "targets", targets, binary),
        _loss_input(kind, "sample_weight", weight, binary),
    ]
    outputs = [_output(kind, name, binary=binary) for name in ("loss", "grad", "hessian_diag")]
    parameters = {"gamma": 1.5, "alpha": "[0.5, 1.0, 1.0, 2.0, 1.0]", "reduction": "sum"}
    answer = client.infer("loss.focal", inputs, outputs=outputs, parameters=parameters)
    expected = losses.derivatives(
        "focal",
        torch.from_numpy(logits),
        torch.from_numpy(targets),
        hessian=True,
        reduction="sum",
        sample_weight=torch.from_numpy(weight),
        gamma=1.5,
        alpha=[0.5, 1.0, 1.0, 2.0, 1.0],
    )
    assert answer.as_numpy("loss").shape == (1,)
    np.testing.assert_allclose(answer.as_numpy("loss")[0], expected.value.item(), rtol=1e-5)
    np.testing.assert_allclose(answer.as_numpy("grad"), expected.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert expected.hessian_diag is not None
    np.testing.assert_allclose(
        answer.as_numpy("hessian_diag"), expected.hessian_diag.numpy(), rtol=1e-5, atol=1e-7
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_loss_model_answers_only_the_outputs_asked_for(server: Server, kind: str) -> None:
    client = server.client(kind)
    logits = np.array([[0.2, -1.0, 3.0], [1.0, 0.0, -2.0]], dtype=np.float32)
    targets = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    inputs = [_loss_input(kind, "logits", logits), _loss_input(kind, "targets", targets)]
    answer = client.infer(  # priority and timeout travel as request parameters too
        "loss.binary_cross_entropy",
        inputs,
        outputs=[_output(kind, "loss")],
        parameters={"reduction": "none"},
        priority=1,
        timeout=30_000_000,
    )
    per_element = answer.as_numpy("loss")
    assert per_element.shape == (2, 3)
    expected = -(
        targets * np.log(1 / (1 + np.exp(-logits)))
        + (1 - targets) * np.log(1 / (1 + np.exp(logits)))
    )
    np.testing.assert_allclose(per_element, expected, rtol=1e-5)
    assert answer.as_numpy("grad") is None


@pytest.mark.parametrize("kind", KINDS)
def test_loss_model_metadata_and_config(server: Server, kind: str) -> None:
    client = server.client(kind)
    metadata = client.get_model_metadata("loss.dice", **_as_json(kind))
    assert metadata["platform"] == "lossserve_loss"
    assert [i["name"] for i in metadata["inputs"]] == ["logits", "targets", "sample_weight"]
    assert [o["name"] for o in metadata["outputs"]] == ["loss", "grad", "hessian_diag"]
    config = client.get_model_config("loss.dice", **_as_json(kind))
    config = config.get("config", config)
    assert config["name"] == "loss.dice"
    assert int(config.get("max_batch_size", 0)) == 0  # proto3 JSON leaves a 0 out


@pytest.mark.parametrize("kind", KINDS)
def test_loss_model_errors_name_what_was_wrong(server: Server, kind: str) -> None:
    client = server.client(kind)
    logits = np.zeros((4, 3), dtype=np.float32)
    targets = np.array([0, 1, 2, 0], dtype=np.int64)
    inputs = [_loss_input(kind, "logits", logits), _loss_input(kind, "targets", targets)]
    missing = _failure(lambda: client.get_model_metadata("loss.focl"))
    assert NOT_FOUND[kind] in str(missing.status())
    assert "loss models are loss.<loss>" in str(missing)
    bad = _failure(lambda: client.infer("loss.focal", inputs, parameters={"gamma": -1.0}))
    assert BAD_REQUEST[kind] in str(bad.status()) and "gamma" in str(bad)
    unknown = _failure(lambda: client.infer("loss.focal", inputs, parameters={"gama": 1.0}))
    assert BAD_REQUEST[kind] in str(unknown.status()) and "gama" in str(unknown)
    deep = "[" * 3000 + "]" * 3000  # nesting past the JSON parser's stack
    nested = _failure(lambda: client.infer("loss.focal", inputs, parameters={"alpha": deep}))
    assert BAD_REQUEST[kind] in str(nested.status()) and "alpha" in str(nested)
    only_logits = _failure(lambda: client.infer("loss.focal", inputs[:1]))
    assert BAD_REQUEST[kind] in str(only_logits.status()) and "targets" in str(only_logits)
    out_of_range = [inputs[0], _loss_input(kind, "targets", np.array([0, 1, 7, 0]))]
    wrong = _failure(lambda: client.infer("loss.focal", out_of_range))
    assert BAD_REQUEST[kind] in str(wrong.status())


# -------------------------------------------------------------------- system shared memory


@pytest.fixture(scope="module")
def shm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Shared memory allowed, two frontends: a region registered on one connection serves
    requests that arrive on the other frontend."""
    repository = tmp_path_factory.mktemp("shm-models")
    write_model(repository, "tiny", 1, seed=1)
    # room for the slow request's estimated memory (its real peak is far below)
    env = {
        **SERVICE_ENV,
        "LOSSSERVE_FRONTENDS": "2",
        "LOSSSERVE_MAX_REQUEST_MEMORY_BYTES": str(8 << 30),
    }
    with running_server(
        ["--model-repository", str(repository), "--allow-shared-memory"],
        env,
        ["/v2/health/ready"],
        timeout=90,
    ) as running:
        yield Server(running.http_port, running.grpc_port, repository)


@pytest.fixture
def regions() -> Iterator[list[Any]]:
    """tritonclient's own shared-memory regions, destroyed after the test."""
    made: list[Any] = []
    yield made
    for handle in made:
        shm.destroy_shared_memory_region(handle)


def _region(made: list[Any], name: str, size: int) -> Any:
    handle = shm.create_shared_memory_region(name, f"/tc-shm-{name}", size)
    made.append(handle)
    return handle


def _placed(
    kind: str, name: str, shape: Any, datatype: str, region: str, size: int, offset: int = 0
) -> Any:
    tensor = _module(kind).InferInput(name, list(shape), datatype)
    tensor.set_shared_memory(region, size, offset)
    return tensor


def _placed_output(kind: str, name: str, region: str, size: int, offset: int = 0) -> Any:
    output = _module(kind).InferRequestedOutput(name)
    output.set_shared_memory(region, size, offset)
    return output


@pytest.mark.parametrize("kind", KINDS)
def test_shared_memory_is_advertised_and_off_elsewhere(
    shm_server: Server, server: Server, kind: str
) -> None:
    metadata = shm_server.client(kind).get_server_metadata(**_as_json(kind))
    assert "system_shared_memory" in metadata["extensions"]
    assert (
        "system_shared_memory"
        not in server.client(kind).get_server_metadata(**_as_json(kind))["extensions"]
    )
    failure = _failure(
        lambda: server.client(kind).register_system_shared_memory("r", "/anything", 64)
    )
    assert "LOSSSERVE_ALLOW_SHARED_MEMORY" in str(failure)


@pytest.mark.parametrize("kind", KINDS)
def test_a_loss_model_through_shared_memory(
    shm_server: Server, regions: list[Any], kind: str
) -> None:
    """logits and targets in one region, the gradient and Hessian written into another:
    nothing of them crosses the socket, and the numbers are losses.derivatives'."""
    import torch

    import losses

    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (256, 7)).astype(np.float32)
    targets = rng.integers(0, 7, 256).astype(np.int64)
    size = logits.nbytes
    inputs = _region(regions, f"in-{kind}", size + targets.nbytes)
    outputs = _region(regions, f"out-{kind}", 2 * size)
    shm.set_shared_memory_region(inputs, [logits])
    shm.set_shared_memory_region(inputs, [targets], offset=size)
    client = shm_server.client(kind)
    client.register_system_shared_memory(f"in-{kind}", f"/tc-shm-in-{kind}", size + targets.nbytes)
    client.register_system_shared_memory(f"out-{kind}", f"/tc-shm-out-{kind}", 2 * size)
    expected = losses.derivatives(
        "focal", torch.from_numpy(logits), torch.from_numpy(targets), hessian=True, gamma=2.0
    )
    assert expected.hessian_diag is not None
    for attempt in range(6):  # fresh connections: some reach the other frontend
        shm.set_shared_memory_region(outputs, [np.zeros((2, *logits.shape), np.float32)])
        answer = shm_server.client(kind).infer(
            "loss.focal",
            [
                _placed(kind, "logits", logits.shape, "FP32", f"in-{kind}", size),
                _placed(
                    kind, "targets", targets.shape, "INT64", f"in-{kind}", targets.nbytes, size
                ),
            ],
            outputs=[
                _output(kind, "loss"),
                _placed_output(kind, "grad", f"out-{kind}", size),
                _placed_output(kind, "hessian_diag", f"out-{kind}", size, size),
            ],
            parameters={"gamma": 2.0},
            request_id=f"shm-{attempt}",
        )
        np.testing.assert_allclose(answer.as_numpy("loss")[0], expected.value.item(), rtol=1e-5)
        grad = shm.get_contents_as_numpy(outputs, np.float32, list(logits.shape))
        hessian = shm.get_contents_as_numpy(outputs, np.float32, list(logits.shape), offset=size)
        np.testing.assert_allclose(grad, expected.grad.numpy(), rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(hessian, expected.hessian_diag.numpy(), rtol=1e-5, atol=1e-8)
    status = shm_server.client(kind).get_system_shared_memory_status(**_as_json(kind))
    names = [r["name"] for r in status] if kind == "http" else sorted(status["regions"])
    assert f"in-{kind}" in names and f"out-{kind}" in names
    client.unregister_system_shared_memory(f"in-{kind}")
    client.unregister_system_shared_memory(f"out-{kind}")


@pytest.mark.parametrize("kind", KINDS)
def test_a_models_features_and_outputs_through_shared_memory(
    shm_server: Server, regions: list[Any], kind: str
) -> None:
    features = rows(9, seed=21)
    expected = reference(shm_server.repository / "tiny" / "1", features)
    probabilities = expected["probabilities"].astype(np.float32)
    handle = _region(regions, f"model-{kind}", features.nbytes + probabilities.nbytes)
    shm.set_shared_memory_region(handle, [features])
    client = shm_server.client(kind)
    client.register_system_shared_memory(
        f"model-{kind}", f"/tc-shm-model-{kind}", features.nbytes + probabilities.nbytes
    )
    answer = client.infer(
        "tiny",
        [_placed(kind, "features", features.shape, "FP32", f"model-{kind}", features.nbytes)],
        outputs=[
            _output(kind, "decisions"),
            _placed_output(
                kind, "probabilities", f"model-{kind}", probabilities.nbytes, features.nbytes
            ),
        ],
    )
    np.testing.assert_array_equal(answer.as_numpy("decisions"), expected["decisions"])
    written = shm.get_contents_as_numpy(
        handle, np.float32, list(probabilities.shape), offset=features.nbytes
    )
    np.testing.assert_allclose(written, probabilities, rtol=1e-6, atol=1e-7)
    client.unregister_system_shared_memory(f"model-{kind}")


@pytest.mark.parametrize("kind", KINDS)
def test_bad_regions_offsets_and_sizes_answer_clear_errors(
    shm_server: Server, regions: list[Any], kind: str
) -> None:
    client = shm_server.client(kind)
    _region(regions, f"bad-{kind}", 1024)
    key = f"/tc-shm-bad-{kind}"
    cases = {
        "no object": (
            lambda: client.register_system_shared_memory("x", "/no-such-key", 8),
            "no shared-memory object '/no-such-key'",
        ),
        "past the end": (
            lambda: client.register_system_shared_memory("x", key, 2048, 512),
            "has 1024 bytes, expected at least 2560",
        ),
        "zero size": (
            lambda: client.register_system_shared_memory("x", key, 0),
            "byte_size: expected a positive size, got 0",
        ),
        "server's own": (
            lambda: client.register_system_shared_memory("x", "/lossserve-1-a-0in", 8),
            "names one of the server's own segments",
        ),
    }
    for name, (call, message) in cases.items():
        assert message in str(_failure(call)), name
    client.register_system_shared_memory(f"bad-{kind}", key, 1024)
    twice = _failure(lambda: client.register_system_shared_memory(f"bad-{kind}", key, 8))
    assert "is registered already" in str(twice)
    logits = np.zeros((8, 4), np.float32)
    targets = _loss_input(kind, "targets", np.zeros(8, np.int64))

    def infer(placed: Any, *outputs: Any) -> Any:
        return lambda: client.infer("loss.focal", [placed, targets], outputs=list(outputs) or None)

    cases = {
        "unknown region": (
            infer(_placed(kind, "logits", logits.shape, "FP32", "nope", 128)),
            "shared_memory_region 'nope': no such region is registered",
        ),
        "offset past the end": (
            infer(_placed(kind, "logits", logits.shape, "FP32", f"bad-{kind}", 128, 1000)),
            "shared_memory_offset 1000 + shared_memory_byte_size 128 exceed region",
        ),
        "size unlike the shape": (
            infer(_placed(kind, "logits", logits.shape, "FP32", f"bad-{kind}", 120)),
            "expected shared_memory_byte_size 128 for its shape and datatype, got 120",
        ),
        "output too small": (
            infer(
                _placed(kind, "logits", logits.shape, "FP32", f"bad-{kind}", 128),
                _placed_output(kind, "grad", f"bad-{kind}", 64, 512),
            ),
            "output 'grad': the output takes 128 bytes, shared_memory_byte_size is 64",
        ),
    }
    for name, (call, message) in cases.items():
        failure = _failure(call)
        assert message in str(failure), name
        assert BAD_REQUEST[kind] in str(failure.status()), name
    client.unregister_system_shared_memory(f"bad-{kind}")
    assert client.is_server_live()


def test_unregister_while_in_use(shm_server: Server, regions: list[Any]) -> None:
    """A request in flight finishes with its region; later ones naming it are refused."""
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 1, (2048, 128)).astype(np.float32)
    targets = (rng.uniform(size=(2048, 128)) < 0.1).astype(np.float32)
    size = logits.nbytes
    handle = _region(regions, "busy", 3 * size)
    shm.set_shared_memory_region(handle, [logits, targets])
    client = shm_server.client("grpc")
    client.register_system_shared_memory("busy", "/tc-shm-busy", 3 * size)
    answers: queue.Queue[Any] = queue.Queue()
    placed = [
        _placed("grpc", "logits", logits.shape, "FP32", "busy", size),
        _placed("grpc", "targets", targets.shape, "FP32", "busy", size, size),
    ]
    outputs = [_placed_output("grpc", "hessian_diag", "busy", size, 2 * size)]
    # subset softmax's Hessian up to k = 64: a recursion over the classes (about 2 s here)
    client.async_infer(
        "loss.subset_softmax",
        placed,
        lambda result, error: answers.put((result, error)),
        outputs=outputs,
        parameters={"max_k": 64},
    )
    time.sleep(0.3)
    client.unregister_system_shared_memory("busy")
    _, error = answers.get(timeout=60)
    assert error is None, f"{error.status()} {error.message()}"
    written = shm.get_contents_as_numpy(handle, np.float32, list(logits.shape), offset=2 * size)
    assert np.isfinite(written).all() and np.abs(written).sum() > 0
    later = _failure(lambda: client.infer("loss.subset_softmax", placed, outputs=outputs))
    assert "'busy': no such region is registered" in str(later)
