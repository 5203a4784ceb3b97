"""Text summaries in the layout of lme4's / lmerTest's ``summary()`` print-out."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ..fit.records import group_labels
from .tables import html_table

__all__ = ["Summary", "lmm_summary", "random_effects_table", "coef_block", "signif_stars",
           "fit_notes"]


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
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "." if p < 0.1 else ""


def _fmt(x: float, digits: int = 4) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}g}"


def _structure_corr(t, S: np.ndarray, sd: np.ndarray) -> str:
    """A structured term's Corr entry, as glmmTMB prints it: its correlation parameters and the
    structure's name (``0.70 (ar1)``; toep: the correlations at lags 1, 2, …)."""
    R = S / np.outer(sd, sd) if np.all(sd > 0) else np.full_like(S, np.nan)
    ell = len(sd)
    cors = {"diag": [], "cs": [R[1, 0]], "ar1": [R[1, 0]],
            "toep": [R[k, 0] for k in range(1, ell)]}[t.structure]
    return " ".join([f"{c:.2f}" for c in cors] + [f"({t.structure})"])


def random_effects_table(fit, residual: bool = True) -> str:
    """The Groups / Name / Variance / Std.Dev. / Corr block (a structured term's Corr: its
    correlation parameters and the structure's name, as glmmTMB)."""
    rows = []
    for label, t, S in zip(group_labels(fit.spec.terms), fit.spec.terms, fit.covs):
        sd = np.sqrt(np.clip(np.diag(S), 0, None))
        for i, name in enumerate(t.column_names):
            if t.structured:
                corr = [_structure_corr(t, S, sd)] if i == 0 else []
            else:
                corr = [f"{S[i, j] / (sd[i] * sd[j]):.2f}" if sd[i] > 0 and sd[j] > 0 else "NaN"
                        for j in range(i)]
            rows.append([label if i == 0 else "", name, _fmt(S[i, i]), _fmt(sd[i]), " ".join(corr)])
    if residual:
        rows.append(["Residual", "", _fmt(fit.scale), _fmt(fit.sigma), ""])
    table = pd.DataFrame(rows, columns=["Groups", "Name", "Variance", "Std.Dev.", "Corr"])
    if not table["Corr"].str.strip().any():
        table = table.drop(columns="Corr")
    return " " + table.to_string(index=False, justify="left").replace("\n", "\n ")


def coef_block(table: pd.DataFrame, p_col: str) -> str:
    """Coefficient table with significance stars."""
    shown = table.copy()
    for col in shown.columns:
        if col == p_col:
            shown[col] = [f"{p:.3g}" if p >= 2e-16 else "< 2e-16" for p in table[col]]
        else:
            shown[col] = [f"{v:.6g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}" for v in table[col]]
    shown[""] = [signif_stars(p) for p in table[p_col]]
    return shown.to_string() + "\n---\nSignif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"


def _scaled_residuals(fit) -> str:
    q = np.quantile(fit.residuals(type="pearson", scaled=True).dropna(), [0, 0.25, 0.5, 0.75, 1])
    return pd.DataFrame([q], columns=["Min", "1Q", "Median", "3Q", "Max"]).round(4).to_string(index=False)


def fit_notes(fit) -> list[str]:
    """The warnings of the fit, as lines at the end of a summary (lme4's ``print.merMod``).

    - ``fit.converged`` False: "Model failed to converge with max|grad| = …", the largest
      projected gradient of the objective at the optimiser's last point (lme4's
      ``checkConv`` message, which compares it with ``tol = 0.002``), and the optimiser's message;
    - ``fit.is_singular``: "boundary (singular) fit: see help('isSingular')" (lme4's text; here
      ``fit.is_singular`` and ``fit.varcorr`` show which variance is 0 or correlation ±1);
    - ``fit.separation`` (binomial GLMMs): the fixed effects flagged by the separation checks
      of :mod:`mixedppl.fit.checks` when the fit was made (a ``SeparationWarning``), whose
      estimates diverge (Albert & Anderson 1984).

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
    """lmerTest-style summary of an :class:`~mixedppl.results.lmm.LMMResult`."""
    kind = "REML" if fit.reml else "maximum likelihood"
    crit = (f"REML criterion at convergence: {fit.reml_criterion:.1f}" if fit.reml else
            f"     AIC      BIC   logLik deviance\n{fit.aic:8.1f} {fit.bic:8.1f} {fit.loglik:8.1f} "
            f"{fit.deviance:8.1f}")
    groups = ", ".join(f"{g}, {n}" for g, n in fit.ngroups.items())
    lines = [
        f"Linear mixed model fit by {kind}. t-tests use Satterthwaite's method",
        f"Formula: {fit.spec.formula}",
        "", crit, "", "Scaled residuals: ", _scaled_residuals(fit), "",
        "Random effects:", random_effects_table(fit),
        f"Number of obs: {fit.nobs}, groups:  {groups}", "",
        "Fixed effects:", coef_block(fit.coef_table(), "Pr(>|t|)"),
    ]
    notes = fit_notes(fit)
    if fit.spec.dropped_columns:
        notes.append(f"fixed-effect columns dropped (rank deficient): {fit.spec.dropped_columns}")
    return Summary("\n".join(lines + ([""] + notes if notes else [])),
                   tables={"Random effects": fit.varcorr, "Fixed effects": fit.coef_table()})
