"""Every task kind, end to end, as a user runs it: ``lossserve train`` on a built-in dataset
and on a CSV file, ``lossserve serve`` over the repository it wrote, then the model's
decisions through tritonclient (http and grpc), ``POST /models/{m}/predict`` and the
TypeScript client's predict, each held to in-process ONNX Runtime on the same file with the
card's thresholds (:func:`tests.service.models.builders.reference`, which does not use the
server's code).

One repository holds the six models (three kinds x two sources) and one server serves them
all; the rows are the built-in dataset's test split, which the CSV model was also trained
on the columns of.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from bench._server import Server, running_server
from lossserve.models.card import ModelCard
from lossserve.training.datasets import Dataset, load_dataset
from tests.integration._serving import write_table
from tests.processes import SERVICE_ENV
from tests.service.models.builders import reference

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).with_name("task_kinds")
CLIENT = ROOT / "clients" / "typescript"
KINDS = {
    "binary": ("breast-cancer-imbalanced", "binary_cross_entropy"),
    "multiclass": ("digits-lt", "cross_entropy"),
    "multilabel": ("multilabel-synth", "multilabel_categorical_crossentropy"),
}
SOURCES = ("builtin", "csv")
CPU = "CPUExecutionProvider"
ROWS = 40


@dataclass(frozen=True)
class Served:
    server: Server
    repository: Path
    rows: dict[str, np.ndarray]
    """The feature rows sent to each kind's models."""
    table: Path
    """A user's table: an ID column, a string label, two categorical columns, empty cells."""


def write_csv(dataset: Dataset, path: Path) -> list[str]:
    """The dataset's three splits as a user's CSV: the features, then the label as its
    class name (binary, multiclass) or one 0/1 column per label (multilabel); returns the
    label columns, as ``--label`` takes them."""
    features = np.concatenate([dataset.split(s).features for s in ("train", "validation", "test")])
    targets = np.concatenate([dataset.split(s).targets for s in ("train", "validation", "test")])
    multilabel = dataset.task.value == "multilabel"
    label_columns = [f"is_{name}" for name in dataset.labels] if multilabel else ["label"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*dataset.feature_names, *label_columns])
        for row, target in zip(features, targets, strict=True):
            labels = [int(t) for t in target] if multilabel else [dataset.labels[int(target)]]
            writer.writerow([repr(float(v)) for v in row] + labels)
    return label_columns


def train(repository: Path, name: str, dataset: str, loss: str, *extra: str) -> None:
    command = [sys.executable, "-m", "lossserve.cli", "train", "--dataset", dataset]
    command += ["--loss", loss, "--name", name, "--model-repository", str(repository)]
    command += ["--epochs", "30", "--quiet", *extra]
    done = subprocess.run(
        command, cwd=ROOT, env=SERVICE_ENV, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("task-kinds")
    repository = work / "models"
    rows = {}
    for kind, (builtin, loss) in KINDS.items():
        dataset = load_dataset(builtin)
        assert dataset.task.value == kind
        rows[kind] = dataset.test.features[:ROWS]
        train(repository, f"{kind}-builtin", builtin, loss)
        path = work / f"{kind}.csv"
        label_columns = write_csv(dataset, path)
        train(repository, f"{kind}-csv", str(path), loss, "--label", ",".join(label_columns))
    table = write_table(work / "customers.csv")
    train(repository, "table-csv", str(table), "binary_cross_entropy", "--label", "churned")
    with running_server(
        ["--model-repository", str(repository)], SERVICE_ENV, ["/v2/health/ready"]
    ) as server:
        yield Served(server, repository, rows, table)


@pytest.fixture(scope="module")
def typescript_client() -> Path:
    """The TypeScript client, compiled (``npm run build``)."""
    npm = shutil.which("npm")
    if npm is None or not (CLIENT / "node_modules").is_dir():
        pytest.fail("the TypeScript client needs npm and `npm ci --prefix clients/typescript`")
    built = subprocess.run(
        [npm, "run", "build"], cwd=CLIENT, capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return CLIENT / "dist" / "src" / "index.js"


def check_tritonclient(
    server: Server,
    model: str,
    inputs: dict[str, np.ndarray],
    expected: np.ndarray,
    tmp_path: Path,
) -> None:
    """The model's decisions through tritonclient, http and grpc, equal ``expected``."""
    path = tmp_path / "inputs.npz"
    np.savez(path, **{n: a.astype(str) if a.dtype == object else a for n, a in inputs.items()})
    command = [sys.executable, str(HERE / "triton_decisions.py"), server.http_url]
    command += [server.grpc_url, model, str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    triton = json.loads(done.stdout)
    for protocol in ("http", "grpc"):
        np.testing.assert_array_equal(np.asarray(triton[protocol]), expected, err_msg=protocol)


def chosen_labels(card: ModelCard, decisions: np.ndarray) -> list[list[str]]:
    """What ``/predict`` should answer for the reference decisions: a class index a row
    (binary, multiclass) names one label; a multilabel row names every label it marks."""
    if card.task == "multilabel":
        return [[card.labels[i] for i in np.flatnonzero(row)] for row in decisions]
    return [[card.labels[int(index)]] for index in decisions]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_trained_model_is_served_with_the_cards_decisions(
    served: Served, typescript_client: Path, kind: str, source: str, tmp_path: Path
) -> None:
    model = f"{kind}-{source}"
    directory = served.repository / model / "1"
    card = ModelCard.read(directory)
    assert card.task == kind
    rows = served.rows[kind]
    expected = reference(directory, rows)["decisions"]
    if kind == "multilabel":
        assert expected.shape == (len(rows), len(card.labels))
    else:  # one class index a row, each of them seen
        assert expected.shape == (len(rows),)

    server = served.server
    check_tritonclient(server, model, {"features": rows}, expected, tmp_path)

    # POST /models/{m}/predict, from Python and from the TypeScript client
    labels = chosen_labels(card, expected)
    answer = httpx.post(
        f"http://{server.http_url}/models/{model}/predict",
        json={"instances": rows.tolist()},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["labels"] for p in predictions] == labels
    for prediction in predictions:
        assert sorted(prediction["probabilities"]) == sorted(card.labels)
    rows_json = tmp_path / "rows.json"
    rows_json.write_text(json.dumps(rows.tolist()))
    node = subprocess.run(
        ["node", str(HERE / "predict.mjs"), f"http://{server.http_url}", model, str(rows_json)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert node.returncode == 0, node.stderr
    assert [p["labels"] for p in json.loads(node.stdout)] == labels


def test_a_users_table_is_served_on_its_raw_columns(served: Served, tmp_path: Path) -> None:
    """The table trains with one command (the ID column left out, the strings one-hot
    encoded and the empty cells imputed inside the ONNX graph), and its raw rows, empty
    cells and an unseen category included, get the same decisions over tritonclient http
    and grpc and /predict as in-process ONNX Runtime with the card's threshold."""
    model = "table-csv"
    directory = served.repository / model / "1"
    card = ModelCard.read(directory)
    assert card.task == "binary" and card.labels == ["no", "yes"]
    assert [(c.name, c.kind) for c in card.columns] == [
        ("age", "number"),
        ("income", "number"),
        ("country", "category"),
        ("plan", "category"),
    ]
    assert card.columns[3].categories == ["", "basic", "pro"]
    with served.table.open(newline="") as handle:
        records = list(csv.DictReader(handle))[:60]
    records[0]["country"] = "Atlantis"  # never seen in training
    numeric = np.array(
        [[float(r[c]) if r[c] else np.nan for c in ("age", "income")] for r in records],
        dtype=np.float32,
    )
    categorical = np.array([[r["country"], r["plan"]] for r in records], dtype=object)
    assert np.isnan(numeric).any() and (categorical == "").any()
    session = ort.InferenceSession(str(directory / "model.onnx"), providers=[CPU])
    (logits,) = session.run(["logits"], {"numeric": numeric, "categorical": categorical})
    expected = (logits[:, 0] >= card.thresholds[0]).astype(np.int64)
    assert 0 < expected.sum() < len(expected)  # both classes decided

    check_tritonclient(
        served.server, model, {"numeric": numeric, "categorical": categorical}, expected, tmp_path
    )
    instances = [
        {
            "age": float(r["age"]) if r["age"] else None,
            "income": float(r["income"]) if r["income"] else None,
            "country": r["country"] or None,
            "plan": r["plan"] or None,
        }
        for r in records
    ]
    answer = httpx.post(
        f"http://{served.server.http_url}/models/{model}/predict",
        json={"instances": instances},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    labels = [p["labels"] for p in answer.json()["predictions"]]
    assert labels == [[card.labels[int(d)]] for d in expected]


TABLE_ROW = {"age": 40.0, "income": 5.0, "country": "US", "plan": "pro"}


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        ([[40.0, 5.0, "US", "pro"]], "instances[0]: expected an object keyed by column name"),
        ([{**TABLE_ROW, "customer_id": "C-1"}], "instances[0]: unexpected columns ['customer_id']"),
        ([{**TABLE_ROW, "age": "forty"}], "instances[0].age: expected a number or null"),
        ([{**TABLE_ROW, "age": True}], "instances[0].age: expected a number or null"),
        ([{**TABLE_ROW, "income": 1e39}], "instances[0].income: expected a finite float32"),
        ([{**TABLE_ROW, "plan": 3}], "instances[0].plan: expected a string or null, got 3"),
    ],
)
def test_a_table_models_bad_rows_are_refused(
    served: Served, instances: list[object], message: str
) -> None:
    answer = httpx.post(
        f"http://{served.server.http_url}/models/table-csv/predict",
        json={"instances": instances},
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]["message"], answer.text


def _table_infer(inputs: list[dict[str, object]]) -> dict[str, object]:
    return {"inputs": inputs}


NUMERIC = {"name": "numeric", "datatype": "FP32", "shape": [1, 2], "data": [40.0, 5.0]}
CATEGORICAL = {"name": "categorical", "datatype": "BYTES", "shape": [1, 2], "data": ["US", "pro"]}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([NUMERIC], "missing input 'categorical' of model 'table-csv'"),
        (
            [NUMERIC, {**CATEGORICAL, "shape": [2, 2], "data": ["US", "pro"] * 2}],
            "input 'categorical': expected 1 rows, as the other inputs, got 2",
        ),
        (
            [{**NUMERIC, "datatype": "BYTES", "data": ["40", "5"]}, CATEGORICAL],
            "input 'numeric': expected datatype FP32, got BYTES",
        ),
        (
            [NUMERIC, {**CATEGORICAL, "shape": [1, 3], "data": ["US", "pro", "x"]}],
            "input 'categorical': expected shape [-1, 2], got [1, 3]",
        ),
    ],
)
def test_a_table_models_bad_tensors_are_refused(
    served: Served, inputs: list[dict[str, object]], message: str
) -> None:
    answer = httpx.post(
        f"http://{served.server.http_url}/v2/models/table-csv/infer",
        json=_table_infer(inputs),
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == message


def test_a_table_models_strings_must_be_utf8(served: Served) -> None:
    numbers = np.array([40.0, 5.0], dtype="<f4").tobytes()
    strings = b"".join(len(v).to_bytes(4, "little") + v for v in (b"\xff\xfe", b"pro"))
    entries = [
        {**entry, "parameters": {"binary_data_size": len(raw)}}
        for entry, raw in ((NUMERIC, numbers), (CATEGORICAL, strings))
    ]
    for entry in entries:  # binary entries carry no data field
        del entry["data"]
    header = json.dumps({"inputs": entries}).encode()
    answer = httpx.post(
        f"http://{served.server.http_url}/v2/models/table-csv/infer",
        content=header + numbers + strings,
        headers={"Inference-Header-Content-Length": str(len(header))},
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith(
        "input 'categorical': expected UTF-8 strings, got b'\\xff\\xfe' at index [0, 0]"
    )
