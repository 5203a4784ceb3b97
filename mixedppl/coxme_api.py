"""``coxme``: Cox proportional-hazards models with Gaussian frailties, as R's ``coxme``.

The pipeline is the house's: :func:`~mixedppl.spec.model_spec.build_spec` with the Cox family
(:mod:`mixedppl.families.cox` reads ``Surv(time, status)``; no intercept), the partial likelihood
and its Laplace-integrated form as PyTensor graphs (:mod:`mixedppl.graph.cox`), the fit
(:func:`mixedppl.fit.cox.fit_coxme`: inner Newton, the shared bounded optimiser outside), and
:class:`~mixedppl.results.cox.CoxmeResult`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .core.control import Control
from .core.threads import blas_threads_for
from .families.cox import CoxFamily
from .fit.cox import fit_coxme
from .results.cox import CoxmeResult
from .spec.frame import check_arguments
from .spec.model_spec import build_spec

__all__ = ["coxme"]


def with_group_terms(formula: str, groups) -> str:
    """The formula with ``(1 | g)`` added for each ``groups=`` column (interlace's API)."""
    if groups is None:
        return formula
    extra = [f"(1 | {g})" for g in ([groups] if isinstance(groups, str) else groups)]
    return formula + " + " + " + ".join(extra)


def coxme(formula: str, data: pd.DataFrame, ties: str = "efron", *, groups=None,
          weights=None, offset=None, na_action: str = "omit", contrasts: dict | None = None,
          sparse: tuple[float, float] | None = (50, 0.02), variance=None,
          start=None) -> CoxmeResult:
    """Fit a Cox model with Gaussian random effects (frailties) on the log hazard, as coxme.

    Parameters
    ----------
    formula : str
        ``"Surv(time, status) ~ x + (1 | g)"``; status coded 0/1, 1/2 (2 = event) or logical,
        as survival's ``Surv``. Random terms are scalar: ``(1 | g)``, nested ``(1 | a/b)``,
        several terms.
    data : DataFrame
    ties : {"efron", "breslow"}
        Handling of tied event times (coxme's default: Efron).
    groups : str or list of str, optional
        Grouping column(s) for frailties: ``groups="id"`` adds ``(1 | id)``.
    weights, offset : str or array-like, optional
        Case weights and an offset of the log hazard (column names or one value per row).
    na_action : {"omit", "exclude", "raise"}
        Rows with a missing value in a used column are dropped with a DataWarning (R's
        ``na.omit``) or raise.
    contrasts : dict, optional
    sparse : (int, float) or None
        coxme's ``sparse`` rule: with at least ``sparse[0]`` levels, the information between
        levels holding ≤ ``sparse[1]`` of the rows is dropped (its Laplace approximation);
        None for the exact Laplace approximation.
    variance : float or array-like, optional
        Hold the frailty variance(s) at this value (coxme's ``vfixed``).
    start : array-like, optional
        Starting standard deviation(s) of the frailties.

    Returns
    -------
    CoxmeResult

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))
    >>> fit.fe_params.round(4).tolist(), fit.nevents, fit.nobs
    ([0.0043, -1.3556], 58, 76)
    """
    data = check_arguments(formula, data, "coxme")
    # one BLAS thread: the spec's vector products (drop_rank_deficient's norms of 20,000-row
    # columns) cost 5× more CPU with OpenBLAS's threads contending on a loaded machine
    with blas_threads_for(0.0):
        spec = build_spec(with_group_terms(formula, groups), data, CoxFamily(ties),
                          weights=weights, offset=offset, na_action=na_action,
                          contrasts=contrasts, control=Control(check_nobs_vs_nRE="ignore"))
    record = fit_coxme(spec, sparse=sparse,
                       variance=None if variance is None else np.asarray(variance, float),
                       start=start)
    return CoxmeResult(record)
