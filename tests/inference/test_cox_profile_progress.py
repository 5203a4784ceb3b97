"""The Cox profile intervals show one progress bar (core/progress.progress_bar) with a step per
profiled row — each frailty SD / correlation, then each β — and nothing with progress=False."""

import pandas as pd
import pytest

import mixedppl as mp
import mixedppl.inference.cox_profile as cox_profile
from mixedppl.core.progress import progress_bar


@pytest.fixture(scope="module")
def fit():
    return mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))


def test_cox_profile_shows_a_bar_unless_turned_off(fit, capsys, monkeypatch):
    made = []

    def recording(total, desc, show=True):
        bar = progress_bar(total, desc, show)
        made.append(bar)
        return bar
    monkeypatch.setattr(cox_profile, "progress_bar", recording)
    quiet = fit.confint(method="profile", progress=False)
    assert capsys.readouterr().err == "" and made[0].disable
    shown = fit.confint(method="profile")
    assert "profile" in capsys.readouterr().err
    assert (made[1].total, made[1].n) == (3, 3)   # (tqdm disables a bar once closed)
    pd.testing.assert_frame_equal(quiet, shown)
    assert list(shown.index) == ["sd_(Intercept)|id", "age", "sex"]
