"""CLMM leverage and influence (mixedppl.diagnostics.leverage.glmm_hat_diagonal and
influence.glmm_influence_frame on a cumulative-link record).

Leverage: the dense PWLS hat matrix H = A (AᵀWA + diag(I_q, 0))⁻¹ AᵀW with A = [ZΛ, −1, X]
and W_i the Fisher information of η_i written as E[−∂²/∂η² log P(Y = j | η)] (second
differences of the log-probabilities, summed over the categories: not the module's formula).
Influence: each deleted judge / group's warm-started refit equals a fresh clmm fit without it.
Randomized over seeds on small data, and on wine."""

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp

FORMULA = "y ~ x + (1 | g)"


def _ordinal_data(seed: int, n_groups: int = 10, per_group: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=len(g))
    latent = -0.6 * x + rng.normal(0, 1.0, n_groups)[g] + rng.logistic(size=len(g))
    y = np.digitize(latent, [-0.8, 0.4, 1.6])
    return pd.DataFrame({"y": pd.Categorical(y.astype(str), ["0", "1", "2", "3"], ordered=True),
                         "x": x, "g": [f"g{k}" for k in g]})


def _dense_hat(o) -> np.ndarray:
    spec = o.spec
    t = spec.terms[0]
    Z = np.zeros((spec.n, t.n_levels))
    Z[np.arange(spec.n), t.codes] = 1.0
    A = np.hstack([Z * o.theta[0], -np.ones((spec.n, 1)), spec.X])
    eta = o.linear_predictor()
    eta = np.asarray(eta, float)

    def logprob(e):
        return np.log(o.family.prob_np(o.alpha, e, o.link))      # (n, K)

    h = 1e-4
    second = (logprob(eta + h) - 2 * logprob(eta) + logprob(eta - h)) / h ** 2
    W = -(o.family.prob_np(o.alpha, eta, o.link) * second).sum(axis=1)
    M = A.T @ (W[:, None] * A)
    M[:t.n_levels, :t.n_levels] += np.eye(t.n_levels)
    return np.diag(A @ np.linalg.solve(M, A.T * W))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leverage_is_the_dense_pwls_hat(seed):
    o = mp.clmm(FORMULA, _ordinal_data(seed))
    h = o.leverage()
    np.testing.assert_allclose(h, _dense_hat(o), rtol=1e-5, atol=1e-10)
    assert np.all((h > 0) & (h < 1)) and h.sum() < o.spec.q + o.spec.p + 1


def test_wine_leverage_is_the_dense_pwls_hat():
    o = mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))
    np.testing.assert_allclose(o.leverage(), _dense_hat(o), rtol=1e-5, atol=1e-10)


def _check_deletion(o, infl, fresh, case):
    d = o.beta - fresh.beta
    V, p = o.vcov_beta, o.spec.p
    row = infl.loc[case]
    assert row["cooks_d"] == pytest.approx(d @ np.linalg.solve(V, d) / p, rel=2e-3, abs=1e-9)
    assert row["mdffits"] == pytest.approx(d @ np.linalg.solve(fresh.vcov_beta, d) / p,
                                           rel=2e-3, abs=1e-9)
    assert row["covratio"] == pytest.approx(np.linalg.det(fresh.vcov_beta) / np.linalg.det(V),
                                            rel=2e-3)
    rvc = [c for c in infl.columns if c.startswith("rvc_")][0]
    assert row[rvc] == pytest.approx(fresh.theta[0] ** 2 / o.theta[0] ** 2 - 1, rel=2e-3,
                                     abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_group_deletion_matches_fresh_fits(seed):
    data = _ordinal_data(seed)
    o = mp.clmm(FORMULA, data)
    infl = o.influence("g")
    assert list(infl.columns) == ["cooks_d", "mdffits", "covtrace", "covratio",
                                  "rvc_g.var((Intercept))"]
    for case in ("g0", "g7"):
        _check_deletion(o, infl, mp.clmm(FORMULA, data[data["g"] != case]), case)


def test_wine_observation_deletion_matches_a_fresh_fit():
    wine = mp.datasets.load("wine")
    formula = "rating ~ temp + contact + (1 | judge)"
    o = mp.clmm(formula, wine)
    infl = o.influence()
    i = int(np.argmax(infl["cooks_d"].to_numpy()))
    _check_deletion(o, infl, mp.clmm(formula, wine.drop(index=wine.index[i])), infl.index[i])
