"""inference/contrasts.py: contrasts and p-value adjustments against explicit formulas."""

import numpy as np
import pytest
from scipy import stats

import mixedppl as mp
from mixedppl.inference.contrasts import adjust_pvalues, contrast_matrix


@pytest.fixture(scope="module")
def cake_fit():
    return mp.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)",
                   mp.datasets.load("cake"))


def test_pairwise_are_differences_of_emmeans(cake_fit):
    em = cake_fit.emmeans("temperature", ddf="Satterthwaite")
    con = cake_fit.contrasts("temperature", ddf="Satterthwaite", adjust="none")
    m = em["emmean"].to_numpy()
    diffs = [m[i] - m[j] for i in range(6) for j in range(i + 1, 6)]
    np.testing.assert_allclose(con["estimate"], diffs, atol=1e-9)
    assert con["contrast"].iloc[0] == "temperature175 - temperature185"
    p = 2 * stats.t.sf(np.abs(con["ratio"]), con["df"])
    np.testing.assert_allclose(con["p_value"], p, rtol=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_holm_and_bonferroni_are_the_explicit_formulas(seed):
    rng = np.random.default_rng(seed)
    t, df = rng.normal(0, 2.5, 7), np.full(7, 12.0)
    p = 2 * stats.t.sf(np.abs(t), df)
    bonf, _ = adjust_pvalues(t, df, "bonferroni", 5)
    np.testing.assert_allclose(bonf, np.minimum(1, 7 * p), rtol=1e-12)
    holm, _ = adjust_pvalues(t, df, "holm", 5)
    order = np.argsort(p)
    expected = np.empty(7)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (7 - rank) * p[i]))
        expected[i] = running
    np.testing.assert_allclose(holm, expected, rtol=1e-12)
    sidak, _ = adjust_pvalues(t, df, "sidak", 5)
    np.testing.assert_allclose(sidak, 1 - (1 - p) ** 7, rtol=1e-12)


def test_tukey_with_two_means_is_unadjusted_and_grows_with_k():
    t, df = np.array([2.1]), np.array([20.0])
    p1, how = adjust_pvalues(t, df, "tukey", 2)
    assert how == "none"                              # one contrast: no adjustment
    p2, _ = adjust_pvalues(np.array([2.1, 0.3]), np.full(2, 20.0), "tukey", 2)
    np.testing.assert_allclose(p2[0], 2 * stats.t.sf(2.1, 20), rtol=1e-6)
    p3, _ = adjust_pvalues(np.array([2.1, 0.3, 1.0]), np.full(3, 20.0), "tukey", 3)
    assert p3[0] > p2[0]


def test_contrast_matrices():
    C, names, kind = contrast_matrix(["A", "B", "C"], "trt.vs.ctrl")
    assert names == ["B - A", "C - A"] and C.tolist() == [[-1, 1, 0], [-1, 0, 1]]
    C, names, _ = contrast_matrix(["1", "2", "3"], "poly")
    assert names == ["linear", "quadratic"] and C.tolist() == [[-1, 0, 1], [1, -2, 1]]
    C, names, kind = contrast_matrix(["A", "B"], {"AmB": [1, -1]})
    assert kind == "custom" and names == ["AmB"]
    with pytest.raises(ValueError, match="coefficients"):
        contrast_matrix(["A", "B", "C"], [[1, -1]])


def test_by_groups_adjust_within_each_group(cake_fit):
    con = cake_fit.contrasts("recipe", by="temperature")
    assert con["temperature"].tolist()[:3] == ["175"] * 3
    one = con[con["temperature"] == "195"]
    again = cake_fit.contrasts("recipe", at={"temperature": ["195"]})
    np.testing.assert_allclose(one["p_value"], again["p_value"], rtol=1e-10)


def test_revpairwise_is_minus_pairwise_in_emmeans_order(cake_fit):
    pw = cake_fit.contrasts("recipe", adjust="none")
    rev = cake_fit.contrasts("recipe", method="revpairwise", adjust="none")
    assert rev["contrast"].tolist() == ["B - A", "C - A", "C - B"]
    np.testing.assert_allclose(rev["estimate"], -pw["estimate"], atol=1e-12)
    np.testing.assert_allclose(rev["p_value"], pw["p_value"], rtol=1e-12)
    tukey = cake_fit.contrasts("recipe", method="revpairwise")
    assert tukey.attrs["adjust"] == "tukey"


@pytest.mark.parametrize("seed", range(3))
def test_response_scale_ratios_are_exp_of_the_link_contrasts(seed):
    """Poisson (log link): ratio = exp(estimate), SE = ratio · SE by the delta method, the same
    z and p; on simulated data with a 3-level factor."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(10), 6)
    f = np.tile(["a", "b", "c"], 20)
    eta = 0.3 + np.select([f == "b", f == "c"], [0.4, -0.3], 0.0) + rng.normal(0, 0.5, 10)[g]
    data = {"y": rng.poisson(np.exp(eta)), "f": f, "g": [f"g{k}" for k in g]}
    import pandas as pd
    fit = mp.glmer("y ~ f + (1 | g)", pd.DataFrame(data), family="poisson")
    link = fit.contrasts("f", method="revpairwise")
    resp = fit.contrasts("f", method="revpairwise", type="response")
    assert resp["contrast"].tolist() == ["b / a", "c / a", "c / b"]
    np.testing.assert_allclose(resp["ratio"], np.exp(link["estimate"]), rtol=1e-12)
    np.testing.assert_allclose(resp["SE"], resp["ratio"] * link["SE"], rtol=1e-12)
    np.testing.assert_allclose(resp["z_ratio"], link["ratio"], rtol=1e-12)
    np.testing.assert_allclose(resp["p_value"], link["p_value"], rtol=1e-12)
    with pytest.raises(ValueError, match="'link' or 'response'"):
        fit.contrasts("f", type="ratio")
