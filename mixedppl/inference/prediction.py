r"""Standard errors and intervals of predictions, by the delta method.

For a row with fixed-effects row :math:`x` and random-effects rows :math:`z_k` (level g of term
k), the prediction :math:`\hat\eta = x^\top\hat\beta\ (+ \sum_k z_k^\top\hat b_{k,g})` gets the
variance

.. math:: \operatorname{Var}(\hat\eta) \approx x^\top V_\beta\, x
          \;+\; \sum_k z_k^\top C_{k,g}\, z_k \quad(\text{include\_random}),

:math:`V_\beta` the covariance of β̂ and :math:`C_{k,g}` the conditional covariance of
:math:`b_{k,g}` (lme4's ``condVar``); a level not seen in the fit is predicted with b = 0 and
gets the random effects' covariance :math:`\Sigma_k` instead. β̂ and b̂ are treated as
uncorrelated (the approximation of ``merTools::predictInterval``). A prediction interval of an
LMM adds the residual variance σ̂² (σ̂²/w for prior weights w = 1 on new rows):
:math:`\hat\eta \pm z_{1-\alpha/2}\sqrt{\operatorname{Var}(\hat\eta) + \hat\sigma^2}`; the
confidence interval leaves σ̂² out. Quantiles are normal (lme4 has no df for predictions).

For a GLMM on the response scale the SE is :math:`|{\rm d}\mu/{\rm d}\eta|\,{\rm SE}(\hat\eta)`
and the interval's limits are the link-scale limits back-transformed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ..core.exceptions import ModelSpecError
from ..fit.records import LMMFit
from ..graph.linear_predictor import fixed_columns
from ..spec.reterm import value_labels
from .emmeans import mu_eta

__all__ = ["prediction_variance", "prediction_table"]


def _random_rows(term, newdata: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """z rows and level index (−1 for a level not in the fit) of a term on the rows."""
    if newdata is None:
        return np.asarray(term.z, float), np.asarray(term.codes)
    missing = [v for v in term.group_vars if v not in newdata.columns]
    if missing:
        raise ModelSpecError(f"newdata lacks grouping column(s) {missing} of term '{term.group}'; "
                             "add them or use include_random=False")
    z, _ = term.design.transform(newdata)
    parts = [value_labels(newdata[v]) for v in term.group_vars]
    lookup = {lev: i for i, lev in enumerate(term.levels)}
    idx = np.array([lookup.get(":".join(p), -1) for p in zip(*parts)], dtype=int)
    return np.asarray(z, float), idx


def prediction_variance(record, newdata: pd.DataFrame | None = None,
                        include_random: bool = True) -> np.ndarray:
    """Var(η̂) per row (see the module docstring) on the fitted rows or on ``newdata``.

    Examples
    --------
    >>> import numpy as np, mixedppl as mp, pandas as pd
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> new = pd.DataFrame({"Days": [0.0, 5.0], "Subject": ["308", "999"]})
    >>> v = prediction_variance(fit.record, new, include_random=False)
    >>> X = np.array([[1.0, 0.0], [1.0, 5.0]])
    >>> bool(np.allclose(v, np.diag(X @ fit.vcov_beta @ X.T)))
    True
    """
    spec = record.spec
    if newdata is None:
        X = spec.X
    else:
        if not isinstance(newdata, pd.DataFrame):
            raise ModelSpecError("newdata must be a pandas DataFrame")
        X = fixed_columns(spec.fixed_design.transform(newdata)[0], spec)
    var = np.einsum("ij,jk,ik->i", X, np.asarray(record.vcov_beta), X)
    if include_random:
        for term, C, S in zip(spec.terms, record.condvar, record.covs):
            z, idx = _random_rows(term, newdata)
            cov = np.where((idx >= 0)[:, None, None], np.asarray(C)[np.clip(idx, 0, None)],
                           np.asarray(S)[None])
            var = var + np.einsum("ij,ijk,ik->i", z, cov, z)
    return var


def prediction_table(record, eta: np.ndarray, newdata: pd.DataFrame | None = None,
                     include_random: bool = True, interval: str | None = None,
                     level: float = 0.95, type: str = "link") -> pd.DataFrame:
    """``fit``, ``se_fit`` and (with ``interval``) ``lower``, ``upper`` of each prediction.

    Parameters
    ----------
    record : LMMFit or LaplaceFit
    eta : ndarray
        The predictions on the link scale (what ``predict`` computed).
    newdata : DataFrame, optional
    include_random : bool
    interval : {None, "confidence", "prediction"}
        ``"prediction"`` is for LMMs (adds σ̂²).
    level : float
    type : {"link", "response"}
        GLMMs: ``"response"`` maps through the inverse link (delta-method SE).

    Returns
    -------
    DataFrame
    """
    if interval not in (None, "confidence", "prediction"):
        raise ValueError(f"interval must be None, 'confidence' or 'prediction', got {interval!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    is_lmm = isinstance(record, LMMFit)
    if interval == "prediction" and not is_lmm:
        raise ValueError("prediction intervals are for LMMs (a GLMM's new response is not "
                         "normal); use interval='confidence' or simulate()")
    var = prediction_variance(record, newdata, include_random)
    se = np.sqrt(var)
    out = {"fit": np.asarray(eta, float), "se_fit": se}
    if interval is not None:
        half = special.ndtri(0.5 + level / 2) * np.sqrt(
            var + (record.scale if interval == "prediction" else 0.0))
        out["lower"], out["upper"] = out["fit"] - half, out["fit"] + half
    if type == "response" and not is_lmm:
        link = record.link
        out["se_fit"] = np.abs(mu_eta(link, out["fit"])) * se
        for key in ("fit", "lower", "upper"):
            if key in out:
                out[key] = link.linkinv_np(out[key])
        if interval is not None:
            out["lower"], out["upper"] = (np.minimum(out["lower"], out["upper"]),
                                          np.maximum(out["lower"], out["upper"]))
    elif type not in ("link", "response"):
        raise ValueError(f"type must be 'link' or 'response', got {type!r}")
    return pd.DataFrame(out)
