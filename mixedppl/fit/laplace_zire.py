r"""Fit a zero-inflated / hurdle GLMM with random terms in its ``ziformula`` (glmmTMB's
``ziformula = ~ mined + (1 | site)``) by TMB's Laplace approximation.

The random effects of both predictors form one vector u = (u_c, u_z); the inner Newton solves
for the joint mode û(θ, β, φ) with the exact Hessian of the family's log-density in (η, η_zi),
mixed derivatives included, and the outer L-BFGS-B runs over x = (θ_c, θ_z, β, φ) with the
exact gradient of the Laplace deviance (:mod:`mixedppl.graph.laplace_zire`). θ_z are the zi
terms' relative factors in lme4's layout (SDs for scalar terms, as glmmTMB's
``VarCorr(fit)$zi``). The record is a :class:`~mixedppl.fit.records.LaplaceFit` whose ``theta``,
``b`` and ``condvar`` are the conditional model's and ``zi_theta``, ``zi_b``, ``zi_condvar``
the zero-inflation model's; ``hessian`` is over the whole x, so ``vcov_beta_phi`` (β, γ, δ)
is :math:`[2H^{-1}]` as for every Laplace fit.

References
----------
Brooks, M. E. et al. (2017). *The R Journal* 9(2), 378–400 (glmmTMB).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from scipy import linalg

from ..core.exceptions import ModelSpecError
from ..core.threads import blas_threads_for
from ..graph.laplace_zire import zire_functions, zire_inputs
from .laplace import (LaplaceObjective, conditional_effects, escape_shape_plateau, fit_checks,
                      fitted_zero_prob, warn_limits)
from .lmm_fit import check_boundary
from .optimize import difference_hessian, minimize_bounded
from .records import LaplaceFit

__all__ = ["ZIReObjective", "joint_spec", "zi_spec", "fit_laplace_zire"]


def joint_spec(spec):
    """``spec`` with the ziformula's random terms appended to ``terms`` (for θ's layout, bounds,
    start and the conditional effects of the joint vector u = (u_c, u_z)).

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.spec.model_spec import build_spec
    >>> spec = build_spec("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
    ...                   "poisson", ziformula="~ mined + (1 | spp)")
    >>> [t.group for t in joint_spec(spec).terms], joint_spec(spec).n_theta
    (['site', 'spp'], 2)
    >>> [t.group for t in zi_spec(spec).terms], zi_spec(spec).n_theta
    (['spp'], 1)
    """
    return replace(spec, terms=tuple(spec.terms) + tuple(spec.zi_terms), zi_terms=())


def zi_spec(spec):
    """``spec`` with the ziformula's random terms as its ``terms`` (their θ layout, names and
    variance components, read by the functions that take ``spec.terms``); example in
    :func:`joint_spec`."""
    return replace(spec, terms=tuple(spec.zi_terms), zi_terms=())


class ZIReObjective(LaplaceObjective):
    """The Laplace deviance D(θ_c, θ_z, β, φ) of a model with zi random terms, with its exact
    gradient: :class:`~mixedppl.fit.laplace.LaplaceObjective`'s split / mode / call /
    estimates on the joint graphs of :mod:`mixedppl.graph.laplace_zire` (θ mapped by
    :func:`joint_spec`'s layout; the estimates add ``eta_zi``).

    Examples
    --------
    >>> import numpy as np, mixedppl as mp
    >>> from mixedppl.spec.model_spec import build_spec
    >>> spec = build_spec("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
    ...                   "poisson", ziformula="~ mined + (1 | site)")
    >>> obj = ZIReObjective(spec, *spec.counts())
    >>> d, grad = obj(np.array([0.2283, 0.6477, 0.2434, 0.9914, 1.4169, -2.0554]))
    >>> round(d / -2, 2)                                 # glmmTMB: logLik -941.5915
    -941.59
    """

    def __init__(self, spec, y, ntr):
        if not spec.zi_terms:
            raise ValueError("ZIReObjective is for models with random terms in the ziformula")
        self.spec, self.joint = spec, joint_spec(spec)
        self.family, self.link = spec.family, spec.link
        self.fns = zire_functions(self.family, self.link)
        self.data = zire_inputs(spec, y, ntr)
        self.n_theta, self.q, self.p = self.joint.n_theta, self.joint.q, spec.p
        self.n_phi = self.family.n_phi
        self.theta_spec = self.joint
        self.u = np.zeros(self.q)
        self.flops_per_eval = float(spec.n * self.q ** 2 + self.q ** 3)

    estimate_keys = LaplaceObjective.estimate_keys + ("eta_zi",)


def fit_laplace_zire(spec, control: dict | None = None, nAGQ: int = 1) -> LaplaceFit:
    """Fit ``spec`` (a :class:`~mixedppl.families.zi_disp.ZIDispFamily` model with
    ``spec.zi_terms``) by the Laplace approximation; see the module docstring.

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.spec.model_spec import build_spec
    >>> spec = build_spec("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
    ...                   "poisson", ziformula="~ mined + (1 | site)")
    >>> rec = fit_laplace_zire(spec)
    >>> round(rec.loglik, 3), rec.theta.round(3).tolist(), rec.zi_theta.round(3).tolist()
    (-941.592, [0.228], [0.648])
    """
    if nAGQ != 1:
        raise ModelSpecError(f"nAGQ={nAGQ}: models with random terms in the ziformula are "
                             "fitted by the Laplace approximation (nAGQ=1), as glmmTMB")
    control = dict(control or {})
    family, link = spec.family, spec.link
    y, ntr = spec.counts()
    t0 = time.perf_counter()
    obj = ZIReObjective(spec, y, ntr)
    joint = obj.joint
    t1 = time.perf_counter()
    beta, phi = family.start_values(spec, link, y, ntr)
    theta0 = np.asarray(control.get("start_theta", joint.theta_start()), float)
    if len(theta0) != obj.n_theta:
        raise ModelSpecError(f"start theta has {len(theta0)} values; this model has "
                             f"{obj.n_theta} (the conditional terms', then the ziformula's)")
    lower = np.concatenate([joint.theta_lower(), np.full(spec.p + obj.n_phi, -np.inf)])
    # glmmTMB's start first (every coefficient 0, T = I), then the GLM start: with random
    # effects in both predictors g(u) need not be convex, and from the GLM start the outer
    # search can reach a region where the inner mode jumps between local minima, so that D is
    # discontinuous (Salamanders ZINB, zi ~ 1 + (1 | site): D 1725.8 with |∇D| ≈ 6e3, a point
    # glmmTMB never visits; from zeros both reach glmmTMB's optimum, 1732.2521, |∇D| ≈ 2e-6).
    # The first start whose optimum is stationary (projected gradient < 1e-3) is kept.
    starts = [np.concatenate([theta0, np.zeros(spec.p + obj.n_phi)]),
              np.concatenate([theta0, beta, phi])]
    with blas_threads_for(obj):
        for x0 in starts:
            obj.u = np.zeros(obj.q)
            opt = minimize_bounded(obj, x0, lower, mirror=joint.theta_mirror(),
                                   ftol=control.get("ftol", 1e-15),
                                   gtol=control.get("gtol", 1e-6),
                                   maxiter=control.get("maxiter", 2000))
            pg = opt.projected_gradient()
            if np.all(np.isfinite(pg)) and np.max(np.abs(pg), initial=0.0) < 1e-3:
                break
        opt = escape_shape_plateau(obj, opt, lower, control, mirror=joint.theta_mirror())
        t2 = time.perf_counter()
        x, _ = check_boundary(obj, opt.x, opt.fun, lower, control.get("boundary_tol", 1e-5))
        H = difference_hessian(lambda v: obj(v)[1], x, rel=1e-4)
        est = obj.estimates(x)
    theta, beta, phi = obj.split(x)
    warn_limits(family, phi, fitted_zero_prob(family, phi, spec.aux_designs, est["eta_zi"]))
    k = spec.p + obj.n_phi
    try:
        vcov_all = 2 * linalg.inv(H)[-k:, -k:]
    except linalg.LinAlgError:
        vcov_all = np.full((k, k), np.nan)
    b, condvar = conditional_effects(joint, theta, est["u"], est["A"])
    nc, ntc = len(spec.terms), spec.n_theta
    converged, singular = fit_checks(joint, opt, theta, "glmer", H)
    return LaplaceFit(spec=spec, family=family, link=link, counts=y, trials=ntr,
                      theta=theta[:ntc], beta=beta, phi=phi,
                      vcov_beta=vcov_all[:spec.p, :spec.p], vcov_beta_phi=vcov_all,
                      b=tuple(b[:nc]), condvar=tuple(condvar[:nc]),
                      zi_theta=theta[ntc:], zi_b=tuple(b[nc:]), zi_condvar=tuple(condvar[nc:]),
                      eta_zi=est["eta_zi"], deviance_laplace=float(obj(x)[0]), mu=est["mu"],
                      eta=est["eta"], opt=opt, hessian=H, nAGQ=1, converged=converged,
                      is_singular=singular,
                      timing={"compile": t1 - t0, "optimize": t2 - t1,
                              "total": time.perf_counter() - t0})
