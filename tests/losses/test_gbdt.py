"""losses.gbdt: registry losses as LightGBM / XGBoost custom objectives, trained for real."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
import torch
import xgboost as xgb
from numpy.typing import NDArray
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

import losses
from losses._catalog import REGISTRY
from losses._registry import LossModule, LossSpec, per_sample
from losses._validation import LossParameterError, Params, Task
from losses.gbdt import GBDTObjective, lightgbm_objective, xgboost_objective

Split = tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]
ROUNDS = 40
LGB_PARAMS: dict[str, Any] = {
    "learning_rate": 0.1,
    "num_leaves": 8,
    "min_child_samples": 5,
    "verbose": -1,
    "n_jobs": 1,
    "deterministic": True,
}
XGB_PARAMS: dict[str, Any] = {"max_depth": 3, "eta": 0.1, "nthread": 1}


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    # Each boosting round differentiates a few hundred logits: intra-op threads only add
    # hand-off cost and compete with the booster's OpenMP threads. Restored afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def imbalanced_cancer() -> Split:
    """Breast cancer, malignant = positive, ~15% of them kept: 28 of 385 samples, half held out."""
    X, benign = load_breast_cancer(return_X_y=True)
    y = (1 - benign).astype(np.float64)
    keep = (y == 0) | (np.random.default_rng(0).random(len(y)) < 0.15)
    parts = train_test_split(X[keep], y[keep], test_size=0.5, stratify=y[keep], random_state=0)
    return parts[0], parts[1], parts[2], parts[3]


@pytest.fixture(scope="module")
def imbalanced_digits() -> Split:
    """Digits 0, 1, 2 (8x8 images), ~25% of the 2s kept: 178 / 182 / 49 samples, 30% held out."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    keep = (y < 2) | ((y == 2) & (rng.random(len(y)) < 0.25))
    parts = train_test_split(X[keep], y[keep], test_size=0.3, stratify=y[keep], random_state=0)
    return parts[0], parts[1], parts[2], parts[3]


def _sigmoid(z: NDArray[Any]) -> NDArray[Any]:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def _requires(*names: str) -> pytest.MarkDecorator:
    missing = [n for n in names if n not in losses.names()]
    return pytest.mark.skipif(bool(missing), reason=f"not registered yet: {missing}")


# ---------------------------------------------------------------------------- LightGBM


@_requires("binary_cross_entropy")
@pytest.mark.parametrize("api", ["sklearn", "train"])
def test_lightgbm_bce_reproduces_builtin_binary(imbalanced_cancer: Split, api: str) -> None:
    # A custom objective starts from raw score 0, so the built-in one gets
    # boost_from_average=False; the built-in "binary" gradients are p - y and p(1 - p).
    X_train, X_test, y_train, _ = imbalanced_cancer
    if api == "sklearn":
        ours = lgb.LGBMClassifier(
            objective=lightgbm_objective("binary_cross_entropy"), n_estimators=ROUNDS, **LGB_PARAMS
        ).fit(X_train, y_train)
        ref = lgb.LGBMClassifier(
            objective="binary", boost_from_average=False, n_estimators=ROUNDS, **LGB_PARAMS
        ).fit(X_train, y_train)
        got, expected = ours.predict(X_test, raw_score=True), ref.predict(X_test, raw_score=True)
    else:
        params = {k: v for k, v in LGB_PARAMS.items() if k != "n_jobs"} | {"num_threads": 1}
        ours_b = lgb.train(
            params | {"objective": lightgbm_objective("binary_cross_entropy")},
            lgb.Dataset(X_train, y_train),
            ROUNDS,
        )
        ref_b = lgb.train(
            params | {"objective": "binary", "boost_from_average": False},
            lgb.Dataset(X_train, y_train),
            ROUNDS,
        )
        got, expected = (
            ours_b.predict(X_test, raw_score=True),
            ref_b.predict(X_test, raw_score=True),
        )
    assert np.abs(expected).max() > 1.0  # the models moved away from 0
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@_requires("binary_cross_entropy")
def test_lightgbm_receives_analytic_bce_derivatives(imbalanced_cancer: Split) -> None:
    X_train, _, y_train, _ = imbalanced_cancer
    weight = np.random.default_rng(1).uniform(0.5, 2.0, len(y_train))
    fobj = lightgbm_objective("binary_cross_entropy")
    seen: list[tuple[NDArray[Any], NDArray[Any], NDArray[Any]]] = []

    def spy(preds: NDArray[Any], data: lgb.Dataset) -> tuple[NDArray[Any], NDArray[Any]]:
        grad, hess = fobj(preds, data)
        seen.append((preds.copy(), grad, hess))
        return grad, hess

    params = {"objective": spy, "num_leaves": 8, "verbose": -1, "num_threads": 1}
    train_set = lgb.Dataset(X_train, y_train, weight=weight)
    lgb.train(params, train_set, 10)
    preds, grad, hess = seen[-1]
    assert np.abs(preds).max() > 0.5  # checked away from the all-zero start
    p = _sigmoid(preds)
    # LightGBM stores weights as float32: compare with what the Dataset holds.
    w = np.asarray(train_set.get_weight(), dtype=np.float64)
    np.testing.assert_allclose(grad, w * (p - y_train), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hess, np.maximum(w * p * (1 - p), 1e-6), rtol=1e-10)
    assert grad.dtype == hess.dtype == np.float64


@_requires("sigmoid_focal")
def test_lightgbm_sigmoid_focal_learns_the_rare_class(imbalanced_cancer: Split) -> None:
    # 14 malignant among 193 held-out samples. Predicting all positive scores F1 0.135 and
    # all negative 0; the built-in "binary" objective scores 0.78 here and this model 0.83.
    # 0.6 means the focal model found the minority class, with room for the coarse F1 steps
    # of 14 positives (one sample moves F1 by ~0.05).
    X_train, X_test, y_train, y_test = imbalanced_cancer
    model = lgb.LGBMClassifier(
        objective=lightgbm_objective("sigmoid_focal", gamma=2.0), n_estimators=ROUNDS, **LGB_PARAMS
    ).fit(X_train, y_train)
    assert f1_score(y_test, np.asarray(model.predict(X_test, raw_score=True)) > 0) > 0.6


def test_lightgbm_focal_multiclass_f1(imbalanced_digits: Split) -> None:
    # Macro-F1 over 3 classes: the majority-class predictor scores 0.21, chance ~0.33; the
    # built-in "multiclass" objective scores 1.0 on this split and this model 0.96. 0.9
    # leaves room for the 15 held-out 2s (one sample moves their F1 by ~0.03) while failing
    # an objective whose gradients are wrong.
    X_train, X_test, y_train, y_test = imbalanced_digits
    model = lgb.LGBMClassifier(
        objective=lightgbm_objective("focal", gamma=2.0), n_estimators=ROUNDS, **LGB_PARAMS
    ).fit(X_train, y_train)
    raw = np.asarray(model.predict(X_test, raw_score=True))
    assert raw.shape == (len(y_test), 3)
    assert f1_score(y_test, raw.argmax(axis=1), average="macro") > 0.9


def test_lightgbm_train_multiclass_shapes_and_weights(imbalanced_digits: Split) -> None:
    # lgb.train hands (n, K) raw scores and the Dataset; weights come from get_weight().
    X_train, _, y_train, _ = imbalanced_digits
    weight = np.where(y_train == 2, 4.0, 1.0)
    fobj = lightgbm_objective("focal", gamma=1.0)
    seen: list[tuple[NDArray[Any], NDArray[Any], NDArray[Any]]] = []

    def spy(preds: NDArray[Any], data: lgb.Dataset) -> tuple[NDArray[Any], NDArray[Any]]:
        grad, hess = fobj(preds, data)
        seen.append((preds.copy(), grad, hess))
        return grad, hess

    params = {"objective": spy, "num_class": 3, "verbose": -1, "num_threads": 1}
    lgb.train(params, lgb.Dataset(X_train, y_train, weight=weight), 3)
    preds, grad, _ = seen[-1]
    assert preds.shape == grad.shape == (len(y_train), 3)
    unweighted, _ = fobj.grad_hess(y_train, preds)
    np.testing.assert_allclose(grad, weight[:, None] * unweighted, rtol=1e-12)


def test_lightgbm_sklearn_passes_weight_positionally(imbalanced_digits: Split) -> None:
    # LGBMClassifier counts the objective's parameters: three means (y_true, y_pred, weight).
    X_train, _, y_train, _ = imbalanced_digits
    weight = np.where(y_train == 2, 3.0, 1.0)
    fobj = lightgbm_objective("focal")
    calls: list[tuple[NDArray[Any] | None, NDArray[Any]]] = []

    def spy(
        y_true: NDArray[Any] | None, y_pred: NDArray[Any], weight: NDArray[Any] | None
    ) -> tuple[NDArray[Any], NDArray[Any]]:
        calls.append((weight, y_pred))
        return fobj(y_true, y_pred, weight)

    lgb.LGBMClassifier(objective=spy, n_estimators=2, verbose=-1, n_jobs=1).fit(
        X_train, y_train, sample_weight=weight
    )
    received, y_pred = calls[-1]
    assert received is not None
    np.testing.assert_allclose(received, weight)
    assert y_pred.shape == (len(y_train), 3)


# ----------------------------------------------------------------------------- XGBoost


@_requires("binary_cross_entropy")
def test_xgboost_bce_reproduces_builtin_logistic(imbalanced_cancer: Split) -> None:
    # base_margin = 0 for both, so neither starts from base_score; binary:logistic's
    # gradients are p - y and max(p(1 - p), 1e-16).
    X_train, X_test, y_train, _ = imbalanced_cancer
    zeros_train, zeros_test = np.zeros(len(y_train)), np.zeros(len(X_test))
    dtrain = xgb.DMatrix(X_train, label=y_train, base_margin=zeros_train)
    dtest = xgb.DMatrix(X_test, base_margin=zeros_test)
    ours = xgb.train(XGB_PARAMS, dtrain, ROUNDS, obj=xgboost_objective("binary_cross_entropy"))
    ref = xgb.train(XGB_PARAMS | {"objective": "binary:logistic"}, dtrain, ROUNDS)
    got = ours.predict(dtest, output_margin=True)
    expected = ref.predict(dtest, output_margin=True)
    assert np.abs(expected).max() > 1.0
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@_requires("binary_cross_entropy")
def test_xgboost_receives_analytic_bce_derivatives(imbalanced_cancer: Split) -> None:
    X_train, _, y_train, _ = imbalanced_cancer
    weight = np.random.default_rng(2).uniform(0.5, 2.0, len(y_train))
    obj = xgboost_objective("binary_cross_entropy")
    seen: list[tuple[NDArray[Any], NDArray[Any], NDArray[Any]]] = []

    def spy(predt: NDArray[Any], dtrain: xgb.DMatrix) -> tuple[NDArray[Any], NDArray[Any]]:
        grad, hess = obj(predt, dtrain)
        seen.append((predt.copy(), grad, hess))
        return grad, hess

    dtrain = xgb.DMatrix(X_train, label=y_train, weight=weight)
    xgb.train(XGB_PARAMS, dtrain, 10, obj=spy)
    predt, grad, hess = seen[-1]
    assert np.abs(predt).max() > 0.5
    p = _sigmoid(predt.astype(np.float64))
    # XGBoost stores weights as float32: compare with what the DMatrix holds.
    w = dtrain.get_weight().astype(np.float64)
    np.testing.assert_allclose(grad, w * (p - y_train), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hess, np.maximum(w * p * (1 - p), 1e-6), rtol=1e-10)


def test_xgboost_sklearn_focal_multiclass_f1(imbalanced_digits: Split) -> None:
    # Same bar and reasoning as the LightGBM test.
    X_train, X_test, y_train, y_test = imbalanced_digits
    model = xgb.XGBClassifier(
        objective=xgboost_objective("focal", gamma=2.0),
        n_estimators=ROUNDS,
        max_depth=3,
        learning_rate=0.3,
        n_jobs=1,
    ).fit(X_train, y_train)
    raw = model.predict(X_test, output_margin=True)
    assert raw.shape == (len(y_test), 3)
    assert f1_score(y_test, raw.argmax(axis=1), average="macro") > 0.9


def test_xgboost_sklearn_passes_sample_weight(imbalanced_digits: Split) -> None:
    # The scikit-learn wrapper passes sample_weight= only to objectives that name it.
    X_train, _, y_train, _ = imbalanced_digits
    weight = np.where(y_train == 2, 3.0, 1.0)
    obj = xgboost_objective("focal")
    calls: list[NDArray[Any] | None] = []

    def spy(
        y_true: NDArray[Any], y_pred: NDArray[Any], sample_weight: NDArray[Any] | None = None
    ) -> tuple[NDArray[Any], NDArray[Any]]:
        calls.append(sample_weight)
        return obj(y_true, y_pred, sample_weight)

    xgb.XGBClassifier(objective=spy, n_estimators=2, max_depth=2, n_jobs=1).fit(
        X_train, y_train, sample_weight=weight
    )
    assert calls and calls[-1] is not None
    np.testing.assert_allclose(calls[-1], weight)


# -------------------------------------------------------------------------- Hessian floor


@pytest.mark.parametrize("factory", [lightgbm_objective, xgboost_objective])
def test_hessian_floor_replaces_negative_focal_curvature(factory: Any) -> None:
    # Sample 0 is confidently wrong (target 0, logit 4 on class 1): p_0 = e^-4 / (1 + e^-4 +
    # e^-8 ... ) is tiny, and focal's second derivative in x_0 is negative there. Sample 1 is
    # an ordinary one whose curvature is positive and left as is.
    logits = np.array([[-4.0, 4.0, 0.0], [0.5, 0.0, -0.5]])
    labels = np.array([0.0, 0.0])
    raw = losses.derivatives(
        "focal",
        torch.from_numpy(logits),
        torch.tensor([0, 0]),
        hessian=True,
        reduction="sum",
        gamma=2.0,
    ).hessian_diag
    assert raw is not None
    raw_np = raw.numpy()
    assert raw_np[0, 0] < 0.0
    floor = 1e-3
    grad, hess = factory("focal", gamma=2.0, hessian_floor=floor)(labels, logits)
    assert hess[0, 0] == floor
    np.testing.assert_allclose(hess, np.maximum(raw_np, floor))
    assert (hess >= floor).all()
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("factory", [lightgbm_objective, xgboost_objective])
def test_hessian_policies_where_focal_curvature_is_negative(factory: Any) -> None:
    """exact hands the negative curvature over; abs its magnitude; fisher the softmax's
    p (1 - p) whatever the loss, times the weight; every one but exact at least the floor."""
    logits = np.array([[-4.0, 4.0, 0.0], [0.5, 0.0, -0.5]])
    labels = np.array([0.0, 0.0])
    weight = np.array([2.0, 0.5])
    raw = losses.derivatives(
        "focal",
        torch.from_numpy(logits),
        torch.tensor([0, 0]),
        hessian=True,
        reduction="sum",
        sample_weight=torch.from_numpy(weight),
        gamma=2.0,
    ).hessian_diag
    assert raw is not None
    exact = raw.numpy()
    assert exact[0, 0] < 0.0
    floor = 1e-3

    def hess(policy: str) -> np.ndarray:
        objective = factory("focal", gamma=2.0, hessian_floor=floor, hessian_policy=policy)
        return np.asarray(objective(labels, logits, weight)[1])

    np.testing.assert_allclose(hess("exact"), exact)
    np.testing.assert_allclose(hess("clip"), np.maximum(exact, floor))
    np.testing.assert_allclose(hess("abs"), np.maximum(np.abs(exact), floor))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(hess("fisher"), np.maximum(p * (1 - p) * weight[:, None], floor))
    binary = factory("binary_cross_entropy", hessian_policy="fisher")
    scores = np.array([-30.0, 0.0, 2.0])
    sigmoid = 1 / (1 + np.exp(-scores))
    np.testing.assert_allclose(
        binary(np.array([1.0, 0.0, 1.0]), scores)[1], np.maximum(sigmoid * (1 - sigmoid), 1e-6)
    )
    with pytest.raises(ValueError, match="hessian_policy one of clip, abs, fisher, exact"):
        factory("focal", hessian_policy="newton")


def test_focal_with_floor_still_trains_on_confident_wrong_start(imbalanced_digits: Split) -> None:
    # init_score puts every sample confidently on a wrong class (3 on class y + 1, -3 on the
    # others), where focal's curvature is negative in two logits of every sample: the true
    # class's and the wrongly favoured class's. What the floor changes is checked where it
    # acts, on the Hessian handed to LightGBM in the first round (its raw scores are the
    # init_score then): unfloored, those negative values go to the booster as they are;
    # floored, they become the floor and the positive ones are left as is. How far
    # unfloored Newton steps get is up to LightGBM's leaf sums and regularisation, so it
    # is not asserted. The floor alone lets a leaf's Hessian sum be ~n * 1e-6, so the L2
    # penalty bounds the step (without it the scores run off to +-1e3).
    X_train, _, y_train, _ = imbalanced_digits
    rows = np.arange(len(y_train))
    favoured = (y_train + 1) % 3
    init = np.full((len(y_train), 3), -3.0)
    init[rows, favoured] = 3.0
    start = losses.derivatives(
        "focal",
        torch.from_numpy(init),
        torch.from_numpy(y_train),
        hessian=True,
        reduction="sum",
        gamma=2.0,
    ).hessian_diag
    assert start is not None
    raw = start.numpy()
    negative = np.zeros(raw.shape, dtype=bool)
    negative[rows, y_train] = True
    negative[rows, favoured] = True
    assert (raw[negative] < 0).all() and (raw[~negative] > 1e-6).all()

    def unfloored(preds: NDArray[Any], data: lgb.Dataset) -> tuple[NDArray[Any], NDArray[Any]]:
        d = losses.derivatives(
            "focal",
            torch.from_numpy(preds),
            torch.from_numpy(np.asarray(data.get_label(), dtype=np.int64)),
            hessian=True,
            reduction="sum",
            gamma=2.0,
        )
        assert d.hessian_diag is not None
        return d.grad.numpy(), d.hessian_diag.numpy()

    def recording(objective: Any, sink: list[NDArray[Any]]) -> Any:
        def wrapped(preds: NDArray[Any], data: lgb.Dataset) -> tuple[NDArray[Any], NDArray[Any]]:
            grad, hess = objective(preds, data)
            sink.append(np.array(hess, copy=True))
            return grad, hess

        return wrapped

    floor = 1e-6  # lightgbm_objective's default
    handed: dict[str, list[NDArray[Any]]] = {"floored": [], "unfloored": []}
    boosters = {}
    for name, objective, rounds in (
        ("floored", lightgbm_objective("focal", gamma=2.0), ROUNDS),
        ("unfloored", unfloored, 1),
    ):
        params = {
            "objective": recording(objective, handed[name]),
            "num_class": 3,
            "num_leaves": 8,
            "lambda_l2": 1.0,
        }
        boosters[name] = lgb.train(
            params | {"verbose": -1, "num_threads": 1},
            lgb.Dataset(X_train, y_train, init_score=init),
            rounds,
        )
    first_unfloored, first_floored = handed["unfloored"][0], handed["floored"][0]
    np.testing.assert_allclose(first_unfloored, raw)
    assert (first_unfloored[negative] < 0).all()
    np.testing.assert_allclose(first_floored, np.maximum(raw, floor))
    assert (first_floored[negative] == floor).all()
    assert len(handed["floored"]) == ROUNDS
    assert all(bool((h >= floor).all()) for h in handed["floored"])
    trained = boosters["floored"].predict(X_train, raw_score=True) + init
    assert (trained.argmax(axis=1) == y_train).mean() > 0.95


# --------------------------------------------------------------------------- errors etc.


def _throwaway_spec(name: str, fn: Any, tasks: frozenset[Task]) -> LossSpec:
    class _NoParams(Params):
        pass

    class _Module(LossModule):
        function = staticmethod(fn)
        params_model = _NoParams
        loss_name = name

    return LossSpec(
        name=name,
        function=fn,
        module=_Module,
        params=_NoParams,
        tasks=tasks,
        summary="test",
        formula="0",
        reference="none",
        when_to_use="never",
        coupling=per_sample,
    )


@pytest.fixture
def multilabel_only_loss() -> Iterator[str]:
    """A throwaway multilabel-only loss in the registry, removed afterwards."""

    def _fn(logits: torch.Tensor, targets: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return logits.sum()

    spec = REGISTRY.register(
        _throwaway_spec("_gbdt_test_multilabel_only", _fn, frozenset({Task.MULTILABEL}))
    )
    yield spec.name
    REGISTRY.unregister(spec.name)


def test_non_finite_derivatives_raise() -> None:
    # sqrt(x) has a NaN derivative at x < 0: the objective refuses to hand NaN to a booster.
    def _fn(logits: torch.Tensor, targets: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.sqrt(logits).sum()

    spec = _throwaway_spec("_gbdt_test_sqrt", _fn, frozenset({Task.BINARY}))
    obj = lightgbm_objective(spec)
    grad, _ = obj(np.array([0.0, 1.0]), np.array([1.0, 4.0]))
    np.testing.assert_allclose(grad, [0.5, 0.25])  # 1 / (2 sqrt x)
    with pytest.raises(ValueError, match="finite derivatives of loss '_gbdt_test_sqrt'"):
        obj(np.array([0.0, 1.0]), np.array([-1.0, 4.0]))


def test_zero_weight_samples_get_zero_gradient_and_the_floor() -> None:
    # A zero-weight sample adds nothing to the summed loss: gradient 0, Hessian 0 -> floor;
    # the others are as if it were absent. (Its logits are confidently right, where the
    # softmax's double backward would otherwise meet an all-zero upstream gradient.)
    logits = np.array([[0.3, -0.2, 0.1], [60.0, 0.0, 0.0], [-1.0, 0.5, 2.0]])
    labels = np.array([1.0, 0.0, 2.0])
    weight = np.array([2.0, 0.0, 0.5])
    obj = lightgbm_objective("focal", gamma=2.0)
    grad, hess = obj(labels, logits, weight)
    np.testing.assert_array_equal(grad[1], 0.0)
    np.testing.assert_array_equal(hess[1], 1e-6)
    keep = [0, 2]
    sub_grad, sub_hess = obj(labels[keep], logits[keep], weight[keep])
    np.testing.assert_allclose(grad[keep], sub_grad, rtol=1e-12)
    np.testing.assert_allclose(hess[keep], sub_hess, rtol=1e-12)
    with pytest.raises(ValueError, match="sample_weight to be finite and >= 0"):
        obj(labels, logits, -weight)


@pytest.mark.parametrize("factory", [lightgbm_objective, xgboost_objective])
def test_multilabel_only_loss_is_refused(factory: Any, multilabel_only_loss: str) -> None:
    with pytest.raises(ValueError, match="binary or multiclass targets, got '_gbdt_test_multi"):
        factory(multilabel_only_loss)


def test_multiclass_only_loss_refuses_binary_scores() -> None:
    obj = lightgbm_objective("focal")
    with pytest.raises(ValueError, match=r"supports \(multiclass\), got binary raw scores"):
        obj(np.array([0.0, 1.0]), np.zeros(2))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: lightgbm_objective("focl"), ValueError, "Did you mean 'focal'"),
        (lambda: lightgbm_objective("focal", hessian_floor=0.0), ValueError, "hessian_floor"),
        (lambda: xgboost_objective("focal", hessian_floor=-1.0), ValueError, "hessian_floor"),
        (
            lambda: xgboost_objective("focal", hessian_floor=float("nan")),
            ValueError,
            "hessian_floor",
        ),
        (lambda: lightgbm_objective("focal", gamma=-1.0), LossParameterError, "gamma"),
        (lambda: lightgbm_objective("focal", gama=1.0), LossParameterError, "unknown parameter"),
        (lambda: lightgbm_objective("dice", scope="batch"), ValueError, "couple the whole batch"),
        (
            lambda: lightgbm_objective("focal")(np.array([0.0, 1.5]), np.zeros((2, 3))),
            ValueError,
            "integer class labels",
        ),
        (
            lambda: lightgbm_objective("focal")(np.array([0.0, 3.0]), np.zeros((2, 3))),
            ValueError,
            r"class indices in \[0, 2\]",
        ),
        (
            lambda: lightgbm_objective("focal")(None, np.zeros((2, 3))),
            ValueError,
            "labels as an array, got None",
        ),
        (
            lambda: lightgbm_objective("focal")(np.zeros(3), np.zeros((2, 3))),
            ValueError,
            r"labels \(n,\) with raw scores",
        ),
    ],
)
def test_bad_arguments_raise(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_grad_hess_matches_registry_derivatives_and_keeps_shape() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    weight = torch.tensor([1.0, 2.0, 0.5, 1.0, 0.25, 3.0], dtype=torch.float64)
    ref = losses.derivatives(
        "focal", logits, labels, hessian=True, reduction="sum", sample_weight=weight, gamma=1.5
    )
    assert ref.hessian_diag is not None
    obj: GBDTObjective = xgboost_objective("focal", gamma=1.5, hessian_floor=1e-9)
    grad, hess = obj(
        labels.numpy().astype(np.float32), logits.numpy(), sample_weight=weight.numpy()
    )
    assert grad.shape == hess.shape == (6, 4)
    np.testing.assert_allclose(grad, ref.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(hess, np.maximum(ref.hessian_diag.numpy(), 1e-9), rtol=1e-12)
    assert "focal" in repr(obj) and "gamma=1.5" in repr(obj)
