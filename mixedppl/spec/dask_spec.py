"""The :class:`~mixedppl.spec.model_spec.ModelSpec` of a Dask DataFrame, and one partition's rows.

A Dask DataFrame is read in two steps, so that only small values travel to the client:

1. :func:`build_dask_spec` — one distributed pass (:func:`~mixedppl.core.dask.tree_reduce`) in
   which every partition is checked as :func:`~mixedppl.spec.model_spec.build_spec` checks a
   DataFrame (unknown columns, dates, ±inf, a non-numeric response, bad weights: the same
   :class:`~mixedppl.core.exceptions.ModelSpecError`, with the partition in a note) and hands back
   its missing-value counts, the distinct values of its grouping and factor columns, and a few
   rows (the first and those with the smallest and largest response). The client then sets every
   factor's levels (as ``level_labels``: R's order, unused levels dropped), builds the fixed and
   random designs on a small frame holding every level, and applies lme4's level / nobs checks
   with the total number of rows. The result is a *template* spec: levels, designs, names and θ
   layout of the whole data, and no rows (``spec.source`` says where they are).
2. :func:`partition_spec` — on a worker, the template's rows for one partition: y, X (the
   template's columns), offset, weights and every term's level codes (global codes) and z.

``scale()``, ``poly()``, ``bs()`` and ``ns()`` get their parameters (centre and scale, recursion
coefficients, knots) from the whole column in the same pass (:mod:`mixedppl.spec.stateful`: each
partition hands back the call's argument on its used rows, the client computes the parameters
with the in-memory code, so exactly as the pandas path does) and are then fixed transforms on
every partition. ``factor()`` of a numeric column and a factor response are refused: compute them
as columns first. The rank-deficiency
check needs X'X and is made where the cross-products are summed
(:mod:`mixedppl.distributed.lmm`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import pandas as pd

from ..core.control import Control, as_control
from ..core.dask import tree_reduce
from ..core.exceptions import ModelSpecError
from ..families import Family, get_family
from .design import model_matrix, rhs_variables
from .formula import parse_formula
from .frame import (check_columns, check_finite, check_na_action, clean_frame, missing_rows,
                    numeric_vector, report_missing)
from .model_spec import (ModelSpec, _check_lme4_counts, _check_weights, _used_columns,
                         _vector_name, split_strata)
from .response import response_input
from .reterm import _num_label, build_reterm
from .stateful import collect_arguments, combine_arguments, fit_parameters, stateful_calls

__all__ = ["DaskSource", "VarLevels", "build_dask_spec", "partition_spec", "meta_frame",
           "for_workers"]

_WHOLE_COLUMN_CALLS = ("factor(", "as.factor(", "ordered(", "cut(")


@dataclass(frozen=True)
class VarLevels:
    """The levels of one factor column over the whole data.

    ``kind`` is ``"cat"`` (pandas categorical: used categories in category order), ``"bool"``,
    ``"num"`` (sorted numbers) or ``"str"`` (sorted strings); ``values`` are the used values as the
    partitions hold them (to code rows), ``labels`` R's labels (``level_labels``)."""

    kind: str
    values: list
    labels: list[str]
    categories: list | None = None
    ordered: bool = False

    def codes(self, column: pd.Series) -> np.ndarray:
        """Level index of each (non-missing) value of ``column``."""
        if self.kind == "str":
            keys = column.astype(str).to_numpy()
        elif self.kind == "num":
            keys = column.to_numpy(dtype=float)
        elif self.kind == "bool":
            keys = column.to_numpy(dtype=bool)
        else:
            keys = column.astype(object).to_numpy()
        codes = pd.Index(self.values).get_indexer(keys)
        if np.any(codes < 0):  # a value unseen by the level pass: the data changed under us
            raise ModelSpecError(f"column {column.name!r} has values that were not in it when its "
                                 "levels were collected; the Dask DataFrame changed between passes")
        return codes.astype(np.int64)

    def template_column(self, size: int) -> pd.Series:
        """``size`` values cycling through every level (the small frame the designs are built on)."""
        vals = [self.values[i % len(self.values)] for i in range(size)]
        if self.kind == "cat":
            return pd.Series(pd.Categorical(vals, categories=self.categories, ordered=self.ordered))
        return pd.Series(vals, dtype=bool if self.kind == "bool" else object)


@dataclass(frozen=True, eq=False)
class DaskSource:
    """Where a template spec's rows are: the Dask DataFrame and what a worker needs to read them.

    Attributes
    ----------
    ddf : dask.dataframe.DataFrame
        The user's data (persisted on the workers when a client is running).
    columns : list of str
        The columns the model uses.
    weights, offset : str or None
        Column names of the prior weights / offset.
    levels : dict
        Column → :class:`VarLevels` of every grouping and factor column.
    combos : tuple
        Per term (formula order is not kept: the spec's order) the sorted mixed-radix keys of the
        level combinations of a multi-column grouping factor (``a:b``), None for one column.
    n : int
        Rows used (over all partitions).
    progress : bool
        Whether each pass over the partitions shows a progress bar
        (:func:`~mixedppl.core.progress.progress_bar`).
    """

    ddf: object = field(repr=False)
    columns: list[str]
    weights: str | None
    offset: str | None
    levels: dict
    combos: tuple
    n: int
    n_rows: int
    progress: bool = True


def meta_frame(ddf) -> pd.DataFrame:
    """An empty pandas DataFrame with the Dask DataFrame's columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in ddf.dtypes.items()})


def _is_factor_dtype(dtype) -> bool:
    return not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def _kind(column: pd.Series) -> str:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return "cat"
    if pd.api.types.is_bool_dtype(column):
        return "bool"
    if pd.api.types.is_numeric_dtype(column):
        return "num"
    return "str"


# -- step 1: the checking and level pass (runs on the workers) --------------------------------

@dataclass(frozen=True)
class _Plan:
    formula: str
    columns: list[str]
    response: str
    family: Family
    weights: str | None
    offset: str | None
    factor_vars: list[str]
    multi_groups: list[tuple[str, ...]]
    na_action: str
    stateful_rhs: tuple[str, ...] = ()


def _vectors(part: pd.DataFrame, plan) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """The weights and offset columns of a partition (checked as build_spec checks them) and the
    rows where either is missing."""
    extra = np.zeros(len(part), bool)
    out = []
    for col, name in ((plan.weights, "weights"), (plan.offset, "offset")):
        if col is None:
            out.append(None)
            continue
        check_columns(part, [col], f"{name}=")
        v = numeric_vector(part[col], f"{name} column {col!r}", len(part))
        check_finite(v, _vector_name(col, name))
        extra |= np.isnan(v)
        out.append(v)
    return out[0], out[1], extra


def _read_rows(part: pd.DataFrame, plan):
    """The model frame of one partition: (frame, keep, response, weights, offset column, counts)."""
    check_columns(part, plan.columns, f"formula {plan.formula!r}")
    w_all, o_all, extra = _vectors(part, plan)
    bad, counts = missing_rows(part, plan.columns, extra)
    if plan.na_action == "raise":
        report_missing(counts, int(bad.sum()), len(part), "raise")
    if bad.all():
        return None, ~bad, None, None, None, counts
    frame = clean_frame(part, plan.columns, bad)
    response = plan.family.read_response(response_input(frame, plan.response))
    check_finite(np.asarray(response.y, float), f"response {plan.response!r}")
    w = np.ones(len(frame)) if w_all is None else w_all[~bad]
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        _check_weights(w, _vector_name(plan.weights, "weights"))
    off = None if o_all is None else o_all[~bad]
    return frame, ~bad, response, w, off, counts


def _summary(part: pd.DataFrame, i: int, plan) -> dict:
    try:
        return _summary_rows(part, plan)
    except ModelSpecError as exc:
        return {"errors": [(i, exc)]}


def _summary_rows(part: pd.DataFrame, plan) -> dict:
    out = {"errors": [], "n_rows": len(part), "n_bad": 0, "counts": {}, "uniques": {},
           "combos": {}, "sample": None, "n_pos": 0, "args": {}}
    if len(part) == 0:
        return out
    frame, keep, response, w, _, counts = _read_rows(part, plan)
    out["n_bad"], out["counts"] = int((~keep).sum()), counts
    if frame is None:
        return out
    y, n = plan.family.counts(np.asarray(response.y, float), response.trials, w, plan.response)
    plan.family.check(y, n, plan.response)
    out["n_pos"] = int((w > 0).sum())
    for v in plan.factor_vars:
        col = frame[v]
        out["uniques"][v] = (_kind(col), col.drop_duplicates().tolist(),
                             list(col.cat.categories) if _kind(col) == "cat" else None,
                             bool(col.cat.ordered) if _kind(col) == "cat" else False)
    for g in plan.multi_groups:
        out["combos"][g] = frame[list(g)].drop_duplicates()
    if plan.stateful_rhs:
        out["args"] = collect_arguments(frame, list(plan.stateful_rhs))
    ry = np.asarray(response.y, float)
    pos = np.flatnonzero(w > 0) if np.any(w > 0) else np.arange(len(frame))
    rows = sorted({0, int(pos[np.argmin(ry[pos])]), int(pos[np.argmax(ry[pos])])})
    sample = frame.iloc[rows].copy()
    sample["__w__"], sample["__y__"] = w[rows], ry[rows]
    out["sample"] = sample
    return out


def _combine(parts: list[dict]) -> dict:
    out = {"errors": [], "n_rows": 0, "n_bad": 0, "counts": {}, "uniques": {}, "combos": {},
           "sample": None, "n_pos": 0, "args": {}}
    samples = []
    for s in parts:
        out["errors"] += s["errors"]
        if s["errors"]:
            continue
        out["n_rows"] += s["n_rows"]
        out["n_bad"] += s["n_bad"]
        out["n_pos"] += s["n_pos"]
        for c, k in s["counts"].items():
            out["counts"][c] = out["counts"].get(c, 0) + k
        for v, (kind, vals, cats, ordered) in s["uniques"].items():
            if v in out["uniques"]:
                old = out["uniques"][v]
                vals = list(dict.fromkeys(old[1] + vals))
                kind = old[0] if old[0] == kind else "str"
                cats = old[2] or cats
            out["uniques"][v] = (kind, vals, cats, ordered)
        for g, df in s["combos"].items():
            out["combos"][g] = (df if g not in out["combos"] else
                                pd.concat([out["combos"][g], df]).drop_duplicates())
        if s["sample"] is not None:
            samples.append(s["sample"])
    out["args"] = combine_arguments([s.get("args", {}) for s in parts if not s["errors"]])
    if samples:
        allrows = pd.concat(samples, ignore_index=True)
        pos = allrows["__w__"].to_numpy() > 0
        yy = allrows["__y__"].to_numpy()
        idx = np.flatnonzero(pos) if pos.any() else np.arange(len(allrows))
        keep = sorted({0, int(idx[np.argmin(yy[idx])]), int(idx[np.argmax(yy[idx])])})
        out["sample"] = allrows.iloc[keep].reset_index(drop=True)
    return out


# -- the client: levels, designs, checks -------------------------------------------------------

def _var_levels(kind: str, values: list, categories, ordered: bool) -> VarLevels:
    """Levels as ``spec.reterm.level_labels`` sets them on the whole column."""
    if kind == "cat":
        present = set(values)
        used = [c for c in categories if c in present]
        return VarLevels("cat", used, [str(c) for c in used], list(categories), ordered)
    if kind == "bool":
        used = sorted({bool(v) for v in values})
        return VarLevels("bool", used, [["FALSE", "TRUE"][int(u)] for u in used])
    if kind == "num":
        uniq = np.unique(np.asarray(values, float))
        return VarLevels("num", uniq.tolist(), [_num_label(v) for v in uniq])
    uniq = np.unique(np.asarray([str(v) for v in values]))
    return VarLevels("str", uniq.tolist(), [str(u) for u in uniq])


def _group_levels(group_vars: tuple[str, ...], levels: dict, combos) -> tuple[list[str], object]:
    """Labels of the grouping factor ``a:b:…`` (first column slowest, unused combinations
    dropped, as ``grouping_factor``) and the sorted combination keys (None for one column)."""
    first = levels[group_vars[0]]
    if len(group_vars) == 1:
        return list(first.labels), None
    keys = _combo_keys(combos, group_vars, levels)
    used = np.unique(keys)
    radix = [len(levels[v].labels) for v in group_vars]
    labels = []
    for key in used:
        parts, k = [], int(key)
        for v, r in zip(reversed(group_vars), reversed(radix)):
            k, c = divmod(k, r)
            parts.append(levels[v].labels[c])
        labels.append(":".join(reversed(parts)))
    return labels, used


def _combo_keys(frame: pd.DataFrame, group_vars: tuple[str, ...], levels: dict) -> np.ndarray:
    key = np.zeros(len(frame), np.int64)
    for v in group_vars:
        key = key * len(levels[v].labels) + levels[v].codes(frame[v])
    return key


def _template_frame(sample: pd.DataFrame, columns: list[str], levels: dict,
                    factor_vars: list[str]) -> pd.DataFrame:
    """A small frame with the used columns in which every factor column takes every level."""
    size = max([2] + [len(levels[v].values) for v in factor_vars])
    frame = sample[columns].iloc[np.arange(size) % len(sample)].reset_index(drop=True)
    for v in factor_vars:
        frame[v] = levels[v].template_column(size)
    return frame


def _refuse_whole_column_calls(formula: str) -> None:
    for call in _WHOLE_COLUMN_CALLS:
        if call in formula.replace(" ", ""):
            raise ModelSpecError(
                f"formula {formula!r}: {call[:-1]}() needs the whole column, which a Dask "
                "DataFrame's partitions do not have; compute the column first (e.g. "
                "ddf = ddf.assign(f=ddf.x.astype(str)) for a factor) and use it in the formula")


def _raise_first(errors: list) -> None:
    i, exc = min(errors, key=lambda e: e[0])
    exc.add_note(f"(in partition {i} of the Dask DataFrame)")
    raise exc


def build_dask_spec(formula: str, ddf, family: str | Family = "gaussian",
                    link: str | None = None, *, weights=None, offset=None,
                    na_action: str = "omit", contrasts: dict | None = None,
                    control: Control | dict | None = None, split_every: int = 8,
                    progress: bool = True) -> ModelSpec:
    """The template :class:`ModelSpec` of a formula on a Dask DataFrame (one distributed pass).

    Parameters
    ----------
    formula : str
    ddf : dask.dataframe.DataFrame
    family, link, na_action, contrasts, control
        As :func:`~mixedppl.spec.model_spec.build_spec`.
    weights, offset : str, optional
        Column names (arrays are not aligned with a Dask DataFrame's partitions).
    split_every : int
        Fan-in of the tree reduction.
    progress : bool
        A bar over the partitions in this pass, and in the fit's passes (kept in
        ``spec.source.progress``); ``False`` turns them off.

    Returns
    -------
    ModelSpec
        Levels, designs and names of the whole data and no rows: ``y``, ``X`` and each term's
        ``codes`` / ``z`` have length 0, ``spec.n`` is the number of rows used and
        ``spec.source`` a :class:`DaskSource`.

    Examples
    --------
    >>> import mixedppl as mp, dask.dataframe as dd
    >>> ddf = dd.from_pandas(mp.datasets.load("sleepstudy"), npartitions=4)
    >>> spec = build_dask_spec("Reaction ~ Days + (Days | Subject)", ddf)
    >>> spec.n, spec.terms[0].n_levels, spec.X.shape
    (180, 18, (0, 2))
    """
    fam, lnk = get_family(family, link)
    control = as_control(control, fam.fit_kind)
    check_na_action(na_action)
    parsed = parse_formula(formula)
    if not parsed.random:
        raise ModelSpecError(fam.no_random_message.format(formula=formula))
    _refuse_whole_column_calls(formula)
    fixed_rhs, strata_vars = split_strata(parsed.fixed)
    if strata_vars:
        raise ModelSpecError(f"formula {formula!r}: strata() is not read on Dask input")
    for arg, name in ((weights, "weights"), (offset, "offset")):
        if arg is not None and not isinstance(arg, str):
            raise ModelSpecError(f"{name}=: on a Dask DataFrame give the name of a column (an "
                                 "array is not aligned with the partitions)")
    meta = meta_frame(ddf)
    columns = _used_columns(parsed)
    check_columns(meta, columns, f"formula {formula!r}")
    response_vars = set(rhs_variables(f"0 + {parsed.response}"))
    if fam.fit_kind != "lmer" and any(_is_factor_dtype(meta[v].dtype) and
                                      not pd.api.types.is_bool_dtype(meta[v].dtype)
                                      for v in response_vars):
        raise ModelSpecError(f"response {parsed.response!r}: on a Dask DataFrame give a "
                             f"{fam.name} response as numbers (e.g. 0/1), not as a factor")
    group_vars = [t.group_vars for t in parsed.random]
    factor_vars = [c for c in columns if c not in response_vars and
                   (_is_factor_dtype(meta[c].dtype) or any(c in g for g in group_vars))]
    rhss = tuple(r for r in [fixed_rhs] + [t.lhs for t in parsed.random] if stateful_calls(r))
    plan = _Plan(formula, columns, parsed.response, fam, weights, offset, factor_vars,
                 [g for g in group_vars if len(g) > 1], na_action, rhss)
    summary = tree_reduce(ddf, partial(_summary, plan=plan), _combine, split_every=split_every,
                          progress="Dask: levels and checks" if progress else None)
    if summary["errors"]:
        _raise_first(summary["errors"])
    report_missing(summary["counts"], summary["n_bad"], summary["n_rows"], na_action,
                   stacklevel=5)
    n = summary["n_rows"] - summary["n_bad"]
    if n == 0:
        raise ModelSpecError("the data has no rows")
    if weights is not None and summary["n_pos"] == 0:
        _check_weights(np.zeros(1), _vector_name(weights, "weights"))
    preset = fit_parameters(list(rhss), summary["args"])
    levels = {v: _var_levels(*summary["uniques"][v]) for v in factor_vars}
    frame = _template_frame(summary["sample"], columns, levels,
                            [v for v in factor_vars if _is_factor_dtype(meta[v].dtype)])
    fixed = model_matrix(fixed_rhs, frame, contrasts=contrasts, preset=preset)
    terms, combos = [], []
    for t in parsed.random:
        if getattr(t, "structure", "us") != "us":
            raise ModelSpecError(f"the {t.structure}() covariance structure of the term "
                                 f"{t.structure}({t.lhs} | {t.group}) is not supported on a Dask "
                                 "DataFrame yet; fit it on a pandas DataFrame")
        labels, keys = _group_levels(t.group_vars, levels, summary["combos"].get(t.group_vars))
        term = build_reterm(t.lhs, t.group, t.group_vars, frame, contrasts,
                            factor=(np.zeros(len(frame), np.int64), labels), preset=preset)
        terms.append(replace(term, codes=np.zeros(0, np.int64), z=np.zeros((0, term.n_cols))))
        combos.append(keys)
    order = sorted(range(len(terms)), key=lambda k: -terms[k].n_levels)
    labels = [f"{parsed.random[k].lhs} | {parsed.random[k].group}" for k in order]
    terms = tuple(terms[k] for k in order)
    _check_lme4_counts(terms, n, fam.allow_n, control.nobs_vs_nRE(fam.fit_kind), labels)
    sample = summary["sample"]
    response = fam.read_response(response_input(sample, parsed.response))
    fam = fam.bind(response)
    w_s = sample["__w__"].to_numpy()
    fam.check_response(*fam.counts(np.asarray(response.y, float), response.trials, w_s,
                                   parsed.response), response, w_s)
    p = len(fixed.column_names)
    source = DaskSource(ddf, columns, weights, offset, levels,
                        tuple(combos[k] for k in order), n, summary["n_rows"], progress)
    return ModelSpec(formula=formula, parsed=parsed, y=np.zeros(0), X=np.zeros((0, p)),
                     fe_names=list(fixed.column_names), terms=terms, offset=np.zeros(0),
                     weights=np.zeros(0), fixed_design=fixed, keep=np.zeros(0, bool),
                     response_name=parsed.response, data=None,
                     build_kwargs={"weights": weights, "offset": offset, "contrasts": contrasts,
                                   "na_action": na_action},
                     na_action=na_action, family=fam, link=lnk, source=source)


# -- step 2: one partition's rows (runs on the workers) ----------------------------------------

def for_workers(spec: ModelSpec) -> ModelSpec:
    """The template spec without the Dask DataFrame itself (what each task carries)."""
    return replace(spec, source=replace(spec.source, ddf=None))


def partition_spec(spec: ModelSpec, part: pd.DataFrame) -> ModelSpec | None:
    """The template ``spec``'s rows for one partition (None when it has no rows used).

    y, X (the template's columns, the rank check's ``fe_names``), offset, weights and, per
    term, the global level codes and z; ``keep`` / ``row_index`` / ``data_index`` refer to the
    partition's rows, so :func:`~mixedppl.results.base.per_row` aligns per-row results with it.
    """
    src = spec.source
    if len(part) == 0:
        return None
    plan = _Plan(spec.formula, src.columns, spec.response_name, spec.family, src.weights,
                 src.offset, [], [], spec.na_action)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported once, on the client, by the level pass
        frame, keep, response, w, off_col, _ = _read_rows(part, plan)
    if frame is None:
        return None
    X, off = spec.fixed_design.transform(frame)
    names = list(spec.fixed_design.column_names)
    if names != list(spec.fe_names):
        X = X[:, [names.index(c) for c in spec.fe_names]]
    offset = np.zeros(len(frame)) if off is None else np.asarray(off, float)
    if off_col is not None:
        offset = offset + off_col
    terms = []
    for t, keys in zip(spec.terms, src.combos):
        if keys is None:
            codes = src.levels[t.group_vars[0]].codes(frame[t.group_vars[0]])
        else:
            codes = np.searchsorted(keys, _combo_keys(frame, t.group_vars, src.levels))
        z, _ = t.design.transform(frame)
        terms.append(replace(t, codes=codes, z=np.ascontiguousarray(z, float)))
    return replace(spec, y=np.asarray(response.y, float), X=np.ascontiguousarray(X),
                   terms=tuple(terms), offset=offset, weights=w, keep=keep,
                   row_index=part.index[keep], data_index=part.index, trials=response.trials,
                   source=None)
