"""Likelihood-ratio comparison of nested fits, as lme4's ``anova(m0, m1, ...)``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import special

from .exceptions import ModelSpecError

__all__ = ["anova"]


def _ml(fit):
    """The fit itself if ML, else the same model refitted by ML (as lme4 does)."""
    if not getattr(fit, "reml", False):
        return fit
    from .fit.lmm_fit import fit_lmm
    return fit_lmm(fit.spec, reml=False)


def _check_same_data(fits) -> None:
    y0 = fits[0].spec.y
    for f in fits[1:]:
        if f.spec.n != len(y0) or not np.allclose(f.spec.y, y0):
            raise ModelSpecError("models were not all fitted to the same data (different rows or "
                                 "response); anova() compares fits of one dataset")


def anova(*fits, refit: bool = True) -> pd.DataFrame:
    """Likelihood-ratio tests between nested models (lme4's ``anova``).

    REML fits are refitted by ML first (``refit=True``, lme4's default) and a message says so.
    Models are ordered by number of parameters; each row is tested against the one above.

    Returns
    -------
    DataFrame
        npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq), indexed by formula.

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
            row.update({"Chisq": chisq, "Df": df,
                        "Pr(>Chisq)": special.chdtrc(df, chisq) if df > 0 else np.nan})
        rows.append(row)
    return pd.DataFrame(rows, index=[f.spec.formula for f in fits])
