"""simulate / refit / update for GLMMs and CLMMs (mixedppl.inference.simulate, .refit).

simulate: lme4's ``use.u = FALSE`` (new random effects each replicate), checked against the
marginal moments computed independently (Gauss–Hermite quadrature over u, the Poisson-lognormal
closed form); refit / update: the same numbers as a fresh fit of the changed data / formula.
"""

from functools import lru_cache

import numpy as np
import pytest
from scipy import special

import mixedppl as mp

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@lru_cache(maxsize=None)
def cbpp_fit():
    return mp.glmer(CBPP, mp.datasets.load("cbpp"))


@lru_cache(maxsize=None)
def wine_fit():
    return mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))


def test_binomial_simulate_marginal_mean_by_quadrature():
    g = cbpp_fit()
    nsim = 4000
    Y = g.simulate(nsim=nsim, seed=11)
    sd = float(g.theta[0])
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    eta = g.spec.X @ g.beta
    p_marg = (special.expit(eta[:, None] + sd * nodes[None, :]) @ weights) / weights.sum()
    # y* = successes / size: mean E p, variance E[p(1 − p)]/n + Var p (p = expit(η + u))
    mean = Y.mean(axis=1)
    p_sq = (special.expit(eta[:, None] + sd * nodes) ** 2 @ weights) / weights.sum()
    n = g.trials
    se = np.sqrt(((p_marg - p_sq) / n + p_sq - p_marg ** 2) / nsim)
    z = (mean - p_marg) / se
    assert np.max(np.abs(z)) < 4.5
    assert abs(np.mean(z)) < 4.5 / np.sqrt(len(z))
    # new random effects per replicate: two rows of one herd are correlated across replicates
    herd = g.spec.terms[0].codes
    i, j = np.flatnonzero(herd == herd[0])[:2]
    assert np.corrcoef(Y[i], Y[j])[0, 1] > 0.1


def test_poisson_simulate_lognormal_mean():
    fit = mp.glmer("TICKS ~ YEAR + (1 | BROOD)", mp.datasets.load("grouseticks"),
                   family="poisson")
    Y = fit.simulate(nsim=3000, seed=3)
    sd = float(fit.theta[0])
    mean = np.exp(fit.spec.X @ fit.beta + sd ** 2 / 2)            # E exp(η + u), u ~ N(0, sd²)
    var = mean + mean ** 2 * (np.exp(sd ** 2) - 1)
    z = (Y.mean(axis=1) - mean) / np.sqrt(var / Y.shape[1])
    assert np.all(Y == np.round(Y)) and np.all(Y >= 0)
    # heavy right tail of the lognormal mixture: compare the pooled standardised error
    assert abs(z.mean()) * np.sqrt(len(z)) < 5 and np.max(np.abs(z)) < 6


def test_clmm_simulate_category_probabilities():
    o = wine_fit()
    Y = o.simulate(nsim=3000, seed=5)
    K = len(o.levels)
    assert set(np.unique(Y)) <= set(range(K))
    sd = float(o.theta[0])
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    eta = o.spec.X @ o.beta
    cum = special.expit(o.alpha[None, :, None] - eta[:, None, None] - sd * nodes[None, None, :])
    cum = (cum @ weights) / weights.sum()                       # marginal P(Y <= j)
    sim_cum = np.stack([(Y <= j).mean(axis=1) for j in range(K - 1)], axis=1)
    se = np.sqrt(cum * (1 - cum) / Y.shape[1])
    assert np.max(np.abs(sim_cum - cum) / se) < 4.5


def test_simulate_is_reproducible_and_checks_nsim():
    g = cbpp_fit()
    assert np.array_equal(g.simulate(3, seed=1), g.simulate(3, seed=1))
    assert not np.array_equal(g.simulate(3, seed=1), g.simulate(3, seed=2))
    with pytest.raises(ValueError, match="nsim"):
        g.simulate(0)


def test_lmm_simulate_unchanged_by_refactor():
    # the LMM draws keep their order: random effects term by term, then the residuals
    fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff"))
    rng = np.random.default_rng(1)
    u = rng.standard_normal((2, 6, 1)) @ (fit.sigma * fit.theta.reshape(1, 1)).T
    eps = rng.standard_normal((fit.nobs, 2)) * fit.sigma
    codes = fit.spec.terms[0].codes
    expected = fit.beta[0] + u[:, codes, 0].T + eps
    assert np.allclose(fit.simulate(2, seed=1), expected)


def test_refit_equals_fresh_fit_of_the_new_response():
    g = cbpp_fit()
    y_new = g.simulate(1, seed=4)[:, 0]
    refit = g.refit(y_new)
    data = mp.datasets.load("cbpp")
    data = data.assign(incidence=np.round(y_new * data["size"]).astype(int))
    fresh = mp.glmer(CBPP, data)
    assert np.allclose(refit.beta, fresh.beta, atol=2e-5)
    assert np.allclose(refit.theta, fresh.theta, atol=2e-5)
    assert refit.loglik == pytest.approx(fresh.loglik, abs=1e-7)
    with pytest.raises(mp.ModelSpecError):
        g.refit(np.full(g.nobs, 2.0))                        # proportions above 1


def test_clmm_refit_and_update():
    o = wine_fit()
    codes = o.simulate(1, seed=8)[:, 0]
    r = o.refit(codes)
    wine = mp.datasets.load("wine")
    import pandas as pd
    wine = wine.assign(rating=pd.Categorical(np.asarray(o.levels)[codes.astype(int)],
                                             categories=o.levels, ordered=True))
    fresh = mp.clmm("rating ~ temp + contact + (1 | judge)", wine)
    assert np.allclose(r.beta, fresh.beta, atol=2e-5)
    assert np.allclose(r.alpha, fresh.alpha, atol=2e-5)
    u = o.update("~ . - contact")
    direct = mp.clmm("rating ~ temp + (1 | judge)", mp.datasets.load("wine"))
    assert type(u).__name__ == "CLMMResult"
    assert u.spec.fe_names == direct.spec.fe_names
    assert u.loglik == pytest.approx(direct.loglik, abs=1e-6)


def test_glmm_update_equals_direct_fit():
    g = cbpp_fit()
    u = g.update("~ . - period")
    direct = mp.glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)",
                      mp.datasets.load("cbpp"))
    assert u.loglik == pytest.approx(direct.loglik, abs=1e-6)
    assert np.allclose(u.beta, direct.beta, atol=1e-5)
    lr = 2 * (g.loglik - u.loglik)
    assert lr > 0
