r"""lmerTest's type III F tests: the contrasts of each term and their Satterthwaite / KR F tests.

**Contrasts.** With at most one fixed term, lmerTest uses type I contrasts: rows of the
normalised Doolittle factor of XᵀX (:math:`D^{-1}R` with :math:`X^\top X = R^\top R`,
D = diag R). With more
terms it builds type III contrasts in treatment coding (``extract_contrasts_type3``):
:math:`L = (X_{trt}^{+} X_{full})^\top`, X_full the over-parametrised design (every level of every
factor of each term), orthogonalises the columns of a term against those of the terms containing it
(higher-order terms first), keeps the rows of the model's coefficients, and maps to the coding
actually used with :math:`X_{trt}^{+} X`. The linear relations between these columns do not depend
on the rows, so with plain variables they are computed on the grid of all factor-level
combinations; with transformed variables (``log(x)``, ``I(x^2)``, ``poly(x, 2)``, ``scale(x)``,
``factor(x > 2)``, …) on the fitted rows, as lmerTest (each transformed variable is one variable
of its term, numeric or factor by its value, exactly as in R's ``terms``).

**Satterthwaite F** (lmerTest ``contestMD``): eigen-decompose :math:`L V_\beta L^\top = P D P^\top`,
:math:`F = \frac1q\sum_m (P_m^\top L\beta)^2 / d_m`, one Satterthwaite :math:`\nu_m` per row of
:math:`P^\top L`, and :math:`\nu = 2E/(E-q)`, :math:`E = \sum_m \nu_m/(\nu_m - 2)` (2 if any
:math:`\nu_m \le 2`, the mean when all are equal).

**Kenward–Roger F** (pbkrtest ``KRmodcomp``): Wald/q with the adjusted covariance, scaled.

References
----------
Kuznetsova, Brockhoff & Christensen (2017). lmerTest package: tests in linear mixed effects models.
J. Stat. Softw. 82(13). Goodnight (1980), Tests of hypotheses in fixed effects linear models.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import special

from ..core.exceptions import ModelSpecError
from ..fit.records import LMMFit
from ..spec.contrasts import EvalState
from ..spec.design import term_variables, new_variable, term_columns, model_matrix, rhs_variables
from .kenward_roger import KRAdjusted, kr_adjusted, kr_ftest
from .satterthwaite import satterthwaite_df

__all__ = ["term_contrasts", "anova_table", "fstat_ddf"]

_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


def _kept(spec) -> list[int]:
    names = list(spec.fixed_design.column_names)
    return [names.index(n) for n in spec.fe_names]


def _type1(spec) -> dict[str, np.ndarray]:
    """Rows of the normalised Doolittle factor of XᵀX belonging to each term."""
    fd, X = spec.fixed_design, spec.X
    R = np.linalg.cholesky(X.T @ X).T
    U = R / np.diag(R)[:, None]
    U[np.abs(U) < 1e-6] = 0.0
    assign = fd.assign[_kept(spec)]
    return {name: U[assign == k + 1] for k, name in enumerate(fd.term_names)}


_CHANGED = ("type III contrasts of a transformed variable are computed on the rows the model was "
            "fitted to, and that data frame has changed since the fit (or is missing): refit the "
            "model")


def _rows(spec) -> pd.DataFrame:
    """The rows the contrasts are computed on.

    With plain variables only: every combination of the factor levels, numeric variables at 1, 2,
    3, 4 (small, and the linear relations between the columns of X, X_trt and the full design do
    not depend on the rows). With a transformed variable (``log(x)``, ``I(x^2)``, ``poly(x, 2)``,
    ``scale(x)``, ``factor(x)``, …): the rows the model was fitted to, as lmerTest (which works on
    the model frame), so that every transform sees the values it was fitted on.
    """
    plan = spec.fixed_design.plan
    if _uses_fitted_rows(spec):
        if spec.data is None or len(spec.data) != len(spec.keep):
            raise ModelSpecError(_CHANGED)
        return spec.data.loc[np.asarray(spec.keep, bool)].reset_index(drop=True)
    return _grid(plan)


def _uses_fitted_rows(spec) -> bool:
    """Whether a fixed term has a transformed variable (see :func:`_rows`)."""
    plan = spec.fixed_design.plan
    plain = set(rhs_variables(plan.rhs))
    return any(v.label not in plain and not v.label.startswith("offset(") for v in plan.vars)


def _grid(plan) -> pd.DataFrame:
    """Every combination of the factor levels (numeric variables at 1, 2, 3, 4)."""
    plain = set(rhs_variables(plan.rhs))
    cols, values = [], []
    for v in plan.vars:
        if v.label.startswith("offset(") or v.label not in plain:
            continue
        cols.append(v)
        values.append(v.levels if v.is_factor else [1.0, 2.0, 3.0, 4.0])
    rows = list(itertools.product(*values))
    grid = pd.DataFrame(rows, columns=[v.label for v in cols])
    for v in cols:
        if v.is_factor and v.levels != ["FALSE", "TRUE"]:
            grid[v.label] = pd.Categorical(grid[v.label], categories=v.levels, ordered=v.ordered)
        elif v.is_factor:
            grid[v.label] = grid[v.label] == "TRUE"
    for v in plan.vars:
        if v.label.startswith("offset("):
            for c in rhs_variables(v.label):
                grid[c] = 1.0
    return grid


def _full_design(plan, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """lmerTest's ``get_rdX``: intercept + each term with every level of its factors
    (``model.matrix(~ 0 + term)`` per term), the variables evaluated on ``frame`` as ``plan``
    (the treatment-coded design's plan) evaluated them."""
    n = len(frame)
    st = EvalState(frame, False, plan.params, plan.rhs)
    used = {i for t in plan.terms for i in term_variables(t)}
    values = [new_variable(v, st) if i in used else None for i, v in enumerate(plan.vars)]
    full = replace(plan, codes=[[(i, 2 if plan.vars[i].is_factor else c) for i, c in term]
                                for term in plan.codes])
    blocks = [np.ones((n, 1))] if plan.intercept else []
    names = ["(Intercept)"] if plan.intercept else []
    for j in range(len(plan.terms)):
        mat, nm = term_columns(full, j, values, n)
        blocks.append(mat)
        names += nm
    return np.hstack(blocks), names


def _contains(plan, j: int, k: int) -> bool:
    """lmerTest's ``term_contain``: term k contains term j (more variables, same numerics)."""
    vj, vk = set(term_variables(plan.terms[j])), set(term_variables(plan.terms[k]))
    num = lambda s: {i for i in s if not plan.vars[i].is_factor}  # noqa: E731
    return vj < vk and num(vj) == num(vk)


def _orthogonalise(L: np.ndarray, plan, assign: np.ndarray) -> np.ndarray:
    order = sorted(range(len(plan.terms)), key=lambda j: -len(term_variables(plan.terms[j])))
    for j in order:
        cont = [k for k in range(len(plan.terms)) if _contains(plan, j, k)]
        if not cont:
            continue
        cols, other = assign == j + 1, np.isin(assign, [k + 1 for k in cont])
        C = L[:, other]
        coef = np.linalg.lstsq(C, L[:, cols], rcond=None)[0]
        L[:, cols] = L[:, cols] - C @ coef
    return L


def _type3(spec) -> dict[str, np.ndarray]:
    """lmerTest's ``get_contrasts_type3`` (see the module docstring)."""
    fd = spec.fixed_design
    grid = _rows(spec)
    X_orig = fd.transform(grid)[0][:, _kept(spec)]
    if _uses_fitted_rows(spec) and (X_orig.shape != spec.X.shape
                                    or not np.allclose(X_orig, spec.X, rtol=1e-10, atol=1e-12)):
        raise ModelSpecError(_CHANGED)
    factors = {v.label: "contr.treatment" for v in fd.plan.vars if v.is_factor}
    trt = model_matrix(fd.plan.rhs, grid, contrasts=factors)
    plan = trt.plan
    X_trt = trt.matrix
    if np.linalg.matrix_rank(X_trt) < X_trt.shape[1] or np.linalg.matrix_rank(X_orig) < spec.p:
        raise NotImplementedError("type III contrasts for rank-deficient designs are not available")
    rdX, full_names = _full_design(plan, grid)
    pinv = np.linalg.pinv(X_trt)
    L = (pinv @ rdX).T
    L[np.abs(L) < 1e-10] = 0.0
    L = _orthogonalise(L, plan, trt.assign)
    L = L[[full_names.index(nm) for nm in trt.column_names]]
    mapping = pinv @ X_orig
    mapping[np.abs(mapping) < 1e-10] = 0.0
    out = {}
    for k, name in enumerate(fd.term_names):
        Lt = L[:, trt.assign == k + 1].T
        out[name] = Lt[np.abs(Lt).sum(axis=1) > 1e-8] @ mapping
    return out


def term_contrasts(spec) -> dict[str, np.ndarray]:
    """lmerTest's type III contrast matrix of each fixed term (type I with ≤ 1 term or column)."""
    fd = spec.fixed_design
    if spec.p <= 1 and fd.has_intercept or not fd.term_names:
        return {}
    if spec.p <= 1 or len(fd.term_names) <= 1:
        return _type1(spec)
    if spec.dropped_columns:
        raise NotImplementedError("type III contrasts for rank-deficient designs are not available")
    return _type3(spec)


def fstat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """lmerTest's ``get_Fstat_ddf``: df of a mean of squared t statistics with df ``nu``."""
    nu = np.asarray(nu, float)
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = np.sum(nu / (nu - 2))
    return float(2 * E / (E - len(nu)))


def _satterthwaite_row(record: LMMFit, L: np.ndarray,
                       eps: float = np.sqrt(np.finfo(float).eps)) -> tuple:
    d, P = np.linalg.eigh(L @ record.vcov_beta @ L.T)
    d, P = d[::-1], P[:, ::-1]
    q = int(np.sum(d > max(eps * d[0], 0)))
    PtL = P[:, :q].T @ L
    F = float(np.sum((PtL @ record.beta) ** 2 / d[:q]) / q)
    nu = satterthwaite_df(record, PtL)
    return F, q, fstat_ddf(nu), 1.0


def _kr_row(adjusted: KRAdjusted, beta: np.ndarray, L: np.ndarray) -> tuple:
    res = kr_ftest(adjusted, L, beta)
    return res["FstatU"], res["ndf"], res["ddf"], res["F.scaling"]


def anova_table(record: LMMFit, ddf: str = "Satterthwaite",
                kr: KRAdjusted | None = None) -> pd.DataFrame:
    """Type III table: Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F) per fixed term.

    Parameters
    ----------
    record : LMMFit
    ddf : {"Satterthwaite", "Kenward-Roger"}
    kr : KRAdjusted, optional
        A Kenward–Roger adjustment already computed for ``record`` (else computed here).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> round(float(anova_table(fit.record).loc["Days", "F value"]), 3)
    45.853
    """
    key = ddf.lower().replace("_", "-")
    if key not in ("satterthwaite", "kenward-roger", "kr"):
        raise ValueError(f"ddf must be 'Satterthwaite' or 'Kenward-Roger', got {ddf!r}")
    contrasts = term_contrasts(record.spec)
    if key != "satterthwaite" and contrasts and kr is None:
        kr = kr_adjusted(record)
    rows = {}
    for name, L in contrasts.items():
        F, q, den, scale = (_satterthwaite_row(record, L) if key == "satterthwaite"
                            else _kr_row(kr, record.beta, L))
        ms = F * record.scale
        Fs = F * scale
        rows[name] = [ms * q, ms, q, den, Fs, special.fdtrc(q, den, Fs)]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=_COLUMNS)
    table["NumDF"] = table["NumDF"].astype(int)
    return table
