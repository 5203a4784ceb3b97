r"""Case-deletion influence of a linear mixed model (HLMdiag's ``cooks.distance``, ``mdffits``,
``covtrace``, ``covratio``, ``rvc``).

Deleting case i (one observation, or every observation of one level of a grouping factor) gives
:math:`\hat\beta_{(i)}`, :math:`V_{(i)} = \widehat{\operatorname{vcov}}(\hat\beta_{(i)})` and the variance
components of the refit. With p fixed effects, :math:`\delta = \hat\beta - \hat\beta_{(i)}` and
:math:`V = \widehat{\operatorname{vcov}}(\hat\beta)` of the full fit:

.. math:: D_i = \delta^\top V^{-1}\delta / p,\quad \text{MDFFITS}_i = \delta^\top V_{(i)}^{-1}\delta / p,

.. math:: \text{COVTRACE}_i = |\operatorname{tr}(V^{-1}V_{(i)}) - p|,\quad
          \text{COVRATIO}_i = \det V_{(i)} / \det V,\quad
          \text{RVC}_{i,\varphi} = \hat\varphi_{(i)} / \hat\varphi - 1,

φ running over σ² and each random-effect variance and covariance. ``method="exact"`` refits the
model with zero prior weights on the deleted rows (the same compiled objective; a zero weight removes
the row, so n, and σ̂'s degrees of freedom, drop as in a refit without it), started from the full
fit's θ. ``method="approx"`` is the one-step update: θ held at the full fit's θ̂, β̂, σ̂ and
vcov recomputed once without the case (no optimisation).

References
----------
Christensen, R., Pearson, L. M. & Johnson, W. (1992). Case-deletion diagnostics for mixed models.
Technometrics 34, 38–45.
Loy, A. & Hofmann, H. (2014). HLMdiag: a suite of diagnostics for hierarchical linear models in R.
J. Stat. Softw. 56(5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..control import LmerControl
from ..results.varcorr import term_covariances

__all__ = ["influence_frame", "varcomp_names"]

_QUIET = LmerControl(check_conv="ignore", check_singular="ignore")


def varcomp_names(spec) -> list[str]:
    """``Subject.var((Intercept))``, ``Subject.cov((Intercept),Days)``, …, ``sigma2``."""
    out = []
    for t in spec.terms:
        cn = t.column_names
        for i, j in t.theta_pairs():
            out.append(f"{t.group}.var({cn[i]})" if i == j else f"{t.group}.cov({cn[j]},{cn[i]})")
    return out + ["sigma2"]


def _varcomp(spec, theta: np.ndarray, scale: float) -> np.ndarray:
    covs = term_covariances(spec.terms, theta, scale)
    vals = [S[i, j] for t, S in zip(spec.terms, covs) for i, j in t.theta_pairs()]
    return np.array(vals + [scale])


def _cases(fit, level: str) -> tuple[list[str], list[np.ndarray]]:
    """Labels and row masks of the cases to delete."""
    spec = fit.spec
    if level == "observation":
        rows = np.flatnonzero(spec.keep)      # positions in the user's data (0-based)
        return list(rows), [np.arange(spec.n) == i for i in range(spec.n)]
    for t in spec.terms:
        if level in (t.group, *t.group_vars) and (level == t.group or len(t.group_vars) == 1):
            return list(t.levels), [t.codes == g for g in range(t.n_levels)]
    valid = list(dict.fromkeys(t.group for t in spec.terms)) + ["observation"]
    raise ValueError(f"level must be a grouping factor of the model or 'observation'; got "
                     f"{level!r}, valid: {valid}")


def _deleted_fit(fit, mask: np.ndarray, method: str):
    """(β, vcov β, variance components) of the fit without the rows in ``mask``."""
    from ..fit.lmm_fit import fit_lmm
    from ..fit.lmm_objective import LMMObjective
    w = np.where(mask, 0.0, fit.spec.weights)
    spec = fit.spec.with_weights(w)
    obj = LMMObjective(spec, fit.reml, structure=fit.objective.structure)
    if method == "exact":
        f = fit_lmm(spec, reml=fit.reml, control=_QUIET, start=fit.theta, objective=obj)
        return f.beta, f.vcov_beta, _varcomp(spec, f.theta, f.scale)
    est = obj.estimates(fit.theta)
    scale = float(est["pwrss"]) / (obj.cp.n - (spec.p if fit.reml else 0))
    Linv = np.linalg.inv(np.asarray(est["Lxx"]))
    return np.asarray(est["beta"]), scale * Linv.T @ Linv, _varcomp(spec, fit.theta, scale)


def influence_frame(fit, level: str = "observation", method: str = "exact") -> pd.DataFrame:
    """One row per deleted case: cooks_d, mdffits, covtrace, covratio, rvc_<component>."""
    if method not in ("exact", "approx"):
        raise ValueError(f"method must be 'exact' or 'approx', got {method!r}")
    labels, masks = _cases(fit, level)
    beta, V = np.asarray(fit.beta), np.asarray(fit.vcov_beta)
    Vinv, p = np.linalg.inv(V), len(beta)
    vc = _varcomp(fit.spec, fit.theta, fit.scale)
    rows = []
    for mask in masks:
        b_i, V_i, vc_i = _deleted_fit(fit, mask, method)
        d = beta - b_i
        with np.errstate(divide="ignore", invalid="ignore"):
            rvc = np.where(vc != 0, vc_i / vc - 1, np.nan)
        rows.append([d @ Vinv @ d / p, d @ np.linalg.solve(V_i, d) / p,
                     abs(np.trace(Vinv @ V_i) - p), np.linalg.det(V_i) / np.linalg.det(V), *rvc])
    cols = ["cooks_d", "mdffits", "covtrace", "covratio"]
    cols += [f"rvc_{n}" for n in varcomp_names(fit.spec)]
    name = "observation" if level == "observation" else level
    return pd.DataFrame(rows, index=pd.Index(labels, name=name), columns=cols)
