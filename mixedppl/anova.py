"""Likelihood-ratio comparison of nested fits, as lme4's ``anova(m0, m1, ...)``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import special

from .core.exceptions import ModelSpecError, NonNestedWarning
from .fit.lmm_fit import refit_lmm
from .results.lmm import LMMResult

__all__ = ["anova", "is_nested", "NonNestedWarning"]


def _ml(fit):
    """The fit itself if ML, else the same model refitted by ML (as lme4 does)."""
    if not getattr(fit, "reml", False):
        return fit
    return LMMResult(refit_lmm(fit.record, reml=False))


def _check_same_data(fits) -> None:
    """lme4's check of the number of observations, and (which lme4 omits) of the response."""
    nobs = [f.spec.n for f in fits]
    if len(set(nobs)) > 1:
        raise ModelSpecError(
            f"models were not all fitted to the same size of dataset (nobs {nobs}); anova() "
            "compares fits of the same data: refit them to the same rows")
    y0, name0 = fits[0].spec.y, fits[0].spec.response_name
    for f in fits[1:]:
        if not np.allclose(f.spec.y, y0, rtol=1e-12, atol=0.0):
            what = (f"responses {name0!r} and {f.spec.response_name!r}"
                    if f.spec.response_name != name0 else f"response {name0!r}")
            raise ModelSpecError(
                f"models were not fitted to the same response ({what} differ on the same "
                "number of rows): log-likelihoods of different responses or data are not "
                "comparable, so anova() cannot compare them")


def _span_contains(big: np.ndarray, small: np.ndarray, tol: float = 1e-8) -> bool:
    """Every column of ``small`` lies in the column space of ``big`` (rows aligned)."""
    if small.shape[1] == 0:
        return True
    if big.shape[1] == 0:
        return False
    coef = np.linalg.lstsq(big, small, rcond=None)[0]
    resid = small - big @ coef
    return bool(np.all(np.linalg.norm(resid, axis=0) <= tol * (1 + np.linalg.norm(small, axis=0))))


def _kind(fit) -> tuple:
    fam, link = getattr(fit, "family", None), getattr(fit, "link", None)
    return (type(fit).__name__, getattr(fam, "name", None), getattr(link, "name", None))


def is_nested(small, big) -> bool:
    """Whether ``small`` is a sub-model of ``big`` (same kind of model and family).

    Fixed effects: the columns of X (and the offset) of ``small`` lie in the column space of
    ``big``'s. Random effects: every random term of ``small`` has a term of ``big`` with the same
    grouping factor whose random-effect columns span its own (so ``(1 | g) + (0 + x | g)`` is
    nested in ``(x | g)``, ``(1 | g)`` in either). This is nesting of the model spaces that the
    likelihood-ratio test assumes; lme4's ``anova`` does not check it.
    """
    if _kind(small) != _kind(big):
        return False
    a, b = small.spec, big.spec
    if not np.allclose(a.offset, b.offset) or not np.allclose(a.weights, b.weights):
        return False
    if not _span_contains(b.X, a.X):
        return False
    for ta in a.terms:
        ok = False
        for tb in b.terms:
            if tb.group == ta.group and tb.n_levels == ta.n_levels \
                    and np.array_equal(tb.codes, ta.codes) and _span_contains(tb.z, ta.z):
                ok = True
                break
        if not ok:
            return False
    return True


def anova(*fits, refit: bool = True) -> pd.DataFrame:
    """Likelihood-ratio tests between nested models (lme4's ``anova``).

    REML fits are refitted by ML first (``refit=True``, lme4's default) and a message says so.
    Models are ordered by number of parameters (stably, as R's ``order``); each row is tested
    against the one above: Chisq = 2·max(0, Δ logLik), Df = Δ npar, and no p-value where Df = 0
    (models with the same number of parameters), all as lme4.

    Returns
    -------
    DataFrame
        npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq), indexed by formula.

    Raises
    ------
    ModelSpecError
        If the models were fitted to different numbers of rows (as lme4) or to different
        responses (lme4 does not check this, and reports a meaningless χ²).

    Warns
    -----
    NonNestedWarning
        When a model is compared with a larger one it is not nested in (see :func:`is_nested`):
        lme4 reports the χ² test anyway, silently; the numbers here are the same.

    Examples
    --------
    >>> import mixedppl as mp
    >>> d = mp.datasets.load("sleepstudy")
    >>> m0 = mp.lmer("Reaction ~ Days + (1 | Subject)", d)
    >>> m1 = mp.lmer("Reaction ~ Days + (Days | Subject)", d)
    >>> round(float(mp.anova(m0, m1)["Chisq"].iloc[1]), 2)
    42.14
    """
    if len(fits) < 2:
        raise ValueError("anova() needs at least two fitted models")
    _check_same_data(fits)
    if refit and any(getattr(f, "reml", False) for f in fits):
        warnings.warn("refitting model(s) with ML (instead of REML)", UserWarning, stacklevel=2)
        fits = tuple(_ml(f) for f in fits)
    order = sorted(range(len(fits)), key=lambda i: fits[i].n_params)
    fits = [fits[i] for i in order]
    rows = []
    for k, f in enumerate(fits):
        row = {"npar": f.n_params, "AIC": f.aic, "BIC": f.bic, "logLik": f.loglik,
               "deviance": -2 * f.loglik, "Chisq": np.nan, "Df": np.nan, "Pr(>Chisq)": np.nan}
        if k > 0:
            prev = fits[k - 1]
            chisq = max(2 * (f.loglik - prev.loglik), 0.0)
            df = f.n_params - prev.n_params
            if df > 0 and not is_nested(prev, f):
                warnings.warn(
                    f"models {prev.spec.formula!r} and {f.spec.formula!r} are not nested (the "
                    "smaller one is not a special case of the larger): their Chisq and "
                    "Pr(>Chisq) are not a valid likelihood-ratio test; compare AIC / BIC "
                    "instead", NonNestedWarning, stacklevel=2)
            row.update({"Chisq": chisq, "Df": df,
                        "Pr(>Chisq)": special.chdtrc(df, chisq) if df > 0 else np.nan})
        rows.append(row)
    return pd.DataFrame(rows, index=[f.spec.formula for f in fits])
