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
