"""The profiled deviance at R's θ equals R's REML criterion / ML deviance (no optimiser involved)."""

import numpy as np
import pytest

import mixedppl as mp
from conftest import reference
from lmm_cases import CASES


@pytest.mark.parametrize("case", list(CASES))
def test_deviance_at_R_theta(case):
    if case == "lmm_instevel":
        pytest.importorskip("scipy")
    data, reml = CASES[case]
    ref = reference(case)
    model = mp.Model(ref["formula"], mp.datasets.load(data))
    assert model.spec.theta_names() == ref["theta"]["names"]
    assert model.spec.fe_names == ref["fixef"]["names"]
    objective = model.objective(reml=reml)
    dev, grad = objective(np.array(ref["theta"]["values"]))
    target = ref["REMLcrit"] if reml else -2 * ref["logLik"]
    assert abs(dev / target - 1) < 1e-8
    assert np.all(np.isfinite(grad))


def test_gradient_matches_finite_differences():
    ref = reference("lmm_sleepstudy_reml")
    objective = mp.Model(ref["formula"], mp.datasets.load("sleepstudy")).objective()
    theta = np.array([0.8, 0.1, 0.3])
    _, grad = objective(theta)
    h = 1e-6
    fd = [(objective.deviance(theta + h * e) - objective.deviance(theta - h * e)) / (2 * h)
          for e in np.eye(3)]
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_one_term_deviance_through_the_dense_layout_is_the_one_term_graph(seed):
    """On the NumPy tier a one-term model's deviance, gradient and variance-parameter pieces run
    on the dense layout with an empty second block (fit/lmm_objective.py); they equal the
    one-term graph's to rounding, for scalar and vector terms, REML and ML, with weights."""
    import pandas as pd
    import pytensor
    import pytensor.tensor as pt
    from mixedppl.core import compile as C
    from mixedppl.fit.lmm_objective import _deviance_fn, _varpar_fn
    from mixedppl.graph.lmm import ProfiledLMM

    r = np.random.default_rng(seed)
    n, G = 40 + 10 * seed, 5 + seed
    g = r.integers(0, G, n)
    x = r.normal(size=n)
    y = 1 + 0.5 * x + r.normal(0, 0.8, G)[g] * (1 + 0.3 * x) + r.normal(size=n)
    df = pd.DataFrame({"y": y, "x": x, "g": g.astype(str), "w": r.uniform(0.5, 2, n)})
    formula = ["y ~ x + (1 | g)", "y ~ x + (1 + x | g)"][seed % 2]
    objective = mp.Model(formula, df, weights="w").objective(reml=bool(seed < 2))
    assert objective.structure.graph_key == ("none", False)
    old_tier = C.config.tier
    C.config.tier = "numpy"
    try:
        dev_fn, var_fn = _deviance_fn(objective.structure), _varpar_fn(objective.structure)
    finally:
        C.config.tier = old_tier
    ref = ProfiledLMM(objective.structure)
    sigma = pt.dscalar("sigma")
    ref_dev = pytensor.function(ref.inputs, [ref.deviance, pt.grad(ref.deviance, ref.theta)],
                                mode=C.numpy_tier_mode())
    theta = r.uniform(0.3, 1.2, objective.spec.n_theta)
    theta[objective.spec.theta_lower() < 0] *= 0.2
    args = (theta, *objective.graph_inputs)
    for got, want in zip(dev_fn(*args), ref_dev(*args)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # the variance-parameter pieces written on the one-term graph (fit/lmm_objective.py)
    nmp = ref.n - ref.reml * ref.p
    dev_vp = (ref.ldL2 + ref.reml * ref.ldRX2 + ref.pwrss / sigma ** 2
              + nmp * pt.log(2 * np.pi * sigma ** 2) - ref.ldW)
    gt, gs = pt.grad(dev_vp, [ref.theta, sigma])
    Lxx = ref.LF[:ref.p, :ref.p]
    ref_var = pytensor.function([*ref.inputs, sigma], [
        pt.concatenate([gt, gs[None]]),
        (sigma ** 2 * pt.linalg.inv(pt.dot(Lxx, Lxx.T))).flatten()], mode=C.numpy_tier_mode())
    for got, want in zip(var_fn(*args, np.array(0.9)), ref_var(*args, np.array(0.9))):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
