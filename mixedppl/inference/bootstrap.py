r"""Parametric bootstrap of a linear mixed model, as lme4's ``bootMer`` + ``confint(method="boot")``.

Each replicate simulates :math:`y^* = X\hat\beta + o + Zu^* + \varepsilon^*` from the fit
(``simulate``, new random effects), refits the same model to :math:`y^*` with the fit's estimator,
reusing the compiled objective (only the cross-products are re-formed), and records
:math:`\psi^* = (\sigma_{k,i}, \rho_{k,ij}, \sigma, \beta)`, the parameters of the profile intervals.
Intervals are percentile intervals as ``boot::boot.ci(type="perc")``: order statistics at
:math:`(R+1)\alpha`, interpolated on the normal-quantile scale.

GLMMs (:func:`glmm_bootstrap_params`, :func:`glmm_bootstrap_confint`), as ``bootMer`` on a
``glmerMod``: responses from :func:`~mixedppl.inference.simulate.simulate_counts` (new random
effects, the family's simulator), each refitted by the Laplace (or AGQ) deviance of the fit,
started at the fit's optimum and Hessian (:func:`~mixedppl.fit.laplace_refit.warm_refit`), and
:math:`\psi^* = (\sigma_{k,i}, \rho_{k,ij}, [\phi], \beta)` recorded: the rows of the GLMM
profile intervals, with the dispersion of a family that has one. A CLMM (ordinal's ``clmm``)
the same way: categories drawn from :math:`P(Y = j \mid \eta^*)` given the thresholds
:math:`\hat\alpha`, each refit warm-started at the fit's optimum, and
:math:`\psi^* = (\sigma_{k,i}, \rho_{k,ij}, \alpha, \beta)`: the rows of ordinal's
``confint`` (thresholds ``1|2``, …, then β) after the random-effect SDs. With random terms in
the ziformula (glmmTMB's ``ziformula = ~ x + (1 | g)``) the responses draw new zero-inflation
random effects too, each refit minimises the joint deviance over (θ_c, θ_z, β, φ) (the same
compiled graphs, :class:`~mixedppl.fit.laplace_zire.ZIReObjective`), and ψ* adds the zi terms'
SDs / correlations (``zi~sd_(Intercept)|g``) after the conditional ones.

References
----------
Davison, A. C. & Hinkley, D. V. (1997). Bootstrap Methods and their Application, section 5.2-5.3.
Bates, D. et al. (2015). J. Stat. Softw. 67(1), section 5.2 (``bootMer``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ..core.progress import progress_bar
from ..core.control import LmerControl
from ..core.threads import blas_threads_for
from ..fit.laplace_refit import n_theta, refit_objective, warm_refit
from ..fit.laplace_zire import zi_spec
from ..fit.lmm_fit import refit_theta, start_hessian
from ..fit.lmm_objective import LMMObjective
from ..fit.records import LaplaceFit, LMMFit, residual_variance
from .profile import theta_to_psi, varpar_names
from .simulate import simulate_counts, simulate_responses

__all__ = ["bootstrap_params", "bootstrap_confint", "percentile_interval",
           "glmm_bootstrap_params", "glmm_bootstrap_confint", "glmm_parameter_names",
           "threshold_names"]

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


def _run_blocks(refit_block, args: tuple, Y: np.ndarray, n_jobs: int, progress: bool,
                extra: tuple = ()) -> np.ndarray:
    """``refit_block(*args, Y[:, block], *extra)`` over blocks of columns, in this process or
    in ``n_jobs`` worker processes (−1: one per core); rows stacked in column order."""
    nsim = Y.shape[1]
    blocks = np.array_split(np.arange(nsim), max(1, min(nsim, 10 * max(1, n_jobs))))
    bar = _bar(nsim, progress)
    results = []
    if n_jobs == 1:
        for idx in blocks:
            results.append(refit_block(*args, Y[:, idx], *extra))
            bar.update(len(idx))
    else:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=None if n_jobs < 0 else n_jobs) as pool:
            futures = [pool.submit(refit_block, *args, Y[:, idx], *extra) for idx in blocks]
            for fut, idx in zip(futures, blocks):
                results.append(fut.result())
                bar.update(len(idx))
    bar.close()
    return np.vstack(results)


def _check_nsim(nsim) -> int:
    if int(nsim) != nsim or nsim < 2:
        raise ValueError(f"nsim must be an integer ≥ 2, got {nsim!r}")
    return int(nsim)


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
    Y = simulate_responses(record, _check_nsim(nsim), seed=seed)
    names = varpar_names(record.spec) + list(record.spec.fe_names)
    args = (record.spec, record.reml, record.objective.structure, record.theta)
    reps = _run_blocks(_refit_block, args, Y, n_jobs, progress, (start_hessian(record),))
    return pd.DataFrame(reps, columns=names)


def threshold_names(spec) -> list[str]:
    """A cumulative model's threshold names ``1|2``, ``2|3``, … from the response levels."""
    levels = [str(v) for v in spec.levels]
    return [f"{a}|{b}" for a, b in zip(levels[:-1], levels[1:])]


def glmm_parameter_names(record: LaplaceFit) -> list[str]:
    """``sd_(Intercept)|herd``, …, the dispersion's name (``size``, ``cv``, ``precision``) for
    a family with one (a CLMM: its thresholds ``1|2``, …; with zero-inflation / dispersion
    formulas: their coefficients, ``zi~(Intercept)``, ``log(size)~x``, …), then the fixed effects.
    The SDs / correlations of random terms in the ziformula follow the conditional ones, named
    with ``zi~`` (``zi~sd_(Intercept)|site``)."""
    zi_sds = ([f"zi~{n}" for n in varpar_names(zi_spec(record.spec))[:-1]]
              if record.spec.zi_terms else [])
    if len(record.alpha):
        middle = threshold_names(record.spec)
    elif record.spec.aux_designs:   # zero-inflation / dispersion formulas: their coefficients
        middle = record.family.phi_names()
    else:
        middle = [record.family.dispersion] if len(record.phi) else []
    return varpar_names(record.spec)[:-1] + zi_sds + middle + list(record.spec.fe_names)


def _glmm_psi(record: LaplaceFit, x: np.ndarray) -> np.ndarray:
    """ψ = (sd/cor…, [zi sd/cor…], dispersion | thresholds α(φ), β) at the optimum
    x = (θ, β, φ) (θ = (θ_c, θ_z) with random terms in the ziformula)."""
    spec = record.spec
    nc, nt, p = spec.n_theta, n_theta(record), spec.p
    zi_sds = (theta_to_psi(zi_spec(spec), x[nc:nt], 1.0)[:-1] if spec.zi_terms
              else np.zeros(0))
    if len(record.alpha):
        middle = record.family.thresholds_np(x[nt + p:])
    elif spec.aux_designs:   # γ (logit) and δ (log φ) as they are
        middle = x[nt + p:]
    else:
        middle = np.exp(x[nt + p:nt + p + 1]) if len(record.phi) else np.zeros(0)
    return np.concatenate([theta_to_psi(spec, x[:nc], 1.0)[:-1], zi_sds, middle,
                           x[nt:nt + p]])


def _glmm_refit_block(record: LaplaceFit, Y: np.ndarray) -> np.ndarray:
    """One row ψ* per column of simulated counts Y (warm-started Laplace refits)."""
    out = []
    objectives = (refit_objective(record, counts=y) for y in Y.T)
    first = next(objectives, None)
    if first is None:
        return np.empty((0, len(glmm_parameter_names(record))))
    with blas_threads_for(first):
        for obj in (first, *objectives):
            x, dev = warm_refit(record, obj)
            row = _glmm_psi(record, x)
            out.append(row if np.isfinite(dev) else np.full(len(row), np.nan))
    return np.array(out).reshape(len(out), -1)


def glmm_bootstrap_params(record: LaplaceFit, nsim: int = 500, seed=1, n_jobs: int = 1,
                          progress: bool = False) -> pd.DataFrame:
    """(nsim × parameters) replicates of (sd/cor…, [dispersion], β) of a GLMM, as
    ``bootMer(fit, FUN, nsim, type = "parametric", use.u = FALSE)``, or of (sd/cor…, α, β) of
    a CLMM (module docstring).

    A replicate whose refit fails (a non-finite deviance) is a row of NaN, left out of the
    percentile intervals.

    Examples
    --------
    >>> import mixedppl as mp
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"))
    >>> reps = glmm_bootstrap_params(g.record, nsim=4, seed=1)
    >>> reps.shape, list(reps.columns)[:2]
    ((4, 5), ['sd_(Intercept)|herd', '(Intercept)'])
    >>> o = mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))
    >>> list(glmm_bootstrap_params(o.record, nsim=2, seed=1).columns)[:3]
    ['sd_(Intercept)|judge', '1|2', '2|3']
    """
    Y = simulate_counts(record, _check_nsim(nsim), seed=seed)
    reps = _run_blocks(_glmm_refit_block, (record,), Y, n_jobs, progress)
    return pd.DataFrame(reps, columns=glmm_parameter_names(record))


def _bar(total: int, show: bool):
    return progress_bar(total, "bootstrap refits", show)


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


def percentile_table(reps: pd.DataFrame, level: float) -> pd.DataFrame:
    """One percentile interval (:func:`percentile_interval`) per column of replicates."""
    rows = [percentile_interval(reps[c].to_numpy(), level) for c in reps.columns]
    pct = [f"{100 * (1 - level) / 2:.3g} %", f"{100 * (1 + level) / 2:.3g} %"]
    return pd.DataFrame(rows, index=reps.columns, columns=pct)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


def bootstrap_confint(record: LMMFit, level: float = 0.95, nsim: int = 500, seed=1,
                      n_jobs: int = 1, progress: bool = True) -> pd.DataFrame:
    """Percentile intervals from :func:`bootstrap_params`, rows as the profile intervals."""
    _check_level(level)
    reps = bootstrap_params(record, nsim=nsim, seed=seed, n_jobs=n_jobs, progress=progress)
    return percentile_table(reps, level)


def glmm_bootstrap_confint(record: LaplaceFit, level: float = 0.95, nsim: int = 500, seed=1,
                           n_jobs: int = 1, progress: bool = True) -> pd.DataFrame:
    """Percentile intervals from :func:`glmm_bootstrap_params` (lme4's
    ``confint(fit, method = "boot")``), rows as the GLMM profile intervals (plus the
    dispersion of a family with one).

    Examples
    --------
    >>> import mixedppl as mp
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"))
    >>> glmm_bootstrap_confint(g.record, nsim=20, seed=1, progress=False).shape
    (5, 2)
    """
    _check_level(level)
    reps = glmm_bootstrap_params(record, nsim=nsim, seed=seed, n_jobs=n_jobs, progress=progress)
    return percentile_table(reps, level)
