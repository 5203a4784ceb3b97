"""GLMM leverage (mixedppl.diagnostics.leverage.glmm_hat_diagonal): the PWLS hat matrix at the
mode with the IRLS weights; lme4's ``hatvalues(glmer)`` (tests/reference/scripts/glmm_boot_hat.R,
a tight refit) is the same quadratic form times the prior weight instead of W_i. Also CLMM
``odds_ratios`` (exp of the Wald interval ends)."""

import numpy as np
from conftest import reference

import mixedppl as mp
from mixedppl.diagnostics.leverage import irls_weights


def test_cbpp_leverage_matches_lme4_hatvalues():
    ref = reference("glmm_boot_hat_cbpp")
    g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 mp.datasets.load("cbpp"))
    h = g.leverage()
    W = irls_weights(g.record)
    np.testing.assert_allclose(W, g.trials * g.mu * (1 - g.mu), rtol=1e-8)   # logit: nμ(1−μ)
    np.testing.assert_allclose(h * g.trials / W, ref["hatvalues"], rtol=1e-5)
    assert np.all((h > 0) & (h < 1))
    assert h.sum() < g.spec.q + g.spec.p


def test_poisson_leverage_is_the_dense_pwls_hat():
    fit = mp.glmer("TICKS ~ YEAR + (1 | BROOD)", mp.datasets.load("grouseticks"),
                   family="poisson")
    spec = fit.spec
    # dense: A = [ZΛ, X], W = μ (log link), H = A (AᵀWA + diag(I, 0))⁻¹ AᵀW
    t = spec.terms[0]
    Z = np.zeros((spec.n, t.n_levels))
    Z[np.arange(spec.n), t.codes] = 1.0
    A = np.hstack([Z * fit.theta[0], spec.X])
    W = fit.mu
    M = A.T @ (W[:, None] * A)
    M[:t.n_levels, :t.n_levels] += np.eye(t.n_levels)
    H = A @ np.linalg.solve(M, A.T * W)
    np.testing.assert_allclose(fit.leverage(), np.diag(H), rtol=1e-6, atol=1e-12)


def test_clmm_odds_ratios():
    o = mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))
    table = o.odds_ratios()
    np.testing.assert_allclose(table["estimate"], np.exp(o.beta), rtol=1e-12)
    np.testing.assert_allclose(table.iloc[:, 1:], np.exp(o.confint().loc[o.spec.fe_names]),
                               rtol=1e-12)
    assert list(table.index) == o.spec.fe_names
