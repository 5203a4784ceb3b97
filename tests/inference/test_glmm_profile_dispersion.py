"""Profile intervals of CLMMs and dispersion-family GLMMs (mixedppl.inference.glmm_profile):
at each end the profiled Laplace deviance (every other parameter re-optimised, thresholds and the
log dispersion included) has risen from its minimum by the χ²₁ quantile; and the ends are R's
root-found profile ends (tests/reference/profile_exact_glmm_clmm.json, from
tests/reference/scripts/profile_exact.R: ordinal's clmm2 with the SD or a coefficient held, glmmTMB
1.1.5 with one parameter held by ``map``, each end by uniroot)."""

from functools import lru_cache

import numpy as np
import pytest
from conftest import reference, rel_close
from scipy import stats

import mixedppl as mp
from mixedppl.inference.glmm_profile import _GLMMProfiler

def _beta_cbpp():
    cbpp = mp.datasets.load("cbpp")
    cbpp["prop"] = (cbpp["incidence"] + 0.5) / (cbpp["size"] + 1)
    return mp.glmer("prop ~ period + (1 | herd)", cbpp, family="beta")


CASES = {
    "nbinom2_grouse": lambda: mp.glmer("TICKS ~ YEAR + (1 | LOCATION)",
                                       mp.datasets.load("grouseticks"),
                                       family="negative_binomial"),
    "beta_cbpp": _beta_cbpp,
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
            if name != disp and x == prof.lower[k]:     # on the bound (SD 0): no rise to crit
                assert zeta(x) ** 2 < crit, (name, end, zeta(x) ** 2)
                continue
            assert abs(zeta(x) ** 2 - crit) < 1e-4 * crit, (name, end, zeta(x) ** 2)
    wald = fit.confint()
    for name in fit.spec.fe_names:       # ~Wald for the fixed effects, but not equal
        np.testing.assert_allclose(ci.loc[name], wald.loc[name], rtol=0.1)



@pytest.mark.parametrize("case", ["clmm_wine", "nbinom2_grouse", "beta_cbpp"])
def test_profile_ends_are_rs_root_found_ends(case):
    ref = reference("profile_exact_glmm_clmm")[case]
    fit = fitted(case)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    ci = fit.confint(method="profile")
    assert len(ci) == len(ref["exact_profile_ci"])
    for (name, ends), (r_name, r_ends) in zip(ci.iterrows(), ref["exact_profile_ci"].items()):
        assert name == r_name or r_name in ("sd", "dispersion"), (name, r_name)
        if name in fit.spec.fe_names:           # as fixed effects
            rel_close(ends.to_numpy(), r_ends, 1e-4, 1e-4)
        else:                                   # as SDs (Beta's lower SD end is the bound 0)
            rel_close(ends.to_numpy(), r_ends, 1e-3, 1e-8)


def test_clmm_sd_ends_are_ordinals_profile_clmm2():
    """ordinal's own confint(profile(clmm2)) (50 grid points, spline) agrees to 1e-5."""
    ref = reference("profile_exact_glmm_clmm")["clmm_wine"]["profile_clmm2_ci"]
    ci = fitted("clmm_wine").confint(method="profile")
    rel_close(ci.loc["sd_(Intercept)|judge"].to_numpy(), ref["stDev"], 1e-3)
