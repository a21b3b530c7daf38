"""The committed generated Python code is exactly what ``scripts/generate.py`` writes now.

That is the gRPC modules and their mypy-protobuf type stubs under
``proto/lossserve_proto/{lossserve,inference}`` and the openapi-python-client package under
``clients/python/lossserve_client/openapi``; CI also runs ``make generate`` and fails on any
difference (the TypeScript client's included).
"""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = (
    "proto/lossserve_proto/lossserve",
    "proto/lossserve_proto/inference",
    "clients/python/lossserve_client/openapi",
)


def _generated(root: Path) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for folder in GENERATED
        for p in (root / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_committed_generated_code_matches_the_contracts(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh, committed = _generated(tmp_path), _generated(ROOT)
    assert any(name.endswith("_pb2_grpc.pyi") for name in fresh), "no gRPC type stubs"
    assert any(name.endswith("api/losses/compute_loss.py") for name in fresh), "no REST client"
    assert sorted(committed) == sorted(fresh), "run: make generate"
    for name, path in fresh.items():
        new, old = path.read_text(), committed[name].read_text()
        diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), name, name))
        assert not diff, f"{name} is stale; run: make generate\n{diff[:2000]}"


def test_generated_packages_import_each_other_inside_the_wire_package() -> None:
    from lossserve_proto.inference import grpc_service_pb2
    from lossserve_proto.lossserve.v1 import loss_service_pb2, loss_service_pb2_grpc

    assert loss_service_pb2.DESCRIPTOR.package == "lossserve.v1"
    assert grpc_service_pb2.DESCRIPTOR.package == "inference"
    assert loss_service_pb2_grpc.LossServiceStub.__module__ == (
        "lossserve_proto.lossserve.v1.loss_service_pb2_grpc"
    )


def test_the_server_and_the_client_use_the_same_generated_modules() -> None:
    from lossserve.api import grpc_convert
    from lossserve_client import client
    from lossserve_proto.lossserve.v1 import loss_service_pb2

    assert grpc_convert.pb is loss_service_pb2
    assert client.pb is loss_service_pb2
