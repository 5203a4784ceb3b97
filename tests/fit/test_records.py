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
from mixedppl.fit.laplace import fit_laplace
from mixedppl.fit.laplace_nagq0 import fit_nagq0
from mixedppl.fit.lmm_fit import fit_lmm, refit_lmm
from mixedppl.fit.records import LaplaceFit, LMMFit, term_covariances
from mixedppl.inference.ftests import anova_table
from mixedppl.inference.kenward_roger import kr_adjusted, kr_coefficient_ddf
from mixedppl.inference.profile import profile_confint
from mixedppl.inference.satterthwaite import satterthwaite_df
from mixedppl.inference.simulate import simulate_responses
from mixedppl.inference.glmm_profile import glmm_profile_confint
from mixedppl.inference.lrt import lrt
from mixedppl.results.clmm import CLMMResult
from mixedppl.results.glmm import GLMMResult
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


CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp_spec():
    return mp.Model(CBPP, mp.datasets.load("cbpp"), family="binomial").spec


@pytest.fixture(scope="module")
def laplace_record(cbpp_spec):
    return fit_laplace(cbpp_spec)


def test_fit_laplace_returns_a_frozen_record(laplace_record, cbpp_spec):
    rec = laplace_record
    assert isinstance(rec, LaplaceFit)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.beta = np.zeros(4)
    assert rec.spec is cbpp_spec and rec.family is cbpp_spec.family and rec.nAGQ == 1
    y, n_trials = cbpp_spec.counts()
    np.testing.assert_array_equal(rec.counts, y)
    np.testing.assert_array_equal(rec.trials, n_trials)
    assert rec.alpha.size == 0 and rec.vcov_alpha_beta is None
    assert rec.hessian.shape == (5, 5) and rec.vcov_beta_phi.shape == (4, 4)
    np.testing.assert_array_equal(rec.vcov_beta, rec.vcov_beta_phi)


def test_glmm_result_of_the_record_matches_lme4(laplace_record):
    """GLMMResult(record) is what mp.glmer returns, with lme4's numbers (glmm_cbpp_laplace)."""
    tight = reference("glmm_cbpp_laplace")["tight_refit"]
    g = GLMMResult(laplace_record)
    assert g.record is laplace_record
    assert abs(g.loglik - tight["logLik"]) <= 1e-3
    rel_close(g.theta, tight["theta"], 1e-3, 1e-4)
    rel_close(g.fe_bse, tight["se"], 1e-2)
    front = mp.glmer(CBPP, mp.datasets.load("cbpp"))
    assert isinstance(front.record, LaplaceFit)
    assert g.loglik == pytest.approx(front.loglik, rel=1e-12)
    np.testing.assert_allclose(g.fe_bse, front.fe_bse, rtol=1e-10)
    np.testing.assert_allclose(laplace_record.covs[0],
                               front.variance_components["herd"].to_numpy(), rtol=1e-10)
    back = pickle.loads(pickle.dumps(g))
    assert isinstance(back.record, LaplaceFit) and back.loglik == g.loglik


def test_inference_takes_the_laplace_record(laplace_record):
    ci = glmm_profile_confint(laplace_record)
    assert ci.round(3).loc["sd_(Intercept)|herd"].tolist() == [0.346, 1.1]
    t = lrt(laplace_record, drop="period")
    assert t.df == 3 and isinstance(t.reduced, LaplaceFit)
    assert t.statistic == pytest.approx(lrt(GLMMResult(laplace_record), "period").statistic,
                                        rel=1e-12)


def test_nagq0_record(cbpp_spec):
    """lme4 (glmm_nagq0.json, cbpp): nAGQ = 0's deviance 184.1086 and no Hessian."""
    rec = fit_nagq0(cbpp_spec)
    assert isinstance(rec, LaplaceFit) and rec.nAGQ == 0 and rec.hessian is None
    assert rec.deviance_laplace == pytest.approx(184.1086, abs=1e-4)
    assert GLMMResult(rec).loglik == pytest.approx(-92.0543, abs=1e-4)


def test_clmm_record_carries_thresholds_and_their_covariance():
    """ordinal (clmm_wine): the record holds α(φ) and vcov of (α, β) = J V Jᵀ; its β block is
    the (β, φ) covariance's."""
    spec = mp.Model("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"),
                    family="cumulative").spec
    rec = fit_laplace(spec)
    ref = reference("clmm_wine")["tight_refit"]
    np.testing.assert_allclose(rec.alpha, ref["alpha"], atol=1e-4)
    k = len(rec.alpha)
    assert rec.vcov_alpha_beta.shape == (k + spec.p, k + spec.p)
    np.testing.assert_allclose(rec.vcov_alpha_beta[k:, k:], rec.vcov_beta, rtol=1e-12)
    r = CLMMResult(rec)
    assert r.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    np.testing.assert_allclose(r.thresholds_bse, np.sqrt(np.diag(rec.vcov_alpha_beta))[:k])
