"""Generate the gRPC Python modules from ``proto/`` into ``service/_proto`` (never edit them).

Every ``.proto`` under ``proto/`` is compiled as if it lived under ``service/_proto/``:
``proto/lossserve/v1/loss_service.proto`` (lossserve's own API) becomes
``service._proto.lossserve.v1...`` and ``proto/inference/grpc_service.proto`` (the Open
Inference Protocol, package ``inference``) becomes ``service._proto.inference...``, so the
generated modules import each other under ``service``. Usage::

    python scripts/generate_proto.py            # rewrite the committed files
    python scripts/generate_proto.py --out DIR  # write DIR/service/_proto/... instead
    python scripts/generate_proto.py --check    # exit 1 when the committed files are stale
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE = Path("service/_proto")
SOURCES = sorted(p.relative_to(ROOT) for p in PROTO_ROOT.rglob("*.proto"))


def generate(out: Path) -> list[Path]:
    """Compile every ``.proto`` under ``proto/`` into ``out``; return the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    well_known = files("grpc_tools") / "_proto"
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PACKAGE.as_posix()}={PROTO_ROOT.relative_to(ROOT).as_posix()}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(p.as_posix() for p in SOURCES),
    ]
    subprocess.run(command, cwd=ROOT, check=True)
    written = []
    for source in SOURCES:
        stem = out / PACKAGE / source.relative_to("proto").with_suffix("")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            written.append(stem.with_name(stem.name + suffix))
        package = stem.parent
        while package != out / PACKAGE.parent:
            (package / "__init__.py").touch()
            package = package.parent
    return written


def stale(committed_root: Path = ROOT) -> list[str]:
    """Generated files that differ from (or are missing beside) the committed ones."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        differ = []
        for path in fresh:
            relative = path.relative_to(tmp)
            committed = committed_root / relative
            if not committed.is_file() or not filecmp.cmp(path, committed, shallow=False):
                differ.append(relative.as_posix())
        return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--out", type=Path, help="write under this folder instead of the repo")
    group.add_argument("--check", action="store_true", help="fail when committed files differ")
    args = parser.parse_args(argv)
    if args.check:
        differ = stale()
        for path in differ:
            print(f"stale: {path} (run python scripts/generate_proto.py)", file=sys.stderr)
        return 1 if differ else 0
    for path in generate(args.out or ROOT):
        print(path.relative_to(args.out or ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
