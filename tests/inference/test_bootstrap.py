"""Parametric-bootstrap confidence intervals (mixedppl.inference.bootstrap): reproducible with
``seed``; percentile intervals as R's ``boot.ci(type = "perc")``, and within Monte-Carlo error
of the profile intervals (themselves checked against lme4 in test_profile.py).
"""

from functools import lru_cache

import numpy as np
import pytest

import mixedppl as mp
from mixedppl.inference.bootstrap import percentile_interval

PROFILE_CASES = {
    "sleepstudy_slope_reml": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "dyestuff_reml": ("dyestuff", "Yield ~ 1 + (1 | Batch)"),
}


@lru_cache(maxsize=None)
def fitted(case):
    data, formula = PROFILE_CASES[case]
    return mp.lmer(formula, mp.datasets.load(data))


@lru_cache(maxsize=None)
def profile_ci(case):
    return fitted(case).confint(method="profile")


def test_percentile_interval_as_boot_ci():
    # boot.ci(type = "perc") on 1..99 with R = 99: (R+1)·0.025 = 2.5 → normal-scale interpolation
    t = np.arange(1.0, 100.0)
    lo, hi = percentile_interval(t, 0.95)
    assert 2 < lo < 3 and 97 < hi < 98
    lo, hi = percentile_interval(np.arange(1.0, 40.0), 0.95)   # (R+1)α = 1 exactly → t(1)
    assert lo == 1.0 and hi == 39.0


def test_bootstrap_reproducible_and_jobs():
    fit = fitted("dyestuff_reml")
    a = fit.confint(method="boot", nsim=30, seed=3, progress=False)
    b = fit.confint(method="boot", nsim=30, seed=3, progress=False, n_jobs=2)
    c = fit.confint(method="boot", nsim=30, seed=4, progress=False)
    assert list(a.index) == list(profile_ci("dyestuff_reml").index)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-10)
    assert not np.allclose(a.to_numpy(), c.to_numpy())


def test_bootstrap_quasi_newton_refits_match_lbfgsb():
    """The refits start from θ̂ and the Hessian there (quasi-Newton); they reach the same optima
    as L-BFGS-B from θ̂ (both stop within ~1e-10 of the minimum deviance)."""
    from mixedppl.fit.lmm_fit import start_hessian
    from mixedppl.inference.bootstrap import _refit_block
    fit = fitted("sleepstudy_slope_reml")
    Y = fit.simulate(20, seed=5)
    args = (fit.spec, fit.reml, fit.objective.structure, fit.theta, Y)
    hess = start_hessian(fit.record)
    assert hess[1] is not None
    qn, lb = _refit_block(*args, hess), _refit_block(*args)
    np.testing.assert_allclose(qn[:, [0, 2, 3]], lb[:, [0, 2, 3]], rtol=1e-5)
    np.testing.assert_allclose(qn[:, 1], lb[:, 1], atol=1e-4)
    np.testing.assert_allclose(qn[:, 4:], lb[:, 4:], rtol=1e-8)


def _agree_with_profile(nsim, tol_fixed, tol_sd):
    """Each end within tol × (profile interval width) of the profile end (correlation left out:
    its bootstrap upper end sits on +1 in many singular refits)."""
    fit = fitted("sleepstudy_slope_reml")
    boot = fit.confint(method="boot", nsim=nsim, seed=1, progress=False)
    prof = profile_ci("sleepstudy_slope_reml")
    width = (prof.iloc[:, 1] - prof.iloc[:, 0]).to_numpy()[:, None]
    err = np.abs(boot.to_numpy() - prof.to_numpy()) / width
    names = list(prof.index)
    for k, name in enumerate(names):
        if name.startswith("cor_"):
            continue
        tol = tol_sd if name.startswith("sd_") else tol_fixed
        assert (err[k] < tol).all(), (name, boot.iloc[k].tolist(), prof.iloc[k].tolist())


def test_bootstrap_agrees_with_profile_small():
    # nsim = 100: the Monte-Carlo SD of a 2.5 % quantile is ≈ 0.07 of the interval width
    _agree_with_profile(100, tol_fixed=0.2, tol_sd=0.3)


@pytest.mark.slow
def test_bootstrap_agrees_with_profile_500():
    _agree_with_profile(500, tol_fixed=0.1, tol_sd=0.2)
