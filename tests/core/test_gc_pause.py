"""paused_gc: the collector off inside, restored after; nested and threaded blocks share it."""

import gc
import threading

import pytensor.tensor as pt

from mixedppl.core import compile as C
from mixedppl.core.gc_pause import paused_gc


def test_restores_the_collector_after_nested_blocks_and_errors():
    assert gc.isenabled()
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()              # the outer block is still running
    assert gc.isenabled()
    try:
        with paused_gc():
            raise ValueError
    except ValueError:
        pass
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_user_stays_off():
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_blocks_in_two_threads():
    inside, release = threading.Event(), threading.Event()

    def other():
        with paused_gc():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    inside.wait(10)
    with paused_gc():
        pass
    assert not gc.isenabled()                  # the other thread's block still holds it
    release.set()
    t.join(10)
    assert gc.isenabled()


def test_numpy_tier_compiles_run_with_the_collector_paused(monkeypatch, tmp_path):
    monkeypatch.setattr(C.config, "tier", "numpy")
    monkeypatch.setattr(C.config, "_cache_dir", tmp_path)
    seen = []

    def build():
        seen.append(gc.isenabled())
        x = pt.dvector("x")
        return [x], [x * 2.0]

    fn = C.compiled(("test-gc-pause", str(tmp_path)), build, kind="fast_compile")
    assert seen == [False] and gc.isenabled()
    assert [v.tolist() for v in fn([1.0])] == [[2.0]]
    assert C._gc_paused_for("numpy") and not C._gc_paused_for("c")
