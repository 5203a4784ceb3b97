"""Time to first result (docs/compile.md): one compiled LMM graph serves many formulas, the
NumPy tier needs no C compiler and does not scan PyTensor's compile dir, and the C tier, built
in the background, gives the same numbers. Nothing here is timed."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import mixedppl as mp
from independent import DenseLMM, dense_Z, lambda_matrix
from mixedppl.core import compile as C

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh(monkeypatch):
    """An empty in-process cache and the NumPy tier (restored afterwards)."""
    monkeypatch.setattr(C.config, "tier", "numpy")
    C.clear_cache()
    yield
    C.clear_cache()


def _lmm_compiles(formula, data):
    before = C.cache_stats["compiled"] + C.cache_stats["disk"]
    fit = mp.lmer(formula, data)
    return fit, C.cache_stats["compiled"] + C.cache_stats["disk"] - before


def test_second_structure_reuses_the_compiled_graph(fresh):
    sleep = mp.datasets.load("sleepstudy")
    _, first = _lmm_compiles("Reaction ~ Days + (Days | Subject)", sleep)
    assert first == 2                       # the deviance and the estimates
    # another term width (ℓ = 1 instead of 2) and other fixed effects: the same graph
    fit, second = _lmm_compiles("Reaction ~ 1 + (1 | Subject)", sleep)
    assert second == 0
    assert fit.objective.structure.graph_key == ("none", False)
    pen = mp.datasets.load("penicillin")
    crossed, third = _lmm_compiles("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    # a second term: the "dense" graph, whose deviance the one-term models already ran on this
    # tier (an empty second block, fit/lmm_objective.py): only its estimates are new
    assert third == 1
    other, fourth = _lmm_compiles("Reaction ~ Days + (Days | Subject) + (1 | Half)",
                                  _sleep_with_groups())
    assert fourth == 0                      # other data, widths and level counts: the same graph
    assert other.objective.structure.graph_key == crossed.objective.structure.graph_key
    pastes = mp.datasets.load("pastes")
    nested, fifth = _lmm_compiles("strength ~ 1 + (1 | batch/cask)", pastes)
    assert nested.objective.structure.graph_key == ("sparse", True)
    assert fifth == 2                       # A_R1 from its non-zero blocks: the "sparse" graph


def _sleep_with_groups():
    sleep = mp.datasets.load("sleepstudy").copy()
    sleep["Half"] = np.where(sleep["Days"] >= 5, "late", "early")
    sleep["Pair"] = (sleep["Subject"].astype(str).str[-1].astype(int) % 3).astype(str)
    return sleep


def test_vector_terms_after_the_first_share_one_graph(fresh):
    """Λ_R with 2×2 blocks (not diagonal), in two formulas of different widths: one compile,
    and the generic graph's deviance, modes and conditional variances equal the dense
    formulas (tests/independent.py; no other reference covers vector terms after the first)."""
    sleep = _sleep_with_groups()
    a, n_a = _lmm_compiles("Reaction ~ Days + (1 | Subject) + (Days | Pair)", sleep)
    b, n_b = _lmm_compiles("Reaction ~ Days + (1 | Subject) + (Days | Half) + (1 | Pair)",
                           sleep)
    assert a.objective.structure.graph_key == b.objective.structure.graph_key == ("dense", False)
    assert n_a == 2 and n_b == 0
    for fit in (a, b):
        spec = fit.spec
        theta = np.linspace(0.4, 1.1, spec.n_theta)
        np.testing.assert_allclose(fit.objective.deviance(theta), DenseLMM(spec)(theta),
                                   rtol=1e-10)
        est = fit.objective.estimates(theta)
        Z, _ = dense_Z(spec)
        Lam = lambda_matrix(spec, theta)
        ZL = Z @ Lam
        A = ZL.T @ (spec.weights[:, None] * ZL) + np.eye(ZL.shape[1])
        cov = Lam @ np.linalg.inv(A) @ Lam.T
        resid = spec.y - spec.offset - spec.X @ est["beta"]
        b_dense = Lam @ np.linalg.solve(A, ZL.T @ (spec.weights * resid))
        start = 0
        for t, b_k, cv_k in zip(spec.terms, est["b"], est["condvar"]):
            q = t.n_levels * t.n_cols
            np.testing.assert_allclose(np.ravel(b_k), b_dense[start:start + q], rtol=1e-8,
                                       atol=1e-8)
            blocks = [cov[start + g * t.n_cols:start + (g + 1) * t.n_cols,
                          start + g * t.n_cols:start + (g + 1) * t.n_cols]
                      for g in range(t.n_levels)]
            np.testing.assert_allclose(cv_k, np.array(blocks), rtol=1e-8, atol=1e-12)
            start += q


@pytest.mark.slow   # builds C modules in an empty compile dir (~18 s)
def test_c_tier_gives_the_numpy_tiers_numbers(monkeypatch, tmp_path):
    """The C tier (asked for by the second lookup, built in the background, returned by the
    third) evaluates the same deviance and gradient as the NumPy tier."""
    if not C._has_compiler():
        pytest.skip("no C compiler: only the NumPy tier exists")
    monkeypatch.setattr(C.config, "tier", "auto")
    monkeypatch.setattr(C.config, "_cache_dir", tmp_path)     # nothing on disk yet
    C.clear_cache()
    pen = mp.datasets.load("penicillin")
    model = mp.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    theta = np.array([1.5, 3.2])
    obj_numpy = model.objective()
    d0, g0 = obj_numpy(theta)
    assert not C._BACKGROUND._pending             # first lookup: NumPy, nothing in the background
    again = model.objective()
    assert again._fn_dev is obj_numpy._fn_dev     # second lookup: still NumPy, C asked for
    assert C.wait_for_background(timeout=1200)
    assert C.cache_stats["background_errors"] == 0
    obj_c = model.objective()
    assert obj_c._fn_dev is not obj_numpy._fn_dev          # the next lookup got the C tier
    d1, g1 = obj_c(theta)
    np.testing.assert_allclose(d1, d0, rtol=1e-12)
    np.testing.assert_allclose(g1, g0, rtol=1e-9, atol=1e-10)
    C.clear_cache()


def _run(code: str, env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _env(tmp_path, **extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["MIXEDPPL_CACHE_DIR"] = str(tmp_path / "mixedppl")
    env.update(extra)
    return env


def test_fits_without_a_c_compiler(tmp_path):
    """``cxx=`` (no compiler): every function is on the NumPy tier and gives R's numbers."""
    flags = f"compiledir={tmp_path / 'ptc'},cxx="
    out = _run("""
        import mixedppl as mp
        from mixedppl.core import compile as C
        f = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                     mp.datasets.load("cbpp"), family="binomial")
        print(round(f.loglik, 4), round(g.loglik, 3), C.cache_stats["compiled_c"],
              C.cache_stats["compiled_numpy"] > 0)
    """, _env(tmp_path, PYTENSOR_FLAGS=flags, MIXEDPPL_TIER="auto"))
    assert out.split() == ["-871.8141", "-92.026", "0", "True"]


def test_numpy_tier_does_not_scan_the_compile_dir(tmp_path):
    """A compile dir full of other modules costs the NumPy tier nothing: PyTensor's module
    cache (which reads every module's key) is never refreshed."""
    compiledir = tmp_path / "ptc"
    for i in range(300):
        d = compiledir / f"tmp_foreign_{i}"
        d.mkdir(parents=True)
        (d / "key.pkl").write_bytes(b"not a key")
    out = _run("""
        from pytensor.link.c import cmodule
        calls = []
        orig = cmodule.ModuleCache.refresh
        cmodule.ModuleCache.refresh = lambda self, *a, **k: calls.append(1) or orig(self, *a, **k)
        import mixedppl as mp
        mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        print(len(calls))
    """, _env(tmp_path, PYTENSOR_FLAGS=f"compiledir={compiledir}", MIXEDPPL_TIER="numpy"))
    assert out.split() == ["0"]


def test_numpy_tier_builds_no_c_lazy_linker(tmp_path):
    """The NumPy tier runs its thunks in PyTensor's Python loop: a fit on an empty compile dir
    neither imports nor compiles PyTensor's C lazy linker (``lazylinker_ext``, g++ on first
    use), gives R's numbers, and leaves PyTensor's ``traceback__limit`` as the user set it
    (it is 0 only while mixedppl builds and compiles its graphs)."""
    compiledir = tmp_path / "ptc"
    out = _run("""
        import sys, pytensor
        import mixedppl as mp
        pytensor.config.traceback__limit = 5
        f = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        g = mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))
        print(round(f.loglik, 4), round(g.loglik, 4), "pytensor.link.c.cvm" in sys.modules,
              pytensor.config.traceback__limit)
    """, _env(tmp_path, PYTENSOR_FLAGS=f"compiledir={compiledir}", MIXEDPPL_TIER="numpy"))
    assert out.split() == ["-871.8141", "-81.5654", "False", "5"]
    assert not (compiledir / "lazylinker_ext").exists()


def test_traces_are_off_only_while_compiling():
    """Nested and concurrent compiles share one saved ``traceback__limit``; the last to leave
    restores it, and graphs built inside carry no stack traces."""
    import threading

    import pytensor
    import pytensor.tensor as pt

    before = pytensor.config.traceback__limit
    inside, barrier = [], threading.Barrier(2)

    def compile_one():
        with C._no_traces():
            barrier.wait()
            x = pt.dvector("x")
            inside.append((pytensor.config.traceback__limit, (x * 2).tag.trace))
            barrier.wait()

    threads = [threading.Thread(target=compile_one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inside == [(0, []), (0, [])]
    assert pytensor.config.traceback__limit == before
    x = pt.dvector("x")
    assert (x * 2).tag.trace != [] or before == 0


def test_profile_function_is_shared_by_a_graph_key(fresh):
    """``confint(method="profile")`` compiles one profile function per graph key: a second
    structure with the same key (another term width) compiles no new one."""
    sleep = mp.datasets.load("sleepstudy")
    wide = mp.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    narrow = mp.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    assert wide.objective.structure != narrow.objective.structure
    assert wide.objective.structure.graph_key == narrow.objective.structure.graph_key
    wide.confint(method="profile")
    before = C.cache_stats["compiled"] + C.cache_stats["disk"]
    ci = narrow.confint(method="profile")
    assert C.cache_stats["compiled"] + C.cache_stats["disk"] == before
    assert np.all(np.isfinite(ci.to_numpy()))


_PYMC_LOGP = {
    "binomial": lambda pm, y, mu, n, d: pm.logp(pm.Binomial.dist(n=n, p=mu), y),
    "poisson": lambda pm, y, mu, n, d: n * pm.logp(pm.Poisson.dist(mu=mu), y),
    "negative_binomial": lambda pm, y, mu, n, d: n * pm.logp(
        pm.NegativeBinomial.dist(mu=mu, alpha=d), y),
    "gamma": lambda pm, y, mu, n, d: n * pm.logp(pm.Gamma.dist(alpha=d ** -2, beta=d ** -2 / mu),
                                                 y),
    "beta": lambda pm, y, mu, n, d: n * pm.logp(pm.Beta.dist(alpha=mu * d, beta=(1 - mu) * d),
                                                y),
}


@pytest.mark.parametrize("name", list(_PYMC_LOGP))
def test_written_out_log_densities_equal_pymc(name):
    """The families' log-densities (written out so that the Laplace graphs stay small) equal
    ``pm.logp`` of the matching PyMC distribution, and so does their derivative in μ, on the
    support: counts with zeros, μ over several decades, dispersions from 0.05 to 10⁶."""
    pm = pytest.importorskip("pymc")
    import pytensor
    import pytensor.tensor as pt
    from mixedppl.families.glm import FAMILIES
    rng = np.random.default_rng(12)
    n_rows = 500
    y_, mu_, n_, d_ = pt.dvector("y"), pt.dvector("mu"), pt.dvector("n"), pt.dscalar("d")
    ours = FAMILIES[name].logp(y_, mu_, n_, d_)
    theirs = _PYMC_LOGP[name](pm, y_, mu_, n_, d_)
    fn = pytensor.function([y_, mu_, n_, d_], [ours, theirs, pt.grad(ours.sum(), mu_),
                                               pt.grad(theirs.sum(), mu_)],
                           on_unused_input="ignore")
    for disp in (0.05, 0.7, 2.04, 30.0, 1e6):
        if name == "binomial":
            n = rng.integers(0, 25, n_rows).astype(float)
            y = np.minimum(np.floor(rng.uniform(size=n_rows) * (n + 1)), n)
            mu = rng.uniform(1e-4, 1 - 1e-4, n_rows)
        elif name in ("poisson", "negative_binomial"):
            n = rng.choice([0.5, 1.0, 2.0], n_rows)
            mu = np.exp(rng.uniform(-6, 5, n_rows))
            y = rng.poisson(mu).astype(float)
        elif name == "gamma":
            if disp > 10:
                continue
            n = rng.choice([1.0, 2.0], n_rows)
            mu = np.exp(rng.uniform(-3, 6, n_rows))
            y = mu * rng.gamma(2.0, 0.5, n_rows)
        else:
            n = np.ones(n_rows)
            mu = rng.uniform(0.01, 0.99, n_rows)
            y = rng.uniform(1e-3, 1 - 1e-3, n_rows)
        v_ours, v_theirs, g_ours, g_theirs = fn(y, mu, n, disp)
        assert np.all(np.isfinite(v_ours)) and np.all(np.isfinite(g_ours))
        np.testing.assert_allclose(v_ours, v_theirs, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-9, atol=1e-9)


def test_negative_binomial_laplace_graph_stays_small(fresh):
    """The NB2 Laplace outer function (the deviance and its gradient through the exact Hessian:
    third derivatives of log p in η) has under 600 nodes after rewrites: with ``pm.logp``'s
    parameter checks and switches it had 1,747 and took 70–100 s of PyTensor rewrites. On the
    NumPy tier it is composed (graph/laplace_split.py): the only NB2-specific graph, the family's
    per-row η-derivatives and φ chain rule, has under 200 (119 when written), and with the
    η and structure outer graphs that one evaluation runs the whole under 600."""
    from mixedppl.families import get_family
    from mixedppl.graph.laplace import laplace_functions
    from mixedppl.graph.laplace_split import generic_mode
    from mixedppl.graph.laplace_inputs import LaplaceStructure
    family, link = get_family("negative_binomial", "log")
    laplace_functions(family, link, (1,))["outer"]
    mode = generic_mode(LaplaceStructure("none", 1))
    sizes = {key[0]: len(fn.maker.fgraph.apply_nodes) for key, fn in C._CACHE.items()
             if hasattr(fn, "maker")}
    family_graph = sizes[("glmm-family", family.key, link.name)]
    assert family_graph < 200
    # what one outer evaluation runs: η, the family graph (twice), the structure's outer graph
    total = (sizes[("glmm-structure", mode, True, "eta")] + family_graph
             + sizes[("glmm-structure", mode, True, "outer")])
    assert total < 600
