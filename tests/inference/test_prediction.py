"""inference/prediction.py: prediction SEs against an explicit X V Xᵀ, and interval coverage."""

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp


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
