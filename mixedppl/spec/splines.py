"""R's regression splines ``bs()`` and ``ns()`` (package splines), for formulas.

A B-spline basis of order ``m = degree + 1`` on the knot sequence
``t = (a,…,a, κ₁,…,κ_K, b,…,b)`` (each boundary knot repeated m times) has columns
``B_{j,m}(x)``, j = 1 … K + m, from de Boor's recursion; :func:`bs_basis` drops the first unless
``intercept=True``, as ``splines::bs``. Interior knots given by ``df`` sit at the quantiles
``(1…K)/(K+1)`` of x (R's ``quantile`` type 7), with ``K = df − m + 1 − intercept``. Outside the
boundary knots, bs continues each column by its Taylor polynomial of degree ``degree`` at a pivot
a quarter of the way into the first (last) knot interval, as R ≥ 3.2.3.

The natural cubic spline :func:`ns_basis` is the cubic B-spline basis (``K = df − 1 − intercept``
interior knots) restricted to the functions whose second derivative vanishes at both boundary
knots: with C the 2 × (K + 4) matrix of second derivatives there and ``Cᵀ = QR``, the basis is
the B-spline basis times the columns 3 … of Q (R's ``qr.qty``; Householder reflections as
LINPACK's ``dqrdc2``, so the columns are R's to the sign). Outside the boundary it is linear.

The knots and boundary knots found on the fitted data are kept, so new data (``predict``) gets
the same basis functions (as R's ``makepredictcall``).

References
----------
de Boor, C. (1978). *A Practical Guide to Splines*. Springer.
Hastie, T. J. (1992). Generalized additive models. In *Statistical Models in S*, ch. 7.
R Core Team, ``src/library/splines/R/splines.R`` (``bs``, ``ns``, ``predict.bs``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline

from ..core.exceptions import ModelSpecError

__all__ = ["SplineBasis", "spline_design", "bs_basis", "ns_basis"]


@dataclass(frozen=True)
class SplineBasis:
    """The knots that define a bs / ns basis: fixed by the fit, reused for new data."""

    kind: str                 # "bs" or "ns"
    knots: tuple[float, ...]  # interior knots
    boundary: tuple[float, float]
    degree: int
    intercept: bool

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The basis at ``x`` (n × ncol; rows of missing x are NaN)."""
        fn = bs_basis if self.kind == "bs" else ns_basis
        return fn(x, knots=self.knots, boundary=self.boundary, degree=self.degree,
                  intercept=self.intercept)[0]


def spline_design(knots: np.ndarray, x: np.ndarray, order: int, deriv: int = 0) -> np.ndarray:
    """R's ``splineDesign(knots, x, ord, derivs)``: B-spline basis values (or a derivative).

    x must lie within ``[knots[order-1], knots[-order]]``; at the right end the basis is
    continuous from the left, as R's.

    Examples
    --------
    >>> t = np.r_[[0.0] * 4, [1.0] * 4]
    >>> spline_design(t, np.array([0.0, 0.5, 1.0]), 4).round(3).tolist()
    [[1.0, 0.0, 0.0, 0.0], [0.125, 0.375, 0.375, 0.125], [0.0, 0.0, 0.0, 1.0]]
    """
    knots = np.asarray(knots, float)
    ncol = len(knots) - order
    out = np.empty((len(x), ncol))
    eye = np.eye(ncol)
    for j in range(ncol):
        spline = BSpline(knots, eye[j], order - 1, extrapolate=False)
        if deriv:
            spline = spline.derivative(deriv)
        out[:, j] = spline(x)
    right = x == knots[-1]
    if right.any():  # BSpline is right-continuous: take the left limit at the last knot
        for j in range(ncol):
            spline = BSpline(knots, eye[j], order - 1, extrapolate=True)
            if deriv:
                spline = spline.derivative(deriv)
            out[right, j] = spline(np.nextafter(knots[-1], -np.inf))
    return out


def _quantile7(x: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return np.quantile(x, probs, method="linear")


def _check(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, float).ravel()
    if not np.isfinite(x[~np.isnan(x)]).all():
        raise ModelSpecError(f"{name}: the variable has infinite values")
    return x


def _knots(x_in: np.ndarray, n_interior: int) -> tuple[float, ...]:
    if n_interior <= 0:
        return ()
    probs = np.linspace(0.0, 1.0, n_interior + 2)[1:-1]
    return tuple(float(v) for v in _quantile7(x_in, probs))


def _boundary(x: np.ndarray, boundary, name: str) -> tuple[float, float]:
    if boundary is None:
        ok = x[~np.isnan(x)]
        if len(ok) == 0:
            raise ModelSpecError(f"{name}: the variable has no non-missing values")
        return float(ok.min()), float(ok.max())
    lo, hi = sorted(float(v) for v in boundary)
    return lo, hi


def bs_basis(x: np.ndarray, df: int | None = None, knots=None, degree: int = 3,
             intercept: bool = False, boundary=None, name: str = "bs()"
             ) -> tuple[np.ndarray, SplineBasis]:
    """R's ``splines::bs(x, df, knots, degree, intercept, Boundary.knots)``.

    Returns
    -------
    basis : ndarray (n, df)
        ``df = K + degree + intercept`` columns; NaN rows where x is missing.
    spec : SplineBasis
        The knots, for new data.

    Examples
    --------
    >>> x = np.arange(11.0)
    >>> B, spec = bs_basis(x, df=5)
    >>> B.shape, spec.knots
    ((11, 5), (3.333333333333333, 6.666666666666666))
    >>> bool(np.allclose(B.sum(axis=1)[1:], 1 - bs_basis(x, df=6, intercept=True)[0][1:, 0]))
    True
    """
    x = _check(x, name)
    degree = int(degree)
    if degree < 1:
        raise ModelSpecError(f"{name}: degree must be at least 1, got {degree}")
    order = degree + 1
    lo, hi = _boundary(x, boundary, name)
    ok = ~np.isnan(x)
    inside = ok & (x >= lo) & (x <= hi)
    if knots is None:
        n_interior = 0 if df is None else int(df) - order + (1 - int(intercept))
        if df is not None and n_interior < 0:
            raise ModelSpecError(f"{name}: df = {df} is too small for degree {degree}"
                                 f"{' with an intercept' if intercept else ''}; "
                                 f"use df >= {order - (1 - int(intercept))}")
        knots = _knots(x[inside], n_interior)
    knots = tuple(sorted(float(k) for k in np.atleast_1d(knots)))
    t = np.r_[[lo] * order, knots, [hi] * order]
    ncol = len(t) - order
    basis = np.full((len(x), ncol), np.nan)
    basis[inside] = spline_design(t, x[inside], order)
    below, above = ok & (x < lo), ok & (x > hi)
    e = 0.25
    scale = np.cumprod(np.r_[1.0, np.arange(1, order)])  # 0!, 1!, …, degree!
    for side, pivot in ((below, (1 - e) * lo + e * t[order]),
                        (above, (1 - e) * hi + e * t[len(t) - order - 1])):
        if side.any():
            derivs = np.vstack([spline_design(t, np.array([pivot]), order, d)
                                for d in range(order)])  # (order, ncol)
            powers = (x[side] - pivot)[:, None] ** np.arange(order)[None, :]
            basis[side] = powers @ (derivs / scale[:, None])
    if not intercept:
        basis = basis[:, 1:]
    return basis, SplineBasis("bs", knots, (lo, hi), degree, bool(intercept))


def ns_basis(x: np.ndarray, df: int | None = None, knots=None, intercept: bool = False,
             boundary=None, name: str = "ns()", degree: int = 3
             ) -> tuple[np.ndarray, SplineBasis]:
    """R's ``splines::ns(x, df, knots, intercept, Boundary.knots)``: natural cubic splines.

    Returns
    -------
    basis : ndarray (n, df)
        ``df = K + 1 + intercept`` columns; linear beyond the boundary knots.
    spec : SplineBasis

    Examples
    --------
    >>> x = np.linspace(0, 1, 9)
    >>> N, spec = ns_basis(x, df=3)
    >>> N.shape, [round(k, 4) for k in spec.knots]
    ((9, 3), [0.3333, 0.6667])
    """
    x = _check(x, name)
    lo, hi = _boundary(x, boundary, name)
    ok = ~np.isnan(x)
    inside = ok & (x >= lo) & (x <= hi)
    if knots is None:
        n_interior = 0 if df is None else int(df) - 1 - int(intercept)
        if df is not None and n_interior < 0:
            raise ModelSpecError(f"{name}: df = {df} is too small; use df >= "
                                 f"{1 + int(intercept)}")
        knots = _knots(x[inside], n_interior)
    knots = tuple(sorted(float(k) for k in np.atleast_1d(knots)))
    t = np.r_[[lo] * 4, knots, [hi] * 4]
    ncol = len(t) - 4
    basis = np.full((len(x), ncol), np.nan)
    basis[inside] = spline_design(t, x[inside], 4)
    for side, pivot in ((ok & (x < lo), lo), (ok & (x > hi), hi)):
        if side.any():
            value = spline_design(t, np.array([pivot]), 4)[0]
            slope = spline_design(t, np.array([pivot]), 4, 1)[0]
            basis[side] = value[None, :] + (x[side] - pivot)[:, None] * slope[None, :]
    const = np.vstack([spline_design(t, np.array([b]), 4, 2)[0] for b in (lo, hi)])
    if not intercept:
        const, basis = const[:, 1:], basis[:, 1:]
    q, _ = np.linalg.qr(const.T, mode="complete")
    basis = basis @ q[:, 2:]
    return basis, SplineBasis("ns", knots, (lo, hi), 3, bool(intercept))
