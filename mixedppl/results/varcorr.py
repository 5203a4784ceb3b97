"""Variance components in lme4's layouts: ``as.data.frame(VarCorr(fit))`` and per-group matrices.

For term k, Σ_k = s² T_k T_kᵀ, where s is the residual SD for an LMM (θ is relative to σ) and 1 for
families without a scale parameter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["group_labels", "term_covariances", "varcorr_frame"]


def group_labels(terms) -> list[str]:
    """Group names as R prints them: a repeated factor gets ``.1``, ``.2`` (``Subject.1``)."""
    seen: dict[str, int] = {}
    out = []
    for t in terms:
        k = seen.get(t.group, 0)
        out.append(t.group if k == 0 else f"{t.group}.{k}")
        seen[t.group] = k + 1
    return out


def term_covariances(terms, theta: np.ndarray, scale: float) -> list[np.ndarray]:
    """Σ_k = scale · T_k T_kᵀ for each term."""
    out, start = [], 0
    for t in terms:
        T = t.T(theta[start:start + t.n_theta])
        out.append(scale * T @ T.T)
        start += t.n_theta
    return out


def varcorr_frame(terms, covs: list[np.ndarray], residual_var: float | None) -> pd.DataFrame:
    """Rows as R's ``as.data.frame(VarCorr(fit))``: variances, then covariances, per group."""
    rows = []
    for label, t, S in zip(group_labels(terms), terms, covs):
        names = t.column_names
        sd = np.sqrt(np.clip(np.diag(S), 0, None))
        for i, name in enumerate(names):
            rows.append((label, name, None, S[i, i], sd[i]))
        for j in range(len(names)):
            for i in range(j + 1, len(names)):
                corr = S[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
                rows.append((label, names[j], names[i], S[i, j], corr))
    if residual_var is not None:
        rows.append(("Residual", None, None, residual_var, np.sqrt(residual_var)))
    return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
