"""``glmer``: generalized linear mixed models by lme4's Laplace approximation.

Responses, as lme4's ``glmer``: for the binomial, 0/1 (or logical), ``cbind(successes, failures)``
(trials = successes + failures), or proportions with ``weights`` = number of trials; for the
Poisson, non-negative integer counts (``offset(log(exposure))`` in the formula or ``offset=``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .exceptions import ModelSpecError
from .families import get_family
from .spec.design import model_matrix
from .spec.formula import split_top_level
from .spec.model_spec import build_spec

__all__ = ["glmer", "glmm_model"]

def _evaluate(frame: pd.DataFrame, expr: str) -> np.ndarray:
    """One numeric column from an expression on the model frame (a column name or arithmetic)."""
    if expr in frame.columns:
        col = frame[expr]
        if pd.api.types.is_bool_dtype(col):
            return col.to_numpy(dtype=float)
        if not pd.api.types.is_numeric_dtype(col):
            raise ModelSpecError(f"response {expr!r} must be numeric or logical for glmer; it has "
                                 f"dtype {col.dtype}")
        return col.to_numpy(dtype=float)
    design = model_matrix(f"0 + I({expr})", frame)
    return np.asarray(design.matrix, float)[:, 0]


class _Response:
    """The ``response=`` callable of :func:`build_spec`: records trials for ``cbind``."""

    def __init__(self):
        self.trials = None
        self.expr = ""

    def __call__(self, frame: pd.DataFrame, expr: str) -> np.ndarray:
        self.expr = expr
        if expr.startswith("cbind(") and expr.endswith(")"):
            parts = [p.strip() for p in split_top_level(expr[6:-1], ",")]
            if len(parts) != 2:
                raise ModelSpecError(f"{expr!r}: cbind needs exactly two columns "
                                     "(successes, failures)")
            s, f = (_evaluate(frame, e) for e in parts)
            if np.any(f < 0):
                raise ModelSpecError(f"{expr!r}: negative failures {parts[1]!r} — successes "
                                     f"{parts[0]!r} exceed the number of trials")
            if np.any(s < 0):
                raise ModelSpecError(f"{expr!r}: negative successes {parts[0]!r}")
            self.trials = s + f
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(self.trials > 0, s / np.where(self.trials > 0, self.trials, 1), 0.0)
        return _evaluate(frame, expr)


def _build(formula, data, weights, offset, response):
    """build_spec without lme4's ``nlev < nobs`` check (glmer allows a level per observation)."""
    spec = build_spec(formula, data, weights=weights, offset=offset, response=response,
                      lmm_checks=False)
    for t in spec.terms:
        if t.n_levels > spec.n:
            raise ModelSpecError(f"number of levels of grouping factor '{t.group}' "
                                 f"({t.n_levels}) must be <= number of observations ({spec.n})")
    return spec


def glmm_model(formula: str, data: pd.DataFrame, family="binomial", link=None, weights=None,
               offset=None):
    """Parse and check a GLMM: ``(spec, family, link, counts, trials)``.

    Examples
    --------
    >>> import mixedppl as mp
    >>> cbpp = mp.datasets.load("cbpp")
    >>> f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    >>> spec, fam, link, y, n = glmm_model(f, cbpp, "binomial")
    >>> int(y.sum()), int(n.sum()), link.name
    (99, 842, 'logit')
    """
    fam, lnk = get_family(family, link)
    resp = _Response()
    spec = _build(formula, data, weights, offset, resp)
    w = np.asarray(spec.weights, float)
    column = resp.expr or spec.response_name
    if fam.name == "binomial":
        ntr = w if resp.trials is None else resp.trials * w
        if resp.trials is None and np.any((spec.y < 0) | (spec.y > 1)):
            raise ModelSpecError(f"binomial response {column!r} must be 0/1 or a proportion in "
                                 "[0, 1] (with weights = trials), or cbind(successes, failures)")
        y = spec.y * ntr
        y = np.where(np.abs(y - np.round(y)) < 1e-8, np.round(y), y)
    else:
        y, ntr = spec.y, w
    fam.check(y, ntr, column)
    return spec, fam, lnk, y, ntr


def glmer(formula: str, data: pd.DataFrame, family="binomial", link: str | None = None,
          nAGQ: int = 1, weights=None, offset=None, control: dict | None = None):
    """Fit a generalized linear mixed model by maximum likelihood (Laplace approximation).

    Maximises lme4's Laplace approximation to the marginal likelihood,
    ``−2 ℓ(θ, β) ≈ −2 log p(y | û) + ‖û‖² + log|ΛᵀZᵀWZΛ + I|`` (Bates et al. 2015, J. Stat. Softw.
    67(1)), jointly over (θ, β) with exact gradients.

    Parameters
    ----------
    formula : str
        lme4 formula; binomial responses may be ``cbind(successes, failures)``.
    data : DataFrame
    family : {"binomial", "poisson", "negative_binomial", "gamma", "beta"} or Family
        Negative binomial (NB2, glmmTMB's ``nbinom2``), Gamma and Beta estimate a dispersion φ
        by maximum likelihood (``fit.dispersion``, glmmTMB's ``sigma()`` convention), with TMB's
        Laplace approximation (exact Hessian), as glmmTMB.
    link : str, optional
        ``"logit"`` (default), ``"probit"``, ``"cloglog"``, ``"cauchit"`` for the binomial;
        ``"log"`` for Poisson, negative binomial and Gamma; ``"logit"`` for Beta.
    nAGQ : int
        1: Laplace. > 1: adaptive Gauss–Hermite quadrature with that many nodes (one scalar
        random-effect term only, as lme4). Unlike lme4, the log-likelihood keeps the binomial
        saturated constant for trials > 1, so it is on the same scale as the Laplace one (cbpp,
        nAGQ=25: −91.9834 here, −50.0050 in lme4, whose Laplace value is −92.0263).
    weights, offset : str or array-like, optional
        Prior weights (binomial: number of trials for proportions) and an offset on the link scale.
    control : dict, optional
        ``ftol``, ``gtol``, ``maxiter`` (L-BFGS-B), ``start_theta``.

    Returns
    -------
    GLMMResult

    Examples
    --------
    >>> import mixedppl as mp
    >>> g = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...           mp.datasets.load("cbpp"), family="binomial")
    >>> round(g.loglik, 3), g.fe_params.round(3).tolist()
    (-92.026, [-1.399, -0.992, -1.129, -1.58])
    """
    from .fit.glmm_fit import fit_glmm
    from .results.glmm import GLMMResult
    spec, fam, lnk, y, ntr = glmm_model(formula, data, family, link, weights, offset)
    if int(nAGQ) != nAGQ or nAGQ < 1:
        raise ModelSpecError(f"nAGQ must be a positive integer, got {nAGQ!r} (nAGQ=0 is not "
                             "available yet)")
    if nAGQ > 1 and (len(spec.terms) != 1 or spec.terms[0].n_cols != 1):
        raise NotImplementedError("nAGQ > 1 needs a single scalar random-effect term, e.g. "
                                  "(1 | g), as in lme4")
    pieces = fit_glmm(spec, fam, lnk, y, ntr, control, int(nAGQ))
    return GLMMResult(spec=spec, family=fam, link=lnk, counts=y, trials=ntr, nAGQ=nAGQ, **pieces)
