"""Progress bars over the passes of a Dask fit (core/progress.progress_bar through core/dask):
one step per partition for the level / check pass and the LMM's cross-product pass, on a
distributed LocalCluster and on dask's local scheduler; one step per pass for glmer's inner
Newton steps; nothing on stderr with ``progress=False``, and the same fit either way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

import mixedppl as mp  # noqa: E402
import mixedppl.core.dask as core_dask  # noqa: E402
import mixedppl.distributed.glmm as dask_glmm  # noqa: E402
from mixedppl.core.progress import progress_bar  # noqa: E402


@pytest.fixture
def bars(monkeypatch):
    """Every bar the Dask passes open: (description, total, steps when closed, shown)."""
    made = []

    def recording(total, desc, show=True):
        bar = progress_bar(total, desc, show)
        close = bar.close

        def closing():          # once: tqdm's __del__ closes again
            if not bar.disable or not show:
                made.append((desc, total, bar.n, not bar.disable))
            close()
        bar.close = closing
        return bar
    monkeypatch.setattr(core_dask, "progress_bar", recording)
    monkeypatch.setattr(dask_glmm, "progress_bar", recording)
    return made


def data(seed: int = 1, n: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 10, n)
    x = rng.normal(size=n)
    u = rng.normal(0, 0.8, 10)[g]
    y = 1 + 0.5 * x + u + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g": g, "k": rng.poisson(np.exp(0.3 + 0.2 * x + u))})


def _check_lmm(bars, capsys, nparts):
    d = data()
    ddf = dd.from_pandas(d, npartitions=nparts)
    fit = mp.lmer("y ~ x + (1 | g)", ddf)
    assert [(desc, total, n) for desc, total, n, _ in bars] == [
        ("Dask: levels and checks", nparts, nparts), ("Dask: cross-products", nparts, nparts)]
    assert "Dask: cross-products" in capsys.readouterr().err
    bars.clear()
    quiet = mp.lmer("y ~ x + (1 | g)", ddf, progress=False)
    assert capsys.readouterr().err == ""
    assert all(not shown for *_, shown in bars)
    np.testing.assert_allclose(quiet.fe_params, fit.fe_params, rtol=1e-12)
    ref = mp.lmer("y ~ x + (1 | g)", d)
    np.testing.assert_allclose(fit.fe_params, ref.fe_params, rtol=1e-6)


@pytest.mark.parametrize("nparts", [1, 5])
def test_lmm_passes_on_a_cluster(client, bars, capsys, nparts):
    _check_lmm(bars, capsys, nparts)


def test_lmm_passes_on_the_local_scheduler(bars, capsys):
    with dask.config.set(scheduler="sync"):
        _check_lmm(bars, capsys, 4)


def test_glmm_counts_its_passes(client, bars, capsys):
    ddf = dd.from_pandas(data(2), npartitions=3)
    fit = mp.glmer("k ~ x + (1 | g)", ddf, family="poisson")
    passes = [b for b in bars if b[0] == "Dask: passes over the partitions"]
    assert len(passes) == 1 and passes[0][1] is None
    assert passes[0][2] == fit.record.timing["map_reduces"] > 10
    assert "Dask: passes over the partitions" in capsys.readouterr().err
    bars.clear()
    quiet = mp.glmer("k ~ x + (1 | g)", ddf, family="poisson", progress=False)
    assert capsys.readouterr().err == ""
    np.testing.assert_allclose(quiet.fe_params, fit.fe_params, rtol=1e-10)
