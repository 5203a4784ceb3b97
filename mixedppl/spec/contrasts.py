"""How formula variables become numbers: R's contrasts, ``poly``/``scale`` and variable evaluation.

Each ``contr_*`` function returns ``(matrix, column_suffixes)`` where ``matrix`` has one row per
factor level and ``column_suffixes`` are what R's ``model.matrix`` appends to the variable name
(``contr.treatment``: the level labels; ``contr.poly``: ``.L .Q .C ^4 …``; ``contr.sum`` and
``contr.helmert`` have no column names, so R numbers them ``1, 2, …``).

:func:`evaluate` computes one formula variable (a parsed expression from
:mod:`mixedppl.spec.design`: ``x``, ``log(z)``, ``I(x^2)``, ``scale(x)``, ``poly(x, 2)``,
``factor(g)``) on a DataFrame, giving a numeric array or a :class:`Factor` (labels + level order).
``scale`` and ``poly`` remember their fitted centring/scaling and coefficients in
``EvalState.params`` so new data are transformed as R's ``predvars`` do.

References
----------
R Core Team, ``src/library/stats/R/contrast.R`` (``contr.poly``, ``make.poly``),
``src/library/stats/R/contr.poly.R`` (``poly``, ``predict.poly``), ``base::scale``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..core.exceptions import ModelSpecError
from .splines import bs_basis, ns_basis

if TYPE_CHECKING:
    from .design import Node

__all__ = ["contr_treatment", "contr_sum", "contr_helmert", "contr_poly", "contr_sas",
           "contrast_matrix", "poly_fit", "poly_predict", "CONTRASTS", "CONSTANTS", "EvalState",
           "Factor", "evaluate", "r_label", "r_labels", "r_number"]

Contrast = tuple[np.ndarray, list[str]]
CONSTANTS = {"TRUE": True, "FALSE": False, "T": True, "F": False, "True": True, "False": False,
             "pi": np.pi, "Inf": np.inf, "NaN": np.nan}


def contr_treatment(levels: list[str]) -> Contrast:
    """R's ``contr.treatment``: indicator columns of every level but the first."""
    k = len(levels)
    return np.eye(k)[:, 1:], list(levels[1:])


def contr_sas(levels: list[str]) -> Contrast:
    """R's ``contr.SAS``: treatment coding with the last level as the baseline."""
    k = len(levels)
    return np.eye(k)[:, :-1], list(levels[:-1])


def contr_sum(levels: list[str]) -> Contrast:
    """R's ``contr.sum``: ``rbind(diag(k-1), -1)``; columns named ``1 … k-1``."""
    k = len(levels)
    mat = np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])
    return mat, [str(j + 1) for j in range(k - 1)]


def contr_helmert(levels: list[str]) -> Contrast:
    """R's ``contr.helmert``: column j is -1 on the first j levels, j on level j+1, 0 after."""
    k = len(levels)
    mat = np.zeros((k, k - 1))
    for j in range(1, k):
        mat[:j, j - 1] = -1.0
        mat[j, j - 1] = float(j)
    return mat, [str(j + 1) for j in range(k - 1)]


def _qr_raw(X: np.ndarray) -> np.ndarray:
    """``qr.qy(QR, diag(R))`` as in R: column j is the part of ``X[:, j]`` orthogonal to earlier ones."""
    Q, R = np.linalg.qr(X)
    return Q * np.diag(R)


def contr_poly(levels: list[str], scores: np.ndarray | None = None) -> Contrast:
    """R's ``contr.poly``: orthonormal polynomial contrasts on scores ``1 … k``.

    Examples
    --------
    >>> m, names = contr_poly(["a", "b", "c"])
    >>> names
    ['.L', '.Q']
    >>> (np.round(m[:, 0], 6) + 0.0).tolist()
    [-0.707107, 0.0, 0.707107]
    """
    k = len(levels)
    s = np.arange(1, k + 1, dtype=float) if scores is None else np.asarray(scores, float)
    y = s - s.mean()
    raw = _qr_raw(y[:, None] ** np.arange(k)[None, :])
    Z = raw / np.sqrt((raw ** 2).sum(axis=0))
    names = [".L", ".Q", ".C"] + [f"^{j}" for j in range(4, k)]
    return Z[:, 1:], names[: k - 1]


CONTRASTS = {"contr.treatment": contr_treatment, "contr.sum": contr_sum,
             "contr.helmert": contr_helmert, "contr.poly": contr_poly, "contr.SAS": contr_sas}


def contrast_matrix(spec, levels: list[str], ordered: bool, name: str) -> Contrast:
    """The contrast matrix R uses for a factor.

    Parameters
    ----------
    spec : str, ndarray, DataFrame or None
        A ``CONTRASTS`` name, a ``(k, m)`` matrix (columns named ``1 … m``, or a DataFrame's
        column names), or None for R's default (treatment, or poly when ``ordered``).
    levels : list of str
        The factor's levels (after unused levels were dropped).
    ordered : bool
        Whether the factor is ordered.
    name : str
        The variable's name, for error messages.
    """
    if len(levels) < 2:
        raise ModelSpecError(
            f"contrasts can be applied only to factors with 2 or more levels: {name!r} has "
            f"{len(levels)} level ({', '.join(levels) or 'none'}) in the data used")
    if spec is None:
        spec = "contr.poly" if ordered else "contr.treatment"
    if isinstance(spec, str):
        if spec not in CONTRASTS:
            raise ModelSpecError(f"unknown contrast {spec!r} for {name!r}; use one of "
                                 f"{', '.join(CONTRASTS)} or a matrix")
        return CONTRASTS[spec](levels)
    cols = [str(c) for c in spec.columns] if isinstance(spec, pd.DataFrame) else None
    mat = np.asarray(spec, dtype=float)
    if mat.ndim == 1:
        mat = mat[:, None]
    if mat.ndim != 2 or mat.shape[0] != len(levels):
        raise ModelSpecError(f"contrast matrix for {name!r} must have one row per level "
                             f"({len(levels)}: {', '.join(levels)}), got shape {mat.shape}")
    return mat, cols or [str(j + 1) for j in range(mat.shape[1])]


def poly_fit(x: np.ndarray, degree: int, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R's ``poly(x, degree)``: orthogonal polynomial columns and their ``coefs``.

    Returns
    -------
    Z : ndarray (n, degree)
    alpha : ndarray (degree,)
    norm2 : ndarray (degree + 2,)
        As R's ``attr(, "coefs")``, for :func:`poly_predict`.
    """
    if degree < 1:
        raise ModelSpecError(f"'degree' must be at least 1 in {name}")
    if degree >= len(np.unique(x)):
        raise ModelSpecError(f"'degree' must be less than number of unique points in {name}")
    xbar = x.mean()
    xc = x - xbar
    raw = _qr_raw(xc[:, None] ** np.arange(degree + 1)[None, :])
    norm2 = (raw ** 2).sum(axis=0)
    alpha = ((xc[:, None] * raw ** 2).sum(axis=0) / norm2 + xbar)[:degree]
    norm2 = np.concatenate([[1.0], norm2])
    Z = raw / np.sqrt(norm2[1:])
    return Z[:, 1:], alpha, norm2


def poly_predict(x: np.ndarray, alpha: np.ndarray, norm2: np.ndarray) -> np.ndarray:
    """R's three-term recurrence (``predict.poly``) for new ``x`` with stored ``coefs``."""
    degree = len(alpha)
    Z = np.ones((len(x), degree + 1))
    Z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        Z[:, i + 1] = (x - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
    Z = Z / np.sqrt(norm2[1:])
    return Z[:, 1:]


# ------------------------------------------------------------------------------------------------
# Evaluating formula variables on data (expression nodes come from mixedppl.spec.design)
# ------------------------------------------------------------------------------------------------

def r_number(v: float) -> str:
    """A number as R prints it in ``deparse``/``as.character`` (15 significant digits).

    Examples
    --------
    >>> [r_number(v) for v in (2.0, 0.5, 100000.0, 123456.0, 0.0001, 0.001)]
    ['2', '0.5', '1e+05', '123456', '1e-04', '0.001']
    """
    v = float(v)
    if v != v:
        return "NaN"
    if v in (np.inf, -np.inf):
        return "Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0"
    mant, exp = f"{v:.14e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    e = int(exp)
    sig = len(mant.replace("-", "").replace(".", ""))
    sci = f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    fixed = f"{v:.{max(0, sig - 1 - e)}f}"
    return fixed if len(fixed) <= len(sci) else sci


@dataclass
class Factor:
    """A categorical value during evaluation: one label per row (None = missing) and level order."""

    labels: np.ndarray
    levels: list[str]
    ordered: bool = False
    source: str = ""


def r_label(v) -> str | None:
    """R's ``as.character`` of one value (``TRUE``, ``2``, ``0.5``, ``"a"``); None when missing."""
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
        return None
    if isinstance(v, (bool, np.bool_)):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return r_number(v)
    return str(v)


def r_labels(values) -> np.ndarray:
    """:func:`r_label` of each value, as an object array."""
    return np.array([r_label(v) for v in values], dtype=object)


def _missing_column(name: str, data: pd.DataFrame, what: str) -> ModelSpecError:
    known = [str(c) for c in data.columns]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ModelSpecError(f"column {name!r} used in {what} is not in the data.{hint} "
                          f"Available columns: {', '.join(known[:20])}")


def _column(name: str, st: "EvalState"):
    if name not in st.data.columns:
        if name in CONSTANTS:
            return CONSTANTS[name]
        raise _missing_column(name, st.data, f"the formula {st.rhs!r}")
    s = st.data[name]
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = list(r_labels(s.cat.categories))
        codes = s.cat.codes.to_numpy()
        lab = np.array(cats + [None], dtype=object)[np.where(codes < 0, len(cats), codes)]
        return Factor(lab, cats, bool(s.cat.ordered), name)
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=float, na_value=np.nan)
    lab = r_labels(s.astype(object).where(s.notna(), None))
    return Factor(lab, sorted({v for v in lab if v is not None}), False, name)


def _num(v, node: Node):
    """Numeric value of an operand, or a ModelSpecError naming the call and the column."""
    if isinstance(v, Factor):
        what = f"column {v.source!r}" if v.source else "a factor"
        raise ModelSpecError(f"{node} needs numeric values, but {what} is categorical; "
                             "use it as a factor term or convert it to numbers first")
    if isinstance(v, str):
        raise ModelSpecError(f"{node} needs numeric values, got the string {v!r}")
    return np.asarray(v, dtype=float) if isinstance(v, np.ndarray) else float(v)


_MATH = {"log": np.log, "log10": np.log10, "log2": np.log2, "log1p": np.log1p, "exp": np.exp,
         "expm1": np.expm1, "sqrt": np.sqrt, "abs": np.abs, "sin": np.sin, "cos": np.cos,
         "tan": np.tan, "floor": np.floor, "ceiling": np.ceil, "sign": np.sign,
         "as.numeric": lambda x: x, "as.double": lambda x: x}
_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power,
          "%%": np.mod, "%/%": np.floor_divide}
_COMPARE = {"==": np.equal, "!=": np.not_equal, "<": np.less, ">": np.greater,
            "<=": np.less_equal, ">=": np.greater_equal}
_FACTOR_FUNS = ("factor", "as.factor", "ordered", "as.ordered")
_SUPPORTED = sorted(list(_MATH) + list(_FACTOR_FUNS) + ["I", "offset", "scale", "poly", "bs", "ns"])


@dataclass
class EvalState:
    """Evaluation context: the data, whether we are fitting, and remembered ``scale``/``poly`` state."""

    data: pd.DataFrame
    fit: bool
    params: dict
    rhs: str
    preset: dict | None = None  # str(call) -> params fixed elsewhere (a Dask pass over the rows)
    given: dict | None = None   # id(node) -> its value (the collected argument of a call)


def evaluate(node: Node, st: EvalState):
    """Value of an expression on ``st.data``: a float/bool array, a scalar or a :class:`Factor`."""
    k, a = node.kind, node.args
    if st.given and id(node) in st.given:
        return st.given[id(node)]
    if k in ("num", "str"):
        return node.value
    if k == "name":
        return _column(node.value, st)
    if k == "paren":
        return evaluate(a[0], st)
    if k == "un":
        x = evaluate(a[0], st)
        if node.value == "!":
            return np.logical_not(np.asarray(_num(x, node), dtype=bool))
        return -_num(x, node) if node.value == "-" else _num(x, node)
    if k == "bin":
        return _eval_binary(node, st)
    return _eval_call(node, st)


def _eval_binary(node: Node, st: EvalState):
    op = node.value
    x, y = (_num(evaluate(v, st), node) for v in node.args)
    if op in _ARITH:
        return _ARITH[op](x, y)
    if op in _COMPARE:
        return _COMPARE[op](x, y)
    if op in ("&", "&&", "|", "||"):
        fn = np.logical_and if op.startswith("&") else np.logical_or
        return fn(np.asarray(x, bool), np.asarray(y, bool))
    raise ModelSpecError(f"operator {op!r} is not supported inside a formula term ({node})")


def _arg(node: Node, name: str, pos: int, default=None):
    """The argument called ``name`` or the ``pos``-th unnamed one (pos counts from 0)."""
    for key, v in zip(node.keys, node.args):
        if key == name:
            return v
    unnamed = [v for key, v in zip(node.keys, node.args) if key is None]
    return unnamed[pos] if pos < len(unnamed) else default


def _const(v: Node | None, default, node: Node):
    if v is None:
        return default
    if v.kind == "name" and v.value in CONSTANTS:
        return CONSTANTS[v.value]
    if v.kind == "num" or (v.kind == "un" and v.args[0].kind == "num"):
        return float(str(v).rstrip("L"))
    raise ModelSpecError(f"argument {str(v)} of {node} must be a constant")


def _eval_call(node: Node, st: EvalState):
    fn = node.value
    if fn not in _SUPPORTED:
        raise ModelSpecError(f"function {fn}() in {str(node)!r} is not supported in a formula; "
                             f"supported: {', '.join(_SUPPORTED)}")
    if not node.args:
        raise ModelSpecError(f"{node} needs an argument")
    if fn == "scale":
        return _scale(node, st)
    if fn == "poly":
        return _poly(node, st)
    if fn in ("bs", "ns"):
        return _spline(node, st)
    x = evaluate(node.args[0], st)
    if fn in _FACTOR_FUNS:
        return _as_factor(x, fn, node)
    if fn == "I":
        return x
    x = _num(x, node)
    if fn == "offset":
        return x
    if fn == "log" and len(node.args) > 1:
        return np.log(x) / np.log(_const(_arg(node, "base", 1), np.e, node))
    return _MATH[fn](x)


def _as_factor(x, fn: str, node: Node) -> Factor:
    ordered = fn in ("ordered", "as.ordered")
    if isinstance(x, Factor):
        present = set(x.labels)
        return Factor(x.labels, [l for l in x.levels if l in present], ordered or x.ordered,
                       x.source)
    arr = np.asarray(x) if np.asarray(x).dtype == bool else np.atleast_1d(_num(x, node))
    uniq = np.unique(arr[~pd.isna(arr)])
    return Factor(r_labels(arr), [r_label(u) for u in uniq], ordered, str(node.args[0]))


def _fitting(node: Node, st: EvalState) -> bool:
    """Whether ``node``'s data-dependent parameters are computed here: not when not fitting, nor
    when they were fixed beforehand (``st.preset``, keyed by the call's text), in which case they
    are remembered as if fitted."""
    if st.fit and st.preset and str(node) in st.preset:
        st.params[id(node)] = st.preset[str(node)]
        return False
    return st.fit


def scale_arguments(node: Node) -> tuple:
    """The ``center`` and ``scale`` arguments of a ``scale()`` call (True, False or a number)."""
    return (_const(_arg(node, "center", 1), True, node), _const(_arg(node, "scale", 2), True, node))


def constant_scale_error(node: Node) -> ModelSpecError:
    """The error of ``scale(x)`` on a constant ``x``."""
    return ModelSpecError(
        f"{node}: {node.args[0]} has standard deviation 0 in the data used (it is constant), so "
        f"scale() would divide by zero; drop the term or use scale({node.args[0]}, scale = FALSE)")


def _scale(node: Node, st: EvalState) -> np.ndarray:
    """R's ``scale(x, center = TRUE, scale = TRUE)``; the fitted centre and scale are remembered."""
    x = _num(evaluate(node.args[0], st), node)
    if _fitting(node, st):
        center, scale = scale_arguments(node)
        c = float(np.nanmean(x)) if center is True else (None if center is False else center)
        xc = x - c if c is not None else x
        nobs = int(np.sum(~np.isnan(xc)))
        s = (float(np.sqrt(np.nansum(xc ** 2) / max(1, nobs - 1))) if scale is True
             else (None if scale is False else scale))
        if scale is True and (not s > 0 or (center is True and np.nanmin(x) == np.nanmax(x))):
            # (a constant 0.1 has a mean that is not exactly 0.1, so s is 1e-17, not 0)
            raise constant_scale_error(node)
        st.params[id(node)] = (c, s)
    c, s = st.params[id(node)]
    out = x - c if c is not None else x
    return out / s if s is not None else out


def _poly(node: Node, st: EvalState) -> np.ndarray:
    """R's ``poly(x, degree)`` (orthogonal, or ``raw = TRUE``); coefs remembered for new data."""
    x = np.asarray(_num(evaluate(node.args[0], st), node), dtype=float)
    degree = int(_const(_arg(node, "degree", 1), 1.0, node))
    if _const(_arg(node, "raw", 99), False, node):
        return x[:, None] ** np.arange(1, degree + 1)[None, :]
    if _fitting(node, st):
        Z, alpha, norm2 = poly_fit(x, degree, str(node))
        st.params[id(node)] = (alpha, norm2)
        return Z
    return poly_predict(x, *st.params[id(node)])


def _const_vector(v: Node | None, node: Node):
    """A constant or ``c(…)`` of constants (``knots = c(2, 5)``), or None."""
    if v is None:
        return None
    if v.kind == "call" and v.value == "c":
        return tuple(float(_const(a, None, node)) for a in v.args)
    return (float(_const(v, None, node)),)


_SPLINE_ARGS = {"bs": ("df", "knots", "degree", "intercept", "Boundary.knots"),
                "ns": ("df", "knots", "intercept", "Boundary.knots")}


def _spline(node: Node, st: EvalState) -> np.ndarray:
    """R's ``splines::bs`` / ``ns``: the basis on the fitted rows; the knots found there are
    remembered and reused for new data, as R's ``makepredictcall``."""
    fn = node.value
    names = _SPLINE_ARGS[fn]
    for key in node.keys:
        if key is not None and key not in names:
            raise ModelSpecError(f"{node}: {fn}() has no argument {key!r}; "
                                 f"arguments: {', '.join(names)}")
    x = np.asarray(_num(evaluate(node.args[0], st), node), dtype=float)
    if _fitting(node, st):
        df = _const(_arg(node, "df", 1), None, node)
        knots = _const_vector(_arg(node, "knots", 2), node)
        if fn == "bs":
            degree = int(_const(_arg(node, "degree", 3), 3.0, node))
            intercept = bool(_const(_arg(node, "intercept", 4), False, node))
            boundary = _const_vector(_arg(node, "Boundary.knots", 5), node)
            basis, spec = bs_basis(x, None if df is None else int(df), knots, degree,
                                   intercept, boundary, name=str(node))
        else:
            intercept = bool(_const(_arg(node, "intercept", 3), False, node))
            boundary = _const_vector(_arg(node, "Boundary.knots", 4), node)
            basis, spec = ns_basis(x, None if df is None else int(df), knots, intercept,
                                   boundary, name=str(node))
        st.params[id(node)] = spec
        return basis
    return st.params[id(node)](x)

