"""Bad input gives a clear error that names the user's column / term, or a warning; never a deep
traceback, never silently wrong output. The user's DataFrame is never modified."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture
def sleep():
    return mp.datasets.load("sleepstudy")


def test_unknown_column_is_named_with_suggestion(sleep):
    with pytest.raises(mp.ModelSpecError, match=r"'Reacton'.*Did you mean 'Reaction'"):
        mp.lmer("Reacton ~ Days + (Days | Subject)", sleep)
    with pytest.raises(mp.ModelSpecError, match="'Subjekt'"):
        mp.lmer("Reaction ~ Days + (Days | Subjekt)", sleep)


def test_missing_values_dropped_with_count_or_raised(sleep):
    d = sleep.copy()
    d.loc[[3, 10], "Reaction"] = np.nan
    d.loc[20, "Days"] = np.nan
    before = d.copy()
    with pytest.warns(mp.DataWarning, match=r"3 row\(s\).*Reaction: 2.*Days: 1"):
        fit = mp.lmer(FORMULA, d)
    assert fit.nobs == 177
    pd.testing.assert_frame_equal(d, before)
    with pytest.raises(mp.ModelSpecError, match="missing values"):
        mp.lmer(FORMULA, d, na_action="raise")


def test_non_numeric_response(sleep):
    d = sleep.assign(Reaction=sleep["Reaction"].astype(str))
    with pytest.raises(mp.ModelSpecError, match=r"response 'Reaction' must be numeric"):
        mp.lmer(FORMULA, d)


def test_grouping_factor_with_one_level(sleep):
    d = sleep.assign(g="only")
    with pytest.raises(mp.ModelSpecError, match=r"grouping factor 'g' has 1 level"):
        mp.lmer("Reaction ~ Days + (1 | g)", d)


def test_as_many_levels_as_observations(sleep):
    d = sleep.assign(obs=np.arange(len(sleep)).astype(str))
    with pytest.raises(mp.ModelSpecError, match=r"'obs' \(180\) must be < number of observations"):
        mp.lmer("Reaction ~ Days + (1 | obs)", d)


def test_more_random_effects_than_observations(sleep):
    d = sleep.iloc[::4].assign(pair=lambda x: (np.arange(len(x)) // 2).astype(str))
    with pytest.raises(mp.ModelSpecError, match="number of random effects"):
        mp.lmer("Reaction ~ Days + (Days | pair)", d)


def test_rank_deficient_fixed_effects_dropped_with_warning(sleep):
    d = sleep.assign(Days2=2 * sleep["Days"])
    with pytest.warns(mp.RankDeficiencyWarning, match="Days2"):
        fit = mp.lmer("Reaction ~ Days + Days2 + (Days | Subject)", d)
    assert list(fit.fe_params.index) == ["(Intercept)", "Days"]
    ref = mp.lmer(FORMULA, sleep)
    np.testing.assert_allclose(fit.fe_params, ref.fe_params, rtol=1e-8)


def test_empty_data_and_wrong_type(sleep):
    with pytest.raises(mp.ModelSpecError, match="no rows"):
        mp.lmer(FORMULA, sleep.iloc[:0])
    with pytest.raises(mp.ModelSpecError, match="DataFrame"):
        mp.lmer(FORMULA, sleep.to_dict())


def test_formula_without_random_terms(sleep):
    with pytest.raises(mp.ModelSpecError, match="no random-effects terms"):
        mp.lmer("Reaction ~ Days", sleep)


def test_bad_weights(sleep):
    with pytest.raises(mp.ModelSpecError, match="non-negative"):
        mp.lmer(FORMULA, sleep, weights=-np.ones(len(sleep)))
    with pytest.raises(mp.ModelSpecError, match="one value per row"):
        mp.lmer(FORMULA, sleep, weights=np.ones(3))


def test_new_level_of_a_fixed_factor_in_predict():
    cake = mp.datasets.load("cake")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mp.lmer("angle ~ recipe + temp + (1 | recipe:replicate)", cake)
    new = cake.head(2).copy()
    new["recipe"] = ["Z", "A"]
    with pytest.raises(mp.ModelSpecError, match="recipe"):
        fit.predict(new)


def test_input_frame_not_modified(sleep):
    before = sleep.copy()
    mp.lmer(FORMULA, sleep)
    pd.testing.assert_frame_equal(sleep, before)
