"""Structured random-effect covariances (issue 15) against glmmTMB 1.1.5: diag, cs, ar1, toep.

References: ``tests/reference/glmmtmb_covstruct_<case>.json``, written by
``tests/reference/glmmtmb_covstruct.R`` (the R call is in each file; tight refits,
``rel.tol = 1e-12``), on sleepstudy and on ``tests/reference/covstruct_longitudinal.csv``
(simulated by that script: 40 subjects × 5 equally spaced times × 2 rows, times a factor).
First the deviance at glmmTMB's estimates (no optimiser), then the fit: logLik 1e-3, fixed effects
max(1e-4·|R|, 1e-4), SDs / correlations / σ 1e-3 relative, BLUPs 1e-3·max|R|.

Standard errors: ours are lme4's, σ̂²(XᵀV̂⁻¹X)⁻¹ with V̂ at the estimates (checked densely for
every case). glmmTMB's ML SEs come from the inverse Hessian of −log L over all parameters
(β, θ, σ jointly), which differs from lme4's where ∂²ℓ/∂β∂θ ≠ 0 at the optimum (1.5 % on the
cs / toep fits of the simulated data; below 1e-6 on balanced sleepstudy);
:func:`test_glmmtmb_ml_ses_are_the_joint_hessians` reproduces glmmTMB's from the dense
likelihood. glmmTMB's REML SEs (β as random effects in TMB's sdreport) add θ's uncertainty and
are compared only where the cross term vanishes (sleepstudy).
"""

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from conftest import REF_DIR, reference, rel_close
from independent import dense_Z


def _long():
    d = pd.read_csv(REF_DIR / "covstruct_longitudinal.csv")
    d["times"] = pd.Categorical(d["time"].astype(str))
    return d


_DATA = {"sleep": lambda: mp.datasets.load("sleepstudy"), "long": _long}

# case: formula (glmmTMB's, as in the R call)
CASES = {
    "sleep_diag_ml": "Reaction ~ Days + diag(Days | Subject)",
    "sleep_diag_reml": "Reaction ~ Days + diag(Days | Subject)",
    "sleep_cs_ml": "Reaction ~ Days + cs(Days | Subject)",
    "sleep_cs_reml": "Reaction ~ Days + cs(Days | Subject)",
    "long_ar1_ml": "y ~ x + ar1(times + 0 | subject)",
    "long_ar1_reml": "y ~ x + ar1(times + 0 | subject)",
    "long_int_ar1_ml": "y ~ x + (1 | subject) + ar1(times + 0 | subject)",
    "long_cs_ml": "y ~ x + cs(times + 0 | subject)",
    "long_toep_ml": "y ~ x + toep(times + 0 | subject)",
    "long_toep_reml": "y ~ x + toep(times + 0 | subject)",
    "long_diag_ml": "y ~ x + diag(times + 0 | subject)",
}
_CACHE: dict = {}


def _ref(case):
    return reference(f"glmmtmb_covstruct_{case}")


def _fit(case):
    if case not in _CACHE:
        ref = _ref(case)
        _CACHE[case] = mp.lmer(CASES[case], _DATA[case.split("_")[0]](), reml=ref["reml"])
    return _CACHE[case]


def _pacf(r: np.ndarray) -> np.ndarray:
    """Partial autocorrelations of the autocorrelations r_1 … r_L (Yule–Walker, written out)."""
    R = np.concatenate([[1.0], r])
    lag = np.abs(np.subtract.outer(np.arange(len(r)), np.arange(len(r))))
    return np.array([np.linalg.solve(R[lag[:k, :k]], R[1:k + 1])[-1] for k in range(1, len(r) + 1)])


def _r_theta(term, sd: np.ndarray, cor: np.ndarray, scale: float) -> np.ndarray:
    """Our θ of one term from glmmTMB's SDs and correlations (lower.tri, column-major)."""
    sd, ell = np.atleast_1d(np.asarray(sd, float)) / scale, term.n_cols
    cor = np.atleast_1d(np.asarray(cor, float))
    if term.structure == "us":
        return np.atleast_1d(sd)
    if term.structure == "diag":
        return sd
    if term.structure == "ar1":
        return np.array([sd[0], cor[0] / np.sqrt(1 - cor[0] ** 2)])
    if term.structure == "cs":
        a = 1 / (ell - 1)
        p = (cor[0] + a) / (1 + a)
        return np.append(sd, np.log(p / (1 - p)))
    pi = _pacf(cor[:ell - 1])
    return np.append(sd, pi / np.sqrt(1 - pi ** 2))


def _r_thetas(fit, ref):
    """glmmTMB's estimates as our θ, terms in our order (by number of levels, then as written)."""
    sds, cors = list(ref["re_sd"].values()), list(ref["re_cor"].values())
    return np.concatenate([_r_theta(t, sds[k], cors[k], ref["sigma"])
                           for k, t in enumerate(fit.spec.terms)])


@pytest.mark.parametrize("case", CASES)
def test_deviance_at_glmmtmbs_estimates(case):
    """The profiled deviance at glmmTMB's θ is −2 logLik (β, σ at glmmTMB's optimum are the
    profiled ones up to its gradient 5e-4)."""
    fit, ref = _fit(case), _ref(case)
    dev = fit.objective.deviance(_r_thetas(fit, ref))
    assert -dev / 2 == pytest.approx(ref["logLik"], abs=1e-3)


@pytest.mark.parametrize("case", CASES)
def test_fit_matches_glmmtmb(case):
    fit, ref = _fit(case), _ref(case)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    rel_close(fit.fe_params.to_numpy(), ref["fixef"]["estimate"], 1e-4, 1e-4)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-3)
    vc = fit.varcorr
    sd_rows = vc[vc["var2"].isna() & (vc["grp"] != "Residual")]
    r_sd = np.concatenate([np.atleast_1d(v) for v in ref["re_sd"].values()])
    rel_close(sd_rows["sdcor"].to_numpy(), r_sd, 1e-3)
    cor_rows = vc[vc["var2"].notna()]
    r_cor = np.concatenate([np.atleast_1d(v) for v in ref["re_cor"].values()] or [[]])
    if "diag" in case:
        assert len(cor_rows) == 0        # no covariance rows: diag's correlations are 0
    else:
        rel_close(cor_rows["sdcor"].to_numpy(), r_cor, 1e-3, 1e-4)
    if case.startswith("sleep"):
        rel_close(fit.fe_bse.to_numpy(), ref["fixef"]["se"], 1e-3)


@pytest.mark.parametrize("case", [c for c in CASES if c != "long_int_ar1_ml"])
def test_blups_match_glmmtmb(case):
    fit, ref = _fit(case), _ref(case)
    (group, vals), = ref["ranef_first"].items()
    ours = fit.random_effects[group].iloc[:3]
    assert list(ours.index) == ref["ranef_rows"][group]
    assert list(ours.columns) == ref["ranef_cols"][group]
    theirs = np.asarray(vals, float).reshape(len(ours.columns), 3).T
    np.testing.assert_allclose(ours.to_numpy(), theirs, atol=1e-3 * np.abs(theirs).max())


def _dense_parts(fit):
    """Z, X, y and the marginal covariance V̂ = σ̂²(Z Λ̂Λ̂ᵀ Zᵀ + I), written from the SDs and
    correlations of ``fit.varcorr`` (not from θ)."""
    spec = fit.spec
    Z, layout = dense_Z(spec)
    vc = fit.varcorr
    G = np.zeros((Z.shape[1], Z.shape[1]))
    for (off, ell), t, label in zip(layout, spec.terms, vc["grp"].unique()):
        rows = vc[vc["grp"] == label]
        sd = rows[rows["var2"].isna()]["sdcor"].to_numpy()
        S = np.diag(sd ** 2)
        for _, r in rows[rows["var2"].notna()].iterrows():
            i, j = t.column_names.index(r["var1"]), t.column_names.index(r["var2"])
            S[i, j] = S[j, i] = r["sdcor"] * sd[i] * sd[j]
        G[off:off + t.q, off:off + t.q] = np.kron(np.eye(t.n_levels), S)
    return Z, spec.X, spec.y, Z @ G @ Z.T + fit.sigma ** 2 * np.eye(spec.n)


@pytest.mark.parametrize("case", CASES)
def test_ses_are_lme4s(case):
    fit = _fit(case)
    _, X, _, V = _dense_parts(fit)
    se = np.sqrt(np.diag(np.linalg.inv(X.T @ np.linalg.solve(V, X))))
    rel_close(fit.fe_bse.to_numpy(), se, 1e-5)


def _dense_ml(X, y, z, codes):
    """−2 log L(β, S, σ) of a one-term Gaussian model, summed over the groups' dense blocks
    V_g = Z_g S Z_gᵀ + σ² I (z: the term's columns, codes: each row's group)."""
    groups = [np.flatnonzero(codes == g) for g in np.unique(codes)]

    def f(beta, S, sigma):
        out = 0.0
        for rows in groups:
            Zg = z[rows]
            c = np.linalg.cholesky(Zg @ S @ Zg.T + sigma ** 2 * np.eye(len(rows)))
            r = np.linalg.solve(c, y[rows] - X[rows] @ beta)
            out += 2 * np.log(np.diag(c)).sum() + r @ r + len(rows) * np.log(2 * np.pi)
        return out
    return f


@pytest.mark.parametrize("case", ["long_cs_ml", "long_toep_ml", "long_ar1_ml"])
def test_glmmtmb_ml_ses_are_the_joint_hessians(case):
    """glmmTMB's ML SEs are the β block of 2·H⁻¹, H the Hessian of −2 log L over (β, the
    covariance's parameters, σ) — a dense NumPy likelihood differentiated by central
    differences at our estimates (1e-2 relative: a finite-difference Hessian)."""
    fit, ref = _fit(case), _ref(case)
    spec = fit.spec
    t = spec.terms[0]
    dense = _dense_ml(spec.X, spec.y, t.z, t.codes)

    def f(x):   # the covariance through our θ: the β block of H⁻¹ does not depend on how the
        p = spec.p   # covariance parameters are written
        T = t.T(x[p:-1])
        return dense(x[:p], T @ T.T, x[-1])
    theta = fit.theta.copy()
    theta[:t.covariance.n_sd] *= fit.sigma          # absolute SDs; correlation parameters as they are
    x0 = np.concatenate([fit.fe_params.to_numpy(), theta, [fit.sigma]])
    h = 1e-4 * np.maximum(np.abs(x0), 1e-2)
    k = len(x0)
    H = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.eye(k)[i] * h[i], np.eye(k)[j] * h[j]
            H[i, j] = H[j, i] = (f(x0 + ei + ej) - f(x0 + ei - ej) - f(x0 - ei + ej)
                                 + f(x0 - ei - ej)) / (4 * h[i] * h[j])
    se = np.sqrt(np.diag(2 * np.linalg.inv(H))[:spec.p])
    rel_close(se, ref["fixef"]["se"], 1e-2)


def test_ar1_varcorr_layout():
    """An ar1 term: one SD row per time with var2 empty, then every pair's correlation ρ^|i−j|."""
    fit = _fit("long_ar1_ml")
    vc = fit.varcorr
    rows = vc[vc["grp"] == "subject"]
    assert rows["var1"].tolist()[:5] == [f"times{k}" for k in range(1, 6)]
    assert rows["var2"].isna().tolist() == [True] * 5 + [False] * 10
    rho = rows["sdcor"].iloc[5]
    lags = [int(b[-1]) - int(a[-1]) for a, b in zip(rows["var1"][5:], rows["var2"][5:])]
    np.testing.assert_allclose(rows["sdcor"].iloc[5:], rho ** np.array(lags), rtol=1e-10)
    assert "(ar1)" in str(fit.summary())


@pytest.mark.slow   # the Laplace graph of a 5-column term compiles in ~90 s on a cold cache
def test_poisson_ar1_matches_glmmtmb():
    ref = _ref("poisson_ar1")
    fit = mp.glmer("count ~ x + ar1(times + 0 | subject)", _long(), family="poisson")
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    rel_close(fit.fe_params.to_numpy(), ref["fixef"]["estimate"], 1e-4, 1e-4)
    rel_close(fit.fe_bse.to_numpy(), ref["fixef"]["se"], 1e-2)
    vc = fit.varcorr
    rel_close(vc[vc["var2"].isna()]["sdcor"], ref["re_sd"]["subject"], 1e-3)
    rel_close(vc[vc["var2"].notna()]["sdcor"], ref["re_cor"]["subject"], 1e-3)
    ours = fit.random_effects["subject"].iloc[:3].to_numpy()
    theirs = np.asarray(ref["ranef_first"]["subject"], float).reshape(5, 3).T
    np.testing.assert_allclose(ours, theirs, atol=2e-3 * np.abs(theirs).max())


@pytest.mark.slow   # the Gaussian Laplace graph of a 5-column term compiles in ~60 s
def test_gaussian_glmer_ar1_matches_glmmtmb():
    """glmmTMB's own model (family = gaussian through the Laplace path, σ as glmmTMB's
    dispersion): the same ML fit, and glmmTMB's SEs (the joint Hessian, as our GLMM path)."""
    ref = _ref("long_ar1_ml")
    fit = mp.glmer("y ~ x + ar1(times + 0 | subject)", _long(), family="gaussian")
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    rel_close(fit.fe_params.to_numpy(), ref["fixef"]["estimate"], 1e-4, 1e-4)
    rel_close(fit.fe_bse.to_numpy(), ref["fixef"]["se"], 1e-3)
    assert np.exp(fit.disp_params.iloc[0] / 2) == pytest.approx(ref["sigma"], rel=1e-3)
    vc = fit.varcorr
    rel_close(vc[vc["var2"].isna()]["sdcor"], ref["re_sd"]["subject"], 1e-3)
    rel_close(vc[vc["var2"].notna()]["sdcor"], ref["re_cor"]["subject"], 1e-3)
