"""scale(), poly(), bs() and ns() in a formula on a Dask DataFrame (issue 16).

Their parameters come from the whole column in the level pass (mixedppl.spec.stateful) and are
then fixed transforms on every partition. Checked on randomized data (several seeds, missing
values in the argument columns): at 1, 3 and 7 partitions the fixed-effects and random-effects
model matrices equal the in-memory ones to 1e-12 and the parameters equal closed forms computed
here with pandas (mean / sd with ddof 1, type-7 quantiles and the range for the knots, and
orthonormal poly() columns); the lmer fit equals the in-memory fit to 1e-6 relative, the
binomial and Poisson glmer fits to 1e-5; a constant column in scale(), a degree too large for
the distinct values in poly() and a bad knot count give the pandas path's error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import mixedppl as mp  # noqa: E402
from mixedppl.core.exceptions import ModelSpecError  # noqa: E402
from mixedppl.spec.dask_spec import build_dask_spec, partition_spec  # noqa: E402
from mixedppl.spec.model_spec import build_spec  # noqa: E402
from mixedppl.spec.stateful import Moments  # noqa: E402

from conftest import rel_close  # noqa: E402

FORMULAS = [
    "y ~ scale(x) + (1 | g)",
    "y ~ scale(x, scale = FALSE) + log(z) + (1 + scale(z) | g)",
    "y ~ scale(x, center = 2) + scale(z, center = FALSE) + scale(log(z), scale = 3) + (1 | g)",
    "y ~ poly(x, 3) + (1 | g)",
    "y ~ poly(z, 2):f + (1 | g)",
    "y ~ ns(z, df = 4) + bs(x, df = 5) + (1 | g)",
    "y ~ bs(x, knots = c(-1, 0.5), degree = 2) + (0 + ns(z, 3, intercept = TRUE) | g)",
    "y ~ f + (0 + poly(x, 2) | g)",
]


def data(seed: int, n: int = 150) -> pd.DataFrame:
    """y, x ~ N(0.3, 1.5²), z ~ U(0.5, 6), a factor f and 9 groups g (random intercept and
    z slope); x and z have a few NaN."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 9, n)
    x, z = rng.normal(0.3, 1.5, n), rng.uniform(0.5, 6, n)
    y = 1 + 0.4 * x - 0.3 * (x - 0.3) ** 2 + np.sin(z) + rng.normal(0, 0.6, 9)[g] \
        + rng.normal(0, 0.4, 9)[g] * (z - 3) / 1.5 + rng.normal(0, 0.5, n)
    d = pd.DataFrame({"y": y, "x": x, "z": z, "f": rng.choice(["p", "q", "r"], n),
                      "g": [f"g{k}" for k in g]})
    d.loc[rng.choice(n, 3, replace=False), "x"] = np.nan
    d.loc[rng.choice(n, 2, replace=False), "z"] = np.nan
    return d


def dask_matrices(spec, ddf):
    """X and each term's z of a template spec, stacked over the partitions in order."""
    parts = [partition_spec(spec, ddf.get_partition(i).compute())
             for i in range(ddf.npartitions)]
    parts = [p for p in parts if p is not None]
    return (np.vstack([p.X for p in parts]),
            [np.vstack([p.terms[k].z for p in parts]) for k in range(len(spec.terms))])


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("formula", FORMULAS)
def test_model_matrices_equal_in_memory(client, formula, seed):
    d = data(seed)
    with pytest.warns(mp.core.exceptions.DataWarning):
        ref = build_spec(formula, d)
    for nparts in (1, 3, 7):
        with pytest.warns(mp.core.exceptions.DataWarning):
            spec = build_dask_spec(formula, dd.from_pandas(d, npartitions=nparts),
                                   progress=False)
        assert spec.fe_names == ref.fe_names and spec.n == ref.n
        X, zs = dask_matrices(spec, dd.from_pandas(d, npartitions=nparts))
        rel_close(X, ref.X, 0, 1e-12)
        for z, t in zip(zs, ref.terms):
            rel_close(z, t.z, 0, 1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_merged_moments_equal_numpy(seed):
    """Chan et al.'s pairwise merge over random splits (some empty, some NaN) against NumPy."""
    rng = np.random.default_rng(seed)
    x = rng.normal(1e3, 2.0, 500)
    x[rng.choice(500, 7)] = np.nan
    cuts = np.sort(rng.integers(0, 500, 9))
    ok = x[~np.isnan(x)]
    for c0 in (0.0, 999.5):
        pieces = [Moments.of(p, c0) for p in np.split(x, cuts)]
        m = pieces[0]
        for p in pieces[1:]:
            m = m + p
        assert m.n == len(ok) and (m.lo, m.hi) == (ok.min(), ok.max())
        rel_close([m.mean, m.m2, m.ss], [ok.mean(), np.sum((ok - ok.mean()) ** 2),
                                         np.sum((ok - c0) ** 2)], 1e-12)


def test_parameters_are_the_closed_forms(client):
    """Independent of the pandas path: the centre / scale, knots and orthonormality."""
    d = data(4)
    ok = d.dropna()
    formula = "y ~ scale(x) + ns(z, df = 3) + bs(x, df = 6) + poly(z, 3) + (1 | g)"
    with pytest.warns(mp.core.exceptions.DataWarning):
        spec = build_dask_spec(formula, dd.from_pandas(d, npartitions=5), progress=False)
    params = {str(v.node): spec.fixed_design.plan.params[id(v.node)]
              for v in spec.fixed_design.plan.vars}
    rel_close(params["scale(x)"], [ok.x.mean(), ok.x.std(ddof=1)], 1e-14)
    ns_, bs_ = params["ns(z, df = 3)"], params["bs(x, df = 6)"]
    rel_close(ns_.knots, ok.z.quantile([1 / 3, 2 / 3]), 1e-14)
    rel_close(ns_.boundary, [ok.z.min(), ok.z.max()], 0)
    rel_close(bs_.knots, ok.x.quantile([0.25, 0.5, 0.75]), 1e-14)
    X, _ = dask_matrices(spec, dd.from_pandas(d, npartitions=5))
    P = X[:, [i for i, c in enumerate(spec.fe_names) if c.startswith("poly(")]]
    rel_close(P.T @ P, np.eye(3), 0, 1e-12)
    rel_close(P.sum(axis=0), np.zeros(3), 0, 1e-12)
    rel_close(X[:, spec.fe_names.index("scale(x)")],
              (ok.x - ok.x.mean()) / ok.x.std(ddof=1), 1e-13, 1e-13)


@pytest.mark.parametrize("seed, nparts", [(5, 1), (5, 3), (6, 7)])
def test_lmer_fit_equals_in_memory_fit(client, seed, nparts):
    d = data(seed).dropna()
    formula = "y ~ poly(x, 2) + I(scale(x)^3) + ns(z, df = 3) + (1 + scale(z) | g)"
    ref = mp.lmer(formula, d)
    fit = mp.lmer(formula, dd.from_pandas(d, npartitions=nparts))
    assert not ref.is_singular
    assert type(fit).__name__ == "DaskLMMResult" and fit.nobs == ref.nobs
    assert list(fit.spec.fe_names) == list(ref.spec.fe_names)
    rel_close(fit.theta, ref.theta, 1e-6, 1e-7)
    rel_close(fit.beta, ref.beta, 1e-6, 1e-8)
    rel_close(fit.fe_bse, ref.fe_bse, 1e-6)
    rel_close(fit.sigma, ref.sigma, 1e-6)
    rel_close(fit.loglik, ref.loglik, 1e-6)
    for b, b0 in zip(fit.b, ref.b):
        rel_close(b, b0, 0, 1e-6 * np.abs(b0).max())
    new = data(seed + 100, n=20).dropna()  # new rows: the fitted centre, scale and knots
    lazy = fit.predict(dd.from_pandas(new, npartitions=2))
    pd.testing.assert_series_equal(lazy.compute(), ref.predict(new), rtol=1e-6)


@pytest.mark.parametrize("family, formula, nparts", [
    ("binomial", "cbind(s, m - s) ~ scale(x) + bs(z, df = 4) + (1 | g)", 3),
    ("poisson", "c ~ poly(x, 2) + scale(z, center = FALSE) + (1 | g)", 7)])
def test_glmer_fit_equals_in_memory_fit(client, family, formula, nparts):
    d = data(7).dropna()
    rng = np.random.default_rng(8)
    u = rng.normal(0, 0.7, 9)[d.g.str[1:].astype(int).to_numpy()]
    eta = -0.2 + 0.3 * (d.x - 0.3) / 1.5 + 0.2 * np.cos(d.z) + u
    d = d.assign(m=rng.integers(1, 5, len(d)))
    d = d.assign(s=rng.binomial(d.m, 1 / (1 + np.exp(-eta))), c=rng.poisson(np.exp(eta)))
    ref = mp.glmer(formula, d, family)
    fit = mp.glmer(formula, dd.from_pandas(d, npartitions=nparts), family)
    assert not ref.is_singular
    assert list(fit.spec.fe_names) == list(ref.spec.fe_names)
    rel_close(fit.theta, ref.theta, 1e-5, 1e-6)
    rel_close(fit.beta, ref.beta, 1e-5, 1e-6)
    rel_close(fit.fe_bse, ref.fe_bse, 1e-5)
    rel_close(fit.loglik, ref.loglik, 1e-5)
    for b, b0 in zip(fit.b, ref.b):
        rel_close(b, b0, 0, 1e-5 * np.abs(b0).max())


@pytest.mark.parametrize("formula, match", [
    ("y ~ scale(k) + (1 | g)", "scale\\(k\\): k has standard deviation 0"),
    ("y ~ poly(x3, 3) + (1 | g)", "'degree' must be less than number of unique points in "
                                  "poly\\(x3, 3\\)"),
    ("y ~ ns(z, df = 0) + (1 | g)", "ns\\(z, df = 0\\): df = 0 is too small"),
    ("y ~ poly(f, 2) + (1 | g)", "poly\\(f, 2\\) needs numeric values, but column 'f' is "
                                 "categorical"),
])
def test_bad_input_gives_the_in_memory_error(client, formula, match):
    d = data(9).dropna().assign(k=0.1, x3=lambda t: np.round(t.x).clip(-1, 1))
    with pytest.raises(ModelSpecError, match=match) as mem:
        build_spec(formula, d)
    with pytest.raises(ModelSpecError, match=match) as dask_err:
        build_dask_spec(formula, dd.from_pandas(d, npartitions=3), progress=False)
    assert str(dask_err.value) == str(mem.value)


def test_constant_column_scaled_without_centring_is_fine(client):
    d = data(11).dropna().assign(k=0.1)
    formula = "y ~ 0 + scale(k, center = FALSE) + x + (1 | g)"
    ref = build_spec(formula, d)
    spec = build_dask_spec(formula, dd.from_pandas(d, npartitions=3), progress=False)
    X, _ = dask_matrices(spec, dd.from_pandas(d, npartitions=3))
    rel_close(X, ref.X, 0, 1e-12)


def test_nested_whole_column_calls_are_refused_clearly(client):
    d = data(10).dropna()
    with pytest.raises(ModelSpecError, match="scale\\(x\\) inside scale\\(scale\\(x\\)\\)"):
        build_dask_spec("y ~ scale(scale(x)) + (1 | g)", dd.from_pandas(d, npartitions=2),
                        progress=False)
