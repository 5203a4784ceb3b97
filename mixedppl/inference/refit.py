"""Refit a GLMM / CLMM to a new response (lme4's ``refit``) or a changed formula (R's
``update``): functions of the fit's :class:`~mixedppl.fit.records.LaplaceFit`.

``refit_laplace`` fits the same :class:`~mixedppl.spec.model_spec.ModelSpec` with the response
replaced (nothing rebuilt; the compiled Laplace deviance is cached by the model's structure, so
nothing is compiled again), θ started at the fit's θ̂ as lme4's ``refit`` does.
``update_laplace`` rebuilds the spec from :func:`~mixedppl.spec.formula.update_formula` (the
data, weights, offset, contrasts and na_action of the fit unless given) and fits it as the
front door does (``glmer``'s data checks included). Both fit the way the record was fitted: its
nAGQ (Laplace, adaptive Gauss–Hermite), or lme4's nAGQ = 0
(:func:`~mixedppl.fit.laplace_nagq0.fit_nagq0`). A model with random terms in the ziformula
(the record's, or the updated one's: ``update(ziformula="~ x + (1 | g)")`` adds them,
``ziformula="~ x"`` removes them) is fitted by
:func:`~mixedppl.fit.laplace_zire.fit_laplace_zire`, as ``glmer`` fits it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.control import Control, as_control
from ..core.exceptions import ModelSpecError
from ..fit.checks import check_glmm_data
from ..fit.laplace import fit_laplace
from ..fit.laplace_nagq0 import fit_nagq0
from ..fit.laplace_zire import fit_laplace_zire
from ..fit.records import LaplaceFit
from ..spec.formula import update_formula
from ..spec.frame import as_pandas
from ..spec.model_spec import build_spec

__all__ = ["refit_laplace", "update_laplace"]


def _options(record: LaplaceFit, control, start_theta=None) -> dict:
    kind = record.family.fit_kind
    options = as_control(control, kind).options(kind)
    if start_theta is not None and "start_theta" not in options:
        options["start_theta"] = np.asarray(start_theta, float)
    return options


def _fit(spec, options: dict, record: LaplaceFit) -> LaplaceFit:
    """Fit ``spec`` as ``record`` was fitted: Laplace / AGQ with its nAGQ, or lme4's nAGQ = 0;
    a spec with random terms in the ziformula as ``glmer`` fits it (Laplace)."""
    if spec.zi_terms:
        return fit_laplace_zire(spec, options, int(record.nAGQ))
    if int(record.nAGQ) == 0:
        return fit_nagq0(spec, options)
    return fit_laplace(spec, options, int(record.nAGQ))


def refit_laplace(record: LaplaceFit, newresp, control: Control | dict | None = None
                  ) -> LaplaceFit:
    """The model of ``record`` fitted to a new response on the scale of ``spec.y``.

    Parameters
    ----------
    record : LaplaceFit
    newresp : array-like (n,)
        One value per fitted row: proportions for a binomial (trials as in the fit), counts,
        positive values, or category codes 0 … K − 1 for a CLMM (what ``simulate`` returns).
    control : Control or dict, optional

    Returns
    -------
    LaplaceFit

    Examples
    --------
    >>> import numpy as np, mixedppl as mp
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"))
    >>> again = refit_laplace(g.record, g.spec.y)
    >>> bool(np.allclose(again.beta, g.beta, atol=1e-4))
    True
    """
    spec = record.spec.with_response(newresp)
    y, n_trials = spec.counts()
    spec.family.check(y, n_trials, spec.response_name)
    start = np.concatenate([record.theta, record.zi_theta])    # θ_c, then θ_z
    return _fit(spec, _options(record, control, start), record)


def update_laplace(record: LaplaceFit, formula: str, data: pd.DataFrame | None = None,
                   control: Control | dict | None = None, **build_kwargs) -> LaplaceFit:
    """The fit of a formula derived from the record's (``"~ . - period"``, ``". ~ . + x"``).

    Parameters
    ----------
    record : LaplaceFit
    formula : str
        As R's ``update.formula`` (:func:`~mixedppl.spec.formula.update_formula`).
    data : DataFrame, optional
        Default: the fit's data, with its weights, offset, contrasts and na_action.
    control : Control or dict, optional
    **build_kwargs
        ``weights``, ``offset``, ``na_action``, ``contrasts`` (see
        :func:`~mixedppl.spec.model_spec.build_spec`).

    Examples
    --------
    >>> import mixedppl as mp
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"))
    >>> update_laplace(g.record, "~ . - period").spec.fe_names
    ['(Intercept)']
    """
    spec = record.spec
    if data is None:
        data = spec.data
        build_kwargs = {**spec.build_kwargs, **build_kwargs}
    else:   # glmmTMB's update() keeps the zi / dispersion formulas with new data too
        build_kwargs = {**{k: v for k, v in spec.build_kwargs.items()
                           if k in ("ziformula", "dispformula")}, **build_kwargs}
    data = as_pandas(data, "data", "update")
    kind = record.family.fit_kind
    control = as_control(control, kind)
    new = build_spec(update_formula(spec, formula), data, record.family, record.link.name,
                     control=control, **build_kwargs)
    y, n_trials = new.counts()
    if kind == "glmer":
        check_glmm_data(new, new.family, y, n_trials)
    return _fit(new, control.options(kind), record)
