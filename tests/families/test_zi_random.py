"""Random terms in the ziformula (:mod:`mixedppl.graph.laplace_zire`,
:mod:`mixedppl.fit.laplace_zire`) against a dense NumPy Laplace written here.

The independent answer: the zero-inflated Poisson log-density with its first and second
derivatives in (η, η_zi) written out by hand (no automatic differentiation), the joint mode of
u = (u_c, u_z) by Newton's method on the dense q × q Hessian, the Laplace deviance
D = g(û) + log|I + MᵀWM| (TMB's, W the 2 × 2 observed information per row), minimised over
(θ_c, θ_z, β, γ) by brute force (scipy's Nelder–Mead, then Powell, from a start unrelated to
mixedppl's). Four seeds of small simulated data, a model with a conditional and a zi term
on different grouping factors, and a zi-only one.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special

import mixedppl as mp
from mixedppl.fit.laplace_zire import ZIReObjective


def _zip_derivs(y, eta, etaz):
    """log p, ∂/∂η, ∂/∂η_zi, ∂²/∂η², ∂²/∂η∂η_zi, ∂²/∂η_zi² per row (ZIP, logit zero part)."""
    mu, p = np.exp(eta), special.expit(etaz)
    log_p, log_1mp = -np.logaddexp(0, -etaz), -np.logaddexp(0, etaz)
    pos = y > 0
    ll = np.where(pos, log_1mp + y * eta - mu - special.gammaln(y + 1),
                  np.logaddexp(log_p, log_1mp - mu))
    r = special.expit((log_1mp - mu) - log_p)        # share of the Poisson zero among zeros
    d_e = np.where(pos, y - mu, -r * mu)
    d_z = np.where(pos, -p, (1 - p) - r)
    h_ee = np.where(pos, -mu, r * (1 - r) * mu ** 2 - r * mu)
    h_ez = np.where(pos, 0.0, mu * r * (1 - r))
    h_zz = np.where(pos, -p * (1 - p), -p * (1 - p) + r * (1 - r))
    return ll, d_e, d_z, h_ee, h_ez, h_zz


def _indicators(codes, G):
    Z = np.zeros((len(codes), G))
    Z[np.arange(len(codes)), codes] = 1.0
    return Z


def dense_deviance(x, y, X, Xz, Zc, Zz):
    """The Laplace deviance of y ~ X + (1 | gc), zi ~ Xz + (1 | gz) at x = (s_c, s_z, β, γ)
    (``Zc`` may have no columns: no conditional term)."""
    qc, qz = Zc.shape[1], Zz.shape[1]
    k = 1 if qc else 0
    sc, sz = (x[0] if qc else 0.0), x[k]
    beta, gamma = x[k + 1:k + 1 + X.shape[1]], x[k + 1 + X.shape[1]:]
    n = len(y)
    M = np.zeros((2 * n, qc + qz))
    M[:n, :qc], M[n:, qc:] = sc * Zc, sz * Zz
    u = np.zeros(qc + qz)

    def parts(u):
        lin = M @ u
        eta, etaz = X @ beta + lin[:n], Xz @ gamma + lin[n:]
        ll, de, dz, hee, hez, hzz = _zip_derivs(y, eta, etaz)
        g = -2 * ll.sum() + u @ u
        grad = -2 * M.T @ np.concatenate([de, dz]) + 2 * u
        Mc, Mz = M[:n], M[n:]
        A = np.eye(len(u)) + M.T @ np.vstack([-hee[:, None] * Mc - hez[:, None] * Mz,
                                               -hez[:, None] * Mc - hzz[:, None] * Mz])
        return g, grad, A

    g, grad, A = parts(u)
    for _ in range(100):
        step = np.linalg.solve(A, grad) / 2
        t = 1.0
        while t > 1e-12:
            gn, gradn, An = parts(u - t * step)
            if gn <= g:
                break
            t /= 2
        u, done = u - t * step, g - gn < 1e-13 * max(1.0, abs(g))
        g, grad, A = gn, gradn, An
        if done and np.max(np.abs(grad)) < 1e-9:
            break
    sign, logdet = np.linalg.slogdet(A)
    return g + logdet if sign > 0 else np.inf


def _sim(seed, zi_only=False):
    rng = np.random.default_rng(seed)
    n, Gc, Gz = 90, 9, 6
    gc, gz = np.repeat(np.arange(Gc), n // Gc), rng.integers(0, Gz, n)
    x = np.round(rng.normal(size=n), 3)
    bc, bz = rng.normal(0, 0.6, Gc)[gc], rng.normal(0, 1.0, Gz)[gz]
    eta = 0.8 + 0.5 * x + (0 if zi_only else bc)
    etaz = -0.5 + (0 if zi_only else 0.6 * x) + bz
    y = np.where(rng.uniform(size=n) < special.expit(etaz), 0, rng.poisson(np.exp(eta)))
    return pd.DataFrame({"y": y.astype(float), "x": x,
                         "gc": pd.Categorical([f"c{i}" for i in gc]),
                         "gz": pd.Categorical([f"z{i}" for i in gz])})


def _dense_inputs(d, zi_only):
    X = np.column_stack([np.ones(len(d)), d["x"]])
    Xz = np.ones((len(d), 1)) if zi_only else X
    Zc = np.zeros((len(d), 0)) if zi_only else _indicators(d["gc"].cat.codes.to_numpy(), 9)
    Zz = _indicators(d["gz"].cat.codes.to_numpy(), 6)
    return d["y"].to_numpy(), X, Xz, Zc, Zz


def _model(zi_only):
    return (("y ~ x", "~ 1 + (1 | gz)") if zi_only else ("y ~ x + (1 | gc)", "~ x + (1 | gz)"))


@pytest.mark.slow   # 30–450 s per case on the loaded 2-core machine (Nelder–Mead + Powell)
@pytest.mark.parametrize("zi_only", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fit_is_the_dense_brute_force_optimum(seed, zi_only):
    d = _sim(seed, zi_only)
    formula, zi = _model(zi_only)
    fit = mp.glmer(formula, d, family="poisson", ziformula=zi)
    args = _dense_inputs(d, zi_only)
    ours = np.concatenate([fit.theta, fit.zi_theta, fit.beta, fit.phi])
    D_ours = dense_deviance(ours, *args)
    assert abs(D_ours - fit.record.deviance_laplace) < 1e-6 * abs(D_ours)

    def f(v):   # the SDs enter as |s| (D is even in each)
        return dense_deviance(v, *args)

    start = np.concatenate([[0.3] * (1 if zi_only else 2), np.zeros(len(ours) - (1 if zi_only else 2))])
    bf = optimize.minimize(f, start, method="Nelder-Mead",
                           options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 40000,
                                    "maxfev": 40000})
    bf = optimize.minimize(f, bf.x, method="Powell", options={"xtol": 1e-10, "ftol": 1e-13})
    x_bf = bf.x.copy()
    n_sd = 1 if zi_only else 2
    x_bf[:n_sd] = np.abs(x_bf[:n_sd])
    assert D_ours <= bf.fun + 1e-6
    np.testing.assert_allclose(ours, x_bf, atol=2e-3)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_deviance_and_gradient_at_random_points(seed):
    d = _sim(seed)
    formula, zi = _model(False)
    spec = mp.Model(formula, d, family="poisson", ziformula=zi).spec
    obj = ZIReObjective(spec, *spec.counts())
    args = _dense_inputs(d, False)
    rng = np.random.default_rng(100 + seed)
    x = np.concatenate([rng.uniform(0.2, 1.2, 2), rng.normal(0, 0.4, 4)])
    D, grad = obj(x)
    assert abs(D - dense_deviance(x, *args)) < 1e-7 * abs(D)
    h = 1e-4   # (1e-5 is below the dense inner Newton's noise: ∂D/∂γ₀ off by 1.5e-3 there)
    fd = np.array([(dense_deviance(x + h * e, *args) - dense_deviance(x - h * e, *args)) / (2 * h)
                   for e in np.eye(len(x))])
    np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-4)
