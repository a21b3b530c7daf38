"""Datasets for training: the built-in imbalanced sets and the user's own files.

Every dataset comes as a :class:`Dataset`: float32 features, int64 targets, the label names
and three splits (train, validation, test). The splits are stratified:

- binary and multiclass: per class, ``round(0.2 n)`` samples (at least 1) go to validation,
  as many to test, the rest to train, so every class with 3 samples or more is in every
  split in the same proportions;
- multilabel: iterative stratification (Sechidis, Tsoumakas and Vlahavas, "On the
  Stratification of Multi-Label Data", ECML PKDD 2011): the rarest label is placed first,
  each of its samples into the split that most lacks that label, so rare labels are spread
  over the splits in proportion.

Built-in datasets need no download (scikit-learn ships them; the real benchmark sets of
:mod:`lossserve.training.packaged` come from installed packages) and use fixed seeds: the
same name gives the same splits on every machine, whatever the training seed.

==========================  ==========  ====================================================
name                        task        what
==========================  ==========  ====================================================
``digits-lt``               multiclass  scikit-learn's digits subsampled to a long tail:
                                        ``n_c = n_max * ratio^(-c / (C - 1))`` (the
                                        CIFAR-LT profile), ratio 50, digit 0 the head
``breast-cancer-imbalanced``  binary    Wisconsin breast cancer, positive = malignant,
                                        subsampled to 1 positive per 10 negatives
``multilabel-synth``        multilabel  ``make_multilabel_classification`` (8 labels),
                                        rows with rare labels dropped so that label
                                        frequencies fall off ~10x from first to last
==========================  ==========  ====================================================

User files (CSV, Parquet, NPZ) name their feature and label columns; see :func:`load_file`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from losses import Task

from .tabular import Tabular, categories, classify_column, fit_tabular, id_like, numbers

__all__ = [
    "BUILTIN_DATASETS",
    "PACKAGED_NAMES",
    "SPLITS",
    "Dataset",
    "Split",
    "breast_cancer_imbalanced",
    "digits_lt",
    "iterative_stratification",
    "load_dataset",
    "load_file",
    "long_tail_counts",
    "multilabel_synth",
    "stratified_split",
]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

SPLITS = ("train", "validation", "test")
"""The split names, in order; also the values a user file's split column may hold."""

_FRACTIONS = (0.6, 0.2, 0.2)
"""Train, validation and test shares of every stratified split."""

_DATA_SEED = 0
"""The seed of every built-in dataset's subsampling and split (fixed: not the training seed)."""


@dataclass(frozen=True)
class Split:
    """One split: ``features (N, F)`` float32 and ``targets`` int64.

    ``targets`` are ``(N,)`` class indices (binary: 0/1, 1 the positive class) or ``(N, C)``
    0/1 for multilabel.
    """

    features: F32
    targets: I64

    def __len__(self) -> int:
        return int(self.features.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A dataset split three ways, with the names of its features and labels.

    ``labels`` has one name per class: binary ``[negative, positive]``, multiclass one per
    class index, multilabel one per label column.
    """

    name: str
    task: Task
    labels: list[str]
    feature_names: list[str]
    train: Split
    validation: Split
    test: Split
    tabular: Tabular | None = None
    """A user file's raw columns and their fitted preprocessing, when it has categories
    or empty cells (``features`` are then the preprocessed ones)."""
    notes: tuple[str, ...] = ()
    """What loading decided that the user should hear (columns left out as IDs)."""
    fixed_test: bool = False
    """The test split is the benchmark's own (Fashion-MNIST's balanced test images): a
    cross-validation keeps it and folds only the training and validation rows."""

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def num_outputs(self) -> int:
        """Logits per row: 1 for binary (the positive class), else one per class."""
        return 1 if self.task is Task.BINARY else len(self.labels)

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {name!r}")
        result: Split = getattr(self, name)
        return result

    def class_counts(self, split: str = "train") -> I64:
        """Samples per class (multilabel: positives per label) in ``split``."""
        targets = self.split(split).targets
        counts: I64 = (
            targets.sum(axis=0, dtype=np.int64)
            if self.task is Task.MULTILABEL
            else np.bincount(targets, minlength=len(self.labels)).astype(np.int64)
        )
        return counts


# ---------------------------------------------------------------------------- splits


def stratified_split(labels: npt.NDArray[Any], *, seed: int) -> I64:
    """The split (0 train, 1 validation, 2 test) of each sample, stratified by class.

    Per class of ``n`` samples, shuffled with ``seed``: ``max(1, round(0.2 n))`` to
    validation, as many to test, the rest to train. A class of fewer than 3 samples cannot be
    in every split; its samples fill validation, then test (the caller's check reports it).
    """
    rng = np.random.default_rng(seed)
    assignment = np.zeros(labels.shape[0], dtype=np.int64)
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        n = members.size
        held = max(1, round(_FRACTIONS[1] * n))
        n_val = min(held, n)
        n_test = min(held, n - n_val)
        assignment[members[:n_val]] = 1
        assignment[members[n_val : n_val + n_test]] = 2
    return assignment


def iterative_stratification(
    targets: npt.NDArray[Any], *, seed: int, fractions: Sequence[float] = _FRACTIONS
) -> I64:
    """The split (0 train, 1 validation, 2 test; or the index into ``fractions``, e.g. K
    equal folds) of each multi-hot row, stratified by label.

    Sechidis et al. (2011): while rows are left, take the label with the fewest positives
    among them; give each of its rows (in a seeded random order) to the split that lacks the
    most of that label, ties broken by the split that lacks the most rows, then at random.
    Rows with no label go to the split that lacks the most rows.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(targets, dtype=bool)
    n = y.shape[0]
    shares = np.asarray(fractions, dtype=np.float64)
    want_rows = shares * n
    want_labels = shares[:, None] * y.sum(axis=0)[None, :]  # (splits, C)
    assignment = np.full(n, -1, dtype=np.int64)
    left = np.ones(n, dtype=bool)

    def place(row: int, wanted: npt.NDArray[np.float64]) -> None:
        best = np.flatnonzero(wanted == wanted.max())
        if best.size > 1:
            rows = want_rows[best]
            best = best[rows == rows.max()]
        split = int(best[rng.integers(best.size)]) if best.size > 1 else int(best[0])
        assignment[row] = split
        left[row] = False
        want_rows[split] -= 1
        want_labels[split] -= y[row]

    while True:
        remaining = y[left].sum(axis=0)
        if not remaining.any():
            break
        label = int(np.argmin(np.where(remaining > 0, remaining, np.iinfo(np.int64).max)))
        for row in rng.permutation(np.flatnonzero(left & y[:, label])):
            place(int(row), want_labels[:, label])
    for row in rng.permutation(np.flatnonzero(left)):
        place(int(row), want_rows)
    return assignment


def _assemble(
    name: str,
    task: Task,
    labels: list[str],
    feature_names: list[str],
    features: npt.NDArray[Any],
    targets: npt.NDArray[Any],
    assignment: I64,
) -> Dataset:
    x = np.ascontiguousarray(features, dtype=np.float32)
    y = np.ascontiguousarray(targets, dtype=np.int64)
    train, validation, test = (
        Split(x[assignment == k], y[assignment == k]) for k in range(len(SPLITS))
    )
    return Dataset(name, task, labels, feature_names, train, validation, test)


# ---------------------------------------------------------------------------- built-in


def long_tail_counts(n_max: int, num_classes: int, ratio: float) -> list[int]:
    """Per-class counts of the CIFAR-LT exponential profile, head first.

    ``n_c = floor(n_max * ratio^(-c / (C - 1)))`` for ``c = 0 .. C-1``: class 0 keeps
    ``n_max`` and the last class ``n_max / ratio``.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes: expected at least 2, got {num_classes}")
    if not ratio >= 1.0:
        raise ValueError(f"ratio: expected an imbalance ratio >= 1, got {ratio!r}")
    return [int(n_max * ratio ** (-c / (num_classes - 1))) for c in range(num_classes)]


def digits_lt(ratio: float = 50.0) -> Dataset:
    """``digits-lt``: scikit-learn's 8x8 digits with a long-tailed class profile.

    ``n_max`` is the smallest class's full count (174), so each class ``c`` (digit ``c``)
    keeps ``floor(174 * ratio^(-c/9))`` samples drawn at random (seed fixed); with the
    default ratio 50 that is 174 down to 3, 482 samples in all.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = np.asarray(digits.data), np.asarray(digits.target)
    num_classes = 10
    counts = long_tail_counts(int(np.bincount(y).min()), num_classes, ratio)
    if min(counts) < len(SPLITS):
        raise ValueError(
            f"ratio: expected an imbalance ratio that leaves every class at least "
            f"{len(SPLITS)} samples (one per split), got {ratio!r} (the tail class keeps "
            f"{min(counts)})"
        )
    rng = np.random.default_rng(_DATA_SEED)
    keep = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), counts[c], replace=False) for c in range(num_classes)]
    )
    keep.sort()
    x, y = x[keep], y[keep]
    return _assemble(
        "digits-lt",
        Task.MULTICLASS,
        [str(c) for c in range(num_classes)],
        [f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
        x,
        y,
        stratified_split(y, seed=_DATA_SEED),
    )


def breast_cancer_imbalanced(ratio: float = 10.0) -> Dataset:
    """``breast-cancer-imbalanced``: Wisconsin breast cancer, malignant the rare positive.

    All 357 benign samples are kept and ``floor(357 / ratio)`` of the 212 malignant ones
    (35 at the default ratio 10), drawn at random (seed fixed). Label 1 is malignant.
    """
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = np.asarray(data.data)
    positive = np.asarray(data.target) == 0  # scikit-learn's target 0 is malignant
    n_pos = int(np.count_nonzero(~positive) / ratio) if ratio >= 1.0 else 0
    if n_pos < len(SPLITS) or n_pos > int(positive.sum()):
        raise ValueError(
            f"ratio: expected an imbalance ratio in [{(~positive).sum() / positive.sum():.3g}, "
            f"{(~positive).sum() / len(SPLITS):.3g}], got {ratio!r}"
        )
    rng = np.random.default_rng(_DATA_SEED)
    kept_pos = rng.choice(np.flatnonzero(positive), n_pos, replace=False)
    keep = np.sort(np.concatenate([np.flatnonzero(~positive), kept_pos]))
    y = positive[keep].astype(np.int64)
    return _assemble(
        "breast-cancer-imbalanced",
        Task.BINARY,
        ["benign", "malignant"],
        [str(f).replace(" ", "_") for f in data.feature_names],
        x[keep],
        y,
        stratified_split(y, seed=_DATA_SEED),
    )


def multilabel_synth(ratio: float = 20.0, num_labels: int = 8) -> Dataset:
    """``multilabel-synth``: 20 features, 8 labels whose frequencies fall off.

    ``make_multilabel_classification(n_samples=6000, n_labels=2, allow_unlabeled=False)``,
    labels reordered from most to least frequent; a row is then kept with probability
    ``min_{c in row} ratio^(-c / (C - 1))``, so rows carrying rare labels are mostly
    dropped (seed fixed). At the default ratio 20 about 1400 rows remain, label counts
    ~680 down to ~70.
    """
    from sklearn.datasets import make_multilabel_classification

    if not ratio >= 1.0:
        raise ValueError(f"ratio: expected a ratio >= 1, got {ratio!r}")
    x, y = make_multilabel_classification(
        n_samples=6000,
        n_features=20,
        n_classes=num_labels,
        n_labels=2,
        allow_unlabeled=False,
        random_state=_DATA_SEED,
    )
    y = np.asarray(y)[:, np.argsort(-np.asarray(y).sum(axis=0), kind="stable")]
    keep_label = ratio ** (-np.arange(num_labels) / max(1, num_labels - 1))
    keep_row = np.where(y.astype(bool), keep_label[None, :], np.inf).min(axis=1)
    rng = np.random.default_rng(_DATA_SEED)
    kept = rng.random(y.shape[0]) < keep_row
    x, y = np.asarray(x)[kept], y[kept]
    return _assemble(
        "multilabel-synth",
        Task.MULTILABEL,
        [f"label_{c}" for c in range(num_labels)],
        [f"x{i}" for i in range(x.shape[1])],
        x,
        y,
        iterative_stratification(y, seed=_DATA_SEED),
    )


def _packaged(name: str) -> Dataset:
    from .packaged import PACKAGED_DATASETS  # it builds on this module

    return PACKAGED_DATASETS[name]()


PACKAGED_NAMES = (
    "page-blocks",
    "kr-vs-k",
    "winequality-red-4",
    "abalone-17_vs_7-8-9-10",
    "yeast",
    "fashion-mnist-lt",
)
"""The real datasets of :mod:`lossserve.training.packaged`, read from installed packages."""

BUILTIN_DATASETS: Mapping[str, Callable[[], Dataset]] = {
    "breast-cancer-imbalanced": breast_cancer_imbalanced,
    "digits-lt": digits_lt,
    "multilabel-synth": multilabel_synth,
    **{name: functools.partial(_packaged, name) for name in PACKAGED_NAMES},
}
"""Built-in dataset names and their constructors (default arguments)."""


# ---------------------------------------------------------------------------- user files

_SUFFIXES = (".csv", ".parquet", ".pq", ".npz")


def _read_columns(path: Path) -> dict[str, npt.NDArray[Any]]:
    """Every column of ``path`` as a numpy array; NPZ arrays may be 2-D (a block of columns)."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return {key: np.asarray(archive[key]) for key in archive.files}
    if suffix == ".csv":
        from pyarrow import csv

        table = csv.read_csv(path)
    else:
        from pyarrow import parquet

        table = parquet.read_table(path)
    columns: dict[str, npt.NDArray[Any]] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        values = np.asarray(column.to_numpy(zero_copy_only=False))
        if column.null_count:
            values = values.astype(object)
            values[np.asarray(column.is_null().to_numpy(zero_copy_only=False))] = None
        columns[name] = values
    return columns


def _first_missing(values: npt.NDArray[Any]) -> int | None:
    """The first row that holds no value: None (an empty cell), NaN, or a blank string."""
    if values.dtype == object or values.dtype.kind == "U":
        missing = np.array(
            [v is None or (isinstance(v, str) and not v.strip()) for v in values.reshape(-1)]
        )
    elif values.dtype.kind == "f":
        missing = np.isnan(values.reshape(-1))
    else:
        return None
    hits = np.flatnonzero(missing)
    return int(hits[0]) if hits.size else None


def _feature_block(name: str, values: npt.NDArray[Any]) -> tuple[list[str], F32]:
    """An NPZ block of feature columns (2-D ``(N, k)``: numbers, every cell filled; an NPZ
    holds no object arrays) as ``(names, (N, k))``."""
    if values.dtype.kind not in "biuf":
        numbers = (int, float, np.integer, np.floating)
        example = next((v for v in values.reshape(-1) if not isinstance(v, numbers)), None)
        got = values.dtype if example is None else f"{type(example).__name__} {example!r}"
        raise ValueError(f"feature column {name!r}: expected numbers, got {got}")
    block = values.astype(np.float64)
    bad = ~np.isfinite(block)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"feature column {name!r}: expected finite numbers, got {float(block[row, col])!r} "
            f"at row {row}"
        )
    return [f"{name}[{i}]" for i in range(block.shape[1])], block.astype(np.float32)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (so that messages show ``'x'``, not ``np.str_``)."""
    return value.item() if isinstance(value, np.generic) else value


def _class_name(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        return value.decode()
    return str(_plain(value))


def _single_label(name: str, values: npt.NDArray[Any]) -> tuple[Task, list[str], I64]:
    if values.ndim != 1:
        raise ValueError(
            f"label column {name!r}: expected one value per row, got shape {values.shape}"
        )
    missing = _first_missing(values)
    if missing is not None:
        raise ValueError(
            f"label column {name!r}: expected a label in every row, got none at row {missing}"
        )
    try:
        classes, indices = np.unique(values, return_inverse=True)
    except TypeError:
        raise ValueError(
            f"label column {name!r}: expected labels of one type, got a mix of "
            f"{sorted({type(v).__name__ for v in values})}"
        ) from None
    if classes.size < 2:
        raise ValueError(
            f"label column {name!r}: expected at least 2 classes, got {classes.size} "
            f"({', '.join(_class_name(c) for c in classes)})"
        )
    labels = [_class_name(c) for c in classes]
    task = Task.BINARY if classes.size == 2 else Task.MULTICLASS
    return task, labels, indices.reshape(-1).astype(np.int64)


def _multi_label(names: Sequence[str], blocks: Sequence[npt.NDArray[Any]]) -> I64:
    columns = []
    for name, values in zip(names, blocks, strict=True):
        if values.ndim != 1:
            raise ValueError(
                f"label column {name!r}: expected one 0/1 value per row, got shape {values.shape}"
            )
        if values.dtype.kind not in "biuf":
            raise ValueError(
                f"label column {name!r}: expected 0/1 for a multilabel column, got {values.dtype}"
            )
        bad = (values != 0) & (values != 1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"label column {name!r}: expected 0/1 for a multilabel column, got "
                f"{values[row].item()!r} at row {row}"
            )
        columns.append(values.astype(np.int64))
    return np.stack(columns, axis=1)


def _check_every_split(
    task: Task, labels: list[str], targets: I64, assignment: I64, label_column: str
) -> None:
    """Every class (multilabel: every label's positives) must be in train, validation, test."""
    present = (
        targets.astype(bool)
        if task is Task.MULTILABEL
        else np.eye(len(labels), dtype=bool)[targets]
    )
    for c, label in enumerate(labels):
        found = [SPLITS[k] for k in range(len(SPLITS)) if present[assignment == k, c].any()]
        if len(found) < len(SPLITS):
            column = label if task is Task.MULTILABEL else label_column
            what = "positives" if task is Task.MULTILABEL else f"class {label!r}"
            total = int(present[:, c].sum())
            verb = "appear" if task is Task.MULTILABEL else "appears"
            where = (
                f"{verb} only in the {' and '.join(found)} split{'s' if len(found) > 1 else ''}"
                if found
                else f"{verb} in no split"
            )
            raise ValueError(
                f"label column {column!r}: {what} {where} ({total} "
                f"sample{'s' if total != 1 else ''}); expected at least one in each of train, "
                f"validation and test"
            )


def load_file(
    path: Path,
    *,
    label: Sequence[str],
    features: Sequence[str] | None = None,
    split_column: str | None = None,
    drop: Sequence[str] = (),
) -> Dataset:
    """A user's CSV, Parquet or NPZ file as a :class:`Dataset`.

    Args:
        path: ``.csv`` (header row), ``.parquet``/``.pq`` or ``.npz`` (one array per
            column; a 2-D array is a block of feature columns named ``key[i]``).
        label: one column of class labels (numbers or strings; 2 classes make a binary
            task whose positive class is the larger value, more make a multiclass task), or
            several 0/1 columns, one per label (multilabel).
        features: the feature columns; default every column but the label, split and
            ``drop`` columns and those that look like IDs (see
            :func:`~lossserve.training.tabular.id_like`; each one left out is in ``notes``).
        split_column: a column of ``train``/``validation``/``test`` per row; default a
            stratified 60/20/20 split (seed fixed).
        drop: columns to leave out.

    Feature columns hold numbers or strings (categories), with empty cells or not. A file
    with categories or empty cells gets a preprocessing fitted on its training split
    (:mod:`lossserve.training.tabular`), exported in front of the network.

    Raises:
        ValueError: every problem of the file at once, one a line, naming the column:
            not found, a mix of numbers and strings, infinite numbers, missing labels,
            fewer than 2 classes, a bad split value, a class (or a label's positives)
            missing from one of the splits. Rows are counted from 0, the first data row
            (a CSV's header is not a row).
    """
    if not label:
        raise ValueError("label: expected the label column(s) of a user file, got none")
    if path.suffix.lower() not in _SUFFIXES:
        raise ValueError(
            f"dataset: expected a file ending in {', '.join(_SUFFIXES)}, got {path.name!r}"
        )
    if not path.is_file():
        raise ValueError(f"dataset: expected an existing file, got {str(path)!r}")
    columns = _read_columns(path)
    problems: list[str] = []
    available = ", ".join(repr(c) for c in columns) or "none"
    named = [("label", n) for n in label] + [("split", n) for n in [split_column] if n]
    named += [("dropped", n) for n in drop] + [("feature", n) for n in features or ()]
    for role, name in named:
        if name not in columns:
            problems.append(
                f"{role} column {name!r}: not found in {path.name}; expected one of: {available}"
            )
    reserved = {*label, *([split_column] if split_column else []), *drop}
    overlap = sorted(reserved.intersection(features or ()))
    if overlap:
        problems.append(
            f"feature column {overlap[0]!r}: expected features apart from the label, split "
            "and dropped columns, got it in both"
        )
    chosen = [n for n in (features or columns) if n in columns and n not in reserved]
    if not chosen and not problems:
        problems.append(f"features: expected at least one feature column in {path.name}, got none")
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(
            f"columns: expected the same number of rows in every column, got {sorted(lengths)}"
        )

    numeric: list[tuple[str, npt.NDArray[np.float32]]] = []
    categorical: list[tuple[str, npt.NDArray[np.object_]]] = []
    notes: list[str] = []
    for name in chosen:
        values = columns[name]
        if values.ndim == 2:  # an NPZ block: numbers, complete
            try:
                block_names, block = _feature_block(name, values)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            numeric += [(n, block[:, i]) for i, n in enumerate(block_names)]
            continue
        if values.ndim != 1:
            problems.append(
                f"feature column {name!r}: expected one value (1-D) or a block of values "
                f"(2-D) per row, got an array of shape {values.shape}"
            )
            continue
        kind = classify_column(values)
        if kind is None:
            problems.append(f"feature column {name!r}: expected numbers or strings, got both")
            continue
        if not features and id_like(name, kind, values):
            notes.append(
                f"column {name!r} left out: it looks like an ID (a different value in every "
                "row); name it in --features to keep it"
            )
            continue
        if kind == "category":
            categorical.append((name, categories(values)))
            continue
        column = numbers(values)
        infinite = np.flatnonzero(np.isinf(column))
        if infinite.size:
            problems.append(
                f"feature column {name!r}: expected finite numbers or empty cells, got "
                f"{float(column[infinite[0]])!r} at row {int(infinite[0])}"
            )
        numeric.append((name, column))
    if not numeric and not categorical and chosen and not problems:
        problems.append(f"features: every feature column of {path.name} was left out as an ID")

    task: Task | None = None
    labels: list[str] = []
    y = np.zeros(0, dtype=np.int64)
    if all(name in columns for name in label):
        try:
            if len(label) == 1:
                task, labels, y = _single_label(label[0], columns[label[0]])
            else:
                blocks = [columns[name] for name in label]
                task, labels, y = Task.MULTILABEL, list(label), _multi_label(label, blocks)
        except ValueError as exc:
            problems.append(str(exc))
    if problems or task is None:
        raise ValueError("\n".join(problems))
    if y.shape[0] == 0:
        raise ValueError(f"dataset: expected at least one row in {path.name}, got none")

    if split_column is None:
        assignment = (
            iterative_stratification(y, seed=_DATA_SEED)
            if task is Task.MULTILABEL
            else stratified_split(y, seed=_DATA_SEED)
        )
    else:
        raw = columns[split_column]
        values = np.array([_class_name(v) if v is not None else "" for v in raw])
        bad = ~np.isin(values, SPLITS)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"split column {split_column!r}: expected one of {', '.join(SPLITS)}, got "
                f"{_plain(raw[row])!r} at row {row}"
            )
        assignment = np.array([SPLITS.index(v) for v in values], dtype=np.int64)
    _check_every_split(task, labels, y, assignment, label[0])
    complete = all(not np.isnan(column).any() for _, column in numeric)
    if not categorical and complete:
        x = np.stack([column for _, column in numeric], axis=1)
        dataset = _assemble(path.name, task, labels, [n for n, _ in numeric], x, y, assignment)
        return dataclasses.replace(dataset, notes=tuple(notes))
    tabular = fit_tabular(numeric, categorical, assignment, SPLITS)
    x = np.empty((len(y), len(tabular.feature_names)), dtype=np.float32)
    for k, split in enumerate(SPLITS):
        x[assignment == k] = tabular.transform(tabular.splits[split])
    dataset = _assemble(path.name, task, labels, tabular.feature_names, x, y, assignment)
    return dataclasses.replace(dataset, tabular=tabular, notes=tuple(notes))


def load_dataset(
    dataset: str | Path,
    *,
    label: Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    split_column: str | None = None,
    drop: Sequence[str] | None = None,
) -> Dataset:
    """A built-in dataset by name, or a user file (see :func:`load_file`) by path."""
    if isinstance(dataset, str) and dataset in BUILTIN_DATASETS:
        if label or features or split_column or drop:
            raise ValueError(
                f"dataset {dataset!r}: expected no label, feature or split columns for a "
                f"built-in dataset, got some"
            )
        return BUILTIN_DATASETS[dataset]()
    path = Path(dataset)
    if path.suffix.lower() not in _SUFFIXES:
        raise ValueError(
            f"dataset: expected one of {', '.join(BUILTIN_DATASETS)} or a "
            f"{', '.join(_SUFFIXES)} file, got {str(dataset)!r}"
        )
    return load_file(
        path, label=label or (), features=features, split_column=split_column, drop=drop or ()
    )
