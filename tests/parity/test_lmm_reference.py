"""LMM fits against lme4 / lmerTest (tests/reference/*.json, written by R 4.2.2, lme4 1.1-31).

Tolerances are DEVELOPERS.md's, against the ``tight_refit`` block (R's default optimum is loose):
fixed effects max(1e-4·|R|, 1e-4); θ, σ, SDs, correlations 1e-3 relative (1e-4 absolute floor);
logLik 1e-3 absolute; SEs 1e-3 relative; Satterthwaite df 1e-3 relative; BLUPs and conditional SDs
(R's default fit only) within 1e-3·max|R| by level label.
"""


import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from conftest import reference, rel_close
from lmm_cases import CASES, fitted


def _cases():
    return [pytest.param(c, marks=pytest.mark.slow) if c == "lmm_instevel" else c for c in CASES]


@pytest.mark.parametrize("case", _cases())
def test_fixed_effects_and_ses(case):
    fit, tight = fitted(case), reference(case)["tight_refit"]
    assert list(fit.fe_params.index) == reference(case)["fixef"]["names"]
    rel_close(fit.fe_params, tight["fixef"], 1e-4, 1e-4)
    rel_close(fit.fe_bse, tight["se"], 1e-3)


@pytest.mark.parametrize("case", _cases())
def test_variance_parameters(case):
    fit, tight = fitted(case), reference(case)["tight_refit"]
    rel_close(fit.theta, tight["theta"], 1e-3, 1e-4)
    rel_close(fit.sigma, tight["sigma"], 1e-3, 1e-4)
    rel_close(fit.varcorr["sdcor"], tight["varcorr_sdcor"], 1e-3, 1e-4)
    rel_close(fit.loglik, tight["logLik"], 0, 1e-3)
    if fit.reml:
        rel_close(fit.reml_criterion, tight["REMLcrit"], 0, 2e-3)
    assert fit.converged


@pytest.mark.parametrize("case", _cases())
def test_varcorr_layout(case):
    ref_table = reference(case)["varcorr"]["table"]
    table = fitted(case).varcorr
    assert table["grp"].tolist() == ref_table["grp"]
    assert [None if pd.isna(v) else v for v in table["var1"]] == ref_table["var1"]
    assert [None if pd.isna(v) else v for v in table["var2"]] == ref_table["var2"]


@pytest.mark.parametrize("case", _cases())
def test_blups_and_conditional_sds(case):
    fit, ref = fitted(case), reference(case)
    for group, block in ref["ranef"].items():
        ours = fit.random_effects[group]
        ours_se = fit.random_effects_se[group]
        assert list(ours.index) == block["levels"]
        for term, vals in block["terms"].items():
            R = np.asarray(vals["condval"])
            scale = max(np.abs(R).max(), 1e-12)
            assert np.abs(ours[term].to_numpy() - R).max() <= 1e-3 * scale
            Rsd = np.asarray(vals["condsd"])
            assert np.abs(ours_se[term].to_numpy() - Rsd).max() <= 1e-3 * max(Rsd.max(), 1e-12)


@pytest.mark.parametrize("case", _cases())
def test_fitted_residuals_and_criteria(case):
    fit, ref = fitted(case), reference(case)
    scale = max(abs(v) for blk in ref["ranef"].values() for t in blk["terms"].values()
                for v in t["condval"]) or 1.0
    rel_close(fit.fitted()[:10], ref["fitted_first10"], 0, 1e-3 * scale)
    rel_close(fit.residuals()[:10], ref["residuals_first10"], 0, 1e-3 * scale)
    assert fit.nobs == ref["nobs"]
    assert fit.ngroups == ref["ngrps"]
    assert fit.n_params == ref["logLik_df"]
    rel_close(fit.aic, ref["tight_refit"]["logLik"] * -2 + 2 * ref["logLik_df"], 0, 2e-3)


@pytest.mark.parametrize("case", _cases())
def test_satterthwaite_df(case):
    fit, ref = fitted(case), reference(case)
    rel_close(fit.df, ref["fixef"]["df_satterthwaite"], 1e-3)
    rel_close(fit.pvalues, ref["fixef"]["p_satterthwaite"], 1e-2, 1e-12)


def test_dyestuff2_is_singular_with_exact_zero():
    fit = fitted("lmm_dyestuff2")
    assert fit.is_singular
    assert fit.theta[0] == 0.0
    assert fit.varcorr["vcov"].iloc[0] == 0.0
    assert fit.variance_components["Batch"] == 0.0


def test_singular_fit_warns():
    with pytest.warns(mp.SingularFitWarning):
        mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff2"))
