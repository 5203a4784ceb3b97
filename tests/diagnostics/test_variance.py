"""ICC and Nakagawa R² (mixedppl.diagnostics.variance) against R (performance 0.10.2, lme4
1.1-31; tests/reference/inf_icc_r2.json).

Tolerance (issue 5): 1e-4 against the ``by_hand_tight_fit`` blocks (1e-3 for the binomial GLMM).
"""

from functools import lru_cache

import pytest

import mixedppl as mp
from conftest import reference, rel_close

ICC_CASES = {
    "sleepstudy_intercept": ("sleepstudy", "Reaction ~ Days + (1 | Subject)"),
    "sleepstudy_slope": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "dyestuff": ("dyestuff", "Yield ~ 1 + (1 | Batch)"),
    "penicillin": ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
}


@lru_cache(maxsize=None)
def fitted(case):
    data, formula = ICC_CASES[case]
    return mp.lmer(formula, mp.datasets.load(data))


@pytest.mark.parametrize("case", sorted(ICC_CASES))
def test_icc_and_r2(case):
    ref = reference("inf_icc_r2")["models"][case]["by_hand_tight_fit"]
    fit = fitted(case)
    icc, r2 = fit.icc(), fit.r_squared()
    assert list(icc.index) == ["adjusted", "unadjusted"]
    assert list(r2.index) == ["marginal", "conditional"]
    rel_close(icc.to_numpy(), [ref["ICC_adjusted"], ref["ICC_unadjusted"]], 1e-4, 1e-8)
    rel_close(r2.to_numpy(), [ref["R2_marginal"], ref["R2_conditional"]], 1e-4, 1e-8)


@pytest.mark.parametrize("case", ["sleepstudy_intercept", "dyestuff", "penicillin"])
def test_icc_by_group(case):
    ref = reference("inf_icc_r2")["models"][case]["performance"]["icc_by_group"]
    got = fitted(case).icc(by_group=True)
    assert list(got.index) == ref["group"]
    rel_close(got.to_numpy(), ref["ICC"], 1e-4)


def test_icc_by_group_refuses_random_slopes():
    with pytest.raises(ValueError, match="random slopes"):
        fitted("sleepstudy_slope").icc(by_group=True)


def test_glmm_icc_and_r2_match_performance():
    """cbpp binomial logit: performance::icc / r2_nakagawa by hand at the tight fit."""
    ref = reference("inf_icc_r2")["models"]["cbpp"]["by_hand_tight_fit"]
    g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 mp.datasets.load("cbpp"), family="binomial")
    rel_close(g.icc().to_numpy(), [ref["ICC_adjusted"], ref["ICC_unadjusted"]], 1e-3)
    rel_close(g.r_squared().to_numpy(), [ref["R2_marginal"], ref["R2_conditional"]], 1e-3)
    p = mp.glmer("TICKS ~ YEAR + (1 | LOCATION)", mp.datasets.load("grouseticks"),
                 family="poisson")
    with pytest.raises(NotImplementedError, match="binomial GLMMs"):
        p.icc()
