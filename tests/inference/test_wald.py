"""inference/wald.py: hypotheses in text, χ² and F Wald tests against explicit computations."""

import numpy as np
import pytest
from scipy import stats

import mixedppl as mp
from mixedppl.inference.wald import hypothesis_matrix


def test_hypothesis_text():
    names = ["(Intercept)", "period2", "period3", "period4"]
    L, r = hypothesis_matrix(names, "period2 - 0.5*period3 = 1.5; period4")
    assert L.tolist() == [[0, 1, -0.5, 0], [0, 0, 0, 1]] and r.tolist() == [1.5, 0]
    with pytest.raises(ValueError, match="coefficient name"):
        hypothesis_matrix(names, "period5 = 0")
    with pytest.raises(ValueError, match="no coefficient"):
        hypothesis_matrix(names, "1 = 2")


def test_glmm_chisq_is_the_explicit_quadratic_form():
    g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 mp.datasets.load("cbpp"))
    L = np.array([[0, 1, -1, 0], [0, 0, 1, -1.0]])
    out = g.wald_test(L, [0.1, 0.0])
    d = L @ g.beta - [0.1, 0.0]
    W = d @ np.linalg.solve(L @ g.vcov_beta @ L.T, d)
    assert out["Chisq"].iloc[0] == pytest.approx(W, rel=1e-10)
    assert out["Pr(>Chisq)"].iloc[0] == pytest.approx(stats.chi2.sf(W, 2), rel=1e-10)
    one = g.wald_test("period2 = 0")
    assert one["Chisq"].iloc[0] == pytest.approx(g.zvalues["period2"] ** 2, rel=1e-10)


def test_lmm_one_row_f_is_the_squared_t():
    fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    out = fit.wald_test("Days = 0")
    assert out["F value"].iloc[0] == pytest.approx(fit.tvalues["Days"] ** 2, rel=1e-10)
    assert out["DenDF"].iloc[0] == pytest.approx(fit.df["Days"], rel=1e-8)
    with pytest.raises(ValueError, match="columns"):
        fit.wald_test([[1.0, 0.0, 0.0]])
