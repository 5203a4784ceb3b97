r"""``tidy()`` and ``glance()``: a fit as DataFrames, in broom.mixed's layout.

``tidy(fit)`` has one row per parameter: the fixed effects (``effect = "fixed"``, lmerTest's /
lme4's coefficient table), then the random-effect parameters (``effect = "ran_pars"``) on the
standard-deviation / correlation scale, per group in ``as.data.frame(VarCorr(fit), order =
"lower.tri")`` order, named as broom.mixed names them: ``sd__(Intercept)``,
``cor__(Intercept).Days``, ``sd__Days``, and ``sd__Observation`` (group ``Residual``) for the
residual SD of an LMM. Columns: ``effect, group, term, estimate, std_error, statistic, df,
p_value`` (``df`` where the fit has denominator degrees of freedom: LMMs, Satterthwaite by
default), and with ``conf_int=True`` Wald intervals ``conf_low, conf_high``:

.. math::

    \hat\beta_j \pm q \cdot \mathrm{SE}_j, \qquad
    q = t_{\nu_j, (1 + \text{level})/2} \text{ (LMM, } \nu_j \text{ the df) or }
    z_{(1 + \text{level})/2},

as broom.mixed's ``conf.method = "Wald"`` (NA for ``ran_pars`` rows, as there). A CLMM's table is
broom's ``tidy.clmm``: thresholds first (``coef_type = "intercept"``), then the location
coefficients (``"location"``), with its ``ran_pars`` rows after.

``glance(fit)`` is one row: ``nobs, sigma, logLik, AIC, BIC``, then ``REMLcrit`` (a REML fit) or
``deviance`` (an ML LMM: −2 logLik), and ``df_residual`` = nobs − number of parameters (R's
``df.residual``). A GLMM's ``sigma`` is 1 for the binomial and Poisson and the dispersion
otherwise (glmmTMB's ``sigma()``); its ``deviance`` is R's ``deviance()`` of a ``glmer`` fit,
the conditional deviance

.. math:: D_{\rm cond} = \sum_i d_i\bigl(y_i, \hat\mu_i(\hat u)\bigr) = \sum_i r_{D,i}^2,

the family's unit deviances at the conditional modes (the squared deviance residuals;
not −2 logLik), left out for a family without a unit deviance. A
CLMM's row is broom's ``glance.clmm``: ``edf, AIC, BIC, logLik, nobs``. Column names are R's with
``.`` written ``_`` (``std_error``, ``p_value``, ``df_residual``).

References
----------
Bolker, B. & Robinson, D. broom.mixed: Tidying Methods for Mixed Models (``tidy.merMod``,
``glance.merMod``; R package 0.2.9); Robinson, D. et al. broom (``tidy.clmm``, ``glance.clmm``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import special

__all__ = ["tidy_frame", "ran_pars_rows", "lmm_glance", "glmm_glance", "clmm_glance",
           "clmm_fixed_table"]

#: summary() coefficient-table columns → tidy columns.
_COLUMNS = {"Estimate": "estimate", "Std. Error": "std_error", "t value": "statistic",
            "z value": "statistic", "df": "df", "Pr(>|t|)": "p_value", "Pr(>|z|)": "p_value",
            "coef_type": "coef_type"}
_ORDER = ["effect", "group", "term", "estimate", "std_error", "statistic", "df", "p_value",
          "conf_low", "conf_high", "coef_type"]


def ran_pars_rows(varcorr: pd.DataFrame) -> pd.DataFrame:
    """The ``ran_pars`` rows of :func:`tidy_frame` from ``fit.varcorr``.

    Parameters
    ----------
    varcorr : DataFrame
        ``as.data.frame(VarCorr(fit))`` (columns ``grp, var1, var2, vcov, sdcor``).

    Returns
    -------
    DataFrame
        ``effect, group, term, estimate``; per group the lower triangle column by column
        (``sd`` of a column, then its correlations with the later ones), the residual last.

    Examples
    --------
    >>> vc = pd.DataFrame({"grp": ["g", "g", "g", "Residual"],
    ...                    "var1": ["(Intercept)", "x", "(Intercept)", None],
    ...                    "var2": [None, None, "x", None],
    ...                    "vcov": [4.0, 1.0, 0.5, 9.0], "sdcor": [2.0, 1.0, 0.25, 3.0]})
    >>> ran_pars_rows(vc)[["group", "term", "estimate"]].values.tolist()
    [['g', 'sd__(Intercept)', 2.0], ['g', 'cor__(Intercept).x', 0.25], ['g', 'sd__x', 1.0], ['Residual', 'sd__Observation', 3.0]]
    """
    rows = []
    for group, block in varcorr.groupby("grp", sort=False):
        sds = block[block["var2"].isna()]
        cors = block[block["var2"].notna()]
        for var1, sd in zip(sds["var1"], sds["sdcor"]):
            name = "Observation" if var1 is None or pd.isna(var1) else var1
            rows.append((group, f"sd__{name}", sd))
            for var2, r in zip(cors.loc[cors["var1"] == var1, "var2"],
                               cors.loc[cors["var1"] == var1, "sdcor"]):
                rows.append((group, f"cor__{var1}.{var2}", r))
    out = pd.DataFrame(rows, columns=["group", "term", "estimate"])
    out.insert(0, "effect", "ran_pars")
    return out


def _fixed_rows(table: pd.DataFrame, conf_int: bool, conf_level: float) -> pd.DataFrame:
    out = table[[c for c in table.columns if c in _COLUMNS]].rename(columns=_COLUMNS)
    out = out.reset_index(names="term")
    out.insert(0, "effect", "fixed")
    out.insert(1, "group", None)
    if conf_int:
        p = 0.5 + conf_level / 2
        q = (special.stdtrit(out["df"].to_numpy(float), p) if "df" in out else
             np.full(len(out), special.ndtri(p)))
        out["conf_low"] = out["estimate"] - q * out["std_error"]
        out["conf_high"] = out["estimate"] + q * out["std_error"]
    return out


def tidy_frame(fixed_table: pd.DataFrame, varcorr: pd.DataFrame,
               effects: Iterable[str] = ("fixed", "ran_pars"), conf_int: bool = False,
               conf_level: float = 0.95) -> pd.DataFrame:
    """broom.mixed's ``tidy()`` from a summary coefficient table and ``varcorr``.

    Parameters
    ----------
    fixed_table : DataFrame
        ``fit.coef_table()`` (rows: terms; ``Estimate``, ``Std. Error``, statistic, optional
        ``df``, p-value, optional ``coef_type``).
    varcorr : DataFrame
        ``fit.varcorr``.
    effects : iterable of {"fixed", "ran_pars"}
    conf_int : bool
        Add Wald intervals ``conf_low`` / ``conf_high`` (NaN on ``ran_pars`` rows).
    conf_level : float

    Returns
    -------
    DataFrame
        Columns ``effect, group, term, estimate, std_error, statistic, [df], p_value,
        [conf_low, conf_high], [coef_type]``.

    Examples
    --------
    >>> table = pd.DataFrame({"Estimate": [1.0], "Std. Error": [0.5], "z value": [2.0],
    ...                       "Pr(>|z|)": [0.0455]}, index=["(Intercept)"])
    >>> vc = pd.DataFrame({"grp": ["g"], "var1": ["(Intercept)"], "var2": [None],
    ...                    "vcov": [4.0], "sdcor": [2.0]})
    >>> t = tidy_frame(table, vc, conf_int=True)
    >>> t[["effect", "term", "estimate", "conf_low"]].round(3).values.tolist()
    [['fixed', '(Intercept)', 1.0, 0.02], ['ran_pars', 'sd__(Intercept)', 2.0, nan]]
    """
    effects = [effects] if isinstance(effects, str) else list(effects)
    unknown = [e for e in effects if e not in ("fixed", "ran_pars")]
    if unknown or not effects:
        raise ValueError(f"effects must be among 'fixed', 'ran_pars', got {effects!r}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level}")
    parts = []
    if "fixed" in effects:
        parts.append(_fixed_rows(fixed_table, conf_int, conf_level))
    if "ran_pars" in effects:
        parts.append(ran_pars_rows(varcorr))
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else pd.DataFrame(columns=["effect", "group", "term", "estimate"])
    if conf_int:
        for c in ("conf_low", "conf_high"):
            if c not in out:
                out[c] = np.nan
    return out[[c for c in _ORDER if c in out.columns]]


def clmm_fixed_table(thresholds: pd.DataFrame, coefficients: pd.DataFrame) -> pd.DataFrame:
    """broom's ``tidy.clmm`` rows before the random-effect ones: the thresholds (with normal
    p-values, ``coef_type = "intercept"``) then the location coefficients (``"location"``)."""
    thr = thresholds.copy()
    thr["Pr(>|z|)"] = 2 * special.ndtr(-np.abs(thr["z value"].to_numpy(float)))
    thr["coef_type"] = "intercept"
    loc = coefficients.copy()
    loc["coef_type"] = "location"
    return pd.concat([thr, loc])


def _row(values: dict) -> pd.DataFrame:
    return pd.DataFrame([values])


def lmm_glance(fit) -> pd.DataFrame:
    """broom.mixed's ``glance.merMod`` of an LMM: ``REMLcrit`` for a REML fit, ``deviance``
    (−2 logLik) for an ML one."""
    values = {"nobs": fit.nobs, "sigma": fit.sigma, "logLik": fit.loglik, "AIC": fit.aic,
              "BIC": fit.bic}
    if fit.reml:
        values["REMLcrit"] = fit.reml_criterion
    else:
        values["deviance"] = -2 * fit.loglik
    values["df_residual"] = fit.nobs - fit.n_params
    return _row(values)


def glmm_glance(fit) -> pd.DataFrame:
    """broom.mixed's ``glance.merMod`` of a GLMM: ``deviance`` is the conditional deviance
    (see the module notes), absent for a family without a unit deviance.

    Examples
    --------
    >>> import mixedppl as mp
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"))
    >>> round(float(glmm_glance(g)["deviance"].iloc[0]), 3)
    73.472
    """
    # glmmTMB's sigma(): 1 without dispersion, NA for a dispersion formula beyond an intercept
    sigma = (1.0 if fit.family.dispersion is None else
             np.nan if fit.dispersion is None else fit.dispersion)
    values = {"nobs": fit.nobs, "sigma": sigma, "logLik": fit.loglik, "AIC": fit.aic,
              "BIC": fit.bic}
    try:
        values["deviance"] = float(np.nansum(np.square(fit.residuals("deviance"))))
    except NotImplementedError:                  # the family has no unit deviance
        pass
    values["df_residual"] = fit.nobs - fit.n_params
    return _row(values)


def clmm_glance(fit) -> pd.DataFrame:
    """broom's ``glance.clmm``: ``edf, AIC, BIC, logLik, nobs``."""
    return _row({"edf": fit.n_params, "AIC": fit.aic, "BIC": fit.bic, "logLik": fit.loglik,
                 "nobs": fit.nobs})
