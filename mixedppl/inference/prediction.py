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
from ..spec.frame import as_pandas
from ..spec.reterm import value_labels
from .emmeans import mu_eta

__all__ = ["prediction_variance", "prediction_table", "clmm_prediction_table"]


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
    X = _fixed_rows(record.spec, newdata)
    var = np.einsum("ij,jk,ik->i", X, np.asarray(record.vcov_beta), X)
    if include_random:
        var = var + _random_variance(record, newdata)
    return var


def _fixed_rows(spec, newdata: pd.DataFrame | None) -> np.ndarray:
    """The fixed-effects design rows x of the fitted rows or of ``newdata``."""
    if newdata is None:
        return np.asarray(spec.X, float)
    newdata = as_pandas(newdata, "newdata")
    return np.asarray(fixed_columns(spec.fixed_design.transform(newdata)[0], spec), float)


def _random_variance(record, newdata: pd.DataFrame | None) -> np.ndarray:
    r""":math:`\sum_k z_k^\top C_{k,g} z_k` per row (:math:`\Sigma_k` for unseen levels)."""
    var = np.zeros(record.spec.n if newdata is None else len(newdata))
    for term, C, S in zip(record.spec.terms, record.condvar, record.covs):
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


def clmm_prediction_table(record, eta: np.ndarray, newdata: pd.DataFrame | None = None,
                          include_random: bool = True, type: str = "prob",
                          interval: str | None = None, level: float = 0.95,
                          columns: list | None = None) -> pd.DataFrame:
    r"""Delta-method SEs (and intervals) of a CLMM's predictions over (α̂, β̂).

    With :math:`\theta_{ij} = \alpha_j - \eta_i` and :math:`\gamma_{ij} = F(\theta_{ij})`
    (``"cum.prob"``), :math:`\pi_{ij} = \gamma_{ij} - \gamma_{i,j-1}` (``"prob"``,
    :math:`\gamma_{i0} = 0`, :math:`\gamma_{iK} = 1`), the gradient of :math:`\gamma_{ij}` over
    (α, β) is :math:`f(\theta_{ij})\,(e_j, -x_i)` and that of :math:`\pi_{ij}` the difference
    of two such rows; with V = ``vcov_alpha_beta`` (ordinal's ``vcov()`` without the variance
    parameters),

    .. math:: \operatorname{Var}(\hat\pi_{ij}) \approx g_{ij}^\top V g_{ij}
              \;+\; (f(\theta_{ij}) - f(\theta_{i,j-1}))^2 \sum_k z_k^\top C_{k,g} z_k
              \quad(\text{include\_random}),

    the random-effects part as in :func:`prediction_variance` (b̂ at its modes, treated as
    uncorrelated with (α̂, β̂)). ``"linear.predictor"`` :math:`x^\top\hat\beta + z^\top\hat b`
    has :func:`prediction_variance`. Without the random part this is ordinal's
    ``predict(clm, se.fit = TRUE)``; as there, a probability's confidence interval is built on
    the logit scale, :math:`\operatorname{logit}^{-1}(\operatorname{logit}\hat\pi \pm
    z\,\mathrm{SE}/(\hat\pi(1-\hat\pi)))`, a linear predictor's on its own scale.

    Parameters
    ----------
    record : LaplaceFit
        A CLMM fit (with ``alpha`` and ``vcov_alpha_beta``).
    eta : ndarray
        :math:`x^\top\hat\beta\ (+ z^\top\hat b)` per row.
    newdata : DataFrame, optional
    include_random : bool
    type : {"prob", "cum.prob", "linear.predictor"}
    interval : {None, "confidence"}
    level : float
    columns : list, optional
        Names of the prediction columns (response levels or thresholds).

    Returns
    -------
    DataFrame
        ``"linear.predictor"``: ``fit``, ``se_fit`` [, ``lower``, ``upper``]; otherwise columns
        ``(part, name)`` with part ``fit``, ``se_fit`` [, ``lower``, ``upper``], so that
        ``table["se_fit"]`` is the (n, K) or (n, K − 1) frame of SEs.
    """
    if interval not in (None, "confidence"):
        raise ValueError("a CLMM's predictions have confidence intervals only "
                         f"(interval=None or 'confidence'), got {interval!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    kinds = ("prob", "cum.prob", "linear.predictor")
    if type not in kinds:
        raise ValueError(f"se_fit / interval need type in {kinds}, got {type!r}")
    q = special.ndtri(0.5 + level / 2)
    eta = np.asarray(eta, float)
    random_var = _random_variance(record, newdata) if include_random else 0.0
    X = _fixed_rows(record.spec, newdata)
    if type == "linear.predictor":
        k = len(record.alpha)
        V_beta = np.asarray(record.vcov_alpha_beta)[k:, k:]
        se = np.sqrt(np.einsum("ij,jk,ik->i", X, V_beta, X) + random_var)
        out = {"fit": eta, "se_fit": se}
        if interval is not None:
            out["lower"], out["upper"] = eta - q * se, eta + q * se
        return pd.DataFrame(out)
    alpha = np.asarray(record.alpha, float)
    n, K1 = len(eta), len(alpha)
    theta = alpha[None, :] - eta[:, None]
    gamma = record.link.linkinv_np(theta)
    dens = mu_eta(record.link, theta)                            # f(θ_ij), n × (K − 1)
    # gradient of γ_ij over (α, β): f(θ_ij) (e_j, −x_i); shape n × (K − 1) × (K − 1 + p)
    grad = np.concatenate([dens[:, :, None] * np.eye(K1)[None],
                           -dens[:, :, None] * X[:, None, :]], axis=2)
    if type == "cum.prob":
        fit, dfdeta = gamma, dens
    else:
        zeros = np.zeros((n, 1, grad.shape[2]))
        full = np.concatenate([zeros, grad, zeros], axis=1)      # γ_0 = 0, γ_K = 1
        grad = np.diff(full, axis=1)
        fit = np.diff(np.hstack([np.zeros((n, 1)), gamma, np.ones((n, 1))]), axis=1)
        dfdeta = np.diff(np.hstack([np.zeros((n, 1)), dens, np.zeros((n, 1))]), axis=1)
    V = np.asarray(record.vcov_alpha_beta)
    var = np.einsum("ija,ab,ijb->ij", grad, V, grad) + dfdeta ** 2 * np.reshape(random_var,
                                                                                 (-1, 1))
    se = np.sqrt(var)
    parts = {"fit": fit, "se_fit": se}
    if interval is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            logit, se_logit = special.logit(fit), se / (fit * (1 - fit))
        parts["lower"] = special.expit(logit - q * se_logit)
        parts["upper"] = special.expit(logit + q * se_logit)
    names = list(columns) if columns is not None else list(range(fit.shape[1]))
    frames = {key: pd.DataFrame(value, columns=names) for key, value in parts.items()}
    return pd.concat(frames, axis=1)
