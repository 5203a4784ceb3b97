"""Bad input gives a clear error that names the user's column / term, or a warning; never a deep
traceback, never silently wrong output. The user's DataFrame is never modified."""

import re
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


# -- issue 10: bad input ---------------------------------------------------------------------------
@pytest.fixture
def wine():
    return mp.datasets.load("wine")


CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
WINE = "rating ~ temp + contact + (1 | judge)"


@pytest.mark.parametrize("column", ["Reaction", "Days"])
def test_infinite_values_named_with_count(sleep, column):
    d = sleep.astype({column: float})
    d.loc[[1, 7], column] = [np.inf, -np.inf]
    with pytest.raises(mp.ModelSpecError, match=rf"column '{column}' has 2 infinite value"):
        mp.lmer(FORMULA, d)


def test_infinite_values_glmer_clmm(wine):
    cbpp = mp.datasets.load("cbpp").astype({"size": float})
    cbpp.loc[0, "size"] = np.inf
    with pytest.raises(mp.ModelSpecError, match=r"column 'size' has 1 infinite value"):
        mp.glmer(CBPP, cbpp, family="binomial")
    w = wine.assign(x=np.where(np.arange(len(wine)) < 3, np.inf, 1.0))
    with pytest.raises(mp.ModelSpecError, match=r"column 'x' has 3 infinite value"):
        mp.clmm("rating ~ temp + x + (1 | judge)", w)


def test_infinite_value_of_a_transformed_response(sleep):
    d = sleep.assign(Reaction=np.where(np.arange(len(sleep)) == 0, 0.0, sleep["Reaction"]))
    with pytest.raises(mp.ModelSpecError, match=r"response 'log\(Reaction\)' has 1 infinite"):
        mp.lmer("log(Reaction) ~ Days + (Days | Subject)", d)


def test_constant_response(sleep, wine):
    with pytest.raises(mp.ModelSpecError, match=r"response 'Reaction' is constant"):
        mp.lmer(FORMULA, sleep.assign(Reaction=3.0))
    cbpp = mp.datasets.load("cbpp")
    with pytest.raises(mp.ModelSpecError, match="incidence|constant|same"):
        mp.glmer("y ~ period + (1 | herd)", cbpp.assign(y=2), family="poisson")
    with pytest.raises(mp.ModelSpecError, match=r"response 'rating' has 1 observed categor"):
        mp.clmm(WINE, wine.assign(rating=3))


def test_duplicated_column_names(sleep):
    d = pd.concat([sleep, sleep[["Days"]]], axis=1)
    with pytest.raises(mp.ModelSpecError, match=r"column 'Days' .*appears 2 times"):
        mp.lmer(FORMULA, d)
    unused = pd.concat([sleep, sleep[["Days"]].rename(columns={"Days": "extra"}),
                        sleep[["Days"]].rename(columns={"Days": "extra"})], axis=1)
    fit = mp.lmer(FORMULA, unused)  # a duplicated column the model does not use is ignored
    assert fit.nobs == 180


def test_duplicated_weights_column(sleep):
    d = pd.concat([sleep.assign(w=1.0), pd.DataFrame({"w": np.ones(len(sleep))})], axis=1)
    with pytest.raises(mp.ModelSpecError, match=r"column 'w' used in weights= appears 2 times"):
        mp.lmer(FORMULA, d, weights="w")


def test_datetime_column_refused(sleep):
    d = sleep.assign(when=pd.Timestamp("2024-01-01") + pd.to_timedelta(sleep["Days"], unit="D"))
    with pytest.raises(mp.ModelSpecError, match=r"column 'when' holds dates.*days since.*category"):
        mp.lmer("Reaction ~ when + (1 | Subject)", d)
    d2 = sleep.assign(when=[pd.Timestamp("2024-01-01").to_pydatetime()] * len(sleep))
    d2["when"] = d2["when"].astype(object)
    with pytest.raises(mp.ModelSpecError, match=r"column 'when' holds dates"):
        mp.lmer("Reaction ~ when + (1 | Subject)", d2)


def test_object_column_of_numbers_becomes_numeric(sleep):
    d = sleep.assign(Days=sleep["Days"].astype(object))
    d.loc[0, "Days"] = np.float64(d.loc[0, "Days"])
    before = d.copy()
    with pytest.warns(mp.DataWarning, match=r"column 'Days' has dtype object but holds only numbers"):
        fit = mp.lmer(FORMULA, d)
    assert list(fit.fe_params.index) == ["(Intercept)", "Days"]
    np.testing.assert_allclose(fit.fe_params, mp.lmer(FORMULA, sleep).fe_params, rtol=1e-8)
    pd.testing.assert_frame_equal(d, before)


def test_object_column_of_strings_stays_a_factor(sleep):
    d = sleep.assign(g=np.where(sleep["Days"] < 5, "a", "b").astype(object))
    with warnings.catch_warnings():
        warnings.simplefilter("error", mp.DataWarning)
        fit = mp.lmer("Reaction ~ g + (1 | Subject)", d)
    assert list(fit.fe_params.index) == ["(Intercept)", "gb"]


@pytest.mark.parametrize("formula, problem, column", [
    ("Reaction ~ Days + (1 | Subject", "unclosed '('", 18),
    ("Reaction ~ Days + (1 Subject)", "missing operator before 'Subject'", 21),
    ("Reaction ~ Days + 1 | Subject)", "unmatched ')'", 29),
])
def test_formula_syntax_error_points_at_the_position(sleep, formula, problem, column):
    with pytest.raises(mp.ModelSpecError) as err:
        mp.lmer(formula, sleep)
    lines = str(err.value).splitlines()
    assert lines[0] == f"{problem} in the formula"
    assert lines[1] == "    " + formula
    assert lines[2] == "    " + " " * column + "^"
    assert "no random-effects terms" not in str(err.value)


def test_syntax_error_glmer_clmm(wine):
    with pytest.raises(mp.ModelSpecError, match="unclosed"):
        mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd", mp.datasets.load("cbpp"))
    with pytest.raises(mp.ModelSpecError, match="missing operator before 'judge'"):
        mp.clmm("rating ~ temp + (1 judge)", wine)


def test_swapped_arguments_one_line(sleep, wine):
    cbpp = mp.datasets.load("cbpp")
    calls = [(mp.lmer, FORMULA, sleep, "lmer"), (mp.glmer, CBPP, cbpp, "glmer"),
             (mp.clmm, WINE, wine, "clmm"), (mp.Model, FORMULA, sleep, "Model")]
    for fn, formula, data, who in calls:
        with pytest.raises(mp.ModelSpecError) as err:
            fn(data, formula)
        msg = str(err.value)
        assert "\n" not in msg and "formula" in msg and "data" in msg and who in msg
        assert "swapped" in msg and len(msg) < 300


def test_wrong_types_do_not_print_the_data(sleep, wine):
    big = np.arange(10_000)
    for fn, formula, data in [(mp.lmer, FORMULA, sleep), (mp.clmm, WINE, wine),
                              (mp.glmer, CBPP, mp.datasets.load("cbpp"))]:
        with pytest.raises(mp.ModelSpecError, match="formula must be a string") as err:
            fn(big, data)
        assert "\n" not in str(err.value) and len(str(err.value)) < 200
        with pytest.raises(mp.ModelSpecError, match="data must be a DataFrame") as err:
            fn(formula, data.to_dict())
        assert "\n" not in str(err.value) and len(str(err.value)) < 200


def test_infinite_weights_named(sleep):
    w = np.ones(len(sleep))
    w[4] = np.inf
    with pytest.raises(mp.ModelSpecError, match=r"weights= has 1 infinite value"):
        mp.lmer(FORMULA, sleep, weights=w)
    with pytest.raises(mp.ModelSpecError, match=r"weights column 'w' has 1 infinite value"):
        mp.lmer(FORMULA, sleep.assign(w=w), weights="w")
    with pytest.raises(mp.ModelSpecError, match=r"weights column 'w' must be finite and non-neg"):
        mp.lmer(FORMULA, sleep.assign(w=-np.ones(len(sleep))), weights="w")
    with pytest.raises(mp.ModelSpecError, match=r"offset column 'o' has 1 infinite value"):
        mp.lmer(FORMULA, sleep.assign(o=w), offset="o")
    w[4] = np.nan  # a missing weight still drops its row
    with pytest.warns(mp.DataWarning, match="1 row"):
        assert mp.lmer(FORMULA, sleep, weights=w).nobs == 179


def test_predict_on_empty_newdata(sleep, wine):
    fit = mp.lmer(FORMULA, sleep)
    out = fit.predict(sleep.iloc[:0])
    assert isinstance(out, pd.Series) and out.shape == (0,) and out.dtype == float
    cbpp = mp.datasets.load("cbpp")
    g = mp.glmer(CBPP, cbpp, family="binomial")
    for kind in ("response", "link"):
        assert g.predict(cbpp.iloc[:0], type=kind).shape == (0,)
    r = mp.clmm(WINE, wine)
    assert r.predict(wine.iloc[:0]).shape == (0, 5)
    assert r.predict(wine.iloc[:0], type="cum.prob").shape[0] == 0
    assert r.predict(wine.iloc[:0], type="class").shape == (0,)
    assert r.predict(wine.iloc[:0], type="linear.predictor").shape == (0,)


def test_one_control_class_for_all_fits(sleep, wine):
    assert mp.LmerControl is mp.Control
    c = mp.Control()
    assert (c.ftol, c.gtol, c.maxiter) == (1e-14, 1e-9, 3000)  # lmer's defaults
    assert c.options("glmer") == {"ftol": 1e-15, "gtol": 1e-6, "maxiter": 2000}
    assert mp.Control(maxiter=7).options("clmm")["maxiter"] == 7
    cbpp = mp.datasets.load("cbpp")
    ref = mp.glmer(CBPP, cbpp, family="binomial")
    same = mp.glmer(CBPP, cbpp, family="binomial", control=mp.Control())
    np.testing.assert_array_equal(same.beta, ref.beta)  # glmer's own defaults kept
    with pytest.warns(mp.ConvergenceWarning):
        short = mp.glmer(CBPP, cbpp, family="binomial", control=mp.Control(maxiter=2))
    with pytest.warns(mp.ConvergenceWarning):
        short_dict = mp.glmer(CBPP, cbpp, family="binomial", control={"maxiter": 2})
    np.testing.assert_array_equal(short.beta, short_dict.beta)
    assert not np.allclose(short.beta, ref.beta)
    r = mp.clmm(WINE, wine, control=mp.Control())
    np.testing.assert_array_equal(r.beta, mp.clmm(WINE, wine).beta)
    with pytest.raises(ValueError, match="unknown control setting"):
        mp.glmer(CBPP, cbpp, control={"maxiters": 2})


def _crossed_too_many_res():
    """30 rows, (x | a) with 17 levels: 34 random effects for the term."""
    rng = np.random.default_rng(1)
    a = np.r_[np.arange(17), rng.integers(0, 17, 13)]
    return pd.DataFrame({"y": rng.normal(size=30), "x": rng.normal(size=30),
                         "a": a.astype(str), "b": (np.arange(30) % 5).astype(str)})


def test_more_random_effects_than_observations_lme4_wording():
    d = _crossed_too_many_res()
    with pytest.raises(mp.ModelSpecError, match=re.escape(
            "number of observations (=30) <= number of random effects (=34) for term "
            "(1 + x | a); the random-effects parameters and the residual variance "
            "(or scale parameter) are probably unidentifiable")):
        mp.lmer("y ~ x + (1 + x | a) + (1 | b)", d)
    with pytest.warns(UserWarning, match="number of random effects"):
        mp.Model("y ~ x + (1 + x | a) + (1 | b)", d,
                 control=mp.Control(check_nobs_vs_nRE="warn"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        m = mp.Model("y ~ x + (1 + x | a) + (1 | b)", d,
                     control=mp.Control(check_nobs_vs_nRE="ignore"))
    assert m.spec.q == 39


def test_nobs_vs_nRE_glmer_allows_n_not_more():
    d = _crossed_too_many_res().assign(y=lambda x: (x["y"] > 0).astype(int))
    with pytest.raises(mp.ModelSpecError, match=re.escape(
            "number of observations (=30) < number of random effects (=34) for term "
            "(1 + x | a); the random-effects parameters are probably unidentifiable")):
        mp.Model("y ~ x + (1 + x | a)", d, family="binomial")
    m = mp.Model("y ~ x + (1 + x | a)", d, family="binomial",
                 control={"check_nobs_vs_nRE": "ignore"})
    assert m.spec.q == 34
    d15 = d.assign(a=(np.arange(30) % 15).astype(str))  # q = 30 = n: allowed for glmer
    assert mp.Model("y ~ x + (1 + x | a)", d15, family="binomial").spec.q == 30
    with pytest.raises(mp.ModelSpecError, match=r"\(=30\) <= number of random effects \(=30\)"):
        mp.Model("y ~ x + (1 + x | a)", d15.assign(y=d15["y"] + 0.5 * np.arange(30)))
