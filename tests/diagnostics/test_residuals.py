"""Residuals (mixedppl.diagnostics.residuals and the result methods): deviance residuals against
lme4 (tests/reference/scripts/glmm_boot_hat.R) and closed forms; LMM marginal residuals against
y − Xβ̂; DHARMa's quantile residuals uniform under the model (KS on data simulated from the fit,
p-values pooled over seeds); ``glmer(...).plot("residuals")`` and the quantile plot draw.
"""

from functools import lru_cache

import numpy as np
import pytest
from conftest import reference
from scipy import stats

import mixedppl as mp
from mixedppl.diagnostics.residuals import quantile_residuals
from mixedppl.families import get_family

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@lru_cache(maxsize=None)
def cbpp_fit():
    return mp.glmer(CBPP, mp.datasets.load("cbpp"))


def test_cbpp_deviance_and_pearson_residuals_match_lme4():
    ref = reference("glmm_boot_hat_cbpp")
    g = cbpp_fit()
    np.testing.assert_allclose(g.residuals("deviance"), ref["residuals_deviance"], rtol=2e-4,
                               atol=1e-5)
    np.testing.assert_allclose(g.residuals("pearson"), ref["residuals_pearson"], rtol=2e-4,
                               atol=1e-5)


@pytest.mark.parametrize("family, y, mu, disp, expected", [
    # closed forms of 2[ℓ(y; y) − ℓ(y; μ)] (R's dev.resids)
    ("poisson", 3.0, 1.0, None, 2 * (3 * np.log(3) - 2)),
    ("poisson", 0.0, 2.0, None, 4.0),
    ("negative_binomial", 0.0, 2.0, 1.5, 2 * (-1.5 * np.log(1.5 / 3.5))),
    ("gamma", 2.0, 1.0, 0.5, -2 * (np.log(2.0) - 1.0)),
])
def test_unit_deviances_closed_forms(family, y, mu, disp, expected):
    fam, _ = get_family(family)
    d = fam.unit_deviance(np.array([y]), np.array([mu]), np.ones(1), disp)
    assert d[0] == pytest.approx(expected, rel=1e-12)


def test_beta_unit_deviance_is_twice_the_loglik_gap():
    from scipy.stats import beta as beta_dist
    fam, _ = get_family("beta")
    y, mu, phi = 0.3, 0.6, 4.0
    d = fam.unit_deviance(np.array([y]), np.array([mu]), np.ones(1), phi)[0]
    ll = lambda m: beta_dist.logpdf(y, m * phi, (1 - m) * phi)       # noqa: E731
    assert d == pytest.approx(2 * (ll(y) - ll(mu)), rel=1e-10)


def test_lmm_marginal_residuals():
    fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    np.testing.assert_allclose(fit.residuals("marginal"),
                               fit.spec.y - fit.spec.X @ fit.beta, rtol=1e-12)
    np.testing.assert_allclose(fit.residuals("marginal", scaled=True) * fit.sigma,
                               fit.residuals("marginal"), rtol=1e-12)


def test_quantile_residual_definition():
    sims = np.array([[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    r = quantile_residuals(np.array([2.5, 1.0, 0.0]), sims, rng=1)
    assert r[0] == 0.75                                    # no ties: the fraction below
    assert 0.0 <= r[1] <= 0.75                             # ties: between P(<) and P(≤)
    assert 0.0 <= r[2] <= 1.0
    draws = np.array([quantile_residuals(np.array([1.0]), sims[1:2], rng=s)[0]
                      for s in range(400)])
    assert stats.kstest(draws / 0.75, "uniform").pvalue > 1e-3


def _pooled_ks_pvalues(fit, n_data: int, nsim: int) -> np.ndarray:
    """KS p-values of the quantile residuals of refits to data simulated from ``fit``."""
    Y = fit.simulate(n_data, seed=2024)
    return np.array([stats.kstest(fit.refit(Y[:, k]).residuals("quantile", nsim=nsim, seed=k),
                                  "uniform").pvalue for k in range(n_data)])


@pytest.mark.parametrize("make", [
    lambda: cbpp_fit(),
    lambda: mp.glmer("TICKS ~ YEAR + (1 | BROOD)", mp.datasets.load("grouseticks"),
                     family="poisson"),
    lambda: mp.lmer("Reaction ~ Days + (1 | Subject)", mp.datasets.load("sleepstudy")),
], ids=["binomial", "poisson", "gaussian"])
def test_quantile_residuals_uniform_on_data_from_the_model(make):
    fit = make()
    p = _pooled_ks_pvalues(fit, n_data=4, nsim=200)
    # p-values of data from the model are themselves uniform: none tiny, Fisher's pooled test
    assert p.min() > 1e-3
    assert stats.chi2.sf(-2 * np.log(p).sum(), 2 * len(p)) > 1e-3


def test_quantile_residuals_detect_a_wrong_model():
    # Poisson fitted to overdispersed counts: the quantile residuals are far from uniform
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(20), 20)
    y = rng.negative_binomial(0.7, 0.7 / (0.7 + 5.0), size=len(g))
    import pandas as pd
    fit = mp.glmer("y ~ 1 + (1 | g)", pd.DataFrame({"y": y, "g": g.astype(str)}),
                   family="poisson")
    assert stats.kstest(fit.residuals("quantile", seed=1), "uniform").pvalue < 1e-6


def test_clmm_quantile_residuals_uniform():
    o = mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))
    Y = o.simulate(3, seed=9)
    p = [stats.kstest(o.refit(Y[:, k]).residuals(nsim=200, seed=k), "uniform").pvalue
         for k in range(3)]
    assert min(p) > 1e-3
    with pytest.raises(ValueError, match="quantile"):
        o.residuals("pearson")


def test_glmer_residual_and_quantile_plots_draw():
    import matplotlib
    matplotlib.use("Agg")
    g = cbpp_fit()
    fig = g.plot("residuals")                # raised TypeError ('scaled') before
    assert fig.axes[0].get_xlabel() == "fitted"
    assert len(g.plot("qq").axes) == 1
    fig = g.plot("quantile", nsim=50, seed=1)
    assert "KS p" in fig.axes[0].get_title()
