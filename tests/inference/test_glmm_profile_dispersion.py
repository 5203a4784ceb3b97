"""Profile intervals of CLMMs and dispersion-family GLMMs (mixedppl.inference.glmm_profile):
at each end the profiled Laplace deviance (every other parameter re-optimised, thresholds and the
log dispersion included) has risen from its minimum by the χ²₁ quantile."""

from functools import lru_cache

import numpy as np
import pytest
from scipy import stats

import mixedppl as mp
from mixedppl.inference.glmm_profile import _GLMMProfiler

CASES = {
    "clmm_wine": lambda: mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine")),
    "gamma_sleep": lambda: mp.glmer("Reaction ~ Days + (1 | Subject)",
                                    mp.datasets.load("sleepstudy"), family="gamma"),
}


@lru_cache(maxsize=None)
def fitted(case):
    return CASES[case]()


@pytest.mark.parametrize("case", sorted(CASES))
def test_profile_ends_sit_at_the_chi2_rise(case):
    fit = fitted(case)
    ci = fit.confint(method="profile")
    prof = _GLMMProfiler(fit.record)
    disp = fit.record.family.dispersion
    rows = list(prof.names[:prof.nv]) + ([disp] if case != "clmm_wine" else []) \
        + list(fit.spec.fe_names)
    assert list(ci.index) == rows
    crit = stats.chi2.ppf(0.95, 1)
    for name in rows:
        k = prof.dim - 1 if name == disp else prof.names.index(name)
        zeta, hat = prof.zeta_fn(k)
        for end in ci.loc[name]:
            x = np.log(end) if name == disp else end
            assert abs(zeta(x) ** 2 - crit) < 1e-4 * crit, (name, end, zeta(x) ** 2)
    wald = fit.confint()
    for name in fit.spec.fe_names:       # ~Wald for the fixed effects, but not equal
        np.testing.assert_allclose(ci.loc[name], wald.loc[name], rtol=0.1)

