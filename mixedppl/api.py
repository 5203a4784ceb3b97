"""The user-facing entry points: ``lmer`` and ``Model`` (parse → graph → optimise → result).

As lme4's modular steps (``lFormula`` → ``mkLmerDevfun`` → ``optimizeLmer`` → ``mkMerMod``), each
step is reachable: ``Model(formula, data).spec`` (the parsed model), ``.objective()`` (the compiled
profiled deviance), ``.fit()`` (the result), ``.to_pymc()`` (the same model as a PyMC model).
"""

from __future__ import annotations

import pandas as pd

from .core.control import Control, as_control
from .families import GAUSSIAN, get_family
from .results.lmm import LMMResult
from .spec.frame import check_arguments
from .spec.model_spec import ModelSpec, build_spec

__all__ = ["Model", "lmer"]


class Model:
    """A mixed model built once from a formula and data; fit it or hand it to PyMC.

    Parameters
    ----------
    formula : str
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : DataFrame
    family : str or Family
        ``"gaussian"`` (linear mixed model, :func:`lmer`; the family object
        :data:`mixedppl.families.GAUSSIAN`); a GLMM family (``"binomial"``,
        ``"poisson"``, ``"negative_binomial"``, ``"gamma"``, ``"beta"``, :func:`mixedppl.glmer`);
        or ``"cumulative"`` / ``"ordinal"`` (cumulative link model, :func:`mixedppl.clmm`).
    link : str, optional
        Link of a GLMM or cumulative model (default: the family's first).
    weights, offset : str or array-like, optional
    na_action : {"omit", "exclude", "raise"}
        Rows with a missing value in a used column are dropped (``"omit"``, with a warning;
        ``"exclude"``, R's ``na.exclude``: ``fitted()`` / ``residuals()`` then have one value
        per row of ``data``, NaN on the dropped rows) or raise a ModelSpecError (``"raise"``).
    contrasts : dict, optional
        Column → contrast name or matrix (as R's ``contrasts=``; gaussian only).
    control : Control or dict, optional
        Its ``check_nobs_vs_nRE`` applies when the model is built; the whole control is the default
        of :meth:`fit`.
    **kwargs
        ``levels``, ``threshold`` for the cumulative family.

    Examples
    --------
    >>> import mixedppl as mp
    >>> m = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> m.spec.theta_names()
    ['Subject.(Intercept)', 'Subject.Days.(Intercept)', 'Subject.Days']
    >>> round(m.fit().loglik, 3)
    -871.814
    >>> g = mp.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"), family="binomial")
    >>> sorted(v.name for v in g.to_pymc().free_RVs)
    ['beta', 'sd_herd', 'z_herd']
    """

    def __init__(self, formula: str, data: pd.DataFrame, family: str = "gaussian", *,
                 link: str | None = None, weights=None, offset=None, na_action: str = "omit",
                 contrasts: dict | None = None, control: Control | dict | None = None,
                 **kwargs):
        check_arguments(formula, data, "Model")
        name = family if isinstance(family, str) else getattr(family, "name", family)
        self.formula, self.data, self.control = formula, data, control
        if str(name).lower() in ("cumulative", "ordinal", "clmm"):
            from .clmm_api import clmm_model
            (self.spec, self.family, self.link, self._y, self._n,
             self.levels) = clmm_model(formula, data, link or "logit",
                                       kwargs.pop("threshold", "flexible"),
                                       kwargs.pop("levels", None), weights=weights,
                                       offset=offset, na_action=na_action, control=control)
            self._kind = "clmm"
        elif get_family(family, link)[0] is GAUSSIAN:
            (self.family, self.link), self._kind = get_family(family, link), "lmm"
            self.spec: ModelSpec = build_spec(
                formula, data, weights=weights, offset=offset, na_action=na_action,
                contrasts=contrasts, nobs_vs_nRE=as_control(control, "lmer").nobs_vs_nRE("lmer"))
            return
        else:
            from .glmm_api import glmm_model
            self.spec, self.family, self.link, self._y, self._n = glmm_model(
                formula, data, family, link, weights, offset, control, na_action=na_action)
            self._kind = "glmm"
        self._kwargs = dict(link=link, weights=weights, offset=offset, na_action=na_action,
                            **kwargs)

    def objective(self, reml: bool = True):
        """The compiled objective: the profiled deviance d(θ) → (value, gradient) for an LMM
        (lme4's ``devFunOnly=TRUE``), the Laplace deviance over (θ, β, φ) otherwise."""
        if self._kind == "lmm":
            from .fit.lmm_objective import LMMObjective
            return LMMObjective(self.spec, reml=reml)
        from .fit.glmm_fit import LaplaceObjective
        return LaplaceObjective(self.spec, self.family, self.link, self._y, self._n)

    def fit(self, reml: bool = True, control=None, start=None, nAGQ: int = 1):
        """Fit: REML / ML for an LMM (:class:`LMMResult`), Laplace or AGQ otherwise.

        ``control`` (a :class:`Control`, or for glmer / clmm a dict) defaults to the Model's.
        """
        control = self.control if control is None else control
        if self._kind == "lmm":
            from .fit.lmm_fit import fit_lmm
            return LMMResult(fit_lmm(self.spec, reml=reml, control=as_control(control, "lmer"),
                                     start=start))
        kw = dict(self._kwargs)
        if self._kind == "clmm":
            from .clmm_api import clmm
            return clmm(self.formula, self.data, kw.pop("link") or "logit", nAGQ,
                        levels=self.levels, threshold=self.family.threshold, control=control,
                        **kw)
        from .glmm_api import glmer
        return glmer(self.formula, self.data, self.family, kw.pop("link"), nAGQ,
                     control=control, **kw)

    def to_pymc(self, priors: dict | None = None):
        """The joint density log p(y, b | parameters) as a ``pm.Model`` (see mixedppl.bayes)."""
        if self._kind == "lmm":
            from .bayes.pymc import lmm_to_pymc
            return lmm_to_pymc(self.spec, priors=priors)
        if self._kind == "clmm":
            from .bayes.glmm_pymc import clmm_to_pymc
            return clmm_to_pymc(self.spec, self.family, self.link, self._y, self._n,
                                self.levels, priors)[0]
        from .bayes.glmm_pymc import glmm_to_pymc
        return glmm_to_pymc(self.spec, self.family, self.link, self._y, self._n, priors)[0]


def lmer(formula: str, data: pd.DataFrame, reml: bool = True, *, weights=None, offset=None,
         na_action: str = "omit", contrasts: dict | None = None,
         control: Control | None = None, start=None):
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
    na_action : {"omit", "exclude", "raise"}
        ``"omit"``: drop incomplete rows (per-row results are indexed by the kept rows' labels);
        ``"exclude"`` (R's ``na.exclude``): drop them too, but ``fitted()`` / ``residuals()``
        have one value per row of ``data``, NaN on the dropped ones; ``"raise"``: an error.
    contrasts : dict, optional
    control : Control, optional
        Optimiser tolerances (lmer's defaults ftol 1e-14, gtol 1e-9, maxiter 3000) and checks;
        ``check_nobs_vs_nRE`` defaults to "raise", as lme4's lmerControl.
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
    check_arguments(formula, data, "lmer")
    model = Model(formula, data, weights=weights, offset=offset, na_action=na_action,
                  contrasts=contrasts, control=control)
    return model.fit(reml=reml, control=control, start=start)
