"""The NumPy evaluation of the Cox frailty quantities (``graph/cox_numpy.py``) against the
PyTensor graphs that define them (``graph/cox.py``), output by output, at random points: ties
(Efron, Breslow), weights, strata, sparse levels with a crossed dense term, random slopes.
The θ-gradient of −ℓ_I (derived by hand there) is also checked against central differences of
−ℓ_I itself; with sparse levels its partial derivatives come from the reverse pass of
``graph/cox_adjoint.py``, checked against the graph's automatic differentiation and against
central differences of G at fixed x."""

from __future__ import annotations

import numpy as np
import pytest

from mixedppl.fit.cox import CoxData, CoxmeObjective, fit_coxph
from mixedppl.graph.cox import coxph_functions, cox_functions
from mixedppl.graph.cox_adjoint import outer_gradient
from mixedppl.graph.cox_numpy import CoxNumpy

from test_cox_graph import random_data, spec_of

CASES = {
    "one term": ("Surv(time, status) ~ x + z + (1 | g)", None),
    "strata": ("Surv(time, status) ~ x + z + strata(s) + (1 | g)", None),
    "sparse": ("Surv(time, status) ~ x + z + (1 | g)", (5, 0.5)),
    "sparse strata": ("Surv(time, status) ~ x + z + strata(s) + (1 | g)", (5, 0.5)),
    "crossed sparse": ("Surv(time, status) ~ x + z + (1 | g) + (1 | h)", (5, 0.5)),
    "crossed sparse strata": ("Surv(time, status) ~ x + z + strata(s) + (1 | g) + (1 | h)",
                              (5, 0.5)),
    "slopes": ("Surv(time, status) ~ x + z + (1 + x | g)", None),
    "slopes and intercept": ("Surv(time, status) ~ z + (1 + x | g) + (1 | h)", None),
}


def setup(case, seed, ties):
    formula, sparse = CASES[case]
    rng = np.random.default_rng(100 + seed)
    df = random_data(seed, n=60, groups=8).assign(h=rng.integers(0, 3, 60).astype(str))
    spec = spec_of(df, ties, formula, weights="w")
    data = CoxData.from_spec(spec, sparse=sparse)
    n_theta = len(spec.theta_lower())
    theta = rng.uniform(0.3, 1.0, n_theta)
    theta[~np.isfinite(spec.theta_lower())] = rng.normal(scale=0.3, size=int(
        np.sum(~np.isfinite(spec.theta_lower()))))
    u, beta = rng.normal(size=data.q), rng.normal(scale=0.5, size=spec.p)
    return spec, data, theta, u, beta, rng


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("case", list(CASES))
def test_blocks_and_hessian_products_equal_the_graphs(case, seed, ties):
    spec, data, theta, u, beta, rng = setup(case, seed, ties)
    obj = CoxmeObjective(data, beta)
    graph = cox_functions("newton")(theta, u, beta, *data.args())
    mine = obj.numpy.blocks(theta, u, beta)
    for a, b in zip(mine, graph):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-10, atol=1e-10)
    v = rng.normal(size=data.q + spec.p)
    for a, b in zip(obj.numpy.hvp(theta, u, beta, v),
                    cox_functions("hvp")(theta, u, beta, *data.args(), v)):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("seed", range(3))
def test_coxph_equals_the_graph(seed, ties):
    spec, data, *_ = setup("strata", seed, ties)
    beta = np.random.default_rng(seed).normal(size=spec.p)
    obj = CoxmeObjective(data, beta)
    graph = coxph_functions()(beta, data.X, data.offset, data.weights,
                              *data.risk_sets.inputs())
    for a, b in zip(obj.numpy.coxph(beta), graph):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("case", ["one term", "strata", "slopes", "slopes and intercept"])
def test_theta_gradient_equals_the_graph_and_differences(case, seed, ties):
    """At the mode: the hand-derived dG/dθ equals the graph's implicit gradient and central
    differences of −ℓ_I (each difference with the inner mode re-solved)."""
    spec, data, theta, *_ = setup(case, seed, ties)
    obj = CoxmeObjective(data, fit_coxph(data)["beta"])
    assert obj.numpy.dense_gradient
    e = obj.evaluate(theta)
    graph = obj.graph_gradient(theta, e)
    np.testing.assert_allclose(e["grad"], graph, rtol=1e-7, atol=1e-9)
    h = 1e-5
    for k in range(len(theta)):
        step = np.eye(len(theta))[k] * h
        num = (obj.value(theta + step)["f"] - obj.value(theta - step)["f"]) / (2 * h)
        assert e["grad"][k] == pytest.approx(num, rel=1e-5, abs=1e-6)
    u, beta = obj.split(e["x"])
    half = cox_functions("outer")(theta, u, beta, *data.args())[4]
    assert e["half_logdet"] == pytest.approx(float(half), rel=1e-12)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("case", ["one term", "strata", "crossed sparse strata", "slopes"])
def test_dense_risk_matrix_equals_the_cumulative_sums(case, seed, ties):
    """Small data take the risk-set sums as products with the dense S × n matrix (m_si); the
    cumulative-sum route (large data) gives the same outputs to rounding."""
    spec, data, theta, u, beta, rng = setup(case, seed, ties)
    n_theta = len(theta)
    dense = CoxNumpy(data.X, data.offset, data.weights, data.re_value, data.risk_sets,
                     data.frailty, n_theta, dense_risk=True)
    sums = CoxNumpy(data.X, data.offset, data.weights, data.re_value, data.risk_sets,
                    data.frailty, n_theta, dense_risk=False)
    assert dense.dense_risk and not sums.dense_risk
    v = rng.normal(size=data.q + spec.p)
    pairs = [(dense.blocks(theta, u, beta), sums.blocks(theta, u, beta)),
             (dense.hvp(theta, u, beta, v), sums.hvp(theta, u, beta, v)),
             (dense.coxph(beta), sums.coxph(beta))]
    if dense.dense_gradient:
        obj = CoxmeObjective(data, fit_coxph(data)["beta"])
        e = obj.evaluate(theta)
        u_hat, beta_hat = obj.split(e["x"])
        H = np.asarray(e["hess"].B)
        pairs.append((dense.theta_gradient(theta, u_hat, beta_hat, H, e["grad_ppl"]),
                      sums.theta_gradient(theta, u_hat, beta_hat, H, e["grad_ppl"])))
    for mine, other in pairs:
        for a, b in zip(mine, other):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("case", ["one term", "crossed sparse strata", "slopes and intercept"])
def test_grad_theta_equals_differences_of_the_ppl_gradient(case, seed, ties):
    """∂(∇ₓPPL)/∂θ at fixed x (the inner start's predictor) against central differences of
    the blocks' ∇PPL in θ."""
    spec, data, theta, u, beta, rng = setup(case, seed, ties)
    ev = data.numpy_evaluator()
    got = ev.grad_theta(theta, u, beta)
    h = 1e-6
    for j in range(len(theta)):
        step = np.eye(len(theta))[j] * h
        num = (ev.blocks(theta + step, u, beta)[1] - ev.blocks(theta - step, u, beta)[1]) / (2 * h)
        np.testing.assert_allclose(got[:, j], num, rtol=1e-6, atol=1e-6)


def test_inner_start_predicts_the_mode():
    """The predicted start x̂(θ₀) + (dx̂/dθ)Δθ is nearer the mode at θ₀ + Δθ than x̂(θ₀), by
    about Δθ² against Δθ; the mode found from it is the one found from scratch."""
    spec, data, theta, *_ = setup("one term", 0, "efron")
    obj = CoxmeObjective(data, fit_coxph(data)["beta"])
    x0 = obj.mode(theta)["x"]
    target = theta + 0.01
    start = obj._start(target)
    fresh = CoxmeObjective(data, fit_coxph(data)["beta"]).mode(target)["x"]
    assert np.linalg.norm(start - fresh) < 0.05 * np.linalg.norm(x0 - fresh)
    np.testing.assert_allclose(obj.mode(target)["x"], fresh, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("case", list(CASES))
def test_reverse_pass_equals_the_graph_and_differences(case, seed, ties):
    """outer_gradient (NumPy reverse pass) = cox_functions("outer") at a random point, output
    by output (1e-10), and ∂G/∂(u, β, θ) = central differences of its G at fixed x."""
    spec, data, theta, u, beta, rng = setup(case, seed, ties)
    ev = data.numpy_evaluator()
    mine = outer_gradient(ev, theta, u, beta)
    graph = cox_functions("outer")(theta, u, beta, *data.args())
    for a, b in zip(mine, graph):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-10, atol=1e-10)
    q, h = data.q, 1e-6
    point = np.concatenate([u, beta, theta])

    def G(z):
        return outer_gradient(ev, z[q + spec.p:], z[:q], z[q:q + spec.p])[0]

    grad = np.concatenate([mine[1], mine[2]])
    for k in rng.choice(len(point), size=min(8, len(point)), replace=False):
        step = np.eye(len(point))[k] * h
        num = (G(point + step) - G(point - step)) / (2 * h)
        assert grad[k] == pytest.approx(num, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("case", ["sparse", "sparse strata", "crossed sparse"])
def test_sparse_theta_gradient_equals_the_graph_and_differences(case, seed, ties):
    """With sparse levels, the objective's gradient (reverse pass + conjugate gradients)
    equals the graph route's and central differences of −ℓ_I (mode re-solved)."""
    spec, data, theta, *_ = setup(case, seed, ties)
    obj = CoxmeObjective(data, fit_coxph(data)["beta"])
    assert not obj.numpy.dense_gradient and len(data.frailty.sparse_cols)
    e = obj.evaluate(theta)
    np.testing.assert_allclose(e["grad"], obj.graph_gradient(theta, e), rtol=1e-8, atol=1e-9)
    h = 1e-5
    for k in range(len(theta)):
        step = np.eye(len(theta))[k] * h
        num = (obj.value(theta + step)["f"] - obj.value(theta - step)["f"]) / (2 * h)
        assert e["grad"][k] == pytest.approx(num, rel=1e-5, abs=1e-6)
