"""Fit controls, as lme4's ``lmerControl``: optimiser tolerances and what each check does.

Each check's action is ``"ignore"``, ``"warn"`` (default) or ``"raise"``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from .exceptions import ConvergenceWarning

__all__ = ["LmerControl", "act"]

_ACTIONS = ("ignore", "warn", "raise")


@dataclass(frozen=True)
class LmerControl:
    """Controls for :func:`mixedppl.lmer`.

    Attributes
    ----------
    ftol, gtol, maxiter : float, float, int
        L-BFGS-B tolerances (relative change of the objective, projected gradient) and iterations.
    boundary_tol : float
        As lme4's ``boundary.tol``: a θ on a diagonal within this of 0 is tried at exactly 0 and
        kept there when the deviance is no worse.
    singular_tol : float
        As lme4's ``isSingular(tol = 1e-4)``.
    check_conv, check_singular : {"ignore", "warn", "raise"}
        What to do when the optimiser did not converge / the fit is singular.
    grad_tol : float
        Largest projected gradient component (of the deviance) accepted as converged.
    """

    ftol: float = 1e-14
    gtol: float = 1e-9
    maxiter: int = 3000
    boundary_tol: float = 1e-5
    singular_tol: float = 1e-4
    check_conv: str = "warn"
    check_singular: str = "warn"
    grad_tol: float = 2e-3

    def __post_init__(self):
        for name in ("check_conv", "check_singular"):
            if getattr(self, name) not in _ACTIONS:
                raise ValueError(f"{name} must be one of {_ACTIONS}, got {getattr(self, name)!r}")


def act(action: str, message: str, category: type[Warning]) -> None:
    """Carry out a check's action for a failed check."""
    if action == "raise":
        raise RuntimeError(message) if category is ConvergenceWarning else ValueError(message)
    if action == "warn":
        warnings.warn(message, category, stacklevel=4)


