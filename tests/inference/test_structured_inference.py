"""Structured random terms (diag / cs / ar1 / toep) in the bootstrap, profiles and update().

- bootstrap: every replicate equals a fresh fit (``mp.lmer`` / ``mp.glmer`` from scratch) of
  the simulated response, 3 seeds, on the structure's natural parameters ψ (SDs, ρ);
- profile: at each end the ML deviance refitted with that parameter held fixed (an
  independent Nelder–Mead over the other parameters of the dense Gaussian likelihood written
  out below, β by GLS) is 3.8415 (χ²₁ 0.95) above the minimum, to 1e-4 (ζ² to 1e-3 relative);
- update(): adding or removing a structured term gives the fit of the new formula.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import mixedppl as mp
from mixedppl.inference.bootstrap import bootstrap_params, glmm_bootstrap_params
from mixedppl.inference.profile import theta_to_psi
from mixedppl.inference.simulate import simulate_counts, simulate_responses


def _long(seed: int, n_sub: int = 16, n_t: int = 4, reps: int = 2) -> pd.DataFrame:
    """Two replicates per subject and time: the term and the residual are both identified
    (with one, a bootstrap likelihood can have optima at ρ = 1 and ρ = −1 alike)."""
    rng = np.random.default_rng(seed)
    d = pd.DataFrame([(f"s{i:02d}", t) for i in range(n_sub) for t in range(1, n_t + 1)
                      for _ in range(reps)], columns=["subject", "time"])
    d["times"] = pd.Categorical(d["time"].astype(str))
    d["x"] = rng.normal(size=len(d))
    lag = np.abs(np.subtract.outer(np.arange(n_t), np.arange(n_t)))
    b = rng.multivariate_normal(np.zeros(n_t), 1.2 * 0.6 ** lag, n_sub).ravel()
    b = b[np.arange(n_sub * n_t).repeat(reps)]
    d["y"] = 1 + 0.5 * d["x"] + b + rng.normal(scale=0.6, size=len(d))
    d["count"] = rng.poisson(np.exp(0.3 + 0.4 * d["x"] + 0.5 * b))
    return d


LMM_CASES = {
    "ar1": "y ~ x + ar1(times + 0 | subject)",
    "cs": "y ~ x + cs(times + 0 | subject)",
    "diag": "y ~ x + (1 | subject) + diag(times + 0 | subject)",
}


@pytest.mark.parametrize("case", list(LMM_CASES))
@pytest.mark.parametrize("reml", [True, False])
def test_lmm_bootstrap_replicates_are_fresh_fits(case, reml):
    formula = LMM_CASES[case]
    d = _long(1)
    fit = mp.lmer(formula, d, reml=reml)
    for seed in (1, 2, 3):
        reps = bootstrap_params(fit.record, nsim=2, seed=seed)
        Y = simulate_responses(fit.record, 2, seed=seed)
        assert list(reps.columns[:2]) == (["sd_ar1|subject", "cor_ar1|subject"] if case == "ar1"
                                          else list(reps.columns[:2]))
        for k in range(2):
            fresh = mp.lmer(formula, d.assign(y=Y[:, k]), reml=reml,
                            control={"check_singular": "ignore"})
            want = np.concatenate([theta_to_psi(fresh.spec, fresh.theta, fresh.sigma),
                                   fresh.fe_params.to_numpy()])
            np.testing.assert_allclose(reps.iloc[k].to_numpy(), want, rtol=2e-4, atol=2e-4)


def test_ar1_bootstrap_psi_is_varcorr():
    """ψ of an ar1 term is (σ·sd, ρ): varcorr's SD rows and its lag-1 correlation."""
    d = _long(2)
    fit = mp.lmer(LMM_CASES["ar1"], d)
    psi = theta_to_psi(fit.spec, fit.theta, fit.sigma)
    vc = fit.varcorr
    sd_rows = vc[(vc["grp"] == "subject") & vc["var2"].isna()]
    cor = vc[(vc["var1"] == "times1") & (vc["var2"] == "times2")]
    np.testing.assert_allclose(psi[0], sd_rows["sdcor"].iloc[0], rtol=1e-12)
    np.testing.assert_allclose(psi[1], cor["sdcor"].iloc[0], rtol=1e-12)


def test_poisson_ar1_bootstrap_replicates_are_fresh_fits():
    formula = "count ~ x + ar1(times + 0 | subject)"
    d = _long(3)
    fit = mp.glmer(formula, d, family="poisson")
    for seed in (1, 2, 3):
        reps = glmm_bootstrap_params(fit.record, nsim=2, seed=seed)
        assert list(reps.columns[:2]) == ["sd_ar1|subject", "cor_ar1|subject"]
        y = simulate_counts(fit.record, 2, seed=seed)[:, 0]
        fresh = mp.glmer(formula, d.assign(count=y), family="poisson",
                         control={"check_singular": "ignore"})
        want = np.concatenate([theta_to_psi(fresh.spec, fresh.theta, 1.0)[:-1],
                               fresh.fe_params.to_numpy()])
        np.testing.assert_allclose(reps.iloc[0].to_numpy(), want, rtol=1e-4, atol=1e-4)


# -- profiles against a dense likelihood written out here ------------------------------------
CHI2_95 = 3.841458820694124


def _dense_ml(d: pd.DataFrame, structure: str):
    """ψ → −2 log L of ``y ~ x + <structure>(times + 0 | subject)`` (ML), β by GLS or with
    one β_j held; ψ = (SDs, ρ, σ) on their natural scales (ar1: one SD, R = ρ^|i−j|; cs: an SD
    per time, R_ij = ρ), V_g = Z_g Σ Z_gᵀ + σ² I per subject. Nothing of mixedppl is used."""
    y = d["y"].to_numpy()
    X = np.column_stack([np.ones(len(d)), d["x"]])
    times = d["time"].to_numpy() - 1
    groups = [np.flatnonzero(d["subject"].to_numpy() == s) for s in d["subject"].unique()]
    ell = int(times.max()) + 1
    lag = np.abs(np.subtract.outer(np.arange(ell), np.arange(ell)))

    def dev(psi, fixed_beta=None):
        if structure == "ar1":
            sd, rho = np.full(ell, psi[0]), psi[1]
            R = rho ** lag
        else:
            sd, rho = np.asarray(psi[:ell]), psi[ell]
            R = np.where(lag == 0, 1.0, rho)
        S, s2 = np.outer(sd, sd) * R, psi[-1] ** 2
        Vinv, ld = [], 0.0
        for rows in groups:
            Zg = np.eye(ell)[times[rows]]
            V = Zg @ S @ Zg.T + s2 * np.eye(len(rows))
            sign, logdet = np.linalg.slogdet(V)
            if sign <= 0:
                return np.inf
            ld += logdet
            Vinv.append(np.linalg.inv(V))
        r = y.copy()
        cols = list(range(X.shape[1]))
        if fixed_beta is not None:
            j, b = fixed_beta
            r = r - X[:, j] * b
            cols.remove(j)
        Xf = X[:, cols]
        A = sum(Xf[rw].T @ Vi @ Xf[rw] for rw, Vi in zip(groups, Vinv))
        c = sum(Xf[rw].T @ Vi @ r[rw] for rw, Vi in zip(groups, Vinv))
        beta = np.linalg.solve(A, c)
        e = r - Xf @ beta
        q = sum(e[rw] @ Vi @ e[rw] for rw, Vi in zip(groups, Vinv))
        return ld + q + len(y) * np.log(2 * np.pi)
    return dev


def _to_free(structure: str, ell: int):
    """Unconstrained coordinates for the dense minimiser: log SDs / σ, ρ by atanh (ar1) or a
    logit onto (−1/(ℓ − 1), 1) (cs)."""
    a = 1.0 / (ell - 1)

    def fwd(psi):
        psi = np.asarray(psi, float)
        k = 1 if structure == "ar1" else ell
        rho = psi[k]
        u = np.arctanh(rho) if structure == "ar1" else np.log((rho + a) / (1 - rho))
        return np.concatenate([np.log(psi[:k]), [u], [np.log(psi[-1])]])

    def inv(v):
        k = 1 if structure == "ar1" else ell
        u = v[k]
        rho = np.tanh(u) if structure == "ar1" else (np.exp(u) - a) / (1 + np.exp(u))
        return np.concatenate([np.exp(v[:k]), [rho], [np.exp(v[-1])]])
    return fwd, inv


def _held_min(dev, fwd, inv, psi0, k=None, x=None, beta=None):
    """min of dev over ψ with ψ_k = x (or β_j = b), by Nelder–Mead then Powell from ψ0."""
    v0 = fwd(psi0)
    free = np.ones(len(v0), bool)
    if k is not None:
        free[k] = False

    def f(u):
        v = v0.copy()
        v[free] = u
        psi = inv(v)
        if k is not None:
            psi[k] = x
        return dev(psi, beta)
    best = optimize.minimize(f, v0[free], method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 40000,
                                      "maxfev": 40000})
    best = optimize.minimize(f, best.x, method="Powell", options={"xtol": 1e-10, "ftol": 1e-14})
    return float(best.fun)


@pytest.mark.parametrize("structure", ["ar1", pytest.param("cs", marks=pytest.mark.slow)])
def test_lmm_profile_ends_are_the_lrt_drop(structure):
    """Every end of profile_confint (REML fit: lme4 profiles the ML deviance) is where the
    dense ML deviance with that parameter held, the rest re-minimised, rises by χ²₁(0.95) =
    3.8415 (to 1e-4); the names are the structure's (sd_ar1|subject, cor_ar1|subject, …)."""
    from mixedppl.inference.profile import profile_confint
    d = _long(1)
    fit = mp.lmer(f"y ~ x + {structure}(times + 0 | subject)", d)
    ci = profile_confint(fit.record, progress=False)
    ell = 4
    names = (["sd_ar1|subject", "cor_ar1|subject"] if structure == "ar1" else
             [f"sd_times{k}|subject" for k in range(1, ell + 1)] + ["cor_cs|subject"])
    assert list(ci.index) == names + ["sigma", "(Intercept)", "x"]
    dev = _dense_ml(d, structure)
    fwd, inv = _to_free(structure, ell)
    ml = mp.lmer(f"y ~ x + {structure}(times + 0 | subject)", d, reml=False)
    psi_hat = theta_to_psi(ml.spec, ml.theta, ml.sigma)
    d_min = _held_min(dev, fwd, inv, psi_hat)
    np.testing.assert_allclose(d_min, -2 * ml.loglik, rtol=1e-9)
    nv = len(psi_hat)
    for k, name in enumerate(ci.index):
        for x in ci.loc[name]:
            if k < nv:
                rise = _held_min(dev, fwd, inv, psi_hat, k=k, x=x) - d_min
            else:
                rise = _held_min(dev, fwd, inv, psi_hat, beta=(k - nv, x)) - d_min
            assert abs(rise - CHI2_95) < 1e-4, (name, x, rise)


# -- influence --------------------------------------------------------------------------------
@pytest.mark.parametrize("glmm", [False, True])
def test_influence_rows_are_fresh_fits_without_the_case(glmm):
    """level="subject": Cook's D and the relative variance changes of an ar1 term from the
    refits equal those computed from fresh fits of the data without that subject."""
    from mixedppl.diagnostics.influence import glmm_influence_frame, influence_frame
    d = _long(2)
    if glmm:
        formula = "count ~ x + ar1(times + 0 | subject)"
        fit = mp.glmer(formula, d, family="poisson")
        infl = glmm_influence_frame(fit.record, level="subject")
    else:
        formula = "y ~ x + ar1(times + 0 | subject)"
        fit = mp.lmer(formula, d)
        infl = influence_frame(fit.record, level="subject")
    rvc = [c for c in infl.columns if c.startswith("rvc_")]
    assert rvc[:2] == ["rvc_subject.var(ar1)", "rvc_subject.cor_ar1"]
    beta, V = fit.fe_params.to_numpy(), np.asarray(fit.record.vcov_beta)

    def comps(f):
        psi = theta_to_psi(f.spec, f.theta, 1.0 if glmm else f.sigma)
        out = [psi[0] ** 2, psi[1]]
        return np.array(out if glmm else out + [f.sigma ** 2])
    vc = comps(fit)
    for s in ["s00", "s05", "s11"]:
        rest = d[d["subject"] != s]
        fresh = (mp.glmer(formula, rest, family="poisson") if glmm
                 else mp.lmer(formula, rest))
        diff = beta - fresh.fe_params.to_numpy()
        cooks = diff @ np.linalg.solve(V, diff) / len(beta)
        np.testing.assert_allclose(infl.loc[s, "cooks_d"], cooks, rtol=1e-4, atol=1e-8)
        np.testing.assert_allclose(infl.loc[s, rvc].to_numpy(float), comps(fresh) / vc - 1,
                                   rtol=1e-4, atol=1e-6)


# -- update() ---------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::mixedppl.SingularFitWarning")
@pytest.mark.parametrize("glmm", [False, True])
def test_update_adds_and_removes_a_structured_term(glmm):
    """``. ~ . + ar1(times + 0 | subject)`` and ``. ~ . - ar1(times + 0 | subject)`` (as
    written, or with spaces / order of the lhs changed) give the fits of the new formulas; a
    term that is not in the model cannot be removed (the error names the model's terms)."""
    d = _long(4)
    resp = "count" if glmm else "y"

    def fit(f):
        return mp.glmer(f, d, family="poisson") if glmm else mp.lmer(f, d)
    base = fit(f"{resp} ~ x + (1 | subject)")
    full = fit(f"{resp} ~ x + (1 | subject) + cs(times + 0 | subject)")
    added = base.update(". ~ . + cs(times + 0 | subject)")
    np.testing.assert_allclose(added.loglik, full.loglik, rtol=1e-10)
    assert [t.structure for t in added.spec.terms] == ["us", "cs"]
    again = added.update(". ~ . + cs(times + 0 | subject)")     # already there: unchanged
    assert len(again.spec.terms) == 2
    removed = full.update(". ~ . - cs(0+times | subject)")
    np.testing.assert_allclose(removed.loglik, base.loglik, rtol=1e-10)
    assert [t.structure for t in removed.spec.terms] == ["us"]
    with pytest.raises(mp.ModelSpecError, match="cannot remove 'ar1"):
        full.update(". ~ . - ar1(times + 0 | subject)")


# -- Kenward–Roger ----------------------------------------------------------------------------
def test_kr_diag_matches_pbkrtest():
    """diag(Days | Subject) is lme4's (Days || Subject): vcovAdj, Lb_ddf and KRmodcomp of
    pbkrtest 0.5.2 (tests/reference/kr_structured_diag.json, scripts/kr_structured_diag.R)."""
    from conftest import reference
    from mixedppl.inference.kenward_roger import kr_adjusted, kr_coefficient_ddf
    ref = reference("kr_structured_diag")
    fit = mp.lmer("Reaction ~ Days + diag(Days | Subject)", mp.datasets.load("sleepstudy"))
    np.testing.assert_allclose(fit.fe_params.to_numpy(), ref["beta"], rtol=1e-6)
    adj = kr_adjusted(fit.record)
    np.testing.assert_allclose(adj.phi_adj, ref["vcov_adj"], rtol=1e-4)
    np.testing.assert_allclose(kr_coefficient_ddf(adj), ref["coef_ddf"], rtol=1e-4)
    a = fit.anova(ddf="Kenward-Roger").loc["Days"]
    np.testing.assert_allclose(a["F value"], ref["F"], rtol=1e-4)
    np.testing.assert_allclose(a["DenDF"], ref["ddf"], rtol=1e-4)


def _dense_kr(d: pd.DataFrame, structure: str, gamma: np.ndarray, sigma2: float):
    """Kenward & Roger (1997) from their paper's formulas on dense matrices: V(γ) written out
    per subject (ar1: v·ρ^|i−j|; cs: s_a s_b (ρ + (1 − ρ)δ_ab), s² = v), ∂V/∂γ and ∂²V/∂γ²
    by central differences, the REML expected information, Φ_A with the −¼R_ij term, and the
    df of each coefficient (q = 1)."""
    X = np.column_stack([np.ones(len(d)), d["x"]])
    times = d["time"].to_numpy() - 1
    subj = d["subject"].to_numpy()
    ell = int(times.max()) + 1
    lag = np.abs(np.subtract.outer(np.arange(ell), np.arange(ell)))
    same = subj[:, None] == subj[None, :]
    Zt = np.eye(ell)[times]

    def V(g):
        if structure == "ar1":
            S = g[0] * g[1] ** lag
        else:
            s = np.sqrt(g[:ell])
            S = np.outer(s, s) * np.where(lag == 0, 1.0, g[ell])
        return same * (Zt @ S @ Zt.T) + g[-1] * np.eye(len(d))
    g0 = np.append(gamma, sigma2)
    m = len(g0)
    h = 1e-4 * np.maximum(np.abs(g0), 1e-2)
    G = []
    for r in range(m):
        e = np.zeros(m)
        e[r] = h[r]
        G.append((V(g0 + e) - V(g0 - e)) / (2 * h[r]))
    H = {}
    for r in range(m):
        for s in range(m):
            er, es = np.zeros(m), np.zeros(m)
            er[r], es[s] = h[r], h[s]
            H[r, s] = (V(g0 + er + es) - V(g0 + er - es) - V(g0 - er + es)
                       + V(g0 - er - es)) / (4 * h[r] * h[s])
    Vi = np.linalg.inv(V(g0))
    Phi = np.linalg.inv(X.T @ Vi @ X)
    P = [-X.T @ Vi @ Gr @ Vi @ X for Gr in G]
    Q = [[X.T @ Vi @ G[r] @ Vi @ G[s] @ Vi @ X for s in range(m)] for r in range(m)]
    R = {k: X.T @ Vi @ Hk @ Vi @ X for k, Hk in H.items()}
    info = np.array([[0.5 * (np.trace(Vi @ G[r] @ Vi @ G[s]) - 2 * np.trace(Phi @ Q[r][s])
                             + np.trace(Phi @ P[r] @ Phi @ P[s])) for s in range(m)]
                     for r in range(m)])
    W = np.linalg.inv(info)
    U = sum(W[r, s] * (Q[r][s] - P[r] @ Phi @ P[s] - 0.25 * R[r, s])
            for r in range(m) for s in range(m))
    Phi_A = Phi + 2 * Phi @ U @ Phi
    ddf = []
    for j in range(X.shape[1]):
        L = np.eye(X.shape[1])[j:j + 1]
        q = 1
        Th = L.T @ np.linalg.inv(L @ Phi @ L.T) @ L
        A1 = sum(W[a, b] * np.trace(Th @ Phi @ P[a] @ Phi) * np.trace(Th @ Phi @ P[b] @ Phi)
                 for a in range(m) for b in range(m))
        A2 = sum(W[a, b] * np.trace(Th @ Phi @ P[a] @ Phi @ Th @ Phi @ P[b] @ Phi)
                 for a in range(m) for b in range(m))
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        den = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
        E = 1 / (1 - A2 / q)
        Vs = (2 / q) * (1 + c1 * B) / ((1 - c2 * B) ** 2 * (1 - c3 * B))
        rho = Vs / (2 * E ** 2)
        ddf.append(4 + (q + 2) / (q * rho - 1))
    return Phi_A, np.array(ddf)


@pytest.mark.parametrize("structure", ["ar1", "cs"])
def test_kr_structured_matches_a_dense_kr(structure):
    """cs / ar1 (which lme4 cannot write, so pbkrtest cannot check): Φ_A and the coefficient
    df against :func:`_dense_kr`, the paper's formulas with finite-difference derivatives of a
    V(γ) written out here, γ = (variances, ρ, σ²) at the REML estimates (1e-5 relative, the
    differences' accuracy)."""
    from mixedppl.inference.kenward_roger import kr_adjusted, kr_coefficient_ddf
    d = _long(5, n_sub=10)
    fit = mp.lmer(f"y ~ x + {structure}(times + 0 | subject)", d)
    psi = theta_to_psi(fit.spec, fit.theta, fit.sigma)[:-1]
    ns = 1 if structure == "ar1" else 4
    assert np.all(psi[:ns] > 0.1) and np.all(np.abs(psi[ns:]) < 0.9)   # an interior optimum
    gamma = np.concatenate([psi[:ns] ** 2, psi[ns:]])
    Phi_A, ddf = _dense_kr(d, structure, gamma, fit.sigma ** 2)
    adj = kr_adjusted(fit.record)
    np.testing.assert_allclose(adj.phi_adj, Phi_A, rtol=1e-5)
    np.testing.assert_allclose(kr_coefficient_ddf(adj), ddf, rtol=1e-5)
    assert not np.allclose(adj.phi_adj, adj.phi, rtol=1e-3)     # the adjustment is not nil
