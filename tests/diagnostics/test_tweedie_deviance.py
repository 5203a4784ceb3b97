"""Tweedie deviance residuals (mixedppl.families.tweedie.tweedie_unit_deviance through
``GLMMResult.residuals("deviance")``) against statmod's ``tweedie()$dev.resids`` at glmmTMB's
fitted means (``tests/reference/tweedie_deviance_statmod.json``, from
``tests/reference/scripts/tweedie_deviance.R``) and against the log-likelihood gap of the
series density; the t family has none (neither has glmmTMB 1.1.5: its ``residuals()`` offers
response, pearson and working, and its families' ``dev.resids`` return zeros)."""

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from conftest import reference, rel_close

import mixedppl as mp
from mixedppl.families.tweedie import tweedie_logpdf_np, tweedie_unit_deviance


@lru_cache(maxsize=None)
def _data():
    d = pd.DataFrame(reference("glmmtmb_tw_tweedie_sim")["data"])
    d["g"] = pd.Categorical(d["g"])
    return d


def test_unit_deviance_is_statmods_at_rs_means():
    ref = reference("tweedie_deviance_statmod")
    y, mu = np.asarray(ref["y"], float), np.asarray(ref["mu"], float)
    assert np.sum(y == 0) > 10                                  # the y = 0 branch is exercised
    rel_close(tweedie_unit_deviance(y, mu, ref["power"]), ref["statmod_dev_resids"], 1e-10,
              1e-13)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_unit_deviance_is_the_scaled_loglik_gap(seed):
    """d(y, μ) = 2φ[ℓ(y; y) − ℓ(y; μ)] (y > 0) and 2φ[0 − ℓ(0; μ)] = 2μ^{2−p}/(2 − p) (y = 0),
    ℓ the series log-density, whatever φ."""
    r = np.random.default_rng(seed)
    p, phi = r.uniform(1.1, 1.9), r.uniform(0.3, 3.0)
    y = np.where(r.uniform(size=30) < 0.3, 0.0, r.gamma(2.0, 1.0, size=30))
    mu = r.uniform(0.2, 4.0, size=30)
    d = tweedie_unit_deviance(y, mu, p)
    pos = y > 0
    gap = tweedie_logpdf_np(y[pos], y[pos], phi, p) - tweedie_logpdf_np(y[pos], mu[pos], phi, p)
    rel_close(d[pos], 2 * phi * gap, 1e-9, 1e-12)
    rel_close(d[~pos], -2 * phi * tweedie_logpdf_np(y[~pos], mu[~pos], phi, p), 1e-12)


def test_glmer_deviance_residuals_match_statmod_at_glmmtmbs_fit():
    ref = reference("tweedie_deviance_statmod")
    fit = mp.glmer("y_tw ~ x + (1 | g)", _data(), family="tweedie")
    assert fit.family_params.iloc[0] == pytest.approx(ref["power"], rel=1e-3)
    res = fit.residuals("deviance").to_numpy()
    want = np.asarray(ref["deviance_residuals"], float)
    rel_close(res, want, 1e-3, 1e-5)                          # max |diff| 3.4e-6
    # and exactly the closed form at our own means and power
    y, mu = fit.spec.y, fit.fitted().to_numpy()
    exact = np.sign(y - mu) * np.sqrt(tweedie_unit_deviance(y, mu, fit.family_params.iloc[0]))
    rel_close(res, exact, 1e-12, 1e-14)


def test_dispformula_tweedie_residuals_are_free_of_phi():
    fit = mp.glmer("y_twd ~ x + (1 | g)", _data(), family="tweedie", dispformula="~ x")
    res = fit.residuals("deviance").to_numpy()
    y, mu = fit.spec.y, fit.fitted().to_numpy()
    p = fit.family_params.iloc[0]
    rel_close(res, np.sign(y - mu) * np.sqrt(tweedie_unit_deviance(y, mu, p)), 1e-12, 1e-14)


def test_t_family_has_no_deviance_residuals_as_glmmtmb():
    ref = reference("tweedie_deviance_statmod")
    assert "pearson" in ref["glmmtmb_deviance_type_error_t"]
    assert ref["glmmtmb_t_dev_resids_first5"] == [0, 0, 0, 0, 0]
    fit = mp.glmer("y_t ~ x + (1 | g)", _data(), family="t")
    with pytest.raises(NotImplementedError, match=r"student_t.*glmmTMB 1\.1\.5.*pearson"):
        fit.residuals("deviance")
    assert np.all(np.isfinite(fit.residuals("pearson")))
