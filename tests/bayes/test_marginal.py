"""The marginalised LMM: log p(y | β, θ, σ) on the REML graph against a dense multivariate normal,
and the conditional draws of b against the dense closed form (random data, several structures)."""

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

import mixedppl as mp
from mixedppl.bayes.conditional import ConditionalRE, pointwise_loglik
from mixedppl.bayes.marginal import marginal_term
from mixedppl.core.compile import numpy_tier_mode
from mixedppl.graph.crossprod import crossproducts, z_sparse
from mixedppl.graph.lmm_inputs import lmm_structure
from mixedppl.spec.reterm import relative_factors

# formula, r_mode of its graph (one term; crossed terms: dense A_R1; nested with many groups:
# sparse A_R1; a vector term after the first: Λ_R not diagonal)
CASES = [("y ~ x + (1 | g)", "none"), ("y ~ x + (x | g)", "none"),
         ("y ~ x + (1 | g) + (1 | h)", "dense"), ("y ~ x + (x | g) + (x | h)", "dense"),
         ("y ~ x + (1 | g) + (1 | g:k)", "sparse"), ("y ~ 0 + x + (1 | g)", "none"),
         ("y ~ x + (x || g)", "sparse")]
#: the formulas whose terms share one grouping factor (the closed form of one_factor_loglik)
ONE_FACTOR = ["y ~ x + (1 | g)", "y ~ x + (x | g)", "y ~ 0 + x + (1 | g)", "y ~ x + (x || g)"]


def _data(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 72
    g = rng.integers(0, 8, n)
    return pd.DataFrame({"y": rng.normal(size=n) + g * 0.3, "x": rng.normal(size=n),
                         "g": [f"g{v}" for v in g], "h": [f"h{v}" for v in rng.integers(0, 4, n)],
                         "k": [f"k{v}" for v in rng.integers(0, 3, n)],
                         "w": rng.uniform(0.5, 2.0, n), "o": rng.normal(0, 0.1, n)})


def _spec(formula: str, seed: int, weighted: bool):
    data = _data(seed)
    if weighted:
        return mp.Model(formula, data, weights=data["w"].to_numpy(),
                        offset=data["o"].to_numpy()).spec
    return mp.Model(formula, data).spec


def _params(spec, rng):
    n_theta = sum(t.n_cols * (t.n_cols + 1) // 2 for t in spec.terms)
    theta = rng.uniform(0.2, 1.5, n_theta)
    k = 0
    for t in spec.terms:  # off-diagonal entries of T may be negative
        for i, j in [(i, j) for j in range(t.n_cols) for i in range(j, t.n_cols)]:
            if i != j:
                theta[k] = rng.normal(0, 0.5)
            k += 1
    return theta, rng.normal(0, 1, spec.p), float(rng.uniform(0.5, 2.0))


def _dense(spec, theta):
    """Dense Z (n × q) and Λ (q × q) from θ."""
    Z = z_sparse(spec.terms, slice(None), spec.n).toarray()
    blocks = [np.kron(np.eye(t.n_levels), T) for t, T in
              zip(spec.terms, relative_factors(spec.terms, theta))]
    from scipy.linalg import block_diag
    return Z, block_diag(*blocks)


@pytest.mark.parametrize("formula,mode", CASES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_marginal_logdensity_is_the_dense_normal(formula, mode, seed):
    spec = _spec(formula, seed, weighted=seed == 2)
    assert lmm_structure(spec, crossproducts(spec)).r_mode == mode
    theta, beta, sigma = _params(spec, np.random.default_rng(seed))
    ll = marginal_term(spec, theta, beta, sigma)
    ours = float(pytensor.function([], ll, mode=numpy_tier_mode())())
    Z, Lam = _dense(spec, theta)
    V = sigma ** 2 * (np.diag(1 / spec.weights) + Z @ Lam @ Lam.T @ Z.T)
    ref = stats.multivariate_normal(spec.X @ beta + spec.offset, V).logpdf(spec.y)
    assert ours == pytest.approx(ref, rel=1e-10, abs=1e-8)


@pytest.mark.parametrize("formula", ["y ~ x + (x | g)", "y ~ x + (x | g) + (x | h)",
                                     "y ~ x + (1 | g) + (1 | g:k)", "y ~ x + (x || g)"])
def test_marginal_gradient_matches_finite_differences(formula):
    spec = _spec(formula, 4, weighted=True)
    theta0, beta0, sigma0 = _params(spec, np.random.default_rng(4))
    th, be, si = pt.dvector("th"), pt.dvector("be"), pt.dscalar("si")
    ll = marginal_term(spec, th, be, si)
    f = pytensor.function([th, be, si], [ll, *pytensor.grad(ll, [th, be, si])],
                          mode=numpy_tier_mode())
    x0 = np.concatenate([theta0, beta0, [sigma0]])
    nt, p = len(theta0), len(beta0)

    def val(x):
        return float(f(x[:nt], x[nt:nt + p], x[-1])[0])
    _, gt, gb, gs = f(theta0, beta0, sigma0)
    grad = np.concatenate([gt, gb, [gs]])
    h = 1e-6
    fd = np.array([(val(x0 + h * e) - val(x0 - h * e)) / (2 * h) for e in np.eye(len(x0))])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("formula,mode", CASES)
@pytest.mark.parametrize("seed", [5, 6])
def test_conditional_draws_have_the_dense_mean_and_covariance(formula, mode, seed):
    """b | y, β, θ, σ ~ N(Λ M⁻¹ h, σ² Λ M⁻¹ Λᵀ): the draw is affine in ε, so ε = 0 gives the
    mean and ε = e_j the j-th column of a square root of the covariance."""
    spec = _spec(formula, seed, weighted=seed == 6)
    theta, beta, sigma = _params(spec, np.random.default_rng(seed))
    cre = ConditionalRE(spec)
    q = cre.q
    eps = np.vstack([np.zeros(q), np.eye(q)])
    S = len(eps)
    draws = cre.draw(np.tile(beta, (S, 1)), np.tile(theta, (S, 1)), np.full(S, sigma), eps)
    flat = np.concatenate([d.reshape(S, -1) for d in draws], axis=1)
    Z, Lam = _dense(spec, theta)
    W = np.diag(spec.weights)
    M = Lam.T @ Z.T @ W @ Z @ Lam + np.eye(q)
    r = spec.y - spec.offset - spec.X @ beta
    mean = Lam @ np.linalg.solve(M, Lam.T @ Z.T @ W @ r)
    cov = sigma ** 2 * Lam @ np.linalg.solve(M, Lam.T)
    np.testing.assert_allclose(flat[0], mean, rtol=1e-9, atol=1e-9 * np.abs(mean).max())
    A = (flat[1:] - flat[0]).T
    np.testing.assert_allclose(A @ A.T, cov, rtol=1e-8, atol=1e-10 * np.abs(cov).max())


def test_pointwise_loglik_sums_to_the_conditional_density():
    spec = _spec("y ~ x + (x | g)", 7, weighted=True)
    rng = np.random.default_rng(7)
    beta, b, sigma = rng.normal(size=(3, 2)), rng.normal(size=(3, 8, 2)), rng.uniform(1, 2, 3)
    ll = pointwise_loglik(spec, beta, [b], sigma)
    Z = z_sparse(spec.terms, slice(None), spec.n).toarray()
    for s in range(3):
        eta = spec.X @ beta[s] + Z @ b[s].ravel() + spec.offset
        ref = stats.norm(eta, sigma[s] / np.sqrt(spec.weights)).logpdf(spec.y)
        np.testing.assert_allclose(ll[s], ref, rtol=1e-12)


def _value_and_grad(spec, theta, beta, sigma):
    th, be, si = pt.dvector("th"), pt.dvector("be"), pt.dscalar("si")
    ll = marginal_term(spec, th, be, si)
    f = pytensor.function([th, be, si], [ll, *pytensor.grad(ll, [th, be, si])],
                          mode=numpy_tier_mode())
    return [np.asarray(v) for v in f(theta, beta, sigma)]


@pytest.mark.parametrize("formula", ONE_FACTOR)
@pytest.mark.parametrize("seed", [8, 9])
def test_one_factor_closed_form_is_the_blocked_reml_graph(formula, seed, monkeypatch):
    """The elementwise closed form (one grouping factor) and the profiled REML graph's blocked
    Cholesky give the same log-density and gradient (θ, β, σ), weighted or not."""
    import mixedppl.bayes.marginal as marginal

    spec = _spec(formula, seed, weighted=seed == 9)
    assert marginal.one_factor_blocks(spec) is not None
    theta, beta, sigma = _params(spec, np.random.default_rng(seed))
    fast = _value_and_grad(spec, theta, beta, sigma)
    monkeypatch.setattr(marginal, "one_factor_blocks", lambda spec: None)
    slow = _value_and_grad(spec, theta, beta, sigma)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_crossed_and_nested_terms_take_the_blocked_graph():
    from mixedppl.graph.lmm_marginal import one_factor_blocks

    for formula in ["y ~ x + (1 | g) + (1 | h)", "y ~ x + (1 | g) + (1 | g:k)"]:
        assert one_factor_blocks(_spec(formula, 1, weighted=False)) is None


def _long_data(seed):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"g": np.repeat([f"s{i}" for i in range(6)], 4),
                      "t": np.tile([1, 2, 3, 4], 6)})
    d["times"] = pd.Categorical(d["t"].astype(str))
    d["x"] = rng.normal(size=len(d))
    d["y"] = rng.normal(size=len(d)) + d["t"] * 0.2
    return d


@pytest.mark.parametrize("formula,data", [
    ("y ~ x + (x | g)", "wide"), ("y ~ x + (x || g)", "wide"), ("y ~ 1 + (1 | g)", "wide"),
    ("y ~ x + cs(times + 0 | g)", "long"), ("y ~ x + ar1(times + 0 | g)", "long")])
@pytest.mark.parametrize("seed", [10, 11])
def test_marginal_pymc_model_is_the_dense_normal(formula, data, seed):
    """The marginalised PyMC model's potential, at a random point of its unconstrained space, is
    the dense N(Xβ + o, σ²(W⁻¹ + Z Σ Zᵀ)) log-density with Σ from the model's own sd_ / corr_
    draws (the priors, transforms and the T = diag(sd)·chol(R)/σ map included)."""
    from scipy.linalg import block_diag

    from mixedppl.bayes.marginal import lmm_marginal_to_pymc
    from mixedppl.bayes.pymc import _safe
    from mixedppl.fit.records import group_labels

    frame = _data(seed) if data == "wide" else _long_data(seed)
    spec = mp.Model(formula, frame).spec
    m = lmm_marginal_to_pymc(spec)
    rng = np.random.default_rng(seed)
    point = {k: v + rng.normal(0, 0.4, np.shape(v)) for k, v in m.initial_point().items()}
    names = [v.name for v in m.free_RVs] + [v.name for v in m.deterministics]
    outs = m.replace_rvs_by_values([m["y_marginal"], *[m[n] for n in names]])
    f = pytensor.function(m.value_vars, outs, mode=numpy_tier_mode(), on_unused_input="ignore")
    out = f(*[point[v.name] for v in m.value_vars])
    vals = dict(zip(names, out[1:]))
    covs = []
    for label, t in zip(group_labels(spec.terms), spec.terms):
        name = _safe(label)
        sd = np.atleast_1d(vals[f"sd_{name}"])
        R = vals.get(f"corr_{name}", np.eye(1))
        covs.append(np.kron(np.eye(t.n_levels), sd[:, None] * R * sd[None, :]))
    Z = z_sparse(spec.terms, slice(None), spec.n).toarray()
    sigma, beta = float(vals["sigma"]), np.atleast_1d(vals["beta"])
    V = sigma ** 2 * np.diag(1 / spec.weights) + Z @ block_diag(*covs) @ Z.T
    ref = stats.multivariate_normal(spec.X @ beta + spec.offset, V).logpdf(spec.y)
    assert float(out[0]) == pytest.approx(ref, rel=1e-10)
