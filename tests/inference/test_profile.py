"""Profile-likelihood confidence intervals (mixedppl.inference.profile, glmm_profile) against
lme4 1.1-31 (tests/reference/inf_profile_ci.json, inf_profile_glmm_vector.json).

Tolerance (issue 5): CI ends 1e-4 relative against the ``exact_profile_ci`` blocks (ends found
in R by root-finding on the ML profile deviance).
"""

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from conftest import reference, rel_close
from mixedppl.inference.profile import psi_to_theta, theta_to_psi

PROFILE_CASES = {
    "sleepstudy_slope_reml": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "dyestuff_reml": ("dyestuff", "Yield ~ 1 + (1 | Batch)"),
    "penicillin_reml": ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
}


@lru_cache(maxsize=None)
def fitted(case):
    data, formula = PROFILE_CASES[case]
    return mp.lmer(formula, mp.datasets.load(data))


@lru_cache(maxsize=None)
def profile_ci(case):
    return fitted(case).confint(method="profile")


@pytest.mark.parametrize("case", [
    "dyestuff_reml", "sleepstudy_slope_reml",
    pytest.param("penicillin_reml", marks=pytest.mark.slow),   # ~10-100 s on a loaded 2-core box
])
def test_profile_ci_matches_exact_r(case):
    exact = reference("inf_profile_ci")["models"][case]["exact_profile_ci"]
    ci = profile_ci(case)
    assert list(ci.index) == exact["names"]
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    rel_close(ci.iloc[:, 0], exact["lower"], 1e-4)
    rel_close(ci.iloc[:, 1], exact["upper"], 1e-4)


@lru_cache(maxsize=None)
def cbpp_fit():
    f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    return mp.glmer(f, mp.datasets.load("cbpp"), family="binomial")


def test_glmm_profile_ci_matches_exact_r():
    """lme4 profiles the Laplace deviance over sd_(Intercept)|herd and β; R's root-found ends
    (PIRLS converged) at 1e-4 relative, lme4's own spline-interpolated ends at 2e-4 (its default
    PIRLS tolerance leaves the deviance ~6e-4 high, see the reference's notes)."""
    m = reference("inf_profile_ci")["models"]["cbpp_laplace"]
    exact = m["exact_profile_ci"]
    ci = cbpp_fit().confint(method="profile")
    assert list(ci.index) == exact["names"] == m["default"]["profile_ci"]["names"]
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    rel_close(ci.iloc[:, 0], exact["lower"], 1e-4)
    rel_close(ci.iloc[:, 1], exact["upper"], 1e-4)
    rel_close(ci.iloc[:, 0], m["default"]["profile_ci"]["lower"], 2e-4)
    rel_close(ci.iloc[:, 1], m["default"]["profile_ci"]["upper"], 2e-4)


def test_glmm_profile_ci_vector_term():
    """A correlated (1 + x | herd) term: sd / cor coordinates through the Cholesky Jacobian.

    Against R's root-found ends with PIRLS converged (scripts/inf_profile_glmm_vector.R) at 1e-4;
    against lme4's printed confint at 1e-3 only, because lme4 profiles with getME()'s default
    PIRLS tolerance 1e-7 (log|L|² ~1e-3 off far from the optimum) and interpolates a spline, and
    not at all for the lower end of sd_(Intercept)|herd, where lme4's spline is 1.7 % off (its
    'non-monotonic profile' warning for the correlation; the deviance rise at lme4's end is 3.805,
    not qchisq(0.95, 1) = 3.841)."""
    ref = reference("inf_profile_glmm_vector")
    cbpp = mp.datasets.load("cbpp").assign(
        x=lambda d: (d["period"].astype(str) == "1").astype(float))
    g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 + x | herd)", cbpp)
    ci = g.confint(method="profile")
    assert list(ci.index) == ref["names"]
    rel_close(ci.iloc[:, 0], ref["exact_profile_ci"]["lower"], 1e-4)
    rel_close(ci.iloc[:, 1], ref["exact_profile_ci"]["upper"], 1e-4)
    rel_close(ci.iloc[1:, 0], ref["lme4_profile_ci"]["lower"][1:], 1e-3)
    rel_close(ci.iloc[:, 1], ref["lme4_profile_ci"]["upper"], 1e-3)


def test_glmm_profile_level_and_methods():
    g = cbpp_fit()
    ci80 = g.confint(method="profile", level=0.8)
    ci95 = g.confint(method="profile")
    assert list(ci80.columns) == ["10 %", "90 %"]
    assert (ci80.iloc[:, 0] > ci95.iloc[:, 0]).all() and (ci80.iloc[:, 1] < ci95.iloc[:, 1]).all()
    with pytest.raises(ValueError, match="level"):
        g.confint(method="profile", level=0)
    assert g.confint(method="boot", nsim=3, progress=False).shape == ci95.shape   # GLMM bootMer
    with pytest.raises(ValueError, match="'profile' or 'boot'"):
        g.confint(method="nonsense")


def test_profile_names_as_lme4():
    ref = reference("inf_profile_ci")["models"]["sleepstudy_slope_reml"]["tight"]["profile_ci"]
    assert list(profile_ci("sleepstudy_slope_reml").index) == ref["names"]
    # lme4's spline-interpolated ends are within 2e-4 of the root-found ones
    rel_close(profile_ci("sleepstudy_slope_reml").iloc[:, 0], ref["lower"], 2e-4)


def test_profile_other_level_is_narrower():
    fit = fitted("dyestuff_reml")
    ci80 = fit.confint(method="profile", level=0.8)
    ci95 = profile_ci("dyestuff_reml")
    assert list(ci80.columns) == ["10 %", "90 %"]
    assert (ci80.iloc[:, 0] > ci95.iloc[:, 0]).all() and (ci80.iloc[:, 1] < ci95.iloc[:, 1]).all()


def test_profile_boundary_end_is_zero():
    """Dyestuff2's between-batch SD is estimated as 0: the lower end is 0, as lme4 reports."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mp.SingularFitWarning)
        fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff2"))
    ci = fit.confint(method="profile")
    assert ci.iloc[0, 0] == 0.0 and ci.iloc[0, 1] > 0


def test_psi_theta_round_trip():
    fit = fitted("sleepstudy_slope_reml")
    psi = theta_to_psi(fit.spec, fit.theta, fit.sigma)
    np.testing.assert_allclose(psi_to_theta(fit.spec, psi), fit.theta, rtol=1e-12)
    vc = fit.varcorr
    np.testing.assert_allclose(psi[:3], vc["sdcor"].to_numpy()[[0, 2, 1]], rtol=1e-10)


def test_bad_method_and_level():
    fit = fitted("dyestuff_reml")
    with pytest.raises(ValueError, match="'profile' or 'boot'"):
        fit.confint(method="nonsense")
    with pytest.raises(ValueError, match="level"):
        fit.confint(method="profile", level=1.5)
    with pytest.raises(ValueError, match="nsim"):
        fit.confint(method="boot", nsim=1, progress=False)


def test_profile_shows_a_progress_bar_unless_turned_off(capsys):
    """Long work shows a bar (tqdm on stderr), one step per profiled parameter; progress=False
    prints nothing; other keywords are still refused."""
    fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff"))
    quiet = fit.confint(method="profile", progress=False)
    assert capsys.readouterr().err == ""
    shown = fit.confint(method="profile")
    assert "profile" in capsys.readouterr().err
    pd.testing.assert_frame_equal(quiet, shown)
    with pytest.raises(TypeError, match="unexpected arguments \\['nsim'\\]"):
        fit.confint(method="profile", nsim=3)
