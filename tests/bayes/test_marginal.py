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


def _potential_at_random_point(m, seed: int):
    """(the potential ``y_marginal``, every free and deterministic variable) of the PyMC model
    ``m`` at its initial point jittered in the unconstrained space."""
    rng = np.random.default_rng(seed)
    point = {k: v + rng.normal(0, 0.4, np.shape(v)) for k, v in m.initial_point().items()}
    names = [v.name for v in m.free_RVs] + [v.name for v in m.deterministics]
    outs = m.replace_rvs_by_values([m["y_marginal"], *[m[n] for n in names]])
    f = pytensor.function(m.value_vars, outs, mode=numpy_tier_mode(), on_unused_input="ignore")
    out = f(*[point[v.name] for v in m.value_vars])
    return float(out[0]), dict(zip(names, out[1:]))


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
    potential, vals = _potential_at_random_point(lmm_marginal_to_pymc(spec), seed)
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
    assert potential == pytest.approx(ref, rel=1e-10)


# -- partial marginal: some terms sampled, the others integrated out ----------------------------
# formula, positions of the sampled terms
PARTIAL = [("y ~ x + (1 | g) + (1 | h)", [1]), ("y ~ x + (1 | g) + (1 | h)", [0]),
           ("y ~ x + (x | g) + (1 | h) + (1 | k)", [1]), ("y ~ x + (1 | g) + (x | h) + (1 | k)", [1, 2]),
           ("y ~ 0 + x + (1 | g) + (1 | g:k)", [1]), ("y ~ x + (x | g) + (x | h)", [0])]


def _split_theta(spec, theta, positions):
    offs = np.cumsum([0] + [t.n_theta for t in spec.terms])
    return np.concatenate([theta[offs[k]:offs[k + 1]] for k in positions])


def _dense_partial(spec, pb, theta, beta, sigma, b_E):
    """N(Xβ + o + Z_E b_E, σ²(W⁻¹ + Z_M Λ_M Λ_Mᵀ Z_Mᵀ)) pieces, densely."""
    from scipy.linalg import block_diag
    T = relative_factors(spec.terms, theta)
    ZM = z_sparse([spec.terms[k] for k in pb.marginal], slice(None), spec.n).toarray()
    ZE = z_sparse([spec.terms[k] for k in pb.sampled], slice(None), spec.n).toarray()
    Lam = block_diag(*[np.kron(np.eye(spec.terms[k].n_levels), T[k]) for k in pb.marginal])
    mean = spec.X @ beta + spec.offset + ZE @ b_E
    return ZM, Lam, mean


@pytest.mark.parametrize("formula,sampled", PARTIAL)
@pytest.mark.parametrize("seed", [1, 2])
def test_partial_marginal_is_the_dense_normal(formula, sampled, seed):
    from mixedppl.graph.lmm_partial import partial_blocks, partial_marginal_loglik

    spec = _spec(formula, seed, weighted=seed == 2)
    pb = partial_blocks(spec, sampled)
    rng = np.random.default_rng(seed)
    theta, beta, sigma = _params(spec, rng)
    b_E = rng.normal(0, 1, pb.q_sampled)
    ll = partial_marginal_loglik(pb, _split_theta(spec, theta, pb.marginal), beta, sigma, b_E)
    ours = float(pytensor.function([], ll, mode=numpy_tier_mode())())
    ZM, Lam, mean = _dense_partial(spec, pb, theta, beta, sigma, b_E)
    V = sigma ** 2 * (np.diag(1 / spec.weights) + ZM @ Lam @ Lam.T @ ZM.T)
    ref = stats.multivariate_normal(mean, V).logpdf(spec.y)
    assert ours == pytest.approx(ref, rel=1e-10, abs=1e-8)


@pytest.mark.parametrize("formula,sampled", PARTIAL[2:4])
def test_partial_marginal_gradient_matches_finite_differences(formula, sampled):
    from mixedppl.graph.lmm_partial import partial_blocks, partial_marginal_loglik

    spec = _spec(formula, 4, weighted=True)
    pb = partial_blocks(spec, sampled)
    rng = np.random.default_rng(4)
    theta0, beta0, sigma0 = _params(spec, rng)
    theta0 = _split_theta(spec, theta0, pb.marginal)
    b0 = rng.normal(0, 1, pb.q_sampled)
    th, be, si, bE = pt.dvector("th"), pt.dvector("be"), pt.dscalar("si"), pt.dvector("bE")
    ll = partial_marginal_loglik(pb, th, be, si, bE)
    f = pytensor.function([th, be, si, bE], [ll, *pytensor.grad(ll, [th, be, si, bE])],
                          mode=numpy_tier_mode())
    nt, p = len(theta0), len(beta0)
    x0 = np.concatenate([theta0, beta0, [sigma0], b0])

    def val(x):
        return float(f(x[:nt], x[nt:nt + p], x[nt + p], x[nt + p + 1:])[0])
    grad = np.concatenate([np.atleast_1d(g) for g in f(theta0, beta0, sigma0, b0)[1:]])
    h = 1e-6
    fd = np.array([(val(x0 + h * e) - val(x0 - h * e)) / (2 * h) for e in np.eye(len(x0))])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("formula,sampled", PARTIAL)
def test_partial_conditional_draws_have_the_dense_mean_and_covariance(formula, sampled):
    """b_M | y, β, θ, σ, b_E ~ N(Λ M⁻¹ h, σ² Λ M⁻¹ Λᵀ) with h from the shifted response."""
    from mixedppl.graph.lmm_partial import partial_blocks

    spec = _spec(formula, 5, weighted=True)
    pb = partial_blocks(spec, sampled)
    rng = np.random.default_rng(5)
    theta, beta, sigma = _params(spec, rng)
    b_E = rng.normal(0, 1, pb.q_sampled)
    cre = ConditionalRE(spec, pb)
    q = cre.q
    eps = np.vstack([np.zeros(q), np.eye(q)])
    S = len(eps)
    thM = _split_theta(spec, theta, pb.marginal)
    draws = cre.draw(np.tile(beta, (S, 1)), np.tile(thM, (S, 1)), np.full(S, sigma), eps,
                     np.tile(b_E, (S, 1)))
    assert len(draws) == len(pb.marginal)
    flat = np.concatenate([d.reshape(S, -1) for d in draws], axis=1)
    ZM, Lam, mean_y = _dense_partial(spec, pb, theta, beta, sigma, b_E)
    W = np.diag(spec.weights)
    M = Lam.T @ ZM.T @ W @ ZM @ Lam + np.eye(q)
    mean = Lam @ np.linalg.solve(M, Lam.T @ ZM.T @ W @ (spec.y - mean_y))
    cov = sigma ** 2 * Lam @ np.linalg.solve(M, Lam.T)
    np.testing.assert_allclose(flat[0], mean, rtol=1e-9, atol=1e-9 * np.abs(mean).max())
    A = (flat[1:] - flat[0]).T
    np.testing.assert_allclose(A @ A.T, cov, rtol=1e-8, atol=1e-10 * np.abs(cov).max())


def test_sampled_terms_rule(monkeypatch):
    """Every term is integrated out while the dense Schur block is small; above
    MAX_MARGINAL_SCHUR the widest terms after the first are sampled, one at a time."""
    import mixedppl.bayes.marginal as marginal

    spec = _spec("y ~ x + (1 | g) + (x | h) + (1 | k)", 1, weighted=False)
    assert marginal.sampled_terms(spec) == []
    assert marginal.sampled_terms(_spec("y ~ x + (x | g)", 1, weighted=False)) == []
    qs = [t.q for t in spec.terms]
    monkeypatch.setattr(marginal, "MAX_MARGINAL_SCHUR", sum(qs[1:]) - 1)
    widest = 1 + int(np.argmax(qs[1:]))
    assert marginal.sampled_terms(spec) == [widest]
    monkeypatch.setattr(marginal, "MAX_MARGINAL_SCHUR", 0)
    assert marginal.sampled_terms(spec) == [1, 2]


@pytest.mark.parametrize("centred", [False, True])
def test_partial_marginal_pymc_model_is_the_dense_normal(centred):
    """The partially marginalised PyMC model's potential at a random point is the dense
    normal of the marginalised term given the sampled b (the model's own b_h, which is
    z_h · Lᵀ with L the Cholesky factor of the model's own Σ_h)."""
    from mixedppl.bayes.marginal import lmm_marginal_to_pymc
    from mixedppl.bayes.pymc import _safe
    from mixedppl.fit.records import group_labels

    spec = _spec("y ~ x + (1 | g) + (x | h)", 12, weighted=True)
    m = lmm_marginal_to_pymc(spec, sampled=[1], centred=centred)
    assert ("b_h" in {v.name for v in m.free_RVs}) == centred
    potential, vals = _potential_at_random_point(m, 12)
    label = group_labels(spec.terms)
    sd_g = float(vals[f"sd_{_safe(label[0])}"])
    sd_h, R = np.atleast_1d(vals["sd_h"]), vals["corr_h"]
    b_h = np.asarray(vals["b_h"])
    np.testing.assert_allclose(b_h, np.asarray(vals["z_h"]) @ np.linalg.cholesky(
        sd_h[:, None] * R * sd_h[None, :]).T, rtol=1e-10)
    Zg = z_sparse(spec.terms[:1], slice(None), spec.n).toarray()
    Zh = z_sparse(spec.terms[1:], slice(None), spec.n).toarray()
    sigma, beta = float(vals["sigma"]), np.atleast_1d(vals["beta"])
    V = sigma ** 2 * np.diag(1 / spec.weights) + sd_g ** 2 * Zg @ Zg.T
    ref = stats.multivariate_normal(spec.X @ beta + spec.offset + Zh @ b_h.ravel(),
                                    V).logpdf(spec.y)
    assert potential == pytest.approx(ref, rel=1e-10)
