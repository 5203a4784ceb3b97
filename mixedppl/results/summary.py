"""Text summaries in the layout of lme4's / lmerTest's ``summary()`` print-out."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ..fit.laplace import fitted_zero_prob, limit_notes
from ..fit.records import group_labels
from .rprint import (abbreviate, cat_fill, format_real, print_coefmat, print_matrix, print_named,
                     strwrap, zapsmall)
from .tables import html_table

__all__ = ["Summary", "lmm_summary", "random_effects_table", "coef_block", "signif_stars",
           "fit_notes", "title_block", "residuals_block", "ic_block", "groups_line",
           "correlation_block"]


class Summary(str):
    r"""Text of a summary that prints without quotes in notebooks.

    ``Summary(text, tables={"Fixed effects": coef_table, ...})``: in a notebook
    (``_repr_html_``) the header lines (those before the first table's title) are shown as text
    and each table as an HTML ``<table>``, with the whole text below in a ``<details>`` block.

    Examples
    --------
    >>> s = Summary("Model\n\nFixed effects:\n...", tables={"Fixed effects": pd.DataFrame(
    ...     {"Estimate": [1.0]}, index=["x"])})
    >>> s.splitlines()[0], "<caption>Fixed effects</caption>" in s._repr_html_()
    ('Model', True)
    """

    tables: dict[str, pd.DataFrame]

    def __new__(cls, text: str, tables: dict[str, pd.DataFrame] | None = None):
        self = super().__new__(cls, text)
        self.tables = dict(tables or {})
        return self

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        lines = str(self).splitlines()
        titles = [f"{t}:" for t in self.tables]
        first = next((k for k, line in enumerate(lines) if line.strip() in titles), len(lines))
        header = html.escape("\n".join(lines[:first]).rstrip())
        tables = "".join(html_table(t, caption=name) for name, t in self.tables.items())
        return (f'<div class="mixedppl-summary"><pre>{header}</pre>{tables}'
                f"<details><summary>Text</summary><pre>{html.escape(str(self))}</pre>"
                "</details></div>")


def signif_stars(p: float) -> str:
    """R's significance stars (``symnum`` with cut points 0.001, 0.01, 0.05, 0.1)."""
    return ("***" if p <= 0.001 else "**" if p <= 0.01 else "*" if p <= 0.05 else
            "." if p <= 0.1 else "")


def title_block(title: str, object_class: str) -> str:
    """lme4's ``.prt.methTit``: ``title ['class']``, or wrapped at 80 columns as R wraps it."""
    if len(title) + 5 + len(object_class) > 80:
        return cat_fill(strwrap(title, 78, exdent=2) + [" [", object_class, "]"])
    return f"{title} ['{object_class}']"


def _structure_corr(t, S: np.ndarray, sd: np.ndarray) -> str:
    """A structured term's Corr entry, as glmmTMB prints it: its correlation parameters and the
    structure's name (``0.70 (ar1)``; toep: the correlations at lags 1, 2, …)."""
    R = S / np.outer(sd, sd) if np.all(sd > 0) else np.full_like(S, np.nan)
    ell = len(sd)
    cors = {"diag": [], "cs": [R[1, 0]], "ar1": [R[1, 0]],
            "toep": [R[k, 0] for k in range(1, ell)]}[t.structure]
    return " ".join([f"{c:.2f}" for c in cors] + [f"({t.structure})"])


def random_effects_table(fit, residual: bool = True, digits: int = 4) -> str:
    """The Groups / Name / Variance / Std.Dev. / Corr block, as lme4's ``formatVC`` printed.

    Variances and standard deviations are each formatted together (R's ``format(x, digits)``),
    correlations per term to ``max(2, digits − 2)`` decimals.
    """
    terms = list(fit.spec.terms)
    sds = [np.sqrt(np.clip(np.diag(S), 0, None)) for S in fit.covs]
    names = [list(t.column_names) for t in terms]
    groups = [[label] + [""] * (len(n) - 1) for label, n in zip(group_labels(terms), names)]
    all_sd = list(np.concatenate(sds)) if sds else []
    if residual:
        all_sd.append(float(fit.sigma))
        groups.append(["Residual"])
        names.append([""])
    flat_groups = [g for gs in groups for g in gs]
    flat_names = [n for ns in names for n in ns]
    sd = np.asarray(all_sd, float)
    columns = [flat_groups, flat_names, format_real(sd ** 2, digits), format_real(sd, digits)]
    colnames = ["Groups", "Name", "Variance", "Std.Dev."]
    widest = max((len(n) for n in names[:len(terms)]), default=0)
    if widest > 1:  # (a structured term of any width shows its parameters in the Corr column)
        dig = max(2, digits - 2)
        corr_rows = []
        for t, S, sd_t in zip(terms, fit.covs, sds):
            k = len(sd_t)
            if getattr(t, "structured", False):  # glmmTMB: the parameters and the name
                corr_rows.append([_structure_corr(t, S, sd_t)] + [""] * (widest - 1))
                corr_rows += [[""] * widest] * (k - 1)
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                R = S / np.outer(sd_t, sd_t)
            cells = np.array(format_real(np.round(R, dig), 7, nsmall=dig)).reshape(k, k)
            for i in range(k):
                corr_rows.append([cells[i, j] if j < i else "" for j in range(widest)])
        corr_rows += [[""] * widest] * (len(flat_names) - len(corr_rows))
        for j in range(max(widest - 1, 1)):
            columns.append([row[j] for row in corr_rows])
            colnames.append("Corr" if j == 0 else "")
    rows = [list(r) for r in zip(*columns)]
    return print_matrix(rows, [""] * len(rows), colnames, right=False)


def coef_block(table: pd.DataFrame, p_col: str | None = None, digits: int = 4,
               signif_stars: bool = True) -> str:
    """A coefficient table as R's ``printCoefmat(x, digits = 4)``, with stars and legend when
    ``p_col`` (the p-value column, last) is given."""
    has_p = p_col is not None and p_col in table.columns
    return print_coefmat(table, digits=digits, has_pvalue=has_p, signif_stars=signif_stars)


def residuals_block(values, digits: int = 4) -> str:
    """lme4's ``.prt.resids``: the quartiles, ``zapsmall``-ed to ``digits + 1`` and printed
    with ``digits``."""
    q = np.quantile(np.asarray(values, float), [0, 0.25, 0.5, 0.75, 1])
    return ("Scaled residuals: \n" +
            print_named(format_real(zapsmall(q, digits + 1), digits),
                        ["Min", "1Q", "Median", "3Q", "Max"]))


def ic_block(aic: float, bic: float, loglik: float, deviance: float, df_resid: int) -> str:
    """lme4's ``.prt.aictab``: AIC, BIC, logLik, deviance, df.resid rounded to 1 decimal."""
    values = np.round([aic, bic, loglik, deviance, df_resid], 1)
    shown = format_real(values)
    shown[-1] = format_real([values[-1]])[0]
    return print_named(shown, ["AIC", "BIC", "logLik", "deviance", "df.resid"])


def groups_line(ngroups: dict, nobs: int) -> str:
    """lme4's ``.prt.grps``: ``Number of obs: 180, groups:  Subject, 18``."""
    groups = "; ".join(f"{g}, {n}" for g, n in ngroups.items())
    return f"Number of obs: {nobs}, groups:  {groups}"


def correlation_block(fe_cov: pd.DataFrame, max_p: int = 12) -> list[str]:
    """lme4's "Correlation of Fixed Effects" (shown for 1 < p ≤ 12, as
    ``lme4.summary.cor.max``): 3 decimals, rows abbreviated to 11 characters, columns to 6."""
    names = [str(n) for n in fe_cov.index]
    p = len(names)
    if p <= 1:
        return []
    if p > max_p:
        return ["", f"Correlation matrix not shown by default, as p = {p} > {max_p}; see "
                "fit.fe_cov"]
    V = fe_cov.to_numpy(float)
    sd = np.sqrt(np.diag(V))
    with np.errstate(invalid="ignore", divide="ignore"):
        R = V / np.outer(sd, sd)
    cells = np.array(format_real(np.round(R, 3), 7, nsmall=3)).reshape(p, p)
    rows = [[cells[i, j] if j < i else "" for j in range(p - 1)] for i in range(1, p)]
    text = print_matrix(rows, abbreviate(names, 11)[1:], abbreviate(names, 6)[:-1])
    return ["", "Correlation of Fixed Effects:", text]


def fit_notes(fit) -> list[str]:
    """The warnings of the fit, as lines at the end of a summary (lme4's ``print.merMod``).

    - ``fit.converged`` False: "Model failed to converge with max|grad| = …", the largest
      projected gradient of the objective at the optimiser's last point (lme4's
      ``checkConv`` message, which compares it with ``tol = 0.002``), and the optimiser's message;
    - ``fit.is_singular``: "boundary (singular) fit: see help('isSingular')" (lme4's text; here
      ``fit.is_singular`` and ``fit.varcorr`` show which variance is 0 or correlation ±1);
    - ``fit.separation`` (binomial GLMMs): the fixed effects flagged by the separation checks
      of :mod:`mixedppl.fit.checks` when the fit was made (a ``SeparationWarning``), whose
      estimates diverge (Albert & Anderson 1984);
    - a family shape on its plateau (Student's ν̂ → ∞, the Tweedie p̂ → 1 or 2; see
      :func:`mixedppl.fit.laplace.escape_shape_plateau`).

    Returns
    -------
    list of str
        Empty when the fit raised none of these warnings.
    """
    notes = []
    separated = list(getattr(fit, "separation", ()) or ())
    if separated:
        notes.append("separation: the estimate(s) of fixed effect(s) "
                     f"{', '.join(repr(n) for n in separated)} diverge (complete or "
                     "quasi-complete separation); their estimates and standard errors are not "
                     "meaningful")
    if getattr(fit, "is_singular", False):
        notes.append("boundary (singular) fit: see help('isSingular') (fit.is_singular, "
                     "fit.varcorr)")
    shape = getattr(getattr(fit, "family", None), "shape", None)
    phi = getattr(fit, "phi", ())
    if shape is not None and len(phi) and shape.at_limit(float(phi[-1])):
        notes.append(f"the {shape.label} is at its limit ({shape.natural(float(phi[-1])):.3g}: "
                     f"{shape.limit})")
    family = getattr(fit, "family", None)
    if family is not None and len(phi):
        eta_zi = getattr(getattr(fit, "record", None), "eta_zi", None)
        aux = getattr(getattr(fit, "spec", None), "aux_designs", {})
        notes += limit_notes(family, phi, fitted_zero_prob(family, phi, aux, eta_zi))
    if not getattr(fit, "converged", True):
        opt = getattr(fit, "opt", None)
        if opt is not None:
            grad = float(np.max(np.abs(opt.projected_gradient()), initial=0.0))
            notes.append(f"Model failed to converge with max|grad| = {grad:.3g} (optimizer did "
                         f"not converge: {opt.message})")
        else:
            notes.append("Model failed to converge (optimizer did not converge)")
    return notes


def lmm_summary(fit) -> Summary:
    """lmerTest's ``summary(lmer(...))`` print-out of an
    :class:`~mixedppl.results.lmm.LMMResult`: R's digits per column (``printCoefmat`` with
    ``digits = 4``), lme4's random-effects table and "Correlation of Fixed Effects"."""
    kind = "REML" if fit.reml else "maximum likelihood "
    crit = (f"REML criterion at convergence: {format_real([round(fit.reml_criterion, 1)])[0]}"
            if fit.reml else ic_block(fit.aic, fit.bic, fit.loglik, fit.deviance,
                                      fit.nobs - len(fit.fe_params) - len(fit.theta) - 1))
    lines = [
        title_block(f"Linear mixed model fit by {kind}. t-tests use Satterthwaite's method",
                    "lmerModLmerTest"),
        f"Formula: {fit.spec.formula}",
        "", crit, "", residuals_block(fit.residuals(type="pearson", scaled=True).dropna()), "",
        "Random effects:", random_effects_table(fit),
        groups_line(fit.ngroups, fit.nobs), "",
        "Fixed effects:", coef_block(fit.coef_table(), "Pr(>|t|)"),
    ] + correlation_block(fit.fe_cov)
    notes = fit_notes(fit)
    if fit.spec.dropped_columns:
        notes.append(f"fixed-effect columns dropped (rank deficient): {fit.spec.dropped_columns}")
    return Summary("\n".join(lines + ([""] + notes if notes else [])),
                   tables={"Random effects": fit.varcorr, "Fixed effects": fit.coef_table()})
