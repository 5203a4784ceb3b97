"""The disk cache of compiled functions (mixedppl.fit.compile): a function comes back from disk,
gives the same numbers, and broken or unsafe entries are rebuilt rather than used."""

import numpy as np
import pytensor.tensor as pt
import pytest

from mixedppl.fit import compile as C


def _build():
    x = pt.dvector("x")
    f = pt.sum(pt.exp(x) * x)
    return [x], [f, pt.grad(f, x)]


def _fail():
    raise AssertionError("must come from the disk cache, not be rebuilt")


@pytest.fixture
def disk(tmp_path, monkeypatch):
    real = C._disk_path
    monkeypatch.setattr(C, "_disk_path", lambda key: None if real(key) is None
                        else tmp_path / real(key).name)
    return tmp_path


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
