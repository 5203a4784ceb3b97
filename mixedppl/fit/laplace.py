"""Fit a GLMM or CLMM by lme4's Laplace approximation: inner Newton for û, outer L-BFGS-B over
(θ, β, φ); :func:`fit_laplace` returns a frozen :class:`~mixedppl.fit.records.LaplaceFit`.

The inner problem ``û = argmin_u g(u; θ, β)`` is solved by Newton's method with step halving on the
compiled (g, ∂g/∂u, ∂²g/∂u²), warm-started from the previous mode. The outer objective is lme4's
Laplace deviance D(θ, β) with its exact gradient (implicit function theorem, see
:mod:`mixedppl.graph.laplace`). β starts from the GLM fit (θ = 0), θ from lme4's start (T = I);
(θ, β) are then optimised jointly. SEs of β come from the Hessian of D over (θ, β) (central
differences of the exact gradient): ``vcov(β) = [2 H⁻¹]_ββ``, as lme4's ``vcov(use.hessian=TRUE)``
(which uses a finite-difference Hessian of the deviance: SEs agree to ~1e-3 relative).
With ``nAGQ > 1`` (one grouping factor) the outer objective is the adaptive Gauss–Hermite deviance
around the same û (for a vector random effect a product rule in the coordinates adapted by the
Cholesky factor of each group's block of LLᵀ), its gradient exact by the same implicit-function
argument. For a cumulative model the record also carries the thresholds α(φ) and the covariance
of (α̂, β̂) by the delta method, :math:`J V J^\top` (:func:`threshold_covariance`).

References
----------
Bates et al. (2015), J. Stat. Softw. 67(1); lme4's ``glmer`` and ``vcov.merMod``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy import linalg

from ..core.exceptions import ConvergenceWarning, SingularFitWarning
from ..core.threads import blas_threads_for
from ..graph.laplace import design_inputs, laplace_functions, laplace_structure, row_pairs
from ..spec.reterm import relative_factors
from .lmm_fit import check_boundary, warn_unidentified
from .optimize import difference_hessian, minimize_bounded
from .records import LaplaceFit

__all__ = ["LaplaceObjective", "fit_laplace", "newton_minimize", "conditional_effects",
           "fit_checks", "threshold_covariance"]


class LaplaceObjective:
    """lme4's Laplace deviance D(θ, β) of one model, with its exact gradient.

    Parameters
    ----------
    spec : ModelSpec
    family, link : Family, Link
    y, ntr : ndarray
        Counts (successes) and trials / prior weights (see :mod:`mixedppl.families.glm`).
    nAGQ : int
        1: Laplace; > 1 (one grouping factor): adaptive Gauss–Hermite deviance (product rule of
        nAGQ^ℓ nodes per group for an ℓ-vector random effect).
    vector_rule : bool
        Use the product-rule code for a scalar term too (a cross-check of the two).

    Examples
    --------
    >>> import numpy as np, mixedppl as mp
    >>> from mixedppl.glmm_api import glmm_model
    >>> cbpp = mp.datasets.load("cbpp")
    >>> f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    >>> spec, fam, link, y, n = glmm_model(f, cbpp, "binomial")
    >>> obj = LaplaceObjective(spec, fam, link, y, n)
    >>> d, grad = obj(np.array([0.642261, -1.398532, -0.992333, -1.128672, -1.580314]))
    >>> round(d, 3)
    184.053
    """

    estimate_keys = ("D", "g", "ldL2", "ll", "eta", "mu", "A")

    def __init__(self, spec, family, link, y, ntr, nAGQ: int = 1, vector_rule: bool = False):
        if getattr(spec, "zi_terms", ()):
            # this graph has no zero-inflation random effects: an objective built on it
            # would silently drop them (refits, the bootstrap, case deletion and profiles
            # use mixedppl.fit.laplace_zire.ZIReObjective)
            raise NotImplementedError(
                "random terms in the ziformula are fitted by mixedppl.fit.laplace_zire only "
                "(ZIReObjective: refits, the bootstrap, case deletion and profiles use it); "
                "nAGQ = 0 is not implemented for them")
        self.spec, self.family, self.link = spec, family, link
        pairs = row_pairs(spec)
        self.structure = laplace_structure(spec, pairs)
        self.fns = laplace_functions(family, link, self.structure, nAGQ, vector_rule)
        self.data = design_inputs(spec, y, ntr, pairs)
        self.n_theta, self.q, self.p = spec.n_theta, spec.q, spec.p
        self.n_phi = family.n_phi
        self.theta_spec = spec        # whose graph_theta maps θ to the graphs' layout
        self.u = np.zeros(self.q)
        # blocked graph: the dense part is the Schur block of the terms after the first
        # (used to pick the BLAS thread count)
        q_rest = self.q - spec.terms[0].n_levels * spec.terms[0].n_cols
        self.flops_per_eval = float(spec.n * len(spec.terms) ** 2 + q_rest ** 3)

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(θ, β, φ) from the optimiser's vector."""
        x = np.asarray(x, float)
        k = self.n_theta + self.p
        return x[:self.n_theta], x[self.n_theta:k], x[k:k + self.n_phi]

    def mode(self, theta: np.ndarray, beta: np.ndarray, phi: np.ndarray, tol: float = 1e-12,
             maxit: int = 60) -> np.ndarray:
        """Conditional mode û(θ, β, φ) by Newton's method with step halving (θ in the graphs'
        layout, :meth:`~mixedppl.spec.model_spec.ModelSpec.graph_theta`)."""
        inner = self.fns["inner"]

        def fn(u, lam):
            return inner(lam, u, theta, beta, phi, *self.data)

        u = self.u if np.all(np.isfinite(self.u)) else np.zeros(self.q)
        self.u = newton_minimize(fn, u, np.zeros(self.q), tol, maxit)
        return self.u

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """(D, ∂D/∂(θ, β, φ)) at x = (θ, β, φ)."""
        theta, beta, phi = self.split(x)
        theta, J = self.theta_spec.graph_theta(theta)   # a structured term's θ → lme4's layout
        try:
            u = self.mode(theta, beta, phi)
            D, g_theta, g_beta, g_phi = self.fns["outer"](u, theta, beta, phi, *self.data)
            g_theta = g_theta if J is None else J.T @ g_theta
        except (np.linalg.LinAlgError, ValueError):
            self.u = np.zeros(self.q)
            return np.inf, np.zeros(len(x))
        if not np.isfinite(D):
            self.u = np.zeros(self.q)
            return np.inf, np.zeros(len(x))
        return float(D), np.concatenate([g_theta, g_beta, g_phi])

    def estimates(self, x: np.ndarray) -> dict:
        """D, g, log|L|², log p(y|û) per row, η, μ and LLᵀ at the mode."""
        theta, beta, phi = self.split(x)
        theta = self.theta_spec.graph_theta(theta)[0]
        u = self.mode(theta, beta, phi)
        out = self.fns["estimates"](u, theta, beta, phi, *self.data)
        return dict(zip(self.estimate_keys, (np.asarray(v) for v in out)), u=u.copy())


def _damped_step(fn, x: np.ndarray, g: float, grad: np.ndarray, step: np.ndarray):
    """The Newton step, or with Levenberg damping (H + λI) where H is not positive definite at x
    (log-concave likelihoods never need it; e.g. the cauchit link far from the mode does)."""
    lam = 0.0
    for _ in range(32):
        if np.all(np.isfinite(step)) and float(grad @ step) >= 0:
            return step
        lam = 1e-6 * max(float(np.mean(np.abs(grad))), 1.0) if lam == 0.0 else lam * 10
        try:
            _, _, step = fn(x, lam)
        except (np.linalg.LinAlgError, ValueError):
            step = np.full_like(x, np.nan)
    return grad / max(float(np.max(np.abs(grad))), 1.0)


def newton_minimize(fn, x: np.ndarray, fallback: np.ndarray, tol: float = 1e-12,
                    maxit: int = 60) -> np.ndarray:
    """Minimise g by Newton's method with step halving; ``fn(x, λ)`` returns (g, ∇g, the step
    (H + λI)⁻¹∇g). Restarts from ``fallback`` when g is not finite at the start."""
    def call(x, lam=0.0):
        try:
            return fn(x, lam)
        except (np.linalg.LinAlgError, ValueError):
            return np.inf, np.full_like(x, np.nan), np.full_like(x, np.nan)

    g, grad, step = call(x)
    if not np.isfinite(g):
        x = fallback.copy()
        g, grad, step = call(x)
    for _ in range(maxit):
        step = _damped_step(call, x, g, grad, step)
        dec = float(grad @ step)
        if dec < tol * max(1.0, abs(g)) * 1e-3:
            break
        t = 1.0
        while t > 1e-10:
            xn = x - t * step
            gn, gradn, stepn = call(xn)
            if np.isfinite(gn) and gn <= g + 1e-14 * abs(g):
                break
            t /= 2
        else:
            break
        x, g, grad, step = xn, gn, gradn, stepn
        if dec < tol * max(1.0, abs(g)):
            break
    return x


def conditional_effects(spec, theta: np.ndarray, u: np.ndarray,
                        A: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """b = Λû per term (G, ℓ) and conditional covariances Λ (LLᵀ)⁻¹ Λᵀ per level (G, ℓ, ℓ).

    (LLᵀ)⁻¹ from the Cholesky factor (LAPACK potri), under one BLAS thread for small q: with
    the default threads competing on 2 cores, ``linalg.inv`` of grouseticks' 584² matrix took
    0.4 s, half the fit."""
    with blas_threads_for(float(len(A)) ** 3):
        try:
            c, _ = linalg.cho_factor(A, lower=True, check_finite=False)
            Ainv, info = linalg.lapack.dpotri(c, lower=1)
            if info != 0:
                raise linalg.LinAlgError("potri failed")
            Ainv = np.tril(Ainv) + np.tril(Ainv, -1).T
        except linalg.LinAlgError:
            Ainv = linalg.inv(A)
    b, condvar, start_u = [], [], 0
    for t, T in zip(spec.terms, relative_factors(spec.terms, theta)):
        G, ell = t.n_levels, t.n_cols
        uk = u[start_u:start_u + G * ell].reshape(G, ell)
        idx = start_u + np.arange(G * ell).reshape(G, ell)
        blocks = Ainv[idx[:, :, None], idx[:, None, :]]
        b.append(uk @ T.T)
        condvar.append(np.einsum("ij,gjk,lk->gil", T, blocks, T))
        start_u += G * ell
    return b, condvar


def _start(obj: LaplaceObjective, y, ntr, control: dict) -> np.ndarray:
    """β (and φ) from the model without random effects, θ from lme4's start (T = I)."""
    spec, fam = obj.spec, obj.family
    beta, phi = fam.start_values(spec, obj.link, y, ntr)
    start = control.get("start_theta", spec.theta_start())
    return np.concatenate([np.asarray(start, float), beta, phi])


def escape_shape_plateau(obj, opt, lower: np.ndarray, control: dict, mirror=None):
    r"""Restart a fit whose family shape ψ (Student's df, the Tweedie power) ended on a plateau.

    As ν → ∞ the t log-density tends to the Gaussian one at rate O(1/ν), so
    :math:`\partial D/\partial\psi = O(e^{-\psi})` vanishes there whatever the data; an
    optimiser that walks up a ridge in (θ, ψ) from a poor start (θ at lme4's T = I start while
    the SDs are large) stops on that plateau with a "converged" gradient even when the deviance
    is far lower at a finite ν (sleepstudy's ``t_family()`` fit: D = 1794.08 at ν̂ ≈ 6e6,
    1782.3 at ν ≈ 4.5; glmmTMB 1.1.5 stops on the plateau too). The Tweedie power has such
    plateaus at p → 1 and p → 2.

    When ψ̂ lies outside ``family.shape.flat_outside``, the deviance is profiled at the shape's
    ``probe`` values (ψ fixed, every other parameter re-optimised from the end point); from the
    lowest profile point below D̂ − 1e-6 the full optimisation is restarted. The best optimum
    found is returned; when that is still on the plateau (Gaussian-looking data: ν̂ → ∞ is the
    limit), a :class:`~mixedppl.ConvergenceWarning` says so and ``summary()`` notes it.

    Parameters
    ----------
    obj : LaplaceObjective
        ``x -> (D, ∇D)``; its ``family.shape`` holds ψ's :class:`~mixedppl.families.glm.ShapeParam`,
        ψ is the last coordinate of x.
    opt : OptSummary
        The first optimisation's result.
    lower : ndarray
        The bounds (θ ≥ 0 where lme4 has them).
    control : dict
        ``ftol``, ``gtol``, ``maxiter`` as in :func:`fit_laplace`.
    mirror : dict, optional
        ``ModelSpec.theta_mirror()``.

    Returns
    -------
    OptSummary

    Examples
    --------
    >>> import mixedppl as mp
    >>> sleep = mp.datasets.load("sleepstudy")
    >>> fit = mp.glmer("Reaction ~ Days + (1 | Subject)", sleep, family="t")
    >>> round(float(fit.family_params.iloc[0]), 1), round(fit.loglik, 3)
    (4.5, -891.291)
    """
    shape = getattr(obj.family, "shape", None)
    k = len(opt.x) - 1
    if shape is None or not shape.probe or not shape.at_limit(opt.x[k]):
        return opt
    options = dict(ftol=control.get("ftol", 1e-15), gtol=control.get("gtol", 1e-6),
                   maxiter=control.get("maxiter", 2000))
    best = None
    for value in shape.probe:
        psi = float(shape.psi(value))
        x0 = np.array(opt.x, float)
        x0[k] = psi
        prof = minimize_bounded(obj, x0, lower, fixed={k: psi}, mirror=mirror, **options)
        if np.isfinite(prof.fun) and (best is None or prof.fun < best.fun):
            best = prof
    if best is not None and best.fun < opt.fun - 1e-6:
        restart = minimize_bounded(obj, np.array(best.x, float), lower, mirror=mirror, **options)
        if restart.fun < opt.fun:
            opt = restart
    if shape.at_limit(opt.x[k]):
        warnings.warn(f"the {shape.label} ran off to {shape.natural(opt.x[k]):.3g}, where the "
                      f"deviance no longer depends on it ({shape.limit}); the estimate is a "
                      f"limit, not an interior optimum, and its standard error is not meaningful",
                      ConvergenceWarning, stacklevel=4)
    return opt


def fitted_zero_prob(family, phi: np.ndarray, aux: dict,
                     eta_zi: np.ndarray | None = None) -> np.ndarray | None:
    """π per fitted row: from the ziformula's linear predictor ``eta_zi`` where the fit has one
    (random terms in the ziformula), else the family's zero part on the designs ``aux``; None
    without a zero part."""
    if not getattr(family, "zi_names", ()):
        return None
    if eta_zi is not None:
        return 1.0 / (1.0 + np.exp(-np.asarray(eta_zi, float)))
    return family.zero_prob(phi, aux)


def limit_notes(family, phi: np.ndarray, zprob: np.ndarray | None = None) -> list[str]:
    """Sentences for the parameters that ended at a limit where the deviance no longer depends
    on them: the dispersion (NB2's size → ∞, nbinom1's φ → 0: the Poisson; betabinomial's
    precision → ∞: the binomial; :meth:`~mixedppl.families.glm.GLMFamily.dispersion_at_limit`)
    and the zero part (π below 1e-8 on every row: its coefficients at −∞;
    :meth:`~mixedppl.families.zi_disp.ZIDispFamily.zero_part_at_limit`). The fit warns with
    them and ``summary()`` lists them."""
    at_limit = getattr(family, "dispersion_at_limit", None)
    zero_part = getattr(family, "zero_part_at_limit", None)
    notes = [at_limit(np.asarray(phi, float)) if at_limit is not None else None,
             zero_part(zprob) if zero_part is not None else None]
    return [n for n in notes if n]


def warn_limits(family, phi: np.ndarray, zprob: np.ndarray | None = None) -> None:
    """A :class:`~mixedppl.ConvergenceWarning` for each of :func:`limit_notes`: the fit is that
    simpler model's, and the optimiser stopped somewhere on the plateau."""
    for message in limit_notes(family, phi, zprob):
        warnings.warn(message[0].upper() + message[1:], ConvergenceWarning, stacklevel=4)


def fit_checks(spec, opt, theta: np.ndarray, who: str,
               hessian: np.ndarray | None = None) -> tuple[bool, bool]:
    """(converged, singular), with lme4's warnings; a warning when the deviance is flat in a θ
    (not identified); singular when a diagonal θ is below 1e-4.

    Converged when the projected gradient g is below 1e-3, or, given the deviance's Hessian H,
    by lme4's ``check.conv.grad`` rule on the scaled gradient s = R⁻ᵀg (H = RᵀR):
    max_i min(|s_i|, |g_i|) < 2e-3. The optimiser's own "success" is not enough: L-BFGS-B
    reports it after a failed line search too."""
    warn_unidentified(spec, opt, who)
    pg = opt.projected_gradient()
    converged = bool(np.all(np.isfinite(pg)) and np.max(np.abs(pg), initial=0.0) < 1e-3)
    if not converged and hessian is not None and np.all(np.isfinite(hessian)):
        try:
            R = linalg.cholesky(hessian)
            scaled = linalg.solve_triangular(R, pg, trans="T")
            converged = bool(np.max(np.minimum(np.abs(scaled), np.abs(pg)), initial=0.0) < 2e-3)
        except linalg.LinAlgError:
            pass
    if not converged:
        warnings.warn(f"{who}: optimizer did not converge ({opt.message}); max |gradient| "
                      f"{np.max(np.abs(pg)):.2g}", ConvergenceWarning, stacklevel=4)
    singular = bool(np.any(theta[spec.theta_lower() == 0] < 1e-4))
    if singular:
        warnings.warn("boundary (singular) fit: see fit.is_singular", SingularFitWarning,
                      stacklevel=4)
    return converged, singular


def threshold_covariance(family, phi: np.ndarray, vcov_beta_phi: np.ndarray,
                         p: int) -> tuple[np.ndarray, np.ndarray]:
    r"""A cumulative model's thresholds α(φ) and the covariance of (α̂, β̂), :math:`J V J^\top`:
    V the covariance of (β̂, φ̂), J the Jacobian of (α(φ), β) in (β, φ) (ordinal's ``vcov()``)."""
    n_alpha, k = family.K - 1, len(phi)
    J = np.zeros((n_alpha + p, p + k))
    J[:n_alpha, p:] = family.thresholds_jacobian(phi)
    J[n_alpha:, :p] = np.eye(p)
    return family.thresholds_np(phi), J @ vcov_beta_phi @ J.T


def fit_laplace(spec, control: dict | None = None, nAGQ: int = 1) -> LaplaceFit:
    """Fit ``spec`` (a GLMM or cumulative family) by Laplace (nAGQ = 1) or adaptive GHQ.

    Parameters
    ----------
    spec : ModelSpec
        The model; its ``family``, ``link`` and ``counts()`` give the likelihood.
    control : dict, optional
        ``ftol``, ``gtol``, ``maxiter``, ``boundary_tol``, ``start_theta``
        (:meth:`~mixedppl.core.control.Control.options`).
    nAGQ : int
        1: Laplace; > 1: adaptive Gauss–Hermite (one grouping factor).

    Returns
    -------
    LaplaceFit
        With ``alpha`` and ``vcov_alpha_beta`` for a cumulative family (``fit_kind == "clmm"``).
    """
    control = dict(control or {})
    family, link = spec.family, spec.link
    y, ntr = spec.counts()
    t0 = time.perf_counter()
    obj = LaplaceObjective(spec, family, link, y, ntr, nAGQ)
    t1 = time.perf_counter()
    x0 = _start(obj, y, ntr, control)
    lower = np.concatenate([spec.theta_lower(), np.full(spec.p + obj.n_phi, -np.inf)])
    with blas_threads_for(obj):
        opt = minimize_bounded(obj, x0, lower, mirror=spec.theta_mirror(),
                               ftol=control.get("ftol", 1e-15),
                               gtol=control.get("gtol", 1e-6),
                               maxiter=control.get("maxiter", 2000))
        opt = escape_shape_plateau(obj, opt, lower, control, mirror=spec.theta_mirror())
        t2 = time.perf_counter()
        x, _ = check_boundary(obj, opt.x, opt.fun, lower, control.get("boundary_tol", 1e-5))
        H = difference_hessian(lambda v: obj(v)[1], x, rel=1e-4)
        est = obj.estimates(x)
    theta, beta, phi = obj.split(x)
    warn_limits(family, phi, fitted_zero_prob(family, phi, spec.aux_designs))
    k = spec.p + obj.n_phi
    try:
        vcov_all = 2 * linalg.inv(H)[-k:, -k:]
    except linalg.LinAlgError:
        vcov_all = np.full((k, k), np.nan)
    b, condvar = conditional_effects(spec, theta, est["u"], est["A"])
    who = "clmm" if family.fit_kind == "clmm" else "glmer"
    converged, singular = fit_checks(spec, opt, theta, who, H)
    alpha, vcov_alpha_beta = np.zeros(0), None
    if family.fit_kind == "clmm":
        alpha, vcov_alpha_beta = threshold_covariance(family, phi, vcov_all, spec.p)
    return LaplaceFit(spec=spec, family=family, link=link, counts=y, trials=ntr, theta=theta,
                      beta=beta, phi=phi, vcov_beta=vcov_all[:spec.p, :spec.p],
                      vcov_beta_phi=vcov_all, alpha=alpha, vcov_alpha_beta=vcov_alpha_beta,
                      b=tuple(b), condvar=tuple(condvar),
                      deviance_laplace=float(obj(x)[0]), mu=est["mu"], eta=est["eta"], opt=opt,
                      hessian=H, nAGQ=int(nAGQ), converged=converged, is_singular=singular,
                      timing={"compile": t1 - t0, "optimize": t2 - t1,
                              "total": time.perf_counter() - t0})
