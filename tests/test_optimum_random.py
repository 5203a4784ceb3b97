"""Every fit reaches the true optimum: randomized data against independent answers.

For many small simulated datasets each fit's estimates are put into an *independent* objective
(tests/independent.py: a dense NumPy profiled deviance for LMMs, the exact marginal deviance by
fixed-grid trapezoid quadrature for GLMMs and CLMMs with one random intercept, a dense per-group
Laplace deviance for the Laplace GLMM), and compared with that objective's own brute-force
minimum (grid + local refinement). The criterion is the deviance, not θ (flat optima): a fit is at
the optimum when the independent deviance at its estimates is at most 1e-6 above the brute-force
minimum. The designs include the cases that ended at θ = 0 with ``converged=True`` before the
boundary probe (mixedppl.fit.optimize.leave_boundary): on the same generators, before → after,
random intercept REML 164 → 200 of 200.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from independent import (DenseLMM, binomial_loglik, brute_minimum, brute_minimum_glmm,
                         cumulative_logit_loglik, exact_deviance, laplace_deviance,
                         poisson_loglik)

TOL = 1e-6
THETA_GRID = np.concatenate([[0.0], np.geomspace(0.02, 4.0, 15)])


def _quiet_fit(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# LMM

def lmm_data(kind: str, seed: int) -> tuple[str, pd.DataFrame]:
    """Small simulated designs; group SDs small enough that θ = 0 is often tempting."""
    r = np.random.default_rng(seed)
    if kind == "intercept":        # the issue's design: 10 groups × 6, SD 1, residual SD 1.5
        g = np.repeat(np.arange(10), 6)
        y = 1.0 * r.normal(size=10)[g] + 1.5 * r.normal(size=60)
        return "y ~ 1 + (1 | g)", pd.DataFrame({"y": y, "g": g.astype(str)})
    if kind == "x_intercept":      # 30 groups × 8
        g = np.repeat(np.arange(30), 8)
        x = r.normal(size=240)
        y = 0.5 * x + 0.4 * r.normal(size=30)[g] + 1.5 * r.normal(size=240)
        return "y ~ x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    if kind == "slope":            # correlated intercept and slope, 12 groups × 6
        g = np.repeat(np.arange(12), 6)
        x = r.normal(size=72)
        b0, b1 = 0.6 * r.normal(size=12), 0.4 * r.normal(size=12)
        y = 1 + 0.5 * x + b0[g] + b1[g] * x + r.normal(size=72)
        return "y ~ x + (x | g)", pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    if kind == "uncorrelated":     # (x || g): two diagonal θ of one factor
        g = np.repeat(np.arange(12), 6)
        x = r.normal(size=72)
        y = 1 + 0.5 * x + 0.5 * r.normal(size=12)[g] + 0.3 * r.normal(size=12)[g] * x \
            + r.normal(size=72)
        return "y ~ x + (x || g)", pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    if kind == "crossed":          # 8 × 6 fully crossed
        a, b = np.repeat(np.arange(8), 6), np.tile(np.arange(6), 8)
        y = 0.5 * r.normal(size=8)[a] + 0.3 * r.normal(size=6)[b] + r.normal(size=48)
        return "y ~ 1 + (1 | a) + (1 | b)", pd.DataFrame({"y": y, "a": a.astype(str),
                                                            "b": b.astype(str)})
    if kind == "weighted":         # prior weights, unbalanced groups
        sizes = r.integers(2, 9, size=12)
        g = np.repeat(np.arange(12), sizes)
        n = len(g)
        w = r.integers(1, 30, size=n).astype(float)
        y = 0.2 * r.normal(size=12)[g] + r.normal(size=n) / np.sqrt(w)
        return "y ~ 1 + (1 | g)", pd.DataFrame({"y": y, "w": w, "g": g.astype(str)})
    raise ValueError(kind)


LMM_CASES = ([("intercept", s, True) for s in range(40)]
             + [("intercept", s, False) for s in range(40, 55)]
             + [("x_intercept", s, True) for s in range(8)]
             + [("slope", s, True) for s in range(6)]
             + [("slope", s, False) for s in range(6, 9)]
             + [("uncorrelated", s, True) for s in range(6)]
             + [("crossed", s, True) for s in range(6)]
             + [("weighted", s, True) for s in range(6)])


@pytest.mark.parametrize("kind,seed,reml", LMM_CASES)
def test_lmm_reaches_the_dense_optimum(kind, seed, reml):
    formula, data = lmm_data(kind, seed)
    weights = "w" if kind == "weighted" else None
    fit = _quiet_fit(mp.lmer, formula, data, reml=reml, weights=weights)
    dense = DenseLMM(fit.spec, reml=reml)
    best, best_theta = brute_minimum(dense, fit.spec)
    ours = dense(np.asarray(fit.theta))
    assert ours <= best + TOL, (f"{kind} seed {seed}: deviance {ours:.8f} at θ̂={fit.theta} vs "
                                f"{best:.8f} at θ={best_theta}")
    assert fit.converged


MIXED_FORMULAS = ("y ~ x + (1 | g)", "y ~ x + (x | g)", "y ~ x + (x || g)",
                  "y ~ 1 + (1 | g) + (1 | h)", "y ~ x + (1 | g) + (0 + x | g)")


def mixed_design(seed: int) -> tuple[str, bool, pd.DataFrame]:
    """Unbalanced groups (1–8 rows, 4–13 groups), random SDs in [0, 1.2], one of five random
    structures, REML or ML — the generator of the stress runs (300 designs each) in the note."""
    r = np.random.default_rng(1000 + seed)
    G = int(r.integers(4, 14))
    g = np.repeat(np.arange(G), r.integers(1, 9, size=G))
    n = len(g)
    x = r.normal(size=n)
    h = r.integers(0, int(r.integers(3, 7)), size=n)
    sd = r.uniform(0, 1.2, size=3)
    y = (1 + 0.5 * x + sd[0] * r.normal(size=G)[g] + sd[1] * r.normal(size=G)[g] * x
         + sd[2] * r.normal(size=10)[h] + r.normal(size=n))
    return (MIXED_FORMULAS[seed % 5], bool(seed % 3),
            pd.DataFrame({"y": y, "x": x, "g": g.astype(str), "h": h.astype(str)}))


# 19: an interior local minimum beside the global one at θ = 0 (two terms on one factor);
# 66: (T11, T21) = (0, 0.30) where (0.12, −0.28) is lower (the mirrored column opens onto it);
# 147: (x || g) with two boundary optima, (0.31, 0) and (0, 0.28).
@pytest.mark.parametrize("seed", [19, 66, 147] + list(range(20, 40)))
def test_lmm_mixed_designs_reach_the_dense_optimum(seed):
    formula, reml, data = mixed_design(seed)
    if len(data) < 8:
        pytest.skip("fewer than 8 rows")
    fit = _quiet_fit(mp.lmer, formula, data, reml=reml)
    dense = DenseLMM(fit.spec, reml=reml)
    best, best_theta = brute_minimum(dense, fit.spec)
    ours = dense(np.asarray(fit.theta))
    assert ours <= best + TOL, (f"{formula} seed {seed}: deviance {ours:.8f} at θ̂={fit.theta} "
                                f"vs {best:.8f} at θ={best_theta}")


def test_dense_objective_equals_ours_up_to_its_constant():
    """The dense deviance and the blocked graph differ by a constant in θ (Σ log w, REML's
    convention), so the comparison above is about location, not scaling."""
    formula, data = lmm_data("weighted", 3)
    m = mp.Model(formula, data, weights="w")
    obj = m.objective(reml=True)
    dense = DenseLMM(m.spec, reml=True)
    diffs = [obj(np.array([t]))[0] - dense(np.array([t])) for t in (0.0, 0.3, 1.7)]
    assert np.ptp(diffs) < 1e-8


def test_issue_example_random_intercept_is_inside():
    """10 × 6 random intercept data where the old fit stopped at θ = 0: the REML optimum is
    interior and equals the closed form for balanced data, σ_b² = (MSB − MSW)/m."""
    found = 0
    for seed in range(40):
        formula, data = lmm_data("intercept", seed)
        groups = data.groupby("g")["y"]
        msw = float(((data["y"] - groups.transform("mean")) ** 2).sum() / (60 - 10))
        msb = float(6 * ((groups.mean() - data["y"].mean()) ** 2).sum() / 9)
        if msb <= msw:
            continue
        fit = _quiet_fit(mp.lmer, formula, data)
        found += 1
        assert fit.sigma ** 2 == pytest.approx(msw, rel=1e-6)
        assert (fit.theta[0] * fit.sigma) ** 2 == pytest.approx((msb - msw) / 6, rel=1e-5)
        assert not fit.is_singular
    assert found > 20


def test_cbpp_proportions_weighted_lmm_is_not_singular():
    """The issue's case: lmer(prop ~ period + (1 | herd), weights = size) on cbpp; R gives
    θ = 0.1437 and a log-likelihood 0.83 above the θ = 0 fit."""
    cbpp = mp.datasets.load("cbpp").assign(prop=lambda d: d["incidence"] / d["size"])
    fit = _quiet_fit(mp.lmer, "prop ~ period + (1 | herd)", cbpp, weights="size")
    dense = DenseLMM(fit.spec, reml=True)
    best, _ = brute_minimum(dense, fit.spec)
    assert dense(np.asarray(fit.theta)) <= best + TOL
    assert fit.theta[0] == pytest.approx(0.1437, abs=5e-4)
    assert not fit.is_singular


def test_truly_singular_fit_stays_on_the_boundary():
    """Where the optimum is θ = 0 (no group effect, MSB < MSW), the fit stays exactly at 0."""
    r = np.random.default_rng(11)
    g = np.repeat(np.arange(10), 6)
    y = r.normal(size=60)
    y -= pd.Series(y).groupby(g).transform("mean").to_numpy() * 0.9   # shrink group means
    fit = _quiet_fit(mp.lmer, "y ~ 1 + (1 | g)", pd.DataFrame({"y": y, "g": g}))
    assert fit.theta[0] == 0.0
    assert fit.is_singular


def test_flat_deviance_warns_variance_not_identified():
    """3 rows in 2 groups with a slope: REML has n − p = 1 degree of freedom for σ² and θ, and
    the deviance of y ~ x + (1 | g) does not depend on θ (checked on a grid)."""
    d = pd.DataFrame({"y": [1.0, 2.5, 0.3], "x": [0.1, 0.7, 0.2], "g": ["a", "a", "b"]})
    dense = DenseLMM(mp.Model("y ~ x + (1 | g)", d).spec, reml=True)
    assert np.ptp([dense(np.array([t])) for t in (0.0, 0.5, 3.0)]) < 1e-9
    with pytest.warns(mp.IdentifiabilityWarning, match="g.\\(Intercept\\)"):
        mp.lmer("y ~ x + (1 | g)", d)
    fit = _quiet_fit(mp.lmer, "y ~ 1 + (1 | g)", d)       # identified (weakly): no warning
    assert fit.opt.flat == ()


# --------------------------------------------------------------------------------------------
# GLMM and CLMM: one scalar random intercept

def glmm_data(family: str, seed: int, groups: int = 15, per_group: int = 8,
              sd: float = 0.3) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = r.normal(size=len(g))
    eta = -0.3 + 0.5 * x + sd * r.normal(size=groups)[g]
    if family == "binomial":
        y = (r.uniform(size=len(g)) < 1 / (1 + np.exp(-eta))).astype(float)
    else:
        y = r.poisson(np.exp(eta + 0.6)).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})



def _exact_pieces(fit, family):
    spec = fit.spec
    y = spec.y.astype(float)
    codes, G = spec.terms[0].codes, spec.terms[0].n_levels
    ll = binomial_loglik(y, np.ones_like(y)) if family == "binomial" else poisson_loglik(y)
    return spec.X, codes, G, ll, y


@pytest.mark.parametrize("family,seed", [("binomial", s) for s in range(4)]
                         + [("poisson", s) for s in range(4)])
def test_glmm_agq_reaches_the_exact_marginal_optimum(family, seed):
    """nAGQ = 15 against the exact marginal deviance (trapezoid rule on a fixed grid)."""
    data = glmm_data(family, seed)
    fit = _quiet_fit(mp.glmer, "y ~ x + (1 | g)", data, family=family, nAGQ=15)
    X, codes, G, ll, _ = _exact_pieces(fit, family)

    def dev(theta, beta):
        return exact_deviance(ll, codes, G, X @ beta, theta)

    best, theta_b, _ = brute_minimum_glmm(dev, np.zeros(X.shape[1]), THETA_GRID)
    ours = dev(float(fit.theta[0]), np.asarray(fit.beta))
    assert ours == pytest.approx(-2 * fit.loglik, abs=1e-3)   # AGQ(15) ≈ exact here
    assert ours <= best + TOL, f"seed {seed}: {ours} at θ={fit.theta[0]} vs {best} at {theta_b}"


@pytest.mark.parametrize("family,seed", [("binomial", s) for s in range(10, 14)]
                         + [("poisson", s) for s in range(10, 13)])
def test_glmm_laplace_reaches_the_dense_laplace_optimum(family, seed):
    """nAGQ = 1 against lme4's Laplace deviance written densely (per-group Newton)."""
    data = glmm_data(family, seed, groups=20, per_group=10, sd=0.25)
    fit = _quiet_fit(mp.glmer, "y ~ x + (1 | g)", data, family=family)
    X, codes, G, _, y = _exact_pieces(fit, family)
    ntr = np.ones_like(y)

    def dev(theta, beta):
        return laplace_deviance(y, ntr, family, codes, G, X @ beta, theta)

    best, theta_b, _ = brute_minimum_glmm(dev, np.zeros(X.shape[1]), THETA_GRID)
    ours = dev(float(fit.theta[0]), np.asarray(fit.beta))
    assert ours <= best + TOL, f"seed {seed}: {ours} at θ={fit.theta[0]} vs {best} at {theta_b}"


def clmm_data(seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    g = np.repeat(np.arange(10), 8)
    x = r.normal(size=80)
    latent = 0.8 * x + 0.4 * r.normal(size=10)[g] + r.logistic(size=80)
    y = np.digitize(latent, [-0.6, 0.8])
    return pd.DataFrame({"y": pd.Categorical(y, categories=[0, 1, 2], ordered=True), "x": x,
                         "g": g.astype(str)})


@pytest.mark.parametrize("seed", range(3))
def test_clmm_agq_reaches_the_exact_marginal_optimum(seed):
    """Cumulative logit with one random intercept, nAGQ = 10, against exact quadrature.

    Thresholds α enter as (α₁, log(α₂ − α₁)) so the brute-force search is unconstrained."""
    data = clmm_data(seed)
    fit = _quiet_fit(mp.clmm, "y ~ x + (1 | g)", data, nAGQ=10)
    spec = fit.spec
    codes, G = spec.terms[0].codes, spec.terms[0].n_levels
    ll = cumulative_logit_loglik(data["y"].cat.codes.to_numpy(), 3)

    def dev(theta, par):
        alpha = np.cumsum([par[0], np.exp(par[1])])
        return exact_deviance(lambda eta: ll(eta, alpha), codes, G, spec.X @ par[2:], theta)

    alpha = np.asarray(fit.thresholds)
    ours_par = np.concatenate([[alpha[0], np.log(alpha[1] - alpha[0])], np.asarray(fit.fe_params)])
    ours = dev(float(fit.theta[0]), ours_par)
    assert ours == pytest.approx(-2 * fit.loglik, abs=1e-3)
    best, theta_b, _ = brute_minimum_glmm(dev, np.array([-0.5, 0.0, 0.0]), THETA_GRID)
    assert ours <= best + TOL, f"seed {seed}: {ours} at θ={fit.theta[0]} vs {best} at {theta_b}"


def test_glmm_stopping_just_above_zero_is_probed_too():
    """A Poisson AGQ fit whose L-BFGS-B stopped at θ = 2e-8 (gradient 2cθ ≈ 0 near the even
    point, not on the bound) while the exact optimum is at θ ≈ 0.075, 0.013 deviance lower:
    coordinates within 1e-4 of the bound are probed as if on it."""
    r = np.random.default_rng(1)
    g = np.repeat(np.arange(15), 6)
    x = r.normal(size=90)
    y = r.poisson(np.exp(0.3 + 0.4 * x + 0.3 * r.normal(size=15)[g])).astype(float)
    data = pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    fit = _quiet_fit(mp.glmer, "y ~ x + (1 | g)", data, family="poisson", nAGQ=15)
    X, codes, G, ll, _ = _exact_pieces(fit, "poisson")

    def dev(theta, beta):
        return exact_deviance(ll, codes, G, X @ beta, theta)

    best, theta_b, _ = brute_minimum_glmm(dev, np.zeros(2), THETA_GRID)
    assert theta_b > 0.05
    assert dev(float(fit.theta[0]), np.asarray(fit.beta)) <= best + TOL
    assert not fit.is_singular


def test_glmm_singular_fit_is_exactly_zero():
    """Where the optimum is on the boundary, the GLMM θ is exactly 0 (lme4's check.boundary)."""
    r = np.random.default_rng(8)                       # no group effect simulated
    g = np.repeat(np.arange(12), 10)
    x = r.normal(size=120)
    y = r.poisson(np.exp(0.2 + 0.3 * x)).astype(float)
    fits = [_quiet_fit(mp.glmer, "y ~ x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": g}),
                       family="poisson", nAGQ=k) for k in (0, 1)]
    X, codes, G, _, yy = _exact_pieces(fits[1], "poisson")
    dev = lambda t, b: laplace_deviance(yy, np.ones_like(yy), "poisson", codes, G, X @ b, t)  # noqa: E731
    best, theta_b, _ = brute_minimum_glmm(dev, np.zeros(2), THETA_GRID)
    assert theta_b == 0.0
    for f in fits:
        assert f.theta[0] == 0.0 and f.is_singular
    assert dev(float(fits[1].theta[0]), np.asarray(fits[1].beta)) <= best + TOL
