"""glmmTMB's covariance structures of a term (``mixedppl.spec.covstruct``) and their parsing.

Each structure's T T^T is checked against the covariance written out from its definition (not
through the module's Cholesky), its Jacobian against central differences, toep's autocorrelations
against the Yule–Walker equations, and bad input against clear errors naming the term.
"""

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.spec.covstruct import STRUCTURES, Covariance
from mixedppl.spec.formula import parse_formula


def _random_theta(c: Covariance, rng) -> np.ndarray:
    th = c.theta_start() + rng.normal(scale=0.7, size=c.n_theta)
    th[:c.n_sd] = np.abs(th[:c.n_sd]) + 0.1
    return th


def _written_out(name: str, th: np.ndarray, ell: int) -> np.ndarray:
    """The relative covariance from glmmTMB's definitions (glmmTMB.cpp), entry by entry."""
    lag = np.abs(np.subtract.outer(np.arange(ell), np.arange(ell)))
    if name == "diag":
        return np.diag(th ** 2)
    if name == "ar1":
        rho = th[1] / np.sqrt(1 + th[1] ** 2)
        return th[0] ** 2 * rho ** lag
    if name == "cs":
        a = 1 / (ell - 1)
        rho = 1 / (1 + np.exp(-th[ell])) * (1 + a) - a
        R = np.where(lag == 0, 1.0, rho)
        return np.outer(th[:ell], th[:ell]) * R
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["diag", "ar1", "cs"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_factor_is_the_written_out_covariance(name, seed):
    rng = np.random.default_rng(seed)
    ell = 2 + seed
    c = Covariance(name, ell)
    th = _random_theta(c, rng)
    T = c.factor(th)
    assert np.allclose(np.triu(T, 1), 0)
    np.testing.assert_allclose(T @ T.T, _written_out(name, th, ell), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_toep_is_positive_definite_with_the_partial_autocorrelations(seed):
    """Durbin–Levinson: solving the Yule–Walker system of R's first k + 1 autocorrelations gives
    π_k as the last coefficient; any real u gives a positive definite R."""
    rng = np.random.default_rng(seed)
    ell = 5
    c = Covariance("toep", ell)
    u = rng.normal(scale=2.0, size=ell - 1)
    R = c.correlation(u).real
    assert np.linalg.eigvalsh(R).min() > 0
    lag = np.abs(np.subtract.outer(np.arange(ell), np.arange(ell)))
    assert np.allclose(R, R[0][lag])                       # Toeplitz
    pacf = u / np.sqrt(1 + u ** 2)
    for k in range(1, ell):
        phi = np.linalg.solve(R[:k, :k], R[1:k + 1, 0])
        assert phi[-1] == pytest.approx(pacf[k - 1], abs=1e-9)   # R near-singular for |π| → 1


@pytest.mark.parametrize("name", STRUCTURES)
def test_jacobian_is_the_derivative(name):
    rng = np.random.default_rng(7)
    c = Covariance(name, 4)
    th = _random_theta(c, rng)
    _, dT = c.factor_jacobian(th)
    h = 1e-6
    for k in range(c.n_theta):
        e = np.zeros(c.n_theta)
        e[k] = h
        num = (c.factor(th + e) - c.factor(th - e)) / (2 * h)
        np.testing.assert_allclose(dT[k], num, atol=1e-8)
    full, J = c.lower_triangle(th)
    assert full.shape == (10,) and J.shape == (10, c.n_theta)


def test_start_is_the_identity():
    for name in STRUCTURES:
        c = Covariance(name, 3)
        T = c.factor(c.theta_start())
        np.testing.assert_allclose(T @ T.T, np.eye(3), atol=1e-15)


def test_parse_structured_terms():
    p = parse_formula("y ~ x + (1 | g) + ar1(times + 0 | g) + diag(x | h)")
    assert [(t.structure, t.lhs, t.group) for t in p.random] == [
        ("us", "1", "g"), ("ar1", "0 + times", "g"), ("diag", "1 + x", "h")]
    assert parse_formula("y ~ us(x | g)").random[0].structure == "us"


def _long():
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"g": np.repeat([f"s{i}" for i in range(6)], 4),
                      "t": np.tile([1, 2, 3, 4], 6)})
    d["times"] = pd.Categorical(d["t"].astype(str))
    d["y"] = rng.normal(size=len(d))
    return d


@pytest.mark.parametrize("formula, message", [
    ("y ~ foo(t | g)", r"'foo\(t \| g\)': foo\(\) is not a covariance structure"),
    ("y ~ ou(times + 0 | g)", r"glmmTMB's ou\(\) covariance structure is not supported"),
    ("y ~ ar1(t + 0 | g)", r"ar1\(0 \+ t \| g\): 't' is numeric.*factor\(t\)"),
    ("y ~ ar1(times | g)", r"ar1\(\) needs one factor of times and no intercept.*"
                           r"ar1\(times \+ 0 \| g\)"),
    ("y ~ toep(odd + 0 | g)", r"levels of 'odd' \(1, 2, 4, 5\) are not equally spaced"),
    ("y ~ cs(1 | g)", r"cs\(1 \| g\) has one column"),
    ("y ~ ar1(times + 0 || g)", "a covariance structure takes a single bar"),
])
def test_bad_structured_terms_name_the_term(formula, message):
    d = _long()
    d["odd"] = pd.Categorical(d["t"].map({1: "1", 2: "2", 3: "4", 4: "5"}))
    with pytest.raises(mp.ModelSpecError, match=message):
        mp.Model(formula, d)


def test_theta_names_and_bounds():
    spec = mp.Model("y ~ ar1(times + 0 | g)", _long()).spec
    assert spec.theta_names() == ["g.sd", "g.ar1"]
    assert spec.theta_lower().tolist() == [0.0, -np.inf]
    assert spec.structured and spec.theta_mirror() == {}
