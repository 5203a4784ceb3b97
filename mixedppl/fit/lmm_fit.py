"""Fit a linear mixed model: optimise the profiled deviance, check the boundary, extract estimates.

As lme4's ``optimizeLmer`` + ``mkMerMod``: L-BFGS-B on d(θ) with the exact gradient from the graph,
bounds 0 on the diagonal of each T_k, an end point on a bound accepted only when d does not
decrease into the interior (:func:`~mixedppl.fit.optimize.leave_boundary`); then lme4's
``check.boundary`` (a θ within ``boundary_tol`` of its bound is tried at the bound) and the
convergence / singularity / identifiability checks. The result is a frozen
:class:`~mixedppl.fit.records.LMMFit`; :func:`refit_lmm` fits the same model again (new response,
weights or estimator) with the compiled objective reused.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..core.control import LmerControl, act
from ..core.exceptions import ModelSpecError
from ..core.exceptions import ConvergenceWarning, IdentifiabilityWarning, SingularFitWarning
from ..core.threads import blas_threads_for
from ..spec.model_spec import ModelSpec
from .lmm_objective import LMMObjective
from .optimize import (OptSummary, difference_hessian, leave_boundary, minimize_bounded,
                       quasi_newton_box)
from .records import LMMFit

__all__ = ["fit_lmm", "refit_lmm", "refit_theta", "start_hessian", "quasi_newton_fit",
           "check_boundary", "restart_from", "warn_unidentified"]


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
            objective: LMMObjective | None = None) -> LMMFit:
    """Fit by profiled REML / ML.

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

    Returns
    -------
    LMMFit
        The frozen record (wrap it in :class:`~mixedppl.results.lmm.LMMResult` for the
        accessors).

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> fit_lmm(spec).beta.round(3).tolist()
    [251.405, 10.467]
    """
    control = control or LmerControl()
    t0 = time.perf_counter()
    objective = objective or LMMObjective(spec, reml=reml)
    objective.compile()  # (or fetch from the cache) before timing the optimiser
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
    return LMMFit.from_estimates(
        spec, reml, theta, est, objective.cp.n, fval=float(fval), opt=opt, converged=converged,
        is_singular=singular, objective=objective,
        timing={"total": time.perf_counter() - t0, "compile": objective.compile_seconds,
                "optimize": t_est - t_opt, "estimates": time.perf_counter() - t_est})


def refit_lmm(record: LMMFit, y: np.ndarray | None = None, weights: np.ndarray | None = None,
              reml: bool | None = None, control: LmerControl | None = None,
              start: np.ndarray | None = None) -> LMMFit:
    """The model of ``record`` fitted again: to a new response, with new prior weights and / or
    by the other estimator (lme4's ``refit`` / ``refitML``), reusing the compiled objective.

    Parameters
    ----------
    record : LMMFit
    y : array-like (n,), optional
        New response, one finite number per row used in the fit.
    weights : array-like (n,), optional
        New prior weights (a zero weight removes the row: case deletion).
    reml : bool, optional
        The estimator (default: the record's); ``reml=False`` is the ML refit of a REML fit.
    control : LmerControl, optional
    start : ndarray, optional
        Start for θ (default lme4's T_k = I; profiles and case deletion start at ``record.theta``).

    Returns
    -------
    LMMFit

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> ml = refit_lmm(fit_lmm(spec), reml=False)
    >>> ml.reml, round(ml.loglik, 3)
    (False, -875.97)
    """
    spec = record.spec
    if y is not None:
        if isinstance(y, str) or np.ndim(y) != 1 or hasattr(y, "columns"):
            raise ModelSpecError("the new response must be a one-dimensional array of numbers "
                                 f"(one per row used in the fit, {spec.n})")
        spec = spec.with_response(np.asarray(y))
    if weights is not None:
        spec = spec.with_weights(np.asarray(weights, float))
    reml = record.reml if reml is None else bool(reml)
    objective = LMMObjective(spec, reml, structure=record.objective.structure)
    return fit_lmm(spec, reml=reml, control=control, start=start, objective=objective)


def start_hessian(record: LMMFit) -> tuple[np.ndarray, np.ndarray | None]:
    """Scale and scaled Hessian of the fit's own deviance at θ̂ (differences of the exact
    gradient): the first quasi-Newton matrix of refits started at θ̂ (bootstrap replicates,
    case deletion). None when not positive definite (e.g. a singular fit), and the refits then
    use L-BFGS-B alone."""
    obj, theta = record.objective, np.asarray(record.theta, float)
    sc = np.maximum(np.abs(theta), 1e-2)
    lower = record.spec.theta_lower()
    if np.any(theta[lower == 0] <= 1e-4 * sc[lower == 0]):
        return sc, None
    with blas_threads_for(obj):
        H = difference_hessian(lambda u: obj(u * sc)[1] * sc, theta / sc, lower=lower / sc,
                               positive_definite=True)
    return sc, H


def quasi_newton_fit(objective, theta0: np.ndarray, lower: np.ndarray, sc: np.ndarray,
                     B0: np.ndarray) -> OptSummary:
    """Minimise from θ̂ with :func:`~mixedppl.fit.optimize.quasi_newton_box`, B0 the Hessian at
    the original optimum (scaled by ``sc``): 5–8 deviance evaluations where L-BFGS-B, which starts
    from a multiple of the identity, takes ~20. Falls back to L-BFGS-B itself when not converged."""
    n_evals = [0]

    def fg(u):
        n_evals[0] += 1
        f, g = objective(u * sc)
        return float(f), np.asarray(g, float) * sc
    upper = np.full(len(theta0), np.inf)
    f, u, B = quasi_newton_box(fg, theta0 / sc, lower / sc, upper / sc, B0, tol=1e-11)
    x = np.maximum(u * sc, lower)
    f, g = objective(x)
    return OptSummary("quasi-Newton" if B is not None else "L-BFGS-B", theta0, x, float(f),
                      n_evals[0] + 1, n_evals[0], True, "", np.asarray(g, float), lower, upper, {})


def refit_theta(objective: LMMObjective, theta0: np.ndarray, control: LmerControl,
                start_hessian: tuple | None = None) -> np.ndarray:
    """θ̂ of ``objective`` (a refit of a fitted model) started at the fit's θ̂ ``theta0``:
    :func:`fit_lmm`'s numerical path (minimise, probe off a zero bound, lme4's boundary check)
    without the checks, warnings and record, for the many refits of the bootstrap and of case
    deletion. With ``start_hessian = (scale, H)`` (:func:`start_hessian`, H not None) the
    minimiser is the projected quasi-Newton method from H; otherwise L-BFGS-B."""
    spec = objective.spec
    lower = spec.theta_lower()
    sc, H = start_hessian if start_hessian is not None else (None, None)
    if H is not None:
        opt = leave_boundary(objective, quasi_newton_fit(objective, theta0, lower, sc, H),
                             restart_from(objective, lower, control), mirror=spec.theta_mirror())
    else:
        opt = minimize_bounded(objective, theta0, lower, mirror=spec.theta_mirror(),
                               ftol=control.ftol, gtol=control.gtol, maxiter=control.maxiter)
    theta, _ = check_boundary(objective, opt.x, opt.fun, lower, control.boundary_tol)
    return theta


def _converged(opt: OptSummary, control: LmerControl) -> bool:
    g = opt.projected_gradient()
    if not np.all(np.isfinite(g)) or not np.isfinite(opt.fun):
        return False
    return bool(np.abs(g).max(initial=0.0) < control.grad_tol)
