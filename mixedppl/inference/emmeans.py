r"""Estimated marginal means on a reference grid, as R's emmeans (Lenth), for every fitted record.

**Reference grid** (emmeans' ``ref_grid``). Every data column of the fixed part is a grid
variable: a factor takes each of its levels in the fitted data, a numeric column its mean over
the fitted rows (a numeric column that the formula turns into a factor, ``factor(x)``, its
sorted distinct values), unless ``at=`` gives the values. The grid is every combination, the
first variable varying fastest; row :math:`g` has the model-matrix row :math:`x_g` (the fit's
contrasts and transforms: ``log(x)`` is evaluated at the mean of x, as emmeans).

**Marginal means.** For the cells :math:`c` of the ``specs`` × ``by`` variables, the rows of the
grid in the cell are averaged with equal weights (emmeans' ``weights = "equal"``):

.. math:: \ell_c = \frac1{|c|}\sum_{g\in c} x_g, \qquad \hat m_c = \ell_c^\top\hat\beta,
          \qquad \operatorname{SE}_c = \sqrt{\ell_c^\top V \ell_c}.

Cells come in emmeans' order: the first variable of ``specs`` varies fastest, the ``by``
variables outermost.

**Covariance and df** (:func:`coefficient_basis`). LMM: ``ddf="Kenward-Roger"`` (emmeans'
default) uses pbkrtest's adjusted covariance :math:`\Phi_A` and ``Lb_ddf`` per row;
``"Satterthwaite"`` the model covariance and lmerTest's df per row; ``"asymptotic"`` df = ∞.
GLMM: Wald, df = ∞. CLMM (ordinal's ``clmm``): emmeans' default ``mode = "latent"``, the
latent variable :math:`-x^\top\beta` shifted by the mean threshold (see
:func:`coefficient_basis`), df = ∞.

**Response scale** (GLMM, ``type="response"``): :math:`\hat\mu_c = g^{-1}(\hat m_c)`, SE by the
delta method :math:`|\mathrm d\mu/\mathrm d\eta|\,\operatorname{SE}_c` and the interval's limits
back-transformed, as emmeans' ``summary(type = "response")``.

References
----------
Searle, Speed & Milliken (1980). Population marginal means in the linear model. Am. Stat. 34.
Lenth, R. V. emmeans: Estimated Marginal Means, aka Least-Squares Means (R package 1.8.4).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy import special

from ..core.exceptions import ModelSpecError
from ..fit.records import LaplaceFit, LMMFit
from ..graph.linear_predictor import fixed_columns
from ..spec.design import rhs_variables
from .kenward_roger import kr_adjusted, kr_ddf
from .satterthwaite import satterthwaite_df

__all__ = ["ReferenceGrid", "reference_grid", "CellMeans", "cell_means", "CoefficientBasis",
           "coefficient_basis", "marginal_means", "t_quantile", "estimable", "mu_eta"]


@dataclass(frozen=True)
class ReferenceGrid:
    """emmeans' reference grid: the grid's rows and their model-matrix rows.

    Attributes
    ----------
    grid : DataFrame
        One row per combination of the grid variables' values, the first varying fastest.
    levels : dict
        Grid variable → its values (labels for factors, numbers for numeric variables).
    X : ndarray (m, p)
        The model-matrix row of each grid row, the fit's kept columns.
    X_full : ndarray (m, p_full)
        The same with every column of the design (rank-deficient fits keep the dropped ones,
        for the estimability check).
    offset : ndarray (m,)
        The formula's ``offset()`` terms on the grid (0 when none).
    """

    grid: pd.DataFrame
    levels: dict
    X: np.ndarray
    X_full: np.ndarray
    offset: np.ndarray


def _fitted_rows(spec) -> pd.DataFrame:
    if spec.data is None or len(spec.data) != len(spec.keep):
        raise ModelSpecError("the reference grid is built from the data the model was fitted to, "
                             "and that data frame has changed since the fit (or is missing): "
                             "refit the model")
    return spec.data.loc[np.asarray(spec.keep, bool)]


def _is_factor_column(column: pd.Series) -> bool:
    return (isinstance(column.dtype, pd.CategoricalDtype) or column.dtype == bool
            or column.dtype.kind in "OSU")


def _grid_values(spec, name: str, column: pd.Series):
    """A grid variable's values: factor levels, or the mean of a numeric column."""
    plan = spec.fixed_design.plan
    for v in plan.vars:
        if v.label == name and v.is_factor:
            return ([False, True] if column.dtype == bool else list(v.levels)), True
    if _is_factor_column(column):
        if isinstance(column.dtype, pd.CategoricalDtype):
            present = set(column.dropna())
            return [lev for lev in column.cat.categories if lev in present], True
        if column.dtype == bool:
            return [False, True], True
        return sorted(set(column.dropna().astype(str))), True
    coerced = any(v.is_factor and rhs_variables(v.label) == [name] for v in plan.vars)
    if coerced:
        return sorted(set(column.dropna().astype(float))), True
    return [float(column.astype(float).mean())], False


def reference_grid(spec, at: dict | None = None) -> ReferenceGrid:
    """emmeans' ``ref_grid`` of a fitted spec (see the module docstring).

    Parameters
    ----------
    spec : ModelSpec
    at : dict, optional
        Variable → values to use instead of its levels / mean (``{"Days": [0, 4.5, 9]}``).

    Returns
    -------
    ReferenceGrid

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)",
    ...               mp.datasets.load("cake"))
    >>> rg = reference_grid(fit.spec)
    >>> rg.grid.shape, rg.grid["recipe"].tolist()[:4]
    ((18, 2), ['A', 'B', 'C', 'A'])
    """
    at = dict(at or {})
    rows = _fitted_rows(spec)
    names = rhs_variables(spec.fixed_design.plan.rhs)
    unknown = sorted(set(at) - set(names))
    if unknown:
        raise ModelSpecError(f"at= names {unknown} that are not variables of the fixed part "
                             f"(variables: {names})")
    levels, is_factor = {}, {}
    for name in names:
        values, factor = _grid_values(spec, name, rows[name])
        if name in at:
            given = at[name]
            values = list(np.atleast_1d(given)) if not isinstance(given, (list, tuple)) \
                else list(given)
            if factor and rows[name].dtype != bool and not isinstance(values[0], (int, float)):
                values = [str(v) for v in values]
        levels[name], is_factor[name] = values, factor
    combos = [tuple(reversed(c)) for c in itertools.product(*[levels[n] for n in reversed(names)])]
    grid = pd.DataFrame(combos, columns=names)
    for name in names:
        column = rows[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            grid[name] = pd.Categorical(grid[name], categories=column.cat.categories,
                                        ordered=column.cat.ordered)
    X_full, offset = spec.fixed_design.transform(grid)
    offset = np.zeros(len(grid)) if offset is None else np.asarray(offset, float)
    return ReferenceGrid(grid, levels, fixed_columns(X_full, spec), X_full, offset)


@dataclass(frozen=True)
class CellMeans:
    """The cells of ``specs`` × ``by`` and their averaging rows.

    Attributes
    ----------
    cells : DataFrame
        One row per cell: the values of the ``specs`` then ``by`` variables, in emmeans' order.
    L, L_full : ndarray (k, p), (k, p_full)
        Averaged model-matrix rows (kept columns; every column of the design).
    offset : ndarray (k,)
    specs, by : list of str
    """

    cells: pd.DataFrame
    L: np.ndarray
    L_full: np.ndarray
    offset: np.ndarray
    specs: list
    by: list


def _names(arg) -> list[str]:
    if arg is None:
        return []
    return [arg] if isinstance(arg, str) else list(arg)


def cell_means(rg: ReferenceGrid, specs, by=None) -> CellMeans:
    """Average the reference grid's rows over the variables not in ``specs`` / ``by``, with
    equal weights; cells in emmeans' order (first of ``specs`` fastest, ``by`` outermost).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)",
    ...               mp.datasets.load("cake"))
    >>> cm = cell_means(reference_grid(fit.spec), "temperature", by="recipe")
    >>> cm.cells.iloc[:2].values.tolist()
    [['175', 'A'], ['185', 'A']]
    """
    specs, by = _names(specs), _names(by)
    if not specs:
        raise ValueError("specs names no variable")
    variables = specs + by
    unknown = [v for v in variables if v not in rg.levels]
    if unknown:
        raise ModelSpecError(f"{unknown} are not variables of the reference grid "
                             f"(variables: {list(rg.levels)})")
    if len(set(variables)) < len(variables):
        raise ValueError(f"a variable is named twice in specs / by: {variables}")
    values = [rg.levels[v] for v in variables]
    combos = [tuple(reversed(c)) for c in itertools.product(*reversed(values))]
    codes = np.stack([pd.Index(rg.levels[v]).get_indexer(rg.grid[v].astype(object))
                      for v in variables], axis=1) if len(rg.grid) else np.zeros((0, 0), int)
    L, L_full, offset = [], [], []
    for combo in itertools.product(*[range(len(v)) for v in reversed(values)]):
        target = np.array(combo[::-1])
        rows = np.all(codes == target, axis=1)
        L.append(rg.X[rows].mean(axis=0))
        L_full.append(rg.X_full[rows].mean(axis=0))
        offset.append(rg.offset[rows].mean())
    cells = pd.DataFrame(combos, columns=variables)
    return CellMeans(cells, np.array(L), np.array(L_full), np.array(offset), specs, by)


@dataclass(frozen=True)
class CoefficientBasis:
    """What linear functions of a fit are computed from.

    Attributes
    ----------
    coef : ndarray
        The coefficients the rows of L act on.
    vcov : ndarray
        Their covariance (Kenward–Roger: the adjusted one).
    df : callable
        ``df(L)`` → one df per row of ``L`` (∞ for asymptotic inference).
    to_coef : callable
        ``to_coef(L)`` → the rows on ``coef`` for model-matrix rows L (a CLMM adds the thresholds'
        mean and flips the sign).
    method : str
        How df were computed ("Kenward-Roger", "Satterthwaite", "asymptotic").
    """

    coef: np.ndarray
    vcov: np.ndarray
    df: Callable[[np.ndarray], np.ndarray]
    to_coef: Callable[[np.ndarray], np.ndarray]
    method: str


def _infinite_df(L: np.ndarray) -> np.ndarray:
    return np.full(len(np.atleast_2d(L)), np.inf)


def _identity(L: np.ndarray) -> np.ndarray:
    return np.atleast_2d(L)


def _ddf_key(ddf: str) -> str:
    key = ddf.lower().replace("_", "-")
    keys = {"kenward-roger": "Kenward-Roger", "kr": "Kenward-Roger",
            "satterthwaite": "Satterthwaite", "asymptotic": "asymptotic"}
    if key not in keys:
        raise ValueError(f"ddf must be 'Kenward-Roger', 'Satterthwaite' or 'asymptotic', "
                         f"got {ddf!r}")
    return keys[key]


def coefficient_basis(record, ddf: str = "Kenward-Roger", kr=None) -> CoefficientBasis:
    r"""The coefficients, covariance and df rule that linear functions of ``record`` use.

    Parameters
    ----------
    record : LMMFit or LaplaceFit
    ddf : {"Kenward-Roger", "Satterthwaite", "asymptotic"}
        LMMs only (GLMMs and CLMMs are asymptotic): as emmeans' ``lmer.df``.
    kr : KRAdjusted, optional
        A Kenward–Roger adjustment already computed for ``record``.

    Notes
    -----
    A CLMM's coefficients are :math:`(\alpha_1, \dots, \alpha_{K-1}, \beta)` with ordinal's
    covariance; a model-matrix row :math:`x` (no intercept) becomes
    :math:`(-\tfrac1{K-1}, \dots, -\tfrac1{K-1}, x)`: emmeans' ``mode = "latent"``
    estimate :math:`x^\top\beta - \bar\alpha` (:func:`_clmm_latent`).
    """
    if isinstance(record, LMMFit):
        method = _ddf_key(ddf)
        if method == "Kenward-Roger":
            adj = kr if kr is not None else kr_adjusted(record)
            return CoefficientBasis(record.beta, adj.phi_adj,
                                    lambda L: np.array([kr_ddf(adj, row[None, :], q=1)[0]
                                                        for row in np.atleast_2d(L)]),
                                    _identity, method)
        if method == "Satterthwaite":
            return CoefficientBasis(record.beta, record.vcov_beta,
                                    lambda L: satterthwaite_df(record, np.atleast_2d(L)),
                                    _identity, method)
        return CoefficientBasis(record.beta, record.vcov_beta, _infinite_df, _identity, method)
    if not isinstance(record, LaplaceFit):
        raise TypeError(f"expected an LMMFit or LaplaceFit record, got {type(record).__name__}")
    if record.vcov_alpha_beta is not None:
        return _clmm_latent(record)
    return CoefficientBasis(record.beta, record.vcov_beta, _infinite_df, _identity, "asymptotic")


def _clmm_latent(record: LaplaceFit) -> CoefficientBasis:
    r"""emmeans' ``mode = "latent"`` for a cumulative link model: the row :math:`x` becomes
    :math:`(-\tfrac1{K-1}\mathbf 1, x)` on :math:`(\alpha, \beta)`, i.e. the estimate
    :math:`x^\top\beta - \bar\alpha` (ordinal's :math:`P(Y\le j) = F(\alpha_j - x^\top\beta)`:
    larger latent values mean higher categories)."""
    k = len(record.alpha)
    coef = np.concatenate([record.alpha, record.beta])

    def to_coef(L: np.ndarray) -> np.ndarray:
        L = np.atleast_2d(L)
        return np.hstack([np.full((len(L), k), -1.0 / k), L])

    return CoefficientBasis(coef, np.asarray(record.vcov_alpha_beta), _infinite_df, to_coef,
                            "asymptotic")


def t_quantile(level: float, df: np.ndarray) -> np.ndarray:
    """The two-sided ``level`` quantile of t with ``df`` (normal where df = ∞)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    df = np.asarray(df, float)
    p = 0.5 + level / 2
    return np.where(np.isinf(df), special.ndtri(p), special.stdtrit(np.where(np.isinf(df), 1, df), p))


def estimable(L_full: np.ndarray, X_full: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """Whether each row of ``L_full`` is in the row space of the full design ``X_full``
    (emmeans' ``nbasis`` check; all True for a full-rank design)."""
    _, s, Vt = np.linalg.svd(X_full, full_matrices=True)
    rank = int(np.sum(s > tol * max(s[0], 1.0))) if len(s) else 0
    null = Vt[rank:].T
    if null.shape[1] == 0:
        return np.ones(len(L_full), bool)
    scale = np.maximum(np.abs(L_full).max(axis=1), 1.0)
    return np.abs(L_full @ null).max(axis=1) <= 1e-6 * scale


def marginal_means(record, specs, by=None, at: dict | None = None, type: str = "link",
                   ddf: str = "Kenward-Roger", level: float = 0.95, kr=None) -> pd.DataFrame:
    r"""Estimated marginal means, as ``emmeans(fit, specs, by = by, at = at)``.

    Parameters
    ----------
    record : LMMFit or LaplaceFit
    specs : str or list of str
        The variables whose cells get a mean.
    by : str or list of str, optional
        Grouping variables (outermost in the rows).
    at : dict, optional
        Values of grid variables (default: factor levels, numeric means).
    type : {"link", "response"}
        GLMMs: ``"response"`` back-transforms (column ``response``, delta-method SE,
        back-transformed limits). LMMs and CLMMs have only the link / latent scale.
    ddf : {"Kenward-Roger", "Satterthwaite", "asymptotic"}
        LMM df (emmeans' default Kenward-Roger); ignored for GLMMs / CLMMs (df = ∞).
    level : float
        Confidence level of the (unadjusted) intervals.
    kr : KRAdjusted, optional

    Returns
    -------
    DataFrame
        The ``specs`` and ``by`` variables, ``emmean`` (or ``response``), ``SE``, ``df``,
        ``lower_CL``, ``upper_CL``; one row per cell in emmeans' order. Non-estimable cells of a
        rank-deficient fit are NaN.

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)",
    ...               mp.datasets.load("cake"))
    >>> marginal_means(fit.record, "recipe").round(3)["emmean"].tolist()
    [33.122, 31.644, 31.6]
    """
    cm = cell_means(reference_grid(record.spec, at), specs, by)
    basis = coefficient_basis(record, ddf, kr)
    out = _estimates(basis, cm.L, cm.offset)
    ok = estimable(cm.L_full, record.spec.fixed_design.matrix)
    if not ok.all():
        out.loc[~ok, :] = np.nan
    crit = t_quantile(level, out["df"].to_numpy())
    est, se = out["estimate"].to_numpy(), out["SE"].to_numpy()
    lower, upper = est - crit * se, est + crit * se
    name = "emmean"
    if type == "response":
        if not isinstance(record, LaplaceFit) or record.vcov_alpha_beta is not None:
            raise ValueError("type='response' is for GLMMs (an LMM's emmeans are on the response "
                             "scale already; a CLMM's are on the latent scale)")
        link = record.link
        se = np.abs(mu_eta(link, est)) * se
        est, lower, upper = link.linkinv_np(est), link.linkinv_np(lower), link.linkinv_np(upper)
        lower, upper = np.minimum(lower, upper), np.maximum(lower, upper)
        name = "response"
    elif type != "link":
        raise ValueError(f"type must be 'link' or 'response', got {type!r}")
    table = cm.cells.copy()
    table[name], table["SE"], table["df"] = est, se, out["df"].to_numpy()
    table["lower_CL"], table["upper_CL"] = lower, upper
    return table


def mu_eta(link, eta: np.ndarray) -> np.ndarray:
    """dμ/dη of a link at η (central differences of the NumPy inverse link, step 1e-6·max(1, |η|))."""
    eta = np.asarray(eta, float)
    h = 1e-6 * np.maximum(1.0, np.abs(eta))
    return (link.linkinv_np(eta + h) - link.linkinv_np(eta - h)) / (2 * h)


def _estimates(basis: CoefficientBasis, L: np.ndarray, offset: np.ndarray) -> pd.DataFrame:
    """Estimate, SE and df of each row of the model-matrix rows L (offset added)."""
    C = basis.to_coef(L)
    est = C @ basis.coef + offset
    se = np.sqrt(np.einsum("ij,jk,ik->i", C, basis.vcov, C))
    return pd.DataFrame({"estimate": est, "SE": se, "df": basis.df(C)})
