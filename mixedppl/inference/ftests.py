r"""lmerTest's type III F tests: the contrasts of each term and their Satterthwaite / KR F tests.

**Contrasts.** With at most one fixed term, lmerTest uses type I contrasts: rows of the
normalised Doolittle factor of XᵀX (:math:`D^{-1}R` with :math:`X^\top X = R^\top R`,
D = diag R). With more
terms it builds type III contrasts in treatment coding (``extract_contrasts_type3``):
:math:`L = (X_{trt}^{+} X_{full})^\top`, X_full the over-parametrised design (every level of every
factor of each term), orthogonalises the columns of a term against those of the terms containing it
(higher-order terms first), keeps the rows of the model's coefficients, and maps to the coding
actually used with :math:`X_{trt}^{+} X`. The linear relations between these columns do not depend
on the rows, so they are computed on the grid of all factor-level combinations.

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

import numpy as np
import pandas as pd
from scipy import special

from ..exceptions import ModelSpecError
from ..results.satterthwaite import satterthwaite_df
from ..spec.design import _bits, model_matrix, rhs_variables

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


def _grid(plan) -> pd.DataFrame:
    """Every combination of the factor levels (numeric variables at 1, 2, 3, 4)."""
    plain = set(rhs_variables(plan.rhs))
    cols, values = [], []
    for v in plan.vars:
        if v.label.startswith("offset("):
            continue
        if v.label not in plain:
            raise NotImplementedError(
                f"type III contrasts for the transformed variable {v.label!r} are not available; "
                "create the column in the data first")
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


def _full_design(plan, grid: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """lmerTest's ``get_rdX``: intercept + each term with every level of its factors."""
    n = len(grid)
    blocks = [np.ones((n, 1))] if plan.intercept else []
    names = ["(Intercept)"] if plan.intercept else []
    for t in plan.terms:
        mat, nm = np.ones((n, 1)), [""]
        for i in _bits(t):
            v = plan.vars[i]
            if v.is_factor:
                lab = grid[v.label].astype(str).replace({"True": "TRUE", "False": "FALSE"})
                blk = (lab.to_numpy()[:, None] == np.array(v.levels)[None, :]).astype(float)
                bn = [v.label + lev for lev in v.levels]
            else:
                blk, bn = grid[[v.label]].to_numpy(float), [v.label]
            mat = (blk[:, :, None] * mat[:, None, :]).reshape(n, -1)
            nm = [f"{p}:{b}" if p else b for b in bn for p in nm]
        blocks.append(mat)
        names += nm
    return np.hstack(blocks), names


def _contains(plan, j: int, k: int) -> bool:
    """lmerTest's ``term_contain``: term k contains term j (more variables, same numerics)."""
    vj, vk = set(_bits(plan.terms[j])), set(_bits(plan.terms[k]))
    num = lambda s: {i for i in s if not plan.vars[i].is_factor}  # noqa: E731
    return vj < vk and num(vj) == num(vk)


def _orthogonalise(L: np.ndarray, plan, assign: np.ndarray) -> np.ndarray:
    order = sorted(range(len(plan.terms)), key=lambda j: -len(_bits(plan.terms[j])))
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
    plan = fd.plan
    grid = _grid(plan)
    X_orig = fd.transform(grid)[0][:, _kept(spec)]
    factors = {v.label: "contr.treatment" for v in plan.vars if v.is_factor}
    trt = model_matrix(plan.rhs, grid, contrasts=factors)
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


def _satterthwaite_row(fit, L: np.ndarray, eps: float = np.sqrt(np.finfo(float).eps)) -> tuple:
    d, P = np.linalg.eigh(L @ fit.vcov_beta @ L.T)
    d, P = d[::-1], P[:, ::-1]
    q = int(np.sum(d > max(eps * d[0], 0)))
    PtL = P[:, :q].T @ L
    F = float(np.sum((PtL @ fit.beta) ** 2 / d[:q]) / q)
    nu = satterthwaite_df(fit, PtL)
    return F, q, fstat_ddf(nu), 1.0


def _kr_row(fit, L: np.ndarray) -> tuple:
    from .kenward_roger import kr_ftest
    res = kr_ftest(fit._kr_adjusted, L, fit.beta)
    return res["FstatU"], res["ndf"], res["ddf"], res["F.scaling"]


def anova_table(fit, ddf: str = "Satterthwaite") -> pd.DataFrame:
    """Type III table: Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F) per fixed term."""
    key = ddf.lower().replace("_", "-")
    if key not in ("satterthwaite", "kenward-roger", "kr"):
        raise ValueError(f"ddf must be 'Satterthwaite' or 'Kenward-Roger', got {ddf!r}")
    row = _satterthwaite_row if key == "satterthwaite" else _kr_row
    rows = {}
    for name, L in term_contrasts(fit.spec).items():
        F, q, den, scale = row(fit, L)
        ms = F * fit.scale
        Fs = F * scale
        rows[name] = [ms * q, ms, q, den, Fs, special.fdtrc(q, den, Fs)]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=_COLUMNS)
    table["NumDF"] = table["NumDF"].astype(int)
    return table
