"""Built-in datasets: imbalance profiles, stratified splits, fixed seeds."""

from __future__ import annotations

import numpy as np
import pytest

from losses import Task
from lossserve.training import Dataset, load_dataset
from lossserve.training.datasets import (
    SPLITS,
    breast_cancer_imbalanced,
    digits_lt,
    iterative_stratification,
    long_tail_counts,
    stratified_split,
)


def _all_counts(dataset: Dataset) -> np.ndarray:
    counts: np.ndarray = np.sum([dataset.class_counts(split) for split in SPLITS], axis=0)
    return counts


def test_long_tail_profile_by_hand() -> None:
    # floor(174 * 50^(-c/9)): 50^(-1/9) = 0.64750..., 174 * 0.6475 = 112.7, ...
    assert long_tail_counts(174, 10, 50.0) == [174, 112, 72, 47, 30, 19, 12, 8, 5, 3]
    assert long_tail_counts(100, 2, 4.0) == [100, 25]
    assert long_tail_counts(7, 3, 1.0) == [7, 7, 7]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_max": 10, "num_classes": 1, "ratio": 2.0}, "num_classes: expected at least 2, got 1"),
        ({"n_max": 10, "num_classes": 3, "ratio": 0.5}, "ratio: expected an imbalance ratio >= 1"),
    ],
)
def test_long_tail_bad_arguments(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        long_tail_counts(**kwargs)  # type: ignore[arg-type]


def test_digits_lt_follows_the_profile(digits: Dataset) -> None:
    counts = _all_counts(digits)
    assert digits.task is Task.MULTICLASS
    assert digits.labels == [str(c) for c in range(10)]
    assert counts.tolist() == long_tail_counts(174, 10, 50.0)
    assert counts[0] / 50.0 == pytest.approx(3.48)  # n_max / ratio, floored to the tail's 3
    assert digits.num_features == 64 and digits.num_outputs == 10
    assert digits.train.features.dtype == np.float32 and digits.train.targets.dtype == np.int64


def test_digits_lt_other_ratio() -> None:
    counts = _all_counts(digits_lt(ratio=10.0))
    assert counts.tolist() == long_tail_counts(174, 10, 10.0)
    assert counts[-1] == 17


def test_digits_lt_ratio_too_large() -> None:
    with pytest.raises(ValueError, match="the tail class keeps 1"):
        digits_lt(ratio=100.0)


def test_breast_cancer_positives_subsampled(breast: Dataset) -> None:
    counts = _all_counts(breast)
    assert breast.task is Task.BINARY
    assert breast.labels == ["benign", "malignant"]
    assert breast.num_outputs == 1
    assert counts.tolist() == [357, 35]  # floor(357 / 10) malignant
    assert _all_counts(breast_cancer_imbalanced(ratio=5.0)).tolist() == [357, 71]


def test_multilabel_synth_is_skewed(synth: Dataset) -> None:
    counts = _all_counts(synth)
    assert synth.task is Task.MULTILABEL
    assert synth.train.targets.shape[1] == len(synth.labels) == 8
    assert np.all(np.diff(counts) < 0)  # most to least frequent
    assert counts[0] / counts[-1] > 5.0
    assert (synth.train.targets.sum(axis=1) > 0).all()  # no unlabeled rows


@pytest.mark.parametrize("name", ["digits-lt", "breast-cancer-imbalanced", "multilabel-synth"])
def test_every_class_in_every_split_in_proportion(name: str) -> None:
    dataset = load_dataset(name)
    total = _all_counts(dataset)
    sizes = np.array([len(dataset.split(s)) for s in SPLITS])
    assert np.allclose(sizes / sizes.sum(), [0.6, 0.2, 0.2], atol=0.02)
    for split, share in zip(SPLITS, (0.6, 0.2, 0.2), strict=True):
        counts = dataset.class_counts(split)
        assert (counts >= 1).all(), (split, counts)
        big = total >= 40  # proportions only mean something for the larger classes
        assert np.allclose(counts[big] / total[big], share, atol=0.03), (split, counts, total)


def test_stratified_split_per_class_counts() -> None:
    labels = np.repeat([0, 1, 2, 3], [100, 10, 3, 4])
    assignment = stratified_split(labels, seed=0)
    per_class = [np.bincount(assignment[labels == c], minlength=3).tolist() for c in range(4)]
    # round(0.2 n), at least 1, to validation and to test; the rest to train.
    assert per_class == [[60, 20, 20], [6, 2, 2], [1, 1, 1], [2, 1, 1]]
    assert np.array_equal(assignment, stratified_split(labels, seed=0))
    assert not np.array_equal(assignment, stratified_split(labels, seed=1))


def test_iterative_stratification_spreads_rare_labels() -> None:
    rng = np.random.default_rng(0)
    frequencies = np.array([0.5, 0.2, 0.05, 0.01])
    y = (rng.random((1000, 4)) < frequencies).astype(np.int64)
    y[:3, 3] = 1  # at least 3 positives of the rarest label
    assignment = iterative_stratification(y, seed=0)
    sizes = np.bincount(assignment, minlength=3)
    assert np.allclose(sizes / 1000, [0.6, 0.2, 0.2], atol=0.01)
    for label in range(4):
        per_split = np.array([y[assignment == k, label].sum() for k in range(3)])
        total = per_split.sum()
        assert (per_split >= 1).all(), (label, per_split)
        # Each split holds its share of the label's positives, to within one row.
        assert np.all(np.abs(per_split - total * np.array([0.6, 0.2, 0.2])) <= 1.0), per_split


@pytest.mark.parametrize("name", ["digits-lt", "breast-cancer-imbalanced", "multilabel-synth"])
def test_fixed_seed_reproducible(name: str) -> None:
    first, second = load_dataset(name), load_dataset(name)
    for split in SPLITS:
        a, b = first.split(split), second.split(split)
        assert np.array_equal(a.features, b.features)
        assert np.array_equal(a.targets, b.targets)


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(ValueError, match=r"expected one of .*digits-lt.* got 'digits'"):
        load_dataset("digits")
    with pytest.raises(ValueError, match="expected no label, feature or split columns"):
        load_dataset("digits-lt", label=["y"])
    with pytest.raises(ValueError, match="split: expected one of train, validation, test"):
        load_dataset("breast-cancer-imbalanced").split("dev")
