"""mixedppl.core.threads: one BLAS thread below 2e10 flops per evaluation, a number or an objective."""

import contextlib
from types import SimpleNamespace

from threadpoolctl import threadpool_info

from mixedppl.core.threads import blas_threads_for


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_small_cost_limits_blas_to_one_thread():
    for cost in (1e6, SimpleNamespace(flops_per_eval=1e6)):
        with blas_threads_for(cost):
            assert all(n == 1 for n in _blas_threads())


def test_large_cost_keeps_the_threads():
    assert isinstance(blas_threads_for(3e10), contextlib.nullcontext)
    assert isinstance(blas_threads_for(SimpleNamespace(flops_per_eval=3e10)), contextlib.nullcontext)
