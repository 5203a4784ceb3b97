r"""The array door: ``lmm(y, X, groups, ...)`` and ``glmm(y, X, groups, family, ...)``.

For users whose data are arrays (pystatistics' calling convention) rather than a DataFrame and a
formula. The arrays are assembled into one DataFrame and an lme4 formula, which the one spec
builder (:func:`~mixedppl.spec.model_spec.build_spec`, through :func:`~mixedppl.api.lmer` /
:func:`~mixedppl.glmer`) reads as it reads any formula: the fit is the formula fit, to the last
digit.

The model, for groups :math:`g = 1, \dots, G` with random-effect variables
:math:`z_{g1}, \dots, z_{gq_g}` (``random_effects[g]``, ``"1"`` the intercept) is

.. math::

    \eta = X\beta + \sum_g Z_g b_g, \qquad b_{g,j} \sim N(0, \Sigma_g) \text{ per level } j,

with :math:`\Sigma_g` unstructured (correlated), lme4's ``(1 + z | g)``. X is used as given: it
holds its own intercept column (a column of ones, named ``(Intercept)`` in the results as
lme4 names it); without one the model has no intercept.

Examples
--------
>>> import mixedppl as mp
>>> sleep = mp.datasets.load("sleepstudy")
>>> X = np.column_stack([np.ones(len(sleep)), sleep["Days"]])
>>> fit = lmm(sleep["Reaction"], X, groups={"Subject": sleep["Subject"]},
...           random_effects={"Subject": ["1", "x2"]})
>>> fit.spec.formula
'y ~ 1 + x2 + (1 + x2 | Subject)'
>>> fit.fe_params.round(3).tolist()
[251.405, 10.467]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .api import lmer
from .core.control import Control
from .core.exceptions import ModelSpecError
from .families import FamilyChoice
from .families.base import Family
from .glmm_api import glmer

__all__ = ["lmm", "glmm", "array_formula"]

#: A name the formula parser reads as one variable (R's syntactic names, plus a leading ``_``).
_NAME = re.compile(r"^(?:[A-Za-z_]|\.(?![0-9]))[A-Za-z0-9._]*$")


def _n_rows(y) -> int:
    return len(np.asarray(y).reshape(-1)) if np.ndim(y) else 0


def _numeric(values, what: str, n: int) -> np.ndarray:
    """A finite numeric vector of length ``n`` (errors say which argument is wrong)."""
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ModelSpecError(f"{what} must be numeric; code a factor as indicator columns, or "
                             "pass it in groups= if it is a grouping factor") from None
    if v.ndim != 1:
        raise ModelSpecError(f"{what} must be one-dimensional, got shape {v.shape}")
    if len(v) != n:
        raise ModelSpecError(f"{what} has {len(v)} values; y has {n}")
    bad = ~np.isfinite(v)
    if bad.any():
        raise ModelSpecError(f"{what} has {int(bad.sum())} missing or infinite value(s) (first "
                             f"at row {int(np.flatnonzero(bad)[0])}); drop those rows first")
    return v


def _check_name(name, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ModelSpecError(f"{what} name {name!r} cannot be used in a formula: use letters, "
                             "digits, '.' and '_' (e.g. rename the DataFrame column)")
    return name


def _fixed_columns(X, n: int) -> tuple[list[str], dict[str, np.ndarray], bool]:
    """X's columns by name (a DataFrame's names, else x1 … xp) and whether one is the intercept
    (a column of ones; it becomes the formula's ``1``)."""
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        cols = [X.iloc[:, j] for j in range(X.shape[1])]
    else:
        M = np.asarray(X)
        if M.ndim == 1:
            M = M[:, None]
        if M.ndim != 2:
            raise ModelSpecError(f"X must be a 2-D array (n × p), got shape {M.shape}")
        names = [f"x{j + 1}" for j in range(M.shape[1])]
        cols = [M[:, j] for j in range(M.shape[1])]
    if len(set(names)) != len(names):
        raise ModelSpecError(f"X has repeated column names: {names}")
    values = [_numeric(c, f"X column {name!r}", n) for name, c in zip(names, cols)]
    ones = [j for j, v in enumerate(values) if np.all(v == 1.0)]
    intercept = bool(ones)
    fixed = {_check_name(name, "X column"): v for j, (name, v) in enumerate(zip(names, values))
             if not (ones and j == ones[0])}
    return list(fixed), fixed, intercept


def _as_mapping(arg, default_name: str, what: str) -> dict:
    if arg is None:
        return {}
    if isinstance(arg, pd.DataFrame):
        return {str(c): arg[c] for c in arg.columns}
    if isinstance(arg, Mapping):
        return dict(arg)
    if isinstance(arg, pd.Series) and isinstance(arg.name, str):
        return {arg.name: arg}
    if isinstance(arg, (np.ndarray, pd.Series, Sequence)) and not isinstance(arg, str):
        return {default_name: arg}
    raise ModelSpecError(f"{what} must be a dict of name → values (one per row of y), got a "
                         f"{type(arg).__name__}")


def _group_columns(groups, n: int) -> dict[str, pd.Series]:
    out = {}
    for name, ids in _as_mapping(groups, "group", "groups").items():
        _check_name(name, "group")
        if np.ndim(ids) != 1:
            raise ModelSpecError(f"groups[{name!r}] must be one-dimensional, got shape "
                                 f"{np.shape(ids)}")
        ids = ids.reset_index(drop=True) if isinstance(ids, pd.Series) else pd.Series(ids)
        if len(ids) != n:
            raise ModelSpecError(f"groups[{name!r}] has {len(ids)} values; y has {n}")
        missing = ids.isna().to_numpy()
        if missing.any():
            raise ModelSpecError(f"groups[{name!r}] has {int(missing.sum())} missing id(s) "
                                 f"(first at row {int(np.flatnonzero(missing)[0])})")
        out[name] = ids
    if not out:
        raise ModelSpecError("groups is empty: a mixed model needs at least one grouping factor, "
                             "e.g. groups={'Subject': ids}")
    return out


def _unique_name(base: str, taken: set[str]) -> str:
    name = base
    while name in taken:
        name += "_"
    return name


def array_formula(y, X, groups, random_effects: Mapping[str, Sequence[str]] | None = None,
                  random_data=None, trials=None) -> tuple[str, pd.DataFrame]:
    """The lme4 formula and DataFrame that the arrays stand for.

    Parameters
    ----------
    y : array-like, shape (n,)
        The response (for :func:`glmm` with ``trials``: the number of successes).
    X : array-like (n, p) or DataFrame
        The fixed-effect design, intercept column included. Column names: the DataFrame's, or
        ``x1 … xp``; a column of ones is the intercept ``(Intercept)``.
    groups : dict of str → array-like, or array-like
        Grouping factors, one id per row (a bare array is named ``"group"``).
    random_effects : dict of str → list of str, optional
        Per group, its random effects: ``"1"`` (intercept) and names of columns of
        ``random_data`` or ``X``; the list is taken literally (``["Days"]`` is lme4's
        ``(0 + Days | g)``). Default: ``["1"]`` for every group, lme4's ``(1 | g)``.
    random_data : dict of str → array-like, optional
        Variables of the random-effect terms that are not columns of X.
    trials : array-like, optional
        Binomial trials per row (the response is then ``cbind(y, trials - y)``).

    Returns
    -------
    formula : str
    data : DataFrame
        One column per variable the formula names, n rows.

    Raises
    ------
    ModelSpecError
        Lengths that differ from ``len(y)``, missing values, non-numeric X, a group in
        ``random_effects`` that is not in ``groups``, a random-effect variable found nowhere, or
        one name used for two different variables.

    Examples
    --------
    >>> f, d = array_formula([1.0, 2.0, 3.0, 4.0], np.ones((4, 1)), {"g": ["a", "a", "b", "b"]})
    >>> f, list(d.columns)
    ('y ~ 1 + (1 | g)', ['y', 'g'])
    >>> array_formula([1.0, 2.0], np.ones((2, 1)), {"g": ["a", "b"]}, {"h": ["1"]})
    Traceback (most recent call last):
    ...
    mixedppl.core.exceptions.ModelSpecError: random_effects names group(s) ['h'] that are not in groups (['g'])
    """
    y_values = np.asarray(y)
    if y_values.ndim != 1:
        raise ModelSpecError(f"y must be one-dimensional, got shape {y_values.shape}")
    n = len(y_values)
    y_values = _numeric(y_values, "y", n)
    fe_names, fixed, intercept = _fixed_columns(X, n)
    group_cols = _group_columns(groups, n)
    random_effects = {g: ["1"] for g in group_cols} | dict(random_effects or {})
    unknown = [g for g in random_effects if g not in group_cols]
    if unknown:
        raise ModelSpecError(f"random_effects names group(s) {unknown} that are not in groups "
                             f"({list(group_cols)})")
    extra = {_check_name(k, "random_data"): _numeric(v, f"random_data[{k!r}]", n)
             for k, v in _as_mapping(random_data, "z", "random_data").items()}
    for name, v in extra.items():
        if name in fixed and not np.array_equal(fixed[name], v):
            raise ModelSpecError(f"random_data[{name!r}] differs from X's column {name!r}: give "
                                 "one of them another name")
    variables = {**fixed, **extra}
    clash = sorted(set(group_cols) & set(variables))
    if clash:
        raise ModelSpecError(f"name(s) {clash} are both grouping factors and variables: rename one")
    bars = []
    for group, terms in random_effects.items():
        terms = [str(t).strip() for t in ([terms] if isinstance(terms, str) else terms)]
        missing = [t for t in terms if t not in ("0", "1") and t not in variables]
        if missing:
            raise ModelSpecError(f"random_effects[{group!r}] names {missing}, which are neither "
                                 "'1' (intercept) nor columns of random_data or X")
        slopes = [t for t in terms if t not in ("0", "1")]
        if not slopes and "1" not in terms:
            raise ModelSpecError(f"random_effects[{group!r}] is empty: use ['1'] for a random "
                                 "intercept")
        bars.append(f"({' + '.join(['1' if '1' in terms else '0', *slopes])} | {group})")
    taken = set(variables) | set(group_cols)
    response = _unique_name("y", taken)
    columns = {response: y_values}
    lhs = response
    if trials is not None:
        n_trials = _numeric(trials, "trials", n)
        failures = _unique_name("failures", taken | {response})
        columns[failures] = n_trials - y_values
        lhs = f"cbind({response}, {failures})"
    rhs = " + ".join([("1" if intercept else "0"), *fe_names, *bars])
    data = pd.DataFrame({**columns, **variables, **group_cols})
    return f"{lhs} ~ {rhs}", data


def lmm(y, X, groups, random_effects: Mapping[str, Sequence[str]] | None = None,
        random_data=None, reml: bool = True, *, weights=None, offset=None,
        control: Control | dict | None = None, start=None):
    """Fit a linear mixed model from arrays, as :func:`mixedppl.lmer` fits its formula.

    ``lmm(y, X, groups={"Subject": ids}, random_effects={"Subject": ["1", "Days"]},
    random_data={"Days": days})`` is ``lmer(Reaction ~ ... + (1 + Days | Subject))``.

    Parameters
    ----------
    y, X, groups, random_effects, random_data
        As :func:`array_formula`.
    reml : bool
        REML (default) or maximum likelihood.
    weights, offset : array-like, optional
        One value per row.
    control, start
        As :func:`mixedppl.lmer`.

    Returns
    -------
    LMMResult
        With the formula the arrays stand for in ``fit.spec.formula``; ``predict(newdata)``
        takes a DataFrame with the columns named as X, groups and random_data.

    Examples
    --------
    >>> import mixedppl as mp
    >>> pen = mp.datasets.load("penicillin")
    >>> fit = lmm(pen["diameter"], np.ones((len(pen), 1)),
    ...           groups={"plate": pen["plate"], "sample": pen["sample"]})
    >>> round(fit.reml_criterion, 3)
    330.861
    """
    formula, data = array_formula(y, X, groups, random_effects, random_data)
    return lmer(formula, data, reml=reml, weights=weights, offset=offset, na_action="raise",
                control=control, start=start)


def glmm(y, X, groups, family: str | Family | FamilyChoice = "binomial",
         random_effects: Mapping[str, Sequence[str]] | None = None, random_data=None, *,
         trials=None, link: str | None = None, nAGQ: int = 1, weights=None, offset=None,
         control: Control | dict | None = None, start=None):
    """Fit a generalized linear mixed model from arrays, as :func:`mixedppl.glmer` fits its
    formula.

    Parameters
    ----------
    y, X, groups, random_effects, random_data
        As :func:`array_formula`.
    family : str, Family or family object
        A GLMM family name (``"binomial"``, ``"poisson"``, …) or object
        (``mp.families.Binomial(link="probit")``).
    trials : array-like, optional
        Binomial: trials per row, with ``y`` the successes (lme4's ``cbind(y, trials - y)``).
    link, nAGQ, weights, offset, control, start
        As :func:`mixedppl.glmer`.

    Returns
    -------
    GLMMResult

    Examples
    --------
    >>> import mixedppl as mp
    >>> cbpp = mp.datasets.load("cbpp")
    >>> X = pd.get_dummies(cbpp["period"], prefix="period", drop_first=True, dtype=float)
    >>> X.insert(0, "(Intercept)", 1.0)
    >>> g = glmm(cbpp["incidence"], X, {"herd": cbpp["herd"]}, trials=cbpp["size"])
    >>> round(g.loglik, 3), g.fe_params.round(3).tolist()
    (-92.026, [-1.399, -0.992, -1.129, -1.58])
    """
    formula, data = array_formula(y, X, groups, random_effects, random_data, trials)
    return glmer(formula, data, family, link, nAGQ=nAGQ, weights=weights, offset=offset,
                 control=control, na_action="raise", start=start)
