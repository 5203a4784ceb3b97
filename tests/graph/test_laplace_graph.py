"""The structure-generic Laplace graph (mixedppl/graph/laplace.py, graph/laplace_inputs.py).

One compiled graph per (family, link, r_mode, ℓ₁ = 1) serves every random-effects structure:
its deviance and exact gradient are checked against lme4's Laplace deviance written densely in
NumPy (ZΛ formed, û by Newton's method, log|ΛᵀZᵀWZΛ + I| by slogdet) on randomized data with
vector terms before and after the first, in all three storage modes of the Schur block; and a
second structure with the same key compiles nothing.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from independent import dense_laplace, dense_Z, lambda_matrix
from mixedppl.core import compile as C
from mixedppl.fit.laplace import LaplaceObjective
from mixedppl.glmm_api import glmm_model
from mixedppl.graph.laplace import (LaplaceStructure, design_inputs, laplace_functions,
                                    laplace_structure, row_pairs)
from scipy.special import gammaln

FORMULAS = ["y ~ x + (1 + x | g1) + (1 | g2)",
            "y ~ x + (1 | g1) + (1 + x | g2) + (1 | g3)",
            "y ~ x + (1 + x | g1)",
            "y ~ 1 + (1 | g1) + (0 + x | g2)"]


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(C.config, "tier", "numpy")
    C.clear_cache()
    yield
    C.clear_cache()


def _data(seed: int, n: int = 60) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    g1, g2, g3 = r.integers(0, 6, n), r.integers(0, 4, n), r.integers(0, 3, n)
    x = r.normal(size=n)
    eta = 0.3 + 0.4 * x + 0.5 * r.normal(size=6)[g1] + 0.4 * r.normal(size=4)[g2] * (1 + x)
    return pd.DataFrame({"y": r.poisson(np.exp(eta)).astype(float), "x": x,
                         "yb": (r.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float),
                         "g1": g1.astype(str), "g2": g2.astype(str), "g3": g3.astype(str)})


def _all_pairs(spec):
    """Every ordered pair of rows sharing a level of the first term (forces "pairs" mode)."""
    codes = spec.terms[0].codes
    same = codes[:, None] == codes[None, :]
    a, b = np.nonzero(same)
    return a.astype(np.int64), b.astype(np.int64)


def _dense_laplace(spec, family: str, y, x):
    """lme4's Laplace deviance D(θ, β) with ZΛ formed densely (canonical links: W = −∂²ℓ/∂η²)."""
    n_theta, p = spec.n_theta, spec.p
    theta, beta = x[:n_theta], x[n_theta:n_theta + p]
    Z, _ = dense_Z(spec)
    ZL = Z @ lambda_matrix(spec, theta)
    fixed = spec.X @ beta + spec.offset

    def pieces(u):
        eta = fixed + ZL @ u
        if family == "poisson":
            mu = np.exp(eta)
            ll = y * eta - mu - gammaln(y + 1)
            return ll, y - mu, mu
        mu = 1 / (1 + np.exp(-eta))
        ll = y * eta - np.log1p(np.exp(eta))
        return ll, y - mu, mu * (1 - mu)

    return dense_laplace(ZL, pieces)


def _objective(formula, data, family, mode):
    resp = "y" if family == "poisson" else "yb"
    spec, fam, link, y, ntr = glmm_model(formula.replace("y ~", f"{resp} ~"), data, family)
    obj = LaplaceObjective(spec, fam, link, y, ntr)
    if mode is not None and len(spec.terms) > 1:      # force a storage mode of the Schur block
        pairs = _all_pairs(spec) if mode == "pairs" else None
        obj.structure = LaplaceStructure(mode, spec.terms[0].n_cols)
        obj.fns = laplace_functions(fam, link, obj.structure)
        obj.data = design_inputs(spec, y, ntr, pairs)
    return spec, obj, y


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("family", ["poisson", "binomial"])
@pytest.mark.parametrize("mode", ["dense", "pairs"])
def test_generic_graph_equals_the_dense_laplace_deviance(fresh, seed, family, mode):
    data = _data(seed)
    r = np.random.default_rng(100 + seed)
    for formula in FORMULAS:
        if mode == "pairs" and formula == FORMULAS[2]:
            continue                                  # one term: no Schur block
        spec, obj, y = _objective(formula, data, family, mode)
        x = np.concatenate([r.uniform(0.3, 1.0, spec.n_theta), r.normal(0, 0.3, spec.p)])
        x[:spec.n_theta][spec.theta_lower() < 0] *= 0.3   # off-diagonal θ: small
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d, grad = obj(x)
        dense = _dense_laplace(spec, family, y, x)
        # rel 1e-8, not 1e-12: the inner Newton stops at a decrement ~1e-15·g, so û is exact to
        # ~1e-7, and D is stationary in u only through g, not through log|L|²
        assert d == pytest.approx(dense, rel=1e-8), formula
        h = 1e-5
        fd = np.array([(_dense_laplace(spec, family, y, x + h * e)
                        - _dense_laplace(spec, family, y, x - h * e)) / (2 * h)
                       for e in np.eye(len(x))])
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5, err_msg=formula)


def _key(formula, data):
    spec = glmm_model(formula, data, "poisson")[0]
    return laplace_structure(spec, row_pairs(spec)).graph_key()


def _compiles(formula, data) -> int:
    before = C.cache_stats["compiled"] + C.cache_stats["disk"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.glmer(formula, data, family="poisson")
    return C.cache_stats["compiled"] + C.cache_stats["disk"] - before


def test_new_structures_compile_nothing(fresh):
    """Formulas with other term counts, widths, level counts and data but the graph key of a
    fitted one compile nothing (before: one set of functions per tuple of term widths)."""
    data = _data(7, n=80)
    first = "y ~ x + (1 | g1) + (1 + x | g2) + (1 | g3)"
    others = ["y ~ 1 + (1 | g1) + (0 + x | g2)", "y ~ x + (1 | g2) + (1 | g3)",
              "y ~ x + (1 | g1) + (1 + x | g3)"]
    # the NumPy tier's parts (graph/laplace_split.py): η, the family graph, inner, outer,
    # estimates
    assert _compiles(first, data) == 5
    for formula in others:
        assert _key(formula, data) == _key(first, data)
        assert _compiles(formula, data) == 0, formula
    other_data = _data(8, n=50)
    assert _key("y ~ x + (1 | g2) + (1 | g1)", other_data) == _key(first, data)
    assert _compiles("y ~ x + (1 | g2) + (1 | g1)", other_data) == 0
    # a vector first term is the other variant of the key: one more set of structure graphs
    # (η, inner, outer, estimates; the family graph is shared), then shared again
    assert _compiles("y ~ x + (1 + x | g1)", data) == 4
    assert _compiles("y ~ 1 + (1 + x | g3)", data) == 0
