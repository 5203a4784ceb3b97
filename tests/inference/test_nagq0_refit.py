"""glmer(nAGQ = 0) fits: refit, update, simulate, the parametric bootstrap and case-deletion
influence (mixedppl.inference.refit, mixedppl.fit.laplace_refit on a JointObjective).
Refits equal fresh nAGQ = 0 fits through the front door; simulated Poisson responses have the
closed-form mean E[y] = exp(xᵀβ + σ²/2) and variance μ + μ²(e^{σ²} − 1). Randomized over
seeds on small data."""

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.inference.bootstrap import glmm_bootstrap_params
from mixedppl.inference.simulate import simulate_counts

FORMULA = "y ~ x + (1 | g)"


def _poisson_data(seed: int, n_groups: int = 12, per_group: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=len(g))
    eta = 0.5 + 0.4 * x + rng.normal(0, 0.6, n_groups)[g]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "g": [f"g{k}" for k in g]})


@lru_cache(maxsize=None)
def _fit(seed: int):
    data = _poisson_data(seed)
    return data, mp.glmer(FORMULA, data, family="poisson", nAGQ=0)


def _same_fit(a, b, tol=1e-5):
    np.testing.assert_allclose(a.theta, b.theta, rtol=tol, atol=tol)
    np.testing.assert_allclose(a.beta, b.beta, rtol=tol, atol=tol)
    assert a.nAGQ == b.nAGQ == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_refit_and_update_are_fresh_nagq0_fits(seed):
    data, g0 = _fit(seed)
    y_new = g0.simulate(1, seed=seed + 7)[:, 0]
    _same_fit(g0.refit(y_new),
              mp.glmer(FORMULA, data.assign(y=y_new), family="poisson", nAGQ=0))
    _same_fit(g0.update("~ . - x"), mp.glmer("y ~ 1 + (1 | g)", data, family="poisson", nAGQ=0))


@pytest.mark.parametrize("seed", [0, 1])
def test_simulate_has_the_closed_form_moments(seed):
    _, g0 = _fit(seed)
    nsim = 4000
    Y = g0.simulate(nsim, seed=seed)
    s2 = g0.theta[0] ** 2
    mu = np.exp(g0.spec.X @ g0.beta + s2 / 2)
    var = mu + mu ** 2 * (np.exp(s2) - 1)
    z = (Y.mean(axis=1) - mu) / np.sqrt(var / nsim)
    assert np.max(np.abs(z)) < 4.5
    # rows of one group share u: their covariance is μ_i μ_j (e^{σ²} − 1)
    same = np.flatnonzero(g0.spec.terms[0].codes == 0)[:2]
    cov = np.cov(Y[same[0]], Y[same[1]])[0, 1]
    expect = mu[same[0]] * mu[same[1]] * (np.exp(s2) - 1)
    assert abs(cov - expect) < 5 * np.sqrt(var[same[0]] * var[same[1]] / nsim) + 0.1 * expect


@pytest.mark.parametrize("seed", [0, 1])
def test_bootstrap_replicates_are_fresh_nagq0_fits(seed):
    data, g0 = _fit(seed)
    reps = glmm_bootstrap_params(g0.record, nsim=3, seed=seed)
    Y = simulate_counts(g0.record, 3, seed=seed)
    for s in range(3):
        fresh = mp.glmer(FORMULA, data.assign(y=Y[:, s]), family="poisson", nAGQ=0)
        np.testing.assert_allclose(reps.iloc[s].to_numpy(), np.r_[fresh.theta, fresh.beta],
                                   rtol=1e-5, atol=1e-5)
    ci = g0.confint(method="boot", nsim=10, seed=seed, progress=False)
    assert list(ci.index) == ["sd_(Intercept)|g", "(Intercept)", "x"]


def test_group_deletion_is_a_fresh_nagq0_fit():
    data, g0 = _fit(0)
    infl = g0.influence("g")
    for case in ("g0", "g5"):
        fresh = mp.glmer(FORMULA, data[data["g"] != case], family="poisson", nAGQ=0)
        d = g0.beta - fresh.beta
        assert infl.loc[case, "cooks_d"] == pytest.approx(
            d @ np.linalg.solve(g0.vcov_beta, d) / 2, rel=1e-4, abs=1e-10)
        assert infl.loc[case, "covratio"] == pytest.approx(
            np.linalg.det(fresh.vcov_beta) / np.linalg.det(g0.vcov_beta), rel=1e-4)
