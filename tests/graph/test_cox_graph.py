"""The Cox graphs against dense NumPy brute force (explicit risk-set loops), on random tied data.

Independent of mixedppl's layout: the partial likelihood is summed event time by event time over
explicit risk sets (Breslow and Efron as written in Therneau & Grambsch 2000, §3.3), its
derivatives by central differences; the Laplace-integrated likelihood is a dense NumPy Newton on
(b, β) with the full Hessian from differences of the brute-force score, and
ℓ_I = PPL − ½ log|Σ| − ½ log|H_bb| (coxme's definition). With the variance at 0 the fit is the
plain Cox fit (dense Newton on the brute-force likelihood).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.core.control import Control
from mixedppl.families.cox import CoxFamily
from mixedppl.fit.cox import CoxData, CoxmeObjective, fit_coxme, fit_coxph
from mixedppl.graph.cox import coxph_functions, risk_set_layout
from mixedppl.spec.model_spec import build_spec


def stratum_event_times(time, status, strata):
    """(stratum mask, event time) pairs: every distinct event time of every stratum."""
    strata = np.zeros(len(time)) if strata is None else np.asarray(strata)
    for g in np.unique(strata):
        inside = strata == g
        for t in np.unique(time[inside & (status == 1)]):
            yield inside, t


def brute_pl(eta, time, status, w, ties, strata=None):
    """Cox partial log-likelihood by explicit loops over the distinct event times (of each
    stratum: the risk set holds the stratum's rows only)."""
    total = 0.0
    for inside, t in stratum_event_times(time, status, strata):
        events = (time == t) & (status == 1) & inside
        at_risk = (time >= t) & inside
        r = w * np.exp(eta)
        S, Sd = r[at_risk].sum(), r[events].sum()
        d, W = int(events.sum()), w[events].sum()
        total += np.sum(w[events] * eta[events])
        if ties == "breslow" or d == 1:
            total -= W * np.log(S)
        else:
            total -= (W / d) * sum(np.log(S - k / d * Sd) for k in range(d))
    return total


def brute_derivatives(eta, time, status, w, ties, strata=None):
    """(ℓ, ∂ℓ/∂η, ∂²ℓ/∂η∂ηᵀ) by loops: each log-denominator log Σ_i a_i, a_i = r_i·(1[i at
    risk] − f·1[i tied event]), has gradient a/D and Hessian diag(a)/D − aaᵀ/D²."""
    n = len(eta)
    g, H = np.zeros(n), np.zeros((n, n))
    r = w * np.exp(eta)
    for inside, t in stratum_event_times(time, status, strata):
        events = (time == t) & (status == 1) & inside
        d, W = int(events.sum()), w[events].sum()
        g += np.where(events, w, 0.0)
        slots = [(W, 0.0)] if ties == "breslow" or d == 1 else [(W / d, k / d) for k in range(d)]
        for c, frac in slots:
            a = r * (((time >= t) & inside) - frac * events)
            D = a.sum()
            g -= c * a / D
            H -= c * (np.diag(a) / D - np.outer(a, a) / D ** 2)
    return brute_pl(eta, time, status, w, ties, strata), g, H


def random_data(seed, n=40, groups=6):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"time": rng.integers(1, 9, n).astype(float),     # many ties
                         "status": rng.integers(0, 2, n) | (np.arange(n) < 3),
                         "x": rng.normal(size=n), "z": rng.normal(size=n),
                         "w": rng.uniform(0.5, 2.0, n),
                         "g": rng.integers(0, groups, n).astype(str),
                         "s": rng.choice(["a", "b", "c"], n)})


STRATIFIED = "Surv(time, status) ~ x + z + strata(s) + (1 | g)"


def spec_of(df, ties, formula="Surv(time, status) ~ x + z + (1 | g)", **kw):
    return build_spec(formula, df, CoxFamily(ties), control=Control(check_nobs_vs_nRE="ignore"),
                      **kw)


@pytest.mark.parametrize("stratified", [False, True])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("seed", range(12))
def test_loop_derivatives_are_the_derivatives_of_the_loop_likelihood(seed, ties, stratified):
    df = random_data(seed, n=15)
    time, status, w = (df[c].to_numpy(float) for c in ("time", "status", "w"))
    strata = df["s"].to_numpy() if stratified else None
    eta = np.random.default_rng(seed).normal(size=len(df))
    _, g, H = brute_derivatives(eta, time, status, w, ties, strata)
    h = 1e-6
    E = np.eye(len(df))
    num = np.array([(brute_pl(eta + h * e, time, status, w, ties, strata)
                     - brute_pl(eta - h * e, time, status, w, ties, strata)) / (2 * h)
                    for e in E])
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-7)
    numH = np.array([(brute_derivatives(eta + h * e, time, status, w, ties, strata)[1]
                      - brute_derivatives(eta - h * e, time, status, w, ties, strata)[1])
                     / (2 * h) for e in E])
    np.testing.assert_allclose(H, numH, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("formula", ["Surv(time, status) ~ x + z + (1 | g)", STRATIFIED])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("seed", range(8))
def test_partial_likelihood_and_derivatives_match_brute_force(seed, ties, formula):
    df = random_data(seed)
    spec = spec_of(df, ties, formula, weights="w")
    data = CoxData.from_spec(spec)
    rng = np.random.default_rng(100 + seed)
    beta = rng.normal(scale=0.7, size=spec.p)
    ll, score, info = coxph_functions()(beta, data.X, data.offset, data.weights,
                                        *data.risk_sets.inputs())
    time, status, w = spec.y, spec.status, spec.weights

    def f(b):
        return brute_pl(spec.X @ b, time, status, w, ties, spec.strata)
    assert ll == pytest.approx(f(beta), rel=1e-12, abs=1e-12)
    h = 1e-5
    num_score = np.array([(f(beta + h * e) - f(beta - h * e)) / (2 * h) for e in np.eye(spec.p)])
    np.testing.assert_allclose(score, num_score, rtol=1e-6, atol=1e-7)

    def grad(b):
        return np.array([(f(b + h * e) - f(b - h * e)) / (2 * h) for e in np.eye(spec.p)])
    num_info = -np.array([(grad(beta + 1e-4 * e) - grad(beta - 1e-4 * e)) / 2e-4
                          for e in np.eye(spec.p)])
    np.testing.assert_allclose(info, num_info, rtol=1e-4, atol=1e-5)


def test_efron_and_breslow_agree_without_ties_and_differ_with_them():
    df = random_data(3)
    eta = np.random.default_rng(0).normal(size=len(df))
    time, status, w = df["time"].to_numpy(float), df["status"].to_numpy(float), np.ones(len(df))
    assert brute_pl(eta, time, status, w, "efron") != pytest.approx(
        brute_pl(eta, time, status, w, "breslow"))
    untied = time + np.arange(len(df)) * 1e-3
    for ties in ("efron", "breslow"):
        spec = spec_of(df.assign(time=untied), ties)
        data = CoxData.from_spec(spec)
        ll = coxph_functions()(np.zeros(spec.p), data.X, data.offset, data.weights,
                               *data.risk_sets.inputs())[0]
        assert ll == pytest.approx(brute_pl(np.zeros(len(df)), untied, status, w, "breslow"),
                                   rel=1e-12)


def dense_laplace(spec, variance, ties):
    """ℓ_I, β̂ by a dense NumPy Newton on (b, β) with the loops' derivatives (b-scale, Σ⁻¹
    penalty, coxme's ℓ_I = PPL − ½ log|Σ| − ½ log|H_bb|)."""
    q = spec.terms[0].n_levels
    Z = np.zeros((spec.n, q))
    Z[np.arange(spec.n), spec.terms[0].codes] = 1.0
    A = np.hstack([Z, spec.X])
    pen = np.r_[np.full(q, 1.0 / variance), np.zeros(spec.p)]

    def pieces(x):
        ll, g, H = brute_derivatives(A @ x, spec.y, spec.status, spec.weights, ties,
                                     spec.strata)
        return ll - 0.5 * np.sum(pen * x * x), A.T @ g - pen * x, -(A.T @ H @ A) + np.diag(pen)
    x = np.zeros(q + spec.p)
    for _ in range(50):
        _, g, H = pieces(x)
        step = np.linalg.solve(H, g)
        x = x + step
        if np.max(np.abs(step)) < 1e-12:
            break
    ppl, _, H = pieces(x)
    _, logdet_bb = np.linalg.slogdet(H[:q, :q])
    return ppl - 0.5 * (q * np.log(variance) + logdet_bb), x[q:]


@pytest.mark.parametrize("formula", ["Surv(time, status) ~ x + z + (1 | g)", STRATIFIED])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("seed", range(5))
def test_laplace_integrated_likelihood_matches_dense_numpy(seed, ties, formula):
    df = random_data(seed, n=30, groups=4)
    spec = spec_of(df, ties, formula)
    variance = 0.6
    ilik, beta = dense_laplace(spec, variance, ties)
    data = CoxData.from_spec(spec)
    obj = CoxmeObjective(data, fit_coxph(data)["beta"])
    e = obj.evaluate(np.array([np.sqrt(variance)]))
    assert -e["f"] == pytest.approx(ilik, abs=1e-6)
    np.testing.assert_allclose(obj.split(e["x"])[1], beta, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 4])
def test_outer_gradient_is_the_derivative_of_the_objective(seed):
    spec = spec_of(random_data(seed), "efron")
    data = CoxData.from_spec(spec)
    obj = CoxmeObjective(data, fit_coxph(data)["beta"])
    theta = np.array([0.7])
    f, g = obj(theta)
    h = 1e-5
    num = (obj(theta + h)[0] - obj(theta - h)[0]) / (2 * h)
    assert g[0] == pytest.approx(num, rel=1e-5, abs=1e-8)


def test_zero_variance_is_the_plain_cox_fit():
    df = random_data(5)
    spec = spec_of(df, "efron")
    fit = fit_coxme(spec, variance=0.0)
    beta = np.zeros(spec.p)
    f = lambda b: brute_pl(spec.X @ b, spec.y, spec.status, spec.weights, "efron")  # noqa: E731
    h = 1e-5
    for _ in range(25):                     # dense Newton on the brute-force likelihood
        g = np.array([(f(beta + h * e) - f(beta - h * e)) / (2 * h) for e in np.eye(spec.p)])
        H = np.array([[(f(beta + h * (a + b)) - f(beta + h * (a - b)) - f(beta - h * (a - b))
                        + f(beta - h * (a + b))) / (4 * h * h) for b in np.eye(spec.p)]
                      for a in np.eye(spec.p)])
        beta = beta - np.linalg.solve(H, g)
    np.testing.assert_allclose(fit.beta, beta, rtol=1e-5, atol=1e-7)
    assert fit.loglik_integrated == pytest.approx(f(beta), abs=1e-8)
    assert fit.loglik_integrated == pytest.approx(fit.loglik_coxph, abs=1e-8)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_strata_change_the_likelihood_and_are_no_design_column(ties):
    df = random_data(1)
    plain, strat = spec_of(df, ties), spec_of(df, ties, STRATIFIED)
    assert strat.fe_names == plain.fe_names == ["x", "z"]
    assert sorted(np.unique(strat.strata).tolist()) == [0, 1, 2]
    eta = np.random.default_rng(1).normal(size=len(df))
    assert brute_pl(eta, strat.y, strat.status, strat.weights, ties, strat.strata) != \
        pytest.approx(brute_pl(eta, plain.y, plain.status, plain.weights, ties))
    with pytest.raises(mp.ModelSpecError, match="strata"):
        build_spec("y ~ x + strata(s) + (1 | g)", df.assign(y=df["x"]))


def test_stratified_layout_restarts_the_risk_sets():
    # stratum b holds a censored row before its first event: in no risk set of its own stratum
    rs = risk_set_layout(np.array([3., 1., 2., 3., 1., 4.]), np.array([1., 1., 0., 1., 0., 1.]),
                         np.ones(6), "efron", strata=np.array(["a", "a", "b", "b", "b", "a"]))
    assert rs.order.tolist() == [1, 0, 5, 4, 2, 3]
    assert rs.risk_start.tolist() == [0, 1, 2, 5] and rs.risk_end.tolist() == [3, 3, 3, 6]
    assert rs.slot_time.tolist() == [0, 1, 2, 3] and rs.slot_time_end.tolist() == [3, 3, 3, 4]


def test_risk_set_layout_sorts_once_and_lays_out_efron_slots():
    rs = risk_set_layout(np.array([3., 1., 3., 3., 2.]), np.array([1., 1., 1., 0., 0.]),
                         np.ones(5), "efron")
    assert rs.order.tolist() == [1, 4, 0, 2, 3]
    assert rs.risk_start.tolist() == [0, 2, 2]           # time 1 from row 0, time 3 from row 2
    assert rs.slot_fraction.tolist() == [0.0, 0.0, 0.5]
    br = risk_set_layout(np.array([3., 1., 3., 3., 2.]), np.array([1., 1., 1., 0., 0.]),
                         np.ones(5), "breslow")
    assert br.risk_start.tolist() == [0, 2] and br.slot_weight.tolist() == [1.0, 2.0]


def dense_information(spec, data, theta, u, beta):
    """−∇²ℓ over x = (u, β) from the loops' η-Hessian, J = [ZΛ, X] dense (unsorted rows)."""
    Z = np.zeros((spec.n, data.q))
    for k, t in enumerate(spec.terms):
        Z[np.arange(spec.n), data.term_slices[k].start + t.codes] = t.z[:, 0] * theta[k]
    J = np.hstack([Z, spec.X])
    eta = J @ np.r_[u, beta] + spec.offset
    _, _, H = brute_derivatives(eta, spec.y, spec.status, spec.weights, spec.family.ties,
                                spec.strata)
    return -(J.T @ H @ J)


@pytest.mark.parametrize("strata", ["", " + strata(s)"])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("seed", range(4))
def test_information_blocks_and_hessian_products_match_dense(seed, ties, strata):
    """coxme's H̃ in blocks (sparse diagonal, cross, dense block) and the exact Hv, with two
    crossed terms (the first one's levels sparse) against the dense loops; with strata a
    sparse level's rows fall in several strata (its within-level sums restart there)."""
    rng = np.random.default_rng(seed)
    df = random_data(seed, n=60, groups=8).assign(h=rng.integers(0, 3, 60).astype(str))
    spec = spec_of(df, ties, f"Surv(time, status) ~ x + z{strata} + (1 | g) + (1 | h)",
                   weights="w")
    data = CoxData.from_spec(spec, sparse=(5, 0.5))
    assert len(data.sparse_x) == 8 and len(data.dense_x) == 3 + 2
    theta = np.array([0.8, 0.5])
    u, beta = rng.normal(size=data.q), rng.normal(scale=0.5, size=spec.p)
    x = np.r_[u, beta]
    info = dense_information(spec, data, theta, u, beta)
    pen = np.r_[np.ones(data.q), np.zeros(spec.p)]
    obj = CoxmeObjective(data, beta)
    _, grad, H, _ = obj.blocks(theta, x)
    exact = info + np.diag(pen)
    sp, de = data.sparse_x, data.dense_x
    np.testing.assert_allclose(H.d, np.diag(exact)[sp], rtol=1e-10)
    np.testing.assert_allclose(H.C, exact[np.ix_(sp, de)], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H.B, exact[np.ix_(de, de)], rtol=1e-10, atol=1e-12)
    kept = exact.copy()
    kept[np.ix_(sp, sp)] = np.diag(np.diag(exact)[sp])
    np.testing.assert_allclose(H.dense_matrix(), kept, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H.solve(grad), np.linalg.solve(kept, grad), rtol=1e-8)
    v = rng.normal(size=len(x))
    Hv, cross = obj.hvp(theta, x, v)
    np.testing.assert_allclose(Hv, exact @ v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(obj.solve_exact(theta, x, H, v)[0], np.linalg.solve(exact, v),
                               rtol=1e-8, atol=1e-10)
    h = 1e-6                               # ∂/∂θ_k [vᵀ∇ₓ(−PPL)] by central differences
    for k in range(2):
        e = np.eye(2)[k] * h
        num = -(v @ obj.blocks(theta + e, x)[1] - v @ obj.blocks(theta - e, x)[1]) / (2 * h)
        assert cross[k] == pytest.approx(num, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("formula", ["Surv(time, status) ~ x + z + (1 | g)", STRATIFIED])
def test_sparse_fit_equals_the_exact_inner_solution(formula):
    """With sparse levels the mode and ℓ_I are those of a dense Newton with the exact Hessian
    and coxme's ½ log|H̃_uu| (the sparse rule changes the log-determinant only)."""
    df = random_data(2, n=80, groups=10)
    spec = spec_of(df, "efron", formula)
    data = CoxData.from_spec(spec, sparse=(5, 0.5))
    assert len(data.sparse_x) == 10
    theta = np.array([0.7])
    obj = CoxmeObjective(data, fit_coxph(data)["beta"])
    e = obj.evaluate(theta)
    x = np.zeros(data.q + spec.p)
    for _ in range(50):                       # dense Newton on the loops' derivatives
        u, beta = x[:data.q], x[data.q:]
        Z = np.zeros((spec.n, data.q))
        Z[np.arange(spec.n), spec.terms[0].codes] = theta[0]
        eta = Z @ u + spec.X @ beta
        _, g_eta, _ = brute_derivatives(eta, spec.y, spec.status, spec.weights, "efron",
                                        spec.strata)
        g = np.r_[Z.T @ g_eta - u, spec.X.T @ g_eta]
        H = dense_information(spec, data, theta, u, beta) + np.diag(
            np.r_[np.ones(data.q), np.zeros(spec.p)])
        x = x + np.linalg.solve(H, g)
    np.testing.assert_allclose(e["x"], x, rtol=1e-7, atol=1e-9)
    kept = np.diag(np.diag(H)[:data.q])
    assert e["half_logdet"] == pytest.approx(0.5 * np.linalg.slogdet(kept)[1], rel=1e-10)
