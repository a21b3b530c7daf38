"""``lossserve experiment``: the same MLP with each loss, over seeds, against a baseline.

Each variant trains with the same options on the same splits (the dataset's fixed seed);
only the training seed changes between runs. Test macro-F1 is reported with plain
decisions (argmax for multiclass, logit 0 otherwise) and with the thresholds (or offsets)
fitted on the validation split, mean ± sample standard deviation over the seeds. The
baseline is scikit-learn's ``LogisticRegression(class_weight="balanced")`` on standardised
features, scored the same way; for a binary dataset also with scikit-learn's own
``TunedThresholdClassifierCV`` (F1, cut-off tuned on the validation split), which does not
apply to multiclass or multilabel targets.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from losses import Task

from ..core.evaluator import evaluate
from ..core.types import EvaluateRequest
from .datasets import Dataset, load_dataset
from .pipeline import evaluate_fit
from .thresholds import fit_decision_rule
from .trainer import TrainOptions, fit, resolve_loss

__all__ = ["VARIANTS", "ExperimentResult", "ExperimentRow", "Variant", "run_experiment"]


@dataclass(frozen=True)
class Variant:
    """One training setup of the experiment: a loss, its params and class weights."""

    key: str
    loss: str
    params: dict[str, Any] = field(default_factory=dict)
    class_weights: str | None = None


VARIANTS: dict[Task, tuple[Variant, ...]] = {
    Task.MULTICLASS: (
        Variant("cross_entropy", "cross_entropy"),
        Variant("cross_entropy+balanced", "cross_entropy", class_weights="balanced"),
        Variant("focal", "focal"),
        Variant("dice", "dice"),
        Variant("self_adjusting_dice", "self_adjusting_dice"),
        Variant("logit_adjusted_cross_entropy", "logit_adjusted_cross_entropy"),
    ),
    Task.BINARY: (
        Variant("binary_cross_entropy", "binary_cross_entropy"),
        Variant("binary_cross_entropy+balanced", "binary_cross_entropy", class_weights="balanced"),
        Variant("sigmoid_focal", "sigmoid_focal"),
        Variant("dice", "dice"),
        Variant("self_adjusting_dice", "self_adjusting_dice"),
        Variant("asymmetric", "asymmetric"),
    ),
    Task.MULTILABEL: (
        Variant("binary_cross_entropy", "binary_cross_entropy"),
        Variant("binary_cross_entropy+balanced", "binary_cross_entropy", class_weights="balanced"),
        Variant("sigmoid_focal", "sigmoid_focal"),
        Variant("asymmetric", "asymmetric"),
        Variant("multilabel_categorical_crossentropy", "multilabel_categorical_crossentropy"),
        Variant("dice", "dice"),
    ),
}
"""The variants per task; the multiclass ones are those of the issue's experiment."""


@dataclass
class ExperimentRow:
    """One model's test macro-F1 per seed, with plain decisions and with thresholds."""

    model: str
    loss: str
    class_weights: str | None
    argmax: list[float] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    best_epochs: list[int] = field(default_factory=list)


@dataclass
class ExperimentResult:
    dataset: Dataset
    seeds: list[int]
    options: TrainOptions
    rows: list[ExperimentRow]
    seconds: float

    def markdown(self) -> str:
        """The results as a Markdown section: setup, data, and the table."""
        d, o = self.dataset, self.options
        rule = (
            "per-class logit offsets maximising macro-F1"
            if d.task is Task.MULTICLASS
            else "per-class thresholds maximising F1"
        )
        plain = "argmax" if d.task is Task.MULTICLASS else "logit 0"
        layers = f"2x{o.hidden} ReLU, " if o.architecture == "mlp" else ""
        body = (
            f"{o.architecture.upper()} ({layers}"
            f"AdamW lr {o.learning_rate:g}, weight decay {o.weight_decay:g}, batch "
            f"{o.batch_size}, at most {o.epochs} epochs, early stopping on validation "
            f"macro-F1 with patience {o.patience})"
        )
        counts = ", ".join(str(int(c)) for c in d.class_counts("train"))
        lines = [
            f"## {d.name}: test macro-F1",
            "",
            f"{body}; seeds {', '.join(str(s) for s in self.seeds)}; mean ± sample standard "
            f"deviation over the seeds. *{plain}*: plain decisions; *learned thresholds*: "
            f"{rule}, fitted on the validation split as `POST /thresholds` does.",
            "",
            f"Data: {d.task.value}, {len(d.train)}/{len(d.validation)}/{len(d.test)} "
            f"train/validation/test samples, {d.num_features} features; training "
            f"{'positives per label' if d.task is Task.MULTILABEL else 'samples per class'}: "
            f"{counts}.",
            "",
            f"| model | loss | class weights | {plain} | learned thresholds | best epoch |",
            "|---|---|---|---:|---:|---:|",
        ]
        for row in self.rows:
            epochs = _mean_std([float(e) for e in row.best_epochs], 0) if row.best_epochs else "-"
            lines.append(
                f"| {row.model} | {row.loss} | {row.class_weights or '-'} | "
                f"{_mean_std(row.argmax)} | {_mean_std(row.thresholds)} | {epochs} |"
            )
        best = max(self.rows, key=lambda r: statistics.fmean(r.thresholds))
        best_plain = max(self.rows, key=lambda r: statistics.fmean(r.argmax))
        lines += [
            "",
            f"Highest mean with learned thresholds: {_label(best)} "
            f"({statistics.fmean(best.thresholds):.3f}); with {plain}: {_label(best_plain)} "
            f"({statistics.fmean(best_plain.argmax):.3f}). Total time {self.seconds:.0f} s.",
            "",
        ]
        return "\n".join(lines)


def _label(row: ExperimentRow) -> str:
    if row.loss == "-":  # a baseline: the model says it all
        return row.model
    weights = f" + {row.class_weights} weights" if row.class_weights else ""
    return f"{row.model} {row.loss}{weights}"


def _mean_std(values: Sequence[float], digits: int = 3) -> str:
    if not values:
        return "n/a"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _scores(task: Task, model: Any, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    if task is Task.MULTILABEL:
        columns = [m.decision_function(x) for m in model]
        return np.stack(columns, axis=1).astype(np.float32)
    return np.asarray(model.decision_function(x), dtype=np.float32)


def _baselines(dataset: Dataset) -> list[ExperimentRow]:
    """``LogisticRegression(class_weight="balanced")`` scored as the MLPs are."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import TunedThresholdClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    task, train, val, test = dataset.task, dataset.train, dataset.validation, dataset.test

    def classifier() -> Any:
        return make_pipeline(
            StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=5000)
        )

    if task is Task.MULTILABEL:
        model: Any = [
            classifier().fit(train.features, train.targets[:, c])
            for c in range(train.targets.shape[1])
        ]
    else:
        model = classifier().fit(train.features, train.targets)
    val_scores, test_scores = (_scores(task, model, s.features) for s in (val, test))
    rule = fit_decision_rule(task, val_scores, val.targets)
    plain = evaluate(EvaluateRequest(logits=test_scores, targets=test.targets)).macro_f1
    tuned = evaluate(
        EvaluateRequest(logits=test_scores, targets=test.targets, thresholds=rule.values)
    ).macro_f1
    name = 'LogisticRegression(class_weight="balanced")'
    rows = [ExperimentRow(name, "-", "balanced", [plain], [tuned])]
    if task is Task.BINARY:
        tuner = TunedThresholdClassifierCV(model, scoring="f1", cv="prefit", refit=False)
        tuner.fit(val.features, val.targets)
        predicted = np.asarray(tuner.predict(test.features))
        f1 = evaluate(
            EvaluateRequest(logits=np.where(predicted == 1, 1.0, -1.0), targets=test.targets)
        ).macro_f1
        rows.append(
            ExperimentRow(name + " + TunedThresholdClassifierCV", "-", "balanced", [plain], [f1])
        )
    return rows


def run_experiment(
    dataset: str,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    options: TrainOptions | None = None,
    variants: Sequence[str] | None = None,
    quiet: bool = True,
    log: Callable[[str], None] | None = None,
    label: Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    split_column: str | None = None,
    drop: Sequence[str] | None = None,
) -> ExperimentResult:
    """Train every variant of the dataset's task (or those named) once per seed.

    ``dataset``: a built-in name, or a user file with its columns (``label``, ``features``,
    ``split_column``, ``drop``) as :func:`~lossserve.training.datasets.load_dataset` takes them.

    Raises:
        ValueError: an unknown dataset or variant name, or no seeds.
    """
    if not seeds:
        raise ValueError("seeds: expected at least one seed, got none")
    started = time.perf_counter()
    data = load_dataset(
        dataset, label=label, features=features, split_column=split_column, drop=drop
    )
    available = VARIANTS[data.task]
    chosen = list(available)
    if variants is not None:
        keys = {v.key: v for v in available}
        unknown = [k for k in variants if k not in keys]
        if unknown or not variants:
            raise ValueError(
                f"losses: expected names among {', '.join(keys)}, got "
                f"{', '.join(unknown) if unknown else 'none'}"
            )
        chosen = [keys[k] for k in variants]
    opts = options or TrainOptions()
    rows: list[ExperimentRow] = []
    for variant in chosen:
        loss = resolve_loss(data, variant.loss, variant.params, class_weights=variant.class_weights)
        row = ExperimentRow(opts.architecture.upper(), variant.loss, variant.class_weights)
        for seed in seeds:
            result = fit(
                data,
                loss,
                opts.model_copy(update={"seed": seed}),
                quiet=quiet,
                description=f"{variant.key} seed {seed}",
            )
            _, _, test = evaluate_fit(data, result)
            row.argmax.append(test.macro_f1_argmax)
            row.thresholds.append(test.macro_f1_thresholds)
            row.best_epochs.append(result.best_epoch)
            if log is not None:
                log(
                    f"{variant.key} seed {seed}: test macro-F1 {test.macro_f1_argmax:.3f} "
                    f"(plain), {test.macro_f1_thresholds:.3f} (thresholds), best epoch "
                    f"{result.best_epoch}, {result.seconds:.1f} s"
                )
        rows.append(row)
    rows += _baselines(data)
    return ExperimentResult(data, list(seeds), opts, rows, time.perf_counter() - started)
