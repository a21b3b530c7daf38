"""Wire compatibility of ``proto/`` with the released descriptor sets in ``proto/releases``.

A release commits the ``FileDescriptorSet`` of every ``.proto`` as it shipped
(``proto/releases/<version>.binpb``, written by ``--snapshot``). Today's protos must still
read and write what every released client sends: each released message keeps every field
number with the same name, type and cardinality (a field may only go away if its number and
name are reserved), each released enum keeps its values' numbers, and each released service
keeps its methods with the same request/response types and streaming. Adding is free.
Usage::

    python scripts/proto_compat.py --check           # exit 1 when today breaks a release
    python scripts/proto_compat.py --snapshot 0.2.0  # at a release: write its snapshot
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
RELEASES = PROTO_ROOT / "releases"

Field = descriptor_pb2.FieldDescriptorProto
Message = descriptor_pb2.DescriptorProto


def descriptor_set(proto_root: Path = PROTO_ROOT) -> descriptor_pb2.FileDescriptorSet:
    """The ``FileDescriptorSet`` of every ``.proto`` under ``proto_root`` (imports included)."""
    sources = sorted(p.relative_to(proto_root).as_posix() for p in proto_root.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.binpb"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{proto_root}",
                f"-I{files('grpc_tools') / '_proto'}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                *sources,
            ],
            check=True,
            capture_output=True,
        )
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _messages(
    prefix: str, messages: Iterator[Message] | list[Message]
) -> Iterator[tuple[str, Message]]:
    for message in messages:
        name = f"{prefix}.{message.name}"
        yield name, message
        yield from _messages(name, list(message.nested_type))


def _index(
    files_: descriptor_pb2.FileDescriptorSet,
) -> tuple[
    dict[str, Message],
    dict[str, descriptor_pb2.EnumDescriptorProto],
    dict[str, descriptor_pb2.ServiceDescriptorProto],
]:
    messages: dict[str, Message] = {}
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
    services: dict[str, descriptor_pb2.ServiceDescriptorProto] = {}
    for file in files_.file:
        if file.name.startswith("google/protobuf/"):
            continue
        prefix = f".{file.package}" if file.package else ""
        for name, message in _messages(prefix, list(file.message_type)):
            messages[name] = message
            for enum in message.enum_type:
                enums[f"{name}.{enum.name}"] = enum
        for enum in file.enum_type:
            enums[f"{prefix}.{enum.name}"] = enum
        for service in file.service:
            services[f"{prefix}.{service.name}"] = service
    return messages, enums, services


def _reserved(message: Message, field: Field) -> bool:
    numbers = any(r.start <= field.number < r.end for r in message.reserved_range)
    return numbers and field.name in message.reserved_name


def _kind(field: Field) -> str:
    cardinality = "repeated" if field.label == Field.LABEL_REPEATED else "singular"
    kind = field.type_name or Field.Type.Name(field.type)
    presence = " (optional)" if field.proto3_optional else ""
    return f"{cardinality} {kind}{presence}"


def breaking_changes(
    old: descriptor_pb2.FileDescriptorSet, new: descriptor_pb2.FileDescriptorSet
) -> list[str]:
    """Every way ``new`` breaks a reader or writer of ``old``, one sentence each."""
    old_messages, old_enums, old_services = _index(old)
    new_messages, new_enums, new_services = _index(new)
    problems = []
    for name, message in old_messages.items():
        if name not in new_messages:
            problems.append(f"message {name}: removed")
            continue
        now = new_messages[name]
        by_number = {f.number: f for f in now.field}
        by_name = {f.name: f for f in now.field}
        for field in message.field:
            current = by_number.get(field.number)
            if current is None:
                if field.name in by_name:
                    problems.append(
                        f"{name}.{field.name}: renumbered from {field.number} to "
                        f"{by_name[field.name].number}"
                    )
                elif not _reserved(now, field):
                    problems.append(
                        f"{name}.{field.name} = {field.number}: removed without reserving "
                        "its number and name"
                    )
            elif current.name != field.name:
                problems.append(
                    f"{name} field {field.number}: renamed from {field.name} to {current.name}"
                )
            elif _kind(current) != _kind(field):
                problems.append(
                    f"{name}.{field.name}: type changed from {_kind(field)} to {_kind(current)}"
                )
            elif current.HasField("oneof_index") != field.HasField("oneof_index"):
                problems.append(f"{name}.{field.name}: moved into or out of a oneof")
    for name, enum in old_enums.items():
        numbers = {v.name: v.number for v in new_enums[name].value} if name in new_enums else {}
        for value in enum.value:
            if numbers.get(value.name) != value.number:
                problems.append(f"enum {name}.{value.name} = {value.number}: removed or renumbered")
    for name, service in old_services.items():
        methods = {m.name: m for m in new_services[name].method} if name in new_services else {}
        for method in service.method:
            current = methods.get(method.name)
            if current is None:
                problems.append(f"rpc {name}/{method.name}: removed")
                continue
            for attribute in ("input_type", "output_type", "client_streaming", "server_streaming"):
                if getattr(current, attribute) != getattr(method, attribute):
                    problems.append(
                        f"rpc {name}/{method.name}: {attribute} changed from "
                        f"{getattr(method, attribute)} to {getattr(current, attribute)}"
                    )
    return problems


def releases() -> list[Path]:
    """The committed release snapshots, oldest first."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.stem.split("."))

    return sorted(RELEASES.glob("*.binpb"), key=version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--check", action="store_true", help="compare with every release")
    group.add_argument("--snapshot", metavar="VERSION", help="write proto/releases/VERSION.binpb")
    args = parser.parse_args(argv)
    today = descriptor_set()
    if args.snapshot:
        RELEASES.mkdir(exist_ok=True)
        (RELEASES / f"{args.snapshot}.binpb").write_bytes(today.SerializeToString())
        return 0
    broken = False
    for release in releases():
        old = descriptor_pb2.FileDescriptorSet.FromString(release.read_bytes())
        for problem in breaking_changes(old, today):
            print(f"{release.stem}: {problem}", file=sys.stderr)
            broken = True
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
