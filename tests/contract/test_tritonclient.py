"""The unmodified tritonclient (http and grpc) against a real ``lossserve serve`` process.

The cases live in ``tritonclient_cases.py`` and run in a pytest of their own (see
``conftest.py`` for why they cannot share this interpreter); each case here passes when every
variant of the same case passed there, and fails with the child's report of it.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import junit_cases

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).with_name("tritonclient_cases.py")
NAMES = sorted(
    node.name
    for node in ast.parse(CASES.read_text()).body
    if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, str]]]:
    """Each case's variants: (test id, failure text or "") from the child's JUnit XML."""
    xml = tmp_path_factory.mktemp("tritonclient") / "report.xml"
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={xml}",
            str(CASES.relative_to(ROOT)),
        ],
        cwd=ROOT,
        env={**os.environ, "LOSSSERVE_TRITON_CASES": "1", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if not xml.is_file():
        pytest.fail(f"the tritonclient cases did not run:\n{child.stdout[-6000:]}{child.stderr}")
    results: dict[str, list[tuple[str, str]]] = {}
    for name, problem in junit_cases(xml).items():
        results.setdefault(name.split("[", 1)[0], []).append((name, problem))
    return results


@pytest.mark.parametrize("case", NAMES)
def test_tritonclient_case(report: dict[str, list[tuple[str, str]]], case: str) -> None:
    variants = report.get(case)
    assert variants, f"{case} did not run in the child pytest"
    failed = [f"{name}\n{problem}" for name, problem in variants if problem]
    assert not failed, "\n\n".join(failed)[-8000:]
