r"""Profile-likelihood intervals for a Cox frailty fit: the frailty variances and β.

**Variances.** The interval for the variance :math:`\theta_k^2` of a scalar term is where the
profiled integrated partial log-likelihood stays within :math:`\chi^2_{1}(\text{level})/2` of its
maximum,

.. math:: \{\theta_k^2 : 2[\ell_I(\hat\theta) - \max_{\theta_{-k}} \ell_I(\theta_k,
          \theta_{-k})] \le \chi^2_1(\text{level})\},

found by root-finding on each side (the lower end is 0 when the rise at θ_k = 0 is below the
cut-off). The other θ are re-optimised with the shared optimiser at each point.

**Fixed effects.** With :math:`\beta_j` held at c (moved into the offset, :math:`c\,x_j`), the
fit's objective is :math:`\ell_I(\theta; c)`: PPL at its mode over (u, β₋ⱼ) minus
½ log|H̃_uu| there, which at c = β̂ⱼ and θ̂ is the fit's :math:`\ell_I(\hat\theta)`. The interval
is :math:`\{c : 2[\ell_I(\hat\theta) - \max_\theta \ell_I(\theta; c)] \le \chi^2_1(\text{level})\}`,
as lme4's ``profile`` treats a GLMM's β (Bates et al. 2015, §5.1). Not in coxme (its
``confint`` is Wald).

References
----------
Bates, D., Mächler, M., Bolker, B. & Walker, S. (2015). Fitting linear mixed-effects models
using lme4. J. Stat. Softw. 67(1).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import optimize, stats

from ..core.progress import progress_bar
from ..fit.cox import CoxmeFit, CoxmeObjective
from ..fit.optimize import minimize_bounded
from ..fit.records import group_labels

__all__ = ["profile_variance_interval", "profiled_objective", "profile_beta_interval",
           "profiled_beta_objective", "theta_index", "profile_intervals"]


def theta_index(record: CoxmeFit, k: int) -> int:
    """The θ index of term k, a scalar term (its standard deviation)."""
    t = record.spec.terms[k]
    if t.n_cols > 1:
        raise ValueError(f"({' + '.join(t.column_names)} | {t.group}) has several columns: "
                         "the variance profile is for scalar terms such as (1 | g)")
    return sum(s.n_theta for s in record.spec.terms[:k])


def profiled_objective(record: CoxmeFit, k: int, theta_k: float) -> float:
    """−ℓ_I with the SD of scalar term k fixed and the other θ re-optimised (one θ: just −ℓ_I
    at θ_k)."""
    objective = record.objective
    i = theta_index(record, k)
    theta = np.array(record.theta, float)
    theta[i] = theta_k
    if len(theta) == 1:
        return float(objective(theta)[0])
    opt = minimize_bounded(objective, theta, record.spec.theta_lower(), fixed={i: theta_k},
                           mirror=record.spec.theta_mirror())
    return float(opt.fun)


def profile_variance_interval(record: CoxmeFit, k: int, level: float = 0.95
                              ) -> tuple[float, float]:
    """(lower, upper) of scalar term k's frailty variance (see the module docstring).

    Parameters
    ----------
    record : CoxmeFit
        A fit whose variances were estimated (not fixed).
    k : int
        The term (``spec.terms`` order).
    level : float

    Returns
    -------
    tuple of float
        Bounds on the variance scale θ_k².
    """
    if record.objective is None:
        raise ValueError("the record has no objective to profile")
    f_hat = -record.loglik_integrated
    cut = stats.chi2.ppf(level, 1) / 2.0
    theta_hat = float(record.theta[theta_index(record, k)])

    def rise(t: float) -> float:
        return profiled_objective(record, k, t) - f_hat - cut

    lower = 0.0
    if theta_hat > 0 and rise(0.0) > 0:
        lower = optimize.brentq(rise, 0.0, theta_hat, xtol=1e-10)
    step = max(theta_hat, 0.1)
    hi = theta_hat + step
    while rise(hi) < 0:
        step *= 2
        hi = theta_hat + step
        if hi > 1e3:
            return lower ** 2, np.inf
    upper = optimize.brentq(rise, theta_hat, hi, xtol=1e-10)
    return lower ** 2, upper ** 2


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
    z = float(stats.norm.ppf(0.5 + level / 2))
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
    """Profile intervals of every scalar term's variance (``"var(<group>)"``) and every β_j
    (by name), in that order; ``progress`` shows a bar over them
    (:func:`~mixedppl.core.progress.progress_bar`).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))
    >>> ends = profile_intervals(fit.record, progress=False)
    >>> list(ends), [round(v, 3) for v in ends["var(id)"]]
    (['var(id)', 'age', 'sex'], [0.03, 1.472])
    """
    spec = record.spec
    todo = [(f"var({label})", k) for k, (label, t) in
            enumerate(zip(group_labels(spec.terms), spec.terms)) if t.n_cols == 1]
    todo += [(name, j) for j, name in enumerate(spec.fe_names)]
    n_var = len(todo) - len(spec.fe_names)
    bar = progress_bar(len(todo), "profile", progress)
    rows = {}
    try:
        for i, (name, k) in enumerate(todo):
            rows[name] = list(profile_variance_interval(record, k, level) if i < n_var
                              else profile_beta_interval(record, k, level))
            bar.update(1)
    finally:
        bar.close()
    return rows
