"""The TypeScript client (``clients/typescript``) against a real ``lossserve serve`` process.

One module fixture starts the server on free loopback ports with a one-model repository
(``tiny``, :func:`~tests.service.models.builders.write_model`) and runs ``npm test`` there
(``tsc``, then ``node --test`` over the compiled tests) with ``LOSSSERVE_HTTP_URL``,
``LOSSSERVE_GRPC_TARGET`` and ``LOSSSERVE_MODEL`` set. Node's test runner also writes a JUnit
report (its reporters are chosen through ``NODE_OPTIONS``, so the command stays ``npm
test``); each node test is then one case here, which fails with node's report of it, and
:func:`test_npm_test_passed` fails with node's whole output when ``npm test`` did not pass
(a compile error, a test this module did not find by name).

The README's TypeScript example is ``clients/typescript/examples/quickstart.ts`` itself (its
block after ``<!-- example:typescript -->`` must equal the file, checked here without a
server), and ``test/quickstart.test.ts`` runs the compiled example against the server.

It needs ``npm ci --prefix clients/typescript`` first (``make test`` does it); without
``node_modules`` every case that runs node fails and says so, rather than skipping.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench._server import running_server
from tests.processes import SERVICE_ENV, junit_cases
from tests.service.models.builders import write_model

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "typescript"
MODEL = "tiny"
EXAMPLE = CLIENT / "examples" / "quickstart.ts"
README_MARKER = "<!-- example:typescript -->"
_TEST_CALL = re.compile(r'^test\(\s*"((?:[^"\\]|\\.)*)"', re.MULTILINE)
NAMES = sorted(
    name
    for path in sorted((CLIENT / "test").glob("*.test.ts"))
    for name in _TEST_CALL.findall(path.read_text(encoding="utf-8"))
)
"""The top-level ``test("...")`` names of the node tests, found in their sources."""


@dataclass(frozen=True)
class NodeRun:
    returncode: int
    output: str
    results: dict[str, str]
    """Each node test that ran: its failure (or skip) text, or "" when it passed."""

    def tail(self, characters: int = 12000) -> str:
        return f"npm test exited with {self.returncode}; its output:\n{self.output[-characters:]}"


@pytest.fixture(scope="module")
def node_run(tmp_path_factory: pytest.TempPathFactory) -> NodeRun:
    if not (CLIENT / "node_modules").is_dir():
        pytest.fail(
            f"{CLIENT.relative_to(ROOT)}/node_modules is missing: run "
            "`npm ci --prefix clients/typescript` first (make test does)"
        )
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not on PATH: the TypeScript client's tests need Node.js 20 and npm")
    directory = tmp_path_factory.mktemp("typescript")
    repository = directory / "models"
    write_model(repository, MODEL, 1, seed=1)
    report = directory / "junit.xml"
    reporters = (
        "--test-reporter=spec --test-reporter-destination=stdout "
        f'--test-reporter=junit --test-reporter-destination "{report}"'
    )
    with running_server(
        ["--model-repository", str(repository)], SERVICE_ENV, ["/v2/health/ready"]
    ) as server:
        node_env = {
            **os.environ,
            "LOSSSERVE_HTTP_URL": f"http://{server.http_url}",
            "LOSSSERVE_GRPC_TARGET": server.grpc_url,
            "LOSSSERVE_MODEL": MODEL,
            "NODE_OPTIONS": f"{os.environ.get('NODE_OPTIONS', '')} {reporters}".strip(),
            "NO_COLOR": "1",
        }
        try:
            child = subprocess.run(
                [npm, "test"],
                cwd=CLIENT,
                env=node_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=600,
            )
        except subprocess.TimeoutExpired as exc:
            output = exc.output if isinstance(exc.output, str) else ""
            pytest.fail(f"npm test ran past {exc.timeout} s:\n{output[-12000:]}")
    results = junit_cases(report) if report.is_file() else {}
    return NodeRun(child.returncode, child.stdout, results)


def test_node_tests_found() -> None:
    assert NAMES, f"no test(...) calls found in {CLIENT.relative_to(ROOT)}/test/*.test.ts"
    assert len(NAMES) == len(set(NAMES)), "two node tests share a name"


@pytest.mark.parametrize("name", NAMES)
def test_typescript_client(node_run: NodeRun, name: str) -> None:
    assert node_run.results, f"npm test did not run the node tests.\n{node_run.tail()}"
    assert name in node_run.results, f"{name!r} did not run.\n{node_run.tail()}"
    problem = node_run.results[name]
    assert not problem, f"{name}\n{problem[-8000:]}"


def test_npm_test_passed(node_run: NodeRun) -> None:
    assert node_run.returncode == 0, node_run.tail()
    assert sorted(node_run.results) == NAMES, (
        "the node tests that ran are not the ones found in the sources: "
        f"ran {sorted(node_run.results)}, found {NAMES}"
    )


def test_readme_typescript_example_is_the_tested_file() -> None:
    """README.md's ```ts block right after ``<!-- example:typescript -->`` is, byte for byte,
    ``examples/quickstart.ts`` (which ``test/quickstart.test.ts`` compiles and runs)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = EXAMPLE.read_text(encoding="utf-8")
    where = f"README.md's block after {README_MARKER}"
    assert readme.count(README_MARKER) == 1, f"README.md should hold {README_MARKER} once"
    match = re.search(rf"^{re.escape(README_MARKER)}\n```ts\n(.*?)^```$", readme, re.S | re.M)
    assert match, f"{where}: expected a ```ts fenced block on the next line"
    if match.group(1) != example:
        diff = difflib.unified_diff(
            match.group(1).splitlines(keepends=True),
            example.splitlines(keepends=True),
            "README.md",
            str(EXAMPLE.relative_to(ROOT)),
        )
        pytest.fail(f"{where} differs from {EXAMPLE.relative_to(ROOT)}:\n{''.join(diff)}")
