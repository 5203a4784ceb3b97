"""Variance components in lme4's layout: ``as.data.frame(VarCorr(fit))``.

The numbers, Σ_k = s² T_k T_kᵀ per term, come from
:func:`mixedppl.fit.records.term_covariances` (an LMM record holds them as ``covs``); this module
lays them out as R prints them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..fit.records import group_labels

__all__ = ["varcorr_frame"]


def varcorr_frame(terms, covs: list[np.ndarray], residual_var: float | None) -> pd.DataFrame:
    """Rows as R's ``as.data.frame(VarCorr(fit))``: variances, then covariances, per group.

    A structured term (``ar1(times + 0 | g)``) has one SD row per column with ``var2`` empty and
    its covariances / correlations in the rows with ``var2`` set (every pair, as ``us``); a
    ``diag`` term has no covariance rows (its correlations are 0 by construction).

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + diag(Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> varcorr_frame(spec.terms, [np.diag([4.0, 1.0])], 9.0)["sdcor"].tolist()
    [2.0, 1.0, 3.0]
    """
    rows = []
    for label, t, S in zip(group_labels(terms), terms, covs):
        names = t.column_names
        sd = np.sqrt(np.clip(np.diag(S), 0, None))
        for i, name in enumerate(names):
            rows.append((label, name, None, S[i, i], sd[i]))
        for j in range(len(names) if t.covariance.correlated else 0):
            for i in range(j + 1, len(names)):
                corr = S[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
                rows.append((label, names[j], names[i], S[i, j], corr))
    if residual_var is not None:
        rows.append(("Residual", None, None, residual_var, np.sqrt(residual_var)))
    return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
