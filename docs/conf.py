"""Sphinx configuration of the mixedppl documentation site.

Build (warnings are errors, as ``.ci/run`` builds it)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Why Sphinx + pydata-sphinx-theme + myst-nb rather than MkDocs Material + mkdocstrings: the
package's docstrings are numpydoc with reST roles (``:func:``, ``:class:``, ``.. math::``), which
Sphinx's autodoc + numpydoc read as they are (mkdocstrings' numpy parser does not resolve the
reST roles); myst-nb renders the notebooks' stored outputs (figures, ``_repr_html_`` tables)
without running them; pydata-sphinx-theme is the theme of NumPy, pandas, PyMC and ArviZ, the
sites this package's users already read.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document the package of this checkout, not an installed copy

import mixedppl  # noqa: E402

project = "mixedppl"
author = "the mixedppl developers"
copyright = "the mixedppl developers"
version = release = mixedppl.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]

# Markdown pages (MyST) and notebooks; the notebooks are never executed here (tests/test_notebooks.py
# runs them, and their stored outputs — figures included — are what the site shows).
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# API reference: autodoc + numpydoc, members in source order; no autosummary stubs written
# into the source tree (the pages in docs/api/ name what they document).
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc "Parameters" sections give the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()

html_theme = "pydata_sphinx_theme"
html_title = f"mixedppl {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "header_links_before_dropdown": 4,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path: list[str] = []
html_show_sourcelink = False
