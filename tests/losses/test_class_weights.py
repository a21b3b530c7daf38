"""class_weights: hand-computed values per strategy, scikit-learn parity, limits, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

import losses
from losses._class_weights import (
    CLASS_WEIGHT_STRATEGIES,
    ClassWeightsParams,
    ClassWeightStrategy,
    class_weights,
)

# counts [1, 3]: n = 4, K = 2 (labels [0, 1, 1, 1]).
LABELS = [0, 1, 1, 1]
SQRT3 = math.sqrt(3.0)
HAND_COMPUTED = {
    # n / (K n_c) = 4 / (2*1), 4 / (2*3)
    "balanced": [2.0, 2.0 / 3.0],
    # 1/n_c = [1, 1/3], sum 4/3, scaled to sum K = 2: [1.5, 0.5]
    "inverse": [1.5, 0.5],
    # 1/sqrt(n_c) = [1, 1/sqrt3], scaled by 2 / (1 + 1/sqrt3) = 3 - sqrt3: [3 - sqrt3, sqrt3 - 1]
    "inverse_sqrt": [3.0 - SQRT3, SQRT3 - 1.0],
    # log((n - n_c)/n_c + K) = log(3/1 + 2), log((1/3) + 2)
    "log_ratio": [math.log(5.0), math.log(7.0 / 3.0)],
}


@pytest.mark.parametrize("strategy", sorted(HAND_COMPUTED))
def test_hand_computed_values(strategy: str) -> None:
    expected = torch.tensor(HAND_COMPUTED[strategy], dtype=torch.float32)
    torch.testing.assert_close(class_weights(LABELS, strategy=strategy), expected)
    torch.testing.assert_close(class_weights(counts=[1, 3], strategy=strategy), expected)


def test_hand_computed_effective_number() -> None:
    # beta = 0.5: (1 - 0.5) / (1 - 0.5^1) = 1, (1 - 0.5) / (1 - 0.5^3) = 0.5 / 0.875 = 4/7;
    # sum 11/7, scaled to sum 2: [14/11, 8/11].
    got = class_weights(LABELS, strategy="effective_number", beta=0.5)
    torch.testing.assert_close(got, torch.tensor([14.0 / 11.0, 8.0 / 11.0]))


def test_returns_float32_one_weight_per_class() -> None:
    got = class_weights(torch.tensor([0, 2, 2, 1, 2]), strategy=ClassWeightStrategy.INVERSE)
    assert got.dtype == torch.float32
    assert got.shape == (3,)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balanced_parity_with_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.choice(5, size=200, p=[0.6, 0.2, 0.1, 0.07, 0.03])
    y[:5] = np.arange(5)  # every class present
    ref = compute_class_weight("balanced", classes=np.arange(5), y=y)
    for labels in (y, torch.from_numpy(y), y.tolist()):
        np.testing.assert_allclose(class_weights(labels).numpy(), ref, rtol=1e-6)


@pytest.mark.parametrize("strategy", CLASS_WEIGHT_STRATEGIES)
def test_labels_and_counts_agree(strategy: str) -> None:
    y = torch.tensor([0, 0, 0, 0, 1, 2, 2, 3, 3, 3])
    counts = torch.bincount(y)
    torch.testing.assert_close(
        class_weights(y, strategy=strategy, beta=0.9),
        class_weights(counts=counts, strategy=strategy, beta=0.9),
    )


@pytest.mark.parametrize("strategy", ["balanced", "inverse", "inverse_sqrt", "effective_number"])
def test_equal_counts_give_unit_weights(strategy: str) -> None:
    torch.testing.assert_close(class_weights(counts=[7, 7, 7], strategy=strategy), torch.ones(3))


def test_normalised_strategies_have_mean_one() -> None:
    counts = [5, 40, 500, 1]
    for strategy in ("inverse", "inverse_sqrt", "effective_number"):
        weights = class_weights(counts=counts, strategy=strategy, beta=0.99)
        assert weights.sum().item() == pytest.approx(4.0, rel=1e-6)
        # rarer classes weigh more
        assert weights[3] > weights[0] > weights[1] > weights[2]


def test_effective_number_limits() -> None:
    # Analytic limits: 1 - beta^n ~ n (1 - beta) as beta -> 1, so the weight tends to
    # 1/n_c (inverse); beta^n_c = 0 at beta = 0 for n_c >= 1, so every weight is 1 - 0 = 1.
    counts = [3, 10, 250, 1]
    inverse = class_weights(counts=counts, strategy="inverse")
    near_one = class_weights(counts=counts, strategy="effective_number", beta=1.0 - 1e-9)
    torch.testing.assert_close(near_one, inverse, rtol=1e-5, atol=1e-6)
    far = class_weights(counts=counts, strategy="effective_number", beta=0.9)
    assert (far - inverse).abs().max() > 0.1  # the limit is not trivially reached
    uniform = class_weights(counts=counts, strategy="effective_number", beta=0.0)
    torch.testing.assert_close(uniform, torch.ones(4))


def test_num_classes_pads_and_checks() -> None:
    torch.testing.assert_close(
        class_weights([0, 1, 1, 2], num_classes=3), torch.tensor([4 / 3, 2 / 3, 4 / 3])
    )
    with pytest.raises(ValueError, match=r"labels in \[0, 1\] for num_classes=2, got 2"):
        class_weights([0, 1, 2], num_classes=2)


@pytest.mark.parametrize("strategy", CLASS_WEIGHT_STRATEGIES)
def test_absent_class_raises_naming_it(strategy: str) -> None:
    with pytest.raises(
        ValueError, match=r"got none for class\(es\) \[3\]; weights for an absent class"
    ):
        class_weights([0, 1, 2, 2], num_classes=4, strategy=strategy)
    with pytest.raises(ValueError, match=r"got none for class\(es\) \[0, 2\]"):
        class_weights(counts=[0, 5, 0], strategy=strategy)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "exactly one of labels and counts, got neither"),
        ({"labels": [0, 1], "counts": [1, 1]}, ValueError, "got both"),
        ({"labels": [0, 1], "strategy": "sqrt"}, ValueError, "strategy to be one of 'balanced'"),
        ({"labels": [0, 1], "beta": 1.0}, ValueError, "beta"),
        ({"labels": [0, 1], "beta": -0.1}, ValueError, "beta"),
        ({"labels": [0, 1], "num_classes": 0}, ValueError, "num_classes"),
        ({"labels": [0.0, 1.0]}, TypeError, "integer class indices"),
        ({"labels": [[0, 1]]}, ValueError, r"labels of shape \(N,\)"),
        ({"labels": [0, -1]}, ValueError, "labels >= 0, got -1"),
        ({"labels": []}, ValueError, "at least one label"),
        ({"counts": [1, 2], "num_classes": 3}, ValueError, "num_classes=3 entries, got 2"),
        ({"counts": [1.0, -2.0]}, ValueError, "counts finite and >= 0"),
        ({"counts": [[1, 2]]}, ValueError, r"counts of shape \(K,\)"),
    ],
)
def test_bad_arguments_raise(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        class_weights(**kwargs)  # type: ignore[arg-type]


def test_strategy_list_is_the_schema_enum() -> None:
    assert CLASS_WEIGHT_STRATEGIES == (
        "balanced",
        "inverse",
        "inverse_sqrt",
        "effective_number",
        "log_ratio",
    )
    schema = ClassWeightsParams.model_json_schema()
    assert tuple(schema["$defs"]["ClassWeightStrategy"]["enum"]) == CLASS_WEIGHT_STRATEGIES
    assert ClassWeightsParams.model_validate({"strategy": "inverse"}).strategy == "inverse"


def test_weights_plug_into_focal_alpha() -> None:
    y = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2])
    weights = class_weights(y)  # 9 / (3 * [6, 2, 1]) = [0.5, 1.5, 3]
    torch.testing.assert_close(weights, torch.tensor([0.5, 1.5, 3.0]))
    logits = torch.randn(9, 3, dtype=torch.float64)
    per_sample = losses.compute("focal", logits, y, reduction="none", gamma=2.0)
    weighted = losses.compute("focal", logits, y, reduction="none", gamma=2.0, alpha=weights)
    torch.testing.assert_close(weighted, per_sample * weights.double()[y])
