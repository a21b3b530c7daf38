"""What the tests that run other processes share: a served replica's environment, a command
run to its end that must succeed, and the per-case results of a child test run's JUnit
report (a child pytest, node's test runner).

The server processes themselves come from ``bench/_server.py`` (``running_server``,
``start_server``, ``wait_ready``, ``stop_server``), the same helper the benchmarks use.
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["SERVICE_ENV", "junit_cases", "output"]

SERVICE_ENV: dict[str, str] = {
    **os.environ,
    "LOSSSERVE_DEVICES": '["cpu"]',  # one worker: jobs queue behind each other
    "LOSSSERVE_FRONTENDS": "1",  # one process: its /metrics and stats are the server's
    "OMP_NUM_THREADS": "1",
}
"""The environment of a served replica: one frontend, one CPU worker; one torch thread in the
frontend (the worker takes ``LOSSSERVE_WORKER_THREADS``, by default its CPUs)."""


def junit_cases(path: Path) -> dict[str, str]:
    """Each test case of a JUnit XML report, by name: its failure, error or skip text, or ""
    when it passed."""
    results: dict[str, str] = {}
    for case in ElementTree.parse(path).iter("testcase"):
        problems = [
            f"{element.tag}: {element.get('message', '')}\n{element.text or ''}".strip()
            for element in case
            if element.tag in ("failure", "error", "skipped")
        ]
        results[case.get("name", "")] = "\n".join(problems)
    return results


def output(
    command: Sequence[str | Path], *, cwd: Path, env: Mapping[str, str], timeout: float = 900
) -> str:
    """``command``'s standard output, run in ``cwd`` with ``env`` (the whole environment) and
    nothing on its standard input; an ``AssertionError`` with the end of both outputs when
    it exits non-zero."""
    done = subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input="",
    )
    assert done.returncode == 0, (
        f"{' '.join(map(str, command))} exited {done.returncode}:\n"
        f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    return done.stdout
