"""Marginal means, contrasts, Wald tests and type II ANOVA against R (emmeans 1.8.4, lmerTest
3.1-3, pbkrtest 0.5.2; tests/reference/emmeans_*.json from tests/reference/scripts/emmeans.R,
on tight refits). Tolerances as DEVELOPERS.md: means and estimates as fixed effects
(max(1e-4·|R|, 1e-4)); SEs, df, F and p-values 1e-3 relative. A CLMM's SEs are compared with
emmeans on ordinal's default fit (its numerical Hessian moves with the stopping point; see the
JSON's note and tests/parity/test_clmm.py).
"""

import numpy as np
import pytest

import mixedppl as mp
from conftest import reference, rel_close

LMM_FORMULAS = {"cake_fit": "angle ~ recipe * temperature + (1 | recipe:replicate)",
                "cake_add": "angle ~ recipe + temperature + (1 | recipe:replicate)",
                "cake_num": "angle ~ recipe * temp + (1 | recipe:replicate)",
                "sleep_fit": "Reaction ~ Days + (Days | Subject)"}

# (reference key, model, specs, keywords)
LMM_EMMEANS = [
    ("recipe_kr", "cake_fit", "recipe", {}),
    ("recipe_satt", "cake_fit", "recipe", {"ddf": "Satterthwaite"}),
    ("temperature_by_recipe", "cake_fit", "temperature", {"by": "recipe"}),
    ("cells", "cake_fit", ["recipe", "temperature"], {}),
    ("add_temperature", "cake_add", "temperature", {"ddf": "Satterthwaite"}),
    ("num_recipe", "cake_num", "recipe", {}),
    ("num_recipe_at", "cake_num", "recipe", {"at": {"temp": [200]}}),
    ("sleep_days_at", "sleep_fit", "Days", {"at": {"Days": [0, 4.5, 9]}}),
    ("sleep_days_at_satt", "sleep_fit", "Days", {"at": {"Days": [0, 4.5, 9]},
                                                 "ddf": "Satterthwaite"}),
]
LMM_CONTRASTS = [
    ("recipe_pairwise_tukey", "recipe", {}),
    ("recipe_pairwise_satt", "recipe", {"ddf": "Satterthwaite"}),
    ("recipe_pairwise_holm", "recipe", {"adjust": "holm"}),
    ("recipe_pairwise_bonferroni", "recipe", {"adjust": "bonferroni"}),
    ("recipe_trt_vs_ctrl", "recipe", {"method": "trt.vs.ctrl"}),
    ("temperature_poly", "temperature", {"method": "poly"}),
    ("temperature_pairwise_by_recipe", "temperature", {"by": "recipe"}),
    ("recipe_custom", "recipe", {"method": {"AvsBC": [1, -0.5, -0.5]}}),
]


@pytest.fixture(scope="module")
def lmm_fits():
    cake, sleep = mp.datasets.load("cake"), mp.datasets.load("sleepstudy")
    return {k: mp.lmer(f, sleep if k.startswith("sleep") else cake)
            for k, f in LMM_FORMULAS.items()}


def _check_df(ours, ref_df):
    ref_df = np.array([np.inf if v is None else v for v in np.atleast_1d(ref_df)], float)
    assert np.array_equal(np.isinf(ours), np.isinf(ref_df))
    rel_close(np.asarray(ours)[~np.isinf(ref_df)], ref_df[~np.isinf(ref_df)], 1e-3)


def _check_means(ours, ref, value="emmean", se_ref=None):
    rel_close(ours[value], ref[value], 1e-4, 1e-4)
    rel_close(ours["SE"], (se_ref or ref)["SE"], 1e-3)
    _check_df(ours["df"], ref["df"])
    lo, hi = ("lower.CL", "upper.CL") if "lower.CL" in ref else ("asymp.LCL", "asymp.UCL")
    if se_ref is None:
        rel_close(ours["lower_CL"], ref[lo], 1e-4, 1e-3)
        rel_close(ours["upper_CL"], ref[hi], 1e-4, 1e-3)


def _check_contrasts(ours, ref, se_ref=None):
    assert ours["contrast"].tolist() == list(np.atleast_1d(ref["contrast"]))
    rel_close(ours["estimate"], ref["estimate"], 1e-4, 1e-4)
    rel_close(ours["SE"], (se_ref or ref)["SE"], 1e-3)
    _check_df(ours["df"], ref["df"])
    ratio = ref["t.ratio"] if "t.ratio" in ref else ref["z.ratio"]
    p_ref = (se_ref or ref)["p.value"]
    if se_ref is None:
        rel_close(ours["ratio"], ratio, 1e-3)
    rel_close(ours["p_value"], p_ref, 1e-3 if se_ref is None else 2e-2)


@pytest.mark.parametrize("key, model, specs, kw", LMM_EMMEANS, ids=[c[0] for c in LMM_EMMEANS])
def test_lmm_emmeans(lmm_fits, key, model, specs, kw):
    ref = reference("emmeans_lmm")["emmeans"][key]["table"]
    ours = lmm_fits[model].emmeans(specs, **kw)
    for v in ([specs] if isinstance(specs, str) else specs) + ([kw["by"]] if "by" in kw else []):
        assert [str(x) if not isinstance(x, float) else x for x in ours[v]] == \
            [x if isinstance(x, str) else float(x) for x in ref[v]]
    _check_means(ours, ref)


@pytest.mark.parametrize("key, specs, kw", LMM_CONTRASTS, ids=[c[0] for c in LMM_CONTRASTS])
def test_lmm_contrasts(lmm_fits, key, specs, kw):
    ref = reference("emmeans_lmm")["contrasts"][key]["table"]
    ours = lmm_fits["cake_fit"].contrasts(specs, **kw)
    if "by" in kw:
        assert ours[kw["by"]].tolist() == ref[kw["by"]]
    _check_contrasts(ours, ref)


@pytest.mark.parametrize("key", list(reference("emmeans_lmm")["contest"]))
def test_wald_test_is_lmertests_contest(lmm_fits, key):
    ref = reference("emmeans_lmm")["contest"][key]
    fit = lmm_fits["sleep_fit" if key.startswith("sleep") else "cake_fit"]
    ddf = "Kenward-Roger" if key.endswith("_kr") else "Satterthwaite"
    ours = fit.wald_test(np.asarray(ref["L"], float), ref.get("rhs"), ddf=ddf)
    for col in ("Sum Sq", "Mean Sq", "DenDF", "F value", "Pr(>F)"):
        rel_close(ours[col], ref[col], 1e-3)
    assert ours["NumDF"].tolist() == list(np.atleast_1d(ref["NumDF"]))


def test_wald_test_text_is_the_matrix(lmm_fits):
    fit = lmm_fits["sleep_fit"]
    ref = reference("emmeans_lmm")["contest"]["sleep_days_rhs10"]
    ours = fit.wald_test("Days = 10")
    rel_close(ours["F value"], ref["F value"], 1e-3)


@pytest.mark.parametrize("key", list(reference("emmeans_lmm")["anova_type2"]))
def test_anova_type2(lmm_fits, key):
    ref = reference("emmeans_lmm")["anova_type2"][key]
    model = {"cake_satt": "cake_fit", "cake_kr": "cake_fit", "cake_add_satt": "cake_add",
             "cake_num_satt": "cake_num", "cake_num_type3": "cake_num"}[key]
    table = lmm_fits[model].anova(ddf="Kenward-Roger" if key.endswith("_kr") else "Satterthwaite",
                                  type=3 if key.endswith("type3") else 2)
    assert list(table.index) == ref["terms"]
    for col in ("Sum Sq", "Mean Sq", "DenDF", "F value", "Pr(>F)"):
        rel_close(table[col], ref[col], 1e-3)
    assert table["NumDF"].tolist() == ref["NumDF"]


@pytest.fixture(scope="module")
def cbpp_fit():
    return mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                    mp.datasets.load("cbpp"))


def test_glmm_emmeans_link_and_response(cbpp_fit):
    ref = reference("emmeans_glmm")["emmeans"]
    _check_means(cbpp_fit.emmeans("period"), ref["period_link"]["table"])
    resp = ref["period_response"]["table"]
    ours = cbpp_fit.emmeans("period", type="response")
    _check_means(ours.rename(columns={"response": "prob"}), resp, value="prob")


@pytest.mark.parametrize("key, kw", [("period_pairwise", {}),
                                     ("period_trt_vs_ctrl_holm", {"method": "trt.vs.ctrl",
                                                                  "adjust": "holm"}),
                                     ("period_poly", {"method": "poly"})])
def test_glmm_contrasts(cbpp_fit, key, kw):
    _check_contrasts(cbpp_fit.contrasts("period", **kw),
                     reference("emmeans_glmm")["contrasts"][key]["table"])


@pytest.fixture(scope="module")
def wine_fit():
    return mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))


def test_clmm_emmeans_latent(wine_fit):
    ref = reference("emmeans_clmm")["emmeans"]
    ours = wine_fit.emmeans("temp", by="contact")
    assert ours["temp"].tolist() == ref["temp_by_contact"]["table"]["temp"]
    _check_means(ours, ref["temp_by_contact"]["table"],
                 se_ref=ref["temp_by_contact_default_fit"]["table"])


def test_clmm_contrasts(wine_fit):
    ref = reference("emmeans_clmm")["contrasts"]
    _check_contrasts(wine_fit.contrasts(["temp", "contact"]), ref["cells_pairwise"]["table"],
                     se_ref=ref["cells_pairwise_default_fit"]["table"])


# --- response-scale contrasts and revpairwise (tests/reference/emmeans_response.json, from
# tests/reference/scripts/emmeans_response.R) ---------------------------------------------------
def _response_fits():
    cbpp, grouse = mp.datasets.load("cbpp"), mp.datasets.load("grouseticks")
    f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    return {"cbpp_logit": mp.glmer(f, cbpp),
            "cbpp_probit": mp.glmer(f, cbpp, family="binomial", link="probit"),
            "grouse_poisson": mp.glmer("TICKS ~ YEAR + (1 | BROOD)", grouse, family="poisson")}


@pytest.fixture(scope="module")
def response_fits(lmm_fits):
    return {**_response_fits(), "cake_fit": lmm_fits["cake_fit"]}


# (reference key, model, specs, keywords)
RESPONSE_CONTRASTS = [
    ("cake_revpairwise", "cake_fit", "recipe", {"method": "revpairwise"}),
    ("cake_revpairwise_by", "cake_fit", "temperature", {"method": "revpairwise", "by": "recipe"}),
    ("cbpp_revpairwise_link", "cbpp_logit", "period", {"method": "revpairwise"}),
    ("cbpp_pairwise_response", "cbpp_logit", "period", {"type": "response"}),
    ("cbpp_revpairwise_response", "cbpp_logit", "period", {"method": "revpairwise",
                                                           "type": "response"}),
    ("cbpp_trt_vs_ctrl_response", "cbpp_logit", "period", {"method": "trt.vs.ctrl",
                                                           "type": "response"}),
    ("grouse_pairwise_response", "grouse_poisson", "YEAR", {"type": "response"}),
    ("grouse_revpairwise_response_holm", "grouse_poisson", "YEAR",
     {"method": "revpairwise", "type": "response", "adjust": "holm"}),
]


@pytest.mark.parametrize("key, model, specs, kw", RESPONSE_CONTRASTS,
                         ids=[c[0] for c in RESPONSE_CONTRASTS])
def test_response_scale_and_revpairwise_contrasts(response_fits, key, model, specs, kw):
    ref = reference("emmeans_response")["contrasts"][key]["table"]
    ours = response_fits[model].contrasts(specs, **kw)
    value = next((c for c in ("odds.ratio", "ratio") if c in ref and "null" in ref), None)
    if value is None:                       # link scale: the columns of every contrast table
        if "by" in kw:
            assert ours[kw["by"]].tolist() == ref[kw["by"]]
        _check_contrasts(ours, ref)
        return
    ours_value = value.replace(".", "_")
    assert list(ours.columns) == ["contrast", ours_value, "SE", "df", "null", "z_ratio",
                                  "p_value"]
    assert ours["contrast"].tolist() == ref["contrast"]
    # a ratio exp(c) moves by |c|·1e-4 relative when c moves by the fixed-effect tolerance
    rel_close(ours[ours_value], ref[value], 1e-4 * max(1.0, np.max(np.abs(np.log(ref[value])))))
    rel_close(ours["SE"], ref["SE"], 1e-3)
    rel_close(ours["z_ratio"], ref["z.ratio"], 1e-3)
    # atol 1e-9: below that a p-value moves by z² times the relative move of z (grouse YEAR95 /
    # YEAR97: z = 6.9, p = 7e-12; z agrees to 3e-5, so p to 1.5e-3)
    rel_close(ours["p_value"], ref["p.value"], 1e-3, 1e-9)
    assert np.all(ours["null"] == 1.0) and np.all(np.isinf(ours["df"]))


def test_response_contrasts_after_response_emmeans_are_the_same(response_fits):
    """emmeans' pairs(emmeans(g, type = "response")) is the type = "response" contrast."""
    ref = reference("emmeans_response")["contrasts"]
    a, b = ref["cbpp_emmeans_response_pairs"]["table"], ref["cbpp_pairwise_response"]["table"]
    np.testing.assert_allclose(a["odds.ratio"], b["odds.ratio"], rtol=1e-12)


def test_probit_response_contrasts_stay_on_the_link_scale(response_fits):
    ref = reference("emmeans_response")["contrasts"]["cbpp_probit_pairwise_response"]["table"]
    with pytest.warns(UserWarning, match="still on the probit scale"):
        ours = response_fits["cbpp_probit"].contrasts("period", type="response")
    _check_contrasts(ours, ref)


def test_response_contrasts_need_a_glmm(response_fits):
    with pytest.raises(ValueError, match="for GLMMs"):
        response_fits["cake_fit"].contrasts("recipe", type="response")
