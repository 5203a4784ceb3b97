"""R's number formatting and table printing, for summaries that read as R prints them.

Ports of the pieces of base R and lme4 a summary goes through, rule for rule:

- :func:`format_real` is R's ``format(x, digits)`` (``formatReal`` in ``src/main/format.c``):
  for each finite x the fewest significant digits ≤ ``digits`` that show it to ``digits``
  significant digits (``scientific()``), then one common layout for the vector — fixed with as
  many decimals as the element needing most, unless scientific notation is narrower;
- :func:`format_pval` is ``format.pval`` (``< 2e-16`` below machine epsilon);
- :func:`print_coefmat` is ``printCoefmat`` (estimates and standard errors rounded together to
  ``digits − digmin`` decimals, test statistics to ``dig.tst``, significance stars);
- :func:`print_matrix` / :func:`print_named` are ``print.default`` of a character matrix and of
  a named vector (``printNamedVector``: one common width, each field followed by a space);
- :func:`abbreviate` is ``abbreviate(x, minlength)`` (lower-case vowels, then lower-case letters
  dropped from the right), as lme4 labels its "Correlation of Fixed Effects";
- :func:`zapsmall`, :func:`strwrap` and :func:`cat_fill` as base R's.

References
----------
R Core Team, ``src/main/format.c`` (``scientific``, ``formatReal``), ``src/main/printvector.c``,
``src/library/base/R/format.R`` (``format.pval``, ``zapsmall``),
``src/library/stats/R/lm.R`` (``printCoefmat``), ``src/main/character.c`` (``stripchars``);
lme4 ``R/lmer.R`` (``print.summary.merMod``, ``formatVC``, ``.prt.*``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["format_real", "format_pval", "zapsmall", "print_coefmat", "print_matrix",
           "print_named", "abbreviate", "strwrap", "cat_fill", "signif_legend"]

_EPS = float(np.finfo(float).eps)
_KP_MAX = 22


def _scientific(x: float, digits: int) -> tuple[int, int, int, bool]:
    """R's ``scientific()``: (neg, kpower, nsig, rounding_widens) of x at ``digits``."""
    if x == 0.0:
        return 0, 0, 1, False
    neg, r = (1, -x) if x < 0 else (0, x)
    kp = math.floor(math.log10(r)) - digits + 1
    r_prec = r / 10.0 ** kp if abs(kp) < 300 else r * 1e303 / 10.0 ** (kp + 303)
    if r_prec < 10.0 ** (digits - 1):
        r_prec *= 10.0
        kp -= 1
    alpha = float(round(r_prec))  # nearbyint: half to even, as the C default rounding mode
    nsig = digits
    for _ in range(digits):
        alpha /= 10.0
        if alpha == math.floor(alpha):
            nsig -= 1
        else:
            break
    if nsig == 0 and digits > 0:
        nsig = 1
        kp += 1
    kpower = kp + digits - 1
    rgt = min(max(digits - kpower, 0), _KP_MAX)
    fuzz = 0.5 / 10.0 ** rgt
    widens = 0 < kpower <= _KP_MAX and r < 10.0 ** kpower - fuzz
    return neg, kpower, nsig, widens


def _layout(values: np.ndarray, digits: int, nsmall: int = 0) -> tuple[int, int, int]:
    """R's ``formatReal``: (width, decimals, exponent digits; 0 = fixed notation)."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return 0, 0, 0
    neg = 0
    rgt = mxl = mxsl = mxns = -(10 ** 9)
    mnl = 10 ** 9
    for x in finite:
        neg_i, kpower, nsig, widens = _scientific(float(x), digits)
        left = kpower + 1
        if widens:
            left -= 1
        sleft = neg_i + (1 if left <= 0 else left)
        right = nsig - left
        neg = neg or neg_i
        rgt, mxl, mnl = max(rgt, right), max(mxl, left), min(mnl, left)
        mxsl, mxns = max(mxsl, sleft), max(mxns, nsig)
    if mxl < 0:
        mxsl = 1 + neg
    rgt = max(rgt, 0)
    width_fixed = mxsl + rgt + (rgt != 0)
    e = 2 if (mxl > 100 or mnl <= -99) else 1
    d = mxns - 1
    width_sci = neg + (d > 0) + d + 4 + e
    if width_fixed <= width_sci:
        if nsmall > rgt:
            rgt = nsmall
            width_fixed = mxsl + rgt + (rgt != 0)
        return width_fixed, rgt, 0
    return width_sci, d, e


def _encode(x: float, width: int, d: int, e: int) -> str:
    x = 0.0 if x == 0 else x  # R's encodeReal drops the sign of a negative zero
    if np.isnan(x):
        text = "NaN"
    elif np.isinf(x):
        text = "Inf" if x > 0 else "-Inf"
    elif e:
        mant, _, exp = f"{x:.{d}e}".partition("e")
        sign, digits = exp[0], exp[1:].lstrip("0") or "0"
        text = f"{mant}e{sign}{digits.rjust(e + 1, '0')}"
    else:
        text = f"{x:.{d}f}"
    return text.rjust(width)


def format_real(values, digits: int = 7, nsmall: int = 0) -> list[str]:
    """R's ``format(x, digits = digits, nsmall = nsmall)`` of a numeric vector (or matrix,
    flattened): one common notation and width.

    Examples
    --------
    >>> format_real([612.1002, 35.0717, 654.9412], digits=4)
    ['612.10', ' 35.07', '654.94']
    >>> format_real([1e-20, 1.0], digits=4)
    ['1e-20', '1e+00']
    >>> format_real([1.0, 0.07], digits=7, nsmall=2)
    ['1.00', '0.07']
    """
    x = np.asarray(values, float).ravel()
    width, d, e = _layout(x, digits, nsmall)
    width = max(width, *(3 for v in x if np.isnan(v)), *(
        4 if v < 0 else 3 for v in x if np.isinf(v)), 0)
    return [_encode(float(v), width, d, e) for v in x]


def zapsmall(values, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall`` (as lme4 sees it, through Matrix's generic in R 4.2): round to
    ``digits − log10(max |x|)`` decimals, that count rounded half up (R's ``fround``).

    Examples
    --------
    >>> zapsmall([1.0, 1e-20]).tolist()
    [1.0, 0.0]
    >>> zapsmall([2.979585805, 0.062922164], 5).tolist()
    [2.97959, 0.06292]
    """
    x = np.asarray(values, float)
    finite = x[np.isfinite(x)]
    mx = float(np.max(np.abs(finite))) if len(finite) else 0.0
    places = max(0.0, digits - math.log10(mx)) if mx > 0 else digits
    return np.round(x, int(math.floor(places + 0.5)))


def format_pval(pvalues, digits: int = 3, eps: float = _EPS) -> list[str]:
    """R's ``format.pval``: fixed for p ≥ 1e-4 (1e-3 when ``digits`` is 1), scientific below,
    ``< 2e-16`` under ``eps``; each group formatted together.

    Examples
    --------
    >>> format_pval([1.47e-09, 0.001068, 0.000474, 0.000182])
    ['1.47e-09', '0.001068', '0.000474', '0.000182']
    >>> format_pval([1e-20, 3.26e-06])
    ['< 2e-16', '3.26e-06']
    """
    p = np.asarray(pvalues, float)
    out = ["NA"] * len(p)
    ok = ~np.isnan(p)
    idx = np.nonzero(ok)[0]
    is0 = p[idx] < eps
    rest = idx[~is0]
    rr: list[str] = []
    if len(rest):
        pv = p[rest]
        expo = np.floor(np.log10(np.where(pv > 0, pv, 1e-50)))
        fixp = (expo >= -3) | ((expo == -4) & (digits > 1))
        for mask in (fixp, ~fixp):
            if mask.any():
                for i, s in zip(rest[mask], format_real(pv[mask], digits)):
                    out[i] = s
        rr = [out[i] for i in rest]
    if is0.any():
        dig = max(1, digits - 2)
        if len(rest):
            nc = max(len(s) for s in rr)
            if dig > 1 and dig + 6 > nc:
                dig = max(1, nc - 7)
            sep = "" if (dig == 1 and nc <= 6) else " "
        else:
            sep = "" if dig == 1 else " "
        text = "<" + sep + format_real([eps], dig)[0]
        for i in idx[is0]:
            out[i] = text
    return out


def _stars(p: float) -> str:
    return ("***" if p <= 0.001 else "**" if p <= 0.01 else "*" if p <= 0.05 else
            "." if p <= 0.1 else " ")


def signif_legend() -> str:
    """The legend line printed under a table with stars."""
    return "Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1"


def print_matrix(cells: Sequence[Sequence[str]], rownames: Sequence[str],
                 colnames: Sequence[str], right: bool = False) -> str:
    """R's ``print(<character matrix>, quote = FALSE, right = right)``: row names left-justified,
    each column as wide as its widest entry or name, columns separated by one space.

    Examples
    --------
    >>> print(print_matrix([["-0.138"]], ["Days"], ["(Intr)"]))
         (Intr)
    Days -0.138
    """
    rw = max([len(r) for r in rownames] + [0])
    ncol = len(colnames)
    widths = [max([len(colnames[j])] + [len(row[j]) for row in cells]) for j in range(ncol)]
    just = str.rjust if right else str.ljust
    head = " " * rw + "".join(" " + just(c, w) for c, w in zip(colnames, widths))
    lines = [head] + [r.ljust(rw) + "".join(" " + just(v, w) for v, w in zip(row, widths))
                      for r, row in zip(rownames, cells)]
    return "\n".join(lines)


def print_named(values: Sequence[str], names: Sequence[str]) -> str:
    """R's ``print`` of a named vector (``printNamedVector``): one common width for every field,
    right-justified, each followed by a space (fields wrap at 80 characters).

    Examples
    --------
    >>> print_named(["-3.9536", "0.0231"], ["Min", "Median"]).splitlines()
    ['    Min  Median ', '-3.9536  0.0231 ']
    """
    w = max([len(v) for v in values] + [len(n) for n in names])
    per_line = max(1, 80 // (w + 1))
    blocks = []
    for k in range(0, len(values), per_line):
        blocks.append("".join(n.rjust(w) + " " for n in names[k:k + per_line]))
        blocks.append("".join(v.rjust(w) + " " for v in values[k:k + per_line]))
    return "\n".join(blocks)


def print_coefmat(table, digits: int = 4, has_pvalue: bool = True, signif_stars: bool = True,
                  cs_ind: Sequence[int] | None = None, tst_ind: Sequence[int] | None = None,
                  zap_ind: Sequence[int] = ()) -> str:
    """R's ``printCoefmat(x, digits)`` of a DataFrame (rows: coefficients).

    Columns ``cs_ind`` (default: all but the statistic and the p-value) are rounded together to
    ``max(1, digits − digmin)`` decimals, ``digmin = 1 + floor(log10(range(|x|)))``, and
    formatted together; the statistic (``tst_ind``, default the column before the p-value) to
    ``dig.tst = max(1, min(5, digits − 1))`` decimals; p-values by :func:`format_pval` with
    ``dig.tst``; stars and the legend when some p < 0.1.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"Estimate": [251.405, 10.4673], "Std. Error": [6.8246, 1.5458],
    ...                   "df": [17.0, 17.0], "t value": [36.838, 6.7715],
    ...                   "Pr(>|t|)": [1.17e-17, 3.26e-06]}, index=["(Intercept)", "Days"])
    >>> print(print_coefmat(t).splitlines()[1])
    (Intercept)  251.405      6.825  17.000  36.838  < 2e-16 ***
    """
    xm = np.asarray(table.to_numpy(), float).copy()
    nc = xm.shape[1]
    k = nc - int(has_pvalue) - (1 if tst_ind is None else len(tst_ind))
    cs = list(range(k)) if cs_ind is None else list(cs_ind)
    tst = [k] if tst_ind is None else list(tst_ind)
    dig_tst = max(1, min(5, digits - 1))
    cells = np.full(xm.shape, "", dtype=object)
    for i in zap_ind:
        xm[:, i] = zapsmall(xm[:, i], digits)
    if cs:
        block = xm[:, cs]
        acs = np.abs(block[np.isfinite(block)])
        if len(acs):
            nz = acs[acs != 0]
            digmin = 1 + (np.floor(np.log10([nz.min(), nz.max()])) if len(nz) else
                          np.zeros(2))
            places = int(max(1, digits - digmin.min()))
            shown = format_real(np.round(block, places), digits)
            cells[:, cs] = np.array(shown, dtype=object).reshape(block.shape)
    for j in tst:
        cells[:, j] = format_real(np.round(xm[:, j], dig_tst), digits)
    others = [j for j in range(nc) if j not in cs and j not in tst and not
              (has_pvalue and j == nc - 1)]
    for j in others:
        cells[:, j] = format_real(xm[:, j], digits)
    # entries that rounding turned into 0 (or away from it) are shown with digits − 1
    body = [j for j in range(nc) if j not in tst and not (has_pvalue and j == nc - 1)]
    for j in body:
        for i in range(xm.shape[0]):
            if np.isfinite(xm[i, j]) and (xm[i, j] == 0) != (float(cells[i, j]) == 0):
                cells[i, j] = format_real([xm[i, j]], max(1, digits - 1))[0]
    stars = None
    if has_pvalue:
        pv = xm[:, nc - 1]
        cells[:, nc - 1] = format_pval(pv, dig_tst)
        if signif_stars and np.any(pv[~np.isnan(pv)] < 0.1):
            raw = [_stars(p) if not np.isnan(p) else "" for p in pv]
            w = max(len(s) for s in raw)
            stars = [s.ljust(w) for s in raw]
    rows = [list(r) for r in cells]
    names = [str(c) for c in table.columns]
    if stars is not None:
        rows = [r + [s] for r, s in zip(rows, stars)]
        names = names + [""]
    out = print_matrix(rows, [str(i) for i in table.index], names, right=True)
    if stars is not None:
        out += "\n---\n" + signif_legend()
    return out


def _abbreviate_one(text: str, minlength: int) -> str:
    """R's ``stripchars`` for one string (``abbreviate(method = "left.kept")``)."""
    s = list(text.strip())
    if len(s) <= minlength:
        return "".join(s)

    def first(i):
        return s[i - 1].isspace()

    def last(i):
        return (not s[i - 1].isspace()) and (i + 1 >= len(s) or s[i + 1].isspace())

    def vowel(i):
        return s[i] in "aeiou"

    rules = [lambda i: vowel(i) and last(i), lambda i: vowel(i) and not first(i),
             lambda i: s[i].islower() and last(i), lambda i: s[i].islower() and not first(i),
             lambda i: not first(i) and not s[i].isspace()]
    for rule in rules:
        i = len(s) - 1
        while i > 0:
            if i < len(s) and rule(i):
                del s[i]
            if len(s) - s.count(" ") <= minlength:
                return "".join(s).replace(" ", "") if len(s) > minlength else "".join(s)
            i -= 1
    return "".join(s)


def abbreviate(names: Sequence[str], minlength: int = 4) -> list[str]:
    """R's ``abbreviate(names, minlength)``: unique abbreviations of at least ``minlength``
    characters (a longer minimum for names that would collide).

    Examples
    --------
    >>> abbreviate(["(Intercept)", "period2", "Days"], 6)
    ['(Intr)', 'perid2', 'Days']
    """
    names = [str(n) for n in names]
    out = [_abbreviate_one(n, minlength) for n in names]
    length = minlength
    while len(set(out)) < len(out) and length < max(len(n) for n in names):
        length += 1
        dup = {a for a in out if out.count(a) > 1}
        out = [_abbreviate_one(n, length) if a in dup else a for n, a in zip(names, out)]
    return out


def strwrap(text: str, width: int, exdent: int = 0) -> list[str]:
    """R's ``strwrap``: greedy lines of fewer than ``width`` characters, later ones indented."""
    words, lines, cur = text.split(), [], ""
    for w in words:
        indent = exdent if lines else 0
        trial = (cur + " " + w) if cur else (" " * indent + w)
        if cur and len(trial) >= width:
            lines.append(cur)
            cur = " " * exdent + w
        else:
            cur = trial
    if cur:
        lines.append(cur)
    return lines


def cat_fill(items: Sequence[str], width: int = 80) -> str:
    """R's ``cat(..., sep = "", fill = TRUE)``: a new line before an item that would pass
    ``width``."""
    lines, cur = [], ""
    for item in items:
        if cur and len(cur) + len(item) > width:
            lines.append(cur)
            cur = ""
        cur += item
    lines.append(cur)
    return "\n".join(lines)
