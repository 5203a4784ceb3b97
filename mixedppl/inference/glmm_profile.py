r"""Profile-likelihood confidence intervals of a GLMM, as lme4's ``confint(method="profile")``.

lme4 profiles the fit's own deviance (Laplace, or adaptive Gauss–Hermite for ``nAGQ > 1``)
:math:`D(\theta, \beta)` over the parameter vector
:math:`z = (\sigma_{k,i}, \rho_{k,ij}, \ldots, \beta)` — random-effect SDs and correlations (no
residual σ: the scale is 1) followed by the fixed effects. Unlike the LMM, β cannot be profiled
out analytically, so for one coordinate :math:`z_j` held at :math:`x` the profile is a full
minimisation over the others,

.. math:: \tilde D(x) = \min_{z_{-j}} D(z),\qquad
          \zeta(x) = \operatorname{sign}(x - \hat z_j)\sqrt{\tilde D(x) - D(\hat z)},

and the interval ends solve :math:`\zeta(x) = \pm\Phi^{-1}((1+\text{level})/2)`.

Computation. :class:`~mixedppl.fit.laplace.LaplaceObjective` returns D and its exact gradient in
(θ, β) (the inner mode û is re-found by Newton's method at every point, warm-started from the last
one); the gradient in z follows by the chain rule through θ(σ, ρ)
(:func:`~mixedppl.inference.profile.psi_to_theta_jacobian` with σ = 1). The optimum is first
polished (a few quasi-Newton steps from the fit, so that :math:`D(\hat z)` is the minimum to
~1e-10), the Hessian at it is taken from differences of the exact gradient, and each inner
minimisation is the same warm-started projected quasi-Newton method as the LMM profiles
(:func:`~mixedppl.fit.optimize.quasi_newton_box`); the ends are found by the same interpolating
root search (:func:`~mixedppl.inference.profile._end`), starting from the Wald ends.

Beyond lme4 (glmmTMB's ``confint(method = "profile")`` profiles every parameter): the family's
parameters φ are coordinates of z too, and each is profiled — a single dispersion on the log
scale, reported on its natural scale (``size``, ``cv``, ``phi``, ``sigma``); the
zero-inflation / hurdle coefficients γ (``zi~mined``, logit scale), the dispersion-formula
coefficients δ (``log(size)~mined``: our log φ, glmmTMB's ``d~mined`` / ``tmb_disp_scale``) and
the Tweedie / t shape on glmmTMB's psi scale (``psi(power)`` = qlogis(p − 1), ``psi(df)`` =
log ν), as the bootstrap names them (:func:`phi_rows`). With random terms in the ziformula the
deviance is :class:`~mixedppl.fit.laplace_zire.ZIReObjective`'s (joint mode of both
predictors' random effects) and their SDs / correlations are profiled as well, rows prefixed
``zi~`` (``zi~sd_(Intercept)|site`` is glmmTMB's ``zi.Std.Dev.(Intercept)|site``; glmmTMB's
profile rows are its log-SD ``theta_1|site.1``, whose ends are the logs of ours). These ends
agree with root-found ends on glmmTMB's own likelihood profile to ~1e-7
(``tests/reference/glmmtmb_profile_ci.json``); glmmTMB's spline-interpolated
``confint(method = "profile")`` is off by up to 1.6e-3 (Salamanders ZIP, ``minedno``) and fails
("spline must be monotone") with random terms in the ziformula. An unbounded coordinate's
profile is followed 30 Wald SEs out: where ζ is still short of the cut-off there the end is
±inf, with an :class:`~mixedppl.core.exceptions.IdentifiabilityWarning` naming the parameter
(Salamanders ZINB2 with ``zi ~ mined`` and ``dispformula ~ mined``: three zero-inflation ends,
as the root-found glmmTMB ends). A profile point whose inner refit, warm-started by
extrapolation, ends with ζ > 4 is refitted from the optimum's coordinates and the lower
deviance kept (such starts can strand the inner fit in ill-determined models).

lme4's ``profile`` evaluates the deviance with ``getME(fit, "devfun")``, whose PIRLS stops at
``tolPwrss = 1e-7`` whatever the fit's control (far from the optimum log|L|² can be ~1e-3 off), and
interpolates a spline through a grid of ζ; here û is converged fully and the ends are roots, so
they agree with R's root-found ends with PIRLS converged (``exact_profile_ci`` in
``tests/reference/inf_profile_ci.json`` and ``inf_profile_glmm_vector.json``) to ~1e-6, and with
lme4's printed ends to ~1e-4 (cbpp, one scalar term) or ~1e-3 (a correlated term; one end 1.7 %
where lme4's spline fails next to a non-monotonic correlation profile).

References
----------
Bates, D. et al. (2015). Fitting linear mixed-effects models using lme4. J. Stat. Softw. 67(1),
sections 5.1 (profiling) and 5.2 (GLMMs).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import special

from ..core.exceptions import IdentifiabilityWarning
from ..core.progress import progress_bar
from ..core.threads import blas_threads_for
from ..fit.laplace import LaplaceObjective
from ..fit.laplace_zire import ZIReObjective, joint_spec
from ..fit.records import LaplaceFit
from ..fit.optimize import difference_hessian, lbfgsb_box, quasi_newton_box
from .profile import _end, psi_to_theta_jacobian, theta_to_psi, varpar_bounds, varpar_names

__all__ = ["glmm_profile_confint", "varpar_rows", "phi_rows"]

#: a profile point whose deviance rise exceeds this (ζ > 4) is refitted from the optimum too
_RETRY_RISE = 16.0
#: how many Wald SEs out an unbounded coordinate's profile is followed: where ζ has not reached
#: the cut-off there, the interval is unbounded on that side (±inf, with a warning)
_FAR_SE = 30.0


class _GLMMProfiler:
    """The deviance of one GLMM as a function of z = (sd/cor…, β), and its one-parameter profiles."""

    def __init__(self, fit: LaplaceFit):
        self.fit, self.spec = fit, fit.spec
        zire = bool(getattr(fit.spec, "zi_terms", ()))
        # with random terms in the ziformula θ = (θ_c, θ_z): the joint layout of laplace_zire
        self.theta_spec = joint_spec(fit.spec) if zire else fit.spec
        self.obj = (ZIReObjective(fit.spec, fit.counts, fit.trials) if zire else
                    LaplaceObjective(fit.spec, fit.family, fit.link, fit.counts, fit.trials,
                                     int(fit.nAGQ)))
        self.nv, self.p, self.nphi = self.theta_spec.n_theta, self.spec.p, len(fit.phi)
        self.phi_rows = phi_rows(fit)
        self.names = (varpar_rows(fit.spec) + list(self.spec.fe_names)
                      + ([name for name, _ in self.phi_rows]
                         or [f"phi{j + 1}" for j in range(self.nphi)]))
        theta = np.concatenate([fit.theta, fit.zi_theta])
        z0 = np.concatenate([theta_to_psi(self.theta_spec, theta, 1.0)[:-1], fit.beta, fit.phi])
        lower, upper = varpar_bounds(self.theta_spec)
        free = self.p + self.nphi
        self.lower = np.concatenate([lower, np.full(free, -np.inf)])
        self.upper = np.concatenate([upper, np.full(free, np.inf)])
        self.scale = np.where(np.isfinite(self.lower) & (self.upper == np.inf),
                              np.maximum(np.abs(z0), 1e-2), 1.0)
        self.n_evals = 0
        H = self._fd_hessian(z0 / self.scale)
        self.d_min, u, Hq = quasi_newton_box(self._fg_scaled(None, 0.0), z0 / self.scale,
                                          self.lower / self.scale, self.upper / self.scale,
                                          H if H is not None else np.eye(len(z0)), tol=1e-12)
        self.z_hat = np.clip(u * self.scale, self.lower, self.upper)
        self.hess = self._fd_hessian(self.z_hat / self.scale)

    @property
    def dim(self) -> int:
        """len(z): sd/cor…, β, then the family's raw φ (log dispersion, CLMM thresholds)."""
        return self.nv + self.p + self.nphi

    def dev(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """D at z = (sd/cor…, β, φ) and its gradient in z (chain rule through θ(sd, cor))."""
        self.n_evals += 1
        theta, J = psi_to_theta_jacobian(self.theta_spec, np.append(z[:self.nv], 1.0))
        f, g = self.obj(np.concatenate([theta, z[self.nv:]]))
        gz = np.concatenate([J[:, :-1].T @ g[:self.nv], g[self.nv:]])
        return f, gz

    def _fg_scaled(self, k: int | None, x: float):
        """(f, ∇f) of the free coordinates (all but k, which is held at x), scaled by ``scale``."""
        free = np.arange(self.dim) != (-1 if k is None else k)
        sc = self.scale[free]

        def fg(u):
            z = np.empty(self.dim)
            if k is not None:
                z[k] = x
            z[free] = u * sc
            f, g = self.dev(z)
            return f, g[free] * sc
        return fg

    def _fd_hessian(self, u: np.ndarray) -> np.ndarray | None:
        """The numeric Hessian of the scaled deviance (steps 1e-5 in the box); None unless
        positive definite."""
        fg = self._fg_scaled(None, 0.0)
        return difference_hessian(lambda v: fg(v)[1], u, lower=self.lower / self.scale,
                                  upper=self.upper / self.scale, positive_definite=True)

    @property
    def wald_cov(self) -> np.ndarray | None:
        """2·H⁻¹ in z's units (None when H is not positive definite, e.g. on a bound)."""
        if self.hess is None:
            return None
        return 2 * np.linalg.inv(self.hess) * np.outer(self.scale, self.scale)

    def zeta_fn(self, k: int):
        """x → ζ(x) for coordinate k, each inner fit warm-started as in the LMM profiles: from
        the inter-/extrapolated optima of the two nearest points done (at the first, the Wald
        regression of the other coordinates on z_k) and the nearest point's Hessian estimate."""
        free = np.arange(self.dim) != k
        hat, first = self.z_hat[k], self.z_hat[free]
        lo, hi, sc = self.lower[free], self.upper[free], self.scale[free]
        B0 = None if self.hess is None else self.hess[np.ix_(free, free)]
        V = self.wald_cov
        slope = None if V is None else V[free, k] / V[k, k]
        seen = {hat: (first, B0)}

        def start_at(x):
            near = sorted(seen, key=lambda v: abs(v - x))[:2]
            B = seen[near[0]][1]
            if len(near) == 1:
                return first + (slope * (x - hat) if slope is not None else 0.0), B
            x0, x1 = near
            w = (x - x0) / (x1 - x0)
            return seen[x0][0] + w * (seen[x1][0] - seen[x0][0]), B

        def zeta(x: float) -> float:
            start, B = start_at(x)
            fg = self._fg_scaled(k, x)
            if B is None:
                d, u = lbfgsb_box(fg, start / sc, lo / sc, hi / sc)
            else:
                d, u, B = quasi_newton_box(fg, start / sc, lo / sc, hi / sc, B)
            if not np.isfinite(d) or d - self.d_min > _RETRY_RISE:
                # an extrapolated warm start can strand the inner fit where the deviance is
                # huge (ill-determined zi / dispersion coefficients): refit from the optimum's
                # coordinates and keep the lower
                d2, u2 = lbfgsb_box(fg, first / sc, lo / sc, hi / sc)
                if d2 < d or not np.isfinite(d):
                    d, u, B = d2, u2, None
            seen[x] = (np.clip(u * sc, lo, hi), B if B is not None else B0)
            rise = max(d - self.d_min, 0.0)
            return float(np.sign(x - hat) * np.sqrt(rise))
        return zeta, hat

    def first_guess(self, k: int, z: float) -> tuple[float, str]:
        """The first profile point beyond ẑ_k (Wald, at ζ ≈ z) and the scale ζ is ~linear on."""
        name, hat = self.names[k].removeprefix("zi~"), self.z_hat[k]
        lo, hi = self.lower[k], self.upper[k]
        scale = "id" if k >= self.nv else ("atanh" if name.startswith("cor_") else "log")
        if k < self.nv and not (lo + 1e-6 * self.scale[k] < hat < hi - 1e-6):
            scale = "id"                         # on a bound: no log / atanh scale around it
        V = self.wald_cov
        if V is None:
            step = (0.25 * max(1 - abs(hat), 1e-2) if name.startswith("cor_")
                    else 0.25 * max(abs(hat), 1e-2))
            return hat + np.sign(z) * step, scale
        se = float(np.sqrt(V[k, k]))
        if scale == "log":
            return hat * np.exp(z * se / hat), scale
        if scale == "atanh":
            return float(np.tanh(np.arctanh(hat) + z * se / (1 - hat ** 2))), scale
        return hat + z * se, scale


def glmm_profile_confint(fit: LaplaceFit, level: float = 0.95,
                         progress: bool = True) -> pd.DataFrame:
    """Profile-likelihood intervals of a GLMM or CLMM (see the module docstring); rows as
    lme4's ``oldNames=FALSE`` (``sd_(Intercept)|herd``, …; the ziformula's SDs prefixed
    ``zi~``), then the family's parameters (:func:`phi_rows`), then the fixed effects.

    Parameters
    ----------
    fit : LaplaceFit
        The record of a ``glmer`` fit (any family, zero-inflation / hurdle and dispersion
        formulas, random terms in the ziformula; nAGQ ≥ 1) or of a ``clmm`` fit.
    level : float
    progress : bool
        A bar over the parameters (:func:`~mixedppl.core.progress.progress_bar`).

    Returns
    -------
    DataFrame
        Lower and upper ends, one row per parameter.

    Examples
    --------
    >>> import mixedppl as mp
    >>> cbpp = mp.datasets.load("cbpp")
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    >>> glmm_profile_confint(g.record).round(3).loc["sd_(Intercept)|herd"].tolist()
    [0.346, 1.1]
    >>> z = mp.glmer("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
    ...              family="poisson", ziformula="~ mined")
    >>> glmm_profile_confint(z.record, progress=False).round(4).loc["zi~minedno"].tolist()
    [-2.2236, -1.1665]
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if getattr(fit, "nAGQ", 1) == 0:
        raise NotImplementedError(
            "profile intervals need a likelihood over (θ, β); a glmer(nAGQ=0) fit's deviance is "
            "a function of θ only (β comes from the penalised IRLS): refit with nAGQ=1 or use "
            "confint(method='Wald')")
    clmm = fit.family.fit_kind == "clmm"
    z = float(special.ndtri(0.5 + level / 2))
    rows: dict[str, tuple[float, float]] = {}
    q = fit.spec.q + sum(t.q for t in getattr(fit.spec, "zi_terms", ()))
    with blas_threads_for(float(fit.spec.n * q ** 2 + q ** 3)):
        prof = _GLMMProfiler(fit)
        todo = _profiled(prof, clmm)
        bar = progress_bar(len(todo), "profile", progress)
        for k in todo:
            bar.update(1)
            zeta, hat = prof.zeta_fn(k)
            first_lo, scale = prof.first_guess(k, -z)
            first_hi, _ = prof.first_guess(k, z)
            ends = tuple(_end_or_inf(prof, k, zeta, hat, target, first, scale)
                         for target, first in ((-z, first_lo), (z, first_hi)))
            if k >= prof.nv + prof.p:       # a family parameter: its row's scale (monotone)
                name, natural = prof.phi_rows[k - prof.nv - prof.p]
                ends = tuple(float(natural(e)) for e in ends)
            else:
                name = prof.names[k]
            rows[name] = ends
        bar.close()
    pct = [f"{100 * (1 - level) / 2:.3g} %", f"{100 * (1 + level) / 2:.3g} %"]
    return pd.DataFrame(list(rows.values()), index=list(rows), columns=pct)


def _end_or_inf(prof: _GLMMProfiler, k: int, zeta, hat: float, target: float, first: float,
                scale: str) -> float:
    """The end of coordinate k on the side of ``target``: at its bound (SD 0, correlation ±1)
    where ζ stays short of the target there; for an unbounded coordinate the search stops
    ``_FAR_SE`` Wald SEs out and, where ζ is still short of the target, the end is ±inf (the
    likelihood-ratio interval is unbounded: e.g. a zero-inflation coefficient whose profile
    flattens as π → 0), with a warning naming the parameter."""
    edge = prof.lower[k] if target < 0 else prof.upper[k]
    if np.isfinite(edge):
        return _end(zeta, hat, target, first, edge, scale)
    V = prof.wald_cov
    se = np.sqrt(V[k, k]) if V is not None and V[k, k] > 0 else max(abs(hat), 1.0)
    far = hat + np.sign(target) * _FAR_SE * max(se, abs(first - hat) / max(abs(target), 1e-8))
    end = _end(zeta, hat, target, first, far, scale)
    if end != far:
        return end
    name = prof.names[k]
    side = "lower" if target < 0 else "upper"
    warnings.warn(f"the profile of {name!r} stays below the cut-off out to {far:.4g} "
                  f"({_FAR_SE:g} Wald SEs from {hat:.4g}): its {side} end is unbounded "
                  f"(reported as {'-' if target < 0 else ''}inf); the parameter is not "
                  "determined by the data on that side", IdentifiabilityWarning, stacklevel=4)
    return float(np.sign(target) * np.inf)


def varpar_rows(spec) -> list[str]:
    """The rows of the random-effect SDs / correlations: lme4's ``oldNames=FALSE`` names
    (``sd_(Intercept)|site``) of the conditional terms, then the ziformula's random terms' with
    the prefix ``zi~`` (``zi~sd_(Intercept)|site``; glmmTMB's ``zi.Std.Dev.(Intercept)|site``).

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.spec.model_spec import build_spec
    >>> spec = build_spec("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
    ...                   "poisson", ziformula="~ mined + (1 | site)")
    >>> varpar_rows(spec)
    ['sd_(Intercept)|site', 'zi~sd_(Intercept)|site']
    """
    zi_terms = tuple(getattr(spec, "zi_terms", ()))
    cond = varpar_names(spec)[:-1]
    if not zi_terms:
        return cond
    zi = varpar_names(joint_spec(spec))[len(cond):-1]
    return cond + [f"zi~{name}" for name in zi]


def phi_rows(fit: LaplaceFit) -> list[tuple[str, object]]:
    """(row name, map from the profiled coordinate to the row's scale) per family parameter
    ``phi``: none for a CLMM (its thresholds are re-optimised, not profiled); the dispersion on
    its natural scale (``size``, ``cv``, …: exp of the log dispersion) for a family with one
    and no ziformula / dispformula; otherwise the coordinates as they are, named by
    :meth:`~mixedppl.families.zi_disp.ZIDispFamily.phi_names` (``zi~mined`` logit,
    ``log(size)~mined`` our log φ, ``psi(power)`` glmmTMB's psi), the rows of the bootstrap."""
    fam = fit.family
    if fam.fit_kind == "clmm":
        return []
    names = fam.phi_names()
    ident = (lambda v: v)
    if not fit.spec.aux_designs and fam.dispersion is not None:
        names = [fam.dispersion] + names[1:]
        return [(names[0], np.exp)] + [(n, ident) for n in names[1:]]
    return [(n, ident) for n in names]


def _profiled(prof: _GLMMProfiler, clmm: bool) -> list[int]:
    """The coordinates profiled, in the rows' order: sd/cor… (the ziformula's after the
    conditional model's), the family's parameters (as ``glmm_parameter_names``), β. A CLMM's
    thresholds are re-optimised at every point but not profiled themselves."""
    nv, p = prof.nv, prof.p
    disp = [] if clmm else list(range(nv + p, prof.dim))
    return list(range(nv)) + disp + list(range(nv, nv + p))
