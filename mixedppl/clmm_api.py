"""``clmm``: cumulative link mixed models for ordinal responses, as R's ``ordinal::clmm``.

The likelihood is the cumulative link family of :mod:`mixedppl.families.cumulative`; the Laplace and
adaptive Gauss–Hermite approximations and their exact gradients are the GLMM machinery
(:mod:`mixedppl.graph.laplace`, :mod:`mixedppl.fit.glmm_fit`).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np
import pandas as pd

from .core.control import Control, as_control
from .core.exceptions import ModelSpecError, RankDeficiencyWarning
from .families import CUMULATIVE_LINKS, LINKS, CumulativeFamily, ResponseReader, read_ordinal
from .spec.formula import parse_formula
from .spec.frame import check_arguments
from .spec.model_spec import build_spec, drop_rank_deficient

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


def _drop_intercept(spec):
    """X without the intercept (absorbed into the thresholds) and columns aliased with it."""
    names = [n for n in spec.fe_names if n != "(Intercept)"]
    X = spec.X[:, [spec.fe_names.index(n) for n in names]]
    Xa, kept, aliased = drop_rank_deficient(np.hstack([np.ones((spec.n, 1)), X]),
                                            ["(Intercept)"] + names)
    if aliased:
        warnings.warn(f"column(s) {aliased} are aliased with the thresholds and were dropped",
                      RankDeficiencyWarning, stacklevel=4)
    return dataclasses.replace(spec, X=np.ascontiguousarray(Xa[:, 1:]), fe_names=kept[1:],
                               dropped_columns=list(spec.dropped_columns) + ["(Intercept)"]
                               + list(aliased))


def clmm_model(formula: str, data: pd.DataFrame, link: str = "logit", threshold="flexible",
               levels=None, groups=None, random=None, weights=None, offset=None,
               na_action: str = "omit", control: Control | dict | None = None):
    """Parse and check a CLMM: ``(spec, family, link, codes, weights, levels)``.

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
    check_arguments(formula, data, "clmm")
    control = as_control(control, "clmm")
    name = str(link).lower()
    if name not in CUMULATIVE_LINKS:
        raise ModelSpecError(f"link={link!r} is not available for clmm; choose from "
                             f"{list(CUMULATIVE_LINKS)}")
    reader = ResponseReader(functools.partial(read_ordinal, requested=levels))
    full = _random_formula(formula, groups, random)
    if not parse_formula(full).random:
        raise ModelSpecError(f"formula {formula!r} has no random term such as '(1 | judge)'; "
                             "add one (or groups='judge'); for a model without random effects "
                             "use statsmodels' OrderedModel")
    spec = build_spec(full, data, weights=weights, offset=offset, response=reader,
                      na_action=na_action, allow_n=True,
                      nobs_vs_nRE=control.nobs_vs_nRE("clmm"))
    spec = _drop_intercept(spec)
    levels = reader.last.levels
    fam = CumulativeFamily(len(levels), threshold, levels)
    return spec, fam, LINKS[name], spec.y.copy(), np.asarray(spec.weights, float), levels


def clmm(formula: str, data: pd.DataFrame, link: str = "logit", nAGQ: int = 1, *,
         groups=None, random=None, levels=None, threshold: str = "flexible", weights=None,
         offset=None, na_action: str = "omit", control: Control | dict | None = None):
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
    from .fit.glmm_fit import fit_glmm
    from .results.clmm import CLMMResult
    check_arguments(formula, data, "clmm")
    control = as_control(control, "clmm")
    spec, fam, lnk, y, w, levs = clmm_model(formula, data, link, threshold, levels, groups,
                                            random, weights, offset, na_action, control)
    if int(nAGQ) != nAGQ or nAGQ < 1:
        raise ModelSpecError(f"nAGQ must be a positive integer, got {nAGQ!r}")
    if nAGQ > 1 and (len(spec.terms) != 1 or spec.terms[0].n_cols != 1):
        raise NotImplementedError("nAGQ > 1 needs a single scalar random-effect term, e.g. "
                                  "(1 | judge), as in ordinal::clmm")
    pieces = fit_glmm(spec, fam, lnk, y, w, control.options("clmm"), int(nAGQ))
    p, k = spec.p, fam.n_phi
    J = np.zeros((fam.K - 1 + p, p + k))
    J[:fam.K - 1, p:] = fam.thresholds_jacobian(pieces["phi"])
    J[fam.K - 1:, :p] = np.eye(p)
    vcov_all = J @ pieces["vcov_beta_phi"] @ J.T
    return CLMMResult(spec=spec, family=fam, link=lnk, theta=pieces["theta"],
                      beta=pieces["beta"], phi=pieces["phi"], vcov_all=vcov_all, b=pieces["b"],
                      condvar=pieces["condvar"], deviance_laplace=pieces["deviance_laplace"],
                      counts=y, weights=w, levels=levs, opt=pieces["opt"],
                      hessian=pieces["hessian"], nAGQ=int(nAGQ),
                      converged=pieces["converged"], is_singular=pieces["is_singular"],
                      timing=pieces["timing"])
