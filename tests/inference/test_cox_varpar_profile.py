"""Profile intervals of coxme frailty SDs on small random data, each end checked by an
independent refit: mp.coxme with the variances fixed (``variance=``, the fixed-variance path, no
profile code), the other term's variance found by a bounded 1-D search over such refits. An SD
whose profile at 0 stays under χ²₁(0.95) has lower end exactly 0 (lme4's convention)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import mixedppl as mp

CUT = 3.841458820694124


def clustered(seed: int, n: int = 90, groups: int = 9, sd: float = 0.8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    h = rng.integers(0, 5, n)
    x = rng.normal(size=n)
    b, c = rng.normal(scale=sd, size=groups), rng.normal(scale=0.5, size=5)
    t = rng.exponential(np.exp(-(0.5 * x + b[g] + c[h])))
    cens = rng.exponential(2.0, n)
    return pd.DataFrame({"time": np.minimum(t, cens), "status": (t <= cens).astype(int),
                         "x": x, "g": g.astype(str), "h": h.astype(str)})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scalar_sd_ends_match_fixed_variance_refits(seed):
    df = clustered(seed)
    form = "Surv(time, status) ~ x + (1 | g)"
    fit = mp.coxme(form, df)
    ci = fit.confint(method="profile", progress=False)
    assert list(ci.index) == ["sd_(Intercept)|g", "x"]
    lo, hi = ci.loc["sd_(Intercept)|g"]
    sd = np.sqrt(fit.variance_components["g"])
    assert lo <= sd < hi
    for end in (lo, hi):
        held = mp.coxme(form, df, variance=end ** 2)
        rise = 2 * (fit.loglik - held.loglik)
        if end == 0.0:
            assert rise < CUT
        else:
            assert rise == pytest.approx(CUT, abs=1e-4)


@pytest.mark.parametrize("seed", [3, 6])
def test_two_scalar_terms_the_other_variance_reoptimised(seed):
    """Both SDs interior with both ends interior (seed 3: [0.317, 1.288], [0.397, 2.095])."""
    df = clustered(seed, n=160)
    form = "Surv(time, status) ~ x + (1 | g) + (1 | h)"
    fit = mp.coxme(form, df)
    ci = fit.confint(method="profile", progress=False)
    assert list(ci.index) == ["sd_(Intercept)|g", "sd_(Intercept)|h", "x"]
    for row, k in (("sd_(Intercept)|g", 0), ("sd_(Intercept)|h", 1)):
        for end in ci.loc[row]:
            assert end > 0.0

            def neg(other_sd):
                v = [0.0, 0.0]
                v[k], v[1 - k] = end ** 2, other_sd ** 2
                return -mp.coxme(form, df, variance=v).loglik
            best = optimize.minimize_scalar(neg, bounds=(0.0, 3.0), method="bounded",
                                            options={"xatol": 1e-6})
            ll = -min(best.fun, neg(0.0))               # the other SD may sit at 0
            assert 2 * (fit.loglik - ll) == pytest.approx(CUT, abs=1e-4)


def test_sd_at_the_boundary_has_lower_end_zero():
    rng = np.random.default_rng(11)
    n = 60
    t = rng.exponential(1.0, n)                          # no cluster effect at all
    df = pd.DataFrame({"time": t, "status": np.ones(n, int), "x": rng.normal(size=n),
                       "g": rng.integers(0, 6, n).astype(str)})
    fit = mp.coxme("Surv(time, status) ~ x + (1 | g)", df)
    lo, hi = fit.confint(method="profile", progress=False).loc["sd_(Intercept)|g"]
    assert lo == 0.0 and hi > 0
    held = mp.coxme("Surv(time, status) ~ x + (1 | g)", df, variance=0.0)
    assert 2 * (fit.loglik - held.loglik) < CUT
    if hi < np.inf:
        held = mp.coxme("Surv(time, status) ~ x + (1 | g)", df, variance=hi ** 2)
        assert 2 * (fit.loglik - held.loglik) == pytest.approx(CUT, abs=1e-4)


def test_fixed_variance_fit_is_refused_clearly():
    df = clustered(0)
    fit = mp.coxme("Surv(time, status) ~ x + (1 | g)", df, variance=0.3)
    with pytest.raises(ValueError, match="variances were estimated"):
        fit.confint(method="profile", progress=False)
