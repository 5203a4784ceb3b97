"""The user-facing entry points: ``lmer`` and ``Model`` (parse → graph → optimise → result).

As lme4's modular steps (``lFormula`` → ``mkLmerDevfun`` → ``optimizeLmer`` → ``mkMerMod``), each
step is reachable: ``Model(formula, data).spec`` (the parsed model), ``.objective()`` (the compiled
profiled deviance), ``.fit()`` (the result), ``.to_pymc()`` (the same model as a PyMC model).
"""

from __future__ import annotations

import pandas as pd

from .control import LmerControl
from .spec.model_spec import ModelSpec, build_spec

__all__ = ["Model", "lmer"]


class Model:
    """A mixed model built once from a formula and data; fit it or hand it to PyMC.

    Parameters
    ----------
    formula : str
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : DataFrame
    family : str
        ``"gaussian"`` (linear mixed model).
    weights, offset : str or array-like, optional
    na_action : {"omit", "raise"}
    contrasts : dict, optional
        Column → contrast name or matrix (as R's ``contrasts=``).

    Examples
    --------
    >>> import mixedppl as mp
    >>> m = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> m.spec.theta_names()
    ['Subject.(Intercept)', 'Subject.Days.(Intercept)', 'Subject.Days']
    >>> round(m.fit().loglik, 3)
    -871.814
    """

    def __init__(self, formula: str, data: pd.DataFrame, family: str = "gaussian", *,
                 weights=None, offset=None, na_action: str = "omit",
                 contrasts: dict | None = None):
        if family not in ("gaussian", "normal"):
            raise NotImplementedError(f"family={family!r}: only 'gaussian' (mp.lmer) is available yet")
        self.family = "gaussian"
        self.spec: ModelSpec = build_spec(formula, data, weights=weights, offset=offset,
                                          na_action=na_action, contrasts=contrasts)

    def objective(self, reml: bool = True):
        """The compiled profiled deviance d(θ) → (value, gradient) (lme4's ``devFunOnly=TRUE``)."""
        from .fit.lmm_objective import LMMObjective
        return LMMObjective(self.spec, reml=reml)

    def fit(self, reml: bool = True, control: LmerControl | None = None, start=None):
        """Fit by profiled REML (default) or ML; returns an :class:`LMMResult`."""
        from .fit.lmm_fit import fit_lmm
        return fit_lmm(self.spec, reml=reml, control=control, start=start)

    def to_pymc(self, priors: dict | None = None):
        """The unprofiled joint density log p(y, b | β, θ, σ) as a ``pm.Model`` (see mixedppl.bayes)."""
        from .bayes.pymc import lmm_to_pymc
        return lmm_to_pymc(self.spec, priors=priors)


def lmer(formula: str, data: pd.DataFrame, reml: bool = True, *, weights=None, offset=None,
         na_action: str = "omit", contrasts: dict | None = None,
         control: LmerControl | None = None, start=None):
    """Fit a linear mixed model by REML (default) or ML, as lme4's ``lmer``.

    Parameters
    ----------
    formula : str
        lme4 formula: ``y ~ x + (1 + x | g)``, ``(x || g)``, ``(1 | a/b)``, ``(1 | a:b)``, crossed terms.
    data : DataFrame
        Not modified; rows with missing values in used columns are dropped (with a warning).
    reml : bool
        REML (default) or maximum likelihood.
    weights, offset : str or array-like, optional
        Prior weights / offset (column name or one value per row).
    na_action : {"omit", "raise"}
    contrasts : dict, optional
    control : LmerControl, optional
    start : array-like, optional
        Starting θ.

    Returns
    -------
    LMMResult

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> fit.fe_params.round(3).tolist()
    [251.405, 10.467]
    >>> round(fit.reml_criterion, 4)
    1743.6283
    """
    model = Model(formula, data, weights=weights, offset=offset, na_action=na_action,
                  contrasts=contrasts)
    return model.fit(reml=reml, control=control, start=start)
