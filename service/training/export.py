"""ONNX export, its verification with ONNX Runtime, and the versioned model repository.

A version is written into a hidden staging folder beside the versions
(``<repo>/<name>/.staging-*``), verified, and then renamed to ``<repo>/<name>/<version>``
in one step: a version folder either holds a verified ``model.onnx`` with its ``card.json``
or does not exist, an existing version is never overwritten, and two trainings of one name
at once get different versions.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from losses import Task

from ..models.card import MODEL_NAME, ModelCard, sha256_of
from .model import Classifier, ExportedClassifier
from .tabular import Tabular, attach

__all__ = [
    "INPUT_NAME",
    "MAX_ONNX_DIFFERENCE",
    "OPSET",
    "OUTPUT_NAMES",
    "ExportError",
    "check_model_name",
    "export_onnx",
    "next_version",
    "publish",
    "verify_onnx",
]

INPUT_NAME = "features"
OUTPUT_NAMES = ("logits", "probabilities")
OPSET = 18
"""The ONNX opset: the lowest the torch.export-based exporter writes."""
MAX_ONNX_DIFFERENCE = 1e-4
"""An export whose ONNX Runtime outputs differ from torch's by more fails."""

_MODEL_FILE = "model.onnx"


class ExportError(RuntimeError):
    """The ONNX model does not reproduce the torch model within :data:`MAX_ONNX_DIFFERENCE`."""


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model name (a path segment), else ``ValueError``."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise ValueError(
            f"name: expected 1-64 letters, digits, '_', '.' or '-' starting with a letter or "
            f"digit, got {name!r}"
        )
    return name


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence two messages of torch's exporter that are not about our model.

    - torch 2.13's ``torch.export`` deep-copies pytree specs whose ``LeafSpec`` class warns
      ``FutureWarning: isinstance(treespec, LeafSpec) is deprecated`` from inside torch;
      no argument of ``torch.onnx.export`` avoids it, so exactly that warning is ignored.
    - the exporter's op registry logs a WARNING per torchvision op when torchvision is not
      installed; we export no torchvision op.
    """
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                category=FutureWarning,
            )
            yield
    finally:
        registration.setLevel(level)


def export_onnx(model: Classifier, task: Task, path: Path) -> None:
    """Write ``model`` to ``path`` as ONNX: input ``features (batch, F)`` float32, outputs
    ``logits`` and ``probabilities`` ``(batch, K)`` (softmax for multiclass, sigmoid
    otherwise); the batch axis is dynamic."""
    wrapper = ExportedClassifier(model, task).eval()
    num_features = int(model.mean.shape[0])
    example = torch.zeros(2, num_features)
    with _quiet_exporter():
        torch.onnx.export(
            wrapper,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def verify_onnx(
    path: Path,
    model: Classifier,
    task: Task,
    features: npt.NDArray[np.float32],
    feed: dict[str, np.ndarray] | None = None,
) -> float:
    """Run ``path`` with ONNX Runtime (CPU) on ``features`` and compare with torch.

    ``feed``: the model's raw inputs for the same rows, when it takes raw columns (its
    preprocessing then runs in ONNX Runtime, torch gets ``features``). Runs the whole batch
    and its first row alone (the dynamic batch axis). Returns the largest absolute
    difference over both outputs.

    Raises:
        ExportError: the difference exceeds :data:`MAX_ONNX_DIFFERENCE`, or the model's
            inputs or outputs are not the ones expected.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a check on a few hundred rows: threads only contend
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    if feed is None:
        feed = {INPUT_NAME: np.ascontiguousarray(features, dtype=np.float32)}
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if inputs != list(feed) or outputs != list(OUTPUT_NAMES):
        raise ExportError(
            f"onnx: expected inputs {list(feed)} and outputs {list(OUTPUT_NAMES)}, got "
            f"{inputs} and {outputs}"
        )
    wrapper = ExportedClassifier(model, task).eval()
    worst = 0.0
    for rows in (len(features), 1):
        batch = features[:rows]
        got = session.run(None, {name: value[:rows] for name, value in feed.items()})
        with torch.inference_mode():
            expected = wrapper(torch.from_numpy(np.ascontiguousarray(batch)))
        for name, ort_out, torch_out in zip(OUTPUT_NAMES, got, expected, strict=True):
            reference = torch_out.numpy()
            if ort_out.shape != reference.shape:
                raise ExportError(
                    f"onnx: expected {name} of shape {reference.shape}, got {ort_out.shape}"
                )
            worst = max(worst, float(np.max(np.abs(ort_out - reference), initial=0.0)))
    if not worst <= MAX_ONNX_DIFFERENCE:
        raise ExportError(
            f"onnx: expected ONNX Runtime to match torch within {MAX_ONNX_DIFFERENCE:g}, got a "
            f"largest difference of {worst:.3g}"
        )
    return worst


def next_version(model_dir: Path) -> int:
    """One more than the largest version folder (a positive integer name), else 1."""
    if not model_dir.is_dir():
        return 1
    versions = [
        int(p.name)
        for p in model_dir.iterdir()
        if p.is_dir() and p.name.isdigit() and p.name[0] != "0"
    ]
    return max(versions, default=0) + 1


def publish(
    repository: Path,
    name: str,
    model: Classifier,
    task: Task,
    test_features: npt.NDArray[np.float32],
    card: Callable[[int, str, float], ModelCard],
    tabular: Tabular | None = None,
    beside: Callable[[Path, ModelCard], object] | None = None,
) -> tuple[Path, ModelCard]:
    """Export, verify and add ``model`` to ``repository`` as the next version of ``name``.

    ``card(version, sha256, onnx_tolerance)`` builds the card. ``tabular``: the data's
    preprocessing, exported in front of the network (the model then takes the raw columns,
    checked on the raw test rows). ``beside(folder, card)`` writes other files into the
    version's folder before it appears (the report). Returns the version folder and the card
    written there.

    Raises:
        ValueError: a bad model name.
        ExportError: ONNX Runtime does not reproduce the model (nothing is written).
    """
    check_model_name(name)
    model_dir = repository / name
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = model_dir / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()  # the umask's permissions, as the version folders should have
    try:
        onnx_path = staging / _MODEL_FILE
        export_onnx(model, task, onnx_path)
        feed = None
        if tabular is not None:
            import onnx

            joined = attach(tabular.preprocessing_onnx(), onnx.load(str(onnx_path)))
            onnx.checker.check_model(joined)
            onnx.save(joined, str(onnx_path))
            feed = tabular.splits["test"].feed()
        tolerance = verify_onnx(onnx_path, model, task, test_features, feed)
        digest = sha256_of(onnx_path)
        for _ in range(1000):
            version = next_version(model_dir)
            written = card(version, digest, tolerance)
            written.write(staging)
            if beside is not None:
                beside(staging, written)
            target = model_dir / str(version)
            try:
                os.rename(staging, target)  # fails on a non-empty target: never overwrites
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                continue  # another training took this version; take the next one
            return target, written
        raise RuntimeError(f"repository: could not find a free version for {name!r}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
