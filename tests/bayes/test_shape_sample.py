"""``fit.sample()`` for families with a shape parameter beside φ (glmmTMB's ``psi``): the Tweedie
power p ~ Uniform(1, 2) and Student's df ν ~ Gamma(2, 0.1) (brms' default). The PyMC model's
observed log-density at random points equals the densities written independently
(``scipy.stats.t``; the Tweedie series in NumPy, itself checked against a compound
Poisson–Gamma sum in tests/families/test_tweedie_t.py); a short sampling run lands near the
Laplace fit (slow)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("pymc")

import mixedppl as mp  # noqa: E402
from mixedppl.bayes.glmm_pymc import glmm_to_pymc  # noqa: E402
from mixedppl.families.tweedie import tweedie_logpdf_np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "families"))
from test_tweedie_t import _model  # noqa: E402


def _independent(kind, y, mu, phi, shape):
    if kind == "t":
        return float(np.sum(stats.t.logpdf(y, shape, loc=mu, scale=phi)))
    return float(np.sum(tweedie_logpdf_np(y, mu, phi, shape)))


@pytest.mark.parametrize("kind", ["tweedie", "t"])
def test_pymc_logp_is_the_family_density(kind):
    spec = _model(kind, 2).spec
    model, used = glmm_to_pymc(spec, spec.family, spec.link, *spec.counts())
    name = spec.family.shape.name
    assert str(used["shape"]) == ("Uniform(lower=1, upper=2)" if kind == "tweedie"
                                  else "Gamma(alpha=2, beta=0.1)")
    logp_y = model.compile_logp(vars=[model["y"]], jacobian=False)
    rng = np.random.default_rng(5)
    t = spec.terms[0]
    for _ in range(3):
        point = model.initial_point()
        beta = rng.normal(0, 0.3, spec.p)
        z = rng.normal(size=(t.n_levels, 1))
        log_sd, log_phi = np.log(0.5) + rng.normal(scale=0.3), rng.normal(scale=0.3)
        shape = rng.uniform(1.1, 1.9) if kind == "tweedie" else rng.uniform(2.0, 30.0)
        point.update({"beta": beta, "z_g": z, "sd_g_log__": np.asarray(log_sd),
                      "dispersion_log__": np.asarray(log_phi)})
        key = [k for k in point if k.startswith(name + "_")][0]   # the transformed shape
        lo, hi = (1.0, 2.0) if kind == "tweedie" else (None, None)
        point[key] = np.asarray(np.log((shape - lo) / (hi - shape)) if lo is not None
                                else np.log(shape))
        eta = spec.X @ beta + spec.offset + z[t.codes, 0] * np.exp(log_sd)
        mu = spec.link.linkinv_np(eta)
        want = _independent(kind, spec.y, mu, np.exp(log_phi), shape)
        np.testing.assert_allclose(logp_y(point), want, rtol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["tweedie", "t"])
def test_posterior_is_near_the_laplace_fit(kind):
    model = _model(kind, 1)
    fit = model.fit()
    post = fit.sample(draws=400, tune=400, chains=2, progressbar=False, random_seed=3)
    beta = post.idata.posterior["beta"].mean(("chain", "draw")).to_numpy()
    sd = post.idata.posterior["beta"].std(("chain", "draw")).to_numpy()
    # a flat-ish prior and 60 rows: the posterior mean is within a posterior SD of the mode
    assert np.all(np.abs(beta - fit.fe_params.to_numpy()) < sd)
    shape = float(post.idata.posterior[fit.spec.family.shape.name].mean())
    assert np.isfinite(shape)
