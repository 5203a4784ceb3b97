"""The same ModelSpec as a PyMC model: it builds, has lme4's labels as coords, and its joint density
integrates (exactly, Laplace being exact for an LMM) to the profiled ML deviance of the fit."""

import numpy as np
import pytest

import mixedppl as mp


def test_to_pymc_builds_with_named_coords():
    m = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    pm_model = m.to_pymc()
    assert list(pm_model.coords["fixed"]) == ["(Intercept)", "Days"]
    assert list(pm_model.coords["Subject__term"]) == ["(Intercept)", "Days"]
    assert len(pm_model.coords["Subject__level"]) == 18
    logp = pm_model.compile_logp()
    assert np.isfinite(logp(pm_model.initial_point()))


@pytest.mark.parametrize("formula,data", [
    ("Yield ~ 1 + (1 | Batch)", "dyestuff"),
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
])
def test_joint_density_integrates_to_ml_deviance(formula, data):
    m = mp.Model(formula, mp.datasets.load(data))
    fit = m.fit(reml=False)
    pm_model = m.to_pymc()
    sigma = fit.sigma
    point = {"beta": fit.beta, "sigma_log__": np.log(sigma)}
    q = 0
    for t, th, b in zip(fit.spec.terms, fit.theta, fit.b):
        name = t.group
        sd = sigma * th
        point[f"sd_{name}_log__"] = np.log(sd)
        point[f"z_{name}"] = b / sd
        q += t.q
    rvs = [pm_model["y"]] + [pm_model[f"z_{t.group}"] for t in fit.spec.terms]
    loglik = pm_model.compile_logp(vars=rvs, jacobian=False)(point)
    log_p_y_u = loglik - q * np.log(sigma)
    ml_dev = -2 * (log_p_y_u + 0.5 * q * np.log(2 * np.pi * sigma**2)
                   - 0.5 * float(fit.estimates["ldL2"]))
    assert ml_dev == pytest.approx(fit.objective_value, rel=1e-9)
