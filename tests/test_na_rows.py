"""Rows dropped for missing values never shift per-row outputs: fitted(), residuals() and
predict() are labelled with the user's row labels; na_action="exclude" pads them with NaN."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.core.exceptions import DataWarning, ModelSpecError


def _scrambled(data: pd.DataFrame, column: str, holes: list[int], seed: int) -> pd.DataFrame:
    """Rows in a shuffled order with string labels, NaN in ``column`` at positions ``holes``."""
    rng = np.random.default_rng(seed)
    df = data.iloc[rng.permutation(len(data))].copy()
    df.index = [f"row{k}" for k in rng.permutation(len(df))]
    df[column] = df[column].astype(float if column != "rating" else object)
    df.iloc[holes, df.columns.get_loc(column)] = np.nan
    return df


def _fit(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def sleep():
    return _scrambled(mp.datasets.load("sleepstudy"), "Days", [3, 50, 121], seed=1)


@pytest.fixture(scope="module")
def lmm_fits(sleep):
    f = "Reaction ~ Days + (Days | Subject)"
    return (_fit(mp.lmer, f, sleep), _fit(mp.lmer, f, sleep, na_action="exclude"),
            mp.lmer(f, sleep.dropna(subset=["Days"]).reset_index(drop=True)))


def test_lmm_omit_labels_the_kept_rows(sleep, lmm_fits):
    omit, _, complete = lmm_fits
    kept = sleep.index[sleep["Days"].notna()]
    for out in (omit.fitted(), omit.residuals(), omit.predict()):
        assert isinstance(out, pd.Series)
        assert out.index.equals(kept)
    np.testing.assert_allclose(omit.fitted().to_numpy(), complete.fitted().to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(omit.residuals().to_numpy(), complete.residuals().to_numpy(),
                               rtol=1e-8, atol=1e-8)
    # the label carries the row: fitted + residual is that row's response
    np.testing.assert_allclose(omit.fitted() + omit.residuals(), sleep.loc[kept, "Reaction"],
                               rtol=1e-12)
    assert omit.spec.row_index.equals(kept) and omit.spec.na_action == "omit"


def test_lmm_exclude_pads_dropped_rows_with_nan(sleep, lmm_fits):
    omit, excl, _ = lmm_fits
    assert excl.spec.na_action == "exclude" and excl.spec.data_index.equals(sleep.index)
    for out, ref in ((excl.fitted(), omit.fitted()), (excl.residuals(), omit.residuals()),
                     (excl.residuals("pearson", scaled=True), omit.residuals("pearson", True))):
        assert out.index.equals(sleep.index)
        dropped = sleep["Days"].isna()
        assert out[dropped].isna().all() and out[~dropped].notna().all()
        pd.testing.assert_series_equal(out.dropna(), ref, check_names=False)
    df = sleep.copy()
    df["fit"] = excl.fitted()
    np.testing.assert_array_equal(df["fit"].isna().to_numpy(), sleep["Days"].isna().to_numpy())
    # the summary still quotes the residual quantiles of the fitted rows
    assert "nan" not in str(excl.summary()).split("Random effects")[0].lower()


def test_lmm_predict_is_indexed_like_newdata(sleep, lmm_fits):
    omit, _, complete = lmm_fits
    new = sleep.dropna(subset=["Days"]).iloc[::-7]
    pred = omit.predict(new)
    assert pred.index.equals(new.index)
    np.testing.assert_allclose(pred.to_numpy(), omit.fitted().loc[new.index].to_numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(pred.to_numpy(),
                               complete.predict(new.reset_index(drop=True)).to_numpy(), rtol=1e-10)


def test_na_action_is_checked(sleep):
    with pytest.raises(ModelSpecError, match="na_action"):
        mp.lmer("Reaction ~ Days + (Days | Subject)", sleep, na_action="drop")
    with pytest.raises(ModelSpecError, match="missing values"):
        mp.lmer("Reaction ~ Days + (Days | Subject)", sleep, na_action="raise")


@pytest.fixture(scope="module")
def ticks():
    cbpp = mp.datasets.load("cbpp")
    return _scrambled(cbpp, "incidence", [0, 7, 30], seed=2)


def test_glmm_rows_keep_their_labels(ticks):
    f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    omit = _fit(mp.glmer, f, ticks)
    excl = _fit(mp.glmer, f, ticks, na_action="exclude")
    complete = mp.glmer(f, ticks.dropna(subset=["incidence"]).reset_index(drop=True))
    kept = ticks.index[ticks["incidence"].notna()]
    for out in (omit.fitted(), omit.residuals(), omit.predict(), omit.predict(type="link")):
        assert isinstance(out, pd.Series) and out.index.equals(kept)
    np.testing.assert_allclose(omit.fitted().to_numpy(), complete.fitted().to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(omit.residuals("response").to_numpy(),
                               complete.residuals("response").to_numpy(), rtol=1e-5, atol=1e-8)
    for out, ref in ((excl.fitted(), omit.fitted()), (excl.residuals(), omit.residuals())):
        assert out.index.equals(ticks.index)
        assert out[ticks["incidence"].isna()].isna().all()
        pd.testing.assert_series_equal(out.dropna(), ref, check_names=False)
    new = ticks.loc[kept[::-3]]
    pred = omit.predict(new)
    assert pred.index.equals(new.index)
    np.testing.assert_allclose(pred.to_numpy(), omit.fitted().loc[new.index].to_numpy(),
                               rtol=1e-12)
    assert "nan" not in str(excl.summary()).split("Random effects")[0].lower()


def test_glmm_model_passes_na_action(ticks):
    f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    with pytest.raises(ModelSpecError, match="missing values"):
        mp.Model(f, ticks, family="binomial", na_action="raise")
    m = _fit(mp.Model, f, ticks, family="binomial", na_action="exclude")
    assert m.spec.na_action == "exclude"


def test_clmm_rows_keep_their_labels():
    wine = mp.datasets.load("wine")
    df = _scrambled(wine, "rating", [2, 40], seed=3)
    df["rating"] = pd.Categorical(df["rating"], categories=wine["rating"].cat.categories,
                                  ordered=True)
    f = "rating ~ temp + contact + (1 | judge)"
    omit = _fit(mp.clmm, f, df)
    excl = _fit(mp.clmm, f, df, na_action="exclude")
    kept = df.index[df["rating"].notna()]
    complete = mp.clmm(f, df.loc[kept].reset_index(drop=True))
    fitted = omit.fitted()
    assert isinstance(fitted, pd.Series) and fitted.index.equals(kept)
    np.testing.assert_allclose(fitted.to_numpy(), complete.fitted().to_numpy(), rtol=1e-6)
    ex = excl.fitted()
    assert ex.index.equals(df.index) and ex[df["rating"].isna()].isna().all()
    pd.testing.assert_series_equal(ex.dropna(), fitted, check_names=False)
    new = df.loc[kept[::-5]]
    prob = omit.predict(new, type="prob")
    assert isinstance(prob, pd.DataFrame) and prob.index.equals(new.index)
    assert list(prob.columns) == omit.levels
    codes = new["rating"].cat.codes.to_numpy()
    np.testing.assert_allclose(prob.to_numpy()[np.arange(len(new)), codes],
                               fitted.loc[new.index].to_numpy(), rtol=1e-12)
    cum = omit.predict(new, type="cum.prob")
    assert list(cum.columns) == omit.threshold_names and cum.index.equals(new.index)
    for kind in ("class", "linear.predictor"):
        assert omit.predict(new, type=kind).index.equals(new.index)
    assert omit.predict(type="prob").index.equals(kept)
    assert excl.predict(type="prob").index.equals(df.index)
