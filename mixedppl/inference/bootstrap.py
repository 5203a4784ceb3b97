r"""Parametric bootstrap of a linear mixed model, as lme4's ``bootMer`` + ``confint(method="boot")``.

Each replicate simulates :math:`y^* = X\hat\beta + o + Zu^* + \varepsilon^*` from the fit
(``simulate``, new random effects), refits the same model to :math:`y^*` with the fit's estimator,
reusing the compiled objective (only the cross-products are re-formed), and records
:math:`\psi^* = (\sigma_{k,i}, \rho_{k,ij}, \sigma, \beta)`, the parameters of the profile intervals.
Intervals are percentile intervals as ``boot::boot.ci(type="perc")``: order statistics at
:math:`(R+1)\alpha`, interpolated on the normal-quantile scale.

References
----------
Davison, A. C. & Hinkley, D. V. (1997). Bootstrap Methods and their Application, section 5.2-5.3.
Bates, D. et al. (2015). J. Stat. Softw. 67(1), section 5.2 (``bootMer``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ..core.control import LmerControl
from ..core.threads import blas_threads_for
from ..fit.lmm_fit import refit_theta, start_hessian
from ..fit.lmm_objective import LMMObjective
from ..fit.records import LMMFit, residual_variance
from .profile import theta_to_psi, varpar_names
from .simulate import simulate_responses

__all__ = ["bootstrap_params", "bootstrap_confint", "percentile_interval"]

_QUIET = LmerControl(check_conv="ignore", check_singular="ignore")


def _refit_block(spec, reml: bool, structure, theta0: np.ndarray, Y: np.ndarray,
                 hessian: tuple | None = None) -> np.ndarray:
    """Refit the model to each column of Y; one row (ψ, β) per column.

    Each refit is :func:`~mixedppl.fit.lmm_fit.refit_theta` (fit_lmm's numerical path: minimise
    the profiled deviance from the fit's θ, the probe off a zero bound and lme4's boundary check),
    then β̂ and σ̂ = √(r²/(n − p·reml)) from the estimates, without building a record per
    replicate, and with the BLAS thread limit set once per block, not once per refit (finding the
    BLAS libraries took ~12 ms a refit, more than the refit itself on small models). The minimiser
    is warm-started at the original optimum twice over: from θ̂, and, with ``hessian = (scale,
    H)`` (:func:`~mixedppl.fit.lmm_fit.start_hessian`), from the Hessian there (a projected
    quasi-Newton method); otherwise L-BFGS-B.
    """
    out = []
    objectives = (LMMObjective(spec.with_response(y), reml, structure=structure) for y in Y.T)
    first = next(objectives, None)
    if first is None:
        return np.empty((0, spec.n_theta + 1 + spec.p))
    with blas_threads_for(first):
        for obj in (first, *objectives):
            theta = refit_theta(obj, theta0, _QUIET, hessian)
            est = obj.estimates(theta)
            sigma = float(np.sqrt(residual_variance(est, obj.cp.n, spec.p, reml)))
            out.append(np.concatenate([theta_to_psi(spec, theta, sigma), np.asarray(est["beta"])]))
    return np.array(out)


def bootstrap_params(record: LMMFit, nsim: int = 500, seed=1, n_jobs: int = 1,
                     progress: bool = False) -> pd.DataFrame:
    """(nsim × parameters) replicates of (sd/cor…, sigma, β) from refits to simulated responses.

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff"))
    >>> reps = bootstrap_params(fit.record, nsim=5, seed=1)
    >>> reps.shape, list(reps.columns)
    ((5, 3), ['sd_(Intercept)|Batch', 'sigma', '(Intercept)'])
    """
    if int(nsim) != nsim or nsim < 2:
        raise ValueError(f"nsim must be an integer ≥ 2, got {nsim!r}")
    Y = simulate_responses(record, int(nsim), seed=seed)
    names = varpar_names(record.spec) + list(record.spec.fe_names)
    blocks = np.array_split(np.arange(Y.shape[1]), max(1, min(int(nsim), 10 * max(1, n_jobs))))
    args = (record.spec, record.reml, record.objective.structure, record.theta)
    hess = start_hessian(record)
    bar = _bar(int(nsim), progress)
    results = []
    if n_jobs == 1:
        for idx in blocks:
            results.append(_refit_block(*args, Y[:, idx], hess))
            bar.update(len(idx))
    else:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=None if n_jobs < 0 else n_jobs) as pool:
            futures = [pool.submit(_refit_block, *args, Y[:, idx], hess) for idx in blocks]
            for fut, idx in zip(futures, blocks):
                results.append(fut.result())
                bar.update(len(idx))
    bar.close()
    return pd.DataFrame(np.vstack(results), columns=names)


def _bar(total: int, show: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="bootstrap refits", disable=not show)


def percentile_interval(t: np.ndarray, level: float) -> tuple[float, float]:
    """``boot.ci(type="perc")``: order statistics at (R+1)α, normal-quantile interpolation."""
    t = np.sort(np.asarray(t, float))
    t = t[np.isfinite(t)]
    R = len(t)
    ends = []
    for alpha in ((1 - level) / 2, (1 + level) / 2):
        rk = (R + 1) * alpha
        k = int(np.floor(rk))
        if abs(rk - round(rk)) < 1e-10 and 1 <= round(rk) <= R:
            ends.append(t[int(round(rk)) - 1])
        elif k < 1:
            ends.append(t[0])
        elif k >= R:
            ends.append(t[-1])
        else:
            q = special.ndtri(np.array([alpha, k / (R + 1), (k + 1) / (R + 1)]))
            ends.append(t[k - 1] + (q[0] - q[1]) / (q[2] - q[1]) * (t[k] - t[k - 1]))
    return float(ends[0]), float(ends[1])


def bootstrap_confint(record: LMMFit, level: float = 0.95, nsim: int = 500, seed=1,
                      n_jobs: int = 1, progress: bool = True) -> pd.DataFrame:
    """Percentile intervals from :func:`bootstrap_params`, rows as the profile intervals."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    reps = bootstrap_params(record, nsim=nsim, seed=seed, n_jobs=n_jobs, progress=progress)
    rows = [percentile_interval(reps[c].to_numpy(), level) for c in reps.columns]
    pct = [f"{100 * (1 - level) / 2:.3g} %", f"{100 * (1 + level) / 2:.3g} %"]
    return pd.DataFrame(rows, index=reps.columns, columns=pct)
