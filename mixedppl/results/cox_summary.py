r"""The print-out of a Cox frailty fit, laid out as coxme's ``print.coxme`` line by line.

coxme (2.2-22) prints, for a fit ``x``:

- the log-likelihoods NULL (β = 0, no frailties), Integrated (ℓ_I(θ̂), what the fit maximises)
  and Fitted (ℓ at the mode) as a one-row numeric matrix at ``digits = 7``;
- the two likelihood-ratio tests against NULL, :math:`\chi^2_I = 2(\ell_I - \ell_0)` on
  :math:`p + n_\theta` df and :math:`\chi^2_P = 2(\ell_F - \ell_0)` on the penalised df, each
  with ``signif(1 - pchisq(χ², df), 5)``, ``AIC = χ² − 2 df`` and ``BIC = χ² − log(events) df``
  (rounded to two decimals, as R does);
- the fixed coefficients ``cbind(β, exp(β), se, round(β/se, 2), signif(1 - pchisq(z²), 2))``;
- the random effects: for each term the SDs, variances and (for a term with several columns)
  the correlations, all formatted together by ``format(digits = 7)`` and printed as a
  left-justified character matrix.

Each numeric matrix is R's ``print.default``: every column formatted by itself
(:func:`~mixedppl.results.rprint.format_real`), right-justified under its name.

What differs: coxme prints ``Data: <name>`` (a data frame has no name here) and
``Iterations= <outer> <inner>`` (optim's and the inner Newton loop's counts); here that line
gives the L-BFGS-B iterations and objective evaluations, which are this optimiser's. A model
with ``strata()`` gets one more line naming the strata (coxme prints none).

References
----------
Therneau, T. M. (2022). coxme: Mixed Effects Cox Models, R package 2.2-22, ``R/print.coxme.R``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from .rprint import format_real, print_matrix

__all__ = ["CoxmePrint", "coxme_print"]


def _signif(x: float, digits: int) -> float:
    """R's ``signif(x, digits)``."""
    return float(f"{x:.{digits - 1}e}") if np.isfinite(x) else x


def _numeric_matrix(values, rownames, colnames, digits: int = 7) -> str:
    """R's ``print(<numeric matrix>, digits)``: each column formatted by itself."""
    values = np.asarray(values, float)
    columns = [format_real(values[:, j], digits) for j in range(values.shape[1])]
    cells = [[columns[j][i] for j in range(values.shape[1])] for i in range(values.shape[0])]
    return print_matrix(cells, rownames, colnames, right=True)


def _random_effects(labels, covariances, column_names, digits: int = 7) -> str:
    """coxme's random-effects block: SD, variance, then correlations to the right."""
    maxcol = max(1 + S.shape[0] if S.shape[0] > 1 else 2 for S in covariances)
    rows, groups, variables = [], [], []
    for label, S, names in zip(labels, covariances, column_names):
        k = S.shape[0]
        sd = np.sqrt(np.diag(S))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = S / np.outer(sd, sd)
        for j in range(k):
            row = np.full(maxcol, np.nan)
            row[0], row[1] = sd[j], S[j, j]
            row[2 + j:1 + k] = corr[j, j + 1:]
            rows.append(row)
            groups.append(label if j == 0 else "")
            variables.append("Intercept" if names[j] == "(Intercept)" else names[j])
    values = np.array(rows)
    finite = np.isfinite(values)
    shown = format_real(values[finite], digits)
    cells = np.full(values.shape, "", dtype=object)
    cells[finite] = shown
    table = [[g, v, *row] for g, v, row in zip(groups, variables, cells.tolist())]
    head = ["Group", "Variable", "Std Dev", "Variance"]
    if maxcol > 2:
        head += ["Corr"] + [""] * (maxcol - 3)
    return print_matrix(table, [""] * len(table), head)


@dataclass(frozen=True)
class CoxmePrint:
    """The numbers coxme's ``print`` shows, and :meth:`lines` that lay them out.

    Parameters
    ----------
    loglik : tuple of float
        NULL, Integrated and Fitted log-likelihoods.
    n_events, nobs : int
    df : tuple of float
        The integrated (p + number of variance parameters) and penalised degrees of freedom.
    beta, se : array-like
        Fixed effects and their standard errors.
    fe_names : sequence of str
    formula : str
    groups : sequence of str
        One label per random term (coxme's ``names(VarCorr(fit))``).
    covariances : sequence of ndarray
        Each term's frailty covariance (1 × 1 for a scalar term).
    column_names : sequence of sequence of str
        Each term's columns (``"(Intercept)"`` is printed ``Intercept``, as coxme names it).
    iterations : tuple of int
        Printed after ``Iterations=``.
    strata : pandas.Series or None
        Rows per stratum (printed after the random effects).
    n_deleted : int
        Rows dropped for missing values (coxme prints "(k observations deleted due to
        missingness)" after ``n``).
    """

    loglik: tuple
    n_events: int
    nobs: int
    df: tuple
    beta: np.ndarray
    se: np.ndarray
    fe_names: tuple
    formula: str
    groups: tuple
    covariances: tuple
    column_names: tuple
    iterations: tuple = (0, 0)
    strata: object = None
    n_deleted: int = 0

    @classmethod
    def from_result(cls, result) -> "CoxmePrint":
        """The numbers of a :class:`~mixedppl.results.cox.CoxmeResult`."""
        r, opt = result.record, result.record.opt
        return cls(loglik=(result.loglik_null, result.loglik, result.loglik_fitted),
                   n_events=result.nevents, nobs=result.nobs,
                   df=(float(result.n_params), float(r.df_penalized)),
                   beta=np.asarray(r.beta, float), se=np.sqrt(np.diag(r.vcov_beta)),
                   fe_names=tuple(result.spec.fe_names), formula=str(result.spec.formula),
                   groups=tuple(r.variances), covariances=tuple(r.covariances),
                   column_names=tuple(tuple(t.column_names) for t in result.spec.terms),
                   iterations=(opt.n_iter, opt.n_evals) if opt is not None else (0, 0),
                   strata=result.strata, n_deleted=result.n_deleted)

    def lines(self) -> list[str]:
        """The print-out, one string per line (see the module docstring)."""
        ll = np.asarray(self.loglik, float)
        out = ["Cox mixed-effects model fit by maximum likelihood",
               f"  events, n = {self.n_events}, {self.nobs}" + (
                   f" ({self.n_deleted} observations deleted due to missingness)"
                   if self.n_deleted else ""),
               f"  Iterations= {self.iterations[0]} {self.iterations[1]} ",
               *_numeric_matrix(ll[None, :], ["Log-likelihood"],
                                ["NULL", "Integrated", "Fitted"]).splitlines(), ""]
        tests = []
        for chi, df in ((2 * (ll[1] - ll[0]), float(self.df[0])),
                        (2 * (ll[2] - ll[0]), float(self.df[1]))):
            tests.append([round(chi, 2), round(df, 2), _signif(1 - special.chdtr(df, chi), 5),
                          round(chi - 2 * df, 2), round(chi - np.log(self.n_events) * df, 2)])
        out += _numeric_matrix(tests, ["Integrated loglik", " Penalized loglik"],
                               ["Chisq", "df", "p", "AIC", "BIC"]).splitlines()
        out += ["", f"Model:  {self.formula} "]
        if len(self.beta):
            b, se = np.asarray(self.beta, float), np.asarray(self.se, float)
            z = b / se
            table = np.column_stack([b, np.exp(b), se, np.round(z, 2),
                                     [_signif(1 - special.chdtr(1, v ** 2), 2) for v in z]])
            out += ["Fixed coefficients",
                    *_numeric_matrix(table, list(self.fe_names),
                                     ["coef", "exp(coef)", "se(coef)", "z", "p"]).splitlines()]
        out += ["", "Random effects",
                *_random_effects(self.groups, [np.atleast_2d(S) for S in self.covariances],
                                 self.column_names).splitlines()]
        if self.strata is not None:
            st = self.strata
            out += ["", f"Strata: {st.index.name} ({len(st)} strata: "
                    + ", ".join(f"{k} n = {v}" for k, v in st.items()) + ")"]
        return out


def coxme_print(result) -> str:
    """The lines coxme's ``print(fit)`` writes for a :class:`~mixedppl.results.cox.CoxmeResult`
    (see the module docstring and :class:`CoxmePrint`).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))
    >>> print("\\n".join(coxme_print(fit).splitlines()[3:5]))
                        NULL Integrated    Fitted
    Log-likelihood -187.9028  -181.9045 -166.1425
    """
    return "\n".join(CoxmePrint.from_result(result).lines())
