"""glmer on a Dask DataFrame (issue 16): binomial (logit) and Poisson (log) against the
in-memory fit of the same rows, on a LocalCluster with 2 in-process workers.

The Laplace deviance at fixed (θ, β) equals the in-memory objective's to 1e-10 relative at 1, 7
and 64 partitions, and the independent one-factor Laplace deviance of ``independent.py``; the
central-difference gradient equals the in-memory exact gradient; the fit's θ̂, β̂, SEs, logLik
and BLUPs equal the in-memory fit's to 1e-5 relative. The fits make ~10² map-reduces each (one
per inner Newton step), so the 64-partition fit is marked slow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import mixedppl as mp  # noqa: E402
from mixedppl.distributed.glmm import DaskLaplace  # noqa: E402
from mixedppl.families.registry import Binomial  # noqa: E402
from mixedppl.fit.laplace import LaplaceObjective  # noqa: E402
from mixedppl.spec.dask_spec import build_dask_spec  # noqa: E402

from conftest import rel_close  # noqa: E402
from independent import laplace_deviance  # noqa: E402


def counts_data(seed: int, family: str, n: int = 200) -> pd.DataFrame:
    """Counts with a random intercept of g (10 levels) and of h (4 levels, strings)."""
    rng = np.random.default_rng(seed)
    g, h, x = rng.integers(0, 10, n), rng.integers(0, 4, n), rng.normal(size=n)
    eta = -0.3 + 0.6 * x + rng.normal(0, 0.8, 10)[g] + rng.normal(0, 0.4, 4)[h]
    if family == "binomial":
        trials = rng.integers(1, 6, n)
        y = rng.binomial(trials, 1 / (1 + np.exp(-eta)))
        return pd.DataFrame({"s": y, "f": trials - y, "x": x, "g": g, "h": [f"h{k}" for k in h]})
    return pd.DataFrame({"s": rng.poisson(np.exp(eta)), "x": x, "g": g,
                         "h": [f"h{k}" for k in h]})


FORMULAS = {"binomial": "cbind(s, f) ~ x + (1 | g) + (1 | h)",
            "poisson": "s ~ x + (1 | g) + (1 | h)"}


@pytest.mark.parametrize("family, nparts", [
    ("binomial", 1), ("binomial", 7), ("binomial", 64), ("poisson", 7),
    pytest.param("poisson", 1, marks=pytest.mark.slow),
    pytest.param("poisson", 64, marks=pytest.mark.slow)])
def test_laplace_deviance_at_fixed_point(client, family, nparts):
    d = counts_data(1, family)
    spec_mem = mp.Model(FORMULAS[family], d, family).spec
    ref = LaplaceObjective(spec_mem, spec_mem.family, spec_mem.link, *spec_mem.counts())
    obj = DaskLaplace(build_dask_spec(FORMULAS[family], dd.from_pandas(d, npartitions=nparts),
                                      family))
    rng = np.random.default_rng(nparts)
    x = np.concatenate([np.abs(rng.normal(size=2)) + 0.2, rng.normal(0, 0.5, 2)])
    rel_close(obj.deviance(x), ref(x)[0], 1e-10)
    if nparts == 7:  # the central differences: 8 more deviances
        f, grad = obj(x)
        rel_close(grad, ref(x)[1], 1e-5, 1e-6)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_deviance_is_the_independent_laplace_deviance(client, family):
    d = counts_data(2, family)
    formula = FORMULAS[family].replace(" + (1 | h)", "")
    obj = DaskLaplace(build_dask_spec(formula, dd.from_pandas(d, npartitions=5), family))
    n = d.s + d.f if family == "binomial" else np.ones(len(d))
    for theta, beta in ((0.7, (-0.2, 0.5)), (1.3, (0.1, 0.8))):
        eta = beta[0] + beta[1] * d.x.to_numpy()
        ref = laplace_deviance(d.s.to_numpy(float), np.asarray(n, float), family,
                               d.g.to_numpy(), 10, eta, theta)
        rel_close(obj.deviance(np.array([theta, *beta])), ref, 1e-10)


def compare(fit, ref, rtol=1e-5):
    rel_close(fit.theta, ref.theta, rtol, 1e-6)
    rel_close(fit.beta, ref.beta, rtol, 1e-6)
    rel_close(fit.fe_bse, ref.fe_bse, rtol)
    rel_close(fit.loglik, ref.loglik, rtol)
    for b, b0 in zip(fit.b, ref.b):
        rel_close(b, b0, 0, rtol * np.abs(b0).max())


@pytest.mark.parametrize("family, nparts", [
    ("poisson", 1),
    pytest.param("binomial", 3, marks=pytest.mark.slow),
    pytest.param("binomial", 64, marks=pytest.mark.slow),
    pytest.param("poisson", 7, marks=pytest.mark.slow)])
def test_glmer_fit_equals_in_memory_fit(client, family, nparts):
    d = counts_data(3, family)
    formula = FORMULAS[family].replace(" + (1 | h)", "")
    ref = mp.glmer(formula, d, family)
    ddf = dd.from_pandas(d, npartitions=nparts)
    fit = mp.glmer(formula, ddf, family)
    assert type(fit).__name__ == "DaskGLMMResult" and fit.nobs == ref.nobs
    compare(fit, ref)
    fitted = fit.fitted()
    assert fitted.npartitions == nparts
    pd.testing.assert_series_equal(fitted.compute(), ref.fitted(), rtol=1e-5)
    pd.testing.assert_series_equal(fit.residuals().compute(), ref.residuals(), rtol=1e-4,
                                   atol=1e-6)
    new = counts_data(4, family, n=30)
    lazy = fit.predict(dd.from_pandas(new, npartitions=2), type="link")
    pd.testing.assert_series_equal(lazy.compute(), ref.predict(new, type="link"), rtol=1e-5)


def test_unsupported_family_says_what_to_do(client):
    d = counts_data(5, "poisson")
    d["s"] = d["s"] + 0.5
    with pytest.raises(NotImplementedError, match="Gamma|gamma"):
        mp.glmer("s ~ x + (1 | g)", dd.from_pandas(d, npartitions=2), "gamma")


def family_of(name: str):
    """"binomial" / "poisson", or "binomial-probit" for a binomial with that link."""
    return Binomial(link=name.split("-")[1]) if "-" in name else name


@pytest.mark.parametrize("family, seed, nparts, slope", [
    ("binomial", 11, 1, False), ("binomial", 12, 7, True), ("poisson", 13, 7, False),
    ("poisson", 14, 3, True), ("binomial-probit", 15, 7, False),
    ("binomial-probit", 16, 3, True), ("binomial-cloglog", 17, 1, False),
    ("binomial-cloglog", 19, 7, True)])
def test_exact_gradient_equals_in_memory_gradient_and_differences(client, family, seed, nparts,
                                                                  slope):
    """The distributed exact gradient (implicit-function derivative through û; for probit and
    cloglog with the observed information in du/dx and Fisher weights in log|A|) against the
    in-memory graph's exact gradient and against central differences of the distributed D."""
    kind, family = family.split("-")[0], family_of(family)
    d = counts_data(seed, kind)
    formula = FORMULAS[kind].replace("(1 | g)", "(1 + x | g)") if slope else FORMULAS[kind]
    spec_mem = mp.Model(formula, d, family).spec
    ref = LaplaceObjective(spec_mem, spec_mem.family, spec_mem.link, *spec_mem.counts())
    obj = DaskLaplace(build_dask_spec(formula, dd.from_pandas(d, npartitions=nparts), family))
    rng = np.random.default_rng(seed)
    lower = spec_mem.theta_lower()
    theta = np.where(lower == 0, np.abs(rng.normal(size=len(lower))) + 0.2,
                     rng.normal(0, 0.3, len(lower)))
    x = np.concatenate([theta, rng.normal(0, 0.5, spec_mem.p)])
    f, g = obj(x)
    f0, g0 = ref(x)
    rel_close(f, f0, 1e-9)
    rel_close(g, g0, 1e-5, 1e-6)
    h = 1e-5 * np.maximum(np.abs(x), 0.1)
    fd = []
    for j in range(len(x)):
        e = np.zeros(len(x))
        e[j] = h[j]
        fd.append((obj.deviance(x + e) - obj.deviance(x - e)) / (2 * h[j]))
    rel_close(g, fd, 1e-5, 1e-5)
    _, gd = obj.difference_gradient(x)       # the structured terms' fallback agrees too
    rel_close(gd, g, 1e-5, 1e-5)


@pytest.mark.parametrize("family, formula, nparts", [
    ("binomial-probit", "cbind(s, f) ~ x + (1 | g)", 3),
    ("poisson", "s ~ x + offset(log(t)) + (1 | g)", 7),
    pytest.param("binomial-cloglog", FORMULAS["binomial"], 7, marks=pytest.mark.slow),
    pytest.param("binomial-probit", "cbind(s, f) ~ x + (1 | g)", 64, marks=pytest.mark.slow)])
def test_more_families_fit_equals_in_memory_fit(client, family, formula, nparts):
    kind, family = family.split("-")[0], family_of(family)
    d = counts_data(3, kind)
    d["t"] = np.random.default_rng(0).uniform(0.5, 3.0, len(d))
    ref = mp.glmer(formula, d, family)
    fit = mp.glmer(formula, dd.from_pandas(d, npartitions=nparts), family)
    assert fit.link.name == ref.link.name
    compare(fit, ref)
