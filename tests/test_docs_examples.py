"""Every public function's docstring example runs (doctest)."""

import doctest
import importlib

import pytest

MODULES = ["mixedppl.api", "mixedppl.anova", "mixedppl.datasets", "mixedppl.results.base",
           "mixedppl.plotting", "mixedppl.priors", "mixedppl.bayes.sample",
           "mixedppl.results.lmm", "mixedppl.spec.formula",
           "mixedppl.bayes.pymc", "mixedppl.fit.records", "mixedppl.fit.lmm_fit",
           "mixedppl.graph.linear_predictor"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
