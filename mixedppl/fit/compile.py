"""Compile PyTensor graphs once per model structure and keep them in an in-process cache.

Data are graph inputs, so one compiled function serves every dataset and refit with the same
structure. The linker is a setting (``mixedppl.config.linker`` / env ``MIXEDPPL_LINKER``):

- ``"cvm"`` (default, PyTensor's C linker): slow first compile on a machine (C compile, cached on
  disk in PyTensor's compiledir), then the fastest start-up in new processes and fastest evaluations;
- ``"numba"``: little C compile but a long first JIT in every new process;
- one-off functions (estimates at the optimum, Satterthwaite pieces) skip most graph rewrites
  (``optimizer="fast_compile"``) with the C linker: measured on InstEval, 0.8 s compile + 0.2 s run,
  where the pure-Python linker took 0.6 s + 9.5 s.

PyTensor's "could not link to a BLAS installation" warning is avoided by telling PyTensor to use
NumPy's own BLAS (``blas__ldflags=""``) unless the user configured BLAS flags themselves.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Hashable

import pytensor
from pytensor.compile.mode import Mode

__all__ = ["config", "compiled", "clear_cache", "configure_pytensor"]


class _Config:
    """Package settings; ``linker`` picks the PyTensor linker for fitting functions."""

    def __init__(self):
        self.linker = os.environ.get("MIXEDPPL_LINKER", "cvm")


config = _Config()
_CACHE: dict[Hashable, Callable] = {}
_LOCK = threading.Lock()


def configure_pytensor() -> None:
    """Use NumPy's BLAS unless the user configured PyTensor's BLAS flags (silences the warning)."""
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "blas__ldflags" in flags or "blas.ldflags" in flags:
        return
    if os.path.exists(os.path.expanduser("~/.pytensorrc")):
        return
    try:
        pytensor.config.blas__ldflags = ""
    except Exception:  # pragma: no cover - read-only in exotic configurations
        pass
    logging.getLogger("pytensor.tensor.blas").setLevel(logging.ERROR)


# Rewrites that, on these graphs, duplicate the dense linear algebra (a second copy of the Schur
# complement and its factorisation per evaluation): lifting DimShuffles through elementwise
# nodes with several clients, and elementwise fusion. Excluding them made InstEval's evaluation
# 1.7x and the 100k-row crossed model's 2x faster (measured; see benchmarks/).
_EXCLUDED = ("fusion", "local_dimshuffle_lift")


def _mode(kind: str) -> Mode:
    """Compile mode for ``kind`` ("fast_run": the configured linker; "fast_compile": one-offs)."""
    if kind == "fast_compile":
        return Mode(linker="cvm", optimizer="fast_compile")
    linker = config.linker
    if linker == "numba":
        return pytensor.compile.mode.get_mode("NUMBA").excluding(*_EXCLUDED)
    return Mode(linker=linker, optimizer="fast_run").excluding(*_EXCLUDED)


def compiled(key: Hashable, build: Callable[[], tuple[list, list]], kind: str = "fast_run",
             **kwargs) -> Callable:
    """Return the compiled function for ``key``, building it with ``build()`` on first use.

    ``build`` returns ``(inputs, outputs)``; ``kind`` is ``"fast_run"`` (the configured linker) or
    ``"fast_compile"`` (Python linker, for one-off evaluations).
    """
    full_key = (key, kind, config.linker)
    with _LOCK:
        fn = _CACHE.get(full_key)
    if fn is None:
        configure_pytensor()
        inputs, outputs = build()
        fn = pytensor.function(inputs, outputs, mode=_mode(kind), on_unused_input="ignore",
                               **kwargs)
        with _LOCK:
            _CACHE[full_key] = fn
    return fn


def clear_cache() -> None:
    """Forget all compiled functions (they are rebuilt on demand)."""
    with _LOCK:
        _CACHE.clear()
