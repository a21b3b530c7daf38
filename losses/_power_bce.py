"""Power BCE (binary, multilabel): binary cross-entropy on ``q = sigmoid(x)^n``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ._chunks import curvature_by_rows
from ._fused import fused
from ._reduction import Reduction, reduce_loss, scaled_derivatives
from ._registry import LossModule, LossSpec, element_wise
from ._stable import log_sigmoid
from ._validation import Params, Task, check_params, prepare

__all__ = ["PowerBCELoss", "PowerBCEParams", "power_bce_hessian_diagonal", "power_bce_loss"]

NAME = "power_bce"
TASKS = frozenset({Task.BINARY, Task.MULTILABEL})

# Above this logit log(softplus(-x)) = -x + r(exp(-x)) takes the series of r; below, the
# direct form, whose second derivative (a difference of two O(1) terms) loses relative
# accuracy as 4 eps / exp(-x): 5e-14 in float64 and 3e-5 in float32 at the switch.
_X_SWITCH = 4.0
# r(u) = log(log1p(u) / u) = sum_k c_k u^k; after u^10 the remainder is below 3e-17
# relative in value and first two derivatives for u <= exp(-4).
_R_COEFFS = (
    -1.0 / 2.0,
    5.0 / 24.0,
    -1.0 / 8.0,
    251.0 / 2880.0,
    -19.0 / 288.0,
    19087.0 / 362880.0,
    -751.0 / 17280.0,
    1070017.0 / 29030400.0,
    -2857.0 / 89600.0,
    26842253.0 / 958003200.0,
)
# Below this z = n * softplus(-x), log(1 - exp(-z)) is log(z) plus its Taylor series (for
# the curvature and a double backward); above it log1p(-exp(-z)), whose second derivative
# would lose relative accuracy as 2 eps / z below.
_Z_SWITCH = 0.1
_LOG_2 = math.log(2.0)
# Past this logit log(1 - sigmoid(x)^n) is log n - x to within e^{-60} relative.
_X_ASYMPTOTE = 60.0
# Below this n, z = n softplus(-x) can leave float32's normal range before x reaches 60:
# the forward then takes the series of _terms too.
_N_DIRECT = 1e-10
# phi(z) = log((1 - e^{-z}) / z) = -z/2 + log(sinh(z/2) / (z/2)): the even coefficients
# 2^{2k} B_{2k} / (2k (2k)!) / 2^{2k} for z^2 .. z^10; the remainder is below 1e-22 in
# value and 1e-18 in the second derivative for z <= 0.1.
_PHI_EVEN_COEFFS = (
    1.0 / 24.0,
    -1.0 / 2880.0,
    1.0 / 181440.0,
    -1.0 / 9676800.0,
    1.0 / 479001600.0,
)


# the coefficients of r'(u), r''(u) (r(u) = sum_k R[k] u^(k+1)) and of phi'(z) / z, phi''(z)
# as polynomials in z^2 (phi(z) = -z/2 + sum_j PHI[j] z^(2j+2))
_R1_COEFFS = tuple((k + 1) * c for k, c in enumerate(_R_COEFFS))
_R2_COEFFS = tuple((k + 2) * (k + 1) * c for k, c in enumerate(_R_COEFFS[1:]))
_PHI1_COEFFS = tuple(2 * (j + 1) * c for j, c in enumerate(_PHI_EVEN_COEFFS))
_PHI2_COEFFS = tuple(2 * (j + 1) * (2 * j + 1) * c for j, c in enumerate(_PHI_EVEN_COEFFS))


class PowerBCEParams(Params):
    """Parameters of :func:`power_bce_loss`."""

    n: float = Field(
        2.0, gt=0.0, le=100.0, description="Power of the probability, q = sigmoid(x)^n; 1 is BCE."
    )


def power_bce_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    n: float = 2.0,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Power BCE: binary cross-entropy on the probability raised to a power, ``q = sigmoid(x)^n``.

    .. math::
        \ell = -\left[y\, n \log \sigma(x) + (1 - y) \log\left(1 - \sigma(x)^n\right)\right]

    The "p^n" trick: ``q = sigmoid(x)^n`` is a skewed link. With ``n > 1`` a positive with a
    negative logit costs about ``n |x|`` (``n`` times BCE's slope) while a negative with a
    positive logit keeps BCE's slope (``x - log n``), so missed rare positives weigh more. It
    is the power-logit link of binary regression (Prentice, "A generalization of the probit
    and logit methods for dose response curves", Biometrics 32, 1976; no arXiv id).

    Args:
        logits: ``(N,)`` binary or ``(N, C)`` multilabel logits. Half precision is computed in
            float32 and the loss is returned in float32.
        targets: the logits' shape, values in ``[0, 1]`` (soft targets allowed).
        n: the power, ``0 < n <= 100``; default 2.
        reduction: ``"mean"`` (over elements, weighted by ``sample_weight``), ``"sum"`` or
            ``"none"`` (the logits' shape, one value per element).
        sample_weight: optional ``(N,)`` non-negative weights, broadcast over classes.

    Returns:
        The loss: a scalar, or the logits' shape for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, targets outside ``[0, 1]``, ``n`` out of its range.
        TypeError: non-floating logits.

    Example:
        >>> # x = 0: q = (1/2)^2 = 1/4, so a positive costs log 4 and a negative -log(3/4)
        >>> loss = power_bce_loss(torch.zeros(2), torch.tensor([1.0, 0.0]), reduction="none")
        >>> [round(v, 6) for v in loss.tolist()]
        [1.386294, 0.287682]

    Note:
        ``n = 1`` is binary cross-entropy. ``log(1 - sigmoid(x)^n)`` is computed in log space
        from ``z = -n logsigmoid(x)`` (``log expm1(z) - z`` or ``log1p(-e^{-z})``, and for
        the second derivative a series once ``z`` is below 0.1), and ``log sigmoid`` in a
        form whose double backward does not cancel, so value, gradient and second
        derivative are finite at logits of ``±1e4`` and within about 1e-13 relative in
        float64 everywhere, across the switches included; for large ``x`` the loss follows
        the asymptote ``log n - x``.
    """
    check_params(NAME, PowerBCEParams, {"n": n})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)
    x, y = inputs.logits, inputs.targets

    def compute(z: Tensor, tracked: bool, t: Tensor) -> tuple[Tensor, Tensor]:
        if tracked or n < _N_DIRECT:
            terms = _terms(z, n, tracked)
            log_p, q, negative, negative_slope = terms.log_p, terms.q, terms.value, terms.slope
        else:
            log_p, q, negative, negative_slope = _direct_terms(z, n)
        return _mixed(log_p * n, negative, t), _mixed(q * n, negative_slope, t)

    return reduce_loss(fused(x, compute, y), reduction, inputs.sample_weight)


@dataclass(frozen=True)
class _Terms:
    """``log p``, ``p``, ``q`` (for a positive's ``n log p``) and a negative's term ``L =
    log(1 - sigmoid(x)^n)`` with its first two derivatives in ``x`` (the second only when
    asked), finite and accurate at any logit.

    With ``s = softplus(-x)`` and ``z = n s`` (so ``sigmoid(x)^n = exp(-z)``), ``z' = -n q``
    and ``z'' = n p q``:

    - ``z >= 0.1``: ``L = log1p(-e^{-z})``, ``L' = -n q a``, ``L'' = a n q (p - (1 + a) n
      q)``, ``a = 1 / expm1(z) = e^{-z} / (1 - e^{-z})``;
    - ``z < 0.1`` (:func:`_series`): ``L = log n + log s + phi(z)``, ``L' = (log s)' - n q
      phi'(z)``, ``L'' = (log s)'' + phi''(z) n^2 q^2 + phi'(z) n p q``.

    The first form is computed for every element (``z`` clamped to its domain); the series
    only for the elements it serves, written over them: most logits take the first form,
    and evaluating three polynomials everywhere cost more than all the rest.
    """

    log_p: Tensor
    p: Tensor
    q: Tensor
    value: Tensor
    slope: Tensor
    curvature: Tensor | None


def _terms(x: Tensor, n: float, tracked: bool, *, curvature: bool = False) -> _Terms:
    """:class:`_Terms` of ``x``; ``tracked``: with derivatives accurate for a double
    backward (``log_sigmoid``). With ``z >= 0.1``, ``1 - e^{-z}`` is at least 0.095, so
    ``log1p(-e^{-z})`` loses at most ten rounding errors of ``e^{-z}``: no ``log1mexp``
    switch (a ``torch.where``) is needed."""
    log_p = log_sigmoid(x) if tracked else F.logsigmoid(x)
    p, q = torch.exp(log_p), torch.exp(log_p - x)
    z = -n * log_p
    z_far = z.clamp(min=_Z_SWITCH)
    power = torch.exp(-z_far)  # sigmoid(x)^n
    rest = -torch.expm1(-z_far)  # 1 - sigmoid(x)^n, at least 0.095
    value = torch.log1p(-power)
    a = power / rest
    nq = n * q
    slope = -nq * a
    bend = a * nq * (p - (1.0 + a) * nq) if curvature else None
    where = (z < _Z_SWITCH).nonzero(as_tuple=True)
    if where[0].numel():
        near = _series(x[where], p[where], q[where], z[where], n, tracked, curvature=curvature)
        value = value.index_put(where, near[0])
        slope = slope.index_put(where, near[1])
        if bend is not None and near[2] is not None:
            bend = bend.index_put(where, near[2])
    return _Terms(log_p, p, q, value, slope, bend)


def _direct_terms(x: Tensor, n: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``log p``, ``q`` and a negative's ``L = log(1 - sigmoid(x)^n)`` with ``L'``, without
    a graph and without the series of :func:`_terms` (which serve the second derivative and
    a double backward): with ``z = n softplus(-x)`` and ``E = expm1(z)``, ``L' = -n q / E``
    at every ``z``, and ``L = log E - z`` while ``z <= log 2`` (``E`` is accurate, and
    ``|L| >= log 2``), ``log1p(-e^{-z})`` above (no cancellation there). Past ``x = 60``
    (where ``softplus(-x)`` nears underflow in float32) ``L = log n - x`` and ``L' = -1``
    to within ``e^{-60}`` relative (a ``torch.where``, in the rare blocks that have such a
    logit). The two forms of ``L`` are mixed by ``torch.lerp`` with 0/1 weights (exact),
    each fed values clamped into its own domain. For ``n`` below ``_N_DIRECT`` the caller
    takes :func:`_terms`: ``z`` could leave float32's normal range before ``x = 60``."""
    log_p = F.logsigmoid(x)
    q = torch.sub(log_p, x).exp_()
    z = log_p.mul(-n)
    z_near = z.clamp(max=_LOG_2)
    rise = torch.expm1(z_near).clamp_(min=torch.finfo(x.dtype).tiny)  # e^z - 1
    power = z.clamp(min=_LOG_2).neg_().exp_()  # e^{-z}, at most 1/2
    is_near = (z <= _LOG_2).to(x.dtype)
    value = torch.lerp(torch.neg(power).log1p_(), rise.log().sub_(z_near), is_near)
    slope = torch.lerp(power / torch.rsub(power, 1.0), rise.reciprocal_(), is_near)
    slope.mul_(q).mul_(-n)  # -n q / expm1(z)
    if x.numel() and bool(x.max() > _X_ASYMPTOTE):  # rare: no pass when there is none
        huge = x > _X_ASYMPTOTE
        value = torch.where(huge, torch.rsub(x, math.log(n)), value)
        slope = torch.where(huge, -1.0, slope)
    return log_p, q, value, slope


def _mixed(positive: Tensor, negative: Tensor, y: Tensor) -> Tensor:
    """``-(y positive + (1 - y) negative)``: ``torch.lerp`` is exact at 0/1 targets, and
    as accurate for soft ones (both terms of the value share a sign)."""
    return torch.lerp(negative, positive, y).neg_()


def _series(
    x: Tensor, p: Tensor, q: Tensor, z: Tensor, n: float, tracked: bool, *, curvature: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """``L``, ``L'`` and ``L''`` where ``z < 0.1``: ``log(1 - e^{-z})`` is ``log z`` plus
    ``phi(z) = log((1 - e^{-z}) / z) = -z/2 + z^2/24 - z^4/2880 + ...``, so for large ``x``
    it follows the asymptote ``log n - x`` and a tiny ``n`` stays finite. ``log s``: direct
    (``(log s)' = -q / s``, ``(log s)'' = q (p s - q) / s^2``) up to ``x = 4``; above, with
    ``u = e^{-x}``, ``-x + r(u)`` (``-1 - u r'(u)``, ``u r'(u) + u^2 r''(u)``), which never
    forms ``softplus(-x)`` (it underflows) nor divides by it. Each ``torch.where`` branch is
    fed logits clamped into its own domain."""
    far = x > _X_SWITCH
    x_near, x_far = x.clamp(max=_X_SWITCH), x.clamp(min=_X_SWITCH)
    u = torch.exp(-x_far)
    r1 = _poly(_R1_COEFFS, u)
    log_p_near = log_sigmoid(x_near) if tracked else F.logsigmoid(x_near)
    s_near = -log_p_near
    q_near = torch.exp(log_p_near - x_near)
    log_s = torch.where(far, -x_far + u * _poly(_R_COEFFS, u), torch.log(s_near))
    log_s1 = torch.where(far, -1.0 - u * r1, -q_near / s_near)
    z2 = z * z
    phi = -z / 2 + z2 * _poly(_PHI_EVEN_COEFFS, z2)
    phi1 = -0.5 + z * _poly(_PHI1_COEFFS, z2)
    nq = n * q
    value = math.log(n) + log_s + phi
    slope = log_s1 - nq * phi1
    if not curvature:
        return value, slope, None
    p_near = torch.exp(log_p_near)
    direct = q_near * (p_near * s_near - q_near) / (s_near * s_near)
    log_s2 = torch.where(far, u * r1 + u * u * _poly(_R2_COEFFS, u), direct)
    bend = log_s2 + _poly(_PHI2_COEFFS, z2) * nq * nq + phi1 * nq * p
    return value, slope, bend


def _poly(coeffs: Sequence[float], t: Tensor) -> Tensor:
    """``coeffs[0] + coeffs[1] t + ...`` by Horner's rule."""
    out = torch.full_like(t, coeffs[-1])
    for coeff in reversed(coeffs[:-1]):
        out = out * t + coeff
    return out


def power_bce_hessian_diagonal(
    logits: Tensor,
    targets: Tensor,
    *,
    n: float = 2.0,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> Tensor:
    """The exact Hessian diagonal of :func:`power_bce_loss`, O(N C): a positive's ``n p q``,
    a negative's ``-L''`` (:class:`_Terms`), mixed by soft targets."""
    return _derivatives(logits, targets, n=n, reduction=reduction, sample_weight=sample_weight)[2]


def _derivatives(
    logits: Tensor,
    targets: Tensor,
    *,
    n: float = 2.0,
    reduction: str | Reduction = "mean",
    sample_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`power_bce_loss`'s value, gradient and Hessian diagonal from one pass."""
    check_params(NAME, PowerBCEParams, {"n": n})
    inputs = prepare(NAME, TASKS, logits, targets, sample_weight)

    def block(z: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        terms = _terms(z, n, tracked=False, curvature=True)
        value = _mixed(terms.log_p * n, terms.value, t)
        slope = _mixed(terms.q * n, terms.slope, t)
        if terms.curvature is None:
            return value, slope, None
        return value, slope, _mixed(-n * terms.p * terms.q, terms.curvature, t)

    value, slope, bend = curvature_by_rows(block, inputs.logits, inputs.targets)
    return scaled_derivatives(value, slope, bend, reduction, inputs.sample_weight)


class PowerBCELoss(LossModule):
    """Module form of :func:`power_bce_loss`."""

    function = staticmethod(power_bce_loss)
    params_model = PowerBCEParams
    loss_name = NAME

    def __init__(self, n: float = 2.0, reduction: str = "mean") -> None:
        super().__init__(n=n, reduction=reduction)


SPECS = (
    LossSpec(
        name=NAME,
        function=power_bce_loss,
        module=PowerBCELoss,
        params=PowerBCEParams,
        tasks=TASKS,
        summary="Binary cross-entropy on sigmoid(x)^n: an asymmetric link that favours the "
        "rare positive class.",
        formula=r"\ell = -\left[y\, n \log \sigma(x) + (1 - y) \log(1 - \sigma(x)^n)\right]",
        reference="Prentice, A generalization of the probit and logit methods for dose "
        "response curves, Biometrics 32, 1976 (the power-logit link; no arXiv id)",
        when_to_use="Binary or multilabel data with rare positives where a skewed link "
        "calibrates better than the logistic one; n = 2 to 5 is a usual range.",
        coupling=element_wise,
        hessian_diagonal=power_bce_hessian_diagonal,
        derivatives=_derivatives,
    ),
)
