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
