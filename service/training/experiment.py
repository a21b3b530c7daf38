"""``lossserve experiment``: losses compared by repeated stratified K-fold, every row tested.

The protocol, for each seed and each of the K outer folds (stratified by class; multilabel
by iterative stratification):

1. The outer training rows are split once more (stratified, 80/20) into inner training
   rows and an inner validation split. Nothing of the outer test fold is seen before the
   model and its decision rule are fixed.
2. Each variant (a loss, its params, class weights) is trained on the inner training rows
   at every learning rate of a small grid, with early stopping on the inner validation
   split. Two checkpoints are kept per run: the epoch with the best validation macro-F1 with
   plain decisions (argmax, logit 0), and the epoch with the best validation macro-F1 once
   thresholds (multiclass: offsets) are fitted on that split. The learning rate of each
   column is the one whose checkpoint scored best on the inner validation split.
3. Plain column: the plain checkpoint, plain decisions. Thresholds column: the thresholds
   checkpoint, with thresholds fitted on its inner validation predictions, kept only when
   they beat plain decisions there out of sample (fitted on one half of the inner
   validation split, scored on the other, both ways round); otherwise plain decisions.
4. Both are scored on the outer test fold: macro-F1.

Baselines go through the same folds and decisions: scikit-learn's
``LogisticRegression(class_weight="balanced")`` on standardised features with ``C`` chosen
on the inner split, and LightGBM (``class_weight="balanced"``, early stopping on the inner
split), one model per label for multilabel targets.

Each row reports mean ± sample standard deviation over the outer folds, and its paired
difference from the reference variant (plain cross-entropy, learning rate tuned) with a 95%
interval: Student's t over the folds with Nadeau and Bengio's correction for resampled
training sets (variance times ``1/n + n_test/n_train``; Machine Learning 52, 2003). A
variant is called better or worse than the reference only when its interval excludes 0. A
dataset with a fixed test split (``fashion-mnist-lt``) keeps it: each seed trains on the
same rows with a different inner split and initialisation, and the interval is the plain t.
"""

from __future__ import annotations

import dataclasses
import html
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from losses import Task

from ..core.evaluator import evaluate
from ..core.types import EvaluateRequest
from .datasets import Dataset, Split, iterative_stratification, load_dataset
from .thresholds import fit_decision_rule
from .trainer import FitResult, TrainOptions, fit, predict_logits, resolve_loss, scores

__all__ = [
    "BASELINES",
    "VARIANTS",
    "ExperimentResult",
    "ExperimentRow",
    "FoldScore",
    "Protocol",
    "Variant",
    "cross_validate",
    "difference_figure",
    "experiment_report",
    "keep_if_better",
    "run_experiment",
    "write_section",
]


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
"""The variants per task; the first of each is the reference the others are compared to."""

LOGISTIC = 'LogisticRegression(class_weight="balanced")'
LIGHTGBM = 'LightGBM(class_weight="balanced")'
BASELINES = (LOGISTIC, LIGHTGBM)
_C_GRID = (0.01, 0.1, 1.0, 10.0)
"""LogisticRegression's inverse regularisation strengths, chosen on the inner split."""


@dataclass(frozen=True)
class Protocol:
    """The cross-validation: ``folds`` outer folds, once per seed; a learning-rate grid."""

    folds: int = 5
    seeds: tuple[int, ...] = (0,)
    learning_rates: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    validation_fraction: float = 0.2
    """The share of each outer training fold held out for early stopping and thresholds."""

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError(f"folds: expected at least 2, got {self.folds}")
        if not self.seeds:
            raise ValueError("seeds: expected at least one seed, got none")
        if not self.learning_rates or min(self.learning_rates) <= 0:
            raise ValueError(
                f"learning_rates: expected positive rates, got {list(self.learning_rates)}"
            )


@dataclass(frozen=True)
class FoldScore:
    """One model on one outer test fold."""

    argmax: float
    thresholds: float
    kept: bool
    """The thresholds beat plain decisions on the inner split, and were used."""
    learning_rate: float | None = None
    """The plain column's (None: a baseline)."""
    thresholds_learning_rate: float | None = None
    """The thresholds column's (None: a baseline)."""
    test_rows: npt.NDArray[np.int64] | None = field(default=None, repr=False, compare=False)
    """The outer test fold's rows among the pooled rows (None: the fixed test split)."""
    test_scores: npt.NDArray[np.float32] | None = field(default=None, repr=False, compare=False)
    """The thresholds column's model's scores on the outer test fold."""
    rule: npt.NDArray[np.float64] | None = field(default=None, repr=False, compare=False)
    """The thresholds (offsets) the thresholds column kept; None: plain decisions."""

    def rate(self, column: str) -> float | None:
        """The learning rate ``column`` (``argmax`` or ``thresholds``) was scored at."""
        return self.learning_rate if column == "argmax" else self.thresholds_learning_rate


@dataclass
class ExperimentRow:
    """One model's outer-fold scores, in fold order."""

    key: str
    model: str
    loss: str
    class_weights: str | None
    folds: list[FoldScore] = field(default_factory=list)
    note: str = ""
    """Why a baseline has no scores (a library not installed)."""

    @property
    def argmax(self) -> list[float]:
        return [f.argmax for f in self.folds]

    @property
    def thresholds(self) -> list[float]:
        return [f.thresholds for f in self.folds]


@dataclass(frozen=True)
class _Fold:
    seed: int
    index: int
    train: npt.NDArray[np.int64]
    test: npt.NDArray[np.int64]


@dataclass
class ExperimentResult:
    dataset: Dataset
    protocol: Protocol
    options: TrainOptions
    rows: list[ExperimentRow]
    seconds: float
    test_share: float
    """Outer test rows over outer training rows (Nadeau and Bengio's n_test / n_train), 0
    for a fixed test split."""
    jobs: int = 1
    """Folds trained at once (the time depends on it; the figures do not)."""

    @property
    def reference(self) -> ExperimentRow:
        return self.rows[0]

    def interval(self, row: ExperimentRow, column: str) -> tuple[float, float, float]:
        """(mean, low, high) of the paired difference from the reference, 95%."""
        from scipy import stats

        mine = getattr(row, column)
        theirs = getattr(self.reference, column)
        differences = [a - b for a, b in zip(mine, theirs, strict=True)]
        n = len(differences)
        mean = statistics.fmean(differences)
        if n < 2:
            return mean, math.nan, math.nan
        variance = statistics.variance(differences) * (1 / n + self.test_share)
        half = float(stats.t.ppf(0.975, n - 1)) * math.sqrt(variance)
        return mean, mean - half, mean + half

    def verdicts(self, column: str) -> tuple[list[str], list[str]]:
        """The rows whose interval lies wholly above the reference, and wholly below."""
        better, worse = [], []
        for row in self.rows[1:]:
            if not row.folds:
                continue
            _, low, high = self.interval(row, column)
            if low > 0:
                better.append(row.key)
            elif high < 0:
                worse.append(row.key)
        return better, worse

    def command(self) -> str:
        """The ``lossserve experiment`` command line that runs this again (a built-in
        dataset's; a user file needs its column flags too)."""
        p, o = self.protocol, self.options
        words = [
            "lossserve experiment",
            self.dataset.name,
            f"--folds {p.folds}",
            f"--seeds {' '.join(map(str, p.seeds))}",
            f"--learning-rates {' '.join(f'{r:g}' for r in p.learning_rates)}",
        ]
        keys = [r.key for r in self.rows if r.loss != "-"]
        known = [v.key for v in VARIANTS[self.dataset.task]]
        if not set(keys) <= set(known):
            words.append("--losses auto")
        elif keys != known:
            words.append(f"--losses {','.join(keys)}")
        defaults = TrainOptions()
        for name in ("architecture", "hidden", "epochs", "patience", "batch_size", "weight_decay"):
            if getattr(o, name) != getattr(defaults, name):
                words.append(f"--{name.replace('_', '-')} {getattr(o, name)}")
        if self.jobs > 1:
            words.append(f"--jobs {self.jobs}")
        return " ".join(words)

    def cells(self) -> list[list[str]]:
        """Each row of the results table: model, loss, class weights, the plain column's mean
        ± std and Δ, the thresholds column's, how often thresholds were kept, and the plain
        column's learning rates."""
        table = []
        for row in self.rows:
            if not row.folds:
                table.append([row.model, "-", "-", row.note, "", "", "", "", ""])
                continue
            deltas = [
                "reference" if row is self.reference else _interval_text(self.interval(row, c))
                for c in ("argmax", "thresholds")
            ]
            rates = [f.learning_rate for f in row.folds if f.learning_rate is not None]
            chosen = (
                ", ".join(f"{r:g} x{rates.count(r)}" for r in sorted(set(rates))) if rates else "-"
            )
            kept = sum(f.kept for f in row.folds)
            table.append(
                [
                    row.model,
                    row.loss,
                    row.class_weights or "-",
                    _mean_std(row.argmax),
                    deltas[0],
                    _mean_std(row.thresholds),
                    deltas[1],
                    f"{kept}/{len(row.folds)}",
                    chosen,
                ]
            )
        return table

    def columns(self) -> list[str]:
        """The header of :meth:`cells`."""
        plain, rule = _column_names(self.dataset.task)
        return [
            "model",
            "loss",
            "class weights",
            plain,
            f"Δ {plain} [95%]",
            rule,
            f"Δ {rule} [95%]",
            f"{rule} kept",
            f"learning rates ({plain})",
        ]

    def markdown(self) -> str:
        """The results as a Markdown section: protocol, data, the table, the verdicts."""
        d, p, o = self.dataset, self.protocol, self.options
        plain, rule = _column_names(d.task)
        layers = f"2x{o.hidden} ReLU, " if o.architecture == "mlp" else ""
        counts = d.class_counts("train") + d.class_counts("validation")
        if not d.fixed_test:
            counts = counts + d.class_counts("test")
        outer = (
            f"{len(p.seeds)} x the fixed test split ({len(d.test)} rows), seeds "
            f"{', '.join(map(str, p.seeds))}"
            if d.fixed_test
            else f"{p.folds}-fold stratified cross-validation x {len(p.seeds)} seed"
            f"{'s' if len(p.seeds) > 1 else ''} ({', '.join(map(str, p.seeds))}): every row "
            "tested once a seed"
        )
        reference = self.reference.key
        lines = [
            f"## {d.name}: test macro-F1",
            "",
            f"{outer}; in each outer training fold {p.validation_fraction:.0%} held out for "
            f"early stopping, learning rates and {rule}. {o.architecture.upper()} ({layers}"
            f"AdamW, learning rate chosen per variant and fold from "
            f"{', '.join(f'{r:g}' for r in p.learning_rates)}, weight decay "
            f"{o.weight_decay:g}, batch {o.batch_size}, at most {o.epochs} epochs, patience "
            f"{o.patience}). *{plain}*: the checkpoint best on the inner split with plain "
            f"decisions; *{rule}*: the checkpoint best with {rule} fitted on the inner split, "
            "which are kept only where they beat plain decisions there out of sample. Mean ± "
            f"standard deviation over the outer folds; Δ: the paired difference from "
            f"`{reference}` with its 95% interval (corrected resampled t).",
            "",
            f"Data: {d.task.value}, {len(counts)} "
            f"{'labels' if d.task is Task.MULTILABEL else 'classes'}, {d.num_features} "
            f"features; {'positives per label' if d.task is Task.MULTILABEL else 'rows per class'}"
            f": {', '.join(str(int(c)) for c in counts)}.",
            "",
            f"| {' | '.join(self.columns())} |",
            "|---|---|---|---:|---:|---:|---:|---:|---|",
        ]
        lines += [f"| {' | '.join(cells)} |" for cells in self.cells()]
        lines.append("")
        for column, name in (("argmax", plain), ("thresholds", rule)):
            better, worse = self.verdicts(column)
            said = []
            if better:
                said.append(f"better than `{reference}`: {', '.join(f'`{k}`' for k in better)}")
            if worse:
                said.append(f"worse: {', '.join(f'`{k}`' for k in worse)}")
            verdict = (
                "; ".join(said)
                if said
                else (f"no variant differs from `{reference}` (every interval contains 0)")
            )
            lines.append(f"With {name}: {verdict}.")
            lines.append("")
        lines += [f"Total time {self.seconds:.0f} s, by `{self.command()}`.", ""]
        return "\n".join(lines)


def _column_names(task: Task) -> tuple[str, str]:
    """What the plain and the thresholds columns are called for ``task``."""
    if task is Task.MULTICLASS:
        return "argmax", "offsets"
    return "logit 0", "thresholds"


def difference_figure(result: ExperimentResult) -> Any:
    """Each row's paired difference from the reference with its 95% interval, one panel per
    column (a forest plot): a matplotlib ``Figure``."""
    from matplotlib.figure import Figure

    rows = [r for r in result.rows[1:] if r.folds]
    figure = Figure(figsize=(10, 0.45 * len(rows) + 1.6))
    panels = figure.subplots(1, 2, sharey=True, squeeze=False)
    names = _column_names(result.dataset.task)
    for axes, column, name in zip(panels[0], ("argmax", "thresholds"), names, strict=True):
        for y, row in enumerate(rows):
            mean, low, high = result.interval(row, column)
            colour = "tab:green" if low > 0 else "tab:red" if high < 0 else "tab:grey"
            axes.plot([low, high], [y, y], color=colour, linewidth=2)
            axes.plot(mean, y, "o", color=colour)
        axes.axvline(0, color="black", linewidth=0.8)
        axes.set_yticks(range(len(rows)), [r.key for r in rows], fontsize=8)
        axes.set_xlabel(f"macro-F1 minus {result.reference.key}'s ({name})")
    panels[0][0].invert_yaxis()  # the table's order, top down (the panels share the axis)
    figure.suptitle(f"{result.dataset.name}: paired differences, 95% intervals", fontsize=10)
    figure.tight_layout()
    return figure


def _out_of_fold(
    result: ExperimentResult, row: ExperimentRow
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64], npt.NDArray[np.int64]] | None:
    """The thresholds column's predictions of ``row`` on every row once (the first seed's
    outer folds; a fixed test split: the first seed's): scores, the same shifted by each
    fold's decision rule (so that plain decisions on them are the rule's), and targets."""
    folds = row.folds[: 1 if result.dataset.fixed_test else result.protocol.folds]
    if not folds or any(f.test_scores is None for f in folds):
        return None
    pooled, fixed_test = _pooled(result.dataset)
    sign = 1.0 if result.dataset.task is Task.MULTICLASS else -1.0  # offsets add; thresholds
    shifted = [  # in float64, as evaluate compares scores with thresholds
        f.test_scores.astype(np.float64) + (0.0 if f.rule is None else sign * f.rule)
        for f in folds
        if f.test_scores is not None
    ]
    raw = np.concatenate([f.test_scores for f in folds if f.test_scores is not None])
    moved = np.concatenate(shifted)
    if fixed_test is not None:
        return raw, moved, fixed_test.targets
    order = np.argsort(np.concatenate([f.test_rows for f in folds if f.test_rows is not None]))
    return raw[order], moved[order], pooled.targets


def experiment_report(result: ExperimentResult) -> str:
    """An HTML page of ``result``: its table, the interval figure, and for each row the
    figures ``lossserve train`` draws for a model (per-class metrics, confusion,
    precision-recall curves with the operating points, reliability), on out-of-fold
    predictions."""
    from .report import evaluation_sections, figure_png, html_page, img, to_probabilities

    d, p = result.dataset, result.protocol
    _, rule = _column_names(d.task)
    where = (
        f"the fixed test split, seed {p.seeds[0]}"
        if d.fixed_test
        else f"every row out of fold, seed {p.seeds[0]}'s {p.folds} folds"
    )
    table = "".join(
        f"<tr>{''.join(f'<td>{html.escape(c)}</td>' for c in cells)}</tr>"
        for cells in result.cells()
    )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in result.columns())
    parts = [
        f"<h1>{html.escape(d.name)}: losses compared</h1>",
        "<p>The table and the intervals of <code>docs/results.md</code>'s section (mean ± std "
        f"over {len(result.reference.folds)} outer folds; total time {result.seconds:.0f} s). "
        f"Below, each row's {rule} column on {html.escape(where)}: its model and decision rule "
        "per fold, pooled (macro-F1 of the pooled decisions, not the table's mean over "
        "folds).</p>",
        f"<table><tr>{head}</tr>{table}</table>",
        img(figure_png(difference_figure(result)), "paired differences, 95% intervals"),
    ]
    for row in result.rows:
        predictions = _out_of_fold(result, row)
        if predictions is None:
            continue
        raw, moved, targets = predictions
        decisions = evaluate(EvaluateRequest(logits=moved, targets=targets))
        parts += [
            f"<h2>{html.escape(row.key)}</h2>",
            f"<p>Pooled macro-F1 {decisions.macro_f1:.3f} with the {rule} each fold kept.</p>",
            *evaluation_sections(
                d.labels, d.task, decisions, to_probabilities(d.task, raw), targets, where, 3
            ),
        ]
    return html_page(f"{d.name}: losses compared", parts)


def write_section(path: Path, result: ExperimentResult) -> None:
    """Put ``result``'s Markdown into ``path`` between markers named after its dataset:
    replacing that dataset's earlier section, else appended, other sections kept; beside
    ``path``, its :func:`difference_figure` as ``figures/<dataset>.png`` and its
    :func:`experiment_report` as ``reports/<dataset>.html``, both linked from the section."""
    name = result.dataset.name
    begin = f"<!-- experiment: {name} -->"
    end = f"<!-- end of experiment: {name} -->"
    figure = Path("figures") / f"{name}.png"
    report = Path("reports") / f"{name}.html"
    for written in (figure, report):
        (path.parent / written.parent).mkdir(parents=True, exist_ok=True)
    difference_figure(result).savefig(path.parent / figure, dpi=100)
    (path.parent / report).write_text(experiment_report(result), encoding="utf-8")
    link = (
        f"![{name}: paired differences from the reference, 95% intervals]({figure})\n\n"
        f"Per-class metrics, confusion, precision-recall and reliability of every row: "
        f"[{report}]({report})."
    )
    section = f"{begin}\n{result.markdown().rstrip()}\n\n{link}\n{end}\n"
    text = path.read_text() if path.is_file() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + section
    path.write_text(text)


def _interval_text(interval: tuple[float, float, float]) -> str:
    mean, low, high = interval
    if math.isnan(low):
        return f"{mean:+.3f}"
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def _mean_std(values: Sequence[float], digits: int = 3) -> str:
    if not values:
        return "n/a"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


# ---------------------------------------------------------------------------- folds


def _pooled(dataset: Dataset) -> tuple[Split, Split | None]:
    """Every row to fold over, and the fixed test split when the dataset has one."""
    parts = [dataset.train, dataset.validation] + ([] if dataset.fixed_test else [dataset.test])
    pooled = Split(
        np.concatenate([p.features for p in parts]), np.concatenate([p.targets for p in parts])
    )
    return pooled, dataset.test if dataset.fixed_test else None


def _split_in_two(
    task: Task, targets: npt.NDArray[np.int64], share: float, seed: int
) -> npt.NDArray[np.bool_]:
    """A mask of about ``share`` of the rows, stratified: per class ``round(share n)`` rows,
    at least 1 and at most ``n - 1`` of a class of 2 or more (a lone row stays unmasked);
    multilabel by iterative stratification."""
    if task is Task.MULTILABEL:
        assignment = iterative_stratification(targets, seed=seed, fractions=(1 - share, share))
        return np.asarray(assignment == 1, dtype=bool)
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(targets), dtype=bool)
    for value in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == value))
        n = members.size
        take = min(max(round(share * n), 1), n - 1) if n >= 2 else 0
        mask[members[:take]] = True
    return mask


def _outer_folds(dataset: Dataset, pooled: Split, protocol: Protocol) -> list[_Fold]:
    rows = np.arange(len(pooled))
    if dataset.fixed_test:
        if len(protocol.seeds) < 2:
            raise ValueError(
                f"seeds: expected at least 2 seeds for {dataset.name!r}, whose test split is "
                f"fixed (each seed is one training on it), got {len(protocol.seeds)}"
            )
        return [_Fold(seed, 0, rows, np.zeros(0, dtype=np.int64)) for seed in protocol.seeds]
    counts = (
        pooled.targets.sum(axis=0)
        if dataset.task is Task.MULTILABEL
        else np.bincount(pooled.targets, minlength=len(dataset.labels))
    )
    if counts.min() < protocol.folds:
        c = int(counts.argmin())
        what = "positives of label" if dataset.task is Task.MULTILABEL else "rows of class"
        raise ValueError(
            f"folds: expected at least {protocol.folds} {what} {dataset.labels[c]!r} for "
            f"{protocol.folds} folds (one in each test fold), got {int(counts[c])}; use fewer "
            "folds"
        )
    folds = []
    for seed in protocol.seeds:
        if dataset.task is Task.MULTILABEL:
            shares = [1 / protocol.folds] * protocol.folds
            assignment = iterative_stratification(pooled.targets, seed=seed, fractions=shares)
            pairs = [(rows[assignment != k], rows[assignment == k]) for k in range(protocol.folds)]
        else:
            from sklearn.model_selection import StratifiedKFold

            splitter = StratifiedKFold(protocol.folds, shuffle=True, random_state=seed)
            pairs = list(splitter.split(rows, pooled.targets))
        folds += [_Fold(seed, k, train, test) for k, (train, test) in enumerate(pairs)]
    return folds


# ---------------------------------------------------------------------------- decisions


def keep_if_better(
    task: Task,
    val: npt.NDArray[np.float32],
    val_targets: npt.NDArray[np.int64],
    seed: int,
    loss: str | None = None,
    params: dict[str, Any] | None = None,
) -> tuple[npt.NDArray[np.float64] | None, bool]:
    """Thresholds (offsets) fitted on the validation scores, or None where they do not beat
    plain decisions there out of sample: fitted on one stratified half, scored on the other,
    both ways round, the mean compared with plain decisions' (``seed`` draws the halves).
    A loss that keeps its own threshold 0 (ZLPR, circle) gets None."""
    rule = fit_decision_rule(task, val, val_targets, loss=loss, params=params)
    if not rule.fitted:
        return None, False
    half = _split_in_two(task, val_targets, 0.5, seed)
    tuned, plain = [], []
    for fit_rows, score_rows in ((half, ~half), (~half, half)):
        fitted = fit_decision_rule(task, val[fit_rows], val_targets[fit_rows])
        scored = val[score_rows], val_targets[score_rows]
        tuned.append(_macro_f1(*scored, fitted.values))
        plain.append(_macro_f1(*scored, None))
    if statistics.fmean(tuned) > statistics.fmean(plain):
        return rule.values, True
    return None, False


def _macro_f1(logits: npt.NDArray[Any], targets: npt.NDArray[np.int64], rule: Any | None) -> float:
    request = EvaluateRequest(logits=logits, targets=targets, thresholds=rule)
    return evaluate(request).macro_f1


def _score(
    task: Task,
    plain_test: npt.NDArray[Any],
    tuned_val: npt.NDArray[Any],
    tuned_test: npt.NDArray[Any],
    val_targets: npt.NDArray[np.int64],
    test_targets: npt.NDArray[np.int64],
    seed: int,
    test_rows: npt.NDArray[np.int64] | None,
    *,
    rates: tuple[float, float] | None = None,
    loss: str | None = None,
    params: dict[str, Any] | None = None,
) -> FoldScore:
    values, kept = keep_if_better(task, tuned_val, val_targets, seed, loss, params)
    return FoldScore(
        argmax=_macro_f1(plain_test, test_targets, None),
        thresholds=_macro_f1(tuned_test, test_targets, values),
        kept=kept,
        learning_rate=None if rates is None else rates[0],
        thresholds_learning_rate=None if rates is None else rates[1],
        test_rows=test_rows,
        test_scores=tuned_test,
        rule=values,
    )


# ---------------------------------------------------------------------------- one fold


def _inner(
    dataset: Dataset, pooled: Split, fixed_test: Split | None, fold: _Fold, protocol: Protocol
) -> Dataset:
    """One outer fold as a dataset: inner training rows, the inner validation split, and the
    outer test rows."""
    outer = Split(pooled.features[fold.train], pooled.targets[fold.train])
    test = fixed_test or Split(pooled.features[fold.test], pooled.targets[fold.test])
    held = _split_in_two(dataset.task, outer.targets, protocol.validation_fraction, fold.seed)
    return dataclasses.replace(
        dataset,
        train=Split(outer.features[~held], outer.targets[~held]),
        validation=Split(outer.features[held], outer.targets[held]),
        test=test,
        tabular=None,
    )


def _run_unit(
    dataset: Dataset,
    pooled: Split,
    fixed_test: Split | None,
    fold: _Fold,
    unit: Variant | str,
    protocol: Protocol,
    options: TrainOptions,
) -> FoldScore | str:
    """A variant (or a baseline, by name) on one outer fold: its score, or why none."""
    task = dataset.task
    inner = _inner(dataset, pooled, fixed_test, fold, protocol)
    val_y, test_y = inner.validation.targets, inner.test.targets
    rows = None if fixed_test is not None else fold.test
    if isinstance(unit, str):
        baseline = _logistic if unit == LOGISTIC else _lightgbm
        try:
            val, test = baseline(task, inner, fold.seed)
        except ImportError as exc:
            return f"not installed ({exc.name})"
        return _score(task, test, val, test, val_y, test_y, fold.seed, rows)
    loss = resolve_loss(inner, unit.loss, unit.params, class_weights=unit.class_weights)
    runs: list[tuple[float, FitResult]] = []
    for rate in protocol.learning_rates:
        opts = options.model_copy(update={"learning_rate": rate, "seed": fold.seed})
        try:
            runs.append((rate, fit(inner, loss, opts, track_thresholds=True)))
        except RuntimeError:  # the loss became NaN or infinite at this rate: not a candidate
            continue
    if not runs:
        return "diverged at every learning rate"
    rate, plain = max(runs, key=lambda r: r[1].best_validation_macro_f1)
    tuned_rate, tuned = max(
        runs, key=lambda r: r[1].thresholds.validation_macro_f1 if r[1].thresholds else -1.0
    )
    tuned_model = tuned.thresholds.model if tuned.thresholds else tuned.model

    def logits(model: Any, split: Split) -> npt.NDArray[np.float32]:
        return scores(task, predict_logits(model, split.features))

    return _score(
        task,
        logits(plain.model, inner.test),
        logits(tuned_model, inner.validation),
        logits(tuned_model, inner.test),
        val_y,
        test_y,
        fold.seed,
        rows,
        rates=(rate, tuned_rate),
        loss=loss.name,
        params=loss.params,
    )


# ---------------------------------------------------------------------------- baselines


Scores = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]
Trainer = Callable[[Any, Any, Any, Any, Any], Any]
"""(model, x, y, validation x, validation y) -> the fitted model."""


def _per_label(task: Task, make: Callable[[], Any], inner: Dataset, train: Trainer) -> Scores:
    """Validation and test scores of one model, or of one model per label (multilabel)."""
    fit_rows, val, test = inner.train, inner.validation, inner.test
    columns = range(fit_rows.targets.shape[1]) if task is Task.MULTILABEL else [None]
    val_out, test_out = [], []
    for c in columns:
        y_fit = fit_rows.targets if c is None else fit_rows.targets[:, c]
        y_val = val.targets if c is None else val.targets[:, c]
        fitted = train(make(), fit_rows.features, y_fit, val.features, y_val)
        val_out.append(_margin(fitted, val.features))
        test_out.append(_margin(fitted, test.features))
    if task is Task.MULTILABEL:
        return np.stack(val_out, axis=1), np.stack(test_out, axis=1)
    return val_out[0], test_out[0]


def _margin(model: Any, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A fitted model's scores as logits: decision_function, or LightGBM's raw score."""
    if hasattr(model, "decision_function"):
        out = model.decision_function(x)
    else:
        out = model.predict(x, raw_score=True)
    return np.asarray(out, dtype=np.float32)


def _logistic(task: Task, inner: Dataset, seed: int) -> Scores:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best: tuple[float, Scores] | None = None
    for c in _C_GRID:

        def make(c: float = c) -> Any:
            return make_pipeline(
                StandardScaler(),
                LogisticRegression(C=c, class_weight="balanced", max_iter=5000),
            )

        def train(model: Any, x: Any, y: Any, x_val: Any, y_val: Any) -> Any:
            return model.fit(x, y)

        val, test = _per_label(task, make, inner, train)
        f1 = _macro_f1(val, inner.validation.targets, None)
        if best is None or f1 > best[0]:
            best = (f1, (val, test))
    assert best is not None
    return best[1]


def _lightgbm(task: Task, inner: Dataset, seed: int) -> Scores:
    import lightgbm

    def make() -> Any:
        return lightgbm.LGBMClassifier(
            n_estimators=2000,
            learning_rate=0.05,
            class_weight="balanced",
            random_state=seed,
            n_jobs=1,
            verbose=-1,
        )

    def train(model: Any, x: Any, y: Any, x_val: Any, y_val: Any) -> Any:
        stop = lightgbm.early_stopping(50, verbose=False)
        return model.fit(x, y, eval_X=(x_val,), eval_y=(y_val,), callbacks=[stop])

    return _per_label(task, make, inner, train)


# ---------------------------------------------------------------------------- the run


def cross_validate(
    data: Dataset,
    variants: Sequence[Variant],
    *,
    protocol: Protocol | None = None,
    options: TrainOptions | None = None,
    baselines: bool = True,
    jobs: int = 1,
    budget_s: float | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> ExperimentResult:
    """``variants`` (the first is the reference) and, with ``baselines``, the baselines,
    through :class:`Protocol`'s folds of ``data``: one after the other, each over its folds
    (``jobs`` at once, in processes). Past ``budget_s`` seconds no further variant starts;
    those left are rows without scores that say so. ``progress``: a tqdm bar on stderr when
    it is a terminal."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    started = time.perf_counter()
    plan = protocol or Protocol()
    opts = options or TrainOptions()
    pooled, fixed_test = _pooled(data)
    folds = _outer_folds(data, pooled, plan)
    units: list[Variant | str] = [*variants, *(BASELINES if baselines else ())]
    rows = [
        ExperimentRow(v.key, opts.architecture.upper(), v.loss, v.class_weights) for v in variants
    ]
    rows += [ExperimentRow(n, n, "-", "balanced") for n in (BASELINES if baselines else ())]
    bar = tqdm(
        total=len(units) * len(folds),
        desc=f"cross-validating on {data.name}",
        unit="fit",
        disable=None if progress else True,  # None: off unless stderr is a terminal
    )
    with bar, Parallel(n_jobs=jobs, return_as="generator") as parallel:
        for unit, row in zip(units, rows, strict=True):
            elapsed = time.perf_counter() - started
            if budget_s is not None and elapsed > budget_s and row is not rows[0]:
                row.note = f"not run: past the {budget_s:g} s budget"
                bar.update(len(folds))
                continue
            calls = (
                delayed(_run_unit)(data, pooled, fixed_test, fold, unit, plan, opts)
                for fold in folds
            )
            for scored in parallel(calls):
                if isinstance(scored, str):
                    row.note = scored
                else:
                    row.folds.append(scored)
                bar.update(1)
            if row.note:  # its figures need every fold
                row.folds.clear()
            if log is not None and row.folds:
                log(
                    f"{row.key}: macro-F1 {statistics.fmean(row.argmax):.3f} plain, "
                    f"{statistics.fmean(row.thresholds):.3f} with the decision rule, over "
                    f"{len(row.folds)} folds ({time.perf_counter() - started:.0f} s so far)"
                )
    share = 0.0 if data.fixed_test else float(np.mean([len(f.test) / len(f.train) for f in folds]))
    seconds = time.perf_counter() - started
    return ExperimentResult(data, plan, opts, rows, seconds, share, jobs)


def run_experiment(
    dataset: str,
    *,
    protocol: Protocol | None = None,
    options: TrainOptions | None = None,
    variants: Sequence[str] | None = None,
    jobs: int = 1,
    log: Callable[[str], None] | None = None,
    label: Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    split_column: str | None = None,
    drop: Sequence[str] | None = None,
) -> ExperimentResult:
    """Every variant of the dataset's task (or those named, the reference always first; or
    ``["auto"]``: every candidate of ``--loss auto``) and the baselines, by
    :func:`cross_validate`.

    ``dataset``: a built-in name, or a user file with its columns (``label``, ``features``,
    ``split_column``, ``drop``) as :func:`~lossserve.training.datasets.load_dataset` takes
    them; a user file's preprocessing (imputation, one-hot) is the one fitted on its own
    training split.

    Raises:
        ValueError: an unknown dataset or variant name, a bad protocol.
    """
    data = load_dataset(
        dataset, label=label, features=features, split_column=split_column, drop=drop
    )
    available = VARIANTS[data.task]
    chosen = list(available)
    if variants is not None and list(variants) == ["auto"]:
        from .selection import candidates  # it builds on this module

        return cross_validate(
            data, candidates(data), protocol=protocol, options=options, jobs=jobs, log=log
        )
    if variants is not None:
        keys = {v.key: v for v in available}
        unknown = [k for k in variants if k not in keys]
        if unknown or not variants:
            raise ValueError(
                f"losses: expected names among {', '.join(keys)}, got "
                f"{', '.join(unknown) if unknown else 'none'}"
            )
        chosen = [available[0]] + [keys[k] for k in variants if k != available[0].key]
    return cross_validate(data, chosen, protocol=protocol, options=options, jobs=jobs, log=log)
