"""HTML (notebook), Markdown and LaTeX tables of results and summaries."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

import mixedppl as mp


class _Cells(HTMLParser):
    """Collects the text of every <td> / <th> and the tags seen."""

    def __init__(self):
        super().__init__()
        self.tags, self.cells, self._in = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in = tag in ("td", "th", "caption")

    def handle_endtag(self, tag):
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.cells.append(data)


def _parse(html: str) -> _Cells:
    p = _Cells()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def fits():
    sleep, cbpp, wine = (mp.datasets.load(n) for n in ("sleepstudy", "cbpp", "wine"))
    return {"lmm": mp.lmer("Reaction ~ Days + (Days | Subject)", sleep),
            "glmm": mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp),
            "clmm": mp.clmm("rating ~ temp + contact + (1 | judge)", wine)}


@pytest.mark.parametrize("kind, term, estimate", [("lmm", "Days", "10.47"),
                                                  ("glmm", "period2", "-0.9923"),
                                                  ("clmm", "tempwarm", "3.063")])
def test_repr_html_is_a_table_of_the_estimates(fits, kind, term, estimate):
    fit = fits[kind]
    for html in (fit._repr_html_(), fit.summary()._repr_html_()):
        parsed = _parse(html)
        assert "table" in parsed.tags and "td" in parsed.tags
        cells = parsed.cells
        assert term in cells and estimate in cells
        rows = [k for k, c in enumerate(cells) if c == term]     # also a name in varcorr
        assert any(cells[k + 1] == estimate for k in rows)


def test_summary_html_keeps_the_text(fits):
    s = fits["lmm"].summary()
    parsed = _parse(s._repr_html_())
    assert "Random effects" in parsed.cells and "Fixed effects" in parsed.cells
    assert "REML criterion at convergence: 1743.6" in s._repr_html_()
    assert str(s).startswith("Linear mixed model fit by REML")


def test_markdown_and_latex(fits):
    md = fits["lmm"].to_markdown().splitlines()
    assert md[0] == "|  | Estimate | Std. Error | df | t value | Pr(>\\|t\\|) |"
    assert md[3] == "| Days | 10.47 | 1.546 | 17 | 6.771 | 3.264e-06 |"
    tex = fits["glmm"].to_latex(caption="cbpp", label="tab:cbpp")
    assert r"\begin{tabular}{lrrrr}" in tex and r"\caption{cbpp}" in tex
    assert r"Pr(\textgreater{}\textbar{}z\textbar{})" in tex
    assert r"period2 & -0.9923 & 0.3066 & -3.236 & 0.001212 \\" in tex
    clmm = fits["clmm"].to_markdown().splitlines()
    assert [r.split(" | ")[0] for r in clmm[2:]] == ["| 1\\|2", "| 2\\|3", "| 3\\|4", "| 4\\|5",
                                                      "| tempwarm", "| contactyes"]


def test_html_in_ipython_formatter(fits):
    formatters = pytest.importorskip("IPython.core.formatters")
    html = formatters.HTMLFormatter()(fits["lmm"])
    assert html is not None and "<table" in html
