r"""Confidence intervals of the ICC of an LMM or a GLMM (``performance::icc(model, ci = 0.95)``).

The ICCs of :mod:`mixedppl.diagnostics.variance` are functions of the parameters
:math:`x = (\theta, \sigma, \beta)` (a GLMM: :math:`(\theta, \beta)`, σ = 1 and the family's latent
variance :math:`\sigma^2_\varepsilon` fixed). With :math:`M_k = \frac1n\sum_i z_{ki} z_{ki}^\top`,
:math:`C = \widehat{\operatorname{cov}}(X)` (denominator n − 1) and :math:`T_k(\theta)` the relative
factors,

.. math:: \sigma^2_r = \sigma^2 \sum_k \operatorname{tr}(T_k^\top M_k T_k),\quad
          \sigma^2_f = \beta^\top C \beta,\quad
          \text{ICC}_\text{adj} = \frac{\sigma^2_r}{\sigma^2_r + \sigma^2_\varepsilon},\quad
          \text{ICC}_\text{unadj} = \frac{\sigma^2_r}{\sigma^2_f + \sigma^2_r + \sigma^2_\varepsilon},

with :math:`\partial\sigma^2_r/\partial T_k = 2\sigma^2 M_k T_k` (at θ's lower-triangle positions),
:math:`\partial\sigma^2_r/\partial\sigma = 2\sigma^2_r/\sigma` and
:math:`\partial\sigma^2_f/\partial\beta = 2C\beta`.

``method="delta"``: :math:`\operatorname{var}(\widehat{\text{ICC}}) \approx g^\top V g` with g the
gradient above and V the asymptotic covariance of x̂ — for an LMM the block-diagonal
(2H⁻¹ of the REML / ML deviance in (θ, σ), lmerTest's Satterthwaite pieces, pseudo-inverted over
positive eigenvalues; vcov β̂), for a GLMM 2H⁻¹ of the Laplace deviance in (θ, β) (the fit's
Hessian). The interval is formed on the logit scale and mapped back, so it stays in (0, 1):
:math:`\operatorname{logit}^{-1}(\operatorname{logit}\widehat{\text{ICC}} \pm z\,
\mathrm{se}/(\widehat{\text{ICC}}(1 - \widehat{\text{ICC}})))`.

``method="boot"``: the ICC of every parametric-bootstrap refit
(:func:`~mixedppl.inference.bootstrap.bootstrap_params`,
:func:`~mixedppl.inference.bootstrap.glmm_bootstrap_params`) and percentile intervals
(:func:`~mixedppl.inference.bootstrap.percentile_interval`), as ``performance::icc`` with
``ci`` (which bootstraps by refitting).

References
----------
Nakagawa, S., Johnson, P. C. D. & Schielzeth, H. (2017). The coefficient of determination R² and
intra-class correlation coefficient from generalized linear mixed-effects models revisited and
expanded. J. R. Soc. Interface 14: 20170213.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ..core.threads import blas_threads_for
from ..fit.records import LaplaceFit, LMMFit
from ..spec.reterm import relative_factors
from .bootstrap import bootstrap_params, glmm_bootstrap_params, percentile_interval
from .profile import psi_to_theta_jacobian
from .satterthwaite import varpar_covariance

__all__ = ["icc_parameters", "icc_and_gradient", "icc_covariance", "icc_interval"]


def icc_parameters(record: LMMFit | LaplaceFit) -> tuple[np.ndarray, float]:
    """x̂ = (θ, σ, β) of an LMM or (θ, β) of a GLMM, and the latent residual variance of a GLMM
    (NaN for an LMM, whose residual variance is σ²)."""
    if isinstance(record, LMMFit):
        return np.concatenate([record.theta, [record.sigma], record.beta]), np.nan
    return (np.concatenate([record.theta, record.beta]),
            float(record.family.latent_variance(record.link)))


def icc_and_gradient(spec, x: np.ndarray, latent_variance: float = np.nan
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(adjusted, unadjusted) ICC at x and its (2 × len(x)) gradient (module docstring).

    Parameters
    ----------
    spec : ModelSpec
    x : ndarray
        (θ, σ, β) when ``latent_variance`` is NaN (an LMM), else (θ, β) (a GLMM, σ = 1).
    latent_variance : float
        σ²_ε of a GLMM; NaN for an LMM (σ²_ε = σ²).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> x, latent = icc_parameters(fit.record)
    >>> icc_and_gradient(fit.spec, x, latent)[0].round(4).tolist()
    [0.7217, 0.5206]
    """
    x = np.asarray(x, float)
    nt, p = spec.n_theta, spec.p
    lmm = np.isnan(latent_variance)
    theta, beta = x[:nt], x[-p:]
    sigma = float(x[nt]) if lmm else 1.0
    d_r = np.zeros(len(x))
    var_r, start = 0.0, 0
    for t, T in zip(spec.terms, relative_factors(spec.terms, theta)):
        M = t.z.T @ t.z / len(t.z)
        var_r += sigma ** 2 * float(np.trace(T.T @ M @ T))
        G = 2 * sigma ** 2 * M @ T
        for m, (i, j) in enumerate(t.theta_pairs()):
            d_r[start + m] = G[i, j]
        start += t.n_theta
    X = spec.X
    C = np.atleast_2d(np.cov(X, rowvar=False, ddof=1)) if len(X) > 1 else np.zeros((p, p))
    var_f = float(beta @ C @ beta)
    d_f = np.zeros(len(x))
    d_f[-p:] = 2 * C @ beta
    d_e = np.zeros(len(x))
    if lmm:
        var_e = sigma ** 2
        d_r[nt] = 2 * var_r / sigma if sigma > 0 else 0.0
        d_e[nt] = 2 * sigma
    else:
        var_e = float(latent_variance)
    adj_den, unadj_den = var_r + var_e, var_f + var_r + var_e
    values = np.array([var_r / adj_den, var_r / unadj_den])
    grad = np.vstack([(d_r * adj_den - var_r * (d_r + d_e)) / adj_den ** 2,
                      (d_r * unadj_den - var_r * (d_r + d_e + d_f)) / unadj_den ** 2])
    return values, grad


def icc_covariance(record: LMMFit | LaplaceFit) -> np.ndarray:
    """The asymptotic covariance of x̂ used by the delta method (module docstring)."""
    if isinstance(record, LMMFit):
        with blas_threads_for(record.objective):
            hess, _ = record.objective.satterthwaite_parts(record.theta, record.sigma)
        A = varpar_covariance(hess)
        k, p = len(A), record.spec.p
        V = np.zeros((k + p, k + p))
        V[:k, :k], V[k:, k:] = A, record.vcov_beta
        return V
    if record.hessian is None:
        raise NotImplementedError(
            "icc(ci=True, method='delta') needs the Hessian of the deviance in (θ, β), which a "
            "glmer(nAGQ=0) fit does not have: refit with nAGQ=1 or use method='boot'")
    k = record.spec.n_theta + record.spec.p
    return varpar_covariance(np.asarray(record.hessian))[:k, :k]


def _boot_parameters(record: LMMFit | LaplaceFit, nsim: int, seed, n_jobs: int,
                     progress: bool) -> np.ndarray:
    """x* per bootstrap refit (rows), from the replicates' (sd/cor…, [σ], β)."""
    spec = record.spec
    nt, p = spec.n_theta, spec.p
    if isinstance(record, LMMFit):
        reps = bootstrap_params(record, nsim=nsim, seed=seed, n_jobs=n_jobs,
                                progress=progress).to_numpy()
        psi, beta = reps[:, :nt + 1], reps[:, nt + 1:]
    else:
        reps = glmm_bootstrap_params(record, nsim=nsim, seed=seed, n_jobs=n_jobs,
                                     progress=progress).to_numpy()
        psi = np.column_stack([reps[:, :nt], np.ones(len(reps))])
        beta = reps[:, -p:]
    rows = []
    for s, b in zip(psi, beta):
        if not np.all(np.isfinite(s)) or not np.all(np.isfinite(b)):
            rows.append(np.full(nt + p + (isinstance(record, LMMFit)), np.nan))
            continue
        theta, _ = psi_to_theta_jacobian(spec, s)
        rows.append(np.concatenate([theta, s[-1:], b]) if isinstance(record, LMMFit)
                    else np.concatenate([theta, b]))
    return np.array(rows)


def icc_interval(record: LMMFit | LaplaceFit, method: str = "delta", level: float = 0.95,
                 nsim: int = 500, seed=1, n_jobs: int = 1, progress: bool = False
                 ) -> pd.DataFrame:
    """The adjusted and unadjusted ICC with a delta-method or parametric-bootstrap interval.

    Parameters
    ----------
    record : LMMFit or LaplaceFit
        The fit's record (a GLMM of a family with a latent variance: binomial).
    method : {"delta", "boot"}
    level : float
    nsim, seed, n_jobs, progress
        The bootstrap's (``method="boot"``), as ``confint(method="boot")``.

    Returns
    -------
    DataFrame
        Rows ``adjusted``, ``unadjusted``; columns ``ICC``, the lower and upper ends
        (``"2.5 %"``, ``"97.5 %"`` at level 0.95) and, for the delta method, ``SE``.

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (1 | Subject)", mp.datasets.load("sleepstudy"))
    >>> icc_interval(fit.record).round(3).loc["adjusted"].tolist()
    [0.589, 0.093, 0.403, 0.753]
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    key = method.lower()
    if key not in ("delta", "boot", "bootstrap"):
        raise ValueError(f"icc interval method must be 'delta' or 'boot', got {method!r}")
    x, latent = icc_parameters(record)
    values, grad = icc_and_gradient(record.spec, x, latent)
    pct = [f"{100 * (1 - level) / 2:.3g} %", f"{100 * (1 + level) / 2:.3g} %"]
    index = ["adjusted", "unadjusted"]
    if key == "delta":
        V = icc_covariance(record)
        se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", grad, V, grad), 0, None))
        z = float(special.ndtri(0.5 + level / 2))
        logit, se_logit = special.logit(values), se / (values * (1 - values))
        return pd.DataFrame({"ICC": values, "SE": se,
                             pct[0]: special.expit(logit - z * se_logit),
                             pct[1]: special.expit(logit + z * se_logit)}, index=index)
    xs = _boot_parameters(record, nsim, seed, n_jobs, progress)
    iccs = np.array([icc_and_gradient(record.spec, row, latent)[0] if np.all(np.isfinite(row))
                     else np.full(2, np.nan) for row in xs])
    ends = [percentile_interval(iccs[:, j], level) for j in range(2)]
    return pd.DataFrame({"ICC": values, pct[0]: [e[0] for e in ends],
                         pct[1]: [e[1] for e in ends]}, index=index)
