"""paused_gc: the collector off inside, restored after; nested and threaded blocks share it."""

import gc
import threading

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
