"""Shared test helpers: R's reference results (copied from R into tests/reference/)."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

REF_DIR = Path(__file__).parent / "reference"

# Tests fit on the NumPy tier only (no C tier compiled in the background, see docs/compile.md):
# a background swap between two fits could change the last bits of results compared exactly;
# tests/test_tiers.py checks the C tier against it.
os.environ.setdefault("MIXEDPPL_TIER", "numpy")


@lru_cache(maxsize=None)
def reference(case: str) -> dict:
    """One reference file (``tests/reference/<case>.json``) written by R."""
    return json.loads((REF_DIR / f"{case}.json").read_text())


def rel_close(ours, theirs, rtol, atol=0.0) -> None:
    """Assert |ours − theirs| ≤ max(rtol·|theirs|, atol), elementwise, with a useful message."""
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    bound = np.maximum(rtol * np.abs(theirs), atol)
    bad = np.abs(ours - theirs) > bound
    assert not bad.any(), f"ours={ours[bad]} R={theirs[bad]} bound={bound[bad]}"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("MIXEDPPL_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or MIXEDPPL_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
