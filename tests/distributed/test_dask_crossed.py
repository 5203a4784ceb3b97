"""The BLAS deviance of crossed scalar terms (mixedppl.distributed.crossed) against the graph.

Checked on randomized crossed data (several seeds, 2 and 3 terms, prior weights, REML and ML,
p = 0 and p > 0, θ on the boundary): the deviance and its gradient by both methods (Chebyshev,
direct) equal the compiled in-memory graph's to 1e-10 relative, the gradient equals central
differences of the deviance, the deviance equals the independent dense marginal-likelihood one
(``independent.DenseLMM``); a Dask fit through it equals the in-memory fit to 1e-6 (1 and 7
partitions); counts spread over orders of magnitude pick the direct method.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import mixedppl as mp  # noqa: E402
from mixedppl.distributed.crossed import (CrossedScalarObjective, chebyshev_degree,  # noqa: E402
                                          crossed_scalar_applies)
from mixedppl.distributed.lmm import dask_objective, fit_lmm_dask  # noqa: E402
from mixedppl.fit.lmm_objective import LMMObjective  # noqa: E402
from mixedppl.results.dask import DaskLMMResult  # noqa: E402
from mixedppl.spec.dask_spec import build_dask_spec  # noqa: E402

from conftest import rel_close  # noqa: E402
from independent import DenseLMM  # noqa: E402


def crossed(seed: int, n: int = 600, levels=(40, 15, 4), skew: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    if skew:   # level counts spread over two orders of magnitude
        pa = 1.0 / np.arange(1, levels[0] + 1) ** 1.5
        a = rng.choice(levels[0], n, p=pa / pa.sum())
    else:
        a = rng.integers(0, levels[0], n)
    b, c = rng.integers(0, levels[1], n), rng.integers(0, levels[2], n)
    x = rng.normal(size=n)
    y = (1 + 0.5 * x + rng.normal(0, 1, levels[0])[a] + rng.normal(0, 0.6, levels[1])[b]
         + rng.normal(0, 0.8, levels[2])[c] + rng.normal(size=n))
    return pd.DataFrame({"y": y, "x": x, "a": a, "b": b, "c": [f"c{k}" for k in c],
                         "w": rng.uniform(0.5, 2.0, n)})


CASES = [("y ~ x + (1 | a) + (1 | b)", {}), ("y ~ x + (1 | a) + (1 | b) + (1 | c)", {"weights": "w"}),
         ("y ~ 0 + x + (1 | a) + (1 | b)", {})]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("reml", [True, False])
def test_deviance_and_gradient_equal_the_graph(seed, case, reml):
    formula, kw = CASES[case]
    spec = mp.Model(formula, crossed(seed, skew=seed == 3), **kw).spec
    graph = LMMObjective(spec, reml)
    rng = np.random.default_rng(seed)
    thetas = [spec.theta_start(), rng.uniform(0.05, 3, spec.n_theta),
              np.r_[0.0, rng.uniform(0.1, 2, spec.n_theta - 1)],
              np.r_[rng.uniform(0.1, 2, spec.n_theta - 1), 0.0]]
    for method in ("chebyshev", "direct"):
        fast = CrossedScalarObjective(spec, reml, cp=graph.cp, method=method)
        for theta in thetas:
            (f, g), (f0, g0) = fast(theta), graph(theta)
            rel_close(f, f0, 1e-12)
            rel_close(g, g0, 0, 1e-10 * max(1.0, np.abs(g0).max()))


@pytest.mark.parametrize("seed", [4, 5])
def test_gradient_equals_central_differences_and_dense_deviance(seed):
    d = crossed(seed, n=120, levels=(12, 6, 3))
    spec = mp.Model("y ~ x + (1 | a) + (1 | b) + (1 | c)", d).spec
    rng = np.random.default_rng(seed)
    for reml in (True, False):
        fast = CrossedScalarObjective(spec, reml, cp=LMMObjective(spec, reml).cp)
        dense = DenseLMM(spec, reml)
        for theta in rng.uniform(0.1, 2.5, (3, spec.n_theta)):
            f, g = fast(theta)
            rel_close(f, dense(theta), 1e-9)
            h = 1e-6
            fd = [(fast(theta + h * e)[0] - fast(theta - h * e)[0]) / (2 * h)
                  for e in np.eye(spec.n_theta)]
            rel_close(g, fd, 1e-5, 1e-5)


def test_method_choice_and_degree():
    assert chebyshev_degree(900.0, 1100.0) == 15
    assert chebyshev_degree(1.0, 1e4) > 48
    spec = mp.Model("y ~ x + (1 | a) + (1 | b)", crossed(6, n=3000, levels=(200, 20, 3),
                                                       skew=True)).spec
    fast = CrossedScalarObjective(spec, cp=LMMObjective(spec).cp)
    assert fast.method == "direct" and fast.degree is None
    balanced = mp.Model("y ~ x + (1 | a) + (1 | b)", crossed(6, n=3000, levels=(20, 8, 3))).spec
    fast = CrossedScalarObjective(balanced, cp=LMMObjective(balanced).cp)
    assert fast.method == "chebyshev" and fast.degree <= 48
    wide = mp.Model("y ~ x + (1 + x | a) + (1 | b)", crossed(6)).spec
    assert not crossed_scalar_applies(LMMObjective(wide).structure)
    with pytest.raises(ValueError, match="one-column"):
        CrossedScalarObjective(wide, cp=LMMObjective(wide).cp)


@pytest.mark.parametrize("seed, nparts, schur", [(7, 1, "chebyshev"), (7, 7, "direct"),
                                                 (8, 7, "chebyshev"), (8, 1, "auto")])
def test_dask_fit_through_it_equals_the_in_memory_fit(client, seed, nparts, schur):
    d = crossed(seed)
    formula = "y ~ x + (1 | a) + (1 | b) + (1 | c)"
    ref = mp.lmer(formula, d, weights="w")
    spec = build_dask_spec(formula, dd.from_pandas(d, npartitions=nparts), weights="w")
    obj = dask_objective(spec, schur=schur)
    assert isinstance(obj, CrossedScalarObjective) == (schur != "auto")  # auto: small → graph
    fit = DaskLMMResult(fit_lmm_dask(spec, schur=schur))
    rel_close(fit.theta, ref.theta, 1e-6, 1e-7)
    rel_close(fit.beta, ref.beta, 1e-6, 1e-8)
    rel_close(fit.sigma, ref.sigma, 1e-6)
    rel_close(fit.loglik, ref.loglik, 1e-6)
    rel_close(fit.fe_bse, ref.fe_bse, 1e-6)
    for b, b0 in zip(fit.b, ref.b):
        rel_close(b, b0, 0, 1e-6 * np.abs(b0).max())
    with pytest.raises(ValueError, match="schur"):
        dask_objective(spec, schur="fast")
