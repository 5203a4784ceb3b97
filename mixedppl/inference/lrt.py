r"""Likelihood-ratio test of one term of a fitted LMM, GLMM or CLMM, with the χ̄² boundary p-value.

The term is removed from the fitted model (its random term, or the columns of a fixed term) and the
reduced model is refitted by ML on the same rows, with the same family, link and approximation
(Laplace / nAGQ) as the full one. When no random term is left, the reduced model has no random
effects:

- LMM: the linear model fitted by least squares, whose ML log-likelihood is
  :math:`-\frac n2\left[\log(2\pi\hat\sigma^2) + 1\right] + \frac12\sum_i\log w_i`,
  :math:`\hat\sigma^2 = \mathrm{RSS}_w/n` (R's ``logLik.lm``);
- GLMM: the GLM :math:`\max_{\beta,\phi}\sum_i\log p(y_i\mid x_i^\top\beta, \phi)` with the
  mixed model's family log-density (R's ``logLik(glm(...))``; φ for the dispersion families, as
  ``glmmTMB`` without random effects);
- CLMM: the cumulative link model :math:`\max_{\alpha,\beta}\sum_i\log[F(\alpha_{y_i} -
  x_i^\top\beta) - F(\alpha_{y_i-1} - x_i^\top\beta)]` (``ordinal::clm``),

both by :func:`mixedppl.fit.glm.fit_glm`.

:math:`\mathrm{LR} = 2(\ell_1 - \ell_0)` is compared with :math:`\chi^2_{\mathrm{df}}`. When
the test removes one variance (a scalar random term) the null value lies on the boundary of the
parameter space and the null distribution is the mixture :math:`\frac12\chi^2_0 + \frac12\chi^2_1`
(Self & Liang 1987; Stram & Lee 1994):
``pvalue_boundary`` :math:`= \frac12 P(\chi^2_1 > \mathrm{LR})`.

References
----------
Self, S. G. & Liang, K.-Y. (1987). JASA 82, 605–610. Stram, D. O. & Lee, J. W. (1994).
Biometrics 50, 1171–1177.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy import special

from ..core.exceptions import ModelSpecError
from ..fit.cox import CoxmeFit
from ..fit.glm import fit_glm
from ..fit.laplace import fit_laplace
from ..fit.laplace_nagq0 import fit_nagq0
from ..fit.lmm_fit import fit_lmm
from ..fit.optimize import minimize_bounded
from ..graph.linear_predictor import fitted_eta
from ..spec.formula import parse_formula

__all__ = ["LRTResult", "lrt"]


@dataclass(frozen=True)
class LRTResult:
    """Result of :func:`lrt`.

    Attributes
    ----------
    statistic : float
        2 (logLik full − logLik reduced), ML.
    df : int
        Number of parameters removed.
    pvalue : float
        P(χ²_df > statistic).
    pvalue_boundary : float or None
        χ̄² mixture p-value ½·P(χ²₁ > statistic) when one variance is tested at 0; None when the
        test is not of a single variance on its boundary.
    loglik_full, loglik_reduced : float
    reduced : object
        The reduced fit's record: an :class:`~mixedppl.fit.records.LMMFit` (or a dict with
        ``formula`` and ``loglik`` for the linear model), a
        :class:`~mixedppl.fit.records.LaplaceFit` for a GLMM / CLMM, or a
        :class:`~mixedppl.fit.glm.GLMFit` when no random term is left in a GLMM / CLMM.
    """

    statistic: float
    df: int
    pvalue: float
    pvalue_boundary: float | None
    loglik_full: float
    loglik_reduced: float
    reduced: object = None


def _lm_loglik(spec) -> float:
    """ML log-likelihood of the weighted linear model y ~ X (+ offset), as R's ``logLik.lm``."""
    w = spec.weights
    sw = np.sqrt(w)
    beta = np.linalg.lstsq(spec.X * sw[:, None], (spec.y - spec.offset) * sw, rcond=None)[0]
    rss = float(np.sum(w * (spec.y - fitted_eta(spec, beta, (), include_random=False)) ** 2))
    n = spec.n
    return 0.5 * (np.sum(np.log(w)) - n * (np.log(2 * np.pi) + 1 - np.log(n) + np.log(rss)))


def _random_index(spec, drop: str) -> tuple[list[int], list]:
    """Positions in ``spec.terms`` of the random term(s) ``drop`` names, and their parsed terms.

    Terms keep their formula order within a grouping factor (lme4 sorts stably by levels).
    """
    wanted = parse_formula(f"y ~ 0 + {drop}").random
    seen: dict[str, int] = {}
    order = []
    for r in spec.parsed.random:
        order.append((r, seen.get(r.group, 0)))
        seen[r.group] = order[-1][1] + 1
    idx, parsed = [], []
    for w in wanted:
        hit = [(r, k) for r, k in order
               if r.group == w.group and r.lhs.replace(" ", "") == w.lhs.replace(" ", "")]
        if not hit:
            raise ModelSpecError(f"the model has no random term {drop!r}; its random terms are "
                                 + ", ".join(f"({r.lhs} | {r.group})" for r in spec.parsed.random))
        r, k = hit[0]
        idx.append([i for i, t in enumerate(spec.terms) if t.group == r.group][k])
        parsed.append(r)
    return idx, parsed


def _reduce_random(spec, drop: str):
    idx, gone = _random_index(spec, drop)
    keep = tuple(t for i, t in enumerate(spec.terms) if i not in idx)
    removed = sum(spec.terms[i].n_theta for i in idx)
    scalar = len(idx) == 1 and spec.terms[idx[0]].n_cols == 1
    random = tuple(r for r in spec.parsed.random if all(r is not g for g in gone))
    formula = spec.parsed.response + " ~ " + " + ".join(
        [spec.parsed.fixed] + [f"({r.lhs} | {r.group})" for r in random])
    return (replace(spec, terms=keep, parsed=replace(spec.parsed, random=random), formula=formula),
            removed, scalar)


def _reduce_fixed(spec, drop: str):
    fd = spec.fixed_design
    names = [n.replace(" ", "") for n in fd.term_names]
    if drop.replace(" ", "") not in names:
        raise ModelSpecError(f"the model has no fixed term {drop!r}; its fixed terms are "
                             f"{fd.term_names}")
    k = names.index(drop.replace(" ", "")) + 1
    cols = list(fd.column_names)
    assign = np.array([fd.assign[cols.index(n)] for n in spec.fe_names])
    keep = assign != k
    spec2 = replace(spec, X=np.ascontiguousarray(spec.X[:, keep]),
                    fe_names=[n for n, kp in zip(spec.fe_names, keep) if kp],
                    formula=f"{spec.formula} - {drop}")
    return spec2, int(np.sum(~keep)), False


def _refit_reduced(fit, spec) -> tuple[float, object]:
    """ML log-likelihood and fit of the reduced model ``spec``, of the same kind as ``fit`` (a
    fit record: :class:`~mixedppl.fit.records.LMMFit` or
    :class:`~mixedppl.fit.records.LaplaceFit`)."""
    if spec.family.fit_kind == "lmer":
        if spec.terms:
            reduced = fit_lmm(spec, reml=False)
            return float(reduced.loglik), reduced
        ll0 = float(_lm_loglik(spec))
        return ll0, {"formula": spec.formula, "loglik": ll0}
    if not spec.terms:
        reduced = fit_glm(spec, fit.family, fit.link, fit.counts, fit.trials)
        return reduced.loglik, reduced
    reduced = fit_nagq0(spec, {}) if fit.nAGQ == 0 else fit_laplace(spec, {}, int(fit.nAGQ))
    return float(reduced.loglik), reduced


def _coxme_lrt(record: CoxmeFit, drop: str) -> LRTResult:
    """A Cox frailty fit without the frailty term ``drop``: the integrated partial likelihood
    with that variance held at 0 (coxph's maximised ℓ when it is the only term)."""
    group = drop.strip().strip("()").split("|")[-1].strip()
    found = [k for k, t in enumerate(record.spec.terms) if t.group == group]
    if "|" not in drop or not found:
        raise ModelSpecError(f"drop={drop!r}: give one of the fit's random terms "
                             f"{[f'(1 | {t.group})' for t in record.spec.terms]}")
    term = record.spec.terms[found[0]]
    if term.n_cols > 1:
        return _coxme_slope_lrt(record, drop, found[0])
    k = sum(t.n_theta for t in record.spec.terms[:found[0]])    # its θ index
    if len(record.theta) == 1:
        ll0, reduced = record.loglik_coxph, {"beta": record.beta_coxph,
                                             "loglik": record.loglik_coxph}
    else:
        start = np.where(np.arange(len(record.theta)) == k, 0.0, record.theta)
        opt = minimize_bounded(record.objective, start, record.spec.theta_lower(),
                               fixed={k: 0.0}, mirror=record.spec.theta_mirror())
        ll0, reduced = -float(opt.fun), opt
    stat = float(max(2 * (record.loglik_integrated - ll0), 0.0))
    return LRTResult(statistic=stat, df=1, pvalue=float(special.chdtrc(1, stat)),
                     pvalue_boundary=0.5 * float(special.chdtrc(1, stat)),
                     loglik_full=record.loglik_integrated, loglik_reduced=float(ll0),
                     reduced=reduced)


def _coxme_slope_lrt(record: CoxmeFit, drop: str, k: int) -> LRTResult:
    r"""Drop slope columns from a Cox frailty term with several columns: ``drop="(0 + x | g)"``
    on ``(1 + x | g)`` tests it against ``(1 | g)``.

    The reduced model is the full objective with the θ entries of the dropped column (its row
    and column of T: its variance and covariances) held at 0, where its frailties leave η and
    add nothing to ℓ_I (a unit penalty block, log-determinant 0): the fit with the smaller
    term, the rest of T its lower-triangular factor. Removing one of m
    correlated columns puts the null on the boundary; the χ̄² law of Stram & Lee (1994) is the
    mixture :math:`\tfrac12\chi^2_{m-1} + \tfrac12\chi^2_m` (m − 1 = the columns kept, df = m
    the θ entries removed): ``pvalue_boundary`` :math:`= \tfrac12 P(\chi^2_{m-1} > LR) +
    \tfrac12 P(\chi^2_m > LR)` (the plain ``pvalue``, P(χ²_m > LR), is coxme's ``anova``).
    """
    term = record.spec.terms[k]
    label = f"({' + '.join(term.column_names)} | {term.group})"
    lhs = drop.strip().strip("()").split("|")[0]
    cols = [c.strip() for c in lhs.split("+") if c.strip() not in ("0", "-1", "")]
    unknown = [c for c in cols if c not in term.column_names or c == "(Intercept)"]
    if not cols or unknown:
        raise ModelSpecError(
            f"drop={drop!r}: {label} has several columns; name slope columns to drop as "
            f"'(0 + {' + '.join(term.column_names[1:]) or 'x'} | {term.group})' (the test of "
            f"{label} against the term without them); the whole term cannot be dropped here "
            "(its boundary law depends on the information matrix)")
    if len(cols) != 1:
        raise ModelSpecError(f"drop={drop!r}: drop one slope column at a time "
                             "(the χ̄² boundary law here is for one column)")
    j = term.column_names.index(cols[0])
    k0 = sum(t.n_theta for t in record.spec.terms[:k])
    fixed = {k0 + i: 0.0 for i, (row, col) in enumerate(term.theta_pairs()) if j in (row, col)}
    start = np.array(record.theta, float)
    start[list(fixed)] = 0.0
    opt = minimize_bounded(record.objective, start, record.spec.theta_lower(), fixed=fixed,
                           mirror=record.spec.theta_mirror())
    ll0 = -float(opt.fun)
    df = len(fixed)
    stat = float(max(2 * (record.loglik_integrated - ll0), 0.0))
    p = float(special.chdtrc(df, stat))
    return LRTResult(statistic=stat, df=df, pvalue=p,
                     pvalue_boundary=0.5 * float(special.chdtrc(df - 1, stat)) + 0.5 * p,
                     loglik_full=record.loglik_integrated, loglik_reduced=ll0, reduced=opt)


def lrt(fit, drop: str) -> LRTResult:
    """Likelihood-ratio test of removing one term (random ``"(1 | g)"`` or fixed ``"x"``).

    REML fits are refitted by ML first (a warning says so), as lme4's ``anova``. GLMM and CLMM
    fits are compared with the reduced model of the same family and approximation; with the
    only random term dropped, with the GLM / cumulative link model (see the module docstring).

    Parameters
    ----------
    fit : LMMResult, GLMMResult, CLMMResult or CoxmeResult, or the fit's record (LMMFit,
        LaplaceFit, CoxmeFit); for a Cox frailty fit the reduced model holds that variance at
        0 (coxph when it is the only term); ``drop="(0 + x | g)"`` on a ``(1 + x | g)`` frailty
        term tests it against ``(1 | g)`` (:func:`_coxme_slope_lrt`: df 2, χ̄² boundary p from
        ½χ²₁ + ½χ²₂)
    drop : str
        The term to remove: a random term as written in the formula, or a fixed term label.

    Returns
    -------
    LRTResult

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff"), reml=False)
    >>> t = mp.lrt(fit, drop="(1 | Batch)")
    >>> round(t.statistic, 4), t.df, round(t.pvalue_boundary, 5)
    (5.4028, 1, 0.01005)
    """
    fit = getattr(fit, "record", fit)
    if isinstance(fit, CoxmeFit):
        return _coxme_lrt(fit, drop)
    if getattr(fit, "reml", False):
        warnings.warn("refitting model(s) with ML (instead of REML)", UserWarning, stacklevel=2)
        fit = fit_lmm(fit.spec, reml=False)
    spec = fit.spec
    is_random = "|" in drop
    reduced_spec, df, scalar = (_reduce_random if is_random else _reduce_fixed)(spec, drop)
    ll0, reduced = _refit_reduced(fit, reduced_spec)
    stat = float(max(2 * (fit.loglik - ll0), 0.0))
    p = float(special.chdtrc(df, stat))
    pb = 0.5 * float(special.chdtrc(1, stat)) if (is_random and scalar) else None
    return LRTResult(statistic=stat, df=df, pvalue=p, pvalue_boundary=pb,
                     loglik_full=float(fit.loglik), loglik_reduced=float(ll0), reduced=reduced)
