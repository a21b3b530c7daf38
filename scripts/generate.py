"""Write the generated Python code (never edit those files).

- In the ``lossserve-proto`` distribution (``proto/lossserve_proto``), which the server and
  the Python client both depend on: every ``.proto`` under ``proto/`` compiled with
  grpcio-tools (messages and gRPC stubs) and mypy-protobuf (type stubs for both). Each file
  is compiled as if it lived under ``lossserve_proto/``, so ``proto/lossserve/v1/...``
  becomes ``lossserve_proto.lossserve.v1...`` and the Open Inference Protocol's
  ``proto/inference/grpc_service.proto`` (protobuf package ``inference``) becomes
  ``lossserve_proto.inference...``.
- In the ``lossserve-client`` distribution: ``lossserve_client.openapi``, the REST client
  openapi-python-client writes from ``openapi/openapi.json`` (``scripts/export_openapi.py``
  writes that document first), formatted with ruff.

``make generate`` runs this after the OpenAPI export, and the TypeScript client's
``npm run generate``. Usage::

    python scripts/generate.py            # rewrite the committed files
    python scripts/generate.py --out DIR  # write DIR/proto/... and DIR/clients/... instead
    python scripts/generate.py --check    # exit 1 when the committed files are stale
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROTO_ROOT = ROOT / "proto"
OPENAPI = ROOT / "openapi" / "openapi.json"
WIRE = Path("proto/lossserve_proto")
"""The wire package; its ``__init__``, ``tensors`` and ``chunks`` are written by hand."""
PROTO_PACKAGES = tuple(WIRE / name for name in ("lossserve", "inference"))
REST_PACKAGE = Path("clients/python/lossserve_client/openapi")
GENERATED = (*PROTO_PACKAGES, REST_PACKAGE)
"""Folders that hold nothing but generated files (the check compares them whole)."""
SOURCES = sorted(p.relative_to(ROOT) for p in PROTO_ROOT.rglob("*.proto"))
OPENAPI_CONFIG = """\
project_name_override: lossserve-client
package_name_override: openapi
post_hooks: []
"""


def _run(command: list[str], cwd: Path | None = None) -> None:
    """Run ``command`` quietly; on failure, exit with its output."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def _tool(name: str) -> str:
    """A console script of this interpreter's environment (protoc plugins, generators)."""
    path = BIN / name
    if not path.is_file():
        raise SystemExit(f"{path} is missing: install the dev extras (make generate does)")
    return str(path)


def generate_proto(out: Path) -> None:
    """Compile every ``.proto`` under ``proto/`` into ``out/proto/lossserve_proto/...``."""
    stage = out / "proto-stage"  # protoc writes lossserve_proto/... under here
    stage.mkdir(parents=True)
    well_known = files("grpc_tools") / "_proto"
    package = WIRE.name
    _run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{package}={PROTO_ROOT.relative_to(ROOT).as_posix()}",
            f"-I{well_known}",
            f"--plugin=protoc-gen-mypy={_tool('protoc-gen-mypy')}",
            f"--plugin=protoc-gen-mypy_grpc={_tool('protoc-gen-mypy_grpc')}",
            f"--python_out={stage}",
            f"--grpc_python_out={stage}",
            f"--mypy_out={stage}",
            f"--mypy_grpc_out={stage}",
            *(p.as_posix() for p in SOURCES),
        ],
        cwd=ROOT,
    )
    for target in PROTO_PACKAGES:
        shutil.copytree(stage / package / target.name, out / target)
        for folder in [out / target, *(p for p in (out / target).rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()
    shutil.rmtree(stage)


def generate_rest(out: Path) -> None:
    """openapi-python-client's package for ``openapi/openapi.json``, formatted with ruff."""
    target = out / REST_PACKAGE
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(OPENAPI_CONFIG)
        _run(
            [
                _tool("openapi-python-client"),
                "generate",
                "--path",
                str(OPENAPI),
                "--meta",
                "none",
                "--output-path",
                str(target),
                "--config",
                str(config),
            ]
        )
    ruff = _tool("ruff")
    settings = ["--quiet", "--isolated", "--line-length", "100", "--target-version", "py310"]
    _run([ruff, "check", *settings, "--fix-only", str(target)])
    _run([ruff, "format", *settings, str(target)])


def generate(out: Path) -> list[Path]:
    """Write every generated package under ``out`` (replacing it); return the files."""
    for folder in GENERATED:
        shutil.rmtree(out / folder, ignore_errors=True)
    generate_proto(out)
    generate_rest(out)
    return sorted(p for folder in GENERATED for p in (out / folder).rglob("*") if p.is_file())


def _files(root: Path) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for folder in GENERATED
        for p in (root / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def stale(committed_root: Path = ROOT) -> list[str]:
    """Generated files that differ from, are missing beside, or are extra to the committed."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh, committed = _files(Path(tmp)), _files(committed_root)
        return sorted(
            name
            for name in fresh.keys() | committed.keys()
            if name not in fresh
            or name not in committed
            or not filecmp.cmp(fresh[name], committed[name], shallow=False)
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--out", type=Path, help="write under this folder instead of the repo")
    group.add_argument("--check", action="store_true", help="fail when committed files differ")
    args = parser.parse_args(argv)
    if args.check:
        differ = stale()
        for path in differ:
            print(f"stale: {path} (run make generate)", file=sys.stderr)
        return 1 if differ else 0
    out = args.out or ROOT
    written = generate(out)
    print(f"wrote {len(written)} files under {', '.join(str(out / f) for f in GENERATED)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
