r"""lmerTest's type II / III F tests: the contrasts of each term and their Satterthwaite / KR F tests.

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

**Type II contrasts** (lmerTest ``get_contrasts_type2``): for a term T, the columns of X are
reordered as (the other terms, T, the terms containing T) and T's rows of the normalised
Doolittle factor of the reordered XᵀX, mapped back to X's column order, are its contrasts: T is
tested adjusted for every term that does not contain it.

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

__all__ = ["term_contrasts", "anova_table", "fstat_ddf", "contrast_ftest"]

_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


def _kept(spec) -> list[int]:
    names = list(spec.fixed_design.column_names)
    return [names.index(n) for n in spec.fe_names]


def _doolittle_rows(X: np.ndarray) -> np.ndarray:
    """tᵀ of lmerTest's ``doolittle(crossprod(X))$L``: the upper Cholesky factor of XᵀX with unit
    diagonal (entries below 1e-6 set to 0)."""
    R = np.linalg.cholesky(X.T @ X).T
    U = R / np.diag(R)[:, None]
    U[np.abs(U) < 1e-6] = 0.0
    return U


def _type1(spec) -> dict[str, np.ndarray]:
    """Rows of the normalised Doolittle factor of XᵀX belonging to each term."""
    fd = spec.fixed_design
    U = _doolittle_rows(spec.X)
    assign = fd.assign[_kept(spec)]
    return {name: U[assign == k + 1] for k, name in enumerate(fd.term_names)}


def _type2(spec) -> dict[str, np.ndarray]:
    """lmerTest's ``get_contrasts_type2`` (see the module docstring)."""
    fd = spec.fixed_design
    plan, assign = fd.plan, fd.assign[_kept(spec)]
    out = {}
    for j, name in enumerate(fd.term_names):
        containing = [k for k in range(len(fd.term_names)) if _contains(plan, j, k)]
        tested = np.isin(assign, [j + 1] + [k + 1 for k in containing])
        order = np.concatenate([np.flatnonzero(~tested), np.flatnonzero(tested)])
        U = _doolittle_rows(spec.X[:, order])
        rows = U[assign[order] == j + 1]
        L = np.zeros_like(rows)
        L[:, order] = rows
        out[name] = L
    return out


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


def term_contrasts(spec, type: int = 3) -> dict[str, np.ndarray]:
    """lmerTest's type III (or, ``type=2``, type II) contrast matrix of each fixed term (type I
    with ≤ 1 term or column)."""
    fd = spec.fixed_design
    if type not in (2, 3):
        raise ValueError(f"type must be 2 or 3, got {type!r}")
    if spec.p <= 1 and fd.has_intercept or not fd.term_names:
        return {}
    if spec.p <= 1 or len(fd.term_names) <= 1:
        return _type1(spec)
    if type == 2:
        return _type2(spec)
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


def _satterthwaite_row(record: LMMFit, L: np.ndarray, beta: np.ndarray,
                       eps: float = np.sqrt(np.finfo(float).eps)) -> tuple:
    d, P = np.linalg.eigh(L @ record.vcov_beta @ L.T)
    d, P = d[::-1], P[:, ::-1]
    q = int(np.sum(d > max(eps * d[0], 0)))
    PtL = P[:, :q].T @ L
    F = float(np.sum((PtL @ beta) ** 2 / d[:q]) / q)
    nu = satterthwaite_df(record, PtL)
    return F, q, fstat_ddf(nu), 1.0


def _kr_row(adjusted: KRAdjusted, beta: np.ndarray, L: np.ndarray) -> tuple:
    res = kr_ftest(adjusted, L, beta)
    return res["FstatU"], res["ndf"], res["ddf"], res["F.scaling"]


def _ddf_key(ddf: str) -> str:
    key = ddf.lower().replace("_", "-")
    if key not in ("satterthwaite", "kenward-roger", "kr"):
        raise ValueError(f"ddf must be 'Satterthwaite' or 'Kenward-Roger', got {ddf!r}")
    return "satterthwaite" if key == "satterthwaite" else "kenward-roger"


def _ftest_row(record: LMMFit, L: np.ndarray, key: str, kr: KRAdjusted | None,
               beta: np.ndarray) -> list:
    F, q, den, scale = (_satterthwaite_row(record, L, beta) if key == "satterthwaite"
                        else _kr_row(kr, beta, L))
    ms = F * record.scale
    Fs = F * scale
    return [ms * q, ms, q, den, Fs, special.fdtrc(q, den, Fs)]


def contrast_ftest(record: LMMFit, L: np.ndarray, rhs=0.0, ddf: str = "Satterthwaite",
                   kr: KRAdjusted | None = None) -> pd.DataFrame:
    r"""F test of :math:`L\beta = r`, as lmerTest's ``contest(fit, L, rhs, joint = TRUE)``.

    Satterthwaite: :math:`\beta - L^{+}r` in place of β̂ in the eigen-decomposed F (lmerTest's
    ``contestMD``); Kenward–Roger: pbkrtest's ``KRmodcomp`` with ``betaH`` = :math:`L^{+}r`.

    Parameters
    ----------
    record : LMMFit
    L : ndarray (q, p) or (p,)
    rhs : float or array-like (q,)
    ddf : {"Satterthwaite", "Kenward-Roger"}
    kr : KRAdjusted, optional

    Returns
    -------
    DataFrame
        One row: Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> round(float(contrast_ftest(fit.record, [0, 1], rhs=10)["F value"].iloc[0]), 4)
    0.0914
    """
    key = _ddf_key(ddf)
    L = np.atleast_2d(np.asarray(L, float))
    if L.shape[1] != record.spec.p:
        raise ValueError(f"L needs {record.spec.p} columns (one per fixed effect), got "
                         f"{L.shape[1]}")
    rhs = np.broadcast_to(np.asarray(rhs, float), (L.shape[0],))
    beta = record.beta - (np.linalg.pinv(L) @ rhs if np.any(rhs != 0) else 0.0)
    if key == "kenward-roger" and kr is None:
        kr = kr_adjusted(record)
    table = pd.DataFrame([_ftest_row(record, L, key, kr, beta)], columns=_COLUMNS)
    table["NumDF"] = table["NumDF"].astype(int)
    return table


def anova_table(record: LMMFit, ddf: str = "Satterthwaite",
                kr: KRAdjusted | None = None, type: int = 3) -> pd.DataFrame:
    """Type III (or type II) table: Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F) per fixed term.

    Parameters
    ----------
    record : LMMFit
    ddf : {"Satterthwaite", "Kenward-Roger"}
    kr : KRAdjusted, optional
        A Kenward–Roger adjustment already computed for ``record`` (else computed here).
    type : {3, 2}
        lmerTest's ``anova(fit, type = )``.

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> round(float(anova_table(fit.record).loc["Days", "F value"]), 3)
    45.853
    """
    key = _ddf_key(ddf)
    contrasts = term_contrasts(record.spec, type)
    if key != "satterthwaite" and contrasts and kr is None:
        kr = kr_adjusted(record)
    rows = {name: _ftest_row(record, L, key, kr, record.beta) for name, L in contrasts.items()}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=_COLUMNS)
    table["NumDF"] = table["NumDF"].astype(int)
    return table
