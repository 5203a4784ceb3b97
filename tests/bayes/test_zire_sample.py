"""fit.sample() for GLMMs with random terms in the ziformula (issue 15).

The PyMC model adds the ziformula's random effects, non-centred with the conditional terms'
priors: ``z_zi_<g>`` ~ N(0, 1), ``sd_zi_<g>`` ~ the ``"sd"`` prior, ``b_zi_<g>`` = z · Lᵀ, and
η_zi = X_zi γ + Z_zi b_zi. Checked here:

- the model's joint log-density (every prior and the likelihood, no Jacobian) at random points
  against the same sum written with scipy.stats, the zero-inflation / hurdle mixtures by hand
  and b_zi built from the data columns (ZIP and ZINB2 with ``zi ~ x + (1 | g)``, a hurdle
  Poisson with a correlated ``zi ~ x + (x | g)``, a ZIP whose only random term is in the
  ziformula);
- the names, dims and coords the InferenceData carries, and the BayesResult accessors
  (``varcorr``, ``zi_varcorr``, ``zi_random_effects``, ``summary``, ``compare_with``) on prior
  draws of a small model, against the draws themselves;
- (slow) Salamanders ZIP with ``zi ~ mined + (1 | site)``: posterior means near the Laplace
  estimates.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit, logit

import mixedppl as mp
from mixedppl.bayes.glmm_pymc import glmm_to_pymc


def _data(seed: int, n_groups: int = 10, per: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    h = rng.integers(0, 6, size=g.size)
    x = rng.normal(size=g.size)
    mu = np.exp(0.8 + 0.5 * x + rng.normal(scale=0.4, size=n_groups)[g])
    zero = rng.uniform(size=g.size) < expit(-0.7 + 0.6 * x
                                            + rng.normal(scale=0.6, size=n_groups)[g])
    count = np.where(zero, 0, rng.poisson(mu))
    return pd.DataFrame({"count": count, "x": x, "g": [f"g{k:02d}" for k in g],
                         "h": [f"h{k}" for k in h]})


def _nb2(y, mu, size):
    return stats.nbinom.logpmf(y, size, size / (size + mu))


#: family, formula, ziformula, conditional log-density of the non-zero part, hurdle?
CASES = {
    "zip": ("poisson", "count ~ x + (1 | g)", "~ x + (1 | g)",
            lambda y, mu, d: stats.poisson.logpmf(y, mu), False),
    "zinb2": ("nbinom2", "count ~ x + (1 | g)", "~ x + (1 | g)",
              lambda y, mu, d: _nb2(y, mu, d), False),
    "hurdle_vector": ("truncated_poisson", "count ~ x + (1 | g)", "~ x + (x | g)",
                      lambda y, mu, d: stats.poisson.logpmf(y, mu) - np.log1p(-np.exp(-mu)),
                      True),
    "zi_only": ("poisson", "count ~ x", "~ 1 + (1 | h)",
                lambda y, mu, d: stats.poisson.logpmf(y, mu), False),
}


def _model(case: str, seed: int):
    from mixedppl.glmm_api import _glmm_family
    family, formula, zi, _, _ = CASES[case]
    d = _data(seed)
    spec = mp.Model(formula, d, *_glmm_family(family, None), ziformula=zi).spec
    model, used = glmm_to_pymc(spec, spec.family, spec.link, *spec.counts())
    return d, spec, model, used


def _half_t(x, prior):
    return np.log(2.0) + stats.t.logpdf(x, df=prior.nu, scale=prior.sigma)


def _random_point(spec, d, rng):
    """Constrained values of every free variable, and b / b_zi per row built from the data."""
    vals = {"beta": rng.normal(scale=0.4, size=spec.p) + np.r_[0.5, np.zeros(spec.p - 1)]}
    vals["zi"] = rng.normal(scale=0.5, size=len(spec.family.zi_names))
    if spec.family.disp_names:
        vals["disp"] = rng.normal(scale=0.3, size=len(spec.family.disp_names))
    rows = {}
    for part, terms in (("", spec.terms), ("zi_", spec.zi_terms)):
        for t in terms:
            name = f"{part}{t.group}"
            codes = pd.Categorical(d[t.group], categories=t.levels).codes
            z = rng.normal(size=(t.n_levels, t.n_cols))
            sd = np.exp(np.log(0.6) + rng.normal(scale=0.3, size=t.n_cols))
            vals[f"z_{name}"], vals[f"sd_{name}"] = z, sd if t.n_cols > 1 else sd[0]
            if t.n_cols == 1:
                b = z * sd
                rows[name] = b[codes, 0]
            else:   # (x | g): b = z Lᵀ, L = diag(sd) chol([[1, r], [r, 1]])
                u = rng.uniform(0.1, 0.9, size=1)
                vals[f"cpc_{name}"] = u
                r = 2 * u[0] - 1
                L = np.diag(sd) @ np.array([[1.0, 0.0], [r, np.sqrt(1 - r * r)]])
                b = z @ L.T
                rows[name] = b[codes, 0] + d["x"].to_numpy() * b[codes, 1]
    return vals, rows


def _value_point(model, vals: dict) -> dict:
    """The model's value variables (log / log-odds transformed) from constrained values."""
    point = {}
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv].name
        v = np.asarray(vals[rv.name], float)
        point[value] = (np.log(v) if value.endswith("_log__") else
                        logit(v) if value.endswith("_logodds__") else v)
        assert value in (rv.name, f"{rv.name}_log__", f"{rv.name}_logodds__"), value
    return point


def _independent_logp(case, spec, d, used, vals, rows) -> float:
    """Σ log priors + Σ log p(y) with scipy.stats; π and the mixture by hand."""
    _, _, _, log_f, hurdle = CASES[case]
    fixed = used["fixed"]
    lp = stats.norm.logpdf(vals["beta"], fixed.mu, fixed.sigma).sum()
    lp += stats.norm.logpdf(vals["zi"], used["zi"].mu, used["zi"].sigma).sum()
    size = None
    if "disp" in vals:
        lp += stats.norm.logpdf(vals["disp"], used["disp"].mu, used["disp"].sigma).sum()
        size = np.exp(vals["disp"][0])
    for k, v in vals.items():
        if k.startswith("sd_"):
            lp += _half_t(np.atleast_1d(v), used["sd"]).sum()
        elif k.startswith("z_"):
            lp += stats.norm.logpdf(v).sum()
        elif k.startswith("cpc_"):   # LKJ(1) of a 2×2 correlation: (r + 1) / 2 ~ Beta(1, 1)
            lp += stats.beta.logpdf(v, 1.0, 1.0).sum()
    y = d["count"].to_numpy(float)
    x = d["x"].to_numpy()
    eta = np.column_stack([np.ones_like(x), x]) @ vals["beta"]
    eta_zi = (np.column_stack([np.ones_like(x), x])[:, :len(vals["zi"])] @ vals["zi"])
    for name, contribution in rows.items():
        if name.startswith("zi_"):
            eta_zi = eta_zi + contribution
        else:
            eta = eta + contribution
    lf = log_f(y, np.exp(eta), size)
    pi = expit(eta_zi)
    zero = y == 0
    if hurdle:
        ll = np.where(zero, np.log(pi), np.log1p(-pi) + np.where(zero, 0.0, lf))
    else:
        ll = np.where(zero, np.log(pi + (1 - pi) * np.exp(lf)), np.log1p(-pi) + lf)
    return float(lp + ll.sum())


@pytest.mark.parametrize("case", list(CASES))
def test_joint_logp_is_the_scipy_sum(case):
    """The PyMC model's joint log-density (no Jacobian) at random points = the scipy.stats sum
    of every prior and the zero-inflated / hurdle likelihood (rtol 1e-10)."""
    d, spec, model, used = _model(case, 7)
    zi_names = {f"{v}_zi_{t.group}" for t in spec.zi_terms for v in ("z", "sd")}
    assert zi_names <= {v.name for v in model.free_RVs}
    logp = model.compile_logp(jacobian=False)
    rng = np.random.default_rng(21)
    for _ in range(3):
        vals, rows = _random_point(spec, d, rng)
        assert {v.name for v in model.free_RVs} == set(vals)
        want = _independent_logp(case, spec, d, used, vals, rows)
        np.testing.assert_allclose(logp(_value_point(model, vals)), want, rtol=1e-10)


def test_zi_terms_have_the_conditional_priors_and_names():
    """sd_zi_<g> takes the "sd" prior (and a user's override of it); coords / dims of the zi
    random effects mirror the conditional ones with the prefix ``zi_``."""
    d, spec, model, used = _model("hurdle_vector", 3)
    t = spec.zi_terms[0]
    assert isinstance(used["sd"], mp.priors.HalfStudentT) and used["sd"].sigma == 2.5
    assert model.named_vars_to_dims["b_zi_g"] == ("zi_g__level", "zi_g__term")
    assert model.named_vars_to_dims["corr_zi_g"] == ("zi_g__term", "zi_g__term_")
    assert list(model.coords["zi_g__level"]) == list(t.levels)
    assert list(model.coords["zi_g__term"]) == ["(Intercept)", "x"]
    assert list(model.coords["g__term"]) == ["(Intercept)"]
    other, _ = glmm_to_pymc(spec, spec.family, spec.link, *spec.counts(),
                            priors={"sd": mp.priors.HalfNormal(1.0)})
    assert type(other["sd_zi_g"].owner.op).__name__ == type(other["sd_g"].owner.op).__name__


def test_a_zi_group_named_like_a_conditional_one_is_refused():
    d = _data(2).rename(columns={"h": "zi_g"})
    with pytest.raises(mp.ModelSpecError, match=r"zi_g.*rename"):
        mp.Model("count ~ x + (1 | zi_g)", d, "poisson", ziformula="~ 1 + (1 | g)").to_pymc()


@pytest.fixture(scope="module")
def zip_fit_and_prior_draws():
    """A small ZIP fit with zi ~ x + (1 | g), and a BayesResult whose "posterior" is 200
    prior draws of its PyMC model (the accessors' layout, without NUTS; random-effect SDs
    ~ HalfNormal(2), so that no draw of μ overflows the Poisson simulator)."""
    import arviz as az
    import pymc as pm
    import xarray as xr
    from mixedppl.bayes.result import BayesResult

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mp.glmer("count ~ x + (1 | g)", _data(5, n_groups=12, per=10), family="poisson",
                       ziformula="~ x + (1 | g)")
    model, used = fit._pymc_model({"sd": mp.priors.HalfNormal(2.0)})
    with model:
        prior = pm.sample_prior_predictive(200, random_seed=4)
    stats_ = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((1, 200), bool))})
    idata = az.InferenceData(posterior=prior.prior, sample_stats=stats_)
    pm.compute_log_likelihood(idata, model=model, progressbar=False)
    return fit, BayesResult(idata=idata, model=model, spec=fit.spec, priors=used)


def test_accessors_summarise_the_zi_draws(zip_fit_and_prior_draws):
    fit, post = zip_fit_and_prior_draws
    draws = post.idata.posterior
    sd = draws["sd_zi_g"].values.ravel()
    b = draws["b_zi_g"].values.reshape(-1, 12)
    z = draws["z_zi_g"].values.reshape(-1, 12)
    np.testing.assert_allclose(b, z * sd[:, None], rtol=1e-12)         # non-centred
    assert list(draws["b_zi_g"].coords["zi_g__level"].values) == list(fit.spec.zi_terms[0].levels)
    vc = post.varcorr
    assert list(vc.columns) == ["component", "grp", "var1", "var2", "vcov", "sdcor", "vcov_sd",
                                "sdcor_sd"]
    assert vc["component"].tolist() == fit.varcorr["component"].tolist() == ["cond", "zi"]
    zi = post.zi_varcorr
    assert zi[["grp", "var1"]].values.tolist() == fit.zi_varcorr[["grp", "var1"]].values.tolist()
    np.testing.assert_allclose(zi["sdcor"], sd.mean(), rtol=1e-12)
    np.testing.assert_allclose(zi["vcov"], np.mean(sd ** 2), rtol=1e-12)
    re = post.zi_random_effects["g"]
    assert re.index.tolist() == fit.zi_random_effects["g"].index.tolist()
    assert re.columns.tolist() == fit.zi_random_effects["g"].columns.tolist()
    np.testing.assert_allclose(re.to_numpy()[:, 0], b.mean(0), rtol=1e-12)
    np.testing.assert_allclose(post.zi_random_effects_sd["g"].to_numpy()[:, 0],
                               b.std(0, ddof=1), rtol=1e-12)
    assert list(post.random_effects) == ["g"]        # the conditional ones stay apart
    assert post.param_names() == ["beta", "sd_g", "zi", "sd_zi_g"]


def test_summary_and_compare_with_carry_the_zi_rows(zip_fit_and_prior_draws, tmp_path):
    fit, post = zip_fit_and_prior_draws
    back = type(post).from_netcdf(post.to_netcdf(tmp_path / "zire.nc"))
    pd.testing.assert_frame_equal(back.zi_varcorr, post.zi_varcorr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = post.summary(verbose=False)
    assert {"sd_g", "sd_zi_g", "zi[(Intercept)]", "zi[x]"} <= set(table.index)
    cmp = post.compare_with(fit)
    row = cmp.loc["zi sd g: (Intercept)"]
    np.testing.assert_allclose(row["estimate"], fit.zi_varcorr["sdcor"].iloc[0], rtol=1e-12)
    np.testing.assert_allclose(row["mean"], post.zi_varcorr["sdcor"].iloc[0], rtol=1e-12)
    np.testing.assert_allclose(cmp.loc["sd g: (Intercept)", "estimate"],
                               fit.varcorr["sdcor"].iloc[0], rtol=1e-12)
    assert cmp.index.tolist() == ["(Intercept)", "x", "sd g: (Intercept)", "zi: (Intercept)",
                                  "zi: x", "zi sd g: (Intercept)"]


def test_predictive_draws_use_the_zi_random_effects(zip_fit_and_prior_draws):
    """Pointwise log-likelihood per row; posterior predictive zeros follow π with b_zi: where
    π (with b_zi) > 0.95 but π without b_zi < 0.5 and μ > 3, a draw is zero with probability
    π + (1 − π)e^{−μ} > 0.95 (about 0.5 or less if b_zi were left out)."""
    fit, post = zip_fit_and_prior_draws
    assert post.idata.log_likelihood["y"].shape == (1, 200, fit.nobs)
    yrep = post.ppc(random_seed=2).posterior_predictive["y"].values.reshape(200, -1)
    draws = post.idata.posterior
    gamma = draws["zi"].values.reshape(200, -1)
    b_zi = draws["b_zi_g"].values.reshape(200, -1)[:, fit.spec.zi_terms[0].codes]
    eta_zi = gamma @ fit.spec.aux_designs["X_zi"].T
    beta = draws["beta"].values.reshape(200, -1)
    b = draws["b_g"].values.reshape(200, -1)[:, fit.spec.terms[0].codes]
    mu = np.exp(beta @ fit.spec.X.T + b)
    cells = (expit(eta_zi + b_zi) > 0.95) & (expit(eta_zi) < 0.5) & (mu > 3)
    assert cells.sum() > 50
    assert np.mean(yrep[cells] == 0) > 0.9, np.mean(yrep[cells] == 0)


def test_a_correlated_zi_term_in_varcorr_and_summary():
    """A vector zi term (x | g): zi_varcorr's SD and correlation rows are the draws' means;
    summary() keeps one correlation (``corr_zi_g[x, (Intercept)]``), as for a conditional term."""
    import arviz as az
    import pymc as pm
    import xarray as xr
    from mixedppl.bayes.result import BayesResult

    _, spec, model, used = _model("hurdle_vector", 4)
    names = [v.name for v in model.free_RVs + model.deterministics]
    with model:
        prior = pm.sample_prior_predictive(100, var_names=names, random_seed=8).prior
    stats_ = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((1, 100), bool))})
    post = BayesResult(idata=az.InferenceData(posterior=prior, sample_stats=stats_), model=model,
                       spec=spec, priors=used)
    zi = post.zi_varcorr
    assert zi[["grp", "var1"]].values.tolist() == [["g", "(Intercept)"], ["g", "x"],
                                                     ["g", "(Intercept)"]]
    assert zi["var2"].isna().tolist() == [True, True, False] and zi["var2"].iloc[2] == "x"
    sd = prior["sd_zi_g"].values.reshape(100, 2)
    r = prior["corr_zi_g"].values.reshape(100, 2, 2)[:, 1, 0]
    np.testing.assert_allclose(zi["sdcor"], [*sd.mean(0), r.mean()], rtol=1e-12)
    np.testing.assert_allclose(zi["vcov"].iloc[2], np.mean(r * sd[:, 0] * sd[:, 1]), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = post.summary(verbose=False)
    corr_rows = [k for k in table.index if k.startswith("corr_zi_g")]
    assert corr_rows == ["corr_zi_g[x, (Intercept)]"]
    assert post.zi_random_effects["g"].columns.tolist() == ["(Intercept)", "x"]


@pytest.mark.slow
def test_salamanders_zip_posterior_near_laplace():
    """Salamanders ZIP, zi ~ mined + (1 | site) (glmmTMB's example), nutpie at the default
    target_accept (0.9): no divergences; posterior means of β and γ within 0.5 Laplace SEs of
    the estimates and posterior sds within 30 % of the SEs; the zi SD's 94 % HDI covers θ̂_zi.

    Measured (4 chains × 2000 draws, MCSE ≈ 0.04 SE): (mean − estimate) / SE = −0.41, +0.35
    for β, −0.23, +0.18 for γ; posterior sd / SE = 1.14–1.16. The gap in β is the posterior's,
    not an error of the model (its log-density is checked above to 1e-10): the site SD's
    posterior mean is 0.30 against θ̂ = 0.23, and a rough importance sample (ESS ≈ 20) of
    prior × exp(−D/2), D the Laplace deviance of the fit, moves β the same way (0.12, 1.12
    against 0.24, 0.99)."""
    sal = mp.datasets.load("salamanders")
    fit = mp.glmer("count ~ mined + (1 | site)", sal, family="poisson",
                   ziformula="~ mined + (1 | site)")
    post = fit.sample(draws=1000, tune=1000, chains=4, cores=1, progressbar=False,
                      random_seed=5)
    assert post.n_divergences == 0
    table = post.compare_with(fit)
    rows = list(fit.spec.fe_names) + [f"zi: {n}" for n in fit.family.zi_names]
    part = table.loc[rows]
    assert np.all(np.abs(part["mean"] - part["estimate"]) < 0.5 * part["se"]), part
    np.testing.assert_allclose(part["sd"], part["se"], rtol=0.3)
    sd_row = table.loc["zi sd site: (Intercept)"]
    assert sd_row["hdi_3%"] < sd_row["estimate"] < sd_row["hdi_97%"], sd_row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = post.summary(verbose=False)
    assert summary["r_hat"].max() < 1.02 and summary["ess_bulk"].min() > 200, summary
    assert post.zi_random_effects["site"].shape == (23, 1)
    ranef = fit.zi_random_effects["site"].iloc[:, 0]
    assert np.corrcoef(post.zi_random_effects["site"].iloc[:, 0], ranef)[0, 1] > 0.95
