r"""Custom objectives for LightGBM and XGBoost from any binary or multiclass registry loss.

A gradient-boosting library fits each tree to the per-sample gradient ``g`` and Hessian
diagonal ``h`` of the *summed* loss with respect to the raw scores (the logits), and sets
each leaf to the Newton step

.. math::
    w_{\text{leaf}} = -\frac{\sum_{i \in \text{leaf}} g_i}{\sum_{i \in \text{leaf}} h_i + \lambda}.

The adapters here compute ``g`` and ``h`` with :func:`losses.derivatives`
(``reduction="sum"``, exact Hessian diagonal by double backward, in float64), for any
registered loss whose tasks include binary or multiclass:

- binary: raw scores ``(n,)``, labels 0/1 (or soft in ``[0, 1]`` where the loss allows);
- multiclass: raw scores ``(n, K)``, integer labels in ``[0, K)``; ``g`` and ``h`` come
  back ``(n, K)``, the layout LightGBM 4 and XGBoost 2+ expect.

**Hessian policy.** ``hessian_policy`` says what the boosting library gets where the
exact diagonal ``h`` is not positive:

- ``"clip"`` (default): ``max(h, hessian_floor)``. Where the loss is locally convex the
  leaf takes the exact Newton step; elsewhere the floor keeps it a descent step. The
  default because it changes nothing where the exact curvature is usable.
- ``"abs"``: ``max(|h|, hessian_floor)``: a concave region's curvature magnitude kept
  (a saddle-free Newton step), not replaced by the floor.
- ``"fisher"``: ``max(F, hessian_floor)`` with ``F`` the Fisher information of the
  softmax (sigmoid) at the raw scores, ``p_c (1 - p_c)`` (cross-entropy's own
  curvature), times the sample weight: always positive, independent of the loss, so the
  leaf step ``-G / (F + lambda)`` is a natural-gradient step of the loss.
- ``"exact"``: ``h`` as it is, negative values included (for checking, or for a library
  that handles them).

Not every loss is convex in the logits: the focal loss's Hessian diagonal is negative for
confident-wrong samples, and piecewise-linear losses (hinge) have ``h = 0``. A leaf whose
summed Hessian is zero or negative gives a Newton step ``-G / (H + \lambda)`` that blows up
(``H + \lambda \to 0``) or points uphill (``H + \lambda < 0`` flips its sign), so training
stalls or diverges. The floor keeps every step a descent step. Where the floor is what
remains (``H \approx n_{\text{leaf}} \cdot \text{floor}``) the step is a large gradient
step, so for non-convex or flat losses set an L2 penalty (LightGBM ``lambda_l2``, default
0; XGBoost ``reg_lambda``, default 1) or raise the floor.

Example:
    >>> import numpy as np
    >>> from losses.gbdt import lightgbm_objective
    >>> fobj = lightgbm_objective("focal", gamma=2.0)
    >>> grad, hess = fobj(np.array([0, 2]), np.zeros((2, 3)))  # (y_true, y_pred)
    >>> grad.shape, hess.shape
    ((2, 3), (2, 3))
    >>> bool(np.allclose(grad.sum(axis=1), 0.0))  # softmax: gradients sum to 0 per sample
    True

    With LightGBM and XGBoost (``pip install lossserve[gbdt]``); raw scores are logits, so
    predict them with ``raw_score=True`` / ``output_margin=True`` and apply the softmax or
    sigmoid yourself::

        model = lightgbm.LGBMClassifier(objective=lightgbm_objective("focal", gamma=2.0))
        model.fit(X, y)
        logits = model.predict(X, raw_score=True)
        booster = lightgbm.train({"objective": fobj, "num_class": 3}, lightgbm.Dataset(X, y))
        booster = xgboost.train({"num_class": 3}, xgboost.DMatrix(X, label=y),
                                obj=xgboost_objective("focal", gamma=2.0))
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from ._catalog import REGISTRY
from ._derivatives import derivatives_for
from ._registry import Coupling, LossSpec
from ._validation import Task

__all__ = [
    "HESSIAN_POLICIES",
    "GBDTObjective",
    "LightGBMObjective",
    "XGBoostObjective",
    "lightgbm_objective",
    "xgboost_objective",
]

_GBDT_TASKS = frozenset({Task.BINARY, Task.MULTICLASS})
HessianPolicy = Literal["clip", "abs", "fisher", "exact"]
HESSIAN_POLICIES: tuple[HessianPolicy, ...] = ("clip", "abs", "fisher", "exact")
"""What a GBDT objective hands over where the Hessian diagonal is not positive (module
docstring); ``clip`` is the default."""


def _expit(z: Array) -> Array:
    out: Array = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, no overflow
    return out


Array = NDArray[np.float64]


class GBDTObjective:
    """Per-sample gradient and floored Hessian diagonal of a registry loss, as numpy float64.

    Use the library-specific subclasses (:func:`lightgbm_objective`,
    :func:`xgboost_objective`); both are called the same two ways:
    ``objective(y_true, y_pred[, sample_weight])`` (the scikit-learn APIs) and
    ``objective(preds, dataset)`` (``lightgbm.train`` / ``xgboost.train``, labels and
    weights read from the ``Dataset`` / ``DMatrix``).
    """

    library: ClassVar[str] = "a gradient-boosting library"

    def __init__(
        self,
        loss: str | LossSpec,
        *,
        hessian_floor: float = 1e-6,
        hessian_policy: HessianPolicy = "clip",
        **params: Any,
    ) -> None:
        spec = loss if isinstance(loss, LossSpec) else REGISTRY[loss]
        if hessian_policy not in HESSIAN_POLICIES:
            raise ValueError(
                f"Expected hessian_policy one of {', '.join(HESSIAN_POLICIES)}, got "
                f"{hessian_policy!r}"
            )
        if not spec.tasks & _GBDT_TASKS:
            supported = ", ".join(sorted(t.value for t in spec.tasks))
            raise ValueError(
                f"Expected a loss for binary or multiclass targets, got {spec.name!r}, which "
                f"supports {supported} only: {self.library} boosts one raw score per sample "
                "(binary) or one per class (multiclass)"
            )
        is_number = isinstance(hessian_floor, (int, float)) and not isinstance(hessian_floor, bool)
        if not (is_number and math.isfinite(hessian_floor) and hessian_floor > 0):
            raise ValueError(f"Expected hessian_floor finite and > 0, got {hessian_floor!r}")
        validated = spec.validate(params)  # a bad parameter fails now, not at round one
        if all(spec.coupling(validated, t) is Coupling.BATCH for t in spec.tasks & _GBDT_TASKS):
            raise ValueError(
                f"Expected a loss that is a sum of per-sample terms, got {spec.name!r} with "
                f"parameters {params!r} that couple the whole batch: each sample's share "
                "of a batch-level overlap shrinks as 1/n and its curvature as 1/n^2, below "
                "any Hessian floor, so leaves would take unscaled gradient steps; choose "
                "per-sample parameters (e.g. scope='sample')"
            )
        self.spec = spec
        self.hessian_floor = float(hessian_floor)
        self.hessian_policy = hessian_policy
        self.params = dict(params)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        extra = f", {items}" if items else ""
        return (
            f"{type(self).__name__}({self.spec.name!r}, hessian_floor={self.hessian_floor!r}, "
            f"hessian_policy={self.hessian_policy!r}{extra})"
        )

    def __call__(
        self, y_true: ArrayLike | None, y_pred: Any, sample_weight: ArrayLike | None = None
    ) -> tuple[Array, Array]:
        """``(y_true, y_pred[, sample_weight])`` or ``(preds, dataset)`` -> ``(grad, hess)``.

        ``y_true`` admits ``None`` in its type only because LightGBM's callable type does;
        ``None`` labels raise ``ValueError``.
        """
        if hasattr(y_pred, "get_label") and hasattr(y_pred, "get_weight"):
            # lightgbm.train / xgboost.train: (preds, Dataset | DMatrix)
            return self.grad_hess(y_pred.get_label(), y_true, y_pred.get_weight())
        return self.grad_hess(y_true, y_pred, sample_weight)

    def grad_hess(
        self,
        labels: ArrayLike | None,
        raw_scores: ArrayLike | None,
        sample_weight: ArrayLike | None = None,
    ) -> tuple[Array, Array]:
        """Gradient and floored Hessian diagonal of the summed loss w.r.t. ``raw_scores``.

        Args:
            labels: ``(n,)``: 0/1 for binary, integer class indices for multiclass (as
                floats is fine, the GBDT libraries store labels as floats).
            raw_scores: ``(n,)`` (or ``(n, 1)``) for binary, ``(n, K)`` for multiclass.
            sample_weight: ``(n,)`` non-negative weights; ``None`` or empty for none.

        Returns:
            ``(grad, hess)``, float64, shaped as ``raw_scores``; ``hess >= hessian_floor``
            unless the policy is ``"exact"``.

        Raises:
            ValueError: shapes that fit neither task, a task the loss does not support,
                non-integer multiclass labels, labels the loss refuses, non-finite
                derivatives.
        """
        if labels is None or raw_scores is None:
            missing = "labels" if labels is None else "raw scores"
            raise ValueError(f"Expected {missing} as an array, got None")
        scores = np.asarray(raw_scores, dtype=np.float64)
        y = np.asarray(labels)
        if y.ndim != 1 or scores.ndim not in (1, 2) or scores.shape[0] != y.shape[0]:
            raise ValueError(
                f"Expected labels (n,) with raw scores (n,) for binary or (n, K) for "
                f"multiclass, got labels {y.shape} and raw scores {scores.shape}"
            )
        binary = scores.ndim == 1 or scores.shape[1] == 1
        task = Task.BINARY if binary else Task.MULTICLASS
        self._check_task(task, scores.shape)
        logits = torch.from_numpy(scores.reshape(-1) if binary else scores)
        if binary:
            targets = torch.from_numpy(y.astype(np.float64))
        else:
            if not np.array_equal(y, np.round(y)):
                raise ValueError(
                    "Expected integer class labels for multiclass raw scores "
                    f"{scores.shape}, got non-integer values"
                )
            targets = torch.from_numpy(y.astype(np.int64))
        weight = _sample_weight(sample_weight, y.shape[0])
        grad_t, hess_t = self._derivatives(logits, targets, weight)
        grad = grad_t.numpy().reshape(scores.shape)
        hess = hess_t.numpy().reshape(scores.shape)
        if not (np.isfinite(grad).all() and np.isfinite(hess).all()):
            raise ValueError(
                f"Expected finite derivatives of loss {self.spec.name!r}, got NaN or inf for "
                f"raw scores in [{scores.min()}, {scores.max()}]"
            )
        return grad, self._apply_policy(hess, scores, binary, weight)

    def _apply_policy(
        self, hess: Array, scores: Array, binary: bool, weight: torch.Tensor | None
    ) -> Array:
        """The Hessian the library gets, by :attr:`hessian_policy` (module docstring)."""
        if self.hessian_policy == "exact":
            return hess
        if self.hessian_policy == "abs":
            hess = np.abs(hess)
        elif self.hessian_policy == "fisher":
            if binary:
                flat = scores.reshape(-1)
                fisher = _expit(flat) * _expit(-flat)
            else:
                shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
                p = shifted / shifted.sum(axis=1, keepdims=True)
                fisher = p * (1.0 - p)
            if weight is not None:
                w = weight.numpy()
                fisher = fisher * (w if binary else w[:, None])
            hess = fisher.reshape(scores.shape)
        return np.maximum(hess, self.hessian_floor)

    def _derivatives(
        self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradient and raw Hessian diagonal; zero-weight samples get exact zeros.

        Zero-weight samples add nothing to the summed loss, so their derivatives are 0 and
        they are left out of the computation (the loss is a sum of per-sample terms: batch
        coupling is refused). This also keeps them away from double-backward paths whose
        all-zero upstream gradient turns into NaN (``torch.logcumsumexp``).
        """
        if weight is not None and not bool((weight > 0).all()):
            active = weight > 0
            grad = torch.zeros_like(logits)
            hess = torch.zeros_like(logits)
            if bool(active.any()):
                grad[active], hess[active] = self._derivatives(
                    logits[active], targets[active], weight[active]
                )
            return grad, hess
        fisher = self.hessian_policy == "fisher"  # needs no Hessian of the loss
        derivs = derivatives_for(
            self.spec,
            logits,
            targets,
            hessian=not fisher,
            reduction="sum",
            sample_weight=weight,
            **self.params,
        )
        if fisher:
            return derivs.grad, torch.zeros_like(derivs.grad)  # replaced by the policy
        if derivs.hessian_diag is None:  # derivatives_for returns it when hessian=True
            raise RuntimeError("Expected a Hessian diagonal from derivatives_for, got None")
        return derivs.grad, derivs.hessian_diag

    def _check_task(self, task: Task, shape: tuple[int, ...]) -> None:
        if task in self.spec.tasks:
            return
        supported = ", ".join(sorted(t.value for t in self.spec.tasks))
        if task is Task.BINARY:
            hint = (
                "use a binary loss (e.g. binary_cross_entropy, sigmoid_focal) or train a "
                "2-class multiclass model (num_class=2)"
            )
        else:
            hint = "use a multiclass loss (e.g. cross_entropy, focal)"
        raise ValueError(
            f"Expected raw scores for a task that loss {self.spec.name!r} supports "
            f"({supported}), got {task.value} raw scores {shape}: {hint}"
        )


def _sample_weight(sample_weight: ArrayLike | None, n: int) -> torch.Tensor | None:
    """``(n,)`` finite non-negative float64 weights, or ``None`` (none given, or empty)."""
    if sample_weight is None:
        return None
    weight = np.asarray(sample_weight, dtype=np.float64)
    if weight.size == 0:  # xgboost's DMatrix.get_weight() without weights
        return None
    if weight.shape != (n,):
        raise ValueError(f"Expected sample_weight of shape ({n},), got {weight.shape}")
    if not (np.isfinite(weight).all() and (weight >= 0).all()):
        raise ValueError("Expected sample_weight to be finite and >= 0, got other values")
    return torch.from_numpy(weight)


class LightGBMObjective(GBDTObjective):
    """A LightGBM custom objective; see :func:`lightgbm_objective`."""

    library = "LightGBM"


class XGBoostObjective(GBDTObjective):
    """An XGBoost custom objective; see :func:`xgboost_objective`."""

    library = "XGBoost"


def lightgbm_objective(
    loss: str | LossSpec,
    *,
    hessian_floor: float = 1e-6,
    hessian_policy: HessianPolicy = "clip",
    **params: Any,
) -> LightGBMObjective:
    """A LightGBM custom objective for the registry loss ``loss`` with ``params``.

    One object, two calling conventions (LightGBM 4.x):

    - scikit-learn API, ``LGBMClassifier(objective=obj)``: ``obj(y_true, y_pred, weight)``
      (the wrapper passes ``weight`` because the signature has three parameters);
    - ``lightgbm.train(params={"objective": obj, "num_class": K}, ...)``:
      ``obj(preds, train_data)``, weights from ``train_data.get_weight()``.

    Multiclass ``y_pred`` is ``(n, K)`` and the gradient and Hessian are returned
    ``(n, K)`` (LightGBM ravels them in Fortran order itself). A custom objective starts
    from raw score 0 (no ``boost_from_average``) and the model's predictions are raw
    scores: call ``predict(X, raw_score=True)``.

    Args:
        loss: a registry name (or a :class:`~losses.LossSpec`) whose tasks include binary
            or multiclass.
        hessian_floor: ``> 0``; the Hessian handed to LightGBM is ``max(h, floor)``
            element-wise, so that every Newton step ``-G / (H + lambda)`` is a finite
            descent step even where the loss is not convex (focal on confident-wrong
            samples) or flat (``h = 0``). Default ``1e-6``.
        hessian_policy: ``"clip"`` (default), ``"abs"``, ``"fisher"`` or ``"exact"``:
            what to hand over where ``h`` is not positive (the module docstring).
        **params: the loss's parameters, validated now against its schema.

    Raises:
        ValueError: an unknown loss (with a did-you-mean hint), a multilabel-only loss, a
            bad ``hessian_floor`` or parameter.
    """
    return LightGBMObjective(
        loss, hessian_floor=hessian_floor, hessian_policy=hessian_policy, **params
    )


def xgboost_objective(
    loss: str | LossSpec,
    *,
    hessian_floor: float = 1e-6,
    hessian_policy: HessianPolicy = "clip",
    **params: Any,
) -> XGBoostObjective:
    """An XGBoost custom objective for the registry loss ``loss`` with ``params``.

    One object, two calling conventions (XGBoost 2.x/3.x):

    - ``xgboost.train(params, dtrain, obj=obj)``: ``obj(predt, dtrain)``, labels and
      weights from the ``DMatrix`` (an empty weight array means none);
    - scikit-learn API, ``XGBClassifier(objective=obj)``: ``obj(y_true, y_pred)`` or, when
      fitted with weights, ``obj(y_true, y_pred, sample_weight=w)``.

    Multiclass ``predt`` is ``(n, K)`` (set ``num_class``) and the gradient and Hessian are
    returned ``(n, K)``, the shape XGBoost requires since 2.1. Predict raw scores with
    ``output_margin=True``. ``xgboost.train`` with a custom objective keeps the default
    objective ``reg:squarederror``, whose ``base_score`` (0.5) is a raw margin: pass
    ``base_score=0`` (or a ``base_margin``) to start from logit 0, as ``XGBClassifier``
    does (it reads ``base_score`` as a probability under ``binary:logistic``).

    Args:
        loss: a registry name (or a :class:`~losses.LossSpec`) whose tasks include binary
            or multiclass.
        hessian_floor: ``> 0``; the Hessian handed to XGBoost is ``max(h, floor)``
            element-wise (see :func:`lightgbm_objective` for why). Default ``1e-6``.
        hessian_policy: as for :func:`lightgbm_objective`.
        **params: the loss's parameters, validated now against its schema.

    Raises:
        ValueError: an unknown loss (with a did-you-mean hint), a multilabel-only loss, a
            bad ``hessian_floor`` or parameter.
    """
    return XGBoostObjective(
        loss, hessian_floor=hessian_floor, hessian_policy=hessian_policy, **params
    )
