"""Result accessors beyond the parity numbers: predict, anova, coef, pickling, summary."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from conftest import reference, rel_close


@pytest.fixture(scope="module")
def sleep():
    return mp.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def fit(sleep):
    return mp.lmer("Reaction ~ Days + (Days | Subject)", sleep)


def test_predict_with_unseen_level_matches_lme4(fit):
    ref = reference("inf_predict")["sleepstudy"]
    new = pd.DataFrame(ref["newdata"])[["Subject", "Days"]]
    rel_close(fit.predict(new), ref["tight"]["re_form_NULL"], 0, 1e-3)
    rel_close(fit.predict(new, include_random=False), ref["tight"]["re_form_NA"], 0, 1e-6)


def test_predict_on_training_rows_equals_fitted(fit, sleep):
    np.testing.assert_allclose(fit.predict(sleep), fit.fitted(), rtol=1e-12)
    np.testing.assert_allclose(fit.fitted() + fit.residuals(), sleep["Reaction"], rtol=1e-12)


def test_anova_refits_with_ml_like_lme4(sleep, fit):
    ref = reference("inf_lrt")["comparisons"]["sleepstudy_intercept_vs_slope"]["tight_ml"]
    m0 = mp.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.warns(UserWarning, match="refitting model"):
        table = mp.anova(m0, fit)
    assert table.columns.tolist() == ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df",
                                      "Pr(>Chisq)"]
    rel_close(table["npar"], ref["npar"], 0)
    rel_close(table["logLik"], ref["logLik"], 0, 1e-6)
    rel_close(table["Chisq"].iloc[1], ref["Chisq"], 0, 1e-5)
    rel_close(table["Pr(>Chisq)"].iloc[1], ref["p_value"], 1e-4)


def test_anova_rejects_different_data(sleep, fit):
    other = sleep.iloc[:170]
    m0 = mp.lmer("Reaction ~ Days + (1 | Subject)", other)
    with pytest.raises(mp.ModelSpecError, match="same data"):
        mp.anova(m0, fit)


def test_coef_is_fixed_plus_random(fit):
    c = fit.coef()["Subject"]
    re = fit.random_effects["Subject"]
    np.testing.assert_allclose(c["Days"], fit.fe_params["Days"] + re["Days"])
    assert list(c.columns) == ["(Intercept)", "Days"]


def test_variance_components_and_scale(fit):
    vc = fit.variance_components["Subject"]
    assert isinstance(vc, pd.DataFrame)
    assert vc.loc["Days", "Days"] == pytest.approx(fit.varcorr["vcov"].iloc[1])
    assert fit.scale == pytest.approx(fit.sigma ** 2)
    assert fit.deviance == pytest.approx(-2 * fit.loglik)


def test_pickle_round_trip_and_refit_after_unpickle(fit, sleep):
    clone = pickle.loads(pickle.dumps(fit))
    np.testing.assert_allclose(clone.fe_params, fit.fe_params)
    np.testing.assert_allclose(clone.df, fit.df, rtol=1e-6)
    dev, _ = clone.objective(fit.theta)
    assert dev == pytest.approx(fit.reml_criterion, rel=1e-12)


def test_summary_text_has_lmertest_sections(fit):
    text = str(fit.summary())
    for piece in ("REML criterion at convergence: 1743.6", "Random effects:", "Subject",
                  "Residual", "Fixed effects:", "Number of obs: 180, groups:  Subject, 18",
                  "Satterthwaite"):
        assert piece in text


def test_coef_table_and_confint(fit):
    tab = fit.coef_table()
    assert list(tab.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    ci = fit.confint(level=0.9)
    z = 1.6448536269514722
    np.testing.assert_allclose(ci.iloc[:, 1], fit.fe_params + z * fit.fe_bse)


def test_ml_fit_matches_reference_loglik(sleep):
    ref = reference("lmm_sleepstudy_ml")["tight_refit"]
    ml = mp.lmer("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
    assert ml.reml_criterion is None
    rel_close(ml.loglik, ref["logLik"], 0, 1e-6)


def test_refit_with_new_response_reuses_structure(fit, sleep):
    from mixedppl.fit.lmm_fit import fit_lmm
    from mixedppl.fit.lmm_objective import LMMObjective
    y = sleep["Reaction"].to_numpy() * 2.0
    obj = LMMObjective(fit.spec, reml=True, y=y)
    assert obj.structure == fit.objective.structure
    refit = fit_lmm(fit.spec.with_response(y), objective=obj)
    np.testing.assert_allclose(refit.beta, 2 * fit.beta, rtol=1e-6)
    np.testing.assert_allclose(refit.theta, fit.theta, rtol=1e-4, atol=1e-6)


def test_weights_scale_invariance(sleep):
    w = np.full(len(sleep), 3.0)
    a = mp.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    b = mp.lmer("Reaction ~ Days + (Days | Subject)", sleep, weights=w)
    np.testing.assert_allclose(b.fe_params, a.fe_params, rtol=1e-6)
    assert b.sigma == pytest.approx(a.sigma * np.sqrt(3), rel=1e-5)


def test_offset_shifts_the_intercept(sleep):
    a = mp.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    b = mp.lmer("Reaction ~ Days + (Days | Subject)", sleep, offset=np.full(len(sleep), 10.0))
    assert b.fe_params["(Intercept)"] == pytest.approx(a.fe_params["(Intercept)"] - 10, rel=1e-7)


def test_double_bar_expands_like_lme4(sleep):
    ref = reference("lmm_sleepstudy_uncorr")["tight_refit"]
    fit = mp.lmer("Reaction ~ Days + (Days || Subject)", sleep)
    assert fit.spec.theta_names() == ["Subject.(Intercept)", "Subject.Days"]
    rel_close(fit.theta, ref["theta"], 1e-3, 1e-4)
    rel_close(fit.loglik, ref["logLik"], 0, 1e-3)


def test_nested_slash_equals_explicit_interaction():
    pastes = mp.datasets.load("pastes")
    a = mp.lmer("strength ~ 1 + (1 | batch/cask)", pastes)
    b = mp.lmer("strength ~ 1 + (1 | batch) + (1 | cask:batch)", pastes)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
    assert list(a.random_effects) == ["cask:batch", "batch"]


def test_summary_states_singular_and_nonconverged_fits():
    with pytest.warns(mp.SingularFitWarning):
        singular = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff2"))
    assert singular.is_singular
    text = str(singular.summary())
    assert "boundary (singular) fit: see help('isSingular')" in text
    assert "Model failed to converge" not in text
    with pytest.warns(mp.ConvergenceWarning):
        stopped = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"),
                          control=mp.LmerControl(maxiter=2))
    assert not stopped.converged
    grad = np.max(np.abs(stopped.opt.projected_gradient()))
    assert f"Model failed to converge with max|grad| = {grad:.3g}" in str(stopped.summary())
