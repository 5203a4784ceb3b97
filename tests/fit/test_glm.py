"""fit_glm (the model without random effects) against closed forms: with one factor as the only
predictor the ML means are the per-level sample means (binomial: pooled proportions), so the
log-likelihood is a sum of log-densities at those means."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special, stats

import mixedppl as mp
from mixedppl.fit.glm import fit_glm
from mixedppl.glmm_api import glmm_model


def test_poisson_glm_is_the_per_level_means():
    grouse = mp.datasets.load("grouseticks")
    spec, fam, link, y, n = glmm_model("TICKS ~ YEAR + (1 | BROOD)", grouse, "poisson")
    fit = fit_glm(spec, fam, link, y, n)
    mu = grouse.groupby("YEAR", observed=True)["TICKS"].transform("mean")
    closed = stats.poisson.logpmf(grouse["TICKS"], mu).sum()
    assert fit.converged and len(fit.phi) == 0
    assert fit.loglik == pytest.approx(closed, abs=1e-8)
    np.testing.assert_allclose(np.exp(spec.X @ fit.beta), mu, rtol=1e-8)


def test_gamma_glm_mean_and_shape():
    """Gamma(log): μ̂ = per-level means; the shape k = 1/φ² solves
    log k − ψ(k) = mean(log μ̂ − log y + y/μ̂ − 1) (the profile score of the shape)."""
    sleep = mp.datasets.load("sleepstudy")
    sleep = sleep.assign(week=(sleep["Days"] > 4).map({False: "a", True: "b"}))
    spec, fam, link, y, n = glmm_model("Reaction ~ week + (1 | Subject)", sleep, "gamma")
    fit = fit_glm(spec, fam, link, y, n)
    mu = sleep.groupby("week")["Reaction"].transform("mean").to_numpy()
    rhs = np.mean(np.log(mu) - np.log(y) + y / mu - 1)
    k = optimize.brentq(lambda k: np.log(k) - special.digamma(k) - rhs, 1e-3, 1e6, xtol=1e-14)
    closed = stats.gamma.logpdf(y, a=k, scale=mu / k).sum()
    assert fit.converged
    np.testing.assert_allclose(np.exp(spec.X @ fit.beta), mu, rtol=1e-8)
    assert np.exp(fit.phi[0]) == pytest.approx(1 / np.sqrt(k), rel=1e-7)
    assert fit.loglik == pytest.approx(closed, abs=1e-7)
