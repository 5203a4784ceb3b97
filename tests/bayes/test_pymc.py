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


def _long_data():
    rng = np.random.default_rng(5)
    import pandas as pd
    d = pd.DataFrame({"g": np.repeat([f"s{i}" for i in range(8)], 4), "t": np.tile([1, 2, 3, 4], 8)})
    d["times"] = pd.Categorical(d["t"].astype(str))
    d["y"] = rng.normal(size=len(d))
    return d


@pytest.mark.parametrize("name, w", [("ar1", [0.6]), ("cs", [-0.2]), ("toep", [0.5, -0.3, 0.2]),
                                     ("diag", [])])
def test_structured_term_correlation_is_the_fits(name, w):
    """The PyMC model's correlation matrix of a structured term, at its correlation parameters
    w, is the fitting path's R(u) (u = w's transform, :mod:`mixedppl.spec.covstruct`)."""
    import pytensor
    from mixedppl.spec.covstruct import Covariance

    m = mp.Model(f"y ~ {name}(times + 0 | g)", _long_data()).to_pymc()
    corr = m["corr_g"]
    if w:
        corr = pytensor.clone_replace(corr, {m[f"{name}_g"]: np.array(w)})
    w = np.array(w)
    if name == "cs":
        a = 1 / 3
        u = np.log((w + a) / (1 + a) / (1 - (w + a) / (1 + a)))
    else:
        u = w / np.sqrt(1 - w ** 2)
    np.testing.assert_allclose(corr.eval(), Covariance(name, 4).correlation(u).real, atol=1e-12)
    if name == "ar1":    # (compiling the whole logp takes ~30 s here; one structure suffices)
        assert np.isfinite(m.compile_logp()(m.initial_point()))
