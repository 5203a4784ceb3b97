"""CLMM parametric bootstrap (mixedppl.inference.bootstrap.glmm_bootstrap_params on a
cumulative-link record): every replicate is the optimum of a fresh clmm fit (the front door,
cold start) of the simulated categories, the intervals are boot.ci's percentile intervals of
the replicates, and n_jobs does not change them. Randomized over seeds on small data."""

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.inference.bootstrap import (glmm_bootstrap_params, percentile_interval,
                                          threshold_names)
from mixedppl.inference.simulate import simulate_counts

FORMULA = "y ~ x + (1 | g)"


def _ordinal_data(seed: int, n_groups: int = 12, per_group: int = 6) -> pd.DataFrame:
    """Latent-logistic ordinal data with 4 categories: P(Y ≤ j) = F(α_j − 0.8 x − u_g)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=len(g))
    latent = 0.8 * x + rng.normal(0, 0.9, n_groups)[g] + rng.logistic(size=len(g))
    y = np.digitize(latent, [-1.0, 0.3, 1.5])
    return pd.DataFrame({"y": pd.Categorical(y.astype(str), ["0", "1", "2", "3"], ordered=True),
                         "x": x, "g": [f"g{k}" for k in g]})


@lru_cache(maxsize=None)
def _fit(seed: int):
    return _ordinal_data(seed), mp.clmm(FORMULA, _ordinal_data(seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_replicates_are_fresh_clmm_fits(seed):
    data, o = _fit(seed)
    nsim = 3
    reps = glmm_bootstrap_params(o.record, nsim=nsim, seed=seed + 10)
    assert list(reps.columns) == ["sd_(Intercept)|g", "0|1", "1|2", "2|3", "x"]
    Y = simulate_counts(o.record, nsim, seed=seed + 10)      # the same draws
    checked = 0
    for s in range(nsim):
        codes = Y[:, s].astype(int)
        if len(np.unique(codes)) < 4:           # a category not drawn: a different model
            continue
        sim = data.assign(y=pd.Categorical(codes.astype(str), ["0", "1", "2", "3"],
                                           ordered=True))
        fresh = mp.clmm(FORMULA, sim)
        expect = np.concatenate([fresh.theta, fresh.alpha, fresh.beta])
        np.testing.assert_allclose(reps.iloc[s].to_numpy(), expect, rtol=1e-4, atol=1e-4)
        checked += 1
    assert checked >= 2


def test_boot_confint_is_the_percentile_interval_of_the_replicates():
    _, o = _fit(0)
    ci = o.confint(method="boot", nsim=24, seed=5, progress=False)
    reps = glmm_bootstrap_params(o.record, nsim=24, seed=5)
    assert list(ci.index) == list(reps.columns)
    for name in ci.index:
        np.testing.assert_allclose(ci.loc[name], percentile_interval(reps[name], 0.95),
                                   rtol=1e-12)
    in_jobs = o.confint(method="boot", nsim=24, seed=5, progress=False, n_jobs=2)
    np.testing.assert_allclose(in_jobs.to_numpy(), ci.to_numpy(), rtol=1e-8)


def test_wine_rows_are_ordinals_confint_rows():
    o = mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))
    ci = o.confint(method="boot", nsim=20, seed=1, progress=False)
    assert list(ci.index) == (["sd_(Intercept)|judge"] + threshold_names(o.spec)
                              + ["tempwarm", "contactyes"])
    est = np.concatenate([o.theta, o.alpha, o.beta])
    assert np.all(ci.iloc[:, 0].to_numpy() < est) and np.all(est < ci.iloc[:, 1].to_numpy())
