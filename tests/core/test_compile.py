"""The disk cache of compiled functions (mixedppl.core.compile): a function comes back from disk,
gives the same numbers, and broken or unsafe entries are rebuilt rather than used."""

import os
import pickle
import shutil
import stat
import warnings

import numpy as np
import pytensor.tensor as pt
import pytest

import mixedppl as mp
from mixedppl.core import compile as C


def _build():
    x = pt.dvector("x")
    f = pt.sum(pt.exp(x) * x)
    return [x], [f, pt.grad(f, x)]


def _fail():
    raise AssertionError("must come from the disk cache, not be rebuilt")


def _build_other():
    x = pt.dvector("x")
    return [x], [pt.sum(x ** 2)]


class _Planted:
    """A pickle that, when loaded, creates a marker file (stands in for ``os.system``)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def disk(tmp_path, monkeypatch):
    """A private temporary cache folder as ``mp.config.cache_dir`` (restored afterwards)."""
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    old = mp.config._cache_dir
    mp.config.cache_dir = folder
    monkeypatch.setattr(C, "_WARNED_DIRS", set())
    monkeypatch.setattr(C.config, "tier", "numpy")   # one tier, nothing in the background
    C.clear_cache()
    yield folder
    mp.config._cache_dir = old
    C.clear_cache()


def test_function_comes_back_from_disk(disk):
    key = ("test-disk-cache", 1)
    x = np.array([0.5, -1.0, 2.0])
    fn = C.compiled(key, _build)
    want = fn(x)
    assert len(list(disk.glob("*.pkl"))) == 1
    C.clear_cache()
    before = C.cache_stats["disk"]
    again = C.compiled(key, _fail)
    assert C.cache_stats["disk"] == before + 1
    got = again(x)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(want[0], np.sum(np.exp(x) * x), rtol=1e-14)


def test_compiled_graph_keeps_no_shape_feature(disk):
    """The rewrites' ShapeFeature is detached once a function is compiled (it made pickling
    ~5x slower); the function, its copy and its disk entry still give the same numbers."""
    key = ("test-shape-feature", 1)
    x = np.array([0.5, -1.0, 2.0])
    fn = C.compiled(key, _build)
    assert not hasattr(fn.maker.fgraph, "shape_feature")
    want = [np.sum(np.exp(x) * x), np.exp(x) * (1 + x)]
    for f in (fn, fn.copy(), pickle.loads(pickle.dumps(fn))):
        got = f(x)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-14)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-14)


def test_broken_entry_is_rebuilt(disk):
    key = ("test-disk-cache", 2)
    C.compiled(key, _build)
    (path,) = disk.glob("*.pkl")
    path.write_bytes(b"not a pickle")
    C.clear_cache()
    errors = C.cache_stats["disk_errors"]
    fn = C.compiled(key, _build)
    assert C.cache_stats["disk_errors"] == errors + 1
    np.testing.assert_allclose(fn(np.array([1.0]))[0], np.e, rtol=1e-14)


def test_keys_that_differ_between_processes_are_not_kept(monkeypatch):
    assert C._disk_path(("k", object())) is None          # repr holds an address
    assert C._disk_path(("k", 1)) is not None
    assert C._disk_path(("k", 1)) != C._disk_path(("k", 2))
    monkeypatch.setattr(C.config, "disk_cache", False)
    assert C._disk_path(("k", 1)) is None


def test_cache_dir_is_public_and_settable(tmp_path):
    old = mp.config._cache_dir
    try:
        assert mp.config is C.config
        mp.config.cache_dir = str(tmp_path / "elsewhere")
        assert mp.config.cache_dir == tmp_path / "elsewhere"
        assert C._disk_path(("k", 1)).parent == tmp_path / "elsewhere"
        assert stat.S_IMODE(os.stat(tmp_path / "elsewhere").st_mode) & 0o077 == 0
        mp.config.cache_dir = None
        assert mp.config.cache_dir == C.Path(C.pytensor.config.compiledir) / "mixedppl"
    finally:
        mp.config._cache_dir = old


def test_planted_pickle_in_a_group_writable_dir_is_not_loaded(disk, tmp_path):
    key = ("test-disk-cache", 3)
    marker = tmp_path / "planted-code-ran"
    path = C._disk_path(C_full(key))
    # a well-formed entry with the right key: only the folder's permissions give it away
    with open(path, "wb") as fh:
        C._write_entry(fh, C._key_text(C_full(key)), _Planted(marker))
    os.chmod(disk, 0o775)
    compiled_before, untrusted = C.cache_stats["compiled"], C.cache_stats["untrusted"]
    with pytest.warns(UserWarning, match="not used because it is writable by group"):
        fn = C.compiled(key, _build)
    assert not marker.exists()
    assert C.cache_stats["compiled"] == compiled_before + 1
    assert C.cache_stats["untrusted"] > untrusted
    np.testing.assert_allclose(fn(np.array([1.0]))[0], np.e, rtol=1e-14)
    C.clear_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # said once per folder, not on every fit
        C.compiled(key, _build)
    assert not marker.exists()
    os.chmod(disk, 0o700)


def test_raw_pickle_without_the_header_is_never_unpickled(disk, tmp_path):
    key = ("test-disk-cache", 4)
    marker = tmp_path / "raw-pickle-ran"
    path = C._disk_path(C_full(key))
    path.write_bytes(pickle.dumps(_Planted(marker)))
    errors = C.cache_stats["disk_errors"]
    fn = C.compiled(key, _build)
    assert not marker.exists()
    assert C.cache_stats["disk_errors"] == errors + 1
    np.testing.assert_allclose(fn(np.array([1.0]))[0], np.e, rtol=1e-14)
    assert path.read_bytes().startswith(C._MAGIC)    # overwritten by the rebuilt entry


def test_swapped_entry_is_detected_and_rebuilt(disk):
    key_a, key_b = ("test-disk-cache", "a"), ("test-disk-cache", "b")
    x = np.array([0.5, -1.0, 2.0])
    want_b = C.compiled(key_b, _build_other)(x)
    C.compiled(key_a, _build)
    path_a, path_b = C._disk_path(C_full(key_a)), C._disk_path(C_full(key_b))
    shutil.copyfile(path_a, path_b)                  # B's name now holds A's function
    C.clear_cache()
    errors, compiled = C.cache_stats["disk_errors"], C.cache_stats["compiled"]
    got = C.compiled(key_b, _build_other)(x)
    assert C.cache_stats["disk_errors"] == errors + 1
    assert C.cache_stats["compiled"] == compiled + 1
    np.testing.assert_allclose(got[0], want_b[0], rtol=1e-14)
    np.testing.assert_allclose(got[0], np.sum(x ** 2), rtol=1e-14)
    C.clear_cache()                                  # the rebuilt entry was written back
    disk_before = C.cache_stats["disk"]
    np.testing.assert_allclose(C.compiled(key_b, _fail)(x)[0], np.sum(x ** 2), rtol=1e-14)
    assert C.cache_stats["disk"] == disk_before + 1


def test_truncated_entry_is_rebuilt(disk):
    key = ("test-disk-cache", 5)
    x = np.array([0.25, 3.0])
    want = C.compiled(key, _build)(x)
    path = C._disk_path(C_full(key))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    C.clear_cache()
    errors = C.cache_stats["disk_errors"]
    got = C.compiled(key, _build)(x)
    assert C.cache_stats["disk_errors"] == errors + 1
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    head = len(C._MAGIC) + 8 + len(C._key_text(C_full(key)).encode())
    assert path.read_bytes()[:head] == data[:head]   # a whole entry of the same key again
    C.clear_cache()                                  # the rewritten entry is whole again
    np.testing.assert_array_equal(C.compiled(key, _fail)(x)[0], want[0])


def test_fit_is_the_same_from_a_rebuilt_cache(disk):
    sleep = mp.datasets.load("sleepstudy")
    first = mp.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    entries = sorted(disk.glob("*.pkl"))
    assert entries
    for f in entries:                                # truncate or scramble every entry
        data = f.read_bytes()
        f.write_bytes(data[: len(data) // 3])
    C.clear_cache()
    errors = C.cache_stats["disk_errors"]
    again = mp.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    assert C.cache_stats["disk_errors"] > errors
    np.testing.assert_array_equal(again.theta, first.theta)
    np.testing.assert_array_equal(again.fe_params.to_numpy(), first.fe_params.to_numpy())
    assert again.loglik == first.loglik


def C_full(key, kind="fast_run"):
    """The full key :func:`compiled` files ``key`` under (the NumPy tier: see ``disk``)."""
    return C._full_key(key, kind, "numpy", {})


def test_a_slow_first_compile_says_what_it_builds(monkeypatch, capsys):
    """A foreground compile still running after ``compile_notice_after`` seconds prints one line
    naming what it builds, and its time when done; a fast one prints nothing."""
    import time

    import pytensor.tensor as pt

    from mixedppl.core import compile as cc

    def slow_build():
        time.sleep(0.3)
        x = pt.dvector("x")
        return [x], [2 * x]

    monkeypatch.setattr(cc.config, "compile_notice_after", 0.1)
    monkeypatch.setattr(cc.config, "disk_cache", False)
    monkeypatch.setattr(cc.config, "tier", "numpy")
    fn = cc.compiled(("glmm-laplace", "binomial", "logit", (1,), "notice-test"), slow_build)
    np.testing.assert_allclose(np.asarray(fn([1.0])).ravel(), [2.0])
    err = capsys.readouterr().err
    assert "compiling the Laplace deviance (binomial, logit, notice-test)" in err
    assert "compiled in" in err
    monkeypatch.setattr(cc.config, "compile_notice_after", 30.0)
    cc.compiled(("glmm-laplace", "binomial", "logit", (1,), "notice-test-fast"), slow_build)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(cc.config, "compile_notice_after", 0.1)
    monkeypatch.setattr(cc.config, "compile_notice", False)
    cc.compiled(("glmm-laplace", "binomial", "logit", (1,), "notice-test-off"), slow_build)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("seed", range(4))
def test_scatter_add_is_numpys_add_at(seed):
    """The increment thunk's ``scatter_add`` (bincount / reduceat) against ``np.add.at``: one
    and two index arrays, 1 to 12 trailing columns, repeated and negative indices."""
    rng = np.random.default_rng(seed)
    for shape, k in (((50,), 1), ((40, 3), 1), ((30, 12), 1), ((9, 7), 2), ((6, 5, 4), 2)):
        out = rng.normal(size=shape)
        idx = tuple(rng.integers(-shape[i], shape[i], 200) for i in range(k))
        y = rng.normal(size=(200,) + shape[k:])
        expected = out.copy()
        np.add.at(expected, idx, y)
        C.scatter_add(out, idx, y)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_increment_graph_through_the_scatter_thunk():
    x, i = pt.dvector("x"), pt.lvector("i")
    f = C.compiled(("scatter-test",), lambda: ([x, i], [pt.zeros((5,))[i].inc(x)]))
    idx = np.arange(100) % 5                 # 100 entries: above SCATTER_MIN_ENTRIES
    np.testing.assert_allclose(f(np.ones(100), idx)[0], np.full(5, 20.0))


_TWO_PROCESSES = r"""
import json, sys, time
import pytensor.tensor as pt
import mixedppl as mp
from mixedppl.core import compile as C
mp.config.cache_dir = sys.argv[1]
C.config.tier = "numpy"

def build():
    time.sleep(1.5)                                    # a slow compile: the two overlap
    x = pt.dvector("x")
    return [x], [pt.sum(x ** 3)]

start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
fn = C.compiled(("test-two-processes", 1), build)
print(json.dumps({"value": float(fn([2.0])[0]), "compiled": C.cache_stats["compiled"],
                  "disk": C.cache_stats["disk"]}))
"""


def test_two_processes_compile_a_key_once(tmp_path):
    """Two processes asking for one new key at the same moment: one compiles it (holding the
    key's lock file), the other waits and loads its entry; no lock is left behind."""
    import json
    import subprocess
    import sys
    import time

    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    start = str(time.time() + 4.0)                     # both past their imports by then
    procs = [subprocess.Popen([sys.executable, "-c", _TWO_PROCESSES, str(folder), start],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert [o["value"] for o in outs] == [8.0, 8.0]
    assert sorted(o["compiled"] for o in outs) == [0, 1]
    assert sorted(o["disk"] for o in outs) == [0, 1]
    assert not list(folder.glob("*.lock"))


def test_a_lock_left_by_a_dead_process_is_not_waited_for(disk):
    """A lock file whose process has exited (a crash mid-compile) is taken over at once."""
    import subprocess
    import sys
    import time

    key = ("test-stale-lock", 1)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = C._disk_path(C._full_key(key, "fast_run", "numpy", {}))
    path.with_suffix(".lock").write_text(f"{dead.pid}\n")
    t0 = time.monotonic()
    fn = C.compiled(key, _build)
    assert time.monotonic() - t0 < C._LOCK_WAIT_S / 4
    np.testing.assert_allclose(fn(np.array([1.0]))[0], np.e, rtol=1e-14)
    assert not list(disk.glob("*.lock"))


def test_a_composite_runs_as_whole_array_numpy_calls():
    """A fused ``Composite`` left by the NumPy tier's rewrites (x ** 3 → sqr(x)·x) runs its
    inner graph on whole arrays (not PyTensor's per-element Python fallback), same numbers."""
    import pytensor
    from pytensor.scalar.basic import Composite
    from pytensor.tensor.elemwise import Elemwise

    x, y = pt.dvector("x"), pt.dvector("y")
    out = x ** 3 + pt.exp(y) * x
    fn = pytensor.function([x, y], out, mode=C.numpy_tier_mode())
    composites = [n for n in fn.maker.fgraph.apply_nodes
                  if isinstance(n.op, Elemwise) and isinstance(n.op.scalar_op, Composite)]
    assert composites, "the rewrite that makes a Composite did not run: test needs another graph"
    assert all(C._numpy_function(n) is not None for n in composites)
    xs, ys = np.linspace(-2, 2, 9), np.linspace(0, 1, 9)
    np.testing.assert_allclose(fn(xs, ys), xs ** 3 + np.exp(ys) * xs, rtol=1e-15)
