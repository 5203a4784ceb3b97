r"""Contrasts of estimated marginal means and their multiplicity adjustments, as emmeans.

A contrast matrix C (one row per contrast, one column per cell of ``specs``) acts on the cells of
each ``by`` group: the contrast's row on β is :math:`c^\top L` (L the cells' averaged
model-matrix rows, :mod:`mixedppl.inference.emmeans`), its estimate :math:`c^\top L\hat\beta`,
SE :math:`\sqrt{c^\top L V L^\top c}` and df that of the row (Kenward–Roger / Satterthwaite per
row for an LMM, ∞ otherwise). ``ratio`` = estimate / SE.

Methods (emmeans' ``*.emmc``): ``"pairwise"`` — every :math:`m_i - m_j`, i < j, labelled
``"A - B"``; ``"revpairwise"`` — every :math:`m_i - m_j`, j < i, in emmeans' order
(``"B - A"``, ``"C - A"``, ``"C - B"``, ``"D - A"``, …); ``"trt.vs.ctrl"`` — :math:`m_i - m_1`
(``"B - A"``); ``"poly"`` — orthogonal polynomial contrasts scaled to integers (``linear``,
``quadratic``, …); or a custom matrix /
dict of coefficient vectors.

**Response scale** (``type="response"``, a GLMM with a log or logit link; emmeans'
``contrast(..., type = "response")``): a contrast of log means or log odds is back-transformed to
a ratio :math:`r = e^{\hat c}` (column ``ratio`` for a log link, ``odds_ratio`` for logit;
labels ``"A / B"``), its SE by the delta method :math:`r\,\operatorname{SE}(\hat c)`; the test
is still of :math:`c = 0` on the link scale (``null`` = 1, the statistic in ``z_ratio``, the
same p-values). For any other link emmeans keeps the contrasts on the link scale ("contrasts
are still on the probit scale"), and so does this, with a warning.

Adjustments within each ``by`` group (the family of its m contrasts, k means), with
:math:`p_i` the unadjusted two-sided p-values and :math:`t_i` the ratios:

- ``"tukey"``: :math:`P(Q_{k,\nu} > \sqrt2|t_i|)`, Q the studentized range (R's ``ptukey``);
  for contrasts that are not all pairwise comparisons emmeans uses Šidák instead, and so do we;
- ``"sidak"``: :math:`1-(1-p_i)^m`; ``"bonferroni"``: :math:`\min(1, m p_i)`;
- ``"holm"``: :math:`\max_{j\le i}\min(1, (m-j+1)p_{(j)})` over the sorted p-values;
- ``"dunnettx"`` (emmeans' default for ``trt.vs.ctrl``): Tamhane's approximation of Dunnett,
  :math:`1 - [w\,F_Q(\sqrt2|t|; k', \nu) + (1-w)\,F_{1,\nu}(t^2)^m]`, :math:`w=(m-1)/m`,
  :math:`k' = (1+\sqrt{1+8m})/2`;
- ``"none"``.

References
----------
Lenth, R. V. emmeans (R package 1.8.4): ``contrast``, ``pairwise.emmc``, ``.adj.p.value``.
Holm, S. (1979). Scand. J. Stat. 6, 65–70.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import scipy
from scipy import special

from ..fit.records import LaplaceFit
from .emmeans import CellMeans, cell_means, coefficient_basis, estimable, reference_grid

__all__ = ["contrast_matrix", "adjust_pvalues", "contrast_table", "cell_labels", "ADJUST_METHODS",
           "response_scale"]

ADJUST_METHODS = ("tukey", "sidak", "dunnettx", "holm", "bonferroni", "none")
_DEFAULT_ADJUST = {"pairwise": "tukey", "revpairwise": "tukey", "trt.vs.ctrl": "dunnettx",
                   "poly": "none", "custom": "none"}
_DEGREES = ["linear", "quadratic", "cubic", "quartic"] + [f"degree {d}" for d in range(5, 21)]


def _poly_integers(k: int, max_degree: int) -> np.ndarray:
    """emmeans' ``poly.emmc``: R's orthogonal ``poly(1:k)`` columns rescaled to integers."""
    x = np.arange(1, k + 1, dtype=float)
    V = np.vander(x - x.mean(), max_degree + 1, increasing=True)
    Q, _ = np.linalg.qr(V)
    cols = []
    for j in range(1, max_degree + 1):
        con = Q[:, j]
        con = con * np.sign(con[-1])        # R's poly: last entry positive
        con = con / con[con > 0.01].min()
        z = np.max(np.abs(con - np.round(con)))
        while z > 0.05:
            con = con / z
            z = np.max(np.abs(con - np.round(con)))
        cols.append(np.round(con))
    return np.array(cols)


def contrast_matrix(labels: list[str], method="pairwise", sep: str = " - "
                    ) -> tuple[np.ndarray, list[str], str]:
    """The contrast matrix of ``method`` over cells labelled ``labels``.

    Parameters
    ----------
    labels : list of str
        Cell labels (emmeans joins several variables' levels with a space).
    method : {"pairwise", "revpairwise", "trt.vs.ctrl", "poly"}, dict or array
        A dict maps contrast names to coefficient vectors (one per cell); a 2-D array has one
        contrast per row (named ``c1``, ``c2``, …).
    sep : str
        What joins two cells' labels in a comparison's name (``" / "`` for ratios).

    Returns
    -------
    C : ndarray (m, k)
    names : list of str
    kind : str
        The method's name ("custom" for a matrix), which picks the default adjustment.

    Examples
    --------
    >>> C, names, _ = contrast_matrix(["A", "B", "C"])
    >>> names, C.tolist()
    (['A - B', 'A - C', 'B - C'], [[1.0, -1.0, 0.0], [1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])
    >>> contrast_matrix(["A", "B", "C"], "revpairwise")[1]
    ['B - A', 'C - A', 'C - B']
    >>> contrast_matrix(["a", "b", "c", "d"], "poly")[0].astype(int).tolist()
    [[-3, -1, 1, 3], [1, -1, -1, 1], [-1, 3, -3, 1]]
    """
    k = len(labels)
    if isinstance(method, str):
        rows, names = [], []
        if method == "pairwise":
            for i in range(k - 1):
                for j in range(i + 1, k):
                    c = np.zeros(k)
                    c[i], c[j] = 1.0, -1.0
                    rows.append(c)
                    names.append(f"{labels[i]}{sep}{labels[j]}")
        elif method == "revpairwise":
            for i in range(1, k):
                for j in range(i):
                    c = np.zeros(k)
                    c[i], c[j] = 1.0, -1.0
                    rows.append(c)
                    names.append(f"{labels[i]}{sep}{labels[j]}")
        elif method == "trt.vs.ctrl":
            for i in range(1, k):
                c = np.zeros(k)
                c[0], c[i] = -1.0, 1.0
                rows.append(c)
                names.append(f"{labels[i]}{sep}{labels[0]}")
        elif method == "poly":
            if k < 2:
                raise ValueError("polynomial contrasts need at least 2 levels")
            rows = list(_poly_integers(k, min(6, k - 1)))
            names = _DEGREES[:len(rows)]
        else:
            raise ValueError(f"method must be 'pairwise', 'revpairwise', 'trt.vs.ctrl', 'poly', "
                             f"a dict or a matrix, got {method!r}")
        if k < 2:
            raise ValueError("contrasts need at least 2 cells")
        return np.array(rows, float).reshape(-1, k), names, method
    if isinstance(method, dict):
        names = [str(n) for n in method]
        C = np.array([np.asarray(v, float) for v in method.values()])
    else:
        C = np.atleast_2d(np.asarray(method, float))
        names = [f"c{i + 1}" for i in range(len(C))]
    if C.shape[1] != k:
        raise ValueError(f"each contrast needs {k} coefficients (one per cell: {labels}), got "
                         f"{C.shape[1]}")
    return C, names, "custom"


def _pdunnx(t: np.ndarray, m: int, df: np.ndarray) -> np.ndarray:
    """emmeans' ``.pdunnx``: Tamhane's approximate Dunnett CDF."""
    w = (m - 1) / m
    k = (1 + np.sqrt(1 + 8 * m)) / 2
    tukey = scipy.stats.studentized_range.cdf(np.sqrt(2) * t, k, df)
    sidak = special.fdtr(1, df, t ** 2) ** m
    return w * tukey + (1 - w) * sidak


def adjust_pvalues(ratio: np.ndarray, df: np.ndarray, adjust: str, n_means: int,
                   pairwise: bool = True) -> tuple[np.ndarray, str]:
    """Adjusted two-sided p-values of one family of contrasts (see the module docstring).

    Returns the p-values and the method used (``"tukey"`` becomes ``"sidak"`` when the family is
    not one set of pairwise comparisons, a single contrast is never adjusted).

    Examples
    --------
    >>> p, how = adjust_pvalues(np.array([2.0, 1.0, 3.0]), np.full(3, np.inf), "holm", 3)
    >>> p.round(5).tolist(), how
    ([0.091, 0.31731, 0.0081], 'holm')
    """
    ratio, df = np.abs(np.asarray(ratio, float)), np.asarray(df, float)
    m = len(ratio)
    p = 2 * np.where(np.isinf(df), special.ndtr(-ratio), special.stdtr(np.where(
        np.isinf(df), 1, df), -ratio))
    if adjust not in ADJUST_METHODS:
        raise ValueError(f"adjust must be one of {ADJUST_METHODS}, got {adjust!r}")
    if m <= 1:
        return p, "none"
    if adjust == "tukey" and not pairwise:
        warnings.warn("adjust='tukey' is only for one set of pairwise comparisons: using "
                      "'sidak' (as emmeans)", UserWarning, stacklevel=3)
        adjust = "sidak"
    if adjust == "none":
        return p, adjust
    if adjust == "bonferroni":
        return np.minimum(1.0, m * p), adjust
    if adjust == "sidak":
        return 1 - (1 - p) ** m, adjust
    if adjust == "holm":
        order = np.argsort(p, kind="stable")
        scaled = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
        out = np.empty(m)
        out[order] = scaled
        return out, adjust
    if adjust == "tukey":
        return scipy.stats.studentized_range.sf(np.sqrt(2) * ratio, n_means, df), adjust
    return 1 - _pdunnx(ratio, m, df), adjust


_PARENS = re.compile(r" - | \+ |[*/]")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def cell_labels(cells: pd.DataFrame, variables: list[str]) -> list[str]:
    """emmeans' labels of the cells: the variables' levels joined by a space; a variable whose
    levels all read as numbers gets its name in front (``period1``: ``enhance.levels``); a
    label with `` - ``, `` + ``, ``*`` or ``/`` in it is put in parentheses (``parens``).

    Examples
    --------
    >>> cells = pd.DataFrame({"period": ["1", "2"], "herd": ["a", "b"]})
    >>> cell_labels(cells, ["period", "herd"])
    ['period1 a', 'period2 b']
    """
    columns = []
    for v in variables:
        text = [_format(x) for x in cells[v]]
        columns.append([v + t for t in text] if all(_is_number(t) for t in text) else text)
    labels = [" ".join(parts) for parts in zip(*columns)]
    return [f"({lab})" if _PARENS.search(lab) else lab for lab in labels]


def _format(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


_RATIO_COLUMNS = {"log": "ratio", "logit": "odds_ratio"}


def response_scale(record, type: str) -> str | None:
    """The column a contrast's back-transformed estimate goes in (``"ratio"`` for a log link,
    ``"odds_ratio"`` for logit), or None when the contrasts stay on the link scale (``type=
    "link"``, or a link whose differences do not back-transform to a ratio: warned about, as
    emmeans' note "contrasts are still on the … scale").

    Examples
    --------
    >>> import mixedppl as mp
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"))
    >>> response_scale(g.record, "response")
    'odds_ratio'
    """
    if type == "link":
        return None
    if type != "response":
        raise ValueError(f"type must be 'link' or 'response', got {type!r}")
    if not isinstance(record, LaplaceFit) or record.vcov_alpha_beta is not None:
        raise ValueError("type='response' is for GLMMs (an LMM's contrasts are on the response "
                         "scale already; a CLMM's are on the latent scale)")
    name = record.link.name
    if name not in _RATIO_COLUMNS:
        warnings.warn(f"contrasts are still on the {name} scale: only log and logit contrasts "
                      "back-transform to ratios (as emmeans)", UserWarning, stacklevel=3)
        return None
    return _RATIO_COLUMNS[name]


def _to_ratios(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """A link-scale contrast table (named ``A / B``) as ratios (module docstring)."""
    value = np.exp(frame["estimate"].to_numpy())
    out = frame.drop(columns=["estimate", "SE", "df", "ratio", "p_value"])
    out[column], out["SE"], out["df"] = value, value * frame["SE"].to_numpy(), frame["df"]
    out["null"], out["z_ratio"], out["p_value"] = 1.0, frame["ratio"], frame["p_value"]
    return out


def contrast_table(record, specs, method="pairwise", adjust: str | None = None, by=None,
                   at: dict | None = None, ddf: str = "Kenward-Roger", kr=None,
                   type: str = "link") -> pd.DataFrame:
    """Contrasts of the marginal means of ``specs`` within each ``by`` group, as
    ``contrast(emmeans(fit, specs, by = by), method, adjust = adjust)``.

    Parameters
    ----------
    record : LMMFit or LaplaceFit
    specs, by, at
        As :func:`~mixedppl.inference.emmeans.marginal_means`.
    method : {"pairwise", "revpairwise", "trt.vs.ctrl", "poly"}, dict or array
        See :func:`contrast_matrix`.
    adjust : {"tukey", "sidak", "dunnettx", "holm", "bonferroni", "none"}, optional
        Default: emmeans' for the method (tukey for pairwise, dunnettx for trt.vs.ctrl, none
        for poly and custom contrasts).
    ddf : {"Kenward-Roger", "Satterthwaite", "asymptotic"}
        LMM df; GLMMs / CLMMs are asymptotic.
    type : {"link", "response"}
        ``"response"``: a GLMM's contrasts as ratios (log link) or odds ratios (logit), see
        the module docstring.

    Returns
    -------
    DataFrame
        ``by`` variables, ``contrast``, ``estimate``, ``SE``, ``df``, ``ratio`` (t or z),
        ``p_value``; ``attrs["adjust"]`` holds the adjustment used. On the response scale:
        ``contrast`` (``"A / B"``), ``ratio`` or ``odds_ratio``, ``SE``, ``df``, ``null``,
        ``z_ratio``, ``p_value``.

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)",
    ...               mp.datasets.load("cake"))
    >>> contrast_table(fit.record, "recipe")["contrast"].tolist()
    ['A - B', 'A - C', 'B - C']
    """
    scale = response_scale(record, type)
    cm: CellMeans = cell_means(reference_grid(record.spec, at), specs, by)
    basis = coefficient_basis(record, ddf, kr)
    specs_vars, by_vars = cm.specs, cm.by
    n_groups = int(np.prod([cm.cells[v].nunique() for v in by_vars])) if by_vars else 1
    k = len(cm.cells) // n_groups
    labels = cell_labels(cm.cells.iloc[:k], specs_vars)
    C, names, kind = contrast_matrix(labels, method, " - " if scale is None else " / ")
    adjust = _DEFAULT_ADJUST[kind] if adjust is None else adjust
    full = record.spec.fixed_design.matrix
    frames, used = [], "none"
    for g in range(n_groups):
        rows = slice(g * k, (g + 1) * k)
        coef_rows = C @ basis.to_coef(cm.L[rows])
        est = coef_rows @ basis.coef + C @ cm.offset[rows]
        se = np.sqrt(np.einsum("ij,jk,ik->i", coef_rows, basis.vcov, coef_rows))
        df = basis.df(coef_rows)
        ok = estimable(C @ cm.L_full[rows], full)
        est, se, df = np.where(ok, est, np.nan), np.where(ok, se, np.nan), np.where(ok, df, np.nan)
        ratio = est / se
        p, used = adjust_pvalues(ratio, df, adjust, k, pairwise=kind in ("pairwise", "revpairwise"))
        frame = pd.DataFrame({"contrast": names, "estimate": est, "SE": se, "df": df,
                              "ratio": ratio, "p_value": p})
        for v in reversed(by_vars):
            frame.insert(0, v, cm.cells[v].iloc[g * k])
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    if scale is not None:
        table = _to_ratios(table, scale)
    table.attrs["adjust"] = used
    return table
