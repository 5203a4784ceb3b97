"""Tables of a result as HTML (notebooks), Markdown and LaTeX, with R's digits.

Numbers are shown as R's ``print`` shows a coefficient table: ``digits`` significant digits
(default 4, lme4's summary), p-values as R's ``printCoefmat`` shows them (``format.pval`` with
``eps = 2.2e-16``: ``< 2.2e-16`` below it, 4 significant digits otherwise). Nothing here needs
jinja2 or tabulate: the three writers share :func:`formatted_table`.

Examples
--------
>>> t = pd.DataFrame({"Estimate": [251.40510, 10.46729], "Pr(>|t|)": [1.2e-17, 3.3e-06]},
...                  index=["(Intercept)", "Days"])
>>> print(to_markdown(t))
|  | Estimate | Pr(>\\|t\\|) |
| --- | ---: | ---: |
| (Intercept) | 251.4 | < 2.2e-16 |
| Days | 10.47 | 3.3e-06 |
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

__all__ = ["formatted_table", "to_markdown", "to_latex", "html_table", "format_pvalue"]

#: R's ``.Machine$double.eps``: p-values below it print as ``< 2.2e-16``.
_EPS = 2.220446049250313e-16


def format_pvalue(p: float, digits: int = 4) -> str:
    """R's ``format.pval(p, digits = 4, eps = .Machine$double.eps)`` (``printCoefmat``).

    Examples
    --------
    >>> format_pvalue(1e-20), format_pvalue(3.263824e-06), format_pvalue(np.nan)
    ('< 2.2e-16', '3.264e-06', '')
    """
    if p is None or not np.isfinite(p):
        return ""
    return "< 2.2e-16" if p < _EPS else f"{p:.{digits}g}"


def _format_value(x, digits: int) -> str:
    if isinstance(x, (float, np.floating)):
        return "" if not np.isfinite(x) else f"{x:.{digits}g}"
    if isinstance(x, (int, np.integer)):
        return str(x)
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x)


def formatted_table(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """The table as strings: p-value columns (``Pr(...)``, ``p_value``) by
    :func:`format_pvalue`, other numbers with ``digits`` significant digits, NaN as ``""``."""
    out = {}
    for col in table.columns:
        is_p = str(col).startswith("Pr(") or str(col) == "p_value"
        out[col] = [format_pvalue(v) if is_p and isinstance(v, (float, np.floating))
                    else _format_value(v, digits) for v in table[col]]
    return pd.DataFrame(out, index=[str(i) for i in table.index])


def _numeric(table: pd.DataFrame) -> list[bool]:
    return [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]


def to_markdown(table: pd.DataFrame, digits: int = 4, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned; ``|`` escaped)."""
    cells = formatted_table(table, digits)
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    head = ([""] if index else []) + [esc(c) for c in cells.columns]
    align = (["---"] if index else []) + ["---:" if n else "---" for n in _numeric(table)]
    rows = [([esc(i)] if index else []) + [esc(v) for v in row]
            for i, row in zip(cells.index, cells.to_numpy())]
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, align, *rows])


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
          "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
          "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
          "|": r"\textbar{}"}


def _latex_escape(s: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in str(s))


def to_latex(table: pd.DataFrame, digits: int = 4, caption: str | None = None,
             label: str | None = None) -> str:
    r"""A LaTeX ``tabular`` (booktabs rules), in a ``table`` float when a caption or label is
    given.

    Examples
    --------
    >>> print(to_latex(pd.DataFrame({"Estimate": [1.5]}, index=["x_1"])))
    \begin{tabular}{lr}
    \toprule
     & Estimate \\
    \midrule
    x\_1 & 1.5 \\
    \bottomrule
    \end{tabular}
    """
    cells = formatted_table(table, digits)
    spec = "l" + "".join("r" if n else "l" for n in _numeric(table))
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & " + " & ".join(_latex_escape(c) for c in cells.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_escape(v) for v in [i, *row]) + r" \\"
              for i, row in zip(cells.index, cells.to_numpy())]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption is None and label is None:
        return "\n".join(lines)
    extra = ([rf"\caption{{{_latex_escape(caption)}}}"] if caption else []) + (
        [rf"\label{{{label}}}"] if label else [])
    return "\n".join([r"\begin{table}", r"\centering", *lines, *extra, r"\end{table}"])


def html_table(table: pd.DataFrame, caption: str | None = None, digits: int = 4,
               index: bool | None = None) -> str:
    """An HTML ``<table>`` (escaped; numeric columns right-aligned) for ``_repr_html_``; the
    index is shown unless it is a plain ``RangeIndex`` (``index=None``).

    Examples
    --------
    >>> html_table(pd.DataFrame({"a": [1.0]}, index=["x<y"]), caption="T")
    '<table class="mixedppl-table"><caption>T</caption><thead><tr><th></th><th style="text-align: right">a</th></tr></thead><tbody><tr><th>x&lt;y</th><td style="text-align: right">1</td></tr></tbody></table>'
    """
    if index is None:
        index = not isinstance(table.index, pd.RangeIndex)
    cells = formatted_table(table, digits)
    numeric = _numeric(table)
    style = lambda n: ' style="text-align: right"' if n else ' style="text-align: left"'  # noqa: E731
    parts = ['<table class="mixedppl-table">']
    if caption:
        parts.append(f"<caption>{html.escape(caption)}</caption>")
    head = "".join(f"<th{style(n)}>{html.escape(str(c))}</th>"
                   for c, n in zip(cells.columns, numeric))
    parts.append(f"<thead><tr>{'<th></th>' if index else ''}{head}</tr></thead><tbody>")
    for i, row in zip(cells.index, cells.to_numpy()):
        tds = "".join(f"<td{style(n)}>{html.escape(v)}</td>" for v, n in zip(row, numeric))
        parts.append(f"<tr>{f'<th>{html.escape(i)}</th>' if index else ''}{tds}</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)
