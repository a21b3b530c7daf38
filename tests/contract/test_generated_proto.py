"""The committed gRPC modules are exactly what ``scripts/generate_proto.py`` writes now."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = "service/_proto"


def _generated(root: Path) -> dict[str, Path]:
    folder = root / GENERATED
    return {
        p.relative_to(root).as_posix(): p
        for p in folder.rglob("*")
        if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"))
    }


def test_committed_generated_code_matches_the_protos(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_proto.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh, committed = _generated(tmp_path), _generated(ROOT)
    assert fresh, "the generator wrote nothing"
    assert sorted(committed) == sorted(fresh), "run: python scripts/generate_proto.py"
    for name, path in fresh.items():
        new, old = path.read_text(), committed[name].read_text()
        diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), name, name))
        assert not diff, f"{name} is stale; run: python scripts/generate_proto.py\n{diff[:2000]}"


def test_generated_packages_import_each_other_under_service() -> None:
    from service._proto.lossserve.v1 import loss_service_pb2, loss_service_pb2_grpc

    assert loss_service_pb2.DESCRIPTOR.package == "lossserve.v1"
    assert loss_service_pb2_grpc.LossServiceStub.__module__ == (
        "service._proto.lossserve.v1.loss_service_pb2_grpc"
    )
    for folder in ("service/_proto", "service/_proto/lossserve", "service/_proto/lossserve/v1"):
        assert (ROOT / folder / "__init__.py").is_file()
