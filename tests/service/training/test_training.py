"""Training: the loss through the registry, class weights, early stopping, thresholds."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch

import losses
from losses import LossParameterError, Task
from lossserve.core.evaluator import evaluate
from lossserve.core.types import EvaluateRequest
from lossserve.training import (
    Dataset,
    Split,
    TrainOptions,
    evaluate_fit,
    fit,
    fit_decision_rule,
    keeps_zero_threshold,
    resolve_loss,
)
from lossserve.training.trainer import as_tensor, predict_logits, scores

# ---------------------------------------------------------------------------- the loss


def test_cross_entropy_weight_from_class_weights(digits: Dataset) -> None:
    setup = resolve_loss(digits, "cross_entropy", class_weights="balanced")
    counts = digits.class_counts("train")
    expected = counts.sum() / (len(counts) * counts)  # n / (K n_c)
    assert setup.params["weight"] == pytest.approx(expected.tolist(), rel=1e-6)
    assert setup.class_weights == "balanced"


def test_focal_alpha_from_class_weights(digits: Dataset) -> None:
    setup = resolve_loss(digits, "focal", {"gamma": 1.0}, class_weights="inverse")
    counts = digits.class_counts("train")
    inverse = 1.0 / counts
    assert setup.params["alpha"] == pytest.approx((inverse * 10 / inverse.sum()).tolist(), rel=1e-6)
    assert setup.params["gamma"] == 1.0


def test_bce_pos_weight_binary(breast: Dataset) -> None:
    setup = resolve_loss(breast, "binary_cross_entropy", class_weights="balanced")
    negatives, positives = breast.class_counts("train")
    assert setup.params["pos_weight"] == pytest.approx(negatives / positives, rel=1e-6)


def test_bce_pos_weight_multilabel(synth: Dataset) -> None:
    setup = resolve_loss(synth, "binary_cross_entropy", class_weights="balanced")
    positives = synth.class_counts("train")
    negatives = len(synth.train) - positives
    assert setup.params["pos_weight"] == pytest.approx((negatives / positives).tolist(), rel=1e-6)


def test_bce_pos_weight_inverse_sqrt(breast: Dataset) -> None:
    setup = resolve_loss(breast, "binary_cross_entropy", class_weights="inverse_sqrt")
    negatives, positives = breast.class_counts("train")
    assert setup.params["pos_weight"] == pytest.approx(np.sqrt(negatives / positives), rel=1e-6)


def test_class_weights_for_a_loss_without_weights(digits: Dataset) -> None:
    with pytest.raises(
        ValueError,
        match=r"class_weights: expected a loss that takes class weights \(binary_cross_entropy "
        r"\(pos_weight\), cross_entropy \(weight\), focal \(alpha\)\), got 'dice', which "
        r"takes none",
    ):
        resolve_loss(digits, "dice", class_weights="balanced")


def test_class_weights_and_params_both(digits: Dataset) -> None:
    with pytest.raises(ValueError, match=r"either class_weights or params\['weight'\].*got both"):
        resolve_loss(digits, "cross_entropy", {"weight": [1.0] * 10}, class_weights="balanced")


def test_bad_strategy(digits: Dataset) -> None:
    with pytest.raises(ValueError, match="strategy to be one of"):
        resolve_loss(digits, "cross_entropy", class_weights="uniform")


def test_unknown_loss_hint(digits: Dataset) -> None:
    with pytest.raises(ValueError, match="Did you mean 'focal'"):
        resolve_loss(digits, "focl")


def test_loss_for_another_task(synth: Dataset) -> None:
    with pytest.raises(
        ValueError,
        match=r"expected a loss for multilabel targets .* got 'focal' which supports multiclass",
    ):
        resolve_loss(synth, "focal")


def test_params_validated_by_the_registry(digits: Dataset) -> None:
    with pytest.raises(LossParameterError, match="gamma"):
        resolve_loss(digits, "focal", {"gamma": -1.0})
    with pytest.raises(LossParameterError, match="unknown parameter"):
        resolve_loss(digits, "focal", {"gama": 1.0})


def test_per_class_params_of_the_wrong_length(digits: Dataset) -> None:
    with pytest.raises(
        ValueError,
        match=r"params: loss 'cross_entropy': .*one value per class "
        r"\(10\)",
    ):
        resolve_loss(digits, "cross_entropy", {"weight": [1.0, 2.0]})


def test_logit_adjusted_prior_defaults_to_train_frequencies(digits: Dataset) -> None:
    setup = resolve_loss(digits, "logit_adjusted_cross_entropy")
    counts = digits.class_counts("train")
    assert setup.params["class_prior"] == pytest.approx((counts / counts.sum()).tolist())
    given = resolve_loss(digits, "logit_adjusted_cross_entropy", {"class_prior": [0.1] * 10})
    assert given.params["class_prior"] == [0.1] * 10


def test_params_are_the_validated_ones(digits: Dataset) -> None:
    setup = resolve_loss(digits, "focal")
    assert setup.params == losses.get("focal").validate({}).model_dump(mode="json")


# ---------------------------------------------------------------------------- fitting


def test_fit_reproducible_and_leaves_global_rng(digits: Dataset, tiny: TrainOptions) -> None:
    setup = resolve_loss(digits, "cross_entropy")
    state = torch.random.get_rng_state()
    first = fit(digits, setup, tiny)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = fit(digits, setup, tiny)
    other = fit(digits, setup, tiny.model_copy(update={"seed": 1}))
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    key = "body.0.weight"
    assert not torch.equal(first.model.state_dict()[key], other.model.state_dict()[key])


def test_read_only_arrays_train_and_predict_without_warnings(
    digits: Dataset, tiny: TrainOptions
) -> None:
    """joblib hands its workers large arrays as read-only memory maps; torch warns on
    sharing read-only memory (once a process: the warning part fails only when run first),
    so those are copied."""
    import dataclasses
    import warnings

    def read_only(split: Split) -> Split:
        features, targets = split.features.copy(), split.targets.copy()
        features.setflags(write=False)
        targets.setflags(write=False)
        return Split(features, targets)

    frozen = dataclasses.replace(digits, train=read_only(digits.train))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fit(frozen, resolve_loss(frozen, "cross_entropy"), tiny)
        predict_logits(result.model, frozen.train.features)
    assert not frozen.train.features.flags.writeable  # the caller's array is left as it was
    tensor = as_tensor(frozen.train.features)
    tensor[0, 0] = 123.0
    assert frozen.train.features[0, 0] != 123.0  # a copy, not the read-only memory
    writable = digits.train.features
    assert as_tensor(writable).data_ptr() == writable.ctypes.data  # shared, as before


def test_early_stopping_keeps_the_best_epoch(digits: Dataset) -> None:
    options = TrainOptions(epochs=200, patience=3, hidden=16, learning_rate=0.05)
    result = fit(digits, resolve_loss(digits, "cross_entropy"), options)
    history = result.history
    assert len(history) == result.best_epoch + 3 < 200  # stopped 3 epochs after the best
    best = max(r.validation_macro_f1 for r in history)
    assert result.best_validation_macro_f1 == best
    assert history[result.best_epoch - 1].validation_macro_f1 == best
    # The model returned is the best epoch's, not the last one's.
    logits = scores(digits.task, predict_logits(result.model, digits.validation.features))
    got = evaluate(EvaluateRequest(logits=logits, targets=digits.validation.targets)).macro_f1
    assert got == pytest.approx(best)


@pytest.mark.parametrize("architecture", ["linear", "mlp"])
def test_architectures_learn(digits: Dataset, architecture: str) -> None:
    options = TrainOptions(
        architecture=architecture,
        epochs=15,
        patience=15,
        hidden=32,
        learning_rate=1e-2,
    )
    result = fit(digits, resolve_loss(digits, "cross_entropy"), options)
    assert result.best_validation_macro_f1 > 0.5
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_standardisation_is_in_the_model(digits: Dataset, tiny: TrainOptions) -> None:
    model = fit(digits, resolve_loss(digits, "cross_entropy"), tiny).model
    x = digits.train.features.astype(np.float64)
    assert np.allclose(model.mean.numpy(), x.mean(axis=0), atol=1e-5)
    std = x.std(axis=0)
    constant = std == 0  # digits has always-blank pixels: their scale is 1
    assert constant.any()
    assert np.allclose(model.inv_scale.numpy()[constant], 1.0)
    assert np.allclose(model.inv_scale.numpy()[~constant], 1.0 / std[~constant], rtol=1e-5)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar(digits: Dataset, tiny: TrainOptions, monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = _Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    fit(digits, resolve_loss(digits, "cross_entropy"), tiny, quiet=False, description="demo")
    err = stderr.getvalue()
    assert "demo" in err and "val_macro_f1=" in err and "loss=" in err
    stderr.seek(0)
    stderr.truncate()
    fit(digits, resolve_loss(digits, "cross_entropy"), tiny, quiet=True)
    assert stderr.getvalue() == ""


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="epochs"):
        TrainOptions(epochs=0)
    with pytest.raises(ValueError, match="architecture"):
        TrainOptions(architecture="cnn")


# ---------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize(
    ("fixture", "loss"),
    [
        ("digits", "cross_entropy"),
        ("breast", "binary_cross_entropy"),
        ("synth", "binary_cross_entropy"),
        ("synth", "sigmoid_focal"),
    ],
)
def test_thresholds_improve_or_keep_validation_macro_f1(
    fixture: str, loss: str, tiny: TrainOptions, request: pytest.FixtureRequest
) -> None:
    dataset: Dataset = request.getfixturevalue(fixture)
    result = fit(dataset, resolve_loss(dataset, loss), tiny)
    rule, validation, test = evaluate_fit(dataset, result)
    assert rule.fitted
    assert rule.kind == ("offsets" if dataset.task is Task.MULTICLASS else "thresholds")
    assert rule.values.shape == (dataset.num_outputs,)
    assert validation.macro_f1_thresholds >= validation.macro_f1_argmax
    assert rule.after.macro_f1 == pytest.approx(validation.macro_f1_thresholds)
    assert rule.before.macro_f1 == pytest.approx(validation.macro_f1_argmax)
    for metrics in (validation, test):
        assert 0.0 <= metrics.macro_f1_argmax <= 1.0
        assert metrics.loss is not None and np.isfinite(metrics.loss)


def test_zlpr_keeps_threshold_zero_unless_refit(synth: Dataset, tiny: TrainOptions) -> None:
    result = fit(synth, resolve_loss(synth, "multilabel_categorical_crossentropy"), tiny)
    kept, validation, _ = evaluate_fit(synth, result)
    assert not kept.fitted
    assert kept.values.tolist() == [0.0] * 8
    assert validation.macro_f1_thresholds == validation.macro_f1_argmax
    refit, refit_validation, _ = evaluate_fit(synth, result, refit=True)
    assert refit.fitted and np.any(refit.values != 0.0)
    assert refit_validation.macro_f1_thresholds >= validation.macro_f1_thresholds


def test_which_losses_keep_zero() -> None:
    assert keeps_zero_threshold("multilabel_categorical_crossentropy", {})
    assert keeps_zero_threshold("circle", {"threshold_class": True})
    assert keeps_zero_threshold("circle", {})
    assert not keeps_zero_threshold("circle", {"threshold_class": False})
    assert not keeps_zero_threshold("binary_cross_entropy", {})


def test_fit_beta_favours_recall(breast: Dataset, tiny: TrainOptions) -> None:
    result = fit(breast, resolve_loss(breast, "binary_cross_entropy"), tiny)
    val = scores(breast.task, predict_logits(result.model, breast.validation.features))
    f1 = fit_decision_rule(breast.task, val, breast.validation.targets, beta=1.0)
    f4 = fit_decision_rule(breast.task, val, breast.validation.targets, beta=4.0)
    assert f4.values[0] <= f1.values[0]  # recall weighs more: the cut never rises


def test_threads_set_while_training_and_restored(digits: Dataset) -> None:
    before = torch.get_num_threads()
    seen: list[int] = []
    setup = resolve_loss(digits, "cross_entropy")
    module = setup.module

    def spy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        seen.append(torch.get_num_threads())
        value: torch.Tensor = module(logits, targets)
        return value

    spied = type(setup)(setup.name, setup.params, spy, None)  # type: ignore[arg-type]
    wanted = 1 if before != 1 else 2
    fit(digits, spied, TrainOptions(epochs=1, hidden=8, threads=wanted))
    assert seen and set(seen) == {wanted}
    assert torch.get_num_threads() == before
