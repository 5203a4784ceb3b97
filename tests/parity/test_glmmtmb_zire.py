"""Random terms in the zero-inflation formula (issue 15, part B) against glmmTMB 1.1.5.

References: ``tests/reference/glmmtmb_zire_<case>.json``, written by
``tests/reference/scripts/glmmtmb_zi_re.R`` (the R call is in each file; tight refits,
``rel.tol = 1e-14``, and ``newton_step_max``: one Newton step on glmmTMB's own objective from
its optimum, ≤ 2e-5 on every case, so R's numbers are converged well inside the tolerances).
First the objective at R's estimates (no optimiser involved), then the fit: coefficients of
every part within max(1e-4·|R|, 1e-4), SEs 1e-2 relative (GLMM), logLik 1e-3, SDs 1e-3
relative, BLUPs of both parts 2e-3·max|R|, predictions of every type.
"""

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from conftest import reference, rel_close
from mixedppl.core.exceptions import ModelSpecError
from mixedppl.fit.laplace_zire import ZIReObjective

# case: (formula, data, family, ziformula)
CASES = {
    "zip_salamanders": ("count ~ mined + (1 | site)", "salamanders", "poisson",
                        "~ mined + (1 | site)"),
    "zinb2_spp_salamanders": ("count ~ mined + (1 | site)", "salamanders", "nbinom2",
                              "~ mined + (1 | spp)"),
    "zinb2_site_salamanders": ("count ~ mined + (1 | site)", "salamanders", "nbinom2",
                               "~ 1 + (1 | site)"),
    "zionly_salamanders": ("count ~ mined + spp", "salamanders", "poisson",
                           "~ mined + (1 | site)"),
    "zip_crossed_sim": ("y_zip ~ x + (1 | g)", "sim", "poisson", "~ x + (1 | h)"),
    "zip_zionly_sim": ("y_zig ~ x", "sim", "poisson", "~ 1 + (1 | g)"),
    # hurdles: the zero part (logit π, with its own site effects) and the truncated count part
    "hurdle_poisson_salamanders": ("count ~ mined + (1 | site)", "salamanders",
                                   "truncated_poisson", "~ mined + (1 | site)"),
    "hurdle_nbinom2_salamanders": ("count ~ mined + (1 | site)", "salamanders",
                                   "truncated_nbinom2", "~ mined + (1 | site)"),
}
_FITS: dict = {}


def _data(case):
    if CASES[case][1] == "salamanders":
        return mp.datasets.load("salamanders")
    d = pd.DataFrame(reference(f"glmmtmb_zire_{case}")["data"])
    for col in ("g", "h"):
        d[col] = pd.Categorical(d[col])
    return d


def _fit(case):
    if case not in _FITS:
        formula, _, family, zi = CASES[case]
        _FITS[case] = mp.glmer(formula, _data(case), family=family, ziformula=zi)
    return _FITS[case]


def _sds(block):
    return [float(np.atleast_1d(v["sd"])[0]) for v in (block or {}).values()]


def _r_x(ref, fit):
    """R's estimates as our optimiser's vector (θ_c, θ_z, β, γ, δ)."""
    disp = np.atleast_1d(ref["disp"]["estimate"] if ref.get("disp") else [])
    delta = disp / fit.family.tmb_disp_scale if len(disp) else np.zeros(0)
    return np.concatenate([_sds(ref["varcorr_cond"]), _sds(ref["varcorr_zi"]),
                           np.atleast_1d(ref["fixef"]["estimate"]),
                           np.atleast_1d(ref["zi"]["estimate"]), delta])


@pytest.mark.parametrize("case", CASES)
def test_objective_at_glmmtmbs_estimates(case):
    fit = _fit(case)
    ref = reference(f"glmmtmb_zire_{case}")
    obj = ZIReObjective(fit.spec, *fit.spec.counts())
    D, grad = obj(_r_x(ref, fit))
    assert abs(-D / 2 - ref["logLik"]) < 1e-5
    # glmmTMB's optimum is a stationary point of our objective too (its θ on the log-SD scale:
    # the gradient in SD is the log-SD gradient / SD)
    assert np.max(np.abs(grad)) < 5e-3


@pytest.mark.parametrize("case", CASES)
def test_fit_matches_glmmtmb(case):
    fit = _fit(case)
    ref = reference(f"glmmtmb_zire_{case}")
    assert fit.record.converged
    assert abs(fit.loglik - ref["logLik"]) < 1e-3
    assert fit.n_params == ref["df"]
    rel_close(fit.fe_params, ref["fixef"]["estimate"], 1e-4, 1e-4)
    rel_close(fit.fe_bse, ref["fixef"]["se"], 1e-2)
    rel_close(fit.zi_params, ref["zi"]["estimate"], 1e-4, 1e-4)
    rel_close(fit.zi_bse, ref["zi"]["se"], 1e-2)
    if ref.get("disp"):
        rel_close(fit.disp_params, ref["disp"]["estimate"], 1e-4, 1e-4)
        rel_close(fit.disp_bse, ref["disp"]["se"], 1e-2)
    cond = fit.varcorr[fit.varcorr["component"] == "cond"]["sdcor"]
    rel_close(cond, _sds(ref["varcorr_cond"]), 1e-3, 1e-4)
    rel_close(fit.zi_varcorr["sdcor"], _sds(ref["varcorr_zi"]), 1e-3, 1e-4)
    for ours, theirs in ((fit.random_effects, ref["ranef_cond"]),
                         (fit.zi_random_effects, ref["ranef_zi"])):
        assert sorted(ours) == sorted(theirs or {})
        for group, r in (theirs or {}).items():
            want = np.asarray(r["values"], float)[:, 0]
            got = ours[group].loc[r["levels"]].to_numpy()[:, 0]
            rel_close(got, want, 0, 2e-3 * np.max(np.abs(want)))


@pytest.mark.parametrize("case", ["zip_salamanders", "zinb2_spp_salamanders",
                                  "zionly_salamanders", "zip_crossed_sim",
                                  "hurdle_poisson_salamanders", "hurdle_nbinom2_salamanders"])
def test_predictions_match_glmmtmb(case):
    fit = _fit(case)
    ref = reference(f"glmmtmb_zire_{case}")
    data = _data(case)
    for type_, key in (("response", "predict_response"), ("conditional", "predict_conditional"),
                       ("zprob", "predict_zprob"), ("link", "predict_link")):
        rel_close(fit.predict(type=type_), ref[key], 2e-3, 1e-5)
        # new data: the same rows through the newdata path (designs rebuilt, levels looked up)
        rel_close(fit.predict(data.head(40), type=type_), ref[key][:40], 2e-3, 1e-5)
    rel_close(fit.fitted(), ref["predict_response"], 2e-3, 1e-5)


def test_summary_has_zero_inflation_random_effects():
    text = str(_fit("zip_salamanders").summary())
    assert "Zero-inflation model:" in text.split("Conditional model:\n            Estimate")[0]
    assert text.count("Number of obs: 644, groups:  site, 23") == 2
    zionly = str(_fit("zionly_salamanders").summary())
    assert "Zero-inflation model:\n Groups" in zionly


def test_unseen_levels_and_no_random_part():
    fit = _fit("zip_salamanders")
    new = mp.datasets.load("salamanders").head(3).assign(site="nowhere")
    fixed_only = fit.predict(new, type="zprob", include_random=False)
    rel_close(fit.predict(new, type="zprob"), fixed_only, 1e-12)
    gamma = fit.zi_params.to_numpy()
    rel_close(fixed_only, 1 / (1 + np.exp(-(gamma[0] + gamma[1] * 0))), 1e-12)   # mined = yes


def test_dispformula_random_terms_refused_as_glmmtmb():
    ref = reference("glmmtmb_zire_disp_refused")
    assert ref["error"] == "no random effects allowed in dispersion term"
    with pytest.raises(ModelSpecError, match=r"dispformula.*\(1 \| site\).*glmmTMB 1\.1\.5"):
        mp.glmer("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
                 family="nbinom2", dispformula="~ mined + (1 | site)")


def test_refused_paths_raise_clearly():
    fit = _fit("zip_salamanders")
    # simulate / bootstrap / influence / update: tests/families/test_zi_random_refits.py;
    # profiles: tests/inference/test_glmm_profile_zi_disp.py
    with pytest.raises(ModelSpecError, match="nAGQ"):
        mp.glmer("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
                 family="poisson", ziformula="~ mined + (1 | site)", nAGQ=2)
    with pytest.raises(ModelSpecError, match="ziformula.*nowhere|nowhere"):
        mp.glmer("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
                 family="poisson", ziformula="~ mined + (1 | nowhere)")


def test_zi_designs_of_different_widths_share_one_graph():
    """The compiled graphs are keyed by the family (not by the zi / dispersion widths): a model
    with ``~ 1`` and one with ``~ mined`` must both run in one process, whichever compiled
    first (on main before this test, the second failed with a shape error in X_zi @ γ)."""
    sal = mp.datasets.load("salamanders")
    one = mp.glmer("count ~ mined + (1 | site)", sal, family="nbinom2", ziformula="~ 1")
    two = mp.glmer("count ~ mined + (1 | site)", sal, family="nbinom2", ziformula="~ mined")
    ref = reference("glmmtmb_zi_zinb2_salamanders")
    assert abs(two.loglik - ref["logLik"]) < 1e-3
    assert len(one.zi_params) == 1 and np.isfinite(one.loglik) and one.loglik < two.loglik


@pytest.mark.parametrize("family", ["truncated_poisson", "truncated_nbinom2"])
def test_hurdle_separates_into_a_binomial_and_a_truncated_glmm(family):
    """An independent answer for the hurdles: their log-density splits into log π (y = 0) /
    log(1 − π) (y > 0) and the truncated count part, each with its own random effects, so
    g(u) and A = ½∂²g/∂u² are block-diagonal and the Laplace deviance is the sum of a logistic
    GLMM's on 1{y = 0} and a truncated GLMM's on the positive counts (fitted separately here,
    by the ordinary Laplace path)."""
    case = f"hurdle_{'poisson' if family == 'truncated_poisson' else 'nbinom2'}_salamanders"
    fit = _fit(case)
    sal = mp.datasets.load("salamanders")
    zero = mp.glmer("zero ~ mined + (1 | site)", sal.assign(zero=(sal["count"] == 0) * 1.0),
                    family="binomial")
    count = mp.glmer("count ~ mined + (1 | site)", sal[sal["count"] > 0], family=family)
    assert abs(fit.loglik - (zero.loglik + count.loglik)) < 1e-4
    rel_close(fit.zi_params, zero.fe_params, 1e-4, 1e-4)
    rel_close(fit.zi_varcorr["sdcor"], zero.varcorr["sdcor"], 1e-3)
    rel_close(fit.fe_params, count.fe_params, 1e-4, 1e-4)
    rel_close(fit.fe_bse, count.fe_bse, 1e-2)
    rel_close(fit.zi_bse, zero.fe_bse, 1e-2)
