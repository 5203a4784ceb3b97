"""GLMMs by the Laplace approximation against lme4 (tests/reference/glmm_*.json).

Parameters and logLik are compared with the ``tight_refit`` blocks (lme4's default optimum is only
good to ~1e-4). SEs: lme4's ``vcov(use.hessian=TRUE)`` inverts a finite-difference Hessian of the
deviance, ours a central difference of the exact gradient, so they agree to ~1e-3 relative; the
tolerance is 1e-2 relative. BLUPs are compared with the default fit's ``ranef`` within 2e-3·max|R|.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.core.exceptions import ModelSpecError
from mixedppl.glmm_api import glmer, glmm_model

from conftest import reference, rel_close

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
GROUSE = "TICKS ~ YEAR + scale(HEIGHT) + (1|BROOD) + (1|INDEX) + (1|LOCATION)"


@pytest.fixture(scope="module")
def cbpp():
    return mp.datasets.load("cbpp")


@pytest.fixture(scope="module")
def cbpp_fit(cbpp):
    return glmer(CBPP, cbpp, family="binomial")


def _check_parity(fit, ref):
    tight = ref["tight_refit"]
    fe = np.asarray(tight["fixef"])
    assert np.all(np.abs(fit.fe_params.to_numpy() - fe) <= np.maximum(1e-4 * np.abs(fe), 1e-4))
    rel_close(fit.theta, tight["theta"], 1e-3, 1e-4)
    assert abs(fit.loglik - tight["logLik"]) <= 1e-3
    rel_close(fit.fe_bse, tight["se"], 1e-2)
    assert list(fit.fe_params.index) == ref["fixef"]["names"]
    for group, blk in ref["ranef"].items():
        ours = fit.random_effects[group]
        assert list(ours.index) == blk["levels"]
        for term, vals in blk["terms"].items():
            r = np.asarray(vals["condval"])
            assert np.max(np.abs(ours[term].to_numpy() - r)) <= 2e-3 * np.max(np.abs(r))
            s = np.asarray(vals["condsd"])
            rel_close(fit.random_effects_se[group][term], s, 1e-2)


def test_cbpp_laplace_matches_lme4(cbpp_fit):
    ref = reference("glmm_cbpp_laplace")
    _check_parity(cbpp_fit, ref)
    assert cbpp_fit.converged and not cbpp_fit.is_singular
    assert cbpp_fit.aic == pytest.approx(ref["tight_refit"]["logLik"] * -2 + 10, abs=2e-3)
    assert cbpp_fit.deviance == pytest.approx(-2 * cbpp_fit.loglik)
    rel_close(cbpp_fit.varcorr["sdcor"], ref["tight_refit"]["varcorr_sdcor"], 1e-3)
    assert "Residual" not in set(cbpp_fit.varcorr["grp"])


def test_cbpp_predictions_and_ratios(cbpp_fit, cbpp):
    ref = reference("glmm_cbpp_laplace")
    rel_close(cbpp_fit.fitted()[:10], ref["fitted_first10"], 2e-3)
    rel_close(cbpp_fit.predict(cbpp.head(10), type="link"), ref["linpred_first10"], 2e-3)
    rel_close(cbpp_fit.predict(cbpp.head(10)), cbpp_fit.fitted()[:10], 1e-12)
    new = cbpp.head(3).assign(herd=pd.Categorical(["99"] * 3))
    np.testing.assert_allclose(cbpp_fit.predict(new, type="link"),
                               cbpp_fit.predict(cbpp.head(3), type="link", include_random=False))
    orat = cbpp_fit.odds_ratios()
    np.testing.assert_allclose(orat["estimate"], np.exp(cbpp_fit.fe_params))
    np.testing.assert_allclose(orat.iloc[:, 1], np.exp(cbpp_fit.confint().iloc[:, 0]))
    p = ref["tight_refit"]
    z = np.asarray(p["fixef"]) / np.asarray(p["se"])
    rel_close(cbpp_fit.zvalues, z, 1e-2)
    assert np.all(cbpp_fit.pvalues < 0.01)


def test_cbpp_summary_layout(cbpp_fit):
    text = str(cbpp_fit.summary())
    for piece in ("Approximation) [glmerMod]", "Family: binomial  ( logit )",
                  "Random effects:", "herd", "Number of obs: 56, groups:  herd, 15",
                  "z value", "Pr(>|z|)"):
        assert piece in text
    assert "Residual" not in text


def test_proportion_with_weights_equals_cbind(cbpp, cbpp_fit):
    d = cbpp.assign(prop=cbpp["incidence"] / cbpp["size"])
    g = glmer("prop ~ period + (1 | herd)", d, family="binomial", weights="size")
    np.testing.assert_allclose(g.fe_params, cbpp_fit.fe_params, atol=1e-6)
    assert g.loglik == pytest.approx(cbpp_fit.loglik, abs=1e-6)


def test_bernoulli_rows_same_estimates(cbpp, cbpp_fit):
    rows = []
    for _, r in cbpp.iterrows():
        rows += [(r.herd, r.period, 1)] * int(r.incidence)
        rows += [(r.herd, r.period, 0)] * int(r["size"] - r.incidence)
    d = pd.DataFrame(rows, columns=["herd", "period", "y"]).astype(
        {"herd": cbpp["herd"].dtype, "period": cbpp["period"].dtype})
    g = glmer("y ~ period + (1 | herd)", d, family="binomial")
    np.testing.assert_allclose(g.fe_params, cbpp_fit.fe_params, atol=1e-5)
    rel_close(g.theta, cbpp_fit.theta, 1e-4)


def test_grouseticks_poisson_matches_lme4():
    ref = reference("glmm_grouseticks")
    fit = glmer(GROUSE, mp.datasets.load("grouseticks"), family="poisson")
    _check_parity(fit, ref)
    rel_close(fit.incidence_rate_ratios()["estimate"], np.exp(ref["tight_refit"]["fixef"]), 1e-4)
    assert "Family: poisson  ( log )" in str(fit.summary())


@pytest.mark.parametrize("column, value, match", [
    ("incidence", -1, "negative successes"),
    ("incidence", 2.5, "non-integer"),
    ("incidence", 99, "exceed the number of trials"),
])
def test_bad_binomial_counts(cbpp, column, value, match):
    d = cbpp.copy()
    d[column] = d[column].astype(float)
    d.loc[0, column] = value
    with pytest.raises(ModelSpecError, match=match):
        glmm_model(CBPP, d, "binomial")


def test_bad_proportions_and_counts(cbpp):
    d = cbpp.assign(prop=cbpp["incidence"] / cbpp["size"])
    d.loc[0, "prop"] = 1.5
    with pytest.raises(ModelSpecError, match="'prop'"):
        glmm_model("prop ~ period + (1 | herd)", d, "binomial")
    with pytest.raises(ModelSpecError, match="non-integer"):
        glmm_model("prop ~ period + (1 | herd)", cbpp.assign(prop=0.3), "binomial")
    with pytest.raises(ModelSpecError, match="negative counts"):
        glmm_model("y ~ period + (1 | herd)", cbpp.assign(y=-cbpp["incidence"]), "poisson")
    with pytest.raises(ModelSpecError, match="'incidence'"):
        glmm_model("incidence ~ period + (1 | herd)", cbpp.assign(incidence=0.5), "poisson")
    with pytest.raises(ModelSpecError, match="link"):
        glmm_model(CBPP, cbpp, "poisson", link="logit")
    with pytest.raises(ModelSpecError, match="family"):
        glmm_model(CBPP, cbpp, "tweedie")
    with pytest.raises(NotImplementedError, match="nAGQ"):
        glmer("y ~ period + (1 | herd) + (1 | period)", cbpp.assign(y=cbpp["incidence"]),
              family="poisson", nAGQ=5)


@pytest.mark.parametrize("link, nagq", [("logit", 1), ("logit", 25),
                                        pytest.param("probit", 1, marks=pytest.mark.slow),
                                        pytest.param("cloglog", 1, marks=pytest.mark.slow)])
def test_laplace_gradient_is_exact(cbpp, link, nagq):
    """The implicit-function gradient of D(θ, β) agrees with central differences of D."""
    from mixedppl.fit.laplace import LaplaceObjective
    obj = LaplaceObjective(*glmm_model(CBPP, cbpp, "binomial", link=link), nAGQ=nagq)
    x = np.array([0.8, -1.2, -0.8, -1.0, -1.3])
    _, grad = obj(x)
    num = np.zeros_like(x)
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = 1e-5
        num[i] = (obj(x + e)[0] - obj(x - e)[0]) / 2e-5
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("link", ["probit", "cloglog"])
def test_other_binomial_links_converge(cbpp, link):
    g = glmer(CBPP, cbpp, family="binomial", link=link)
    assert g.converged and np.all(np.isfinite(g.fe_bse))
    assert f"( {link} )" in str(g.summary())


def test_offset_shifts_intercept(cbpp, cbpp_fit):
    g = glmer(CBPP, cbpp, family="binomial", offset=np.full(len(cbpp), 0.5))
    shift = np.array([0.5, 0, 0, 0])
    np.testing.assert_allclose(g.fe_params + shift, cbpp_fit.fe_params, atol=1e-5)
    assert g.loglik == pytest.approx(cbpp_fit.loglik, abs=1e-6)
    np.testing.assert_allclose(g.fitted(), cbpp_fit.fitted(), atol=1e-6)


def test_cbpp_agq25_matches_lme4(cbpp):
    """nAGQ=25: parameters as lme4; logLik on the Laplace scale (lme4 drops the binomial
    saturated log-likelihood -41.97835 for nAGQ > 1: -50.00502 there, -91.98337 here)."""
    ref = reference("glmm_cbpp_agq")
    fit = glmer(CBPP, cbpp, family="binomial", nAGQ=25)
    tight = ref["tight_refit"]
    fe = np.asarray(tight["fixef"])
    assert np.all(np.abs(fit.fe_params.to_numpy() - fe) <= np.maximum(1e-4 * np.abs(fe), 1e-4))
    rel_close(fit.theta, tight["theta"], 1e-3, 1e-4)
    rel_close(fit.fe_bse, tight["se"], 1e-2)
    assert abs(fit.loglik - ref["logLik_consistent"]["value"]) <= 1e-3


# -- families with a dispersion parameter, against glmmTMB (TMB's Laplace, exact Hessian) --------
# glmmTMB's conditional SDs of the random effects (``ranef(condVar=TRUE)``, from TMB's sdreport)
# include the uncertainty of the estimated parameters; ours are lme4's conditional SDs given
# them, so only the conditional modes are compared.
TMB_CASES = {
    "glmm_negbin_grouse": ("TICKS ~ YEAR + (1 | LOCATION)", "grouseticks", "negative_binomial"),
    "glmm_gamma_sleepstudy": ("Reaction ~ Days + (1 | Subject)", "sleepstudy", "gamma"),
    "glmm_beta_cbpp": ("prop ~ period + (1 | herd)", "cbpp", "beta"),
}


def _tmb_data(name):
    d = mp.datasets.load(name)
    if name == "cbpp":
        d["prop"] = (d["incidence"] + 0.5) / (d["size"] + 1)
    return d


@pytest.fixture(scope="module")
def tmb_fits():
    return {case: glmer(f, _tmb_data(data), family=fam)
            for case, (f, data, fam) in TMB_CASES.items()}


@pytest.mark.parametrize("case", list(TMB_CASES))
def test_dispersion_families_match_glmmtmb(tmb_fits, case):
    fit, ref = tmb_fits[case], reference(case)
    fe = np.asarray(ref["fixef"]["estimate"])
    # glmm_negbin_grouse is glmmTMB's default fit (max |gradient| 1.5e-3, no tight refit): its
    # fixed effects are good to ~4e-5 (ours, at |gradient| < 1e-5, differ by at most 3.5e-5).
    assert np.all(np.abs(fit.fe_params.to_numpy() - fe) <= np.maximum(1e-4 * np.abs(fe), 1e-4))
    assert list(fit.fe_params.index) == ref["fixef"]["names"]
    rel_close(fit.fe_bse, ref["fixef"]["se"], 1e-2)
    assert abs(fit.loglik - ref["logLik"]) <= 1e-3
    if case == "glmm_negbin_grouse":
        sd, disp = ref["varcorr"]["groups"][0]["sd"], ref["nb_theta"]
    else:
        sd, disp = list(ref["re_sd"].values()), ref["sigma"]
    rel_close(fit.theta, sd, 1e-3, 1e-4)
    assert fit.dispersion == pytest.approx(disp, rel=1e-3)
    assert fit.n_params == len(fe) + 2 and fit.converged
    np.testing.assert_allclose(fit.fitted()[:10], ref["fitted_first10"], rtol=1e-3)
    for group, blk in ref["ranef"].items():
        terms = blk.get("terms", {"(Intercept)": blk})
        r = np.asarray(terms["(Intercept)"]["condval"])
        ours = fit.random_effects[group]["(Intercept)"].to_numpy()
        assert list(fit.random_effects[group].index) == [str(v) for v in blk["levels"]]
        assert np.max(np.abs(ours - r)) <= 2e-3 * np.max(np.abs(r))


def test_dispersion_in_summary(tmb_fits):
    text = str(tmb_fits["glmm_negbin_grouse"].summary())
    assert "negative_binomial" in text and "dispersion (size): 2.04" in text
    assert tmb_fits["glmm_gamma_sleepstudy"].dispersion_se > 0


def test_bad_dispersion_family_responses():
    sleep = mp.datasets.load("sleepstudy")
    bad = sleep.assign(Reaction=sleep["Reaction"] - 300)
    with pytest.raises(ModelSpecError, match="Gamma response 'Reaction' must be positive"):
        glmer("Reaction ~ Days + (1 | Subject)", bad, family="gamma")
    cbpp = mp.datasets.load("cbpp").assign(p=lambda d: d["incidence"] / d["size"])
    with pytest.raises(ModelSpecError, match="strictly between 0 and 1"):
        glmer("p ~ period + (1 | herd)", cbpp, family="beta")
    with pytest.raises(ModelSpecError, match="non-negative integer"):
        glmer("Reaction ~ Days + (1 | Subject)", sleep, family="negative_binomial")
