"""CoxmeResult's tables: tidy / glance (broom's names), varcorr (lme4's layout), and the
notebook / document renderings, checked against the fit's own accessors."""

import numpy as np
import pytest

import mixedppl as mp


@pytest.fixture(scope="module")
def fit():
    return mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))


def test_tidy_rows_equal_the_accessors(fit):
    t = fit.tidy(conf_int=True)
    fixed = t[t["effect"] == "fixed"].set_index("term")
    np.testing.assert_allclose(fixed["estimate"], fit.fe_params, rtol=0, atol=0)
    np.testing.assert_allclose(fixed["std_error"], fit.fe_bse)
    np.testing.assert_allclose(fixed["p_value"], fit.pvalues)
    wald = fit.confint()
    np.testing.assert_allclose(fixed[["conf_low", "conf_high"]].to_numpy(), wald.to_numpy(),
                               rtol=1e-10)
    sd = t[t["effect"] == "ran_pars"]["estimate"].iloc[0]
    assert sd == pytest.approx(np.sqrt(fit.variance_components["id"]), rel=1e-12)
    hr = fit.tidy(conf_int=True, exponentiate=True)
    hr_fixed = hr[hr["effect"] == "fixed"].set_index("term")
    np.testing.assert_allclose(hr_fixed["estimate"], np.exp(fit.fe_params))
    np.testing.assert_allclose(hr_fixed["conf_low"], np.exp(fixed["conf_low"]))
    assert hr[hr["effect"] == "ran_pars"]["estimate"].iloc[0] == pytest.approx(sd)


def test_glance_and_renderings(fit):
    g = fit.glance().iloc[0]
    assert (g["nobs"], g["nevent"]) == (fit.nobs, fit.nevents)
    assert g["logLik"] == fit.loglik and g["AIC"] == fit.aic and g["BIC"] == fit.bic
    html = fit._repr_html_()
    assert html.count("<table") == 2 and "Fixed coefficients" in html
    assert fit.to_markdown().splitlines()[0].startswith("|")
    assert "\\begin{tabular}" in fit.to_latex()
    vc = fit.varcorr
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    assert vc["vcov"].iloc[0] == pytest.approx(fit.variance_components["id"])
