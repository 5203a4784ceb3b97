"""A worker process killed during the LMM's cross-product pass: Dask recomputes the lost
partitions on the other / restarted worker and the blocks (and the fit) are unchanged."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import mixedppl as mp  # noqa: E402
from mixedppl.distributed.crossprod import dask_crossproducts  # noqa: E402
from mixedppl.distributed.lmm import fit_lmm_dask  # noqa: E402
from mixedppl.graph.crossprod import crossproducts  # noqa: E402
from mixedppl.spec.dask_spec import build_dask_spec  # noqa: E402

from test_dask_lmm import FORMULA, close_blocks, crossed  # noqa: E402


@pytest.mark.slow
def test_worker_killed_during_cross_product_pass():
    d = crossed(12, n=320)
    spec_mem = mp.Model(FORMULA, d).spec

    def slow(part):  # a user's map_partitions step that takes a while per partition
        time.sleep(0.4)
        return part

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        ddf = dd.from_pandas(d, npartitions=16).map_partitions(slow, meta=d.head(0))
        spec = build_dask_spec(FORMULA, ddf)
        victim = sorted(client.scheduler_info()["workers"])[0]
        killed = []

        def kill():
            try:
                client.run(os._exit, 1, workers=[victim])
            except Exception:  # the worker's connection drops as it dies
                pass
            killed.append(victim)

        timer = threading.Timer(1.0, kill)
        timer.start()
        blocks = dask_crossproducts(spec)
        timer.join()
        assert killed
        assert victim not in client.scheduler_info()["workers"]  # it died (the nanny restarts it)
        close_blocks(blocks, crossproducts(spec_mem))
        fit = fit_lmm_dask(build_dask_spec(FORMULA, ddf))
        ref = mp.lmer(FORMULA, d)
        np.testing.assert_allclose(fit.beta, ref.beta, rtol=1e-6)
        np.testing.assert_allclose(fit.theta, ref.theta, rtol=1e-6)
