"""The front door: ``Model(formula, data, family)`` for every family, and ``lmer``.

As lme4's modular steps (``lFormula`` → ``mkLmerDevfun`` → ``optimizeLmer`` → ``mkMerMod``), each
step is reachable: ``Model(formula, data, family).spec`` (the parsed model, built once by
:func:`~mixedppl.spec.model_spec.build_spec` for every family), ``.objective()`` (the compiled
profiled or Laplace deviance), ``.fit()`` (the result, fitted from that spec without reading the
data again), ``.to_pymc()`` (the same model as a PyMC model). :func:`lmer`,
:func:`mixedppl.glmer` and :func:`mixedppl.clmm` are ``Model(...).fit(...)`` with one argument set
(``weights, offset, na_action, contrasts, control, start``).

Which fit a model takes is the family's :attr:`~mixedppl.families.base.Family.fit_kind`
(``"lmer"``: profiled REML / ML; ``"glmer"``: the GLMM Laplace / AGQ fit; ``"clmm"``: the same
with thresholds), the key of :data:`FIT_PATHS`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .bayes.glmm_pymc import clmm_to_pymc, glmm_to_pymc
from .bayes.pymc import lmm_to_pymc
from .core.control import Control, as_control, start_theta
from .core.dask import is_dask_collection
from .core.exceptions import ModelSpecError
from .families import Family
from .fit.checks import check_glmm_data, warn_diverging_coefficients
from .fit.laplace import LaplaceObjective, fit_laplace
from .fit.laplace_nagq0 import fit_nagq0
from .fit.laplace_zire import ZIReObjective, fit_laplace_zire
from .fit.lmm_fit import fit_lmm
from .fit.lmm_objective import LMMObjective
from .distributed.glmm import DaskLaplace, fit_glmm_dask
from .distributed.lmm import dask_objective, fit_lmm_dask
from .results.clmm import CLMMResult
from .results.dask import DaskGLMMResult, DaskLMMResult
from .results.glmm import GLMMResult
from .results.lmm import LMMResult
from .spec.frame import check_arguments
from .spec.dask_spec import build_dask_spec
from .spec.model_spec import ModelSpec, build_spec

__all__ = ["Model", "lmer", "FIT_PATHS"]


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
        or ``"cumulative"`` / ``"ordinal"`` (cumulative link model, :func:`mixedppl.clmm`); or a
        family object such as ``mp.families.Binomial(link="probit")``.
    link : str, optional
        Link of a GLMM or cumulative model (default: the family's first).
    weights, offset : str or array-like, optional
    na_action : {"omit", "exclude", "raise"}
        Rows with a missing value in a used column are dropped (``"omit"``, with a warning;
        ``"exclude"``, R's ``na.exclude``: ``fitted()`` / ``residuals()`` then have one value
        per row of ``data``, NaN on the dropped rows) or raise a ModelSpecError (``"raise"``).
    contrasts : dict, optional
        Column → contrast name or matrix (as R's ``contrasts=``), for every family.
    control : Control or dict, optional
        Its ``check_nobs_vs_nRE`` applies when the model is built; the whole control is the default
        of :meth:`fit`.
    start : array-like or dict, optional
        Starting θ (or ``{"theta": ...}``, lme4's ``start = list(theta = ...)``), the default of
        :meth:`fit`.
    levels, threshold
        Options of the cumulative family: the order of the response categories and
        ``"flexible"`` / ``"equidistant"`` thresholds.
    progress : bool
        Dask DataFrame data only: a progress bar over the partitions of each pass over the rows
        (``progress=False`` turns it off); ignored for in-memory data.

    Attributes
    ----------
    spec : ModelSpec
        The parsed model; ``spec.family`` and ``spec.link`` are the family (bound to the
        response) and link.

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
    >>> g.family.fit_kind, sorted(v.name for v in g.to_pymc().free_RVs)
    ('glmer', ['beta', 'sd_herd', 'z_herd'])
    """

    def __init__(self, formula: str, data: pd.DataFrame, family: str | Family = "gaussian",
                 link: str | None = None, *, weights=None, offset=None,
                 na_action: str = "omit", contrasts: dict | None = None,
                 control: Control | dict | None = None, start=None, levels=None,
                 threshold: str | None = None, ziformula: str | None = None,
                 dispformula: str | None = None, progress: bool = True):
        data = check_arguments(formula, data, "Model")
        self.formula, self.data, self.control, self.start = formula, data, control, start
        if is_dask_collection(data):
            if levels is not None or threshold is not None:
                raise ModelSpecError("levels= / threshold= (cumulative models) are not read on "
                                     "a Dask DataFrame")
            self.spec: ModelSpec = build_dask_spec(
                formula, data, family, link, weights=weights, offset=offset,
                na_action=na_action, contrasts=contrasts, control=control, progress=progress)
            return
        self.spec = build_spec(
            formula, data, family, link, weights=weights, offset=offset, na_action=na_action,
            contrasts=contrasts, control=control, levels=levels, threshold=threshold,
            ziformula=ziformula, dispformula=dispformula)

    @property
    def family(self) -> Family:
        """The family, bound to the response (``spec.family``)."""
        return self.spec.family

    @property
    def link(self):
        """The link (``spec.link``)."""
        return self.spec.link

    @property
    def levels(self) -> list[str] | None:
        """The ordered response categories of a cumulative model (None otherwise)."""
        return self.spec.levels

    @property
    def _path(self) -> "FitPath":
        return FIT_PATHS[self.spec.family.fit_kind]

    def objective(self, reml: bool = True, nAGQ: int = 1):
        """The compiled objective: the profiled deviance d(θ) → (value, gradient) for an LMM
        (lme4's ``devFunOnly=TRUE``), the Laplace (or AGQ) deviance over (θ, β, φ) otherwise."""
        return self._path.objective(self.spec, reml, nAGQ)

    def fit(self, reml: bool | None = None, control: Control | dict | None = None, start=None,
            nAGQ: int = 1):
        """Fit from the spec: REML / ML for an LMM (:class:`LMMResult`), Laplace or AGQ
        otherwise (:class:`GLMMResult`, :class:`CLMMResult`).

        Parameters
        ----------
        reml : bool, optional
            LMM only: REML (default) or ML.
        control : Control or dict, optional
            Default: the Model's.
        start : array-like or dict, optional
            Starting θ (``{"theta": ...}`` as lme4); default: the Model's.
        nAGQ : int
            GLMM / CLMM only: 1 Laplace, > 1 adaptive Gauss–Hermite, 0 (glmer) lme4's fast fit.
        """
        control = self.control if control is None else control
        start = self.start if start is None else start
        return self._path.fit(self.spec, reml, nAGQ, control, start)

    def to_pymc(self, priors: dict | None = None):
        """The joint density log p(y, b | parameters) as a ``pm.Model`` (see mixedppl.bayes)."""
        return self._path.to_pymc(self.spec, priors)


# -- the fit paths ---------------------------------------------------------------------------

def _theta(spec: ModelSpec, start) -> np.ndarray | None:
    theta = start_theta(start)
    if theta is not None and len(theta) != spec.n_theta:
        raise ModelSpecError(f"start: θ has {len(theta)} value(s); this model has "
                             f"{spec.n_theta} ({', '.join(spec.theta_names())})")
    return theta


def _fit_lmm(spec: ModelSpec, reml: bool | None, nAGQ: int, control, start):
    if nAGQ != 1:
        raise ModelSpecError(f"nAGQ={nAGQ!r} applies to GLMMs and CLMMs; a linear mixed model's "
                             "likelihood is exact")
    reml = True if reml is None else reml
    if spec.source is not None:
        return DaskLMMResult(fit_lmm_dask(spec, reml=reml, control=as_control(control, "lmer"),
                                          start=_theta(spec, start)))
    return LMMResult(fit_lmm(spec, reml=reml, control=as_control(control, "lmer"),
                             start=_theta(spec, start)))


def _laplace_options(spec: ModelSpec, reml, control, start, fit: str) -> dict:
    if reml is not None:
        raise ModelSpecError(f"reml= applies to linear mixed models; {fit} maximises the "
                             "(Laplace-approximated) likelihood")
    options = as_control(control, fit).options(fit)
    theta = _theta(spec, start)
    if theta is not None:
        options["start_theta"] = theta
    return options


def _fit_glmer(spec: ModelSpec, reml, nAGQ: int, control, start) -> GLMMResult:
    options = _laplace_options(spec, reml, control, start, "glmer")
    if int(nAGQ) != nAGQ or nAGQ < 0:
        raise ModelSpecError(f"nAGQ must be a non-negative integer, got {nAGQ!r}")
    if nAGQ != 1 and spec.aux_designs:
        raise ModelSpecError(f"nAGQ={nAGQ}: zero-inflated / hurdle / dispersion-formula models "
                             "are fitted by the Laplace approximation only (nAGQ=1), as glmmTMB")
    if nAGQ > 1 and len(spec.terms) != 1:
        raise NotImplementedError(
            f"nAGQ > 1 needs a single random-effect term on one grouping factor, e.g. (1 | g) or "
            f"(1 + x | g); this model has {len(spec.terms)} terms "
            f"({', '.join(t.group for t in spec.terms)}): use nAGQ=1 (Laplace)")
    if nAGQ > 1 and spec.terms[0].n_cols > 1:
        ell = spec.terms[0].n_cols
        if nAGQ ** ell > 1000:
            warnings.warn(
                f"nAGQ={nAGQ} with the {ell}-dimensional random effect of '{spec.terms[0].group}' "
                f"is a product rule of {nAGQ}^{ell} = {nAGQ ** ell} nodes per group (memory and "
                "time grow with nobs × nodes); a smaller nAGQ is usually as accurate — compare "
                "logLik across nAGQ", UserWarning, stacklevel=4)
    if spec.source is not None:
        if nAGQ != 1:
            raise NotImplementedError(f"nAGQ={nAGQ}: glmer on a Dask DataFrame fits the Laplace "
                                      "deviance (nAGQ=1)")
        return DaskGLMMResult(fit_glmm_dask(spec, options))
    y, n_trials = spec.counts()
    separated = check_glmm_data(spec, spec.family, y, n_trials)
    if spec.zi_terms:   # random terms in the ziformula: their own joint graph
        record = fit_laplace_zire(spec, options, int(nAGQ))
    else:
        record = (fit_nagq0(spec, options) if nAGQ == 0 else
                  fit_laplace(spec, options, int(nAGQ)))
    if spec.family.check_separation:
        var = np.diag(record.vcov_beta)
        se = np.sqrt(np.where(var > 0, var, np.nan))
        separated += warn_diverging_coefficients(spec.fe_names, record.beta, se,
                                                 already=separated)
    return GLMMResult(replace(record, separation=tuple(dict.fromkeys(separated))))


def _fit_clmm(spec: ModelSpec, reml, nAGQ: int, control, start) -> CLMMResult:
    options = _laplace_options(spec, reml, control, start, "clmm")
    if int(nAGQ) != nAGQ or nAGQ < 1:
        raise ModelSpecError(f"nAGQ must be a positive integer, got {nAGQ!r}")
    if nAGQ > 1 and (len(spec.terms) != 1 or spec.terms[0].n_cols != 1):
        raise NotImplementedError("nAGQ > 1 needs a single scalar random-effect term, e.g. "
                                  "(1 | judge), as in ordinal::clmm")
    return CLMMResult(fit_laplace(spec, options, int(nAGQ)))


def _lmm_objective(spec: ModelSpec, reml: bool, nAGQ: int):
    if spec.source is not None:
        return dask_objective(spec, reml=reml)
    return LMMObjective(spec, reml=reml)


def _laplace_objective(spec: ModelSpec, reml: bool, nAGQ: int):
    if spec.source is not None:
        return DaskLaplace(spec)
    if spec.zi_terms:   # random terms in the ziformula: the joint (b_cond, b_zi) graph
        if nAGQ != 1:
            raise ModelSpecError(f"nAGQ={nAGQ}: models with random terms in the ziformula are "
                                 "fitted by the Laplace approximation (nAGQ=1), as glmmTMB")
        return ZIReObjective(spec, *spec.counts())
    return LaplaceObjective(spec, spec.family, spec.link, *spec.counts(), nAGQ=int(nAGQ))


def _lmm_to_pymc(spec: ModelSpec, priors: dict | None):
    return lmm_to_pymc(spec, priors=priors)


def _glmm_to_pymc(spec: ModelSpec, priors: dict | None):
    return glmm_to_pymc(spec, spec.family, spec.link, *spec.counts(), priors)[0]


def _clmm_to_pymc(spec: ModelSpec, priors: dict | None):
    return clmm_to_pymc(spec, spec.family, spec.link, *spec.counts(), spec.levels, priors)[0]


@dataclass(frozen=True)
class FitPath:
    """What a family's ``fit_kind`` leads to: ``fit(spec, reml, nAGQ, control, start)``,
    ``objective(spec, reml, nAGQ)`` and ``to_pymc(spec, priors)``."""

    fit: Callable
    objective: Callable
    to_pymc: Callable


#: ``Family.fit_kind`` → its fit path.
FIT_PATHS: dict[str, FitPath] = {
    "lmer": FitPath(_fit_lmm, _lmm_objective, _lmm_to_pymc),
    "glmer": FitPath(_fit_glmer, _laplace_objective, _glmm_to_pymc),
    "clmm": FitPath(_fit_clmm, _laplace_objective, _clmm_to_pymc),
}


def lmer(formula: str, data: pd.DataFrame, reml: bool = True, *, weights=None, offset=None,
         na_action: str = "omit", contrasts: dict | None = None,
         control: Control | dict | None = None, start=None, progress: bool = True):
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
        Column → contrast (``"contr.sum"``, ``"contr.helmert"``, ``"contr.poly"``, a matrix).
    control : Control or dict, optional
        Optimiser tolerances (lmer's defaults ftol 1e-14, gtol 1e-9, maxiter 3000) and checks;
        ``check_nobs_vs_nRE`` defaults to "raise", as lme4's lmerControl.
    start : array-like or dict, optional
        Starting θ (or ``{"theta": ...}``, lme4's ``start = list(theta = ...)``).

    progress : bool
        Dask DataFrame data only: a progress bar over the partitions of each pass over the rows
        (``progress=False`` turns it off); ignored for in-memory data.

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
    data = check_arguments(formula, data, "lmer")
    model = Model(formula, data, "gaussian", weights=weights, offset=offset,
                  na_action=na_action, contrasts=contrasts, control=control, start=start,
                  progress=progress)
    return model.fit(reml=reml)
