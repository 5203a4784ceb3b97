"""ICC intervals (mixedppl.inference.icc): the delta method against a finite-difference delta
computation built on the point ICC of mixedppl.diagnostics.variance, and the coverage of the
delta and bootstrap intervals on simulated random-intercept data (pooled over seeds)."""

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from scipy import special

import mixedppl as mp
from mixedppl.diagnostics.variance import icc as icc_point
from mixedppl.fit.records import term_covariances
from mixedppl.inference.icc import icc_and_gradient, icc_covariance, icc_interval, icc_parameters

CASES = {
    "lmm_slope": ("lmer", "sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "lmm_crossed": ("lmer", "penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "glmm_cbpp": ("glmer", "cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
}


@lru_cache(maxsize=None)
def fitted(case):
    kind, data, formula = CASES[case]
    return getattr(mp, kind)(formula, mp.datasets.load(data))


def icc_of_x(fit, x):
    """The ICC at x through diagnostics.variance.icc (independent of icc_and_gradient)."""
    spec = fit.spec
    nt, p = spec.n_theta, spec.p
    if fit.record.__class__.__name__ == "LMMFit":
        sigma = x[nt]
        covs = term_covariances(spec.terms, x[:nt], sigma ** 2)
        resid = sigma ** 2
    else:
        covs = term_covariances(spec.terms, x[:nt], 1.0)
        resid = fit.latent_residual_variance()
    return icc_point(spec, x[-p:], covs, resid).to_numpy()


@pytest.mark.parametrize("case", sorted(CASES))
def test_delta_interval_matches_finite_difference_delta(case):
    fit = fitted(case)
    x, latent = icc_parameters(fit.record)
    values, grad = icc_and_gradient(fit.spec, x, latent)
    np.testing.assert_allclose(values, fit.icc().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(values, icc_of_x(fit, x), rtol=1e-12)
    steps = 1e-6 * np.maximum(np.abs(x), 1.0)
    fd = np.column_stack([(icc_of_x(fit, x + h * e) - icc_of_x(fit, x - h * e)) / (2 * h)
                          for h, e in zip(steps, np.eye(len(x)))])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-9)
    V = icc_covariance(fit.record)
    se_fd = np.sqrt(np.einsum("ij,jk,ik->i", fd, V, fd))
    z = special.ndtri(0.975)
    lo = special.expit(special.logit(values) - z * se_fd / (values * (1 - values)))
    hi = special.expit(special.logit(values) + z * se_fd / (values * (1 - values)))
    table = fit.icc(ci=True)
    assert list(table.index) == ["adjusted", "unadjusted"]
    np.testing.assert_allclose(table["SE"], se_fd, rtol=1e-5)
    np.testing.assert_allclose(table["2.5 %"], lo, rtol=1e-5)
    np.testing.assert_allclose(table["97.5 %"], hi, rtol=1e-5)
    assert np.all((table["2.5 %"] < values) & (values < table["97.5 %"]))


def test_lmm_delta_covariance_is_satterthwaite_block():
    """V's (θ, σ) block is lmerTest's 2H⁻¹ and its β block vcov β̂, nothing between them."""
    fit = fitted("lmm_slope")
    V = icc_covariance(fit.record)
    k = fit.spec.n_theta + 1
    np.testing.assert_allclose(V[k:, k:], fit.vcov_beta, rtol=1e-12)
    assert np.all(V[:k, k:] == 0)
    assert np.all(np.linalg.eigvalsh(V[:k, :k]) > 0)


def test_icc_ci_argument_checks():
    fit = fitted("lmm_crossed")
    with pytest.raises(ValueError, match="by_group"):
        fit.icc(by_group=True, ci=True)
    with pytest.raises(ValueError, match="delta"):
        fit.icc(ci=True, method="profile")
    with pytest.raises(ValueError, match="level"):
        fit.icc(ci=True, level=1.5)


def test_glmm_bootstrap_interval_shape_and_order():
    g = fitted("glmm_cbpp")
    table = g.icc(ci=True, method="boot", nsim=30, seed=2)
    assert list(table.columns) == ["ICC", "2.5 %", "97.5 %"]
    assert np.all(table["2.5 %"] <= table["97.5 %"])
    assert np.all((table["2.5 %"] >= 0) & (table["97.5 %"] <= 1))


def simulated(seed, groups=20, per_group=6, sd_group=1.0, sigma=1.0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    y = 2.0 + sd_group * rng.standard_normal(groups)[g] + sigma * rng.standard_normal(len(g))
    return pd.DataFrame({"y": y, "g": [f"g{k}" for k in g]})


TRUE_ICC = 0.5   # sd_group = sigma = 1, intercept-only: adjusted = unadjusted = 1 / 2


def test_delta_interval_coverage_on_simulated_data():
    hits = []
    for seed in range(60):
        fit = mp.lmer("y ~ 1 + (1 | g)", simulated(seed))
        table = fit.icc(ci=True)
        hits.append(table.loc["adjusted", "2.5 %"] <= TRUE_ICC <= table.loc["adjusted", "97.5 %"])
    coverage = np.mean(hits)
    assert 0.85 <= coverage <= 1.0, coverage       # nominal 0.95; 60 fits, sd ≈ 0.03


@pytest.mark.slow
def test_bootstrap_interval_coverage_on_simulated_data():
    hits = []
    for seed in range(40):
        fit = mp.lmer("y ~ 1 + (1 | g)", simulated(100 + seed))
        table = fit.icc(ci=True, method="boot", nsim=99, seed=seed)
        hits.append(table.loc["adjusted", "2.5 %"] <= TRUE_ICC <= table.loc["adjusted", "97.5 %"])
    coverage = np.mean(hits)
    assert 0.8 <= coverage <= 1.0, coverage        # nominal 0.95; 40 fits, sd ≈ 0.035
