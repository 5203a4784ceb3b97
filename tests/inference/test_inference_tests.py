"""Kenward–Roger t tests, type III F tests, LRT, refit/update/simulate against R (lmerTest 3.1-3,
pbkrtest 0.5-2, lme4 1.1-31; tests/reference/lmm_*.json and inf_lrt.json).

Tolerances (issue 5): KR df and SEs 1e-3 relative; F, p 1e-3 relative; LRT statistic 1e-6
absolute, p-values 1e-6 relative.
"""

from functools import lru_cache

import numpy as np
import pytest
from scipy import stats

import mixedppl as mp
from conftest import reference, rel_close
from lmm_cases import CASES, fitted
from mixedppl.anova import NonNestedWarning, is_nested
from mixedppl.inference import kenward_roger
from mixedppl.inference.ftests import fstat_ddf
from mixedppl.spec.formula import update_formula

FAST = [c for c in CASES if c != "lmm_instevel"]  # InstEval: n = 73421, no KR reference
KR_CASES = [c for c in FAST if reference(c)["fixef"].get("df_kr") is not None]
ANOVA_COLS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


@lru_cache(maxsize=None)
def dataset(name):
    return mp.datasets.load(name)


# -- Kenward–Roger t tests -------------------------------------------------------------------------
@pytest.mark.parametrize("case", KR_CASES)
def test_kenward_roger_coef_table(case):
    fx = reference(case)["fixef"]
    table = fitted(case).coef_table(ddf="Kenward-Roger")
    assert list(table.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    rel_close(table["df"], fx["df_kr"], 1e-3)
    rel_close(table["Std. Error"], fx["se_kr"], 1e-3)
    rel_close(table["t value"], fx["t_kr"], 1e-3)
    rel_close(table["Pr(>|t|)"], fx["p_kr"], 1e-3)


def test_kenward_roger_boundary_dyestuff2():
    """Batch variance estimated at 0: KR keeps it (df 5), Satterthwaite drops it (df 29)."""
    fit = fitted("lmm_dyestuff2")
    rel_close(fit.coef_table(ddf="Kenward-Roger")["df"], [5.0], 1e-6)
    rel_close(fit.coef_table()["df"], [29.0], 1e-3)


def test_kenward_roger_refuses_ml_and_large_n(monkeypatch):
    with pytest.raises(mp.ModelSpecError, match="REML"):
        fitted("lmm_sleepstudy_ml").coef_table(ddf="Kenward-Roger")
    fit = mp.lmer("Reaction ~ Days + (1 | Subject)", dataset("sleepstudy"))
    monkeypatch.setattr(kenward_roger, "KR_MAX_N", 100)
    with pytest.raises(mp.ModelSpecError, match="n ≤ 100"):
        fit.coef_table(ddf="Kenward-Roger")
    with pytest.raises(ValueError, match="ddf must be"):
        fit.coef_table(ddf="bogus")


# -- type III F tests ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", FAST)
@pytest.mark.parametrize("ddf", ["Satterthwaite", "Kenward-Roger"])
def test_anova_type3(case, ddf):
    fit = fitted(case)
    key = "anova_type3_satterthwaite" if ddf == "Satterthwaite" else "anova_type3_kenward_roger"
    ref = reference(case).get(key)
    if ddf == "Kenward-Roger" and not fit.reml:
        pytest.skip("KR is only defined for REML fits (lmerTest refuses too)")
    table = fit.anova(ddf=ddf)
    assert list(table.columns) == ANOVA_COLS
    if ref is None:  # intercept-only model: lmerTest's table has no rows
        assert fit.spec.p == 1 and len(table) == 0
        return
    assert list(table.index) == ref["terms"]
    for col in ANOVA_COLS:
        rel_close(table[col], ref[col], 1e-3)


TRANSFORMED = reference("inf_anova_transformed")["models"]


@lru_cache(maxsize=None)
def transformed_fit(case):
    m = TRANSFORMED[case]
    return mp.lmer(m["formula"], dataset(m["data"]))


@pytest.mark.parametrize("case", sorted(TRANSFORMED))
@pytest.mark.parametrize("ddf", ["Satterthwaite", "Kenward-Roger"])
def test_anova_type3_transformed_terms(case, ddf):
    """Transformed variables (log, I(), poly, scale, a logical / factor() of a numeric) and
    factor × numeric interactions: lmerTest's term grouping, contrasts and F tests
    (scripts/inf_anova_transformed.R)."""
    m = TRANSFORMED[case]
    key = "anova_type3_satterthwaite" if ddf == "Satterthwaite" else "anova_type3_kenward_roger"
    ref = m[key]
    fit = transformed_fit(case)
    assert list(fit.fe_params.index) == list(m["fixef"])
    table = fit.anova(ddf=ddf)
    assert list(table.index) == ref["terms"]
    assert table["NumDF"].tolist() == ref["NumDF"]
    rel_close(table["Sum Sq"], ref["Sum Sq"], 1e-6)
    rel_close(table["F value"], ref["F value"], 1e-6)
    rel_close(table["DenDF"], ref["DenDF"], 1e-3)
    rel_close(table["Pr(>F)"], ref["Pr(>F)"], 1e-4)


def test_anova_type3_transformed_data_changed():
    d = dataset("sleepstudy").copy()
    fit = mp.lmer(TRANSFORMED["sleep_log_sq"]["formula"], d)
    d["Days"] = d["Days"] + 1.0                       # the fit keeps a reference to d
    with pytest.raises(mp.ModelSpecError, match="changed since the fit"):
        fit.anova()


def test_fstat_ddf_rules():
    assert fstat_ddf([7.0]) == 7.0
    assert fstat_ddf([10.0, 10.0 + 1e-10]) == pytest.approx(10.0)
    assert fstat_ddf([1.5, 30.0]) == 2.0
    nu = np.array([5.0, 20.0])
    E = np.sum(nu / (nu - 2))
    assert fstat_ddf(nu) == pytest.approx(2 * E / (E - 2))


def test_anova_bad_ddf():
    with pytest.raises(ValueError, match="ddf must be"):
        fitted("lmm_sleepstudy_reml").anova(ddf="lme4x")


# -- likelihood-ratio tests ------------------------------------------------------------------------
def test_lrt_boundary_dyestuff():
    ref = reference("inf_lrt")["comparisons"]["dyestuff_boundary"]["tight"]
    fit = mp.lmer("Yield ~ 1 + (1 | Batch)", dataset("dyestuff"), reml=False)
    t = mp.lrt(fit, drop="(1 | Batch)")
    rel_close(t.statistic, ref["LRT_stat"], 0, 1e-6)
    assert t.df == 1
    rel_close(t.pvalue, ref["p_naive_chisq1"], 1e-6)
    rel_close(t.pvalue_boundary, ref["p_chibar"], 1e-6)
    rel_close(t.loglik_reduced, ref["logLik_lm"], 0, 1e-6)


def test_lrt_fixed_term_and_reml_refit():
    ref = reference("inf_lrt")["comparisons"]["sleepstudy_days_fixed"]["tight_ml"]
    fit = mp.lmer("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"))
    with pytest.warns(UserWarning, match="refitting"):
        t = mp.lrt(fit, drop="Days")
    rel_close(t.statistic, ref["Chisq"], 0, 1e-6)
    rel_close(t.pvalue, ref["p_value"], 1e-6)
    assert t.df == 1 and t.pvalue_boundary is None


def test_lrt_one_of_two_terms_of_a_factor():
    fit = mp.lmer("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", dataset("sleepstudy"),
                  reml=False)
    t = mp.lrt(fit, drop="(0 + Days | Subject)")
    assert t.reduced.spec.formula == "Reaction ~ 1 + Days + (1 | Subject)"
    assert [term.column_names for term in t.reduced.spec.terms] == [["(Intercept)"]]
    assert t.pvalue_boundary == pytest.approx(0.5 * t.pvalue)
    with pytest.raises(mp.ModelSpecError, match="no random term"):
        mp.lrt(fit, drop="(1 | Days)")
    with pytest.raises(mp.ModelSpecError, match="no fixed term"):
        mp.lrt(fit, drop="Weight")


# -- LRT against the model without random effects (GLM / clm / lm) -------------------------------
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def test_lrt_glmm_only_random_term_is_the_binomial_glm():
    """R: logLik(glm(cbind(incidence, size - incidence) ~ period, binomial, cbpp)) = -99.0292;
    glmer Laplace -92.0263, so LR = 14.006."""
    cbpp = dataset("cbpp")
    fit = mp.glmer(CBPP, cbpp)
    t = mp.lrt(fit, drop="(1 | herd)")
    assert t.loglik_full == pytest.approx(-92.0263, abs=1e-4)
    assert t.loglik_reduced == pytest.approx(-99.0292, abs=1e-4)
    assert t.statistic == pytest.approx(14.006, abs=1e-3) and t.df == 1
    assert t.pvalue_boundary == pytest.approx(0.5 * stats.chi2.sf(t.statistic, 1), rel=1e-12)
    # closed form: with a factor as the only predictor the GLM fits each period's proportion
    tot = cbpp.groupby("period", observed=True)[["incidence", "size"]].transform("sum")
    p_hat = tot["incidence"] / tot["size"]
    closed = stats.binom.logpmf(cbpp["incidence"], cbpp["size"], p_hat).sum()
    assert t.loglik_reduced == pytest.approx(closed, abs=1e-8)
    assert t.reduced.converged and t.reduced.fe_names == fit.spec.fe_names
    # a fixed term of the GLMM: the reduced model is the GLMM without it (not an LMM)
    t_fixed = mp.lrt(fit, drop="period")
    alone = mp.glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp)
    assert t_fixed.df == 3 and t_fixed.pvalue_boundary is None
    assert t_fixed.loglik_reduced == pytest.approx(alone.loglik, abs=1e-6)


def test_lrt_clmm_only_random_term_is_clm():
    """ordinal: logLik(clm(rating ~ temp + contact, wine)) = -86.49192; the clmm with (1|judge)
    -81.56541, so LR = 9.853."""
    fit = mp.clmm("rating ~ temp + contact + (1 | judge)", dataset("wine"))
    t = mp.lrt(fit, drop="(1 | judge)")
    assert t.loglik_reduced == pytest.approx(-86.49192, abs=1e-5)
    assert t.statistic == pytest.approx(9.853, abs=1e-3) and t.df == 1
    assert t.pvalue_boundary == pytest.approx(0.5 * stats.chi2.sf(t.statistic, 1), rel=1e-12)
    np.testing.assert_allclose(t.reduced.beta, [2.503102, 1.527798], atol=1e-5)


def test_lrt_lmm_only_random_term_is_ols():
    sleep = dataset("sleepstudy")
    fit = mp.lmer("Reaction ~ Days + (1 | Subject)", sleep, reml=False)
    t = mp.lrt(fit, drop="(1 | Subject)")
    X = np.column_stack([np.ones(len(sleep)), sleep["Days"]])
    resid = sleep["Reaction"] - X @ np.linalg.lstsq(X, sleep["Reaction"], rcond=None)[0]
    closed = stats.norm.logpdf(resid, scale=np.sqrt(np.mean(resid ** 2))).sum()
    assert t.loglik_reduced == pytest.approx(closed, abs=1e-8)
    assert t.statistic == pytest.approx(2 * (fit.loglik - closed), abs=1e-8)


NONNESTED = reference("inf_anova_nonnested")


@lru_cache(maxsize=None)
def ml_fit(name):
    return mp.lmer(NONNESTED["formulas"][name], dataset("sleepstudy"), reml=False)


def _check_anova_table(table, ref):
    """Rows in lme4's order (by npar, stable); ML logLik 1e-3 absolute (tolerance of the
    preamble), Chisq as a difference of two of them."""
    assert list(table.index) == [NONNESTED["formulas"][m.split("$")[1]] for m in ref["models"]]
    rel_close(table["npar"], ref["npar"], 0)
    rel_close(table["logLik"], ref["logLik"], 0, 1e-3)
    rel_close(table["AIC"], ref["AIC"], 0, 2e-3)
    rel_close(table["Df"].iloc[1:], ref["Df"][1:], 0)
    rel_close(table["Chisq"].iloc[1:], ref["Chisq"][1:], 0, 2e-3)
    p_ref = np.array([np.nan if v is None else v for v in ref["Pr(>Chisq)"]], float)
    assert np.array_equal(np.isnan(table["Pr(>Chisq)"].to_numpy()), np.isnan(p_ref))
    rel_close(table["Pr(>Chisq)"].to_numpy()[~np.isnan(p_ref)], p_ref[~np.isnan(p_ref)], 1e-3)


@pytest.mark.parametrize("case", ["equal_npar_nonnested", "equal_npar_reversed", "nested_three"])
def test_anova_equal_npar_as_lme4(case, recwarn):
    """Equal npar: lme4 keeps the given order, reports Chisq = 2·max(0, ΔlogLik), Df 0, no p
    (and so do we, without a warning: no test is reported)."""
    ref = NONNESTED["comparisons"][case]
    table = mp.anova(*[ml_fit(name) for name in ref["args"]])
    _check_anova_table(table, ref)
    assert not [w for w in recwarn if issubclass(w.category, NonNestedWarning)]


def test_anova_nonnested_warns_but_matches_lme4():
    ref = NONNESTED["comparisons"]["nonnested_diff_npar"]
    fits = [ml_fit(name) for name in ref["args"]]
    with pytest.warns(NonNestedWarning, match="not nested"):
        table = mp.anova(*fits)
    _check_anova_table(table, ref)


def test_is_nested():
    assert is_nested(ml_fit("intercept"), ml_fit("correlated"))
    assert is_nested(ml_fit("slope_only"), ml_fit("correlated"))
    assert not is_nested(ml_fit("intercept"), ml_fit("slope_only"))
    assert not is_nested(ml_fit("intercept"), ml_fit("transformed"))
    assert not is_nested(ml_fit("correlated"), ml_fit("intercept"))
    uncorr = mp.lmer("Reaction ~ Days + (Days || Subject)", dataset("sleepstudy"), reml=False)
    assert is_nested(uncorr, ml_fit("correlated")) and not is_nested(ml_fit("correlated"), uncorr)
    quad = mp.lmer("Reaction ~ poly(Days, 2) + (1 | Subject)", dataset("sleepstudy"), reml=False)
    assert is_nested(ml_fit("intercept"), quad)         # Days lies in the span of poly(Days, 2)


def test_anova_rejects_different_response_and_nobs():
    assert "error" in NONNESTED["comparisons"]["different_nobs"]       # lme4 stops too
    assert "error" not in NONNESTED["comparisons"]["different_response"]  # lme4 does not check
    with pytest.raises(mp.ModelSpecError, match="'Reaction' and 'log\\(Reaction\\)'"):
        mp.anova(ml_fit("intercept"), ml_fit("log_response"))
    small = mp.lmer(NONNESTED["formulas"]["intercept"], dataset("sleepstudy").iloc[:170],
                    reml=False)
    with pytest.raises(mp.ModelSpecError, match="same size of dataset"):
        mp.anova(ml_fit("intercept"), small)


# -- refit / update / simulate ---------------------------------------------------------------------
def test_refit_same_and_scaled_response():
    fit = fitted("lmm_sleepstudy_reml")
    same = fit.refit(fit.spec.y)
    rel_close(same.theta, fit.theta, 1e-6, 1e-8)
    doubled = fit.refit(2 * fit.spec.y)
    rel_close(doubled.fe_params, 2 * fit.fe_params, 1e-6)
    assert doubled.objective.structure == fit.objective.structure


@pytest.mark.parametrize("bad", [np.ones(10), "Reaction", np.ones((180, 2)),
                                 np.full(180, np.nan)])
def test_refit_bad_response(bad):
    with pytest.raises(mp.ModelSpecError):
        fitted("lmm_sleepstudy_reml").refit(bad)


def test_update_formulas():
    spec = fitted("lmm_sleepstudy_reml").spec
    assert update_formula(spec, "~ . - Days") == "Reaction ~ (1 + Days | Subject)"
    assert update_formula(spec, ". ~ . - (Days | Subject) + (1 | Subject)") == \
        "Reaction ~ Days + (1 | Subject)"
    assert update_formula(spec, "log(.) ~ .") == "log(Reaction) ~ Days + (1 + Days | Subject)"
    assert update_formula(spec, "~ . - 1") == "Reaction ~ 0 + Days + (1 + Days | Subject)"
    assert update_formula(spec, "y ~ x + (1 | g)") == "y ~ x + (1 | g)"
    with pytest.raises(mp.ModelSpecError, match="cannot remove"):
        update_formula(spec, "~ . - Weight")


def test_update_refits_on_the_same_data():
    d = dataset("sleepstudy")
    fit = fitted("lmm_sleepstudy_reml")
    small = fit.update("~ . - Days")
    assert small.spec.fe_names == ["(Intercept)"] and small.reml
    ref = reference("inf_lrt")["comparisons"]["sleepstudy_days_fixed"]["m0_reml"]
    rel_close(small.loglik, ref["logLik"], 0, 1e-3)
    other = fit.update("~ . - Days", data=d.iloc[:60])
    assert other.nobs == 60


def test_simulate_reproducible_and_moments():
    fit = fitted("lmm_sleepstudy_reml")
    a, b = fit.simulate(nsim=2000, seed=3), fit.simulate(nsim=2000, seed=3)
    assert a.shape == (180, 2000) and np.array_equal(a, b)
    assert not np.array_equal(a, fit.simulate(nsim=2000, seed=4))
    mean = fit.spec.X @ fit.beta
    assert np.abs(a.mean(axis=1) - mean).max() < 6 * np.sqrt(a.var(axis=1).max() / 2000)
    S = fit.variance_components["Subject"].to_numpy()
    days = fit.spec.terms[0].z[:, 1]
    var = S[0, 0] + 2 * S[0, 1] * days + S[1, 1] * days ** 2 + fit.scale
    rel_close(a.var(axis=1).mean(), var.mean(), 0.05)
    with pytest.raises(ValueError, match="nsim"):
        fit.simulate(nsim=0)


def test_simulate_singular_fit():
    sim = fitted("lmm_dyestuff2").simulate(nsim=3, seed=1)
    assert sim.shape == (30, 3) and np.all(np.isfinite(sim))


@pytest.mark.slow
def test_instevel_anova_and_kr_limit():
    ref = reference("lmm_instevel")["anova_type3_satterthwaite"]
    fit = fitted("lmm_instevel")
    table = fit.anova()
    assert list(table.index) == ref["terms"]
    for col in ANOVA_COLS:
        rel_close(table[col], ref[col], 1e-3)
    with pytest.raises(mp.ModelSpecError, match="n ≤ 5000"):
        fit.coef_table(ddf="Kenward-Roger")
