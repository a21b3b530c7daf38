"""The ``lossserve`` command's usage: help on every flag, ``--version``, one-line errors.

Nothing here trains or serves: each command stops at its flags.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from lossserve.cli import main

ROOT = Path(__file__).resolve().parents[2]

FLAGS = {
    "serve": {
        "--host",
        "--http-port",
        "--grpc-port",
        "--model-repository",
        "--frontends",
        "--model-control",
        "--poll-interval",
        "--allow-shared-memory",
    },
    "train": {
        "--dataset", "--loss", "--params", "--name", "--model-repository", "--class-weights",
        "--seed", "--label", "--features", "--drop", "--split-column", "--beta",
        "--refit-thresholds", "--architecture", "--hidden", "--epochs", "--patience",
        "--batch-size", "--learning-rate", "--weight-decay", "--threads", "--quiet",
        "--metric", "--budget", "--jobs",
    },
    "experiment": {
        "--seeds", "--folds", "--learning-rates", "--jobs",
        "--losses", "--output", "--architecture", "--hidden", "--epochs",
        "--patience", "--batch-size", "--learning-rate", "--weight-decay", "--threads",
        "--quiet", "--label", "--features", "--drop", "--split-column",
    },
}  # fmt: skip
"""Every flag a user may give, per command (the supervisor's internal flag is not one)."""

TRAIN = ["train", "--dataset", "digits-lt", "--loss", "focal", "--name", "m"]


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """``lossserve COMMAND --help``'s options: each flag and its help text, on one line."""
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    options = text.split("\noptions:\n", 1)[1]
    entries: dict[str, str] = {}
    flag = ""
    for line in options.splitlines():
        if line.startswith("  -"):  # "  --flag METAVAR  help", the help maybe on the next line
            invocation, _, rest = line.strip().partition("  ")
            flag = re.findall(r"--[\w-]+", invocation)[0]  # "-h, --help": --help
            entries[flag] = rest.strip()
        elif line.startswith("   ") and flag:
            entries[flag] = f"{entries[flag]} {line.strip()}".strip()
    return entries


@pytest.mark.parametrize("command", sorted(FLAGS))
def test_every_flag_has_help_and_a_default(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    entries = _help(command, capsys)
    assert set(entries) == FLAGS[command] | {"--help"}
    for flag, text in entries.items():
        if flag == "--help":
            continue
        assert re.search(r"\w{3}", text), f"{command} {flag}: no help"
        assert "(default: " in text or text.endswith("(required)"), f"{command} {flag}: {text}"


@pytest.mark.parametrize(
    ("command", "flag", "shown"),
    [
        ("serve", "--host", "(default: LOSSSERVE_HOST, else 127.0.0.1)"),
        ("serve", "--http-port", "(default: LOSSSERVE_HTTP_PORT, else 8000)"),
        ("serve", "--grpc-port", "(default: LOSSSERVE_GRPC_PORT, else 50051)"),
        ("serve", "--model-repository", "(default: LOSSSERVE_MODEL_REPOSITORY, else none"),
        ("serve", "--frontends", "(default: LOSSSERVE_FRONTENDS, else the CPUs"),
        ("train", "--model-repository", "(default: LOSSSERVE_MODEL_REPOSITORY, else ./models)"),
        ("train", "--epochs", "(default: 200)"),
        ("train", "--learning-rate", "(default: 0.001)"),
        ("train", "--architecture", "(default: mlp)"),
        ("train", "--dataset", "(required)"),
        ("experiment", "--seeds", "(default: 0)"),
        ("experiment", "--folds", "(default: 5)"),
        ("experiment", "--learning-rates", "(default: 3e-4 1e-3 3e-3)"),
        ("train", "--metric", "(default: macro_f1)"),
        ("experiment", "--patience", "(default: 20)"),
    ],
)
def test_defaults_shown(
    command: str,
    flag: str,
    shown: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert shown in _help(command, capsys)[flag]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    project = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"$', project, re.MULTILINE)
    assert version is not None
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"lossserve {version[1]}\n"


def test_version_not_installed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == "lossserve unknown (not installed)\n"


@pytest.mark.parametrize(
    ("argv", "lines"),
    [
        (
            [*TRAIN, "--epochs", "0"],
            ["lossserve train: error: --epochs: expected an integer >= 1, got 0"],
        ),
        (
            [*TRAIN, "--learning-rate", "-1", "--batch-size", "0"],
            [
                "lossserve train: error: --batch-size: expected an integer >= 1, got 0",
                "lossserve train: error: --learning-rate: expected a number > 0.0, got -1.0",
            ],
        ),
        (
            [*TRAIN, "--beta", "0"],
            ["lossserve train: error: --beta: expected a number > 0.0, got 0.0"],
        ),
        (
            ["experiment", "digits-lt", "--hidden", "5000"],
            ["lossserve experiment: error: --hidden: expected an integer <= 4096, got 5000"],
        ),
        (
            ["serve", "--http-port", "70000"],
            ["lossserve serve: error: --http-port: expected an integer <= 65535, got 70000"],
        ),
        (
            ["serve", "--poll-interval", "0"],
            ["lossserve serve: error: --poll-interval: expected a number > 0.0, got 0.0"],
        ),
    ],
)
def test_bad_value_one_line_per_problem(
    argv: list[str], lines: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if argv[0] == "train":
        argv = [*argv, "--model-repository", str(tmp_path)]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == lines
    assert list(tmp_path.iterdir()) == []


def test_bad_environment_variable_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOSSSERVE_QUEUE_DEPTH", "0")
    monkeypatch.setenv("LOSSSERVE_FRONTENDS", "many")
    assert main(["serve", "--grpc-port", "-1"]) == 2
    assert sorted(capsys.readouterr().err.splitlines()) == [
        "lossserve serve: error: --grpc-port: expected an integer >= 0, got -1",
        "lossserve serve: error: LOSSSERVE_FRONTENDS: expected an integer, got 'many'",
        "lossserve serve: error: LOSSSERVE_QUEUE_DEPTH: expected an integer >= 1, got '0'",
    ]


@pytest.mark.parametrize(
    ("devices", "line"),
    [
        ('["gpu"]', "expected 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
        ('["cuda:x"]', "expected 'cpu', 'cuda' or 'cuda:N', got 'cuda:x'"),
        ('["cuda:\u00b2"]', "expected 'cpu', 'cuda' or 'cuda:N', got 'cuda:\u00b2'"),
        ("[]", "expected at least one device, got []"),
    ],
)
def test_bad_devices_are_refused_before_any_worker_starts(
    devices: str, line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOSSSERVE_DEVICES", devices)
    assert main(["serve"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"lossserve serve: error: LOSSSERVE_DEVICES: {line}"
    ]


def test_devices_are_read_as_torch_names_them() -> None:
    """``cuda`` is the first CUDA device (a worker pins one); case and spaces do not matter."""
    from lossserve.settings import Settings

    assert Settings(devices=["cpu", "cuda", " CUDA:1 ", "cuda:01"]).devices == [
        "cpu",
        "cuda:0",
        "cuda:1",
        "cuda:1",
    ]


@pytest.mark.parametrize(
    ("affinity", "given", "machine", "count", "expected"),
    [
        ("auto", [2, 3], 8, 2, [2, 3]),  # a subset of the machine, a frontend per CPU
        ("auto", [2, 3], 8, 3, None),  # more frontends than CPUs: the scheduler decides
        ("auto", [0, 1], 2, 2, None),  # the whole machine: others may need these CPUs
        ("pinned", [0, 1], 2, 3, [0, 1, 0]),  # round robin
        ("shared", [2, 3], 8, 2, None),
    ],
)
def test_frontends_are_pinned_when_given_their_cpus(
    affinity: str,
    given: list[int],
    machine: int,
    count: int,
    expected: list[int] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lossserve import cli
    from lossserve.settings import Settings

    monkeypatch.setattr(cli.os, "sched_getaffinity", lambda pid: set(given))
    monkeypatch.setattr(cli.os, "cpu_count", lambda: machine)
    assert cli._frontend_cpus(Settings(frontend_affinity=affinity), count) == expected


@pytest.mark.parametrize("cpus", ["[]", "[-1]", "[0, -2]"])
def test_bad_worker_cpus_are_refused(
    cpus: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOSSSERVE_WORKER_CPUS", cpus)
    assert main(["serve"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "lossserve serve: error: LOSSSERVE_WORKER_CPUS: expected a non-empty list of CPU "
        f"numbers >= 0, got {cpus}"
    ]


def test_a_serving_process_runs_its_own_torch_on_one_thread() -> None:
    """A frontend's torch does only checks; an OpenMP team spinning after one would take
    the workers' cores."""
    import torch

    from lossserve.cli import _run

    seen: list[int] = []

    async def serving() -> None:
        seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _run(serving())
    finally:
        torch.set_num_threads(before)
    assert seen == [1]
