"""``clmm``: cumulative link mixed models for ordinal responses, as R's ``ordinal::clmm``.

The likelihood is the cumulative link family of :mod:`mixedppl.families.cumulative`, which reads
the ordinal response (levels, at least 3 observed categories) and whose thresholds take the
intercept's place; the Laplace and adaptive Gauss–Hermite approximations and their exact
gradients are the GLMM machinery (:mod:`mixedppl.graph.laplace`, :mod:`mixedppl.fit.laplace`).
:func:`clmm` is ``Model(..., family="cumulative").fit(nAGQ=...)``.
"""

from __future__ import annotations

import pandas as pd

from .api import Model
from .core.control import Control
from .spec.frame import check_arguments

__all__ = ["clmm", "clmm_model"]


def _random_formula(formula: str, groups, random) -> str:
    """Add ``groups=`` / ``random=`` (interlace's API) to the formula as lme4 bar terms."""
    extra = []
    if groups is not None:
        extra += [f"(1 | {g})" for g in ([groups] if isinstance(groups, str) else groups)]
    if random is not None:
        for r in [random] if isinstance(random, str) else random:
            r = r.strip()
            extra.append(r if r.startswith("(") else f"({r})")
    return formula if not extra else formula + " + " + " + ".join(extra)


def clmm_model(formula: str, data: pd.DataFrame, link: str = "logit", threshold="flexible",
               levels=None, groups=None, random=None, weights=None, offset=None,
               na_action: str = "omit", control: Control | dict | None = None, *,
               contrasts: dict | None = None):
    """Parse and check a CLMM: ``(spec, family, link, codes, weights, levels)``.

    The spec of ``Model(formula, data, "cumulative", link, ...)`` and what the graphs take.
    Grouping factors may have as many levels as observations, not more (lme4's glmer rule);
    ``control.check_nobs_vs_nRE`` defaults to "ignore" (ordinal's clmm does not check).

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec, fam, link, y, w, levels = clmm_model("rating ~ temp + contact + (1 | judge)",
    ...                                            mp.datasets.load("wine"))
    >>> spec.fe_names, fam.K, levels
    (['tempwarm', 'contactyes'], 5, ['1', '2', '3', '4', '5'])
    """
    data = check_arguments(formula, data, "clmm")
    spec = Model(_random_formula(formula, groups, random), data, "cumulative", link,
                 weights=weights, offset=offset, na_action=na_action, contrasts=contrasts,
                 control=control, levels=levels, threshold=threshold).spec
    return (spec, spec.family, spec.link, *spec.counts(), spec.levels)


def clmm(formula: str, data: pd.DataFrame, link: str = "logit", nAGQ: int = 1, *,
         groups=None, random=None, levels=None, threshold: str = "flexible", weights=None,
         offset=None, na_action: str = "omit", control: Control | dict | None = None,
         contrasts: dict | None = None, start=None):
    r"""Fit a cumulative link mixed model by maximum likelihood (as ``ordinal::clmm``).

    .. math:: P(Y_i \le j \mid b) = F(\alpha_j - x_i^\top\beta - z_i^\top b),\qquad
              b \sim N(0, \Sigma_\theta),

    with the marginal likelihood approximated by Laplace (``nAGQ=1``) or adaptive Gauss–Hermite
    quadrature (``nAGQ > 1``, one scalar random-effect term), maximised jointly over
    (θ, β, thresholds) with exact gradients.

    Parameters
    ----------
    formula : str
        ``response ~ predictors`` with lme4 random terms, e.g. ``"rating ~ temp + (1 | judge)"``;
        an intercept is absorbed into the thresholds.
    data : DataFrame
        The response is an ordered Categorical (its order is used), integers (numeric order), or
        strings / an unordered Categorical with ``levels=`` giving the order.
    link : {"logit", "probit", "cloglog", "loglog", "cauchit"}
    nAGQ : int
        1: Laplace; > 1: adaptive Gauss–Hermite with that many nodes.
    groups : str or list of str, optional
        Grouping column(s) for random intercepts: ``groups="judge"`` adds ``(1 | judge)``.
    random : str or list of str, optional
        Random terms, e.g. ``["(1|judge)", "(1|bottle)"]``.
    levels : list, optional
        Order of the response categories.
    threshold : {"flexible", "equidistant"}
    weights, offset : str or array-like, optional
    na_action : {"omit", "exclude", "raise"}
        Rows with a missing value in a used column: dropped with a warning (``"omit"``); dropped
        with ``fitted()`` padded with NaN to every row of ``data`` (``"exclude"``, R's
        ``na.exclude``); or a ModelSpecError (``"raise"``).
    control : Control or dict, optional
        :class:`mixedppl.Control` (or a dict of its fields): ``ftol``, ``gtol``, ``maxiter``
        (L-BFGS-B; clmm's defaults 1e-15, 1e-6, 2000 where not given), ``start_theta``,
        ``check_nobs_vs_nRE`` (default "ignore").
    contrasts : dict, optional
        Column → contrast (as R's ``contrasts=``), e.g. ``{"temp": "contr.sum"}``.
    start : array-like or dict, optional
        Starting θ: a vector or ``{"theta": ...}`` (β and the thresholds start at the model
        without random effects).

    Returns
    -------
    CLMMResult

    Examples
    --------
    >>> import mixedppl as mp
    >>> wine = mp.datasets.load("wine")
    >>> r = mp.clmm("rating ~ temp + contact", data=wine, groups="judge")
    >>> r.fe_params.round(3).to_dict()
    {'tempwarm': 3.063, 'contactyes': 1.835}
    >>> round(r.loglik, 3)
    -81.565
    """
    data = check_arguments(formula, data, "clmm")
    model = Model(_random_formula(formula, groups, random), data, "cumulative", link,
                  weights=weights, offset=offset, na_action=na_action, contrasts=contrasts,
                  control=control, start=start, levels=levels, threshold=threshold)
    return model.fit(nAGQ=nAGQ)
