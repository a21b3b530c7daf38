"""Training: any registry loss and its params, class weights, early stopping on macro-F1."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

import losses
from losses import LossModule, Task

from ..core.evaluator import evaluate, fit_thresholds
from ..core.types import EvaluateRequest, ThresholdsRequest
from .datasets import Dataset, Split
from .model import Architecture, Classifier
from .thresholds import keeps_zero_threshold

__all__ = [
    "CLASS_WEIGHT_PARAMS",
    "Checkpoint",
    "EpochRecord",
    "FitResult",
    "LossSetup",
    "TrainOptions",
    "fit",
    "loss_targets",
    "predict_logits",
    "resolve_loss",
    "scores",
]

CLASS_WEIGHT_PARAMS: Mapping[str, str] = {
    "binary_cross_entropy": "pos_weight",
    "cross_entropy": "weight",
    "focal": "alpha",
}
"""The losses that take class weights, and the parameter ``class_weights`` fills."""


class TrainOptions(BaseModel):
    """How a classifier is trained (everything but the data and the loss)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    architecture: Architecture = "mlp"
    hidden: int = Field(128, ge=1, le=4096, description="Units per hidden layer (mlp).")
    epochs: int = Field(200, ge=1, le=100_000, description="Most epochs to train.")
    patience: int = Field(
        20, ge=1, description="Stop after this many epochs without a better validation macro-F1."
    )
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=10.0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0.0, le=10.0, description="AdamW weight decay.")
    seed: int = Field(0, ge=0, description="Seeds initialisation and shuffling.")
    threads: int = Field(
        1,
        ge=0,
        description="torch intra-op threads while training (0: leave torch's setting). Models "
        "this small gain nothing from more, and lose much on a busy machine.",
    )


@dataclass(frozen=True)
class LossSetup:
    """A loss ready to train with: its validated params (JSON-able) and its module."""

    name: str
    params: dict[str, Any]
    module: LossModule
    class_weights: str | None = None


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    validation_macro_f1: float
    validation_macro_f1_thresholds: float | None = None
    """With thresholds (offsets) fitted on the validation split itself, when tracked."""


@dataclass(frozen=True)
class Checkpoint:
    """The model at the epoch one validation metric was best."""

    model: Classifier
    epoch: int
    validation_macro_f1: float


@dataclass
class FitResult:
    """The model at its best validation macro-F1 (argmax / threshold 0 decisions); with
    ``track_thresholds``, also the model at its best validation macro-F1 once thresholds are
    fitted on that split (``thresholds``)."""

    model: Classifier
    loss: LossSetup
    best_epoch: int
    best_validation_macro_f1: float
    history: list[EpochRecord] = field(default_factory=list)
    seconds: float = 0.0
    thresholds: Checkpoint | None = None


# ---------------------------------------------------------------------------- tensors


def as_tensor(array: npt.NDArray[Any]) -> Tensor:
    """``array`` as a tensor sharing its memory, or a copy where the array is read-only (a
    memory map joblib hands its workers): torch cannot share read-only memory."""
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, order="C")
    return torch.from_numpy(array)


def loss_targets(task: Task, targets: npt.NDArray[np.int64]) -> Tensor:
    """Targets as the losses take them: indices (multiclass) or float 0/1 (otherwise)."""
    tensor = as_tensor(targets)
    return tensor if task is Task.MULTICLASS else tensor.float()


def _loss_logits(task: Task, logits: Tensor) -> Tensor:
    """Binary models have one output column; the losses take binary logits as ``(N,)``."""
    return logits[:, 0] if task is Task.BINARY else logits


def scores(task: Task, logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Logits as the evaluator takes them: binary ``(N,)``, else ``(N, C)``."""
    return logits[:, 0] if task is Task.BINARY else logits


def predict_logits(model: Classifier, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``(N, K)`` float32 logits of raw ``features`` (eval mode, no gradients)."""
    model.eval()
    with torch.inference_mode():
        out: npt.NDArray[np.float32] = model(as_tensor(features)).numpy()
    return out


def _validation_f1(task: Task, model: Classifier, split: Split, tuned: bool) -> tuple[float, float]:
    """Validation macro-F1 with plain decisions, and (``tuned``) with thresholds or offsets
    fitted on the same rows (else NaN)."""
    logits = scores(task, predict_logits(model, split.features))
    if not tuned:
        plain = evaluate(EvaluateRequest(logits=logits, targets=split.targets)).macro_f1
        return plain, math.nan
    fitted = fit_thresholds(ThresholdsRequest(scores=logits, targets=split.targets))
    return fitted.before.macro_f1, fitted.after.macro_f1


# ---------------------------------------------------------------------------- the loss


def _class_weight_value(dataset: Dataset, loss: str, strategy: str) -> float | list[float]:
    counts = dataset.class_counts("train").astype(np.float64)
    if loss != "binary_cross_entropy":
        return [float(w) for w in losses.class_weights(counts=counts, strategy=strategy)]
    # pos_weight multiplies the positive term of each class: the ratio of the weights the
    # strategy gives a class's positives and its negatives (balanced: n_neg / n_pos).
    positives = counts[1:] if dataset.task is Task.BINARY else counts
    negatives = len(dataset.train) - positives
    ratios = [
        float(w[1] / w[0])
        for w in (
            losses.class_weights(counts=[neg, pos], strategy=strategy)
            for neg, pos in zip(negatives, positives, strict=True)
        )
    ]
    return ratios[0] if dataset.task is Task.BINARY else ratios


def resolve_loss(
    dataset: Dataset,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    class_weights: str | None = None,
) -> LossSetup:
    """Validate ``name`` and ``params`` through the registry for ``dataset``'s task.

    ``class_weights`` (a :func:`losses.class_weights` strategy, from the training split's
    counts) fills the loss's weight parameter: ``weight`` for ``cross_entropy``, ``alpha``
    for ``focal``, ``pos_weight`` for ``binary_cross_entropy`` (per class, the ratio of the
    weights of its positives and negatives: ``n_neg / n_pos`` when balanced). A missing
    ``class_prior`` of ``logit_adjusted_cross_entropy`` is the training split's class
    frequencies. The loss is then run once on a few training rows, so that per-class params
    of the wrong length fail here rather than mid-training.

    Raises:
        ValueError: an unknown loss (with a did-you-mean hint), a loss that does not support
            the task, params that fail the schema, class weights for a loss that takes
            none or that are also given in ``params``.
    """
    spec = losses.get(name)
    if dataset.task not in spec.tasks:
        allowed = ", ".join(sorted(t.value for t in spec.tasks))
        raise ValueError(
            f"loss: expected a loss for {dataset.task.value} targets (dataset "
            f"{dataset.name!r}), got {name!r} which supports {allowed}"
        )
    values = dict(params or {})
    if class_weights is not None:
        key = CLASS_WEIGHT_PARAMS.get(name)
        if key is None:
            takes = ", ".join(f"{loss} ({param})" for loss, param in CLASS_WEIGHT_PARAMS.items())
            raise ValueError(
                f"class_weights: expected a loss that takes class weights ({takes}), got "
                f"{name!r}, which takes none"
            )
        if values.get(key) is not None:
            raise ValueError(
                f"class_weights: expected either class_weights or params[{key!r}] for loss "
                f"{name!r}, got both"
            )
        values[key] = _class_weight_value(dataset, name, class_weights)
    if name == "logit_adjusted_cross_entropy" and "class_prior" not in values:
        counts = dataset.class_counts("train")
        values["class_prior"] = [float(c) for c in counts / counts.sum()]
    validated = spec.validate(values)
    module = spec.module(**dict(validated))
    rows = dataset.train
    probe = torch.zeros(min(4, len(rows)), dataset.num_outputs)
    try:
        module(
            _loss_logits(dataset.task, probe),
            loss_targets(dataset.task, rows.targets[: probe.shape[0]]),
        )
    except (ValueError, TypeError) as exc:
        raise ValueError(f"params: loss {name!r}: {exc}") from None
    return LossSetup(name, validated.model_dump(mode="json"), module, class_weights)


# ---------------------------------------------------------------------------- training


def fit(
    dataset: Dataset,
    loss: LossSetup,
    options: TrainOptions | None = None,
    *,
    quiet: bool = True,
    description: str | None = None,
    track_thresholds: bool = False,
) -> FitResult:
    """Train a :class:`Classifier` on ``dataset.train`` with ``loss``.

    AdamW on shuffled minibatches; after every epoch the validation macro-F1 (argmax for
    multiclass, logit 0 otherwise) is measured, and training stops after
    ``options.patience`` epochs without a better one; the best epoch's weights are
    returned. With ``track_thresholds`` the validation macro-F1 after thresholds (offsets)
    fitted on the validation split is measured too, its best epoch's weights are kept as
    ``thresholds``, and training stops only once neither metric improved for ``patience``
    epochs. ``options.seed`` fixes the initialisation and the shuffling (torch's global
    RNG is left as it was); ``options.threads`` sets torch's intra-op threads for the
    duration (restored afterwards). A tqdm bar (stderr) shows the running loss and the
    validation macro-F1 per epoch unless ``quiet`` or stderr is not a terminal.

    Raises:
        RuntimeError: the training loss became NaN or infinite.
    """
    opts = options or TrainOptions()
    with _torch_threads(opts.threads):
        return _fit(
            dataset, loss, opts, quiet=quiet, description=description, tuned=track_thresholds
        )


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` intra-op threads (0: unchanged), then restore torch's setting."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads:
            torch.set_num_threads(before)


def _fit(
    dataset: Dataset,
    loss: LossSetup,
    opts: TrainOptions,
    *,
    quiet: bool,
    description: str | None,
    tuned: bool = False,
) -> FitResult:
    from tqdm import tqdm

    task, train = dataset.task, dataset.train
    track = tuned
    # a loss that keeps its own threshold 0 (ZLPR, circle) is served without fitted ones:
    # its thresholds checkpoint is the plain one
    tuned = track and not keeps_zero_threshold(loss.name, loss.params)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(opts.seed)
        model = Classifier(
            train.features,
            dataset.num_outputs,
            architecture=opts.architecture,
            hidden=opts.hidden,
        )
    generator = torch.Generator().manual_seed(opts.seed)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=opts.learning_rate, weight_decay=opts.weight_decay
    )
    x = as_tensor(train.features)
    y = loss_targets(task, train.targets)
    n = x.shape[0]
    started = time.perf_counter()
    best_f1, best_epoch = -1.0, 0
    best_state = copy.deepcopy(model.state_dict())
    tuned_f1, tuned_epoch, tuned_state = -1.0, 0, best_state
    history: list[EpochRecord] = []
    bar = tqdm(
        total=opts.epochs,
        desc=description or loss.name,
        unit="epoch",
        disable=True if quiet else None,  # None: off unless stderr is a terminal
        leave=True,
        dynamic_ncols=True,
    )
    try:
        for epoch in range(1, opts.epochs + 1):
            model.train()
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for start in range(0, n, opts.batch_size):
                rows = order[start : start + opts.batch_size]
                value = loss.module(_loss_logits(task, model(x[rows])), y[rows])
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                optimizer.step()
                total += float(value.detach()) * rows.numel()
            train_loss = total / n
            if not math.isfinite(train_loss):
                raise RuntimeError(
                    f"training: expected a finite loss, got {train_loss} at epoch {epoch} "
                    f"(loss {loss.name!r}); try a lower learning rate"
                )
            f1, f1_tuned = _validation_f1(task, model, dataset.validation, tuned)
            history.append(EpochRecord(epoch, train_loss, f1, f1_tuned if tuned else None))
            if f1 > best_f1:
                best_f1, best_epoch = f1, epoch
                best_state = copy.deepcopy(model.state_dict())
            if tuned and f1_tuned > tuned_f1:
                tuned_f1, tuned_epoch = f1_tuned, epoch
                tuned_state = copy.deepcopy(model.state_dict())
            bar.set_postfix(
                loss=f"{train_loss:.4f}", val_macro_f1=f"{f1:.4f}", best=f"{best_f1:.4f}"
            )
            bar.update(1)
            if epoch - max(best_epoch, tuned_epoch) >= opts.patience:
                break
    finally:
        bar.close()
    checkpoint = None
    if tuned:
        other = copy.deepcopy(model)
        other.load_state_dict(tuned_state)
        other.eval()
        checkpoint = Checkpoint(other, tuned_epoch, tuned_f1)
    model.load_state_dict(best_state)
    model.eval()
    if track and not tuned:
        checkpoint = Checkpoint(model, best_epoch, best_f1)
    return FitResult(
        model=model,
        loss=loss,
        best_epoch=best_epoch,
        best_validation_macro_f1=best_f1,
        history=history,
        seconds=time.perf_counter() - started,
        thresholds=checkpoint,
    )
