"""The mixedppl code on the documentation pages runs.

Every fenced block marked ``python`` on a page of :data:`PAGES` runs, in order, in one namespace
per page (blocks of other libraries' code are marked ``py`` or ``r`` and are not run). A page
whose calls stop working fails here, not in a reader's session. Slow: the pages fit about fifteen
models (LMM, GLMM, CLMM, Cox), ~1–2 minutes on a shared 2-core machine.
"""

import re
import warnings
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ["getting_started.md", "coming_from_r.md", "coming_from_python.md", "families/lmm.md",
         "families/glmm.md", "families/clmm.md", "families/cox.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    """The bodies of the page's ```python fences, in order."""
    return BLOCK.findall(text)


def test_python_blocks_are_found():
    blocks = python_blocks("x\n```python\na = 1\n```\n```py\nb = 2\n```\n```python\nc = 3\n```\n")
    assert blocks == ["a = 1\n", "c = 3\n"]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_page_code_runs(page):
    blocks = python_blocks((DOCS / page).read_text())
    assert blocks, f"{page} has no python block"
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a page's example must not warn (convergence, data, …)
        for i, code in enumerate(blocks):
            try:
                exec(compile(code, f"{page}[block {i}]", "exec"), namespace)
            except Exception as err:  # name the page and block
                raise AssertionError(f"{page}, python block {i} failed:\n{code}") from err
