r"""Variance decomposition of an LMM: ICC and Nakagawa R², as ``performance::icc`` / ``r2_nakagawa``.

With :math:`\sigma^2_f = \widehat{\operatorname{var}}(X\hat\beta)` (denominator n − 1),
:math:`\sigma^2_r = \sum_k \frac1n\sum_i z_{ki}^\top\hat\Sigma_k z_{ki}` (Johnson 2014: the mean
random-effect variance over the observations, which reduces to :math:`\hat\sigma^2_k` for a random
intercept) and the residual variance :math:`\sigma^2_\varepsilon = \hat\sigma^2` (for a binomial
GLMM, the distribution-specific variance of the latent scale: π²/3 for the logit link, 1 for the
probit, π²/6 for the cloglog; Nakagawa & Schielzeth 2013, Table 1):

.. math:: \text{ICC}_\text{adj} = \frac{\sigma^2_r}{\sigma^2_r + \sigma^2_\varepsilon},\quad
          \text{ICC}_\text{unadj} = \frac{\sigma^2_r}{\sigma^2_f + \sigma^2_r + \sigma^2_\varepsilon},

.. math:: R^2_\text{marginal} = \frac{\sigma^2_f}{\sigma^2_f + \sigma^2_r + \sigma^2_\varepsilon},\quad
          R^2_\text{conditional} = \frac{\sigma^2_f + \sigma^2_r}{\sigma^2_f + \sigma^2_r + \sigma^2_\varepsilon}.

References
----------
Nakagawa, S. & Schielzeth, H. (2013). A general and simple method for obtaining R² from generalized
linear mixed-effects models. Methods Ecol. Evol. 4, 133–142.
Johnson, P. C. D. (2014). Extension of Nakagawa & Schielzeth's R²_GLMM to random slopes models.
Methods Ecol. Evol. 5, 944–946.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["variance_parts", "icc", "icc_by_group", "r_squared"]


def variance_parts(spec, beta: np.ndarray, covs: Sequence[np.ndarray],
                   residual_variance: float) -> dict:
    """var_fixed, var_random (Johnson's mean z'Σz per term, summed), var_residual, per-term parts.

    Parameters
    ----------
    spec : ModelSpec
    beta : ndarray
        β̂.
    covs : sequence of ndarray
        Σ̂_k per term (an LMM record's ``covs``; for a GLMM T_kT_kᵀ).
    residual_variance : float
        σ̂² for an LMM; the family's latent-scale variance for a GLMM.
    """
    var_fixed = float(np.var(spec.X @ np.asarray(beta), ddof=1))
    per_term = [float(np.mean(np.einsum("ij,jk,ik->i", t.z, S, t.z)))
                for t, S in zip(spec.terms, covs)]
    return {"var_fixed": var_fixed, "var_random": float(sum(per_term)),
            "var_residual": float(residual_variance), "per_term": per_term}


def icc(spec, beta: np.ndarray, covs: Sequence[np.ndarray], residual_variance: float,
        by_group: bool = False) -> pd.Series:
    r"""Adjusted and unadjusted ICC (or one per grouping factor), see the module docstring.

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> rec = fit.record
    >>> icc(rec.spec, rec.beta, rec.covs, rec.scale).round(4).tolist()
    [0.7217, 0.5206]
    """
    if by_group:
        return icc_by_group(spec, beta, covs, residual_variance)
    v = variance_parts(spec, beta, covs, residual_variance)
    rand, res, fix = v["var_random"], v["var_residual"], v["var_fixed"]
    return pd.Series({"adjusted": rand / (rand + res), "unadjusted": rand / (fix + rand + res)},
                     name="ICC")


def r_squared(spec, beta: np.ndarray, covs: Sequence[np.ndarray],
              residual_variance: float) -> pd.Series:
    r"""Marginal and conditional R² (Nakagawa & Schielzeth; Johnson's random slopes).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (1 | Subject)", mp.datasets.load("sleepstudy"))
    >>> rec = fit.record
    >>> r_squared(rec.spec, rec.beta, rec.covs, rec.scale).round(4).tolist()
    [0.2799, 0.7043]
    """
    v = variance_parts(spec, beta, covs, residual_variance)
    total = v["var_fixed"] + v["var_random"] + v["var_residual"]
    return pd.Series({"marginal": v["var_fixed"] / total,
                      "conditional": (v["var_fixed"] + v["var_random"]) / total}, name="R2")


def icc_by_group(spec, beta: np.ndarray, covs: Sequence[np.ndarray],
                 residual_variance: float) -> pd.Series:
    """σ²_g / (Σ_k σ²_k + σ²_ε) per grouping factor (random-intercept models only)."""
    slopes = [t.group for t in spec.terms if t.column_names != ["(Intercept)"]]
    if slopes:
        raise ValueError(
            f"icc(by_group=True) needs a random-intercept-only model; the term(s) for {slopes} have "
            "random slopes, so the random-effect variance depends on the covariates and cannot be "
            "split into one share per grouping factor (performance::icc refuses it too). Use "
            "icc() for the overall ICC.")
    parts = variance_parts(spec, beta, covs, residual_variance)
    total = parts["var_random"] + parts["var_residual"]
    out: dict[str, float] = {}
    for t, v in zip(spec.terms, parts["per_term"]):
        out[t.group] = out.get(t.group, 0.0) + v / total
    return pd.Series(out, name="ICC")
