"""Leverage (mixedppl.diagnostics.leverage): the hat-matrix diagonals against lme4 1.1-31
(``hatvalues``; tests/reference/inf_influence.json), 1e-6 absolute."""

from functools import lru_cache

import pytest

import mixedppl as mp
from conftest import reference, rel_close

CASES = {"sleepstudy_slope": ("sleepstudy", "Reaction ~ Days + (Days | Subject)")}


@lru_cache(maxsize=None)
def fitted(case):
    data, formula = CASES[case]
    return mp.lmer(formula, mp.datasets.load(data))


@pytest.mark.parametrize("part,key", [("total", "hat"), ("fixed", "hat_fixef"), ("random", "hat_ranef")])
def test_leverage(part, key):
    ref = reference("inf_influence")["leverage"]
    rel_close(fitted("sleepstudy_slope").leverage(part), ref[key], 0, 1e-6)


def test_leverage_bad_part():
    with pytest.raises(ValueError, match="part"):
        fitted("sleepstudy_slope").leverage("both")
