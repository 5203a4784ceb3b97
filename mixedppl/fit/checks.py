"""Checks of a GLMM's data and fit that lme4 leaves to the user: separation, degenerate groups.

- **Separation** (binomial): a fixed-effect column that splits the rows into all-failure and
  all-success parts (complete or quasi-complete separation, Albert & Anderson 1984) has no finite
  maximum-likelihood estimate: β̂ drifts until the optimiser stops, with a huge standard error.
  Before the fit each column of X is checked on its own (an indicator whose rows are all
  failures / all successes; a numeric column whose successes all lie on one side of its
  failures), then all columns together by Konis's (2007) linear program; after the fit a coefficient with ``|β̂| > 10`` on the link scale and ``SE > 5|β̂|``
  or a non-finite SE is reported too (separation by a combination of columns).
- **Degenerate groups**: levels of a grouping factor (with ≥ 2 rows) whose responses are all zero
  (binomial: all failures) or all successes. A few are normal; when ≥ 25 % of the levels are
  (and at least 2), their conditional modes are pinned only by the N(0, σ²) prior and the variance
  of that term is poorly determined.

References
----------
Albert, A. and Anderson, J. A. (1984), Biometrika 71(1), 1-10; Konis, K. (2007), Linear
programming algorithms for detecting separated data in binary logistic regression models, DPhil
thesis, University of Oxford; Heinze, G. and Schemper, M. (2002),
Stat. Med. 21, 2409-2419.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..core.exceptions import DegenerateGroupsWarning, ModelSpecError, SeparationWarning

__all__ = ["SeparationWarning", "DegenerateGroupsWarning", "check_glmm_data",
           "separated_columns", "separation_direction", "degenerate_levels", "warn_diverging_coefficients"]

DEGENERATE_SHARE = 0.25


def separated_columns(spec, y: np.ndarray, ntr: np.ndarray) -> dict[str, str]:
    """Fixed-effect columns that separate binomial successes from failures on their own.

    Returns ``{column name: description}``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mixedppl.glmm_api import glmm_model
    >>> d = pd.DataFrame({"y": [0, 0, 0, 1, 0, 1, 0, 1], "trt": list("aabbaabb"),
    ...                   "g": list("abcdabcd")})
    >>> d.loc[d.trt == "a", "y"] = 0
    >>> spec, fam, link, y, n = glmm_model("y ~ trt + (1 | g)", d, "binomial")
    >>> separated_columns(spec, y, n)
    {'trtb': 'all 4 rows with trtb = 0 are failures (quasi-complete separation)'}
    """
    keep = ntr > 0
    succ, fail = y[keep], (ntr - y)[keep]
    out: dict[str, str] = {}
    for j, name in enumerate(spec.fe_names):
        x = np.asarray(spec.X, float)[keep, j]
        values = np.unique(x)
        if len(values) < 2:
            continue
        if len(values) == 2:
            for v in values:
                rows = x == v
                label = f"{name} = {v:g}"
                if succ[rows].sum() == 0:
                    out[name] = (f"all {int(rows.sum())} rows with {label} are failures "
                                 "(quasi-complete separation)")
                elif fail[rows].sum() == 0:
                    out[name] = (f"all {int(rows.sum())} rows with {label} are successes "
                                 "(quasi-complete separation)")
            continue
        if succ.sum() == 0 or fail.sum() == 0:
            continue
        xs, xf = x[succ > 0], x[fail > 0]
        if xs.min() >= xf.max() or xs.max() <= xf.min():
            kind = "complete" if (xs.min() > xf.max() or xs.max() < xf.min()) else \
                "quasi-complete"
            side = "above" if xs.min() >= xf.max() else "below"
            out[name] = (f"every success lies {side} every failure in {name!r} "
                         f"({kind} separation)")
    return out


def separation_direction(spec, y: np.ndarray, ntr: np.ndarray,
                         max_size: int = 5_000_000) -> dict[str, float]:
    """Columns of a recession direction of the binomial likelihood, by linear programming.

    The data are (quasi-)separated iff some d ≠ 0 has ``x_iᵀd ≥ 0`` on rows with only
    successes, ``≤ 0`` on rows with only failures and ``= 0`` on rows with both, with at least one
    inequality strict (Albert & Anderson 1984); this solves Konis's (2007) LP
    ``max Σ s_i x_iᵀd`` over ``−1 ≤ d ≤ 1`` and returns ``{column: d_j}`` for the non-zero d_j
    (empty when the estimates are finite, or when n·p exceeds ``max_size``).
    """
    from scipy.optimize import linprog
    X = np.asarray(spec.X, float)
    keep = ntr > 0
    X, succ, fail = X[keep], y[keep], (ntr - y)[keep]
    if X.size == 0 or X.size > max_size:
        return {}
    sign = np.where(fail == 0, 1.0, np.where(succ == 0, -1.0, 0.0))
    strict, both = sign != 0, sign == 0
    A_ub = -(sign[strict, None] * X[strict])
    c = -(sign[:, None] * X).sum(axis=0)
    eps = 1e-7 * max(1.0, np.abs(X).sum() / len(X))

    def solve(bounds):
        res = linprog(c, A_ub=A_ub, b_ub=np.zeros(len(A_ub)),
                      A_eq=X[both] if both.any() else None,
                      b_eq=np.zeros(int(both.sum())) if both.any() else None,
                      bounds=bounds, method="highs")
        return res.x if res.status == 0 and -res.fun > eps else None

    bounds = [(-1.0, 1.0)] * X.shape[1]
    d = solve(bounds)
    if d is None:
        return {}
    # a sparser direction: drop the columns the separation does not need, smallest first
    if X.shape[1] <= 50:
        for j in np.argsort(np.abs(d)):
            if d[j] == 0:
                continue
            trial = list(bounds)
            trial[j] = (0.0, 0.0)
            dj = solve(trial)
            if dj is not None:
                bounds, d = trial, dj
    d = d / np.max(np.abs(d))
    return {n: float(v) for n, v in zip(spec.fe_names, d) if abs(v) > 1e-8}


def degenerate_levels(spec, y: np.ndarray, ntr: np.ndarray, family) -> list[tuple[str, int, int,
                                                                                   int]]:
    """Per random-effect term: (term, all-zero levels, all-success levels, levels with ≥ 2 rows).

    "All-success" applies to the binomial only; only levels with at least two rows count.
    """
    out = []
    seen = set()
    for t in spec.terms:
        if t.group in seen:
            continue
        seen.add(t.group)
        codes = np.asarray(t.codes)
        rows = np.bincount(codes, minlength=t.n_levels)
        ysum = np.bincount(codes, weights=y, minlength=t.n_levels)
        nsum = np.bincount(codes, weights=ntr, minlength=t.n_levels)
        multi = rows >= 2
        zero = multi & (ysum == 0) & (nsum > 0)
        full = multi & (ysum == nsum) & (nsum > 0) if family.trials else np.zeros_like(multi)
        out.append((t.group, int(zero.sum()), int(full.sum()), int(multi.sum())))
    return out


def check_glmm_data(spec, family, y: np.ndarray, ntr: np.ndarray) -> list[str]:
    """Raise for a constant response; warn on separation and on degenerate groups.

    Returns
    -------
    list of str
        The fixed-effect columns named in the separation warning (empty when there was none),
        for the result to record (``fit.separation``).
    """
    fam = family.name
    sep: dict[str, str] = {}
    if family.zero_diverges:
        pos = ntr > 0
        if np.all(y[pos] == 0):
            what = "failures" if family.trials else "zero"
            raise ModelSpecError(f"every response is {what}: the {fam} GLMM has no finite "
                                 "estimates (the intercept diverges to −∞)")
        if family.trials and np.all(y[pos] == ntr[pos]):
            raise ModelSpecError(f"every response is a success: the {fam} GLMM has no finite "
                                 "estimates (the intercept diverges to +∞)")
    if family.check_separation:
        sep = separated_columns(spec, y, ntr)
        if not sep:
            direction = separation_direction(spec, y, ntr)
            if direction:
                combo = " + ".join(f"{v:.3g}·{k}" for k, v in direction.items())
                sep = {k: "" for k in direction}
                detail = (f"the likelihood keeps increasing along {combo}: complete or "
                          "quasi-complete separation by these columns together")
        else:
            detail = "; ".join(f"{k!r}: {v}" for k, v in sep.items())
        if sep:
            warnings.warn(f"glmer: separation — the estimate of fixed effect(s) "
                          f"{', '.join(repr(k) for k in sep)} will diverge ({detail}). Drop or "
                          "merge those levels, or use a penalised / Bayesian fit "
                          "(fit.sample() with a proper prior)", SeparationWarning, stacklevel=3)
    for group, zero, full, multi in degenerate_levels(spec, y, ntr, family):
        bad = zero + full
        if multi and bad >= 2 and bad >= DEGENERATE_SHARE * multi:
            parts = []
            if zero:
                parts.append(f"{zero} with only {'failures' if family.trials else 'zeros'}")
            if full:
                parts.append(f"{full} with only successes")
            warnings.warn(f"glmer: random-effect term '(… | {group})': {bad} of its {multi} "
                          f"levels with ≥ 2 rows have a degenerate response ({', '.join(parts)}); "
                          "their conditional modes are determined by the prior alone and the "
                          f"variance of '{group}' is poorly identified", DegenerateGroupsWarning,
                          stacklevel=3)
    return list(sep)


def warn_diverging_coefficients(names, beta: np.ndarray, se: np.ndarray, already=()) -> list[str]:
    """After a binomial fit: warn about coefficients with ``|β̂| > 10`` and ``SE > 5|β̂|`` (or a
    non-finite SE) that the data check did not already name; returns their names."""
    beta, se = np.asarray(beta, float), np.asarray(se, float)
    bad = [n for n, b, s in zip(names, beta, se)
           if abs(b) > 10 and (not np.isfinite(s) or s > 5 * abs(b)) and n not in already]
    if bad:
        vals = ", ".join(f"{n!r} = {b:.3g} (SE {s:.3g})" for n, b, s in zip(names, beta, se)
                         if n in bad)
        warnings.warn(f"glmer: fixed effect(s) {vals} look divergent — probably (quasi-)complete "
                      "separation by a combination of predictors; their estimates and SEs are "
                      "not meaningful", SeparationWarning, stacklevel=3)
    return bad
