"""The user's own files: CSV, Parquet and NPZ, and a clear error for each bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pyarrow import csv, parquet

from losses import Task
from lossserve.training import load_dataset, load_file
from lossserve.training.datasets import SPLITS


def _table(n: int = 60, seed: int = 0) -> dict[str, Any]:
    """Three numeric features, a string class label (a: 30, b: 20, c: 10), a split column."""
    rng = np.random.default_rng(seed)
    label = np.array(["a"] * 30 + ["b"] * 20 + ["c"] * 10)[:n]
    return {
        "f1": rng.normal(size=n),
        "f2": rng.integers(0, 10, size=n),
        "f3": rng.normal(size=n).astype(np.float32),
        "y": label,
        "split": np.array((["train"] * 3 + ["validation", "test"]) * (n // 5)),
    }


def _write(columns: dict[str, Any], path: Path) -> Path:
    if path.suffix == ".npz":
        np.savez(path, **columns)
        return path
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    if path.suffix == ".csv":
        csv.write_csv(table, path)
    else:
        parquet.write_table(table, path)
    return path


@pytest.fixture(params=[".csv", ".parquet", ".npz"])
def suffix(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_happy_path(tmp_path: Path, suffix: str) -> None:
    path = _write(_table(), tmp_path / f"data{suffix}")
    dataset = load_file(path, label=["y"], features=["f1", "f2", "f3"])
    assert dataset.task is Task.MULTICLASS
    assert dataset.labels == ["a", "b", "c"]
    assert dataset.feature_names == ["f1", "f2", "f3"]
    assert dataset.name == path.name
    assert sum(len(dataset.split(s)) for s in SPLITS) == 60
    # Stratified 60/20/20 per class: 30 -> 18/6/6, 20 -> 12/4/4, 10 -> 6/2/2.
    assert dataset.class_counts("validation").tolist() == [6, 4, 2]
    assert dataset.class_counts("test").tolist() == [6, 4, 2]
    # The rows are the file's rows, features in float32.
    source = _table()
    x = np.concatenate([dataset.split(s).features for s in SPLITS])
    expected = np.stack([source["f1"], source["f2"], source["f3"]], axis=1).astype(np.float32)
    assert np.array_equal(np.sort(x, axis=0), np.sort(expected, axis=0))


def test_default_features_are_the_other_columns(tmp_path: Path, suffix: str) -> None:
    path = _write(_table(), tmp_path / f"data{suffix}")
    dataset = load_file(path, label=["y"], split_column="split")
    assert dataset.feature_names == ["f1", "f2", "f3"]
    # The split column decides: every 5 rows 3 train, 1 validation, 1 test.
    assert [len(dataset.split(s)) for s in SPLITS] == [36, 12, 12]


def test_npz_block_of_features(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = np.repeat([0, 1], 20)
    path = tmp_path / "data.npz"
    np.savez(path, X=x, y=y)
    dataset = load_file(path, label=["y"])
    assert dataset.feature_names == ["X[0]", "X[1]", "X[2]"]
    assert dataset.task is Task.BINARY
    assert dataset.labels == ["0", "1"]


def test_npz_block_must_hold_finite_numbers(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(40, 3))
    x[3, 1] = np.inf
    y = np.repeat([0, 1], 20)
    np.savez(tmp_path / "inf.npz", X=x, y=y)
    with pytest.raises(ValueError, match="feature column 'X': expected finite numbers, got inf "
                       "at row 3"):  # fmt: skip
        load_file(tmp_path / "inf.npz", label=["y"])
    np.savez(tmp_path / "text.npz", X=np.full((40, 2), "red"), y=y)
    with pytest.raises(
        ValueError, match=r"feature column 'X': expected numbers, got str_ np\.str_\('red'\)"
    ):
        load_file(tmp_path / "text.npz", label=["y"])


def test_binary_positive_is_the_larger_value(tmp_path: Path) -> None:
    columns = _table()
    columns["y"] = np.where(columns["y"] == "a", "no", "yes")
    dataset = load_file(_write(columns, tmp_path / "d.csv"), label=["y"], features=["f1", "f2"])
    assert dataset.task is Task.BINARY
    assert dataset.labels == ["no", "yes"]
    assert dataset.num_outputs == 1
    assert dataset.class_counts("train").tolist() == [18, 18]


def test_multilabel_columns(tmp_path: Path, suffix: str) -> None:
    columns = _table()
    rng = np.random.default_rng(1)
    columns["cat"] = (rng.random(60) < 0.5).astype(np.int64)
    columns["dog"] = (rng.random(60) < 0.3).astype(np.int64)
    path = _write(columns, tmp_path / f"d{suffix}")
    dataset = load_file(path, label=["cat", "dog"], features=["f1", "f2"])
    assert dataset.task is Task.MULTILABEL
    assert dataset.labels == ["cat", "dog"]
    assert dataset.train.targets.shape[1] == 2
    total = np.sum([dataset.class_counts(s) for s in SPLITS], axis=0)
    assert total.tolist() == [columns["cat"].sum(), columns["dog"].sum()]


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


def test_missing_label_column(tmp_path: Path, suffix: str) -> None:
    path = _write(_table(), tmp_path / f"d{suffix}")
    with pytest.raises(ValueError, match=r"label column 'label': not found in d\..*'f1', 'f2'"):
        load_file(path, label=["label"])


def test_missing_feature_column(tmp_path: Path, suffix: str) -> None:
    path = _write(_table(), tmp_path / f"d{suffix}")
    with pytest.raises(ValueError, match="feature column 'f9': not found"):
        load_file(path, label=["y"], features=["f1", "f9"])


def test_text_feature_is_a_category(tmp_path: Path, suffix: str) -> None:
    columns = _table()
    columns["colour"] = np.array(["red", "green"] * 30)
    path = _write(columns, tmp_path / f"d{suffix}")
    dataset = load_file(path, label=["y"], features=["f1", "colour"])
    assert dataset.tabular is not None
    assert (dataset.tabular.numeric, dataset.tabular.categorical) == (["f1"], ["colour"])
    assert dataset.tabular.categories == [["green", "red"]]
    assert dataset.feature_names == ["f1", "colour=green", "colour=red"]
    # one-hot of the raw column, in the rows' order; f1 imputed and standardised
    train = dataset.tabular.splits["train"]
    np.testing.assert_array_equal(
        dataset.train.features[:, 2], (train.categorical[:, 0] == "red").astype(np.float32)
    )
    assert abs(float(dataset.train.features[:, 0].mean())) < 1e-5


def test_empty_cells_are_imputed_on_the_training_split(tmp_path: Path) -> None:
    columns = _table()
    columns["f1"] = columns["f1"].astype(object)
    columns["f1"][7] = None
    columns["colour"] = np.array(["red", "green", None] * 20, dtype=object)
    path = _write(columns, tmp_path / "d.parquet")
    dataset = load_file(path, label=["y"], split_column="split")
    tabular = dataset.tabular
    assert tabular is not None and tabular.categories == [["", "green", "red"]]
    raw = tabular.splits["train"]
    assert np.isnan(raw.numeric[:, 0]).sum() == 1  # row 7 is a training row
    median = float(np.nanmedian(raw.numeric[:, 0]))
    imputer = tabular.numeric_pipeline[0]
    assert float(imputer.statistics_[0]) == pytest.approx(median)
    assert np.isfinite(dataset.train.features).all()


def test_infinite_numbers_are_refused(tmp_path: Path) -> None:
    columns = _table()
    columns["f1"][7] = np.inf
    path = _write(columns, tmp_path / "d.parquet")
    with pytest.raises(
        ValueError,
        match="feature column 'f1': expected finite numbers or empty cells, got inf at row 7",
    ):
        load_file(path, label=["y"])


def test_every_problem_of_a_file_at_once(tmp_path: Path) -> None:
    columns = _table()
    columns["f1"][3] = -np.inf
    columns["y"] = columns["y"].astype(object)
    columns["y"][5] = None
    path = _write(columns, tmp_path / "d.parquet")
    with pytest.raises(ValueError, match="dropped column") as caught:
        load_file(path, label=["y"], drop=["nosuch"])
    lines = str(caught.value).splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("dropped column 'nosuch': not found in d.parquet")
    assert lines[1] == (
        "feature column 'f1': expected finite numbers or empty cells, got -inf at row 3"
    )
    assert lines[2] == "label column 'y': expected a label in every row, got none at row 5"


def test_id_like_columns_are_left_out_with_a_note(tmp_path: Path) -> None:
    columns = _table()
    columns["customer"] = np.array([f"c{i:04d}" for i in range(60)])
    columns["row_id"] = np.arange(60) + 1000
    columns["count"] = np.arange(60)  # all different, but not named like an ID: kept
    path = _write(columns, tmp_path / "d.csv")
    dataset = load_file(path, label=["y"], split_column="split", drop=["f3"])
    assert dataset.feature_names == ["f1", "f2", "count"]
    assert [n.split(":")[0] for n in dataset.notes] == [
        "column 'customer' left out",
        "column 'row_id' left out",
    ]
    # named in --features, an ID-like column is kept
    kept = load_file(path, label=["y"], split_column="split", features=["f1", "row_id"])
    assert kept.feature_names == ["f1", "row_id"] and kept.notes == ()


def test_missing_label_value(tmp_path: Path) -> None:
    lines = "\n".join(f"{i},{'' if i == 4 else 'ab'[i % 2]}" for i in range(20))
    path = _csv(tmp_path, "a,y\n" + lines + "\n")
    with pytest.raises(
        ValueError, match="label column 'y': expected a label in every row, got none at row 4"
    ):
        load_file(path, label=["y"])


def test_one_class_only(tmp_path: Path) -> None:
    path = _csv(tmp_path, "a,y\n" + "".join(f"{i},same\n" for i in range(10)))
    with pytest.raises(
        ValueError,
        match=r"label column 'y': expected at least 2 classes, got 1 "
        r"\(same\)",
    ):
        load_file(path, label=["y"])


def test_class_in_only_one_split(tmp_path: Path) -> None:
    columns = _table()
    columns["y"][0] = "r"
    del columns["split"]
    path = _write(columns, tmp_path / "d.csv")
    with pytest.raises(
        ValueError,
        match=r"label column 'y': class 'r' appears only in the validation split \(1 sample\); "
        r"expected at least one in each of train, validation and test",
    ):
        load_file(path, label=["y"])


def test_class_missing_from_given_split(tmp_path: Path) -> None:
    columns = _table()
    columns["split"] = np.where(columns["y"] == "c", "train", columns["split"])
    path = _write(columns, tmp_path / "d.parquet")
    with pytest.raises(ValueError, match="class 'c' appears only in the train split"):
        load_file(path, label=["y"], split_column="split")


def test_bad_split_value(tmp_path: Path) -> None:
    columns = _table()
    columns["split"][3] = "dev"
    path = _write(columns, tmp_path / "d.npz")
    with pytest.raises(
        ValueError,
        match="split column 'split': expected one of train, validation, test, got 'dev' at row 3",
    ):
        load_file(path, label=["y"], split_column="split")


def test_multilabel_not_zero_one(tmp_path: Path) -> None:
    columns = _table()
    columns["cat"] = np.arange(60) % 3
    columns["dog"] = np.arange(60) % 2
    path = _write(columns, tmp_path / "d.csv")
    with pytest.raises(
        ValueError, match="label column 'cat': expected 0/1 for a multilabel column, got 2 at row 2"
    ):
        load_file(path, label=["cat", "dog"], features=["f1"])


def test_multilabel_positives_missing_from_a_split(tmp_path: Path) -> None:
    columns = _table()
    columns["cat"] = np.arange(60) % 2
    columns["dog"] = (np.arange(60) == 5).astype(np.int64)
    path = _write(columns, tmp_path / "d.csv")
    with pytest.raises(ValueError, match="label column 'dog': positives appear only in the"):
        load_file(path, label=["cat", "dog"], features=["f1"])


def test_feature_also_label(tmp_path: Path) -> None:
    path = _write(_table(), tmp_path / "d.csv")
    with pytest.raises(ValueError, match="feature column 'y': expected features apart from"):
        load_file(path, label=["y"], features=["f1", "y"])


def test_bad_file_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"dataset: expected one of .* got 'data\.json'"):
        load_dataset("data.json", label=["y"])
    with pytest.raises(ValueError, match="dataset: expected an existing file"):
        load_dataset(str(tmp_path / "missing.csv"), label=["y"])
    with pytest.raises(ValueError, match="label: expected the label column"):
        load_dataset(str(_write(_table(), tmp_path / "d.csv")))


def test_multilabel_label_without_positives(tmp_path: Path) -> None:
    columns = _table()
    columns["cat"] = np.arange(60) % 2
    columns["dog"] = np.zeros(60, dtype=np.int64)
    path = _write(columns, tmp_path / "d.csv")
    with pytest.raises(
        ValueError,
        match=r"label column 'dog': positives appear in no split \(0 "
        r"samples\)",
    ):
        load_file(path, label=["cat", "dog"], features=["f1"])
