"""The experiment's protocol: folds that test every row once, inner splits that never see
the test fold, thresholds kept only where they help out of sample, paired intervals, and
the Markdown section written into a results file."""

from __future__ import annotations

import dataclasses
import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from losses import Task
from lossserve.core.evaluator import evaluate
from lossserve.core.types import EvaluateRequest
from lossserve.training import Protocol, TrainOptions, load_dataset, run_experiment
from lossserve.training.experiment import (
    VARIANTS,
    ExperimentResult,
    ExperimentRow,
    FoldScore,
    _out_of_fold,
    _outer_folds,
    _pooled,
    _split_in_two,
    cross_validate,
    experiment_report,
    keep_if_better,
    write_section,
)


@pytest.mark.parametrize("name", ["breast-cancer-imbalanced", "digits-lt", "multilabel-synth"])
def test_outer_folds_test_every_row_once_a_seed(name: str) -> None:
    dataset = load_dataset(name)
    pooled, fixed = _pooled(dataset)
    assert fixed is None and len(pooled) == sum(
        len(dataset.split(s)) for s in ("train", "validation", "test")
    )
    folds = _outer_folds(dataset, pooled, Protocol(folds=3, seeds=(0, 1)))
    assert [(f.seed, f.index) for f in folds] == [(s, k) for s in (0, 1) for k in range(3)]
    for seed in (0, 1):
        tested = np.concatenate([f.test for f in folds if f.seed == seed])
        assert sorted(tested.tolist()) == list(range(len(pooled)))
    for fold in folds:
        assert not set(fold.train) & set(fold.test)
        # stratified: every class (label) is in every test fold
        y = pooled.targets[fold.test]
        present = y.sum(axis=0) if dataset.task is Task.MULTILABEL else np.bincount(y)
        assert (present > 0).all()
    assert not np.array_equal(folds[0].test, folds[3].test)  # another seed, other folds


def test_a_fixed_test_split_is_kept() -> None:
    base = load_dataset("digits-lt")
    dataset = dataclasses.replace(base, fixed_test=True)
    pooled, fixed = _pooled(dataset)
    assert fixed is dataset.test
    assert len(pooled) == len(dataset.train) + len(dataset.validation)
    folds = _outer_folds(dataset, pooled, Protocol(seeds=(3, 4)))
    assert [(f.seed, len(f.train), len(f.test)) for f in folds] == [
        (3, len(pooled), 0),
        (4, len(pooled), 0),
    ]
    # one seed is one training: no spread, no interval
    with pytest.raises(ValueError, match="expected at least 2 seeds for 'digits-lt'"):
        _outer_folds(dataset, pooled, Protocol(seeds=(0,)))


def test_inner_split_is_stratified_and_keeps_lone_rows_for_training() -> None:
    targets = np.repeat([0, 1, 2, 3], [50, 10, 2, 1])
    held = _split_in_two(Task.MULTICLASS, targets, 0.2, seed=0)
    per_class = [int(held[targets == c].sum()) for c in range(4)]
    assert per_class == [10, 2, 1, 0]


def test_thresholds_are_kept_only_where_they_help_out_of_sample() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.2).astype(np.int64)
    separated = np.where(y == 1, 2.0, -2.0).astype(np.float32) + rng.normal(0, 0.3, 400)
    shifted = (separated + 3.0).astype(np.float32)  # logit 0 calls everything positive
    values, kept = keep_if_better(Task.BINARY, shifted, y, seed=0)
    assert kept and values is not None and values[0] > 1.0
    values, kept = keep_if_better(Task.BINARY, separated.astype(np.float32), y, seed=0)
    assert (values, kept) == (None, False)  # nothing to gain over logit 0
    # ZLPR keeps its own threshold 0: nothing is fitted
    zlpr = np.stack([shifted, shifted], axis=1)
    assert keep_if_better(Task.MULTILABEL, zlpr, np.stack([y, y], axis=1), 0, "circle", {}) == (
        None,
        False,
    )


def _result(reference: list[float], other: list[float], share: float) -> ExperimentResult:
    rows = [
        ExperimentRow(
            "ce", "MLP", "cross_entropy", None, [FoldScore(v, v, False) for v in reference]
        ),
        ExperimentRow("x", "MLP", "x", None, [FoldScore(v, v, False) for v in other]),
    ]
    dataset = load_dataset("digits-lt")
    return ExperimentResult(dataset, Protocol(), TrainOptions(), rows, 0.0, share)


def test_paired_interval_is_the_corrected_resampled_t() -> None:
    # differences 0.01, 0.02, 0.03: mean 0.02, sample variance 1e-4; n = 3, n_test/n_train
    # = 0.25: variance (1/3 + 0.25) 1e-4; t(0.975, 2) = 4.302653:
    # half-width 4.302653 * sqrt(5.8333e-5) = 0.032862
    result = _result([0.5, 0.5, 0.5], [0.51, 0.52, 0.53], 0.25)
    mean, low, high = result.interval(result.rows[1], "argmax")
    assert mean == pytest.approx(0.02)
    assert (low, high) == (
        pytest.approx(0.02 - 0.032862, abs=1e-6),
        pytest.approx(0.02 + 0.032862, abs=1e-6),
    )
    assert result.verdicts("argmax") == ([], [])  # the interval crosses 0: no winner
    sure = _result([0.5, 0.5, 0.5], [0.60, 0.61, 0.62], 0.25)
    assert sure.verdicts("argmax") == (["x"], [])
    assert "better than `ce`: `x`" in sure.markdown()
    one = _result([0.5], [0.6], 0.25)
    assert math.isnan(one.interval(one.rows[1], "argmax")[1])


def test_write_section_replaces_its_own_section_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "results.md"
    path.write_text("# Results\n\nIntro.\n")
    first = _result([0.5, 0.5], [0.6, 0.7], 0.25)
    write_section(path, first)
    other = dataclasses.replace(first, dataset=load_dataset("breast-cancer-imbalanced"))
    write_section(path, other)
    again = _result([0.5, 0.5], [0.1, 0.2], 0.25)
    write_section(path, again)
    text = path.read_text()
    assert text.startswith("# Results\n\nIntro.\n\n<!-- experiment: digits-lt -->\n")
    assert text.count("## digits-lt: test macro-F1") == 1
    assert text.count("## breast-cancer-imbalanced: test macro-F1") == 1
    digits = text.split("<!-- experiment: digits-lt -->")[1].split("<!-- end of")[0]
    assert "0.150 ± 0.071" in digits and "0.650 ± 0.071" not in digits  # the new rows
    assert text.index("digits-lt") < text.index("breast-cancer-imbalanced")
    # each section links its figure and its report, written beside the file
    assert "](figures/digits-lt.png)\n\n" in digits
    assert "[reports/digits-lt.html](reports/digits-lt.html).\n" in digits
    for name in ("digits-lt", "breast-cancer-imbalanced"):
        assert (tmp_path / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / "reports" / f"{name}.html").read_text().startswith("<!doctype html>")


def test_a_small_run_end_to_end() -> None:
    result = run_experiment(
        "breast-cancer-imbalanced",
        protocol=Protocol(folds=2, learning_rates=(1e-2,)),
        options=TrainOptions(epochs=3, hidden=8),
        variants=["dice"],
    )
    keys = [row.key for row in result.rows]
    assert keys[:2] == ["binary_cross_entropy", "dice"]  # the reference comes first
    assert all(len(row.folds) == 2 for row in result.rows)
    assert result.test_share == pytest.approx(1.0, abs=0.01)  # two folds: halves
    assert result.command() == (  # what the section says ran it
        "lossserve experiment breast-cancer-imbalanced --folds 2 --seeds 0 --learning-rates "
        "0.01 --losses binary_cross_entropy,dice --hidden 8 --epochs 3"
    )
    for row in result.rows:  # each column's learning rate is from the grid; none for baselines
        rates = {score.rate(c) for score in row.folds for c in ("argmax", "thresholds")}
        assert rates == ({None} if row.loss == "-" else {1e-2}), row.key


def test_a_rate_that_diverges_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from lossserve.training import experiment

    real_fit = experiment.fit

    def fit(dataset: Any, loss: Any, options: Any, **kwargs: Any) -> Any:
        if options.learning_rate > 0.005:  # stands in for a loss that turns NaN
            raise RuntimeError("training: expected a finite loss, got nan")
        return real_fit(dataset, loss, options, **kwargs)

    monkeypatch.setattr(experiment, "fit", fit)
    result = run_experiment(
        "breast-cancer-imbalanced",
        protocol=Protocol(folds=2, learning_rates=(1e-3, 1e-2)),
        options=TrainOptions(epochs=2, hidden=8),
        variants=["dice"],
    )
    assert {s.rate("argmax") for s in result.rows[1].folds} == {1e-3}
    every = run_experiment(
        "breast-cancer-imbalanced",
        protocol=Protocol(folds=2, learning_rates=(1e-2,)),
        options=TrainOptions(epochs=2, hidden=8),
        variants=["dice"],
    )
    assert [(r.key, r.folds, r.note) for r in every.rows[:2]] == [
        ("binary_cross_entropy", [], "diverged at every learning rate"),
        ("dice", [], "diverged at every learning rate"),
    ]


@pytest.mark.parametrize(
    ("name", "variant"),
    [("breast-cancer-imbalanced", "dice"), ("digits-lt", "focal"), ("multilabel-synth", "dice")],
)
def test_the_report_pools_each_folds_decisions(name: str, variant: str, tmp_path: Path) -> None:
    """The report's out-of-fold predictions are each fold's, in the pooled rows' order, and
    plain decisions on them shifted by each fold's rule are that fold's thresholds column."""
    result = run_experiment(
        name,
        protocol=Protocol(folds=2, learning_rates=(1e-2,)),
        options=TrainOptions(epochs=4, hidden=8),
        variants=[variant],
    )
    pooled, _ = _pooled(result.dataset)
    for row in result.rows:
        predictions = _out_of_fold(result, row)
        assert predictions is not None, row.key
        raw, moved, targets = predictions
        assert np.array_equal(targets, pooled.targets)
        assert raw.shape == moved.shape and len(raw) == len(pooled)
        for fold in row.folds:
            assert fold.test_rows is not None and fold.test_scores is not None
            assert np.array_equal(raw[fold.test_rows], fold.test_scores)
            request = EvaluateRequest(logits=moved[fold.test_rows], targets=targets[fold.test_rows])
            assert evaluate(request).macro_f1 == pytest.approx(fold.thresholds, abs=1e-9)
    path = tmp_path / "results.md"
    write_section(path, result)
    text = path.read_text()
    assert f"[reports/{name}.html](reports/{name}.html)" in text
    page = (tmp_path / "reports" / f"{name}.html").read_text()
    for row in result.rows:
        assert f"<h2>{html.escape(row.key)}</h2>" in page
    # every row: the table of its pooled decisions, its confusion and curves
    assert page.count("Per class, every row out of fold") == len(result.rows)
    assert page.count("data:image/png;base64,") >= 1 + 2 * len(result.rows)


def test_the_report_of_a_fixed_test_split_shows_the_first_seeds_model() -> None:
    dataset = dataclasses.replace(load_dataset("digits-lt"), fixed_test=True)
    result = cross_validate(
        dataset,
        VARIANTS[Task.MULTICLASS][:1],
        protocol=Protocol(seeds=(0, 1), learning_rates=(1e-2,)),
        options=TrainOptions(epochs=3, hidden=8),
        baselines=False,
    )
    (row,) = result.rows
    predictions = _out_of_fold(result, row)
    assert predictions is not None
    raw, _, targets = predictions
    first = row.folds[0].test_scores
    assert first is not None and np.array_equal(raw, first)
    assert np.array_equal(targets, dataset.test.targets)
    assert "Per class, the fixed test split, seed 0, with the decision rule" in (
        experiment_report(result)
    )
