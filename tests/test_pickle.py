"""Every result type pickles, and a fresh Python process that unpickles it still predicts (and
rebuilds compiled functions on demand)."""

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp

ROOT = Path(mp.__file__).resolve().parents[1]

CHILD = """
import pickle, sys
import numpy as np
with open(sys.argv[1], "rb") as fh:
    fit, new, kwargs, extra = pickle.load(fh)
import mixedppl
assert mixedppl.__file__.startswith(sys.argv[3]), mixedppl.__file__
out = {"predict": fit.predict(new, **kwargs), "type": type(fit).__name__}
if extra:
    out["extra"] = eval(extra, {"fit": fit, "np": np})
with open(sys.argv[2], "wb") as fh:
    pickle.dump(out, fh)
"""


def _in_new_process(tmp_path, fit, new, kwargs=None, extra=None) -> dict:
    """Pickle ``fit`` to a file, load it in a fresh interpreter, return what it computed."""
    src, dst = tmp_path / "fit.pkl", tmp_path / "out.pkl"
    with open(src, "wb") as fh:
        pickle.dump((fit, new, kwargs or {}, extra), fh)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(src), str(dst), str(ROOT)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(dst, "rb") as fh:
        out = pickle.load(fh)
    assert out["type"] == type(fit).__name__
    return out


def test_lmm_result_pickles(tmp_path):
    sleep = mp.datasets.load("sleepstudy")
    fit = mp.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    new = pd.DataFrame({"Days": [0, 5, 9], "Subject": ["308", "999", "372"]}, index=["a", "b", "c"])
    want_df = fit.df.to_numpy()
    # Satterthwaite df need the compiled objective: rebuilt in the new process
    out = _in_new_process(tmp_path, fit, new, extra="fit.df.to_numpy()")
    pd.testing.assert_series_equal(out["predict"], fit.predict(new))
    np.testing.assert_allclose(out["extra"], want_df, rtol=1e-8)


def test_glmm_result_pickles(tmp_path):
    cbpp = mp.datasets.load("cbpp")
    fit = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    new = cbpp.iloc[[3, 0, 20]]
    out = _in_new_process(tmp_path, fit, new, {"type": "response"},
                          extra="(fit.fitted().to_numpy(), fit.family.variance(0.5, 1.0))")
    pd.testing.assert_series_equal(out["predict"], fit.predict(new))
    np.testing.assert_array_equal(out["extra"][0], fit.fitted().to_numpy())
    assert out["extra"][1] == 0.25


def test_clmm_result_pickles(tmp_path):
    wine = mp.datasets.load("wine")
    fit = mp.clmm("rating ~ temp + contact + (1 | judge)", wine)
    new = wine.iloc[[5, 1, 30]]
    out = _in_new_process(tmp_path, fit, new, {"type": "prob"})
    pd.testing.assert_frame_equal(out["predict"], fit.predict(new, type="prob"))


def test_bayes_result_pickles(tmp_path):
    dye = mp.datasets.load("dyestuff")
    fit = mp.lmer("Yield ~ 1 + (1 | Batch)", dye)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = fit.sample(draws=30, tune=30, chains=1, cores=1, random_seed=2, progressbar=False,
                          nuts_sampler="pymc")
    new = pd.DataFrame({"Batch": ["A", "C", "new"]})
    out = _in_new_process(tmp_path, post, new, {"random_seed": 4},
                          extra="sorted(v.name for v in fit.model.free_RVs)")
    np.testing.assert_array_equal(out["predict"], post.predict(new, random_seed=4))
    assert out["extra"] == sorted(v.name for v in post.model.free_RVs)


def test_pickle_keeps_no_compiled_function():
    fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    fit.objective(np.asarray(fit.theta))          # the compiled deviance is built and held
    blob = pickle.dumps(fit)
    assert b"pytensor.compile.function.types" not in blob
    again = pickle.loads(blob)
    np.testing.assert_allclose(again.objective.deviance(np.asarray(fit.theta)),
                               fit.objective_value, rtol=1e-10)
