"""``lossserve train``: data, loss, fit, thresholds, ONNX export and the model card."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..core.evaluator import evaluate
from ..core.types import EvaluateRequest
from ..models.card import ColumnSpec, InputSpec, ModelCard, SplitMetrics
from .datasets import SPLITS, Dataset, load_dataset
from .experiment import keep_if_better
from .export import OUTPUT_NAMES, check_model_name, publish
from .report import per_class, write_report
from .selection import AUTO, Metric, select_loss
from .thresholds import DecisionRule, fit_decision_rule, split_metrics
from .trainer import FitResult, TrainOptions, fit, predict_logits, resolve_loss, scores

__all__ = ["TrainConfig", "TrainResult", "evaluate_fit", "train"]


class TrainConfig(BaseModel):
    """Everything ``lossserve train`` takes; see :func:`train`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(description="A built-in dataset name or a CSV/Parquet/NPZ path.")
    loss: str = Field(description="A registry loss, or 'auto': chosen by cross-validation.")
    params: dict[str, Any] = Field(default_factory=dict)
    name: str
    repository: Path
    class_weights: str | None = None
    options: TrainOptions = Field(default_factory=TrainOptions)
    beta: float = Field(1.0, gt=0.0, le=1e6, description="F-beta of the fitted thresholds.")
    refit_thresholds: bool = False
    label: list[str] | None = None
    features: list[str] | None = None
    split_column: str | None = None
    drop: list[str] | None = None
    quiet: bool = False
    metric: Metric = Field(
        "macro_f1",
        description="--loss auto: what the loss is chosen by, over the folds: macro-F1 with "
        "the decision rule (macro_f1) or with plain decisions (macro_f1_plain).",
    )
    budget_s: float | None = Field(
        None, gt=0, description="--loss auto: no further candidate starts past this many seconds."
    )
    jobs: int = Field(1, ge=1, description="--loss auto: folds trained at once (processes).")


@dataclass
class TrainResult:
    """The new version: its folder and card, and what training did and took."""

    directory: Path
    card: ModelCard
    fit: FitResult
    rule: DecisionRule
    seconds: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    """What loading the data decided (columns left out as IDs), and warnings (learned
    thresholds that did not beat plain decisions out of sample)."""

    @property
    def model_path(self) -> Path:
        return self.directory / "model.onnx"


def evaluate_fit(
    dataset: Dataset,
    result: FitResult,
    *,
    beta: float = 1.0,
    refit: bool = False,
    only_if_better: int | None = None,
) -> tuple[DecisionRule, SplitMetrics, SplitMetrics]:
    """Fit the decision rule on validation; the validation and test metrics with it. With
    ``only_if_better`` (a seed), the fitted rule is kept only where it beats plain decisions
    on validation out of sample (:func:`~lossserve.training.experiment.keep_if_better`),
    else it is zeros (plain decisions)."""
    task, loss = dataset.task, result.loss
    val = scores(task, predict_logits(result.model, dataset.validation.features))
    test = scores(task, predict_logits(result.model, dataset.test.features))
    rule = fit_decision_rule(
        task,
        val,
        dataset.validation.targets,
        loss=loss.name,
        params=loss.params,
        beta=beta,
        refit=refit,
    )
    if only_if_better is not None and rule.fitted:
        _, kept = keep_if_better(
            task, val, dataset.validation.targets, only_if_better, loss.name, loss.params
        )
        if not kept:
            zeros = np.zeros_like(rule.values)
            rule = DecisionRule(zeros, rule.kind, False, rule.before, rule.before)
    metrics = [
        split_metrics(s, split.targets, rule, loss=loss.name, params=loss.params)
        for s, split in ((val, dataset.validation), (test, dataset.test))
    ]
    return rule, metrics[0], metrics[1]


def train(config: TrainConfig) -> TrainResult:
    """Train, fit thresholds, export to ONNX and add the next version to the repository.

    1. Load the dataset (:func:`~lossserve.training.datasets.load_dataset`) and resolve the
       loss with its params and class weights (:func:`~lossserve.training.trainer.resolve_loss`).
    2. Fit the classifier with early stopping on validation macro-F1
       (:func:`~lossserve.training.trainer.fit`).
    3. Fit thresholds (binary, multilabel) or offsets (multiclass) on the validation split
       as ``POST /thresholds`` does; ZLPR and circle keep 0 unless ``refit_thresholds``.
    4. Export to ONNX, verify it with ONNX Runtime on the test split, and write
       ``<repository>/<name>/<version>/{model.onnx,card.json}``.

    With ``loss="auto"`` the loss (and its learning rate) is chosen first by
    :func:`~lossserve.training.selection.select_loss`, and the comparison goes into the card
    (``selection``); with the default metric the model kept is the epoch best with the
    decision rule (``fit.best_epoch`` and ``fit.best_validation_macro_f1`` are then that
    checkpoint's), and the rule is kept only where it beats plain decisions out of sample,
    as in the cross-validation.

    Raises:
        ValueError: bad data, loss, params, class weights or model name (before training).
        ExportError: ONNX Runtime does not reproduce the model; nothing is written.
    """
    check_model_name(config.name)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    dataset = load_dataset(
        config.dataset,
        label=config.label,
        features=config.features,
        split_column=config.split_column,
        drop=config.drop,
    )
    seconds["load"] = time.perf_counter() - started
    selection = None
    options = config.options
    if config.loss == AUTO:
        if config.params or config.class_weights:
            raise ValueError(
                "loss: expected no params or class weights with --loss auto (each candidate "
                "has its own), got some"
            )
        mark = time.perf_counter()
        selection = select_loss(
            dataset,
            metric=config.metric,
            options=options,
            budget_s=config.budget_s,
            jobs=config.jobs,
            progress=not config.quiet,
        )
        seconds["select"] = time.perf_counter() - mark
        chosen = selection.variant
        loss = resolve_loss(dataset, chosen.loss, chosen.params, class_weights=chosen.class_weights)
        options = options.model_copy(update={"learning_rate": selection.learning_rate})
    else:
        loss = resolve_loss(dataset, config.loss, config.params, class_weights=config.class_weights)

    mark = time.perf_counter()
    result = fit(
        dataset,
        loss,
        options,
        quiet=config.quiet,
        description=f"{config.name} ({loss.name})",
        track_thresholds=selection is not None and config.metric == "macro_f1",
    )
    if result.thresholds is not None:  # the checkpoint of the column the loss won
        result = dataclasses.replace(
            result,
            model=result.thresholds.model,
            best_epoch=result.thresholds.epoch,
            best_validation_macro_f1=result.thresholds.validation_macro_f1,
        )
    seconds["fit"] = time.perf_counter() - mark

    mark = time.perf_counter()
    rule, validation, test = evaluate_fit(
        dataset,
        result,
        beta=config.beta,
        refit=config.refit_thresholds,
        only_if_better=None if selection is None else options.seed,
    )
    seconds["thresholds"] = time.perf_counter() - mark

    warnings = []
    if selection is None and rule.fitted:  # --loss auto already kept the rule only if better
        val_scores = scores(dataset.task, predict_logits(result.model, dataset.validation.features))
        _, kept = keep_if_better(
            dataset.task,
            val_scores,
            dataset.validation.targets,
            options.seed,
            loss.name,
            loss.params,
        )
        if not kept:
            warnings.append(
                f"warning: the learned {rule.kind} did not beat plain decisions on the "
                "validation split out of sample (fitted on one half, scored on the other); "
                "they may not hold on new data: compare the card's test macro-F1 with and "
                "without them"
            )
    test_scores = scores(dataset.task, predict_logits(result.model, dataset.test.features))
    tested = evaluate(
        EvaluateRequest(logits=test_scores, targets=dataset.test.targets, thresholds=rule.values)
    )
    training = {
        "options": options.model_dump(mode="json"),
        "rows": {split: len(dataset.split(split)) for split in SPLITS},
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
    }
    tabular = dataset.tabular
    columns = []
    if tabular is not None:
        columns = [ColumnSpec(name=name, kind="number") for name in tabular.numeric]
        columns += [
            ColumnSpec(name=name, kind="category", categories=seen)
            for name, seen in zip(tabular.categorical, tabular.categories, strict=True)
        ]

    def card(version: int, sha256: str, tolerance: float) -> ModelCard:
        return ModelCard(
            name=config.name,
            version=version,
            task=dataset.task.value,
            labels=dataset.labels,
            loss=loss.name,
            loss_params=loss.params,
            architecture=config.options.architecture,
            thresholds=[float(v) for v in rule.values],
            threshold_kind="offsets" if rule.kind == "offsets" else "thresholds",
            input=None if tabular else InputSpec(shape=[-1, dataset.num_features]),
            columns=columns,
            feature_names=[c.name for c in columns] if tabular else dataset.feature_names,
            outputs=list(OUTPUT_NAMES),
            validation=validation,
            test=test,
            onnx_tolerance=tolerance,
            sha256=sha256,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            dataset=config.dataset,
            selection=None if selection is None else selection.summary(),
            training=training,
            per_class=per_class(dataset.labels, dataset.task, tested),
        )

    def report(folder: Path, written: ModelCard) -> None:
        write_report(
            folder, written, result.history, result.best_epoch, test_scores, dataset.test.targets
        )

    mark = time.perf_counter()
    directory, written = publish(
        config.repository,
        config.name,
        result.model,
        dataset.task,
        dataset.test.features,
        card,
        tabular,
        beside=report,
    )
    seconds["export"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started
    return TrainResult(directory, written, result, rule, seconds, (*dataset.notes, *warnings))
