"""Case-deletion influence (mixedppl.diagnostics.influence) against R (lme4 1.1-31 refits;
tests/reference/inf_influence.json).

Tolerance (issue 5): influence measures 1e-3 relative with a 1e-6 absolute floor (exact refits).
"""

from functools import lru_cache

import numpy as np
import pytest

import mixedppl as mp
from conftest import reference, rel_close

CASES = {"sleepstudy_slope": ("sleepstudy", "Reaction ~ Days + (Days | Subject)")}


@lru_cache(maxsize=None)
def fitted(case):
    data, formula = CASES[case]
    return mp.lmer(formula, mp.datasets.load(data))


def _check_influence(frame, ref):
    for col in ["cooks_d", "mdffits", "covtrace", "covratio"]:
        rel_close(frame[col].to_numpy(), ref[col], 1e-3, 1e-6)
    # rvc = φ₍ᵢ₎/φ − 1 is near 0 for one deleted observation, so a relative bound on it is a
    # bound far below the optimiser's precision on φ₍ᵢ₎: the absolute floor 1e-5 bounds φ₍ᵢ₎/φ to
    # 1e-5 relative (the brief asks 1e-3 of variance components). Observed: ≤ 4.3e-6 (obs. 16,
    # whose refit ends at |gradient| 3e-5 with the deviance equal to R's to 1e-11).
    for name, values in ref["rvc"].items():
        rel_close(frame[f"rvc_{name}"].to_numpy(), values, 1e-3, 1e-5)


def test_influence_by_subject_exact():
    ref = reference("inf_influence")["by_subject"]
    frame = fitted("sleepstudy_slope").influence(level="Subject")
    assert list(frame.index) == ref["deleted"]
    assert frame.index.name == "Subject"
    _check_influence(frame, ref)
    assert frame["cooks_d"].idxmax() == reference("inf_influence")["largest_cooks_d_subject"]["subject"]


def test_influence_by_observation_exact():
    ref = reference("inf_influence")["by_observation"]
    frame = fitted("sleepstudy_slope").influence(level="observation")
    assert len(frame) == 180
    rows = [i - 1 for i in ref["deleted"]]          # R's 1-based rows → 0-based positions
    _check_influence(frame.loc[rows], ref)


def test_influence_approx_close_to_exact():
    fit = fitted("sleepstudy_slope")
    exact = fit.influence(level="Subject")
    approx = fit.influence(level="Subject", method="approx")
    assert list(approx.columns) == list(exact.columns)
    # θ held at θ̂: β and its vcov move little from the exact refit's
    rel_close(approx["cooks_d"].to_numpy(), exact["cooks_d"].to_numpy(), 0.05, 1e-4)
    assert np.all(approx["rvc_Subject.var((Intercept))"].to_numpy()
                  == pytest.approx(approx["rvc_sigma2"].to_numpy()))   # Σ = σ²TTᵀ, T fixed


def test_influence_unknown_level_names_valid_ones():
    with pytest.raises(ValueError, match=r"\['Subject', 'observation'\]"):
        fitted("sleepstudy_slope").influence(level="Days")
    with pytest.raises(ValueError, match="method"):
        fitted("sleepstudy_slope").influence(level="Subject", method="quick")


def test_influence_plot_one_bar_per_level():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = fitted("sleepstudy_slope").influence(level="Subject")
    ax = frame.plot()
    assert len(ax.patches) == len(frame) == 18
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, frame["cooks_d"].to_numpy())
    axes = frame.plot(["cooks_d", "covratio"])
    assert len(axes) == 2 and all(len(a.patches) == 18 for a in axes)
    # still a DataFrame: numbers, slicing and pandas' own plot methods unchanged
    assert isinstance(frame, pd.DataFrame)
    assert type(frame.loc[["308", "309"]]).__name__ == "InfluenceFrame"
    assert frame.plot.bar(y="cooks_d") is not None
    with pytest.raises(ValueError, match="unknown measure"):
        frame.plot("leverage")
    plt.close("all")
