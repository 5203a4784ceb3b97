"""lme4's ``nAGQ = 0``: β estimated inside the penalised IRLS, the outer optimisation over θ only.

For each θ the inner problem minimises the penalised deviance jointly over (u, β),

    (û, β̂)(θ) = argmin g(u, β; θ),   g = −2 log p(y | η) + ‖u‖²,   η = Xβ + offset + ZΛu,

(lme4's ``pwrssUpdate`` with ``uOnly = FALSE``), and the outer objective is the Laplace formula
evaluated there, ``D₀(θ) = g(û, β̂) + log|L|²`` (lme4's ``glmResp::Laplace``: ``ldL2 + ‖u‖² +
family$aic()``, all constants of log p kept). β̂ is then the penalised-likelihood (PQL-like)
estimate, not the maximiser of the Laplace likelihood over β, so D₀(θ̂) ≥ the nAGQ = 1 deviance.
``logLik = −D₀(θ̂)/2`` and ``vcov(β̂) = (R_XᵀR_X)⁻¹`` from the joint IRLS matrix at the mode
(lme4's ``pp$unsc()``; lme4 computes no Hessian when nAGQ = 0).

References
----------
Bates et al. (2015), J. Stat. Softw. 67(1); lme4's ``mkdevfun`` / ``glmerPwrssUpdate`` and
``src/external.cpp`` (``pwrssUpdate``).
"""

from __future__ import annotations

import time

import numpy as np
from scipy import linalg

from ..core.threads import blas_threads_for
from ..graph.laplace import design_inputs, joint_functions, laplace_structure
from .laplace import LaplaceObjective, conditional_effects, fit_checks, newton_minimize
from .lmm_fit import check_boundary
from .optimize import minimize_bounded
from .records import LaplaceFit

__all__ = ["JointObjective", "fit_nagq0"]


class JointObjective:
    """D₀(θ) of lme4's nAGQ = 0 with its exact gradient; β̂(θ) and û(θ) from a joint Newton solve.

    Examples
    --------
    >>> import numpy as np, mixedppl as mp
    >>> from mixedppl.glmm_api import glmm_model
    >>> f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    >>> obj = JointObjective(*glmm_model(f, mp.datasets.load("cbpp"), "binomial"))
    >>> d, grad = obj(np.array([0.641815]))
    >>> round(d, 4), obj.beta.round(4).tolist()
    (184.1086, [-1.3605, -0.9762, -1.1111, -1.5597])
    """

    def __init__(self, spec, family, link, y, ntr):
        if family.n_phi:
            raise NotImplementedError(
                f"nAGQ=0 is lme4's glmer option for families without a dispersion parameter "
                f"(binomial, poisson); family {family.name!r} estimates one — use nAGQ=1")
        self.spec, self.family, self.link = spec, family, link
        self.fns = joint_functions(family, link, laplace_structure(spec))
        self.data = design_inputs(spec, y, ntr)
        self.n_theta, self.q, self.p = spec.n_theta, spec.q, spec.p
        self.phi = np.zeros(0)
        self.beta0 = family.start_beta(spec, link, y, ntr)
        self.u, self.beta = np.zeros(self.q), self.beta0.copy()
        q_rest = self.q - spec.terms[0].n_levels * spec.terms[0].n_cols + self.p
        self.flops_per_eval = float(spec.n * len(spec.terms) ** 2 + q_rest ** 3)

    def mode(self, theta: np.ndarray, tol: float = 1e-12, maxit: int = 100) -> None:
        """Joint mode (û, β̂) at θ by Newton's method with step halving (warm-started)."""
        inner, q = self.fns["inner"], self.q

        def fn(x, lam):
            return inner(lam, x[:q], theta, x[q:], self.phi, *self.data)

        x = np.concatenate([self.u, self.beta])
        start = np.concatenate([np.zeros(q), self.beta0])
        if not np.all(np.isfinite(x)):
            x = start
        x = newton_minimize(fn, x, start, tol, maxit)
        self.u, self.beta = x[:q].copy(), x[q:].copy()

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """(D₀, ∂D₀/∂θ) at θ."""
        n_theta = len(theta)
        theta, J = self.spec.graph_theta(theta)   # a structured term's θ → lme4's layout
        try:
            self.mode(theta)
            D, g_theta, _ = self.fns["outer"](self.u, theta, self.beta, self.phi, *self.data)
        except (np.linalg.LinAlgError, ValueError):
            D = np.inf
        if not np.isfinite(D):
            self.u, self.beta = np.zeros(self.q), self.beta0.copy()
            return np.inf, np.zeros(n_theta)
        g_theta = np.asarray(g_theta, float)
        return float(D), g_theta if J is None else J.T @ g_theta

    def vcov_beta(self, theta: np.ndarray) -> np.ndarray:
        """``(R_XᵀR_X)⁻¹``: the ββ block of the inverse joint IRLS matrix at the current mode."""
        (F,) = self.fns["fisher"](self.u, self.spec.graph_theta(theta)[0], self.beta, self.phi,
                                  *self.data)
        try:
            return linalg.inv(F)[self.q:, self.q:]
        except linalg.LinAlgError:
            return np.full((self.p, self.p), np.nan)


def fit_nagq0(spec, control: dict | None = None) -> LaplaceFit:
    """Fit ``spec`` (a GLMM family without dispersion) by lme4's nAGQ = 0.

    Parameters
    ----------
    spec : ModelSpec
    control : dict, optional
        ``ftol``, ``gtol``, ``maxiter``, ``boundary_tol``, ``start_theta``.

    Returns
    -------
    LaplaceFit
        ``nAGQ = 0``, no Hessian; ``vcov_beta`` is lme4's ``(R_XᵀR_X)⁻¹``.

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                 mp.datasets.load("cbpp"), family="binomial").spec
    >>> rec = fit_nagq0(spec)
    >>> rec.nAGQ, round(rec.deviance_laplace, 4)
    (0, 184.1086)
    """
    control = dict(control or {})
    family, link = spec.family, spec.link
    y, ntr = spec.counts()
    t0 = time.perf_counter()
    obj = JointObjective(spec, family, link, y, ntr)
    t1 = time.perf_counter()
    x0 = np.asarray(control.get("start_theta", spec.theta_start()), float)
    with blas_threads_for(obj):
        opt = minimize_bounded(obj, x0, spec.theta_lower(), mirror=spec.theta_mirror(),
                               ftol=control.get("ftol", 1e-15),
                               gtol=control.get("gtol", 1e-6),
                               maxiter=control.get("maxiter", 2000))
        t2 = time.perf_counter()
        theta, _ = check_boundary(obj, opt.x, opt.fun, spec.theta_lower(),
                                  control.get("boundary_tol", 1e-5))
        D = obj(theta)[0]
        vcov = obj.vcov_beta(theta)
        lap = LaplaceObjective(spec, family, link, y, ntr)
        lap.u = obj.u.copy()
        est = lap.estimates(np.concatenate([theta, obj.beta]))
    b, condvar = conditional_effects(spec, theta, est["u"], est["A"])
    converged, singular = fit_checks(spec, opt, theta, "glmer(nAGQ=0)")
    return LaplaceFit(spec=spec, family=family, link=link, counts=y, trials=ntr, theta=theta,
                      beta=obj.beta.copy(), phi=np.zeros(0), vcov_beta=vcov, vcov_beta_phi=vcov,
                      b=tuple(b), condvar=tuple(condvar), deviance_laplace=float(D),
                      mu=est["mu"], eta=est["eta"], opt=opt, hessian=None, nAGQ=0,
                      converged=converged, is_singular=singular,
                      timing={"compile": t1 - t0, "optimize": t2 - t1,
                              "total": time.perf_counter() - t0})
