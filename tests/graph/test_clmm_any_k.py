"""One compiled CLMM graph serves every number of categories K (flexible thresholds).

The cumulative family's compile key leaves K out (``CumulativeFamily.key``): the graph reads
K − 1 from the length of φ. Checked on randomized ordinal data with K = 3, 4 and 6 evaluated
through the functions compiled for another K: the Laplace deviance and its gradient equal
ordinal's Laplace deviance written densely in NumPy (û by Newton's method, the observed
−∂²ℓ/∂η² as weights, log|ΛᵀZᵀWZΛ + I| by slogdet), and the later K compile nothing.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from independent import dense_laplace, dense_Z, lambda_matrix
from mixedppl.clmm_api import clmm_model
from mixedppl.core import compile as C
from mixedppl.fit.laplace import LaplaceObjective

FORMULAS = ["r ~ x + (1 | g1)", "r ~ x + (1 | g1) + (1 | g2)"]


def _data(seed: int, K: int, n: int = 70) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    g1, g2 = r.integers(0, 7, n), r.integers(0, 4, n)
    x = r.normal(size=n)
    eta = 0.6 * x + 0.8 * r.normal(size=7)[g1] + 0.5 * r.normal(size=4)[g2]
    cuts = np.linspace(-1.5, 1.5, K - 1)
    codes = (eta[:, None] + r.logistic(size=n)[:, None] > cuts[None, :]).sum(axis=1)
    codes[:K] = np.arange(K)                          # every category present
    return pd.DataFrame({"r": pd.Categorical(codes.astype(str), [str(k) for k in range(K)],
                                             ordered=True),
                         "x": x, "g1": g1.astype(str), "g2": g2.astype(str)})


def _dense_clmm_laplace(spec, y, x, K):
    """ordinal's Laplace deviance for the logit link: P(Y ≤ j) = F(α_j − η)."""
    n_theta, p = spec.n_theta, spec.p
    theta, beta, phi = x[:n_theta], x[n_theta:n_theta + p], x[n_theta + p:]
    alpha = np.cumsum(np.concatenate([phi[:1], np.exp(phi[1:])]))
    a_hi = np.concatenate([alpha, [np.inf]])[y]
    a_lo = np.concatenate([[-np.inf], alpha])[y]
    Z, _ = dense_Z(spec)
    ZL = Z @ lambda_matrix(spec, theta)
    fixed = spec.X @ beta

    def pieces(u):
        eta = fixed + ZL @ u
        F_hi, F_lo = expit(a_hi - eta), expit(a_lo - eta)
        f_hi, f_lo = F_hi * (1 - F_hi), F_lo * (1 - F_lo)
        g_hi, g_lo = f_hi * (1 - 2 * F_hi), f_lo * (1 - 2 * F_lo)
        prob = F_hi - F_lo
        d1 = -(f_hi - f_lo) / prob                        # ∂ℓ/∂η
        d2 = (g_hi - g_lo) / prob - d1 ** 2               # ∂²ℓ/∂η²
        return np.log(prob), d1, -d2

    return dense_laplace(ZL, pieces)


def _compiled() -> int:
    return C.cache_stats["compiled"] + C.cache_stats["disk"]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("formula", FORMULAS)
def test_one_graph_serves_every_k(monkeypatch, seed, formula):
    monkeypatch.setattr(C.config, "tier", "numpy")    # one tier, nothing in the background
    C.clear_cache()                                   # so that K = 5 compiles, the rest not
    r = np.random.default_rng(50 + seed)
    for i, K in enumerate((5, 3, 4, 6)):
        data = _data(10 * seed + K, K)
        spec, fam, link, y, w, levels = clmm_model(formula, data)
        assert fam.K == K and fam.key == ("cumulative", "flexible")
        before = _compiled()
        obj = LaplaceObjective(spec, fam, link, y, w)
        if i:
            assert _compiled() == before, f"K = {K} compiled a new graph"
        x = np.concatenate([r.uniform(0.3, 1.0, spec.n_theta), r.normal(0, 0.3, spec.p),
                            [-1.0], np.log(r.uniform(0.4, 1.2, K - 2))])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d, grad = obj(x)
        yi = np.round(y).astype(int)
        dense = _dense_clmm_laplace(spec, yi, x, K)
        assert d == pytest.approx(dense, rel=1e-8), K
        h = 1e-5
        fd = np.array([(_dense_clmm_laplace(spec, yi, x + h * e, K)
                        - _dense_clmm_laplace(spec, yi, x - h * e, K)) / (2 * h)
                       for e in np.eye(len(x))])
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5, err_msg=f"K = {K}")


def test_equidistant_thresholds_keep_k_in_the_key():
    """Equidistant thresholds α_j = φ₁ + j·exp(φ₂) are built from K: K stays in the key."""
    data = _data(1, 4)
    spec, fam, *_ = clmm_model("r ~ x + (1 | g1)", data, threshold="equidistant")
    assert fam.key == ("cumulative", 4, "equidistant")
