"""Shared test helpers: R's reference results (copied from R into tests/reference/), the slow-test
switch, and the doctests of the package.

The test files live in one folder per package (tests/README.md) and import the helpers of this
folder by their bare names (``from conftest import reference``, ``from lmm_cases import CASES``,
``from independent import DenseLMM``): this folder is put on ``sys.path`` below, so that works from
every sub-folder and under every ``--import-mode``. File names are unique across the folders (no
``__init__.py``), as pytest's rootdir-based imports require.

The package's docstring examples run as doctests (``--doctest-modules`` over ``mixedppl/``,
pyproject.toml). A doctest that draws from the posterior with PyMC (``.sample(``,
``sample_model(``, ``pm.sample(``) is a slow test: it is skipped unless ``--runslow`` or
``MIXEDPPL_SLOW=1``, like the tests marked ``slow``. These hooks live here, so they apply when
tests/ is collected (``pytest -q`` collects tests/ and mixedppl/); ``pytest mixedppl`` alone runs
every doctest.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

TESTS_DIR = Path(__file__).resolve().parent
REF_DIR = TESTS_DIR / "reference"
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

# A doctest example that samples with PyMC (NUTS compiles and draws: seconds to minutes).
SAMPLING_CALL = re.compile(r"(\.sample|\bsample_model|\bpm\.sample)\(")

# Tests fit on the NumPy tier only (no C tier compiled in the background, see docs/compile.md):
# a background swap between two fits could change the last bits of results compared exactly;
# tests/core/test_tiers.py checks the C tier against it.
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


def _samples_with_pymc(item: pytest.Item) -> bool:
    """Whether a doctest item runs an example that samples with PyMC (and is not ``+SKIP``)."""
    test = getattr(item, "dtest", None)  # a doctest.DocTest on pytest's doctest items only
    if not isinstance(test, doctest.DocTest):
        return False
    return any(SAMPLING_CALL.search(example.source) and not example.options.get(doctest.SKIP)
               for example in test.examples)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _samples_with_pymc(item):
            item.add_marker(pytest.mark.slow)
    if config.getoption("--runslow") or os.environ.get("MIXEDPPL_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or MIXEDPPL_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def client():
    """A Dask LocalCluster of 2 in-process workers × 1 thread and its Client (one per test
    module; the distributed tests share it)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=":0")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()
