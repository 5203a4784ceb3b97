r"""The linear predictor in NumPy: :math:`\eta = X\beta + o + \sum_k Z_k b_k` on the fitted rows
and on new data (the twin of the symbolic :func:`mixedppl.graph.joint.linear_predictor`).

On new rows the fixed part uses the fitted design's transform (same contrasts, same data-dependent
transforms) restricted to the columns kept by the rank check, and each random term contributes
:math:`z_{\text{new}}^\top b_{\text{level}}`, 0 for a level not seen in the fit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..core.exceptions import ModelSpecError
from ..spec.frame import as_pandas
from ..spec.reterm import value_labels

__all__ = ["fitted_eta", "new_eta", "fixed_columns", "random_contribution"]


def fitted_eta(spec, beta: np.ndarray, b: Sequence[np.ndarray],
               include_random: bool = True) -> np.ndarray:
    """Xβ + offset (+ Σ_k Z_k b_k) on the fitted rows; ``b`` holds one (G_k, ℓ_k) array per term."""
    eta = spec.X @ np.asarray(beta) + spec.offset
    if include_random:
        for t, bk in zip(spec.terms, b):
            eta = eta + np.einsum("ij,ij->i", t.z, bk[t.codes])
    return eta


def new_eta(spec, beta: np.ndarray, b: Sequence[np.ndarray], newdata: pd.DataFrame,
            include_random: bool = True) -> np.ndarray:
    """Xβ + offset (+ Zb) on ``newdata``; levels unseen in the fit contribute b = 0.

    Examples
    --------
    >>> import mixedppl as mp, pandas as pd
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> new = pd.DataFrame({"Days": [0, 5], "Subject": ["308", "999"]})
    >>> new_eta(fit.spec, fit.beta, fit.b, new).round(1).tolist()
    [253.7, 303.7]
    """
    newdata = as_pandas(newdata, "newdata")
    if len(newdata) == 0:
        return np.zeros(0)
    X, offset = spec.fixed_design.transform(newdata)
    eta = fixed_columns(X, spec) @ np.asarray(beta) + (0.0 if offset is None else offset)
    if include_random:
        for t, bk in zip(spec.terms, b):
            eta = eta + random_contribution(t, bk, newdata)
    return eta


def fixed_columns(X: np.ndarray, spec) -> np.ndarray:
    """The columns of a new design matrix that survived the fit's rank-deficiency check."""
    if not spec.dropped_columns:
        return X
    names = list(spec.fixed_design.column_names)
    return X[:, [names.index(n) for n in spec.fe_names]]


def random_contribution(term, b: np.ndarray, newdata: pd.DataFrame) -> np.ndarray:
    """z_newᵀ b_level for each new row; levels not seen in the fit contribute 0."""
    z, _ = term.design.transform(newdata)
    missing = [v for v in term.group_vars if v not in newdata.columns]
    if missing:
        raise ModelSpecError(f"newdata lacks grouping column(s) {missing} of term '{term.group}'; "
                             "add them or use include_random=False")
    parts = [value_labels(newdata[v]) for v in term.group_vars]
    labels = [":".join(p) for p in zip(*parts)]
    lookup = {lev: i for i, lev in enumerate(term.levels)}
    idx = np.array([lookup.get(lab, -1) for lab in labels])
    bb = np.where((idx >= 0)[:, None], b[np.clip(idx, 0, None)], 0.0)
    return np.einsum("ij,ij->i", np.asarray(z, float), bb)
