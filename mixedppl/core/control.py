"""Fit controls, as lme4's ``lmerControl`` / ``glmerControl``: tolerances and what each check does.

One class, :class:`Control`, serves :func:`mixedppl.lmer`, :func:`mixedppl.glmer` and
:func:`mixedppl.clmm` (``LmerControl`` is the same class under its old name). Each check's action is
``"ignore"``, ``"warn"`` or ``"raise"``.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np

from .exceptions import ConvergenceWarning, ModelSpecError

__all__ = ["Control", "LmerControl", "act", "as_control", "start_theta"]

_ACTIONS = ("ignore", "warn", "raise")

#: Each fit's own optimiser defaults, used for the tolerances a Control leaves at None.
FIT_DEFAULTS = {
    "lmer": {"ftol": 1e-14, "gtol": 1e-9, "maxiter": 3000},
    "glmer": {"ftol": 1e-15, "gtol": 1e-6, "maxiter": 2000},
    "clmm": {"ftol": 1e-15, "gtol": 1e-6, "maxiter": 2000},
}

#: lme4's ``check.nobs.vs.nRE`` default per fit (lmerControl and glmerControl: "stop"; ordinal's
#: clmm has no such check).
NRE_DEFAULTS = {"lmer": "raise", "glmer": "raise", "clmm": "ignore"}

_TOLERANCES = ("ftol", "gtol", "maxiter")
_GLMM_KEYS = _TOLERANCES + ("start_theta",)


@dataclass(frozen=True)
class Control:
    """Controls for :func:`mixedppl.lmer`, :func:`mixedppl.glmer` and :func:`mixedppl.clmm`.

    Attributes
    ----------
    ftol, gtol, maxiter : float, float, int, optional
        L-BFGS-B tolerances (relative change of the objective, projected gradient) and iterations.
        None (default): the fit's own default — lmer 1e-14, 1e-9, 3000; glmer and clmm 1e-15,
        1e-6, 2000. Read back on a Control, an unset tolerance gives lmer's value (the fit that
        reads these attributes); ``options("glmer")`` gives what glmer / clmm use.
    start_theta : array-like, optional
        glmer / clmm: starting θ (lmer takes ``start=``).
    boundary_tol : float
        lmer: as lme4's ``boundary.tol``: a θ on a diagonal within this of 0 is tried at exactly 0
        and kept there when the deviance is no worse.
    singular_tol : float
        lmer: as lme4's ``isSingular(tol = 1e-4)``.
    check_conv, check_singular : {"ignore", "warn", "raise"}
        lmer: what to do when the optimiser did not converge / the fit is singular.
    grad_tol : float
        lmer: largest projected gradient component (of the deviance) accepted as converged.
    check_nobs_vs_nRE : {"ignore", "warn", "raise"}, optional
        As lme4's ``check.nobs.vs.nRE``: what to do when a random term has at least as many
        random effects as there are observations (lmer) or more (glmer, clmm). None (default): the
        fit's default, as lme4's — "raise" for lmer and glmer, "ignore" for clmm (ordinal's clmm
        does not check).

    Examples
    --------
    >>> c = Control(maxiter=500)
    >>> c.options("glmer")["maxiter"], c.options("glmer")["ftol"], c.ftol
    (500, 1e-15, 1e-14)
    """

    ftol: float | None = None
    gtol: float | None = None
    maxiter: int | None = None
    start_theta: object = None
    boundary_tol: float = 1e-5
    singular_tol: float = 1e-4
    check_conv: str = "warn"
    check_singular: str = "warn"
    grad_tol: float = 2e-3
    check_nobs_vs_nRE: str | None = None
    given: frozenset = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        for name in ("check_conv", "check_singular"):
            if getattr(self, name) not in _ACTIONS:
                raise ValueError(f"{name} must be one of {_ACTIONS}, got {getattr(self, name)!r}")
        if self.check_nobs_vs_nRE is not None and self.check_nobs_vs_nRE not in _ACTIONS:
            raise ValueError(f"check_nobs_vs_nRE must be one of {_ACTIONS} or None, got "
                             f"{self.check_nobs_vs_nRE!r}")
        # Tolerances given by the user are remembered; unset ones read back lmer's defaults
        # (``dataclasses.replace`` passes ``given`` along, so it keeps what was really set).
        given = set(self.given or ()) | {n for n in _TOLERANCES if getattr(self, n) is not None
                                         and (self.given is None
                                              or getattr(self, n) != FIT_DEFAULTS["lmer"][n])}
        object.__setattr__(self, "given", frozenset(given))
        for name in _TOLERANCES:
            if getattr(self, name) is None:
                object.__setattr__(self, name, FIT_DEFAULTS["lmer"][name])

    def options(self, fit: str) -> dict:
        """The optimiser settings ``fit`` ("lmer", "glmer" or "clmm") uses, its defaults filled in."""
        out = {n: (getattr(self, n) if n in self.given else FIT_DEFAULTS[fit][n])
               for n in _TOLERANCES}
        if self.start_theta is not None:
            out["start_theta"] = self.start_theta
        return out

    def nobs_vs_nRE(self, fit: str) -> str:
        """The ``check_nobs_vs_nRE`` action of ``fit``: the given one or lme4's default."""
        return self.check_nobs_vs_nRE or NRE_DEFAULTS[fit]


LmerControl = Control


def as_control(control, fit: str) -> Control:
    """A :class:`Control` from None, a Control or (glmer / clmm) a dict of its fields.

    Parameters
    ----------
    control : Control, dict or None
        A dict may hold ``ftol``, ``gtol``, ``maxiter``, ``start_theta`` and any other field.
    fit : {"lmer", "glmer", "clmm"}
        The fit the control is for (named in the error message).

    Examples
    --------
    >>> as_control({"maxiter": 10}, "glmer").options("glmer")["maxiter"]
    10
    """
    if control is None:
        return Control()
    if isinstance(control, Control):
        return control
    if isinstance(control, dict):
        names = {f.name for f in dataclasses.fields(Control)} - {"given"}
        unknown = sorted(set(control) - names)
        if unknown:
            raise ValueError(f"unknown control setting(s) {unknown} for {fit}; known: "
                             f"{sorted(names)}")
        return Control(**control)
    raise TypeError(f"control must be mp.Control(...) (or a dict of its fields), got "
                    f"{type(control).__name__}")


def start_theta(start) -> np.ndarray | None:
    """The starting θ of a ``start=`` argument, as lme4's: a vector is θ, a dict may hold
    ``"theta"`` (lme4's ``start = list(theta = ...)``).

    Parameters
    ----------
    start : array-like, dict or None

    Raises
    ------
    ModelSpecError
        For a dict with other keys (a start for β or φ is not taken: they start at the fit
        of the model without random effects).

    Examples
    --------
    >>> start_theta({"theta": [0.5, 0.1]}).tolist(), start_theta(None)
    ([0.5, 0.1], None)
    """
    if start is None:
        return None
    if isinstance(start, dict):
        unknown = sorted(set(start) - {"theta"})
        if unknown:
            raise ModelSpecError(f"start= takes 'theta' (as lme4's start = list(theta = ...)); "
                                 f"got {unknown}: β and the dispersion / thresholds start at "
                                 "the fit without random effects")
        if start.get("theta") is None:
            return None
        start = start["theta"]
    theta = np.asarray(start, float).reshape(-1)
    if not np.all(np.isfinite(theta)):
        raise ModelSpecError(f"start: θ must be finite, got {theta.tolist()}")
    return theta


def act(action: str, message: str, category: type[Warning]) -> None:
    """Carry out a check's action for a failed check."""
    if action == "raise":
        raise RuntimeError(message) if category is ConvergenceWarning else ValueError(message)
    if action == "warn":
        warnings.warn(message, category, stacklevel=4)
