"""Today's protos against the committed descriptor sets of the released ones.

``proto/releases/<version>.binpb`` is the ``FileDescriptorSet`` a release shipped
(``scripts/proto_compat.py --snapshot``); removing or renumbering a field, changing its type,
or dropping a method would break the clients built from it. Each rule is shown to fail on a
copy of ``proto/`` edited to break it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
LOSS_PROTO = Path("lossserve/v1/loss_service.proto")
OIP_PROTO = Path("inference/grpc_service.proto")


COMPAT = load_script("proto_compat")


@pytest.fixture(scope="module")
def released() -> object:
    paths = COMPAT.releases()
    assert [p.name for p in paths][:1] == ["0.1.0.binpb"], "the first release's snapshot"
    return COMPAT.descriptor_pb2.FileDescriptorSet.FromString(paths[-1].read_bytes())


def _edited(tmp_path: Path, proto: Path, old: str, new: str) -> object:
    """The descriptor set of a copy of ``proto/`` with ``old`` replaced by ``new`` in ``proto``."""
    copy = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", copy, ignore=shutil.ignore_patterns("releases"))
    text = (copy / proto).read_text()
    assert text.count(old) == 1, f"{old!r} is not in {proto} exactly once"
    (copy / proto).write_text(text.replace(old, new))
    return COMPAT.descriptor_set(copy)


def test_every_release_reads_todays_protos() -> None:
    today = COMPAT.descriptor_set()
    for release in COMPAT.releases():
        old = COMPAT.descriptor_pb2.FileDescriptorSet.FromString(release.read_bytes())
        assert COMPAT.breaking_changes(old, today) == [], release.name
    assert COMPAT.main(["--check"]) == 0


BREAKS = [
    pytest.param(
        LOSS_PROTO,
        "  bool return_hessian = 8;\n",
        "",
        ".lossserve.v1.ComputeLossRequest.return_hessian = 8: removed without reserving its "
        "number and name",
        id="field-removed",
    ),
    pytest.param(
        LOSS_PROTO,
        "  bool return_grad = 7;",
        "  bool return_grad = 9;",
        ".lossserve.v1.ComputeLossRequest.return_grad: renumbered from 7 to 9",
        id="field-renumbered",
    ),
    pytest.param(
        LOSS_PROTO,
        "  string reduction = 6;",
        "  int32 reduction = 6;",
        ".lossserve.v1.ComputeLossRequest.reduction: type changed from singular TYPE_STRING "
        "to singular TYPE_INT32",
        id="field-retyped",
    ),
    pytest.param(
        OIP_PROTO,
        "    repeated int64 shape = 3;\n    map<string, InferParameter> parameters = 4;\n"
        "    // Used only when raw_input_contents is empty.",
        "    repeated int64 shape = 13;\n    map<string, InferParameter> parameters = 4;\n"
        "    // Used only when raw_input_contents is empty.",
        ".inference.ModelInferRequest.InferInputTensor.shape: renumbered from 3 to 13",
        id="nested-field-renumbered",
    ),
    pytest.param(
        LOSS_PROTO,
        "  rpc ListLosses(ListLossesRequest) returns (ListLossesResponse);\n",
        "",
        "rpc .lossserve.v1.LossService/ListLosses: removed",
        id="method-removed",
    ),
]


@pytest.mark.parametrize(("proto", "old", "new", "problem"), BREAKS)
def test_a_breaking_change_fails(
    released: object, tmp_path: Path, proto: Path, old: str, new: str, problem: str
) -> None:
    assert problem in COMPAT.breaking_changes(released, _edited(tmp_path, proto, old, new))


def test_adding_a_field_or_removing_one_with_its_number_reserved_is_compatible(
    released: object, tmp_path: Path
) -> None:
    added = _edited(
        tmp_path / "added",
        LOSS_PROTO,
        "  bool return_hessian = 8;\n",
        "  bool return_hessian = 8;\n  bool return_logits = 9;\n",
    )
    assert COMPAT.breaking_changes(released, added) == []
    reserved = _edited(
        tmp_path / "reserved",
        LOSS_PROTO,
        "  bool return_hessian = 8;\n",
        '  reserved 8;\n  reserved "return_hessian";\n',
    )
    assert COMPAT.breaking_changes(released, reserved) == []
