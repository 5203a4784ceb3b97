"""Frozen fit records (mixedppl.fit.records): fit_lmm returns an LMMFit, results wrap it, and the
inference / diagnostics functions take the record itself (sleepstudy against lme4 / lmerTest,
tests/reference/lmm_sleepstudy_reml.json and lmm_sleepstudy_ml.json)."""

import dataclasses
import pickle

import numpy as np
import pytest

import mixedppl as mp
from conftest import reference, rel_close
from mixedppl.diagnostics.influence import influence_frame
from mixedppl.diagnostics.leverage import hat_diagonal
from mixedppl.diagnostics.variance import icc, r_squared
from mixedppl.fit.glmm_fit import fit_glmm
from mixedppl.fit.lmm_fit import fit_lmm, refit_lmm
from mixedppl.fit.records import LaplaceFit, LMMFit, term_covariances
from mixedppl.glmm_api import glmm_model
from mixedppl.inference.ftests import anova_table
from mixedppl.inference.kenward_roger import kr_adjusted, kr_coefficient_ddf
from mixedppl.inference.profile import profile_confint
from mixedppl.inference.satterthwaite import satterthwaite_df
from mixedppl.inference.simulate import simulate_responses
from mixedppl.results.lmm import LMMResult

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep():
    return mp.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def record(sleep) -> LMMFit:
    return fit_lmm(mp.Model(FORMULA, sleep).spec)


def test_fit_lmm_returns_a_frozen_record(record):
    assert type(record) is LMMFit
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.sigma = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.theta = np.zeros(3)


def test_record_computes_sigma_vcov_and_covs_once(record):
    est, spec = record.estimates, record.spec
    scale = float(est["pwrss"]) / (spec.n - spec.p)           # REML: n − p
    assert record.sigma == pytest.approx(np.sqrt(scale), rel=1e-14)
    Linv = np.linalg.inv(np.asarray(est["Lxx"]))
    np.testing.assert_allclose(record.vcov_beta, scale * Linv.T @ Linv, rtol=1e-12)
    T = spec.terms[0].T(record.theta)
    np.testing.assert_allclose(record.covs[0], scale * T @ T.T, rtol=1e-12)
    np.testing.assert_allclose(record.condvar[0], scale * np.asarray(est["condvar"][0]),
                               rtol=1e-12)
    np.testing.assert_allclose(term_covariances(spec.terms, record.theta, 1.0)[0], T @ T.T)


def test_result_from_record_matches_lme4(record):
    fit, ref = LMMResult(record), reference("lmm_sleepstudy_reml")
    tight = ref["tight_refit"]
    assert fit.record is record
    assert fit.sigma == record.sigma and fit.vcov_beta is record.vcov_beta
    rel_close(fit.fe_params, tight["fixef"], 1e-4, 1e-4)
    rel_close(fit.fe_bse, tight["se"], 1e-3)
    rel_close(fit.theta, tight["theta"], 1e-3, 1e-4)
    rel_close(fit.sigma, tight["sigma"], 1e-3, 1e-4)
    rel_close(fit.varcorr["sdcor"], tight["varcorr_sdcor"], 1e-3, 1e-4)
    rel_close(fit.loglik, tight["logLik"], 0, 1e-3)
    rel_close(fit.reml_criterion, tight["REMLcrit"], 0, 2e-3)
    rel_close(fit.df, ref["fixef"]["df_satterthwaite"], 1e-3)
    # the public front door gives the same numbers
    again = mp.lmer(FORMULA, mp.datasets.load("sleepstudy"))
    np.testing.assert_allclose(again.theta, fit.theta, rtol=1e-10)
    np.testing.assert_allclose(again.vcov_beta, fit.vcov_beta, rtol=1e-10)


def test_inference_functions_take_the_record(record):
    fit, ref = LMMResult(record), reference("lmm_sleepstudy_reml")
    rel_close(satterthwaite_df(record), ref["fixef"]["df_satterthwaite"], 1e-3)
    table = anova_table(record)
    rel_close(table["F value"], ref["anova_type3_satterthwaite"]["F value"], 1e-3)
    kr = anova_table(record, "Kenward-Roger")
    rel_close(kr["DenDF"], ref["anova_type3_kenward_roger"]["DenDF"], 1e-3)
    adj = kr_adjusted(record)
    np.testing.assert_allclose(adj.phi_adj, fit.vcov_beta_kr, rtol=1e-12)
    np.testing.assert_allclose(kr_coefficient_ddf(adj), fit.df_kr, rtol=1e-12)
    np.testing.assert_array_equal(simulate_responses(record, 3, seed=2), fit.simulate(3, seed=2))


def test_diagnostics_functions_take_the_record(record):
    fit = LMMResult(record)
    np.testing.assert_allclose(hat_diagonal(record), fit.leverage(), rtol=1e-12)
    np.testing.assert_allclose(icc(record.spec, record.beta, record.covs, record.scale),
                               fit.icc(), rtol=1e-12)
    np.testing.assert_allclose(r_squared(record.spec, record.beta, record.covs, record.scale),
                               fit.r_squared(), rtol=1e-12)
    approx = influence_frame(record, level="Subject", method="approx")
    np.testing.assert_allclose(approx.to_numpy(),
                               fit.influence(level="Subject", method="approx").to_numpy(),
                               rtol=1e-12)
    assert approx["cooks_d"].idxmax() == "309"


def test_profile_confint_takes_the_record():
    fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff"))
    ci = profile_confint(fit.record)
    np.testing.assert_allclose(ci.to_numpy(), fit.confint(method="profile").to_numpy())
    rel_close(ci.loc["sd_(Intercept)|Batch"], [12.2, 84.06], 0, 5e-3)


def test_refit_lmm_ml_and_new_response(record):
    ml = refit_lmm(record, reml=False)
    assert type(ml) is LMMFit and not ml.reml
    assert ml.objective.structure == record.objective.structure
    rel_close(ml.loglik, reference("lmm_sleepstudy_ml")["tight_refit"]["logLik"], 0, 1e-3)
    doubled = refit_lmm(record, y=record.spec.y * 2)
    np.testing.assert_allclose(doubled.beta, 2 * record.beta, rtol=1e-6)
    assert doubled.sigma == pytest.approx(2 * record.sigma, rel=1e-5)
    with pytest.raises(mp.ModelSpecError, match="one-dimensional"):
        refit_lmm(record, y=np.ones((record.spec.n, 2)))


def test_record_and_result_pickle(record):
    back = pickle.loads(pickle.dumps(LMMResult(record)))
    assert isinstance(back.record, LMMFit)
    np.testing.assert_array_equal(back.theta, record.theta)
    assert back.objective.deviance(record.theta) == pytest.approx(record.objective_value,
                                                                  rel=1e-12)


def test_laplace_fit_holds_what_fit_glmm_computes():
    cbpp = mp.datasets.load("cbpp")
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    spec, family, link, y, n_trials = glmm_model(formula, cbpp, "binomial", None, None, None,
                                                 None)
    pieces = fit_glmm(spec, family, link, y, n_trials, {}, 1)
    rec = LaplaceFit(spec=spec, family=family, link=link, counts=y, trials=n_trials, **pieces)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.beta = np.zeros(4)
    g = mp.glmer(formula, cbpp)
    assert rec.loglik == pytest.approx(g.loglik, rel=1e-10)
    np.testing.assert_allclose(rec.covs[0], g.variance_components["herd"].to_numpy(),
                               rtol=1e-10)
