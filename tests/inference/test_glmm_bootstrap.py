"""GLMM parametric bootstrap (mixedppl.inference.bootstrap.glmm_bootstrap_*), as lme4's
``bootMer`` + ``boot.ci(type = "perc")``: reproducible with ``seed`` and across ``n_jobs``; the
warm-started refits reach the optima of cold fits; the bootstrap distribution of β̂* has the
fit's estimates as centre and its Wald SEs as spread; against bootMer on cbpp
(tests/reference/scripts/glmm_boot_hat.R) within Monte-Carlo error (slow).
"""

import time
from functools import lru_cache

import numpy as np
import pytest
from conftest import reference

import mixedppl as mp
from mixedppl.inference.bootstrap import glmm_bootstrap_params
from mixedppl.inference.simulate import simulate_laplace

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@lru_cache(maxsize=None)
def cbpp_fit():
    return mp.glmer(CBPP, mp.datasets.load("cbpp"))


def test_glmm_boot_confint_rows_reproducible_and_jobs():
    g = cbpp_fit()
    a = g.confint(method="boot", nsim=12, seed=3, progress=False)
    b = g.confint(method="boot", nsim=12, seed=3, progress=False, n_jobs=2)
    c = g.confint(method="boot", nsim=12, seed=4, progress=False)
    assert list(a.index) == list(g.confint(method="profile").index)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-10)
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    with pytest.raises(ValueError, match="nsim"):
        g.confint(method="boot", nsim=1)


def test_warm_refits_reach_the_fresh_fits_optima():
    g = cbpp_fit()
    reps = glmm_bootstrap_params(g.record, nsim=3, seed=7)
    Y = simulate_laplace(g.record, 3, seed=7)          # the same draws, on the response scale
    for k in range(3):
        fresh = g.refit(Y[:, k])                          # fit_laplace's own optimiser
        np.testing.assert_allclose(reps.iloc[k, 1:].to_numpy(), fresh.beta, atol=2e-5)
        assert reps.iloc[k, 0] == pytest.approx(fresh.theta[0], abs=2e-5)


def test_bootstrap_distribution_centre_and_spread():
    g = cbpp_fit()
    reps = glmm_bootstrap_params(g.record, nsim=80, seed=11)
    beta = reps[g.spec.fe_names].to_numpy()
    se = g.fe_bse.to_numpy()
    # robust centre and spread: a replicate with no case in period 4 separates (β → −∞)
    assert np.all(np.abs(np.median(beta, axis=0) - g.beta) < 0.4 * se)
    q1, q3 = np.percentile(beta, [25, 75], axis=0)
    ratio = (q3 - q1) / 1.349 / se
    assert np.all((ratio > 0.65) & (ratio < 1.4)), ratio


def test_dispersion_family_has_a_dispersion_row():
    sleep = mp.datasets.load("sleepstudy")
    fit = mp.glmer("Reaction ~ Days + (1 | Subject)", sleep, family="gamma")
    reps = glmm_bootstrap_params(fit.record, nsim=4, seed=1)
    assert list(reps.columns) == ["sd_(Intercept)|Subject", "cv", "(Intercept)", "Days"]
    assert np.all(reps["cv"] > 0)


@pytest.mark.slow
def test_cbpp_bootstrap_matches_bootmer_within_monte_carlo_error():
    ref = reference("glmm_boot_hat_cbpp")
    g = cbpp_fit()
    t0 = time.perf_counter()
    reps = glmm_bootstrap_params(g.record, nsim=500, seed=1)
    ours = time.perf_counter() - t0
    print(f"cbpp bootstrap nsim=500: mixedppl {ours:.1f} s, bootMer "
          f"{ref['bootmer_seconds_nsim500']:.1f} s")
    assert list(reps.columns) == ref["boot_names"]
    sd = np.asarray(ref["boot_sd"])
    # means of 500 draws: SE sd/√500 each; SDs: ~3 % each
    assert np.all(np.abs(reps.mean().to_numpy() - ref["boot_mean"]) < 4 * np.sqrt(2 / 500) * sd)
    assert np.all(np.abs(reps.std(ddof=1).to_numpy() / sd - 1) < 0.2)
    ci = g.confint(method="boot", nsim=500, seed=1, progress=False).to_numpy()
    # percentile ends at 2.5 % / 97.5 % of 500 draws: MC SE ≈ 0.12 sd each
    assert np.all(np.abs(ci - np.asarray(ref["boot_percentile"])) < 0.7 * sd[:, None])
