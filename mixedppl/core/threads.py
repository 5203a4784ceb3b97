"""BLAS threads per fit: :func:`blas_threads_for` and the one threadpool controller.

NumPy and SciPy each load their own OpenBLAS; on small and mid-sized problems their worker
threads compete for the cores, so a fit runs under one BLAS thread unless its dense work per
evaluation is very large (see :func:`blas_threads_for`).
"""

from __future__ import annotations

import contextlib
from numbers import Real
from typing import Protocol

from threadpoolctl import ThreadpoolController

__all__ = ["blas_threads_for"]

_CONTROLLER: ThreadpoolController | None = None


class _HasFlops(Protocol):
    """An objective that states its dense work per evaluation."""

    flops_per_eval: float


def _blas_controller() -> ThreadpoolController:
    """One :class:`threadpoolctl.ThreadpoolController`, made on first use.

    Making one scans the process's loaded libraries (``/proc/self/maps``): 6–12 ms, which was a
    tenth of a warm small fit when done per call. NumPy's and SciPy's BLAS are loaded by the time
    a model is fitted (``import mixedppl`` imports both), so one scan sees them.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def blas_threads_for(cost: float | _HasFlops):
    """One BLAS thread unless the dense work per evaluation is very large.

    ``cost`` is the number of flops per evaluation, or an objective with a ``flops_per_eval``
    attribute. Returns a context manager.

    NumPy and SciPy each load their own OpenBLAS; when an evaluation alternates between them,
    each library's spinning worker threads compete for the cores (measured: Penicillin's fit took
    0.70 s with 2 threads each, 0.035 s with 1). The same holds at InstEval's size (a 1,156² dense
    Schur block, ~1.5e9 flops per evaluation): on a loaded 2-core machine its fit took 121 s wall
    (80 s CPU) with the default threads and 11.8 s (7.9 s CPU) with one. Only problems whose dense
    factorisation dominates by far (above 2e10 flops, q_R ≳ 2,700) keep all threads.
    """
    flops = cost if isinstance(cost, Real) else cost.flops_per_eval
    if flops < 2e10:
        return _blas_controller().limit(limits=1, user_api="blas")
    return contextlib.nullcontext()
