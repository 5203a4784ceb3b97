r"""Maximum-likelihood fit of the model without random effects: a GLM or a cumulative link model.

For a family of :mod:`mixedppl.families.glm` (binomial, Poisson, negative binomial, Gamma, Beta)
or the cumulative link family of :mod:`mixedppl.families.cumulative`, with linear predictor
:math:`\eta = X\beta + \text{offset}`, this maximises

.. math:: \ell(\beta, \phi) = \sum_i \log p(y_i \mid \eta_i, \phi)

(weights and binomial trials inside each term, as in the GLMM) over β and the family's extra
parameters φ — none for the binomial / Poisson, log φ for the dispersion families, the threshold
parameters for the cumulative family. The log-density is the family's own ``loglik`` (the one the
Laplace graphs of the mixed model use), so the log-likelihood is on the same scale as the mixed
model's (constants included, as R's ``logLik.glm``, ``glmmTMB`` and ``ordinal::clm``). It is
maximised by Newton's method with step halving on the exact gradient (PyTensor) and its
central-difference Jacobian as the Hessian,
from the family's ``start_values`` (R's ``glm.fit`` IRLS start for a GLM family).

The maximised model is what a likelihood-ratio test compares a mixed model with when its only
random term is dropped: R's ``glm(...)`` for ``glmer`` / ``glmmTMB``, ``clm(...)`` for ``clmm``.

References
----------
McCullagh, P. & Nelder, J. A. (1989). *Generalized Linear Models*, 2nd ed., ch. 2 and 5.
Christensen, R. H. B. (2019). ordinal: Regression Models for Ordinal Data (``clm``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytensor.tensor as pt

from ..core.compile import compiled
from .laplace import newton_minimize
from .optimize import difference_hessian

__all__ = ["GLMFit", "fit_glm"]


@dataclass(frozen=True)
class GLMFit:
    """Result of :func:`fit_glm`.

    Attributes
    ----------
    beta : ndarray
        Fixed effects (named by ``fe_names``).
    phi : ndarray
        The family's extra parameters on the graph scale (log φ, or the threshold parameters).
    loglik : float
        Maximised log-likelihood, constants included.
    vcov : ndarray
        Inverse of the Hessian of −ℓ over (β, φ).
    converged : bool
        Whether the gradient at the optimum is below ``1e-6 (1 + |ℓ|)`` in every coordinate.
    formula : str
    fe_names : list of str
    n_params : int
        p + the number of φ parameters.
    """

    beta: np.ndarray
    phi: np.ndarray
    loglik: float
    vcov: np.ndarray = field(repr=False)
    converged: bool
    formula: str
    fe_names: list
    n_params: int

    def __getitem__(self, key):
        """Dict-style access (``reduced["loglik"]``), as the linear model's dict in :func:`lrt`."""
        return getattr(self, key)


def _build(family, link):
    x = pt.vector("x")
    y, n, offset = pt.vector("y"), pt.vector("n"), pt.vector("offset")
    X = pt.matrix("X")
    p = X.shape[1]
    eta = pt.dot(X, x[:p]) + offset
    nll = -pt.sum(family.loglik(y, eta, n, x[p:], link))
    grad = pt.grad(nll, x)
    return [x, y, n, offset, X], [nll, grad]


def _functions(family, link):
    """Compiled (−ℓ, ∇) over x = (β, φ), cached per family and link."""
    return compiled(("glm-ml", family.key, link.name), lambda: _build(family, link),
                    kind="fast_compile")


def _start(spec, family, link, y, ntr) -> np.ndarray:
    beta, phi = family.start_values(spec, link, y, ntr)
    return np.concatenate([beta, phi])


def fit_glm(spec, family, link, y: np.ndarray, ntr: np.ndarray, start=None,
            tol: float = 1e-13, maxit: int = 200) -> GLMFit:
    r"""Fit the model without random effects by maximum likelihood.

    Maximises :math:`\ell(\beta, \phi) = \sum_i \log p(y_i \mid x_i^\top\beta +
    o_i, \phi)` with the family's log-density (see the module docstring) by Newton's method
    (Hessian: central differences of the exact gradient), with step halving (and Levenberg
    damping where the Hessian is not positive definite).

    Parameters
    ----------
    spec : ModelSpec
        ``X``, ``offset`` (its random terms, if any, are ignored).
    family : GLMFamily or CumulativeFamily
    link : Link
    y, ntr : ndarray
        Counts and trials / prior weights, as :func:`mixedppl.glmm_api.glmm_model` (for the
        cumulative family: category codes and weights, as ``clmm_model``).
    start : ndarray, optional
        (β, φ) to start from; default R's ``glm.fit`` IRLS start (or the family's
        ``start_values``).
    tol, maxit : float, int
        Newton's convergence tolerance on the decrement and maximum number of steps.

    Returns
    -------
    GLMFit

    References
    ----------
    McCullagh & Nelder (1989), ch. 2; R's ``glm`` and ``ordinal::clm``.

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.glmm_api import glmm_model
    >>> spec, fam, link, y, n = glmm_model("cbind(incidence, size - incidence) ~ period + "
    ...                                    "(1 | herd)", mp.datasets.load("cbpp"))
    >>> round(fit_glm(spec, fam, link, y, n).loglik, 4)   # R: logLik(glm(...)) -99.0292
    -99.0292
    """
    fn = _functions(family, link)
    X = np.ascontiguousarray(spec.X, float)
    y, ntr = np.asarray(y, float), np.asarray(ntr, float)
    offset = np.asarray(spec.offset, float)
    p = X.shape[1]

    def fun_grad(x):
        f, g = fn(x, y, ntr, offset, X)
        return float(f), np.asarray(g, float)

    def newton(x, lam):
        f, g = fun_grad(x)
        if not np.isfinite(f):
            return np.inf, g, np.full_like(x, np.nan)
        H = difference_hessian(lambda v: fun_grad(v)[1], x, rel=1e-5)
        return f, g, np.linalg.solve(H + lam * np.eye(len(x)), g)

    x0 = np.asarray(_start(spec, family, link, y, ntr) if start is None else start, float)
    x = newton_minimize(newton, x0, np.zeros_like(x0), tol=tol, maxit=maxit)
    f, g = fun_grad(x)
    H = difference_hessian(lambda v: fun_grad(v)[1], x, rel=1e-5)
    try:
        vcov = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        vcov = np.full_like(H, np.nan)
    converged = bool(np.isfinite(f) and np.all(np.abs(g) < 1e-6 * (1 + abs(float(f)))))
    formula = f"{spec.parsed.response} ~ {spec.parsed.fixed}"
    return GLMFit(beta=x[:p].copy(), phi=x[p:].copy(), loglik=-float(f), vcov=vcov,
                  converged=converged, formula=formula, fe_names=list(spec.fe_names),
                  n_params=len(x))
