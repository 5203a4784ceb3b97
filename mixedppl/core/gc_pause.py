"""Python's cyclic garbage collector paused while mixedppl builds many long-lived objects.

Importing PyTensor, and building, rewriting, linking or unpickling a PyTensor function, allocate
hundreds of thousands of objects that stay alive (the rewrite databases, the graph's nodes and
variables, the thunks). Each allocation burst triggers the collector's generational passes, and
every oldest-generation pass traverses the whole heap — ~100,000 tracked objects after
``import mixedppl``, ~180,000 after a first GLMM fit — and finds next to no garbage: 0.1 s of a
0.8 s import and 0.2 s of a 1.2 s first Poisson GLMM fit (``gc.callbacks`` timing, 2-core
machine, issue 12). With the collector paused there, a new process's import went 0.82 → 0.72 s
and its first two fits on an empty compile dir (a Poisson GLMM, a two-term CLMM) 1.84 →
1.69 s, user CPU 3.05 → 2.82 s (means of six alternated runs each).

:func:`paused_gc` switches the collector off for such a block and back on after it, when it
was on before; reference counting frees non-cyclic objects as usual, and the cyclic garbage
made meanwhile is collected by the next automatic pass. Nested and concurrent blocks (the
background C-tier thread of :mod:`mixedppl.core.compile`) share one count: the collector is
switched back on when the last block ends. A user who had switched the collector off keeps it
off. :mod:`mixedppl.core.compile` pauses it for NumPy-tier builds and loads only, which last a
second or two; a C tier may spend tens of seconds in the C compiler in the background thread
while the user's own work goes on.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["paused_gc"]

_LOCK = threading.Lock()
_STATE = {"depth": 0, "was_enabled": False}


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the cyclic garbage collector off (reference counting still frees).

    Examples
    --------
    >>> import gc
    >>> before = gc.isenabled()
    >>> with paused_gc():
    ...     gc.isenabled()
    False
    >>> gc.isenabled() == before
    True
    """
    with _LOCK:
        if _STATE["depth"] == 0:
            _STATE["was_enabled"] = gc.isenabled()
            gc.disable()
        _STATE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0 and _STATE["was_enabled"]:
                gc.enable()
