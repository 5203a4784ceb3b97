"""The NumPy tier's composed Laplace functions (mixedppl/graph/laplace_split.py).

The family graph (per-row ℓ, ℓ′, h, h′ or w, w′ and the φ chain rule) and the family-free
structure graphs must give the fused graph's numbers (mixedppl/graph/laplace.py) for every
family and link, and exact gradients: the total derivative of the Laplace deviance
D(θ, β, φ) = G(û(θ, β, φ), θ, β, φ) is checked by central differences of D itself (û
recomputed at every point) on randomized small data, one- and two-term models, the latter in
both storage modes of the Schur block. Structures and families share graphs: a new family
compiles only its family graph, a second term nothing.
"""

import warnings

import numpy as np
import pandas as pd
import pytensor
import pytest

import mixedppl as mp
from mixedppl.api import Model
from mixedppl.core import compile as C
from mixedppl.fit.laplace import LaplaceObjective
from mixedppl.graph import laplace as fused
from mixedppl.graph import laplace_blocks as blocks
from mixedppl.graph.laplace_inputs import LaplaceStructure, design_inputs, row_pairs
from mixedppl.graph.laplace_split import estimates_function, split_functions

#: (family, link, ziformula, dispformula): every family of the table, non-canonical links, every
#: cumulative link (their η-derivatives are written out: families/cumulative.py)
CASES = [("binomial", "logit", None, None), ("binomial", "probit", None, None),
         ("binomial", "cloglog", None, None), ("poisson", "log", None, None),
         ("negative_binomial", "log", None, None), ("nbinom1", "log", None, None),
         ("gamma", "log", None, None), ("gamma", "inverse", None, None),
         ("beta", "logit", None, None), ("student_t", "identity", None, None),
         ("truncated_poisson", "log", None, None), ("tweedie", "log", None, None),
         ("betabinomial", "logit", None, None), ("truncated_nbinom2", "log", None, None),
         ("cumulative", "logit", None, None), ("cumulative", "probit", None, None),
         ("poisson", "log", "~ x", None), ("negative_binomial", "log", None, "~ x"),
         ("cumulative", "cloglog", None, None), ("cumulative", "loglog", None, None),
         ("cumulative", "cauchit", None, None)]
FORMULAS = ["y ~ x + (1 | g1)", "y ~ x + (1 + x | g1)", "y ~ x + (1 | g1) + (1 | g2)",
            "y ~ x + (1 + x | g1) + (1 | g2)"]


@pytest.fixture
def numpy_tier(monkeypatch):
    monkeypatch.setattr(C.config, "tier", "numpy")
    yield


def _data(family: str, seed: int, n: int = 48) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    g1, g2 = r.integers(0, 6, n), r.integers(0, 4, n)
    x = r.normal(size=n)
    eta = 0.2 + 0.5 * x + 0.6 * r.normal(size=6)[g1] + 0.4 * r.normal(size=4)[g2]
    mu = np.exp(eta)
    p = 1 / (1 + np.exp(-eta))
    trials = r.integers(1, 6, n)
    y = {"binomial": r.uniform(size=n) < p, "poisson": r.poisson(mu),
         "negative_binomial": r.negative_binomial(3, 3 / (3 + mu)),
         "nbinom1": r.negative_binomial(3, 3 / (3 + mu)),
         "gamma": r.gamma(4.0, mu / 4.0), "beta": r.beta(4 * p, 4 * (1 - p)),
         "student_t": eta + r.standard_t(5, n) * 0.5,
         "truncated_poisson": 1 + r.poisson(mu), "tweedie": r.poisson(mu) * r.gamma(2.0, 0.5, n),
         "betabinomial": r.binomial(trials, p), "truncated_nbinom2": 1 + r.poisson(mu),
         "cumulative": np.digitize(eta + r.logistic(size=n), [-0.5, 0.5, 1.5])}[family]
    frame = pd.DataFrame({"y": np.asarray(y, float), "x": x, "g1": g1.astype(str),
                          "g2": g2.astype(str), "trials": trials.astype(float)})
    if family == "cumulative":
        frame["y"] = pd.Categorical(frame["y"].astype(int), ordered=True)
    return frame


def _objective(case, formula, data, pairs_mode=False):
    family, link, zi, disp = case
    if family == "betabinomial":
        formula = formula.replace("y ~", "cbind(y, trials - y) ~")
    spec = Model(formula, data, family, link, ziformula=zi, dispformula=disp).spec
    obj = LaplaceObjective(spec, spec.family, spec.link, *spec.counts())
    if pairs_mode and len(spec.terms) > 1:              # force the pairs form of the Schur block
        codes = spec.terms[0].codes
        a, b = np.nonzero(codes[:, None] == codes[None, :])
        obj.structure = LaplaceStructure("pairs", spec.terms[0].n_cols)
        obj.fns = {**split_functions(spec.family, spec.link, obj.structure),
                   "estimates": estimates_function(spec.family, spec.link, obj.structure)}
        obj.data = design_inputs(spec, *spec.counts(), (a.astype(np.int64), b.astype(np.int64)))
    return spec, obj


def _start(spec, obj, seed):
    r = np.random.default_rng(seed)
    theta = r.uniform(0.4, 0.9, spec.n_theta)
    theta[spec.theta_lower() < 0] *= 0.3                # off-diagonal θ: small
    phi = r.normal(0, 0.2, obj.n_phi)
    if spec.family.key[0] == "cumulative":              # increasing thresholds
        phi = np.concatenate([[-0.4], np.log(np.full(obj.n_phi - 1, 0.9))])
    beta = r.normal(0, 0.2, spec.p)
    if spec.link.name == "inverse":                     # η = 1/μ > 0 at and near the mode
        theta *= 0.2
        beta = np.concatenate([[1.0 / np.mean(obj.data[0])], np.zeros(spec.p - 1)])
    return np.concatenate([theta, beta, phi])


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c if v))
def test_composed_gradient_is_the_total_derivative(numpy_tier, case):
    """∂D/∂(θ, β, φ) from the composed graphs against central differences of D (û recomputed),
    for one and two terms, scalar and vector first terms, both Schur-block storage modes."""
    for seed, formula in enumerate(FORMULAS):
        data = _data(case[0], seed)
        for pairs_mode in ((False, True) if "g2" in formula else (False,)):
            spec, obj = _objective(case, formula, data, pairs_mode)
            x = _start(spec, obj, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                d, grad = obj(x)

                def D(xx):
                    obj.u = np.zeros(obj.q)
                    return obj(xx)[0]

                h = 1e-4        # D is exact to ~1e-10 relative: noise / h well under atol
                fd = np.array([(D(x + h * e) - D(x - h * e)) / (2 * h) for e in np.eye(len(x))])
            assert np.isfinite(d), (formula, pairs_mode)
            # central differences (error O(h²)) of a D recomputed to ~1e-10 relative
            np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5 * max(1.0, abs(d)),
                                       err_msg=f"{formula} pairs={pairs_mode}")


def _fused_estimates(key, family, link):
    """The estimates as one fused graph (what laplace_functions compiled before the split)."""
    s = blocks.symbols(*key[:2], family)
    p = fused._pieces(s, family, link)
    return blocks.graph_inputs(s), [p["G"], p["g"], p["ldL2"], p["ll"], p["eta"], p["mu"],
                              p["A"].dense()]


def _fused(build, key, family, link):
    inputs, outputs = build(key, family, link)
    return pytensor.function(inputs, outputs, mode=C.numpy_tier_mode(),
                             on_unused_input="ignore")


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[14], CASES[16]],
                         ids=["binomial", "nb2", "cumulative", "zip"])
def test_composed_functions_equal_the_fused_graphs(numpy_tier, case):
    """inner, outer and estimates: the fused graph's numbers up to rounding (1e-10 relative)."""
    for formula in (FORMULAS[0], FORMULAS[3]):
        spec, obj = _objective(case, formula, _data(case[0], 3))
        fam, link = spec.family, spec.link
        key = obj.structure.graph_key()
        x = _start(spec, obj, 3)
        theta, beta, phi = obj.split(x)
        u = np.random.default_rng(0).normal(0, 0.3, obj.q)
        args = (u, theta, beta, phi, *obj.data)
        split = {**split_functions(fam, link, obj.structure),
                 "estimates": estimates_function(fam, link, obj.structure)}
        ref = {"inner": _fused(fused._build_inner, key, fam, link),
               "outer": _fused(fused._build_outer, key, fam, link),
               "estimates": _fused(_fused_estimates, key, fam, link)}
        for name in ("inner", "outer", "estimates"):
            extra = (0.0,) if name == "inner" else ()
            got, want = split[name](*extra, *args), ref[name](*extra, *args)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10,
                                           atol=1e-10 * max(1.0, float(np.abs(w).max(initial=0))),
                                           err_msg=f"{formula} {name}")


def test_families_and_structures_share_graphs(numpy_tier):
    """A one-term model compiles the structure graphs that a second term and every other family
    then reuse; a new family compiles only its family graph."""
    C.clear_cache()

    def compiles(case, formula) -> int:
        before = C.cache_stats["compiled"] + C.cache_stats["disk"]
        spec, obj = _objective(case, formula, _data(case[0], 11))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj(_start(spec, obj, 0))
            obj.estimates(_start(spec, obj, 0))
        return C.cache_stats["compiled"] + C.cache_stats["disk"] - before

    poisson, nb2 = CASES[3], CASES[4]
    assert compiles(poisson, FORMULAS[0]) == 5          # η, family, inner, outer, estimates
    assert compiles(poisson, FORMULAS[2]) == 0          # a second term: the same graphs
    assert compiles(nb2, FORMULAS[2]) == 1              # the family graph only (observed Hessian)
    assert compiles(nb2, FORMULAS[0]) == 0
    assert compiles(("cumulative", "logit", None, None), FORMULAS[2]) == 1
    assert compiles(poisson, FORMULAS[1]) == 4          # a vector first term: its structure set
    assert row_pairs(_objective(poisson, FORMULAS[2], _data("poisson", 11))[0]) is None  # dense
    C.clear_cache()


def _unusual_data(seed: int) -> pd.DataFrame:
    """Three crossed / nested factors, a slope varying by ``a``, and one response per family."""
    rng = np.random.default_rng(seed)
    n = 240
    d = pd.DataFrame({"a": rng.integers(0, 12, n).astype(str),
                      "b": rng.integers(0, 8, n).astype(str),
                      "c": rng.integers(0, 5, n).astype(str), "x": rng.normal(size=n)})
    ia, ib, ic = (d[k].astype(int).to_numpy() for k in "abc")
    eta = (0.3 + 0.5 * d.x + rng.normal(0, .7, 12)[ia] + rng.normal(0, .5, 8)[ib]
           + rng.normal(0, .4, 5)[ic] + rng.normal(0, .3, 12)[ia] * d.x).to_numpy()
    d["yp"] = rng.poisson(np.exp(eta))
    d["yb"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    d["ng"] = rng.integers(1, 6, n)
    d["kb"] = rng.binomial(d.ng, 1 / (1 + np.exp(-eta)))
    d["yg"] = rng.gamma(2.0, np.exp(eta) / 2.0)
    d["ynb"] = rng.negative_binomial(2.0, 2.0 / (2.0 + np.exp(eta)))
    latent = eta + rng.logistic(size=n)
    d["yo"] = pd.Categorical(np.searchsorted(np.quantile(latent, [.25, .5, .75]), latent)
                             .astype(str), ordered=True)
    return d


#: structures beyond CASES × FORMULAS: three terms, a correlated slope beside a second term,
#: uncorrelated terms, nesting, counts out of n_trials, dispersion families, CLMM links
UNUSUAL = [("glmer", "yp ~ x + (1 | a) + (1 | b) + (1 | c)", {"family": "poisson"}),
           ("glmer", "yp ~ x + (1 + x | a) + (1 | b)", {"family": "poisson"}),
           ("glmer", "yb ~ x + (1 + x || a)", {"family": "binomial"}),
           ("glmer", "cbind(kb, ng - kb) ~ x + (1 | a/b)", {"family": "binomial"}),
           ("glmer", "yg ~ x + (1 | a) + (1 | b)", {"family": "Gamma"}),
           ("glmer", "ynb ~ x + (1 + x | a)", {"family": "negative_binomial"}),
           ("clmm", "yo ~ x + (1 | a) + (1 | b) + (1 | c)", {"link": "probit"}),
           ("clmm", "yo ~ x + (1 + x | a)", {"link": "cloglog"})]


@pytest.mark.slow   # compiles the fused C-tier graphs of eight structures (minutes, once)
@pytest.mark.parametrize("api, formula, kwargs", UNUSUAL, ids=[u[1] for u in UNUSUAL])
def test_whole_fits_agree_between_tiers(monkeypatch, api, formula, kwargs):
    """A fit on the NumPy tier (composed graphs) reaches the C tier's optimum (the fused
    graphs of mixedppl/graph/laplace.py) on structures the function-level tests do not
    cover: measured 1e-13 in logLik, ≤ 1e-8 in β and θ over three seeds."""
    if not C._has_compiler():
        pytest.skip("no C compiler: only the NumPy tier exists")
    data = _unusual_data(0)
    fits = {}
    for tier in ("numpy", "c"):
        monkeypatch.setattr(C.config, "tier", tier)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[tier] = getattr(mp, api)(formula, data, **kwargs)
    a, b = fits["numpy"], fits["c"]
    assert abs(a.loglik - b.loglik) < 1e-8
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.fe_bse, b.fe_bse, rtol=1e-5)
