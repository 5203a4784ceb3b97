r"""Warm-started refits of a GLMM / CLMM Laplace fit: a new response or new prior weights, the
same compiled deviance, started at the fit's optimum.

The bootstrap (:mod:`mixedppl.inference.bootstrap`) and the case-deletion diagnostics
(:mod:`mixedppl.diagnostics.influence`) refit one model many times to responses or weights
close to the original ones. Each refit here builds a
:class:`~mixedppl.fit.laplace.LaplaceObjective` for the new data (the compiled functions are
cached by the model's structure, so nothing is compiled again) and minimises the Laplace
deviance :math:`D(\theta, \beta, \phi)` from the fit's :math:`\hat x = (\hat\theta, \hat\beta,
\hat\phi)` by the projected quasi-Newton method started from the fit's Hessian of D
(:func:`~mixedppl.fit.optimize.quasi_newton_box`: a few evaluations where a cold L-BFGS-B start
takes dozens), then applies lme4's boundary check
(:func:`~mixedppl.fit.lmm_fit.check_boundary`). No result record is built per refit.

A ``glmer(nAGQ = 0)`` record (:mod:`mixedppl.fit.laplace_nagq0`) is refitted by its own
objective, :math:`D_0(\theta)` with β̂(θ) from the joint penalised IRLS: :func:`refit_objective`
gives a :class:`~mixedppl.fit.laplace_nagq0.JointObjective`, :func:`warm_refit` minimises it over
θ from θ̂ (L-BFGS-B, the same tolerances as ``fit_nagq0``; its inner IRLS started at the
fit's β̂) and returns (θ, β̂(θ)); :func:`warm_refit_vcov` is lme4's ``(R_XᵀR_X)⁻¹`` there.

A record with random terms in the ziformula (``spec.zi_terms``,
:mod:`mixedppl.fit.laplace_zire`) is refitted by its joint deviance
(:class:`~mixedppl.fit.laplace_zire.ZIReObjective`, the same compiled graphs) over
x = (θ_c, θ_z, β, φ), the vector its Hessian is over.
"""

from __future__ import annotations

import numpy as np

from .laplace import LaplaceObjective
from .laplace_nagq0 import JointObjective
from .laplace_zire import ZIReObjective, joint_spec
from .lmm_fit import check_boundary
from .optimize import difference_hessian, lbfgsb_box, minimize_bounded, quasi_newton_box
from .records import LaplaceFit

__all__ = ["optimum", "n_theta", "refit_objective", "warm_refit", "warm_refit_vcov"]


def optimum(record: LaplaceFit) -> np.ndarray:
    """The fit's optimum x̂ = (θ̂, β̂, φ̂), the vector :class:`LaplaceObjective` takes
    (θ̂ = (θ̂_c, θ̂_z) with random terms in the ziformula, as :class:`ZIReObjective`)."""
    return np.concatenate([record.theta, record.zi_theta, record.beta, record.phi])


def n_theta(record: LaplaceFit) -> int:
    """How many θ lead the optimiser's vector (the ziformula's terms' included)."""
    return len(record.theta) + len(record.zi_theta)


def refit_objective(record: LaplaceFit, counts: np.ndarray | None = None,
                    weights: np.ndarray | None = None) -> LaplaceObjective | JointObjective:
    """The record's Laplace deviance for new counts (successes / counts / category codes, as
    ``spec.counts()`` gives them) or new prior weights (a zero weight removes a row); for an
    nAGQ = 0 record its D₀(θ) (:class:`~mixedppl.fit.laplace_nagq0.JointObjective`); with
    random terms in the ziformula the joint :class:`ZIReObjective`."""
    spec = record.spec
    if weights is not None:
        spec = spec.with_weights(weights)
        y, n_trials = spec.counts()
        if counts is not None:
            y = counts
    else:
        y = record.counts if counts is None else np.asarray(counts, float)
        n_trials = record.trials
    if int(record.nAGQ) == 0:
        obj = JointObjective(spec, record.family, record.link, y, n_trials)
        obj.beta = np.asarray(record.beta, float).copy()     # the inner IRLS starts at β̂
        return obj
    if spec.zi_terms:
        return ZIReObjective(spec, y, n_trials)
    return LaplaceObjective(spec, record.family, record.link, y, n_trials, int(record.nAGQ))


def warm_refit(record: LaplaceFit, objective: LaplaceObjective,
               boundary_tol: float = 1e-5) -> tuple[np.ndarray, float]:
    """Minimise ``objective`` from the record's optimum and Hessian; (x, D) at the minimum.

    Parameters
    ----------
    record : LaplaceFit
        The original fit (its optimum and its Hessian start the search).
    objective : LaplaceObjective
        The deviance of the new data (:func:`refit_objective`).
    boundary_tol : float
        lme4's boundary tolerance for θ on a zero bound.

    Examples
    --------
    >>> import numpy as np, mixedppl as mp
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"))
    >>> x, dev = warm_refit(g.record, refit_objective(g.record))
    >>> bool(np.allclose(x, optimum(g.record), atol=1e-4)), round(dev, 3)
    (True, 184.053)
    """
    spec = record.spec
    if isinstance(objective, JointObjective):
        lower = spec.theta_lower()
        opt = minimize_bounded(objective, np.asarray(record.theta, float), lower,
                               mirror=spec.theta_mirror(), ftol=1e-15, gtol=1e-6)
        theta, f = check_boundary(objective, opt.x, opt.fun, lower, boundary_tol)
        f = objective(theta)[0]                   # leaves β̂(θ) in the objective
        return np.concatenate([theta, objective.beta]), float(f)
    theta_spec = joint_spec(spec) if spec.zi_terms else spec
    lower = np.concatenate([theta_spec.theta_lower(),
                            np.full(spec.p + len(record.phi), -np.inf)])
    upper = np.full(len(lower), np.inf)
    x0 = optimum(record)
    H = record.hessian
    if H is not None and np.all(np.isfinite(H)):
        f, x, _ = quasi_newton_box(objective, x0, lower, upper, 0.5 * (H + H.T), tol=1e-10,
                                   maxiter=100)
    else:
        f, x = lbfgsb_box(objective, x0, lower, upper)
    return check_boundary(objective, x, f, lower, boundary_tol)


def warm_refit_vcov(objective: LaplaceObjective | JointObjective, x: np.ndarray, n_beta: int,
                    n_theta: int) -> np.ndarray:
    """Covariance of β̂ at a refit's optimum, ``[2 H⁻¹]_ββ`` (H from differences of the exact
    gradient, steps 1e-4 relative, as :func:`~mixedppl.fit.laplace.fit_laplace`); nAGQ = 0:
    ``(R_XᵀR_X)⁻¹`` at the mode, as ``fit_nagq0``."""
    if isinstance(objective, JointObjective):
        objective(x[:n_theta])
        return objective.vcov_beta(x[:n_theta])
    H = difference_hessian(lambda v: objective(v)[1], x, rel=1e-4)
    try:
        V = 2 * np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return np.full((n_beta, n_beta), np.nan)
    return V[n_theta:n_theta + n_beta, n_theta:n_theta + n_beta]
