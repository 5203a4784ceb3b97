"""fit.sample(): the same model sampled with PyMC; posterior accessors, priors, LOO, calibration."""

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

import mixedppl as mp


@pytest.fixture(scope="module")
def sleep_post():
    fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    post = fit.sample(draws=300, tune=300, chains=2, cores=1, random_seed=3, progressbar=False)
    return fit, post


def test_idata_has_named_coords_and_loo_is_finite(sleep_post):
    fit, post = sleep_post
    pst = post.idata.posterior
    assert list(pst["beta"].coords["fixed"].values) == ["(Intercept)", "Days"]
    assert list(pst["sd_Subject"].coords["Subject__term"].values) == ["(Intercept)", "Days"]
    assert pst["b_Subject"].sizes["Subject__level"] == 18
    assert pst["corr_Subject"].shape[2:] == (2, 2)
    assert post.idata.log_likelihood["y"].shape[2:] == (180,)
    loo = az.loo(post.idata)
    assert np.isfinite(loo.elpd_loo) and np.isfinite(loo.se)


def test_accessors_and_compare_with(sleep_post):
    fit, post = sleep_post
    cmp = post.compare_with(fit)
    assert list(cmp.index) == ["(Intercept)", "Days", "sd Subject: (Intercept)",
                               "sd Subject: Days", "corr Subject: (Intercept), Days", "sigma"]
    assert list(cmp.columns) == ["estimate", "se", "mean", "sd", "hdi_3%", "hdi_97%"]
    assert (cmp["hdi_3%"] < cmp["estimate"]).all() and (cmp["estimate"] < cmp["hdi_97%"]).all()
    vc = post.varcorr
    assert list(vc[["grp", "var1"]].itertuples(index=False)) == \
        list(fit.varcorr[["grp", "var1"]].itertuples(index=False))
    re = post.random_effects["Subject"]
    assert re.shape == (18, 2) and list(re.index) == list(fit.random_effects["Subject"].index)
    assert np.corrcoef(re["Days"], fit.random_effects["Subject"]["Days"])[0, 1] > 0.95
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = post.summary(verbose=False)
    assert "r_hat" in table.columns and "sigma" in table.index


def test_ppc_prior_predictive_and_predict_unseen_level(sleep_post):
    fit, post = sleep_post
    idata = post.ppc(random_seed=1)
    assert idata.posterior_predictive["y"].shape == (2, 300, 180)
    assert "prior_predictive" in post.prior_predictive(50, random_seed=1).groups()
    new = pd.DataFrame({"Days": [0, 5, 5], "Subject": ["308", "999", "999"]})
    pred = post.predict(new, random_seed=1)
    np.testing.assert_allclose(pred, fit.predict(new), rtol=0.03)
    draws = post.predict(new, random_seed=1, return_draws=True)
    assert draws.shape == (600, 3)
    fixed = post.predict(new, include_random=False, return_draws=True)
    # the unseen level's draws spread wider than the population line (new random effects)
    assert draws[:, 1].std() > 2 * fixed[:, 1].std()


def test_priors_override_changes_the_model():
    m = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    default = m.to_pymc()
    custom = m.to_pymc(priors={"fixed": mp.priors.Normal(0, 10), "sd": mp.priors.HalfNormal(5),
                               "corr": mp.priors.LKJ(2), "sigma": mp.priors.Exponential(1.0)})
    pt_ = default.initial_point()
    assert default.compile_logp()(pt_) != pytest.approx(custom.compile_logp()(pt_))
    with pytest.raises(ValueError, match="unknown prior key"):
        m.to_pymc(priors={"slopes": mp.priors.Normal(0, 1)})
    with pytest.raises(TypeError):
        m.to_pymc(priors={"corr": mp.priors.HalfNormal(1)})


@pytest.mark.slow   # samples (~19 s)
def test_vector_term_prior_is_lkj():
    """Prior draws of a 3×3 term's correlation matrix (built from canonical partial correlations)
    have LKJ(η)'s marginals, Beta(η − 1 + d/2) on (−1, 1) for every pair, and PyMC's
    ``LKJCorr`` sampler's E log det R; the SDs follow the "sd" prior."""
    import pymc as pm
    from scipy import stats
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"y": rng.normal(size=60), "x1": rng.normal(size=60),
                         "x2": rng.normal(size=60), "g": np.repeat(list("abcdef"), 10)})
    model = mp.Model("y ~ 1 + (1 + x1 + x2 | g)", data).to_pymc(
        priors={"corr": mp.priors.LKJ(2.0), "sd": mp.priors.HalfNormal(3.0)})
    corr, sd = pm.draw([model["corr_g"], model["sd_g"]], draws=4000, random_seed=2)
    np.testing.assert_allclose(np.diagonal(corr, axis1=1, axis2=2), 1.0, atol=1e-12)
    a = 2.0 - 1 + 3 / 2
    for i, j in [(1, 0), (2, 0), (2, 1)]:
        assert stats.kstest((corr[:, i, j] + 1) / 2, stats.beta(a, a).cdf).pvalue > 1e-3
    ref = pm.draw(pm.LKJCorr.dist(n=3, eta=2.0, return_matrix=True), draws=4000, random_seed=3)
    ours, theirs = np.linalg.slogdet(corr)[1], np.linalg.slogdet(ref)[1]
    assert abs(ours.mean() - theirs.mean()) < 4 * np.hypot(ours.std(), theirs.std()) / np.sqrt(4000)
    assert stats.kstest(sd.ravel(), stats.halfnorm(scale=3.0).cdf).pvalue > 1e-3


def _simulate(rng, n_groups, n_per, beta, sd_b, sigma):
    g = np.repeat(np.arange(n_groups), n_per)
    x = rng.normal(size=g.size)
    y = beta[0] + beta[1] * x + rng.normal(0, sd_b, n_groups)[g] + rng.normal(0, sigma, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})


@pytest.mark.slow   # samples (~17 s)
def test_posterior_means_agree_with_reml_large_n():
    data = _simulate(np.random.default_rng(7), 40, 50, [1.0, 2.0], 1.0, 2.0)
    fit = mp.lmer("y ~ x + (1 | g)", data)
    post = fit.sample(draws=300, tune=300, chains=2, cores=1, random_seed=5, progressbar=False,
                      priors={"fixed": mp.priors.Normal(0, 100)})
    fe = post.fe_params
    assert (np.abs(fe["mean"] - fit.fe_params) < 2 * fe["sd"]).all()


@pytest.mark.slow
def test_defaults_sleepstudy_no_divergences():
    fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    post = fit.sample(chains=4, cores=2, random_seed=1, progressbar=False)
    assert post.n_divergences == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (post.summary(verbose=False)["r_hat"] <= 1.01).all()


@pytest.mark.slow
def test_simulation_based_calibration_pooled_coverage():
    """Pooled coverage of central 90% intervals over parameters and replicates, within the
    binomial 99% band (a per-parameter threshold would fail a correct sampler too often)."""
    from scipy import stats
    rng = np.random.default_rng(11)
    hits = []
    for rep in range(20):
        beta = rng.normal(0, 1, 2)
        sd_b, sigma = np.abs(rng.normal(0, 1)), np.abs(rng.normal(0, 1))
        data = _simulate(rng, 8, 6, beta, sd_b, sigma)
        fit = mp.lmer("y ~ x + (1 | g)", data)
        pri = {"fixed": mp.priors.Normal(0, 1), "sd": mp.priors.HalfNormal(1),
               "sigma": mp.priors.HalfNormal(1)}
        post = fit.sample(draws=400, tune=400, chains=2, cores=1, random_seed=rep, priors=pri,
                          progressbar=False)
        b = post._draws("beta")
        for draws, truth in [(b[:, 0], beta[0]), (b[:, 1], beta[1]),
                             (post._draws("sd_g"), sd_b), (post._draws("sigma"), sigma)]:
            lo, hi = np.quantile(draws, [0.05, 0.95])
            hits.append(lo <= truth <= hi)
    n = len(hits)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 0.9)
    assert lo <= sum(hits) <= hi


def _add_hits(hits: dict, pairs) -> None:
    """Whether each truth lies in its draws' central interval, for every level in ``hits``."""
    for draws, truth in pairs:
        for level in hits:
            lo, hi = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2])
            hits[level].append(lo <= truth <= hi)


def _assert_pooled_coverage(hits: dict) -> None:
    """Pooled coverage of every level within its binomial 99% band."""
    from scipy import stats
    for level, h in hits.items():
        lo, hi = stats.binom.ppf([0.005, 0.995], len(h), level)
        assert lo <= sum(h) <= hi, (level, sum(h), len(h), (lo, hi))


def _simulate_correlated(rng, n_groups, n_per, beta, sd_b, corr, sigma):
    """y = β₀ + β₁x + b₀[g] + b₁[g]·x + ε, (b₀, b₁) ~ N(0, diag(sd) R diag(sd))."""
    g = np.repeat(np.arange(n_groups), n_per)
    x = rng.normal(size=g.size)
    cov = np.outer(sd_b, sd_b) * np.array([[1.0, corr], [corr, 1.0]])
    b = rng.multivariate_normal(np.zeros(2), cov, n_groups)
    y = beta[0] + beta[1] * x + b[g, 0] + b[g, 1] * x + rng.normal(0, sigma, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})


@pytest.mark.slow
def test_correlated_term_simulation_based_calibration_pooled_coverage():
    """Marginalised ``y ~ x + (1 + x | g)`` (10 groups × 6 rows): β, both SDs, the correlation
    and σ drawn from the priors used to sample (the correlation from LKJ(2): (ρ + 1)/2 ~
    Beta(2, 2)), so every central interval is calibrated by construction (Talts et al. 2018).
    Pooled coverage of central 90% and 50% intervals of the six parameters over 20 replicates
    (120 hits each) within their binomial 99% bands."""
    rng = np.random.default_rng(20261202)
    pri = {"fixed": mp.priors.Normal(0, 1), "sd": mp.priors.HalfNormal(1),
           "corr": mp.priors.LKJ(2.0), "sigma": mp.priors.HalfNormal(1)}
    hits = {0.9: [], 0.5: []}
    divergences = 0
    for rep in range(20):
        beta = rng.normal(0, 1, 2)
        sd_b, sigma = np.abs(rng.normal(0, 1, 2)), np.abs(rng.normal(0, 1))
        corr = 2 * rng.beta(2.0, 2.0) - 1
        data = _simulate_correlated(rng, 10, 6, beta, sd_b, corr, sigma)
        with warnings.catch_warnings():  # near-zero SDs: singular REML fits
            warnings.simplefilter("ignore")
            fit = mp.lmer("y ~ x + (1 + x | g)", data)
        post = fit.sample(draws=400, tune=400, chains=2, cores=1, random_seed=rep, priors=pri,
                          progressbar=False)
        assert post.marginalized
        divergences += post.n_divergences
        b, sd = post._draws("beta"), post._draws("sd_g")
        r = post._draws("corr_g")[:, 0, 1]
        _add_hits(hits, [(b[:, 0], beta[0]), (b[:, 1], beta[1]), (sd[:, 0], sd_b[0]),
                         (sd[:, 1], sd_b[1]), (r, corr), (post._draws("sigma"), sigma)])
    _assert_pooled_coverage(hits)
    assert divergences <= 20


@pytest.mark.slow
def test_partial_marginal_simulation_based_calibration_pooled_coverage(monkeypatch):
    """Crossed ``y ~ x + (1 | g) + (1 | h)`` (8 × 6 levels, one row per cell) sampled the way
    InstEval is by default: h's effects sampled, g's integrated out given them
    (``MAX_MARGINAL_SCHUR`` lowered to 0 to force the split). Parameters drawn from the priors
    used to sample; pooled coverage of central 90% and 50% intervals of β₀, β₁, both SDs and σ
    over 20 replicates (100 hits each) within their binomial 99% bands."""
    import mixedppl.bayes.marginal as marginal
    monkeypatch.setattr(marginal, "MAX_MARGINAL_SCHUR", 0)
    rng = np.random.default_rng(1712)
    pri = {"fixed": mp.priors.Normal(0, 1), "sd": mp.priors.HalfNormal(1),
           "sigma": mp.priors.HalfNormal(1)}
    g, h = np.meshgrid(np.arange(8), np.arange(6), indexing="ij")
    g, h = g.ravel(), h.ravel()
    hits = {0.9: [], 0.5: []}
    divergences = 0
    for rep in range(20):
        beta = rng.normal(0, 1, 2)
        sd_g, sd_h, sigma = np.abs(rng.normal(0, 1, 3))
        x = rng.normal(size=g.size)
        y = (beta[0] + beta[1] * x + rng.normal(0, sd_g, 8)[g] + rng.normal(0, sd_h, 6)[h]
             + rng.normal(0, sigma, g.size))
        data = pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g],
                             "h": [f"h{k}" for k in h]})
        with warnings.catch_warnings():  # near-zero SDs: singular REML fits
            warnings.simplefilter("ignore")
            fit = mp.lmer("y ~ x + (1 | g) + (1 | h)", data)
        post = fit.sample(draws=400, tune=400, chains=2, cores=1, random_seed=rep, priors=pri,
                          progressbar=False)
        assert "b_h" in post.model.named_vars and "b_g" not in post.model.named_vars
        divergences += post.n_divergences
        b = post._draws("beta")
        _add_hits(hits, [(b[:, 0], beta[0]), (b[:, 1], beta[1]), (post._draws("sd_g"), sd_g),
                         (post._draws("sd_h"), sd_h), (post._draws("sigma"), sigma)])
    _assert_pooled_coverage(hits)
    assert divergences <= 20


# -- GLMM and CLMM: the same family log-density, sampled -----------------------------------------
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
WINE = "rating ~ temp + contact + (1 | judge)"


@pytest.fixture(scope="module")
def cbpp_post():
    fit = mp.glmer(CBPP, mp.datasets.load("cbpp"), family="binomial")
    return fit, fit.sample(draws=300, tune=300, chains=2, cores=1, random_seed=2,
                           progressbar=False)


@pytest.fixture(scope="module")
def wine_post():
    fit = mp.clmm(WINE, mp.datasets.load("wine"))
    return fit, fit.sample(draws=300, tune=300, chains=2, cores=1, random_seed=2,
                           progressbar=False)


def test_glmm_likelihood_is_the_laplace_family_logp(cbpp_post):
    """Pointwise log_likelihood at a draw equals log Binomial(y | n, logit⁻¹(η)) at that draw."""
    from scipy import stats
    fit, post = cbpp_post
    ll = post.idata.log_likelihood["y"].values[0, 0]
    beta = post.idata.posterior["beta"].values[0, 0]
    b = post.idata.posterior["b_herd"].values[0, 0][:, 0]
    t = fit.spec.terms[0]
    eta = fit.spec.X @ beta + b[t.codes]
    expected = stats.binom.logpmf(fit.counts, fit.trials, 1 / (1 + np.exp(-eta)))
    np.testing.assert_allclose(ll, expected, rtol=1e-10)
    assert ll.shape == (fit.nobs,)


def test_glmm_posterior_near_laplace_and_ppc(cbpp_post):
    fit, post = cbpp_post
    table = post.compare_with(fit)
    fe = table.loc[list(fit.spec.fe_names)]
    assert np.all(np.abs(fe["mean"] - fe["estimate"]) < 2 * fe["sd"])
    assert "sd herd: (Intercept)" in table.index
    idata = post.ppc(random_seed=1)
    yrep = idata.posterior_predictive["y"].values
    assert yrep.shape[-1] == fit.nobs
    assert np.all(yrep <= fit.trials) and np.all(yrep >= 0)
    assert np.isfinite(az.loo(post.idata).elpd_loo)


def test_clmm_sample_thresholds_and_ppc(wine_post):
    fit, post = wine_post
    table = post.compare_with(fit)
    rows = [f"threshold {n}" for n in fit.thresholds.index]
    assert np.all(np.diff(post._draws("thresholds"), axis=1) > 0)
    th = table.loc[rows]
    assert np.all(np.abs(th["mean"] - th["estimate"]) < 2 * th["sd"])
    assert "thresholds" in post.param_names()
    yrep = post.ppc(random_seed=1).posterior_predictive["y"].values
    assert set(np.unique(yrep)) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert post.idata.log_likelihood["y"].shape[-1] == fit.nobs


def test_dispersion_family_samples():
    fit = mp.glmer("TICKS ~ YEAR + (1 | LOCATION)", mp.datasets.load("grouseticks"),
                   family="negative_binomial")
    post = fit.sample(draws=200, tune=300, chains=2, cores=1, random_seed=4, progressbar=False)
    row = post.compare_with(fit).loc["dispersion (size)"]
    assert abs(row["mean"] - row["estimate"]) < 2 * row["sd"]
    assert "dispersion" in post.param_names()


def test_bad_thresholds_prior(wine_post):
    fit, _ = wine_post
    with pytest.raises(ValueError, match="increasing means"):
        fit.sample(draws=10, tune=10, chains=1, priors={"thresholds": mp.priors.Normal(0, 5)})


@pytest.mark.slow
@pytest.mark.parametrize("which", ["cbpp", "wine"])
def test_defaults_glmm_clmm_no_divergences(which):
    fit = (mp.glmer(CBPP, mp.datasets.load("cbpp"), family="binomial") if which == "cbpp"
           else mp.clmm(WINE, mp.datasets.load("wine")))
    post = fit.sample(chains=4, cores=2, random_seed=1, progressbar=False)
    assert post.n_divergences == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (post.summary(verbose=False)["r_hat"] <= 1.01).all()


def _simulate_binomial(rng, n_groups, n_per, size, beta, sd_b):
    g = np.repeat(np.arange(n_groups), n_per)
    x = rng.normal(size=g.size)
    eta = beta[0] + beta[1] * x + rng.normal(0, sd_b, n_groups)[g]
    y = rng.binomial(size, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "f": size - y, "x": x, "g": [f"g{k}" for k in g]})


@pytest.mark.slow
def test_glmm_simulation_based_calibration_pooled_coverage():
    """Binomial random-intercept GLMM (8 groups × 6 rows, 8 trials each): parameters drawn from
    the priors used to sample, so every central interval is calibrated by construction (Talts et
    al. 2018). Pooled coverage of central 90% and 50% intervals of β₀, β₁ and the group SD over
    25 replicates (75 hits each), within their binomial 99% bands (measured: 64/75 in [60, 73]
    and 39/75 in [26, 49]). ~1 min on one core (3 min on a loaded machine, cold caches)."""
    from scipy import stats
    rng = np.random.default_rng(2024)
    pri = {"fixed": mp.priors.Normal(0, 1), "sd": mp.priors.HalfNormal(1)}
    hits = {0.9: [], 0.5: []}
    divergences = 0
    for rep in range(25):
        beta = rng.normal(0, 1, 2)
        sd_b = np.abs(rng.normal(0, 1))
        data = _simulate_binomial(rng, 8, 6, 8, beta, sd_b)
        with warnings.catch_warnings():  # near-zero sd_b: singular Laplace fits
            warnings.simplefilter("ignore")
            fit = mp.glmer("cbind(y, f) ~ x + (1 | g)", data, family="binomial")
        post = fit.sample(draws=400, tune=400, chains=2, cores=1, random_seed=rep, priors=pri,
                          progressbar=False)
        divergences += post.n_divergences
        b = post._draws("beta")
        for draws, truth in [(b[:, 0], beta[0]), (b[:, 1], beta[1]), (post._draws("sd_g"), sd_b)]:
            for level in hits:
                lo, hi = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2])
                hits[level].append(lo <= truth <= hi)
    for level, h in hits.items():
        lo, hi = stats.binom.ppf([0.005, 0.995], len(h), level)
        assert lo <= sum(h) <= hi, (level, sum(h), len(h), (lo, hi))
    # measured: 0 divergences in the 25 runs; a few could appear with near-zero group SDs
    assert divergences <= 10


def test_model_family_dispatch_shares_the_fit():
    m = mp.Model(WINE, mp.datasets.load("wine"), family="ordinal")
    assert m.fit().loglik == pytest.approx(-81.5654128, abs=1e-3)
    assert "thresholds" in [v.name for v in m.to_pymc().free_RVs]
    g = mp.Model(CBPP, mp.datasets.load("cbpp"), family="binomial")
    d, grad = g.objective()(np.array([0.642261, -1.398532, -0.992333, -1.128672, -1.580314]))
    assert d == pytest.approx(184.0525637, abs=1e-3) and np.max(np.abs(grad)) < 0.05


def test_compare_rows_are_matched_by_name_not_position():
    """A diag() term's posterior carries correlation rows the fit has not (fixed 0): they are
    left out and every later row keeps its own estimate (they were paired by position)."""
    import pandas as pd
    from mixedppl.bayes.result import _vc_rows

    freq = pd.DataFrame({"grp": ["g", "g", "Residual"], "var1": ["(Intercept)", "x", np.nan],
                         "var2": [None, None, None], "vcov": [4.0, 1.0, 9.0],
                         "sdcor": [2.0, 1.0, 3.0]})
    draws = [("g", "(Intercept)", None, None, np.array([2.1])),
             ("g", "(Intercept)", "x", None, np.array([0.0])),
             ("g", "x", None, None, np.array([1.1])),
             ("Residual", None, None, None, np.array([3.1]))]
    rows = [(g, a, v2, est) for g, a, v2, est, _ in _vc_rows(draws, freq, "cond")]
    assert rows == [("g", "(Intercept)", None, 2.0), ("g", "x", None, 1.0),
                    ("Residual", None, None, 3.0)]
