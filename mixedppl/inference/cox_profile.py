r"""Profile-likelihood intervals for a Cox frailty fit: the frailty SDs / correlations and β.

**Variance parameters.** Each term's covariance :math:`\Sigma_k = T_kT_k^\top` is written as
lme4's ``oldNames=FALSE`` parameters ψ (``sd_(Intercept)|id``, ``sd_x|g``, ``cor_x.(Intercept)|g``:
the SDs :math:`\sqrt{\Sigma_{ii}}` and the correlations
:math:`\Sigma_{ij}/\sqrt{\Sigma_{ii}\Sigma_{jj}}`; :func:`~mixedppl.inference.profile.varpar_names`).
With :math:`\psi_k` held at x and the other ψ re-optimised (L-BFGS-B in ψ, the box SD ≥ 0,
|ρ| ≤ 1, the gradient :math:`J^\top\nabla_\theta` through θ(ψ)), the profile is

.. math:: \zeta_k(x) = \operatorname{sign}(x - \hat\psi_k)\,
          \sqrt{2[\ell_I(\hat\psi) - \max_{\psi_{-k}} \ell_I(x, \psi_{-k})]},

and the ends solve :math:`\zeta_k(x) = \pm z_{(1+\text{level})/2}`, i.e. where
:math:`2(\hat\ell - \ell_{\text{fixed}}) = \chi^2_1(\text{level})`, by the root-finder of the
LMM / GLMM profiles (:func:`~mixedppl.inference.profile._end`: interpolation in log x for an SD,
atanh x for a correlation, from a Wald first guess). An end beyond the parameter's bound is the
bound: an SD whose profile at 0 stays below the cut-off has lower end 0, as lme4's
``confint(profile(fit))``. ℓ̂ is the fit's ℓ_I, polished by a full re-optimisation in ψ.

**Fixed effects.** With :math:`\beta_j` held at c (moved into the offset, :math:`c\,x_j`), the
fit's objective is :math:`\ell_I(\theta; c)`: PPL at its mode over (u, β₋ⱼ) minus
½ log|H̃_uu| there, which at c = β̂ⱼ and θ̂ is the fit's :math:`\ell_I(\hat\theta)`. The interval
is :math:`\{c : 2[\ell_I(\hat\theta) - \max_\theta \ell_I(\theta; c)] \le \chi^2_1(\text{level})\}`,
as lme4's ``profile`` treats a GLMM's β (Bates et al. 2015, §5.1). coxme has neither interval
(its ``confint`` is Wald on β only).

References
----------
Bates, D., Mächler, M., Bolker, B. & Walker, S. (2015). Fitting linear mixed-effects models
using lme4. J. Stat. Softw. 67(1).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import optimize, special

from ..core.progress import progress_bar
from ..fit.cox import CoxmeFit, CoxmeObjective
from ..fit.optimize import difference_hessian, minimize_bounded
from .profile import _end, psi_to_theta_jacobian, theta_to_psi, varpar_bounds, varpar_names

__all__ = ["VarparProfile", "profile_varpar_interval", "profiled_varpar_objective",
           "profile_beta_interval", "profiled_beta_objective", "profile_intervals"]


class VarparProfile:
    """−ℓ_I of a Cox frailty fit as a function of ψ (SDs and correlations, lme4's names), and
    its one-parameter profiles (see the module docstring).

    Parameters
    ----------
    record : CoxmeFit
        A fit whose variances were estimated (not fixed).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))
    >>> prof = VarparProfile(fit.record)
    >>> prof.names, round(float(prof.psi_hat[0]), 3)
    (['sd_(Intercept)|id'], 0.676)
    """

    def __init__(self, record: CoxmeFit):
        if record.objective is None or record.fixed_variance:
            raise ValueError("the variance profile needs a fit whose variances were estimated "
                             "(not fixed with variance=)")
        self.record, self.spec = record, record.spec
        self.names = varpar_names(self.spec)[:-1]
        self.lower, self.upper = varpar_bounds(self.spec)
        psi = np.clip(theta_to_psi(self.spec, np.asarray(record.theta, float), 1.0)[:-1],
                      self.lower, self.upper)
        f = -float(record.loglik_integrated)
        polished, at = self._minimise(np.ones(len(psi), bool), psi)
        if polished < f:                       # the fit's optimum, tightened
            f, psi = polished, at
        self.f_hat, self.psi_hat = f, psi

    @property
    def dim(self) -> int:
        """The number of variance parameters."""
        return len(self.names)

    def fun_grad(self, psi: np.ndarray) -> tuple[float, np.ndarray]:
        """(−ℓ_I, its gradient in ψ) by the chain rule through θ(ψ)."""
        theta, J = psi_to_theta_jacobian(self.spec, np.append(psi, 1.0))
        f, g = self.record.objective(theta)
        if not np.isfinite(f):
            return np.inf, np.zeros(len(psi))
        return float(f), J[:, :-1].T @ g

    def _minimise(self, free: np.ndarray, psi: np.ndarray) -> tuple[float, np.ndarray]:
        """min of −ℓ_I over the ψ[free] (the rest held), from ``psi``."""
        psi = np.asarray(psi, float).copy()
        if not free.any():
            return self.fun_grad(psi)[0], psi

        def fg(v):
            z = psi.copy()
            z[free] = v
            f, g = self.fun_grad(z)
            return f, g[free]
        bounds = list(zip(self.lower[free], np.where(np.isinf(self.upper[free]), None,
                                                     self.upper[free])))
        opt = optimize.minimize(fg, psi[free], jac=True, method="L-BFGS-B", bounds=bounds,
                                options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000})
        psi[free] = opt.x
        return float(opt.fun), psi

    def profiled(self, k: int, x: float, start: np.ndarray | None = None
                 ) -> tuple[float, np.ndarray]:
        """(−max ℓ_I with ψ_k = x, the ψ there), the others from ``start`` (default ψ̂)."""
        psi = np.array(self.psi_hat if start is None else start, float)
        psi[k] = x
        return self._minimise(np.arange(self.dim) != k, psi)

    def zeta_fn(self, k: int):
        """x → ζ_k(x), each inner fit started from the nearest point done."""
        seen = {float(self.psi_hat[k]): self.psi_hat.copy()}

        def zeta(x: float) -> float:
            near = min(seen, key=lambda v: abs(v - x))
            f, psi = self.profiled(k, x, seen[near])
            seen[float(x)] = psi
            rise = max(f - self.f_hat, 0.0)
            return float(np.sign(x - self.psi_hat[k]) * np.sqrt(2.0 * rise))
        return zeta

    def first_guess(self, k: int, z: float, se: float | None) -> tuple[float, str]:
        """The first point beyond ψ̂_k (Wald, at ζ ≈ z) and the scale ζ is ~linear on."""
        hat, lo, hi = float(self.psi_hat[k]), self.lower[k], self.upper[k]
        cor = self.names[k].startswith("cor_")
        scale = "atanh" if cor else "log"
        if not (lo + 1e-6 * max(abs(hat), 1e-2) < hat < hi - 1e-6):
            scale = "id"                       # on a bound: no log / atanh scale around it
        if se is None or not np.isfinite(se) or se <= 0:
            step = 0.25 * max(1 - abs(hat), 1e-2) if cor else 0.25 * max(abs(hat), 1e-2)
            return hat + np.sign(z) * step, scale
        if scale == "log":
            return hat * float(np.exp(z * se / hat)), scale
        if scale == "atanh":
            return float(np.tanh(np.arctanh(hat) + z * se / (1 - hat ** 2))), scale
        return hat + z * se, scale

    def wald_se(self) -> np.ndarray | None:
        """√diag of the inverse numeric Hessian of −ℓ_I in ψ (None unless positive definite)."""
        H = difference_hessian(lambda v: self.fun_grad(v)[1], self.psi_hat, step=1e-5,
                               lower=self.lower, upper=self.upper, positive_definite=True)
        return None if H is None else np.sqrt(np.diag(np.linalg.inv(H)))

    def interval(self, k: int, level: float = 0.95, se: np.ndarray | None = None
                 ) -> tuple[float, float]:
        """(lower, upper) of ψ_k; an end past the bound is the bound (an SD's lower end 0)."""
        z = float(special.ndtri(0.5 + level / 2))
        hat = float(self.psi_hat[k])
        zeta = self.zeta_fn(k)
        s = None if se is None else float(se[k])
        ends = []
        for target, edge in ((-z, self.lower[k]), (z, self.upper[k])):
            first, scale = self.first_guess(k, target, s)
            with np.errstate(divide="ignore"):      # atanh(±1) when a step lands on the bound
                ends.append(_end(zeta, hat, target, first, float(edge), scale, tol=1e-7))
        return ends[0], ends[1]


def profiled_varpar_objective(record: CoxmeFit, name: str, value: float) -> float:
    """−max ℓ_I with the variance parameter ``name`` (``"sd_(Intercept)|id"``, …) at ``value``
    and the other variance parameters re-optimised.

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))
    >>> f = profiled_varpar_objective(fit.record, "sd_(Intercept)|id", 0.5)
    >>> round(f + fit.loglik, 4) > 0
    True
    """
    prof = VarparProfile(record)
    return prof.profiled(_varpar_index(prof, name), float(value))[0]


def _varpar_index(prof: VarparProfile, name: str) -> int:
    if name not in prof.names:
        raise ValueError(f"no variance parameter {name!r}; the fit has {prof.names}")
    return prof.names.index(name)


def profile_varpar_interval(record: CoxmeFit, name: str, level: float = 0.95
                            ) -> tuple[float, float]:
    """(lower, upper) of one variance parameter (an SD or a correlation, lme4's name) by the
    profile of the integrated partial likelihood (see the module docstring).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))
    >>> [round(e, 3) for e in profile_varpar_interval(fit.record, "sd_(Intercept)|id")]
    [0.175, 1.213]
    """
    prof = VarparProfile(record)
    return prof.interval(_varpar_index(prof, name), level, prof.wald_se())


class _BetaProfile:
    """−max_θ ℓ_I(θ; β_j = c) for one j, each c its own objective (β_j in the offset); θ and
    the inner mode start from the last point's."""

    def __init__(self, record: CoxmeFit, j: int):
        self.record, self.j = record, j
        data = record.data
        self.keep = np.arange(data.X.shape[1]) != j
        self.x_j = data.X[:, j]
        self.restart()

    def restart(self) -> None:
        """Start the next point from the fit (θ̂, û, β̂₋ⱼ)."""
        self.theta = np.array(self.record.theta, float)
        self.x = np.r_[self.record.u, self.record.beta[self.keep]]

    def __call__(self, c: float) -> float:
        r, data = self.record, self.record.data
        reduced = replace(data, X=np.ascontiguousarray(data.X[:, self.keep]),
                          offset=data.offset + c * self.x_j)
        objective = CoxmeObjective(reduced, r.beta[self.keep])
        objective.warm_start(self.x)
        opt = minimize_bounded(objective, self.theta, r.spec.theta_lower(),
                               mirror=r.spec.theta_mirror())
        if np.isfinite(opt.fun):
            self.theta = np.asarray(opt.x, float)      # the next point starts here
            self.x = objective.value(self.theta)["x"]
        return float(opt.fun)


def profiled_beta_objective(record: CoxmeFit, j: int, value: float) -> float:
    """−max_θ ℓ_I(θ; β_j = value) (see the module docstring)."""
    return _BetaProfile(record, j)(value)


def _signed_root(profile: _BetaProfile, c: float, b_hat: float, f_hat: float) -> float:
    """ζ(c) = sign(c − β̂)·√(2[f(c) − f̂]), nearly linear in c."""
    return float(np.sign(c - b_hat) * np.sqrt(max(2.0 * (profile(c) - f_hat), 0.0)))


def profile_beta_interval(record: CoxmeFit, j: int, level: float = 0.95,
                          xtol: float = 1e-7) -> tuple[float, float]:
    """(lower, upper) of β_j by the profile of the integrated partial likelihood.

    Each end solves ζ(c) = ±z (z the normal quantile, ζ the signed root of the profile's rise,
    nearly linear in c) by the secant method from the Wald end, with a bracketing safeguard
    (Brent's method once the root is bracketed and the secant does not settle).

    Parameters
    ----------
    record : CoxmeFit
        A fit whose variances were estimated (not fixed).
    j : int
        The column of the fixed-effect matrix.
    level : float
    xtol : float
        Tolerance on the ends (relative to 1 + |β̂_j|).

    Returns
    -------
    tuple of float
    """
    if record.objective is None or record.fixed_variance:
        raise ValueError("the profile of β needs a fit whose variances were estimated")
    f_hat = -record.loglik_integrated
    z = float(special.ndtri(0.5 + level / 2))
    b_hat = float(record.beta[j])
    se = float(np.sqrt(record.vcov_beta[j, j]))
    profile = _BetaProfile(record, j)
    tol = xtol * (1.0 + abs(b_hat))
    ends = []
    for sign in (-1.0, 1.0):
        profile.restart()

        def excess(c: float) -> float:
            return sign * _signed_root(profile, c, b_hat, f_hat) - z

        c0, c1 = b_hat, b_hat + sign * z * se            # ζ(β̂) = 0, the Wald end
        e0, e1 = -z, excess(c1)
        end = None
        for _ in range(12):
            if abs(e1) < 1e-9 or abs(c1 - c0) < tol:
                end = c1
                break
            if e1 == e0:
                break
            c0, c1, e0 = c1, c1 - e1 * (c1 - c0) / (e1 - e0), e1
            if sign * (c1 - b_hat) <= 0:                 # stepped past β̂: bisect instead
                c1 = 0.5 * (c0 + b_hat)
            e1 = excess(c1)
        if end is None:
            lo, hi = sorted((b_hat, b_hat + sign * 2 * z * se))
            while (excess(hi) if sign > 0 else excess(lo)) < 0:
                lo, hi = (lo, hi + (hi - lo)) if sign > 0 else (lo - (hi - lo), hi)
                if hi - lo > 1e3 * (1 + se):
                    return (-np.inf, np.inf)
            end = optimize.brentq(excess, lo, hi, xtol=tol)
        ends.append(end)
    return ends[0], ends[1]


def profile_intervals(record: CoxmeFit, level: float = 0.95, progress: bool = True) -> dict:
    """Profile intervals of every variance parameter (lme4's ``oldNames=FALSE`` names:
    ``sd_(Intercept)|id``, ``cor_x.(Intercept)|g``, …) and every β_j (by name), in that order;
    ``progress`` shows a bar over them (:func:`~mixedppl.core.progress.progress_bar`).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))
    >>> ends = profile_intervals(fit.record, progress=False)
    >>> list(ends), [round(v, 3) for v in ends["sd_(Intercept)|id"]]
    (['sd_(Intercept)|id', 'age', 'sex'], [0.175, 1.213])
    """
    prof = VarparProfile(record)
    n_var = prof.dim
    todo = list(range(n_var)) + list(range(len(record.spec.fe_names)))
    bar = progress_bar(len(todo), "profile", progress)
    rows = {}
    try:
        se = prof.wald_se() if n_var else None
        for i, k in enumerate(todo):
            if i < n_var:
                rows[prof.names[k]] = list(prof.interval(k, level, se))
            else:
                rows[record.spec.fe_names[k]] = list(profile_beta_interval(record, k, level))
            bar.update(1)
    finally:
        bar.close()
    return rows
