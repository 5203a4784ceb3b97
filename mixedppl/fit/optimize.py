"""Bounded gradient-based optimisation with a record of what happened (``OptSummary``).

The optimiser is kept apart from the model, as in MixedModels.jl: it sees a function returning
(value, gradient) of a flat vector, bounds, optional fixed coordinates and a start. A non-finite
value (a failed Cholesky) is treated as a failed point, not a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

__all__ = ["OptSummary", "minimize_bounded"]


@dataclass(frozen=True)
class OptSummary:
    """What the optimiser did: start, optimum, evaluations, convergence and final gradient."""

    method: str
    x0: np.ndarray
    x: np.ndarray
    fun: float
    n_evals: int
    n_iter: int
    success: bool
    message: str
    gradient: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    fixed: dict = field(default_factory=dict)

    def projected_gradient(self) -> np.ndarray:
        """Gradient with components pushing against an active bound set to zero."""
        g = self.gradient.copy()
        at_lower = (self.x <= self.lower) & (g > 0)
        at_upper = (self.x >= self.upper) & (g < 0)
        g[at_lower | at_upper] = 0.0
        return g


def minimize_bounded(fun_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray,
                     lower: np.ndarray, upper: np.ndarray | None = None,
                     fixed: dict[int, float] | None = None, ftol: float = 1e-13,
                     gtol: float = 1e-8, maxiter: int = 2000) -> OptSummary:
    """Minimise with L-BFGS-B, holding the coordinates in ``fixed`` at their given values.

    Parameters
    ----------
    fun_grad : callable
        ``x -> (f(x), ∇f(x))`` on the full vector.
    x0, lower, upper : ndarray
        Start and bounds of the full vector (``upper`` defaults to +inf).
    fixed : dict, optional
        Index → value of coordinates held fixed (profiles).
    ftol, gtol, maxiter
        Passed to L-BFGS-B (relative change in f, projected gradient, iterations).
    """
    x0 = np.asarray(x0, float).copy()
    lower = np.asarray(lower, float)
    upper = np.full_like(lower, np.inf) if upper is None else np.asarray(upper, float)
    fixed = dict(fixed or {})
    for i, v in fixed.items():
        x0[i] = v
    free = np.array([i not in fixed for i in range(len(x0))], bool)
    best = {"f": np.inf}
    n_evals = [0]

    def full(xf):
        x = x0.copy()
        x[free] = xf
        return x

    def wrapped(xf):
        n_evals[0] += 1
        f, g = fun_grad(full(xf))
        f = float(f)
        g = np.asarray(g, float)
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            return (best["f"] + 1e6 if np.isfinite(best["f"]) else 1e300), np.zeros(free.sum())
        best["f"] = min(best["f"], f)
        return f, g[free]

    bounds = list(zip(np.where(np.isfinite(lower[free]), lower[free], None),
                      np.where(np.isfinite(upper[free]), upper[free], None)))
    x_start = np.clip(x0[free], lower[free], upper[free])
    if free.any():
        res = minimize(wrapped, x_start, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"ftol": ftol, "gtol": gtol, "maxiter": maxiter, "maxfun": 5 * maxiter,
                                "maxcor": 20})
        x, nit, ok, msg = full(res.x), int(res.nit), bool(res.success), str(res.message)
    else:
        x, nit, ok, msg = x0, 0, True, "all parameters fixed"
    f, g = fun_grad(x)
    return OptSummary("L-BFGS-B", x0, x, float(f), n_evals[0] + 1, nit, ok, msg,
                      np.asarray(g, float), lower, upper, fixed)
