"""The documentation site builds with warnings as errors, and a browser renders it.

The build is ``python -m sphinx -W --keep-going -b html docs <tmp>`` (as ``.ci/run`` runs it),
in a new process so that autodoc imports this checkout's package. Where Debian's ``chromium`` is
installed (``apt-get install -y chromium``; ``.ci/run`` installs it where it runs as root with
apt-get), it renders two built pages headless and the test
reads the DOM it produced (``--dump-dom``, after the pages' scripts ran):

- the front page: pydata-sphinx-theme's script has set ``data-theme="light"`` (or dark) on
  ``<html>`` — it is absent from the HTML file and only there once the page's JavaScript ran —
  and the table of contents links to the getting-started page;
- the API page of the front doors: the ``<dt id="mixedppl.lmer">`` signature autodoc made from
  ``mp.lmer``'s docstring, with its numpydoc "Parameters" list.

Without chromium those two tests skip; without the ``[docs]`` extra (Sphinx, myst-nb,
pydata-sphinx-theme, numpydoc) all of them skip.
"""

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for module in ("sphinx", "myst_nb", "pydata_sphinx_theme", "numpydoc"):
    pytest.importorskip(module, reason="the [docs] extra is not installed")


pytestmark = pytest.mark.slow  # a full build takes 10–50 s on a shared 2-core machine


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q",
                           "-b", "html", "-d", str(out / "doctrees"), str(ROOT / "docs"),
                           str(out / "html")], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stderr[-5000:]}"
    print(f"docs built in {time.perf_counter() - start:.1f} s")
    return out / "html"


def test_site_builds_without_warnings(site):
    for page in ["index", "getting_started", "coming_from_r", "coming_from_python",
                 "families/lmm", "families/glmm", "families/clmm", "families/cox",
                 "reference/fitting", "reference/results", "benchmarks"]:
        assert (site / f"{page}.html").is_file(), page
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for name in notebooks:
        assert (site / "notebooks" / f"{name}.html").is_file(), name


def test_notebook_pages_show_their_stored_figures(site):
    """Figures stored in a notebook appear in its page (the docs never run the notebooks)."""
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        n_png = sum("image/png" in out.get("data", {}) for cell in nb.cells
                    if cell.cell_type == "code" for out in cell.get("outputs", []))
        html = (site / "notebooks" / f"{path.stem}.html").read_text()
        assert len(re.findall(r"<img[^>]+\.png", html)) >= n_png, path.name


def render(page: Path) -> str:
    """The DOM of ``page`` after headless chromium loaded it and ran its scripts."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_browser_renders_front_page(site):
    assert 'data-theme="' not in (site / "index.html").read_text()  # set only by the script
    dom = render(site / "index.html")
    assert re.search(r'<html[^>]* data-theme="(light|dark)"', dom)
    assert re.search(r'<a class="reference internal" href="getting_started.html">', dom)


def test_browser_renders_api_page(site):
    dom = render(site / "reference" / "fitting.html")
    signature = re.search(r'<dt class="sig sig-object py" id="mixedppl\.lmer">(.*?)</dt>', dom,
                          re.S)
    assert signature and "lmer" in signature.group(1)
    assert re.search(r'<dl class="field-list[^"]*">.*?Parameters', dom, re.S)
