"""inference/prediction.py: prediction SEs against an explicit X V Xᵀ, and interval coverage;
CLMM SEs against a finite-difference delta method and ordinal's predict(clm)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from conftest import reference
from scipy import special

import mixedppl as mp
from mixedppl.inference.prediction import clmm_prediction_table


@pytest.fixture(scope="module")
def sleep_fit():
    return mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))


def test_fixed_part_se_is_x_v_xt(sleep_fit):
    new = pd.DataFrame({"Days": [0.0, 2.5, 9.0], "Subject": ["308", "372", "999"]})
    out = sleep_fit.predict(new, include_random=False, se_fit=True)
    X = np.column_stack([np.ones(3), new["Days"]])
    np.testing.assert_allclose(out["se_fit"], np.sqrt(np.diag(X @ sleep_fit.vcov_beta @ X.T)),
                               rtol=1e-10)
    np.testing.assert_allclose(out["fit"], X @ sleep_fit.beta, rtol=1e-12)


def test_random_part_adds_condvar_or_sigma_for_new_levels(sleep_fit):
    new = pd.DataFrame({"Days": [3.0, 3.0], "Subject": ["308", "999"]})
    fixed = sleep_fit.predict(new, include_random=False, se_fit=True)["se_fit"] ** 2
    full = sleep_fit.predict(new, se_fit=True, interval="prediction")
    z = np.array([1.0, 3.0])
    C = sleep_fit.condvar[0][0]                       # level "308" is the first
    S = sleep_fit.covs[0]
    np.testing.assert_allclose(full["se_fit"] ** 2 - fixed, [z @ C @ z, z @ S @ z], rtol=1e-10)
    half = 1.959963984540054 * np.sqrt(full["se_fit"] ** 2 + sleep_fit.scale)
    np.testing.assert_allclose(full["upper"] - full["fit"], half, rtol=1e-10)


def test_glmm_response_scale_se():
    g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 mp.datasets.load("cbpp"))
    new = mp.datasets.load("cbpp").head(3)
    link = g.predict(new, type="link", se_fit=True, interval="confidence")
    resp = g.predict(new, se_fit=True, interval="confidence")
    p = 1 / (1 + np.exp(-link["fit"]))
    np.testing.assert_allclose(resp["se_fit"], p * (1 - p) * link["se_fit"], rtol=1e-6)
    np.testing.assert_allclose(resp["upper"], 1 / (1 + np.exp(-link["upper"])), rtol=1e-10)
    with pytest.raises(ValueError, match="prediction intervals are for LMMs"):
        g.predict(new, interval="prediction")


def test_prediction_interval_coverage_by_simulation(sleep_fit):
    """New observations y* = Xβ + Zb + ε' at the fitted rows, b and ε drawn from the fitted
    model, the model refitted to y = Xβ + Zb + ε: pooled coverage of the 95% intervals."""
    rng = np.random.default_rng(20240)
    spec = sleep_fit.spec
    t = spec.terms[0]
    mean = spec.X @ sleep_fit.beta
    covered, total = 0, 0
    for _ in range(25):
        b = rng.multivariate_normal(np.zeros(2), sleep_fit.covs[0], size=t.n_levels)
        signal = mean + np.einsum("ij,ij->i", t.z, b[t.codes])
        y = signal + rng.normal(0, sleep_fit.sigma, spec.n)
        y_new = signal + rng.normal(0, sleep_fit.sigma, spec.n)
        out = sleep_fit.refit(y).predict(se_fit=True, interval="prediction")
        covered += int(np.sum((out["lower"] <= y_new) & (y_new <= out["upper"])))
        total += spec.n
    assert 0.93 <= covered / total <= 0.97


@pytest.fixture(scope="module")
def wine_fit():
    return mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))


def _clmm_probs(alpha, beta, X, eta_random, kind):
    """P(Y = j) or P(Y ≤ j) of the logit CLMM at (α, β) (n × K or n × (K − 1))."""
    cum = special.expit(alpha[None, :] - (X @ beta + eta_random)[:, None])
    if kind == "cum.prob":
        return cum
    n = len(X)
    return np.diff(np.hstack([np.zeros((n, 1)), cum, np.ones((n, 1))]), axis=1)


@pytest.mark.parametrize("kind", ["prob", "cum.prob"])
def test_clmm_se_matches_finite_difference_delta(wine_fit, kind):
    """J V Jᵀ with J the central-difference Jacobian over (α, β), plus (∂p/∂η)² z C z for
    the random part (seen judge "1": its condvar; unseen judge: the variance σ²_judge)."""
    wine = mp.datasets.load("wine")
    new = wine.head(4).drop(columns="rating").copy()
    new["judge"] = ["1", "1", "3", "new"]
    fixed = wine_fit.predict(new, type=kind, include_random=False, se_fit=True)
    full = wine_fit.predict(new, type=kind, se_fit=True)
    X = np.column_stack([(new["temp"] == "warm").astype(float),
                         (new["contact"] == "yes").astype(float)])
    alpha, beta = wine_fit.alpha, wine_fit.beta
    b = wine_fit.b[0][:, 0]
    levels = list(wine_fit.spec.terms[0].levels)
    eta_re = np.array([b[levels.index(j)] if j in levels else 0.0 for j in new["judge"]])
    par = np.concatenate([alpha, beta])
    k, h = len(alpha), 1e-6
    J = []
    for i in range(len(par)):
        up, down = par.copy(), par.copy()
        up[i] += h
        down[i] -= h
        J.append((_clmm_probs(up[:k], up[k:], X, eta_re, kind)
                  - _clmm_probs(down[:k], down[k:], X, eta_re, kind)) / (2 * h))
    J = np.stack(J, axis=-1)                                   # n × columns × parameters
    var_fixed = np.einsum("ija,ab,ijb->ij", J, wine_fit.vcov_all, J)
    dp_deta = (_clmm_probs(alpha, beta, X, eta_re + h, kind)
               - _clmm_probs(alpha, beta, X, eta_re - h, kind)) / (2 * h)
    C = np.asarray(wine_fit.condvar[0])[:, 0, 0]
    zcz = np.array([C[levels.index(j)] if j in levels else wine_fit.covs[0][0, 0]
                    for j in new["judge"]])
    np.testing.assert_allclose(full["fit"].to_numpy(),
                               _clmm_probs(alpha, beta, X, eta_re, kind), rtol=1e-10)
    np.testing.assert_allclose(full["se_fit"].to_numpy() ** 2,
                               var_fixed + dp_deta ** 2 * zcz[:, None], rtol=1e-5, atol=1e-12)
    # the unseen judge is predicted at b = 0, as the population level, with σ²_judge added
    np.testing.assert_allclose(full["fit"].to_numpy()[3], fixed["fit"].to_numpy()[3], rtol=1e-12)
    assert (full["se_fit"].to_numpy()[3] > fixed["se_fit"].to_numpy()[3]).all()
    cols = wine_fit.levels if kind == "prob" else wine_fit.threshold_names
    assert list(full["se_fit"].columns) == list(cols)


def test_clmm_linear_predictor_se(wine_fit):
    new = mp.datasets.load("wine").head(3)
    out = wine_fit.predict(new, type="linear.predictor", include_random=False, se_fit=True,
                           interval="confidence")
    X = np.column_stack([(new["temp"] == "warm").astype(float),
                         (new["contact"] == "yes").astype(float)])
    np.testing.assert_allclose(out["se_fit"], np.sqrt(np.diag(X @ wine_fit.vcov_beta @ X.T)),
                               rtol=1e-10)
    np.testing.assert_allclose(out["upper"] - out["fit"], 1.959963984540054 * out["se_fit"],
                               rtol=1e-10)
    with pytest.raises(ValueError, match="confidence intervals only"):
        wine_fit.predict(new, interval="prediction")
    with pytest.raises(ValueError, match="se_fit / interval need type"):
        wine_fit.predict(new, type="class", se_fit=True)


def test_clmm_delta_formula_against_ordinal_clm(wine_fit):
    """ordinal has no predict() for clmm: the delta-method table at clm's (α̂, β̂, vcov) on a
    fixed-effects-only fit of the same formula equals predict(clm, se.fit = TRUE,
    interval = TRUE) (tests/reference/scripts/clm_predict_glmer_deviance.R)."""
    ref = reference("clm_predict_glmer_deviance")["clm"]
    new = pd.DataFrame(ref["newdata"])
    new["judge"] = "1"
    record = dataclasses.replace(wine_fit.record, alpha=np.array(ref["alpha"]),
                                 beta=np.array(ref["beta"]),
                                 vcov_alpha_beta=np.array(ref["vcov"]))
    X = np.column_stack([(new["temp"] == "warm").astype(float),
                         (new["contact"] == "yes").astype(float)])
    out = clmm_prediction_table(record, X @ record.beta, new, include_random=False,
                                type="prob", interval="confidence", level=0.95)
    for ours, theirs in [("fit", "fit"), ("se_fit", "se_fit"), ("lower", "lwr"),
                         ("upper", "upr")]:
        np.testing.assert_allclose(out[ours].to_numpy(), np.array(ref[theirs]), rtol=1e-6,
                                   err_msg=ours)
