"""The Bayesian switch: sampler choice, marginalised vs explicit LMM posteriors, saving and
reloading a BayesResult (pickle, netCDF), LOO / WAIC / compare."""

import importlib.util
import pickle
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.bayes import samplers
from mixedppl.bayes import sample as sample_mod

KW = dict(draws=200, tune=200, chains=2, cores=1, random_seed=2, progressbar=False)


@pytest.fixture(scope="module")
def dyes():
    fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit, fit.sample(**KW), fit.sample(marginalize=False, **KW)


def test_unknown_and_missing_samplers(monkeypatch):
    with pytest.raises(ValueError, match="unknown sampler 'stan'"):
        samplers.check_sampler("stan")
    for name, pkg in [("numpyro", "numpyro"), ("blackjax", "blackjax")]:
        if importlib.util.find_spec(pkg) is None:
            with pytest.raises(ImportError, match=f"sampler='{name}' needs .*{pkg}"):
                samplers.check_sampler(name)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "nutpie" else real(n, *a))
    assert samplers.default_sampler() == "pymc"
    with pytest.raises(ImportError, match=r"pip install mixedppl\[bayes\]"):
        samplers.check_sampler("nutpie")


def test_jax_samplers_refuse_the_marginalised_model(monkeypatch, dyes):
    fit = dyes[0]
    monkeypatch.setattr(sample_mod, "check_sampler", lambda s: s)
    with pytest.raises(NotImplementedError, match="marginalize=False"):
        fit.sample(sampler="numpyro", **KW)
    with pytest.raises(TypeError, match="sampler='nutpie' does not take"):
        fit.sample(sampler="nutpie", step_scale=0.1, **KW)


def test_marginalize_is_for_lmms():
    g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 mp.datasets.load("cbpp"), family="binomial")
    with pytest.raises(ValueError, match="marginalize=True is for linear mixed models"):
        g.sample(marginalize=True, **KW)


def test_marginalised_posterior_has_the_explicit_layout(dyes):
    fit, marg, expl = dyes
    assert marg.marginalized and not expl.marginalized
    assert marg.sampler == expl.sampler == samplers.default_sampler()
    pm_, pe = marg.idata.posterior, expl.idata.posterior
    assert {"beta", "sigma", "sd_Batch", "b_Batch", "z_Batch"} <= set(pm_.data_vars)
    assert set(pe.data_vars) <= set(pm_.data_vars)
    assert pm_["b_Batch"].dims == pe["b_Batch"].dims
    assert list(pm_["b_Batch"].coords["Batch__level"].values) == list("ABCDEF")
    # b = z · sd, as in the explicit model
    np.testing.assert_allclose(pm_["b_Batch"].values,
                               pm_["z_Batch"].values * pm_["sd_Batch"].values[..., None, None])
    assert marg.idata.log_likelihood["y"].shape == (2, 200, 30)
    assert np.allclose(marg.idata.observed_data["y"].values, fit.spec.y)
    assert marg.n_divergences == 0
    re_m = marg.random_effects["Batch"].iloc[:, 0]
    re_f = fit.random_effects["Batch"].iloc[:, 0]
    assert np.corrcoef(re_m, re_f)[0, 1] > 0.99
    assert "marginalised" in repr(marg)


def test_pymc_sampler_gives_the_same_variables(dyes):
    fit, marg, _ = dyes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = fit.sample(sampler="pymc", **KW)
    assert post.sampler == "pymc" and post.marginalized
    assert set(post.idata.posterior.data_vars) == set(marg.idata.posterior.data_vars)
    assert post.idata.log_likelihood["y"].shape == (2, 200, 30)


def test_pickle_and_netcdf_round_trips(dyes, tmp_path):
    fit, marg, expl = dyes
    new = pd.DataFrame({"Batch": ["A", "Z"]})
    for k, post in enumerate((marg, expl)):
        back = pickle.loads(pickle.dumps(post))
        pd.testing.assert_frame_equal(back.fe_params, post.fe_params)
        path = tmp_path / f"post{k}.nc"  # the file stays open (lazy) while read is alive
        post.to_netcdf(path)
        read = mp.BayesResult.from_netcdf(path)
        assert read.marginalized == post.marginalized and read.sampler == post.sampler
        pd.testing.assert_frame_equal(read.fe_params, post.fe_params)
        pd.testing.assert_frame_equal(read.varcorr, post.varcorr)
        pd.testing.assert_frame_equal(read.random_effects["Batch"], post.random_effects["Batch"])
        np.testing.assert_allclose(read.predict(new, random_seed=1),
                                   post.predict(new, random_seed=1))
        assert read.n_divergences == post.n_divergences
        assert "mixedppl_state" not in read.idata.groups()
        assert read.ppc(random_seed=1).posterior_predictive["y"].shape == (2, 200, 30)
        assert "posterior" in az.from_netcdf(path).groups()  # plain ArviZ reads it too
    with pytest.raises(ValueError, match="not written by BayesResult.to_netcdf"):
        az.from_dict(posterior={"a": np.zeros((1, 5))}).to_netcdf(tmp_path / "plain.nc")
        mp.BayesResult.from_netcdf(tmp_path / "plain.nc")


def test_loo_waic_compare(dyes):
    _, marg, expl = dyes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo, waic = marg.loo(), marg.waic()
        # item access (pandas 3 no longer resolves ELPDData's index as attributes); ArviZ 0.23
        # labels the non-pointwise WAIC "waic" and the pointwise one "elpd_waic"
        assert np.isfinite(loo["elpd_loo"]) and np.isfinite(waic.iloc[0])
        table = mp.compare(marg, explicit=expl)
    assert set(table.index) == {"model0", "explicit"}
    # the same model sampled two ways: the elpd agree within their standard error
    assert abs(table["elpd_loo"].iloc[0] - table["elpd_loo"].iloc[1]) < 2 * table["dse"].max() + 1
    with pytest.raises(ValueError, match="at least two"):
        mp.compare(marg)


@pytest.mark.slow
def test_marginal_and_explicit_posteriors_agree_on_sleepstudy():
    """Posterior means of (β, SDs, correlation, σ) within 4 combined Monte Carlo SEs."""
    fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    kw = dict(chains=4, cores=2, random_seed=1, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m, e = fit.sample(**kw), fit.sample(marginalize=False, **kw)
        names = ["beta", "sd_Subject", "corr_Subject", "sigma"]
        sm = az.summary(m.idata, var_names=names)
        se = az.summary(e.idata, var_names=names)
    sm, se = sm[sm["sd"] > 0], se[se["sd"] > 0]
    z = (sm["mean"] - se["mean"]).abs() / np.hypot(sm["mcse_mean"], se["mcse_mean"])
    assert (z < 4).all(), z
    assert m.n_divergences == 0 and (sm["r_hat"] <= 1.01).all()


def _crossed(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g, h = np.meshgrid(np.arange(9), np.arange(7), indexing="ij")
    g, h = g.ravel(), h.ravel()
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + rng.normal(0, 1, 9)[g] + rng.normal(0, 0.7, 7)[h] + rng.normal(0, 0.5, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g], "h": [f"h{k}" for k in h]})


@pytest.mark.slow   # samples twice (~45 s on 2 cores); CI runs it (MIXEDPPL_SLOW=1)
def test_partial_marginal_posterior_has_the_explicit_layout(monkeypatch):
    """With the split forced (h sampled, g integrated out): every term's b_<g> / z_<g> in the
    explicit layout, b = z · sd, the conditional log-likelihood, the predictive; the posterior
    means of the sampled and the drawn effects follow the REML modes."""
    import mixedppl.bayes.marginal as marginal

    monkeypatch.setattr(marginal, "MAX_MARGINAL_SCHUR", 0)
    fit = mp.lmer("y ~ x + (1 | g) + (1 | h)", _crossed(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = fit.sample(**KW)
    assert post.marginalized and "b_h" in post.model.named_vars
    assert "b_g" not in post.model.named_vars
    pst = post.idata.posterior
    for name, levels in [("g", 9), ("h", 7)]:
        assert pst[f"b_{name}"].dims == ("chain", "draw", f"{name}__level", f"{name}__term")
        assert pst[f"b_{name}"].sizes[f"{name}__level"] == levels
        np.testing.assert_allclose(pst[f"b_{name}"].values, pst[f"z_{name}"].values
                                   * pst[f"sd_{name}"].values[..., None, None], rtol=1e-9)
    assert post.idata.log_likelihood["y"].shape == (2, 200, 63)
    for name in ("g", "h"):
        ours = post.random_effects[name].iloc[:, 0]
        assert np.corrcoef(ours, fit.random_effects[name].iloc[:, 0])[0, 1] > 0.95
    assert post.ppc(random_seed=1).posterior_predictive["y"].shape == (2, 200, 63)
    assert post.n_divergences <= 2


@pytest.mark.slow
def test_partial_and_full_marginal_posteriors_agree():
    """The same crossed model sampled with every term integrated out (marginalize=True) and
    with h's effects sampled (the split forced): posterior means of (β, SDs, σ) within 4
    combined Monte Carlo SEs, r_hat ≤ 1.01."""
    import mixedppl.bayes.marginal as marginal

    fit = mp.lmer("y ~ x + (1 | g) + (1 | h)", _crossed(4))
    kw = dict(chains=4, cores=2, random_seed=1, progressbar=False)
    names = ["beta", "sd_g", "sd_h", "sigma"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = fit.sample(marginalize=True, **kw)
        with pytest.MonkeyPatch.context() as mpatch:
            mpatch.setattr(marginal, "MAX_MARGINAL_SCHUR", 0)
            part = fit.sample(**kw)
        sf, sp_ = az.summary(full.idata, var_names=names), az.summary(part.idata, var_names=names)
    assert "b_h" in part.model.named_vars and "b_h" not in full.model.named_vars
    z = (sf["mean"] - sp_["mean"]).abs() / np.hypot(sf["mcse_mean"], sp_["mcse_mean"])
    assert (z < 4).all(), z
    assert (sp_["r_hat"] <= 1.01).all() and (sf["r_hat"] <= 1.01).all()
