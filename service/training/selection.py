"""``lossserve train --loss auto``: the loss chosen by cross-validation on the user's data.

Every registry loss that takes the dataset's task, at its defaults, and the class-weighted
(``balanced``) variants of those that take class weights, go through the experiment's
protocol (:func:`~lossserve.training.experiment.cross_validate`) on the training and
validation rows pooled (the test split stays out: it is what the card reports). The winner
has the highest mean macro-F1 over the folds in the ``metric``'s column (``macro_f1``:
with thresholds (offsets) fitted on each fold's inner validation split, kept where they
beat plain decisions out of sample; ``macro_f1_plain``: argmax / logit 0); its learning
rate is the one that column chose most often. It is then trained once more on the training
split with early stopping on the validation split, and its decision rule fitted there the
same way (:func:`~lossserve.training.experiment.keep_if_better`).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

import losses

from .datasets import SPLITS, Dataset, Split
from .experiment import VARIANTS, ExperimentResult, Protocol, Variant, cross_validate
from .trainer import CLASS_WEIGHT_PARAMS, TrainOptions

__all__ = ["AUTO", "METRICS", "Selection", "candidates", "comparison", "select_loss"]

AUTO = "auto"
"""The ``--loss`` value that asks for the selection."""

Metric = Literal["macro_f1", "macro_f1_plain"]
METRICS: dict[str, str] = {"macro_f1": "thresholds", "macro_f1_plain": "argmax"}
"""Each metric and the experiment column it reads."""


def candidates(dataset: Dataset) -> list[Variant]:
    """Every registry loss for the task (the experiment's reference, cross-entropy, first)
    and the ``balanced`` variant of each that takes class weights. ``subset_softmax`` gets
    ``max_k``, the most labels of any row of any split (it has no default)."""
    task = dataset.task
    reference = VARIANTS[task][0].loss
    names = sorted(n for n in losses.names() if task in losses.get(n).tasks)
    names.remove(reference)
    out = []
    for name in [reference, *names]:
        params: dict[str, Any] = {}
        if name == "subset_softmax":
            params["max_k"] = max(int(dataset.split(s).targets.sum(axis=1).max()) for s in SPLITS)
        out.append(Variant(name, name, params))
        if name in CLASS_WEIGHT_PARAMS:
            out.append(Variant(f"{name}+balanced", name, params, "balanced"))
    return out


def comparison(selection: dict[str, Any]) -> list[tuple[str, str, str]]:
    """A card's ``selection`` as rows to show: (candidate, "mean ± std" or why it has no
    figures, its difference from the reference with the 95% interval)."""
    rows = []
    for row in selection["candidates"]:
        if "mean" not in row:
            rows.append((row["key"], row.get("note", ""), ""))
            continue
        low, high = row["interval"]
        delta = (
            "reference"
            if row["key"] == selection["reference"]
            else f"{row['difference']:+.3f} [{low:+.3f}, {high:+.3f}]"
        )
        rows.append((row["key"], f"{row['mean']:.3f} ± {row['std']:.3f}", delta))
    return rows


@dataclass(frozen=True)
class Selection:
    """The chosen variant and learning rate, and the comparison they were chosen from."""

    variant: Variant
    learning_rate: float
    metric: str
    result: ExperimentResult

    def summary(self) -> dict[str, Any]:
        """For the card: the protocol, the winner, and every candidate's figures."""
        column = METRICS[self.metric]
        reference = self.result.reference
        rows = []
        for row in self.result.rows:
            entry: dict[str, Any] = {
                "key": row.key,
                "loss": row.loss,
                "class_weights": row.class_weights,
                "learning_rates": [f.rate(column) for f in row.folds],
            }
            values = getattr(row, column)
            if values:
                mean, low, high = (
                    (0.0, 0.0, 0.0) if row is reference else self.result.interval(row, column)
                )
                entry |= {
                    "mean": statistics.fmean(values),
                    "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "difference": mean,
                    "interval": [low, high],
                }
            else:
                entry["note"] = row.note
            rows.append(entry)
        protocol = self.result.protocol
        return {
            "metric": self.metric,
            "folds": protocol.folds,
            "seeds": list(protocol.seeds),
            "learning_rates": list(protocol.learning_rates),
            "chosen": self.variant.key,
            "learning_rate": self.learning_rate,
            "reference": reference.key,
            "candidates": rows,
            "seconds": round(self.result.seconds, 1),
        }


def select_loss(
    dataset: Dataset,
    *,
    metric: Metric = "macro_f1",
    protocol: Protocol | None = None,
    options: TrainOptions | None = None,
    budget_s: float | None = None,
    jobs: int = 1,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> Selection:
    """Cross-validate :func:`candidates` on ``dataset``'s training and validation rows and
    pick the best mean in ``metric``'s column, at the learning rate that column chose in most
    folds (a tie: the smaller rate). Fewer folds than asked are used when a class (a label's
    positives) has fewer rows than folds, down to 2.

    Raises:
        ValueError: an unknown metric, or a class with fewer than 2 rows to fold.
    """
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    plan = protocol or Protocol()
    empty = Split(dataset.test.features[:0], dataset.test.targets[:0])
    pool = dataclasses.replace(dataset, test=empty, fixed_test=False, tabular=None)
    pooled = np.concatenate([dataset.train.targets, dataset.validation.targets])
    counts = (
        pooled.sum(axis=0)
        if pooled.ndim == 2
        else np.bincount(pooled, minlength=len(dataset.labels))
    )
    rarest = int(counts.min())
    if rarest < 2:
        raise ValueError(
            "loss: expected at least 2 training rows of every class to choose a loss by "
            f"cross-validation (--loss auto), got {rarest}"
        )
    plan = dataclasses.replace(plan, folds=min(plan.folds, rarest))
    variants = candidates(dataset)
    result = cross_validate(
        pool,
        variants,
        protocol=plan,
        options=options,
        baselines=False,
        jobs=jobs,
        budget_s=budget_s,
        log=log,
        progress=progress,
    )
    column = METRICS[metric]
    best_row, best = max(
        ((r, v) for r, v in zip(result.rows, variants, strict=True) if r.folds),
        key=lambda pair: statistics.fmean(getattr(pair[0], column)),
    )
    rates = Counter(f.rate(column) for f in best_row.folds)
    rate = max((r for r in rates if r is not None), key=lambda r: (rates[r], -r))
    return Selection(best, float(rate), metric, result)
