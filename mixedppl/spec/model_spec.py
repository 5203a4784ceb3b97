"""ModelSpec: everything a graph builder needs, built once from a formula and a DataFrame.

``formula + DataFrame + family → ModelSpec(y, X, [ReTerm …], offset, weights, family, link)``.
One builder, :func:`build_spec`, serves every family: it asks the family to read and check its
response (0/1, factor, ``cbind``, proportions with weights, counts, ordinal levels) and applies
lme4's level / random-effect count checks with the family's ``allow.n`` rule; the cumulative
family's thresholds take the intercept's place. Random terms are ordered as lme4 orders them
(decreasing number of levels, ties in formula order), so θ lines up with ``getME(fit,
"theta")``. The spec holds no PyTensor or PyMC objects, and fitting never reads the data again.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..core.control import Control, as_control
from ..core.exceptions import ModelSpecError, RankDeficiencyWarning
from ..core.threads import blas_threads_for
from ..families import GAUSSIAN, LINKS, Family, Link, get_family
from ..families.registry import family_parts
from ..families.zi_disp import unwrap_parts, with_parts
from .design import Design, model_matrix, rhs_variables
from .formula import ParsedFormula, parse_formula, split_top_level
from .frame import check_arguments, check_columns, check_finite, model_frame, numeric_vector
from .response import response_input
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
    family : Family
        The family that read the response (:data:`~mixedppl.families.GAUSSIAN` for an LMM; the
        cumulative family knows its K levels).
    link : Link
    trials : ndarray or None
        Number of trials of a ``cbind(successes, failures)`` response (y is then the proportion).
    status : ndarray or None
        Event indicator (1 event, 0 censored) of a ``Surv(time, status)`` response (y is then
        the time).
    strata : ndarray of int or None
        Stratum codes (0 … G − 1) from ``strata(...)`` terms of the fixed part (a Cox model's
        separate baseline hazards; no design column).
    source : DaskSource or None
        For a model of a Dask DataFrame (:func:`~mixedppl.spec.dask_spec.build_dask_spec`): where
        the rows are; the spec itself then holds no rows (``y``, ``X``, codes of length 0).
    aux_designs, aux_names, aux_transforms : dict
        The extra fixed-effects designs of glmmTMB's ``ziformula`` / ``dispformula``, by the
        names the family's graphs take them (``"X_zi"``, ``"X_disp"``): the matrix, its column
        names and its :class:`~mixedppl.spec.design.Design` (new data). Empty otherwise.
    zi_terms : tuple of ReTerm
        The random terms of glmmTMB's ``ziformula`` (``~ mined + (1 | site)``), in lme4's order
        (most levels first); they enter the zero-inflation predictor η_zi and are fitted with the
        conditional terms' random effects jointly (:mod:`mixedppl.fit.laplace_zire`). Empty
        otherwise.
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
    family: Family = field(default=GAUSSIAN, repr=False)
    link: Link = field(default=LINKS["identity"], repr=False)
    trials: np.ndarray | None = field(default=None, repr=False)
    status: np.ndarray | None = field(default=None, repr=False)
    strata: np.ndarray | None = field(default=None, repr=False)
    source: object | None = field(default=None, repr=False)
    aux_designs: dict = field(default_factory=dict, repr=False)
    aux_names: dict = field(default_factory=dict, repr=False)
    aux_transforms: dict = field(default_factory=dict, repr=False)
    zi_terms: tuple[ReTerm, ...] = field(default=(), repr=False)

    @property
    def n(self) -> int:
        """Rows used: ``len(y)``, or for a template spec of a Dask DataFrame (no rows in memory)
        the number over all partitions."""
        return self.y.shape[0] if self.source is None else self.source.n

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

    @property
    def structured(self) -> bool:
        """Whether some term has a covariance structure other than lme4's ``us``."""
        return any(t.structured for t in self.terms)

    def lower_triangle(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """lme4's θ layout (every T_k's lower triangle, what the graphs take) and its Jacobian
        with respect to θ (block diagonal; the identity without structured terms).

        Examples
        --------
        >>> import mixedppl as mp
        >>> d = mp.datasets.load("sleepstudy")
        >>> spec = mp.Model("Reaction ~ Days + diag(Days | Subject)", d).spec
        >>> full, J = spec.lower_triangle(np.array([1.0, 0.5]))
        >>> full.tolist(), J.shape
        ([1.0, 0.0, 0.5], (3, 2))
        """
        parts = [t.lower_triangle(np.asarray(theta, float)[s])
                 for t, s in zip(self.terms, self.theta_slices())]
        full = np.concatenate([p[0] for p in parts])
        J = np.zeros((len(full), len(theta)))
        r = 0
        for (f, j), s in zip(parts, self.theta_slices()):
            J[r:r + len(f), s] = j
            r += len(f)
        return full, J

    def graph_theta(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """θ in the graphs' layout (:meth:`lower_triangle`) and its Jacobian; without structured
        terms θ itself and None (the identity).

        Examples
        --------
        >>> import mixedppl as mp
        >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
        >>> spec.graph_theta(np.array([1.0, 0.5, 2.0]))[1] is None
        True
        """
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        if not self.structured:
            return theta, None
        full, J = self.lower_triangle(theta)
        return np.ascontiguousarray(full), J

    def theta_start(self) -> np.ndarray:
        return np.concatenate([t.theta_start() for t in self.terms])

    @property
    def levels(self) -> list[str] | None:
        """The ordered response categories of an ordinal model (None otherwise)."""
        return getattr(self.family, "levels", None)

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """``(y, n)`` as the family's graphs take them: successes and trials for the binomial
        (proportion × trials × weights), category codes or the response and the prior weights
        otherwise (:meth:`~mixedppl.families.base.Family.counts`).

        Examples
        --------
        >>> import mixedppl as mp
        >>> spec = build_spec("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...                   mp.datasets.load("cbpp"), "binomial")
        >>> y, n = spec.counts()
        >>> int(y.sum()), int(n.sum()), spec.link.name
        (99, 842, 'logit')
        """
        return self.family.counts(self.y, self.trials, np.asarray(self.weights, float),
                                  self.response_name)

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


def split_strata(fixed: str) -> tuple[str, list[str]]:
    """The fixed part without its ``strata(...)`` terms, and the variables those name.

    Examples
    --------
    >>> split_strata("1 + age + strata(sex, centre)")
    ('1 + age', ['sex', 'centre'])
    >>> split_strata("1 + age")
    ('1 + age', [])
    """
    kept, variables = [], []
    for term in split_top_level(fixed, "+"):
        text = term.strip()
        if text.startswith("strata(") and text.endswith(")"):
            args = [a.strip() for a in split_top_level(text[7:-1], ",")]
            if not all(args):
                raise ModelSpecError(f"{text!r}: give strata(variable, ...)")
            variables += args
        else:
            kept.append(term)
    return "+".join(kept).strip() or "1", variables


def stratum_codes(frame: pd.DataFrame, variables: list[str]) -> np.ndarray:
    """Integer codes (0 … G − 1) of the combinations of ``variables`` (survival's
    ``strata(a, b)``: one stratum per observed combination)."""
    missing = [v for v in variables if v not in frame.columns]
    if missing:
        raise ModelSpecError(f"strata(): {missing} must be columns of the data (expressions are "
                             "not read inside strata())")
    keys = pd.MultiIndex.from_frame(frame[variables].astype(str)) if len(variables) > 1 \
        else frame[variables[0]]
    return pd.factorize(keys, sort=True)[0].astype(np.int64)


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
        if t.structured:   # glmmTMB's syntax: glmmTMB has no such check (ar1 with one row per
            continue       # level and time is identifiable through its correlation)
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


def _drop_intercept(X: np.ndarray, fe_names: list[str], dropped: list[str]
                    ) -> tuple[np.ndarray, list[str], list[str]]:
    """X without the intercept (the thresholds take its place) and without the columns aliased
    with it (a warning names them)."""
    names = [n for n in fe_names if n != "(Intercept)"]
    X = X[:, [fe_names.index(n) for n in names]]
    Xa, kept, aliased = drop_rank_deficient(np.hstack([np.ones((X.shape[0], 1)), X]),
                                            ["(Intercept)"] + names)
    if aliased:
        warnings.warn(f"column(s) {aliased} are aliased with the thresholds and were dropped",
                      RankDeficiencyWarning, stacklevel=4)
    return Xa[:, 1:], kept[1:], list(dropped) + ["(Intercept)"] + list(aliased)


def build_spec(formula: str, data: pd.DataFrame, family: str | Family = "gaussian",
               link: str | None = None, *, weights=None, offset=None, na_action: str = "omit",
               contrasts: dict | None = None, control: Control | dict | None = None,
               require_random: bool = True, levels=None,
               threshold: str | None = None, ziformula: str | None = None,
               dispformula: str | None = None) -> ModelSpec:
    """Parse, check and build the :class:`ModelSpec` of an lme4 formula for any family.

    Parameters
    ----------
    formula : str
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : DataFrame
        Not modified.
    family : str or Family
        ``"gaussian"`` (default), a GLMM family, ``"cumulative"``, or a family object
        (:func:`~mixedppl.families.get_family`).
    link : str, optional
        Default: the family's first.
    weights, offset : str or array-like, optional
        Column name or one value per row of ``data``.
    na_action : {"omit", "exclude", "raise"}
        Rows with a missing value in a used column: dropped (``"omit"``, ``"exclude"``) or an
        error. With ``"exclude"`` per-row results are padded with NaN to the user's rows.
    contrasts : dict, optional
        Column → contrast (as R's ``contrasts=``), for every family.
    control : Control or dict, optional
        Its ``check_nobs_vs_nRE`` (default: the family's fit's, as lme4's — "raise" for lmer and
        glmer, "ignore" for clmm).
    require_random : bool
        Raise when the formula has no random term (lme4 does).
    levels, threshold
        Options of the cumulative family (the order of the categories, the threshold
        structure).
    ziformula, dispformula : str, optional
        glmmTMB's zero-inflation (hurdle, for a ``truncated_*`` family) and dispersion
        formulas, one-sided (``"~ mined"``), fixed effects only; the family becomes a
        :class:`~mixedppl.families.zi_disp.ZIDispFamily` and the designs ``spec.aux_designs``.

    Notes
    -----
    The family reads the response (:meth:`~mixedppl.families.base.Family.read_response`) and
    is bound to it (the cumulative family learns its levels); lme4's ``checkNlevels`` /
    ``checkZdims`` follow with the family's ``allow.n``; then the family checks the response
    (support, lme4's ``check.response.not.const``). For the cumulative family the intercept and
    columns aliased with it are dropped (the thresholds absorb them).

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = build_spec("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"),
    ...                   "cumulative")
    >>> spec.fe_names, spec.family.K, spec.levels
    (['tempwarm', 'contactyes'], 5, ['1', '2', '3', '4', '5'])
    """
    data = check_arguments(formula, data, "build_spec")
    family, ziformula = family_parts(family, ziformula)      # "zip", "hurdle_poisson", …
    fam, lnk = get_family(unwrap_parts(family), link, levels=levels, threshold=threshold)
    control = as_control(control, fam.fit_kind)
    parsed = parse_formula(formula)
    parts, zi_random = _part_formulas(parsed, ziformula, dispformula)
    if require_random and not parsed.random and not zi_random:
        raise ModelSpecError(fam.no_random_message.format(formula=formula))
    check_columns(data, _used_columns(parsed), f"formula {formula!r}")
    for key, (text, rhs) in parts.items():      # a part's unknown column is named with its formula
        part_columns = list(rhs_variables(rhs)) + (
            [c for t in zi_random for c in _term_columns(t)] if key == "X_zi" else [])
        check_columns(data, part_columns, f"{_PARTS[key]} {text!r}")
    columns = list(dict.fromkeys(_used_columns(parsed)
                                 + [c for _, rhs in parts.values() for c in rhs_variables(rhs)]
                                 + [c for t in zi_random for c in _term_columns(t)]))
    w_all = _resolve_vector(weights, data, "weights")
    o_all = _resolve_vector(offset, data, "offset")
    extra = np.zeros(len(data), bool)
    for v, arg, name in ((w_all, weights, "weights"), (o_all, offset, "offset")):
        if v is not None:
            check_finite(v, _vector_name(arg, name))
            extra |= np.isnan(v)
    frame, keep = model_frame(data, columns, na_action, extra)
    response = fam.read_response(response_input(frame, parsed.response))
    fam = fam.bind(response)
    y = np.asarray(response.y, float)
    check_finite(y, f"response {parsed.response!r}")
    fixed_rhs, strata_vars = split_strata(parsed.fixed)
    if strata_vars and not getattr(fam, "stratifies", False):
        raise ModelSpecError(f"formula {formula!r}: strata() is only read by Cox models "
                             "(mp.coxme)")
    strata = stratum_codes(frame, strata_vars) if strata_vars else None
    fixed = model_matrix(fixed_rhs, frame, contrasts=contrasts)
    for j, name in enumerate(fixed.column_names):
        check_finite(np.asarray(fixed.matrix[:, j], float), f"fixed-effect column {name!r}")
    X, fe_names, dropped = drop_rank_deficient(np.asarray(fixed.matrix, float),
                                               list(fixed.column_names))
    if dropped:
        warnings.warn(f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
                      f"column(s): {', '.join(dropped)}", RankDeficiencyWarning, stacklevel=3)
    if fam.absorbs_intercept:
        X, fe_names, dropped = _drop_intercept(X, fe_names, dropped)
    terms = tuple(build_reterm(t.lhs, t.group, t.group_vars, frame, contrasts,
                               structure=t.structure)
                  for t in parsed.random)
    order = sorted(range(len(terms)), key=lambda k: -terms[k].n_levels)
    terms = tuple(terms[k] for k in order)
    labels = [parsed.random[k].label for k in order]
    n = len(frame)
    w = np.ones(n) if w_all is None else _check_weights(w_all[keep], _vector_name(weights, "weights"))
    off = np.zeros(n) if fixed.offset is None else np.asarray(fixed.offset, float)
    check_finite(off, "the formula's offset(...) term")
    if o_all is not None:
        off = off + o_all[keep]
    _check_lme4_counts(terms, n, fam.allow_n, control.nobs_vs_nRE(fam.fit_kind), labels)
    aux = {}
    if ziformula is not None or dispformula is not None:
        aux = {key: _part_design(text, rhs, frame, contrasts)
               for key, (text, rhs) in parts.items()}
        fam = with_parts(fam, aux["X_zi"][1] if "X_zi" in aux else [],
                         aux["X_disp"][1] if "X_disp" in aux else [])
        if "X_disp" in fam.aux_designs and "X_disp" not in aux:
            aux["X_disp"] = (np.ones((n, 1)), ["(Intercept)"], None)
    zi_terms = ()
    if zi_random:
        zi_terms = tuple(sorted((build_reterm(t.lhs, t.group, t.group_vars, frame, contrasts,
                                              structure=t.structure) for t in zi_random),
                                key=lambda t: -t.n_levels))
        _check_lme4_counts(zi_terms, n, fam.allow_n, control.nobs_vs_nRE(fam.fit_kind),
                           [f"ziformula ({t.lhs} | {t.group})" for t in zi_random])
    fam.check_response(*fam.counts(y, response.trials, w, parsed.response), response, w)
    return ModelSpec(formula=formula, parsed=parsed, y=y, X=np.ascontiguousarray(X),
                     fe_names=fe_names, terms=terms, offset=off, weights=w, fixed_design=fixed,
                     keep=keep, dropped_columns=dropped, response_name=parsed.response,
                     data=data, build_kwargs={"weights": weights, "offset": offset,
                                              "contrasts": contrasts, "na_action": na_action,
                                              **_given(ziformula=ziformula,
                                                       dispformula=dispformula)},
                     row_index=data.index[keep], data_index=data.index.copy(),
                     na_action=na_action, family=fam, link=lnk, trials=response.trials,
                     status=response.status, strata=strata,
                     aux_designs={k: v[0] for k, v in aux.items()},
                     aux_names={k: list(v[1]) for k, v in aux.items()},
                     aux_transforms={k: v[2] for k, v in aux.items()}, zi_terms=zi_terms)


def _given(**kwargs) -> dict:
    """The keyword arguments that are not None (so specs without them keep their old keys)."""
    return {k: v for k, v in kwargs.items() if v is not None}


_PARTS = {"X_zi": "ziformula", "X_disp": "dispformula"}


def _part_formulas(parsed: ParsedFormula, ziformula, dispformula) -> tuple[dict, list]:
    """``({"X_zi": (text, rhs), "X_disp": (text, rhs)}, zi random terms)`` for the formulas
    given. Random terms are read in the ziformula (glmmTMB's ``~ mined + (1 | site)``) and
    refused by name in the dispformula, as glmmTMB 1.1.5 does ("no random effects allowed in
    dispersion term")."""
    out, zi_random = {}, []
    for key, text in (("X_zi", ziformula), ("X_disp", dispformula)):
        if text is None:
            continue
        arg = _PARTS[key]
        if not isinstance(text, str) or not text.strip().startswith("~"):
            raise ModelSpecError(f"{arg} must be a one-sided formula such as '~ x', got {text!r}")
        part = parse_formula(f"{parsed.response or 'y'} {text.strip()}")
        if part.random and key == "X_disp":
            t = part.random[0]
            raise ModelSpecError(f"{arg} {text!r}: random terms such as ({t.lhs} | {t.group}) "
                                 "are not allowed in the dispersion formula (glmmTMB 1.1.5 "
                                 "refuses them too: 'no random effects allowed in dispersion "
                                 "term'); give fixed effects only")
        if part.random:
            zi_random = list(part.random)
        out[key] = (text, part.fixed)
    return out, zi_random


def _term_columns(term) -> list[str]:
    """The data columns a parsed random term reads (its columns' variables and its groups)."""
    return list(rhs_variables(term.lhs)) + list(term.group_vars)


def _part_design(text: str, rhs: str, frame: pd.DataFrame, contrasts):
    """(matrix, column names, Design) of a zi / dispersion formula (rank-deficient columns
    refused: they would leave a coefficient unidentified)."""
    design = model_matrix(rhs, frame, contrasts=contrasts)
    if design.offset is not None:
        raise ModelSpecError(f"{text!r}: offset() in a zi / dispersion formula is not "
                             "implemented")
    X = np.asarray(design.matrix, float)
    names = list(design.column_names)
    for j, name in enumerate(names):
        check_finite(X[:, j], f"column {name!r} of {text!r}")
    _, kept, dropped = drop_rank_deficient(X, names)
    if dropped:
        raise ModelSpecError(f"{text!r}: column(s) {dropped} are linear combinations of the "
                             "others (rank deficient); drop them")
    if not names:
        raise ModelSpecError(f"{text!r} has no columns; write '~ 1' for a constant")
    return np.ascontiguousarray(X), names, design
