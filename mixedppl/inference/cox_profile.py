r"""Profile-likelihood intervals for the frailty variances of a Cox frailty fit.

The interval for term k's variance :math:`\theta_k^2` is where the profiled integrated partial
log-likelihood stays within :math:`\chi^2_{1}(\text{level})/2` of its maximum,

.. math:: \{\theta_k^2 : 2[\ell_I(\hat\theta) - \max_{\theta_{-k}} \ell_I(\theta_k,
          \theta_{-k})] \le \chi^2_1(\text{level})\},

found by root-finding on each side (the lower end is 0 when the rise at θ_k = 0 is below the
cut-off). The other variances are re-optimised with the shared optimiser at each point.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from ..fit.cox import CoxmeFit
from ..fit.optimize import minimize_bounded

__all__ = ["profile_variance_interval", "profiled_objective"]


def profiled_objective(record: CoxmeFit, k: int, theta_k: float) -> float:
    """−ℓ_I with θ_k fixed and the other θ re-optimised (one term: just −ℓ_I at θ_k)."""
    objective = record.objective
    theta = np.array(record.theta, float)
    theta[k] = theta_k
    if len(theta) == 1:
        return float(objective(theta)[0])
    opt = minimize_bounded(objective, theta, np.zeros(len(theta)), fixed={k: theta_k})
    return float(opt.fun)


def profile_variance_interval(record: CoxmeFit, k: int, level: float = 0.95
                              ) -> tuple[float, float]:
    """(lower, upper) of term k's frailty variance (see the module docstring).

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
    theta_hat = float(record.theta[k])

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
