"""Fit a linear mixed model: optimise the profiled deviance, check the boundary, extract estimates.

As lme4's ``optimizeLmer`` + ``mkMerMod``: L-BFGS-B on d(θ) with the exact gradient from the graph,
bounds 0 on the diagonal of each T_k, an end point on a bound accepted only when d does not
decrease into the interior (:func:`~mixedppl.fit.optimize.leave_boundary`); then lme4's
``check.boundary`` (a θ within ``boundary_tol`` of its bound is tried at the bound) and the
convergence / singularity / identifiability checks.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..core.control import LmerControl, act
from ..core.exceptions import ConvergenceWarning, IdentifiabilityWarning, SingularFitWarning
from ..core.threads import blas_threads_for
from ..spec.model_spec import ModelSpec
from .lmm_objective import LMMObjective
from .optimize import OptSummary, minimize_bounded

__all__ = ["fit_lmm", "check_boundary", "restart_from", "warn_unidentified"]


def check_boundary(objective, x: np.ndarray, fval: float, lower: np.ndarray,
                   tol: float) -> tuple[np.ndarray, float]:
    """lme4's ``check.boundary``: snap each coordinate within ``tol`` of a zero bound to it when
    the objective there is no worse (to 1e-10 relative: the deviance is even in θ at 0, so its
    values at 0 and at 1e-8 agree to rounding).

    ``objective(x) -> (f, ∇f)``; ``x`` may hold more than θ (GLMM: θ, β, φ), only coordinates
    with a zero lower bound are tried.
    """
    x = np.array(x, float)
    for i in np.flatnonzero((lower == 0) & (x - lower < tol) & (x > lower)):
        trial = x.copy()
        trial[i] = lower[i]
        f = float(objective(trial)[0])
        if f <= fval + 1e-10 * (1.0 + abs(fval)):
            x, fval = trial, min(f, fval)
    return x, fval


def restart_from(objective, lower: np.ndarray, control: LmerControl, fixed=None):
    """``x -> OptSummary``: L-BFGS-B on the profiled deviance from x (the restart that
    :func:`~mixedppl.fit.optimize.leave_boundary` uses after a warm-started quasi-Newton refit)."""
    def restart(x):
        return minimize_bounded(objective, x, lower, fixed=fixed, ftol=control.ftol,
                                gtol=control.gtol, maxiter=control.maxiter, probe_boundary=False)
    return restart


def warn_unidentified(spec, opt: OptSummary, who: str) -> None:
    """Warn when the deviance does not depend on some θ (``opt.flat``): the data cannot
    estimate that variance (e.g. fewer rows than levels + 2, or one row per level)."""
    names = spec.theta_names()
    flat = [names[i] for i in opt.flat if i < len(names)]
    if flat:
        warnings.warn(f"{who}: the likelihood does not depend on {', '.join(flat)} (it is flat "
                      "from 0 to the start value): the data do not identify this variance "
                      "component; its estimate is the start value, not an estimate. Simplify "
                      "the random effects or collect more groups / rows per group.",
                      IdentifiabilityWarning, stacklevel=4)


def fit_lmm(spec: ModelSpec, reml: bool = True, control: LmerControl | None = None,
            start: np.ndarray | None = None, fixed: dict[int, float] | None = None,
            objective: LMMObjective | None = None):
    """Fit by profiled REML / ML and return an :class:`~mixedppl.results.lmm.LMMResult`.

    Parameters
    ----------
    spec : ModelSpec
    reml : bool
    control : LmerControl, optional
    start : ndarray, optional
        Start for θ (default lme4's: T_k = I).
    fixed : dict, optional
        θ index → value held fixed (profiles).
    objective : LMMObjective, optional
        A prepared objective to reuse (refits).
    """
    from ..results.lmm import LMMResult

    control = control or LmerControl()
    t0 = time.perf_counter()
    objective = objective or LMMObjective(spec, reml=reml)
    objective._fn_dev  # compile (or fetch from the cache) before timing the optimiser
    t_opt = time.perf_counter()
    lower = spec.theta_lower()
    x0 = spec.theta_start() if start is None else np.asarray(start, float)
    with blas_threads_for(objective):
        opt = minimize_bounded(objective, x0, lower, fixed=fixed, mirror=spec.theta_mirror(),
                               ftol=control.ftol,
                               gtol=control.gtol, maxiter=control.maxiter)
        theta, fval = check_boundary(objective, opt.x, opt.fun, lower, control.boundary_tol)
        t_est = time.perf_counter()
        est = objective.estimates(theta)
    warn_unidentified(spec, opt, "lmer")
    converged = _converged(opt, control)
    if not converged:
        act(control.check_conv, f"model failed to converge ({opt.message}): max|projected "
            f"gradient| = {np.abs(opt.projected_gradient()).max():.3g}", ConvergenceWarning)
    singular = bool(np.any((lower == 0) & (theta < control.singular_tol)))
    if singular:
        act(control.check_singular, "boundary (singular) fit: a variance is estimated as 0 or a "
            "correlation as ±1; see fit.is_singular and fit.varcorr", SingularFitWarning)
    return LMMResult(spec=spec, reml=bool(reml), theta=theta, estimates=est, opt=opt,
                     converged=converged, is_singular=singular, objective=objective,
                     fval=fval, timing={"total": time.perf_counter() - t0,
                                        "compile": objective.compile_seconds,
                                        "optimize": t_est - t_opt,
                                        "estimates": time.perf_counter() - t_est})


def _converged(opt: OptSummary, control: LmerControl) -> bool:
    g = opt.projected_gradient()
    if not np.all(np.isfinite(g)) or not np.isfinite(opt.fun):
        return False
    return bool(np.abs(g).max(initial=0.0) < control.grad_tol)
