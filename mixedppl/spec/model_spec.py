"""ModelSpec: everything a graph builder needs, built once from a formula and a DataFrame.

``formula + DataFrame → ModelSpec(y, X, [ReTerm …], offset, weights)``. Random terms are ordered as
lme4 orders them (decreasing number of levels, ties in formula order), so θ lines up with
``getME(fit, "theta")``. The spec holds no PyTensor or PyMC objects.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..core.exceptions import ModelSpecError, RankDeficiencyWarning
from ..families.base import ResponseReader
from ..families.gaussian import GAUSSIAN
from .design import Design, model_matrix, rhs_variables
from .formula import ParsedFormula, parse_formula
from .frame import check_arguments, check_columns, check_finite, model_frame, numeric_vector
from .reterm import ReTerm, build_reterm

__all__ = ["ModelSpec", "build_spec", "drop_rank_deficient"]


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A parsed, validated model: response, fixed-effects matrix and random terms.

    Attributes
    ----------
    formula : str
    parsed : ParsedFormula
    y : ndarray (n,)
        Response.
    X : ndarray (n, p)
        Fixed-effects model matrix (rank-deficient columns already dropped).
    fe_names : list of str
        lme4's fixed-effect names.
    terms : tuple of ReTerm
        Random terms in lme4's order.
    offset : ndarray (n,)
        Offset (zeros when none).
    weights : ndarray (n,)
        Prior weights (ones when none).
    fixed_design : Design
        Rebuilds X for new data (``predict``).
    keep : ndarray of bool
        Rows of the user's data that were used.
    dropped_columns : list of str
        Fixed-effect columns dropped for rank deficiency.
    data : DataFrame
        A reference (not a copy) to the user's data, for ``update`` and refits with a new formula.
    build_kwargs : dict
        The weights / offset / contrasts / na_action the spec was built with.
    row_index : Index
        The user's row labels (``data.index``) of the rows used, in order: ``fitted()``,
        ``residuals()`` and ``predict()`` are indexed by it.
    data_index : Index
        The row labels of the whole of the user's data (``na_action="exclude"`` pads results to it).
    na_action : {"omit", "exclude", "raise"}
        How rows with missing values were handled: ``"exclude"`` (R's ``na.exclude``) makes
        per-row results one value per row of the user's data, NaN on the dropped rows.
    """

    formula: str
    parsed: ParsedFormula
    y: np.ndarray
    X: np.ndarray
    fe_names: list[str]
    terms: tuple[ReTerm, ...]
    offset: np.ndarray
    weights: np.ndarray
    fixed_design: Design = field(repr=False)
    keep: np.ndarray = field(repr=False)
    dropped_columns: list[str] = field(default_factory=list)
    response_name: str = ""
    data: pd.DataFrame | None = field(default=None, repr=False)
    build_kwargs: dict = field(default_factory=dict, repr=False)
    row_index: pd.Index | None = field(default=None, repr=False)
    data_index: pd.Index | None = field(default=None, repr=False)
    na_action: str = "omit"

    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def n_theta(self) -> int:
        return sum(t.n_theta for t in self.terms)

    @property
    def q(self) -> int:
        return sum(t.q for t in self.terms)

    def theta_slices(self) -> list[slice]:
        """Where each term's θ sits in the full θ vector."""
        out, start = [], 0
        for t in self.terms:
            out.append(slice(start, start + t.n_theta))
            start += t.n_theta
        return out

    def theta_names(self) -> list[str]:
        return [name for t in self.terms for name in t.theta_names()]

    def theta_mirror(self) -> dict[int, list[int]]:
        """Diagonal θ index → the θ below it in its column of T (for the optimiser's
        boundary checks: negating them with it leaves the model unchanged)."""
        out, start = {}, 0
        for t in self.terms:
            out.update({start + k: [start + m for m in v] for k, v in t.theta_mirror().items()})
            start += t.n_theta
        return out

    def theta_lower(self) -> np.ndarray:
        return np.concatenate([t.theta_lower() for t in self.terms])

    def theta_start(self) -> np.ndarray:
        return np.concatenate([t.theta_start() for t in self.terms])

    def with_response(self, y: np.ndarray) -> "ModelSpec":
        """The same model with a new response (bootstrap, refit): nothing else is rebuilt."""
        y = numeric_vector(y, "the new response", self.n)
        if not np.all(np.isfinite(y)):
            raise ModelSpecError("the new response has missing or infinite values")
        return _replace(self, y=y)

    def with_weights(self, weights: np.ndarray) -> "ModelSpec":
        """The same model with new prior weights (a zero weight removes a row: case deletion)."""
        w = _check_weights(numeric_vector(weights, "weights", self.n))
        return _replace(self, weights=w)


def _replace(spec: ModelSpec, **changes) -> ModelSpec:
    from dataclasses import replace
    return replace(spec, **changes)


def _check_weights(w: np.ndarray, name: str = "weights") -> np.ndarray:
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ModelSpecError(f"{name} must be finite and non-negative "
                             f"({int(np.sum(~np.isfinite(w) | (w < 0)))} value(s) are not)")
    if not np.any(w > 0):
        raise ModelSpecError(f"all {name} are zero")
    return w


def _vector_name(arg, name: str) -> str:
    """How the user knows a weights / offset argument: its column or the argument."""
    return f"{name} column {arg!r}" if isinstance(arg, str) else f"{name}="


def drop_rank_deficient(X: np.ndarray, names: list[str], tol: float = 1e-7) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop columns that are linear combinations of earlier ones, as lme4 (``qr`` with tol 1e-7).

    Columns are kept left to right; a column is dropped when its residual after projecting on the
    kept columns is below ``tol`` times its norm (LINPACK's limited pivoting moves those to the end).
    """
    kept, dropped, Q = [], [], np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        col = X[:, j]
        norm = np.linalg.norm(col)
        resid = col - Q @ (Q.T @ col) if Q.shape[1] else col
        rnorm = np.linalg.norm(resid)
        if norm == 0 or rnorm <= tol * norm:
            dropped.append(names[j])
            continue
        Q = np.column_stack([Q, resid / rnorm])
        kept.append(j)
    return X[:, kept], [names[j] for j in kept], dropped


def _used_columns(parsed: ParsedFormula) -> list[str]:
    cols = list(rhs_variables(f"0 + {parsed.response}")) if parsed.response else []
    cols += rhs_variables(parsed.fixed)
    for t in parsed.random:
        cols += rhs_variables(t.lhs) + list(t.group_vars)
    return list(dict.fromkeys(cols))


def _resolve_vector(arg, data: pd.DataFrame, name: str) -> np.ndarray | None:
    if arg is None:
        return None
    if isinstance(arg, str):
        check_columns(data, [arg], f"{name}=")
        return numeric_vector(data[arg], f"{name} column {arg!r}", len(data))
    return numeric_vector(arg, name, len(data))


def _check_lme4_counts(terms: tuple[ReTerm, ...], n: int, allow_n: bool = False,
                       nobs_vs_nRE: str = "raise", labels: list[str] | None = None) -> None:
    """lme4's ``checkNlevels`` (``check.nobs.vs.nlev``) and ``checkZdims`` (``check.nobs.vs.nRE``).

    Parameters
    ----------
    terms : tuple of ReTerm
    n : int
        Number of observations.
    allow_n : bool
        lme4's ``allow.n``: False for lmer (levels < n and random effects < n per term), True for
        glmer (``<=``: a level or a random effect per observation is allowed).
    nobs_vs_nRE : {"ignore", "warn", "raise"}
        What to do when a term has too many random effects (lme4's ``check.nobs.vs.nRE``).
    labels : list of str, optional
        Each term as the formula writes it (``"1 + x | g"``), for the messages.
    """
    bad = [t.group for t in terms if (t.n_levels > n if allow_n else t.n_levels >= n)]
    if bad:
        cmp = "<=" if allow_n else "<"
        counts = ", ".join(f"'{t.group}' ({t.n_levels})" for t in terms if t.group in bad)
        raise ModelSpecError(
            f"number of levels of grouping factor {counts} must be {cmp} number of "
            f"observations ({n}) (lme4: number of levels of each grouping factor must be {cmp} "
            f"number of observations (problems: {', '.join(dict.fromkeys(bad))})): the random "
            "effect and the residual are not identifiable; group the data more coarsely or drop "
            "the term")
    if nobs_vs_nRE == "ignore":
        return
    for k, t in enumerate(terms):
        if n < t.q if allow_n else n <= t.q:
            cmp, rstr = ("<", "") if allow_n else (
                "<=", " and the residual variance (or scale parameter)")
            label = labels[k] if labels else f"{' + '.join(t.column_names)} | {t.group}"
            message = (f"number of observations (={n}) {cmp} number of random effects (={t.q}) "
                       f"for term ({label}); the random-effects parameters{rstr} are "
                       "probably unidentifiable. Simplify the term, or pass "
                       "control=mp.Control(check_nobs_vs_nRE='warn') (or 'ignore') to fit anyway")
            if nobs_vs_nRE == "raise":
                raise ModelSpecError(message)
            warnings.warn(message, UserWarning, stacklevel=4)


def build_spec(formula: str, data: pd.DataFrame, *, weights=None, offset=None,
               na_action: str = "omit", contrasts: dict | None = None,
               require_random: bool = True, response=None, lmm_checks: bool = True,
               allow_n: bool = False, nobs_vs_nRE: str = "raise") -> ModelSpec:
    """Parse, check and build the :class:`ModelSpec` of an lme4 formula on a DataFrame.

    Parameters
    ----------
    formula : str
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : DataFrame
        Not modified.
    weights, offset : str or array-like, optional
        Column name or one value per row of ``data``.
    na_action : {"omit", "exclude", "raise"}
        Rows with a missing value in a used column: dropped (``"omit"``, ``"exclude"``) or an
        error. With ``"exclude"`` per-row results are padded with NaN to the user's rows.
    contrasts : dict, optional
        Column → contrast (as R's ``contrasts=``).
    require_random : bool
        Raise when the formula has no random term (lme4 does).
    response : callable, optional
        ``response(frame, expr) -> ndarray``, a family's reader
        (:class:`~mixedppl.families.base.ResponseReader`); default the Gaussian's.
    lmm_checks : bool
        Apply lme4's identifiability checks (:func:`_check_lme4_counts`) and, with the default
        gaussian response, refuse a constant response.
    allow_n, nobs_vs_nRE
        Passed to :func:`_check_lme4_counts`: lmer's ``False, "raise"``, glmer's ``True, "raise"``.
    """
    check_arguments(formula, data, "build_spec")
    parsed = parse_formula(formula)
    if require_random and not parsed.random:
        raise ModelSpecError(
            f"formula {formula!r} has no random-effects terms such as '(1 | group)'; "
            "for a model without random effects use statsmodels' OLS/GLM")
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    columns = _used_columns(parsed)
    check_columns(data, columns, f"formula {formula!r}")
    w_all = _resolve_vector(weights, data, "weights")
    o_all = _resolve_vector(offset, data, "offset")
    extra = np.zeros(len(data), bool)
    for v, arg, name in ((w_all, weights, "weights"), (o_all, offset, "offset")):
        if v is not None:
            check_finite(v, _vector_name(arg, name))
            extra |= np.isnan(v)
    frame, keep = model_frame(data, columns, na_action, extra)
    y = (response or ResponseReader(GAUSSIAN.read_response))(frame, parsed.response)
    check_finite(np.asarray(y, float), f"response {parsed.response!r}")
    if response is None and lmm_checks and np.ptp(y) == 0:
        raise ModelSpecError(
            f"response {parsed.response!r} is constant (every used row is {y[0]:g}): there is "
            "no variation to model; check the column and the rows kept")
    fixed = model_matrix(parsed.fixed, frame, contrasts=contrasts)
    for j, name in enumerate(fixed.column_names):
        check_finite(np.asarray(fixed.matrix[:, j], float), f"fixed-effect column {name!r}")
    X, fe_names, dropped = drop_rank_deficient(np.asarray(fixed.matrix, float),
                                               list(fixed.column_names))
    if dropped:
        warnings.warn(f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
                      f"column(s): {', '.join(dropped)}", RankDeficiencyWarning, stacklevel=3)
    terms = tuple(build_reterm(t.lhs, t.group, t.group_vars, frame, contrasts)
                  for t in parsed.random)
    order = sorted(range(len(terms)), key=lambda k: -terms[k].n_levels)
    terms = tuple(terms[k] for k in order)
    labels = [f"{parsed.random[k].lhs} | {parsed.random[k].group}" for k in order]
    n = len(frame)
    w = np.ones(n) if w_all is None else _check_weights(w_all[keep], _vector_name(weights, "weights"))
    off = np.zeros(n) if fixed.offset is None else np.asarray(fixed.offset, float)
    check_finite(off, "the formula's offset(...) term")
    if o_all is not None:
        off = off + o_all[keep]
    if lmm_checks:
        _check_lme4_counts(terms, n, allow_n, nobs_vs_nRE, labels)
    return ModelSpec(formula=formula, parsed=parsed, y=np.asarray(y, float), X=np.ascontiguousarray(X),
                     fe_names=fe_names, terms=terms, offset=off, weights=w, fixed_design=fixed,
                     keep=keep, dropped_columns=dropped, response_name=parsed.response,
                     data=data, build_kwargs={"weights": weights, "offset": offset,
                                              "contrasts": contrasts, "na_action": na_action},
                     row_index=data.index[keep], data_index=data.index.copy(),
                     na_action=na_action)
