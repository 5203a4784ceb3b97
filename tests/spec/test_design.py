"""Model matrices against R's ``model.matrix()``: names, order, coding, transforms and errors.

Expected values are R's (from ``tests/reference``) or worked out by hand from R's documented
coding rules (contr.treatment / contr.poly, ``TermCode`` in ``stats/src/model.c``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedppl.datasets import load
from mixedppl.core.exceptions import ModelSpecError
from mixedppl.spec.contrasts import contr_helmert, contr_poly, contr_sum, r_number
from mixedppl.spec.design import Design, model_matrix, rhs_variables

from conftest import reference

# R's contr.poly(6), exactly: integer polynomials over their norms.
POLY6 = np.column_stack([
    np.array([-5, -3, -1, 1, 3, 5]) / np.sqrt(70),
    np.array([5, -1, -4, -4, -1, 5]) / np.sqrt(84),
    np.array([-5, 7, 4, -4, -7, 5]) / np.sqrt(180),
    np.array([1, -3, 2, 2, -3, 1]) / np.sqrt(28),
    np.array([-1, 5, -10, 10, -5, 1]) / np.sqrt(252),
])


@pytest.fixture(scope="module")
def cake() -> pd.DataFrame:
    return load("cake")


@pytest.fixture()
def small() -> pd.DataFrame:
    return pd.DataFrame({
        "a": pd.Series(list("xyzxyz"), dtype="str"),
        "b": list("ppqqpq"),
        "x": [1.0, 2.0, 3.0, 4.0, 10.0, 6.0],
        "t": [True, False, True, True, False, True],
    })


# --- contrasts -----------------------------------------------------------------------------------

def test_contr_poly_matches_r():
    mat, names = contr_poly([str(k) for k in range(6)])
    assert names == [".L", ".Q", ".C", "^4", "^5"]
    np.testing.assert_allclose(mat, reference("lmm_cake")["contr_poly_6"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(mat, POLY6, rtol=0, atol=1e-12)


def test_contr_sum_and_helmert():
    mat, names = contr_sum(["a", "b", "c"])
    assert names == ["1", "2"]
    np.testing.assert_array_equal(mat, [[1, 0], [0, 1], [-1, -1]])
    mat, names = contr_helmert(["a", "b", "c", "d"])
    assert names == ["1", "2", "3"]
    np.testing.assert_array_equal(mat, [[-1, -1, -1], [1, -1, -1], [0, 2, -1], [0, 0, 3]])


# --- cake: treatment × ordered (contr.poly) --------------------------------------------------------

def test_cake_names_order_assign(cake):
    d = model_matrix("recipe * temperature", cake)
    ref = reference("lmm_cake")
    assert d.column_names == ref["fixef_columns"] == ref["fixef"]["names"]
    assert d.term_names == ["recipe", "temperature", "recipe:temperature"]
    assert d.assign.tolist() == [0, 1, 1, 2, 2, 2, 2, 2] + [3] * 10
    assert d.has_intercept and d.offset is None
    assert d.matrix.shape == (270, 18)
    assert d.matrix.dtype == np.float64 and d.matrix.flags.c_contiguous


def test_cake_rows(cake):
    d = model_matrix("recipe * temperature", cake)
    # row 0: recipe A, 175 °C -> intercept, no recipe columns, contr.poly row 1, no interactions
    np.testing.assert_allclose(d.matrix[0], [1, 0, 0, *POLY6[0], *[0] * 10], atol=1e-12)
    # recipe B at 175 and 185: interaction columns recipeB:temperature.* carry the poly row
    rows = np.flatnonzero((cake.recipe == "B").to_numpy())
    for r, lev in zip(rows[:2], (0, 1)):
        assert cake.temperature.iloc[r] == ["175", "185"][lev]
        inter = np.zeros(10)
        inter[0::2] = POLY6[lev]                       # recipeB:... first (first factor fastest)
        np.testing.assert_allclose(d.matrix[r], [1, 1, 0, *POLY6[lev], *inter], atol=1e-12)
    r = np.flatnonzero(((cake.recipe == "C") & (cake.temperature == "225")).to_numpy())[0]
    inter = np.zeros(10)
    inter[1::2] = POLY6[5]
    np.testing.assert_allclose(d.matrix[r], [1, 0, 1, *POLY6[5], *inter], atol=1e-12)


def test_ordered_without_intercept_gets_dummies(cake):
    d = model_matrix("0 + temperature", cake)
    assert d.column_names == [f"temperature{t}" for t in (175, 185, 195, 205, 215, 225)]
    np.testing.assert_array_equal(d.matrix[:6], np.eye(6))


def test_contrasts_argument(cake):
    d = model_matrix("recipe + temperature", cake,
                     contrasts={"recipe": "contr.sum", "temperature": "contr.treatment"})
    assert d.column_names == ["(Intercept)", "recipe1", "recipe2"] + [
        f"temperature{t}" for t in (185, 195, 205, 215, 225)]
    c_row = np.flatnonzero((cake.recipe == "C").to_numpy())[0]
    np.testing.assert_array_equal(d.matrix[c_row, 1:3], [-1, -1])
    custom = np.array([[1.0], [0.0], [-1.0]])
    d = model_matrix("recipe", cake, contrasts={"recipe": custom, "unused": "contr.sum"})
    assert d.column_names == ["(Intercept)", "recipe1"]
    np.testing.assert_array_equal(d.matrix[c_row], [1, -1])


# --- lme4 datasets -----------------------------------------------------------------------------

def test_insteval_service():
    ie = load("insteval")
    d = model_matrix("1 + service", ie)
    assert d.column_names == ["(Intercept)", "service1"]
    np.testing.assert_array_equal(d.matrix[:, 1], (ie.service == "1").to_numpy(float))
    np.testing.assert_array_equal(d.matrix[:2], [[1, 0], [1, 1]])


def test_sleepstudy_random_effect_matrices():
    ss = load("sleepstudy")
    d = model_matrix("1 + Days", ss)
    assert d.column_names == ["(Intercept)", "Days"] and d.assign.tolist() == [0, 1]
    np.testing.assert_array_equal(d.matrix[:10], np.column_stack([np.ones(10), np.arange(10)]))
    assert model_matrix("Days", ss).column_names == ["(Intercept)", "Days"]
    d0 = model_matrix("0 + Days", ss)
    assert d0.column_names == ["Days"] and not d0.has_intercept
    np.testing.assert_array_equal(d0.matrix[:, 0], ss.Days.to_numpy(float))
    one = model_matrix("1", ss)
    assert one.column_names == ["(Intercept)"] and one.term_names == []
    assert one.matrix.shape == (180, 1)


# --- R's full-rank rule --------------------------------------------------------------------------

def test_factor_without_intercept(small):
    d = model_matrix("0 + a", small)
    assert d.column_names == ["ax", "ay", "az"]
    np.testing.assert_array_equal(d.matrix[:3], np.eye(3))
    d = model_matrix("0 + a + b", small)       # only the first factor gets dummies
    assert d.column_names == ["ax", "ay", "az", "bq"]


def test_interaction_without_main_effects(small):
    d = model_matrix("a:b", small)
    assert d.column_names == ["(Intercept)", "ax:bp", "ay:bp", "az:bp", "ax:bq", "ay:bq", "az:bq"]
    # row 2 is (a=z, b=q): only az:bq is 1
    np.testing.assert_array_equal(d.matrix[2], [1, 0, 0, 0, 0, 0, 1])
    assert model_matrix("0 + a:b", small).column_names == d.column_names[1:]


def test_numeric_by_factor(small):
    d = model_matrix("x*a", small)
    assert d.column_names == ["(Intercept)", "x", "ay", "az", "x:ay", "x:az"]
    assert d.term_names == ["x", "a", "x:a"]
    np.testing.assert_array_equal(d.matrix[4], [1, 10, 1, 0, 10, 0])   # x=10, a=y
    d = model_matrix("x:a", small)                 # no main effect of a: one slope per level
    assert d.column_names == ["(Intercept)", "x:ax", "x:ay", "x:az"]
    np.testing.assert_array_equal(d.matrix[4], [1, 0, 10, 0])


def test_power_nesting_and_deletion(small):
    d = model_matrix("(a+b)^2", small)
    assert d.column_names == ["(Intercept)", "ay", "az", "bq", "ay:bq", "az:bq"]
    assert d.term_names == ["a", "b", "a:b"]
    assert model_matrix("a/b", small).column_names == [
        "(Intercept)", "ay", "az", "ax:bq", "ay:bq", "az:bq"]
    d = model_matrix("a*b - a", small)
    assert d.column_names == ["(Intercept)", "bq", "ay:bp", "az:bp", "ay:bq", "az:bq"]


def test_term_order_and_labels(small):
    d = model_matrix("a:b + x + a", small)
    assert d.term_names == ["x", "a", "a:b"]
    assert d.assign.tolist() == [0, 1, 2, 2, 3, 3, 3]       # a:b after a: b by contrasts, a dummies
    assert d.column_names[-3:] == ["ax:bq", "ay:bq", "az:bq"]
    assert model_matrix("b:a + a", small).term_names == ["a", "b:a"]
    assert model_matrix("a + b:a", small).term_names == ["a", "a:b"]


@pytest.mark.parametrize("rhs,intercept", [
    ("x - 1", False), ("0 + x", False), ("x + 0", False), ("-1 + x", False),
    ("0 + x + 1", True), ("x", True), ("1 + x", True)])
def test_intercept_rules(small, rhs, intercept):
    d = model_matrix(rhs, small)
    assert d.has_intercept is intercept
    assert d.column_names == (["(Intercept)"] if intercept else []) + ["x"]


# --- variable types --------------------------------------------------------------------------

def test_logical_string_and_factor_calls(small):
    assert model_matrix("t", small).column_names == ["(Intercept)", "tTRUE"]
    d = model_matrix("t:x", small)
    assert d.column_names == ["(Intercept)", "tFALSE:x", "tTRUE:x"]
    np.testing.assert_array_equal(d.matrix[1], [1, 2, 0])
    d = model_matrix("factor(x)", pd.DataFrame({"x": [3, 1, 2, 3]}))
    assert d.column_names == ["(Intercept)", "factor(x)2", "factor(x)3"]
    np.testing.assert_array_equal(d.matrix[:, 1:], [[0, 1], [0, 0], [1, 0], [0, 1]])
    assert model_matrix("I(x > 2)", small).column_names == ["(Intercept)", "I(x > 2)TRUE"]


def test_unused_levels_dropped():
    df = pd.DataFrame({"g": pd.Categorical(["b", "a", "b"], categories=["c", "a", "b", "d"])})
    d = model_matrix("g", df)
    assert d.column_names == ["(Intercept)", "gb"]       # levels c, d unused; a is the baseline
    np.testing.assert_array_equal(d.matrix[:, 1], [1, 0, 1])


def test_calls_names_and_values(small):
    d = model_matrix("log(x + 1) + I(x/2) + I(x * 2) + I(x**2) + sqrt(x) + exp(x/10)", small)
    assert d.column_names == ["(Intercept)", "log(x + 1)", "I(x/2)", "I(x * 2)", "I(x^2)",
                              "sqrt(x)", "exp(x/10)"]
    x = small.x.to_numpy()
    np.testing.assert_allclose(d.matrix[:, 1:], np.column_stack(
        [np.log(x + 1), x / 2, x * 2, x ** 2, np.sqrt(x), np.exp(x / 10)]))


def test_scale_uses_n_minus_1_and_remembers(small):
    df = small.iloc[:5]                                # x = 1, 2, 3, 4, 10: mean 4, var 50/4
    d = model_matrix("scale(x)", df)
    assert d.column_names == ["(Intercept)", "scale(x)"]
    np.testing.assert_allclose(d.matrix[:, 1], (df.x - 4) / np.sqrt(12.5))
    X, _ = d.transform(pd.DataFrame({"x": [4.0, 4 + np.sqrt(12.5)]}))
    np.testing.assert_allclose(X[:, 1], [0.0, 1.0], atol=1e-14)
    d = model_matrix("scale(x, scale = FALSE)", df)
    assert d.column_names == ["(Intercept)", "scale(x, scale = FALSE)"]
    np.testing.assert_allclose(d.matrix[:, 1], [-3, -2, -1, 0, 6])


def test_poly_matches_r():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    d = model_matrix("poly(x, 2)", df)
    assert d.column_names == ["(Intercept)", "poly(x, 2)1", "poly(x, 2)2"]
    assert d.assign.tolist() == [0, 1, 1]
    np.testing.assert_allclose(d.matrix[:, 1], np.array([-2, -1, 0, 1, 2]) / np.sqrt(10), atol=1e-14)
    np.testing.assert_allclose(d.matrix[:, 2], np.array([2, -1, -2, -1, 2]) / np.sqrt(14), atol=1e-14)
    X, _ = d.transform(pd.DataFrame({"x": [6.0]}))     # predict.poly: (x-3)/√10, ((x-3)²-2)/√14
    np.testing.assert_allclose(X[0], [1, 3 / np.sqrt(10), 7 / np.sqrt(14)], atol=1e-14)


def test_offset(small):
    d = model_matrix("x + offset(log(x)) + offset(x)", small)
    assert d.column_names == ["(Intercept)", "x"] and d.term_names == ["x"]
    np.testing.assert_allclose(d.offset, np.log(small.x) + small.x)
    _, off = d.transform(pd.DataFrame({"x": [np.e]}))
    np.testing.assert_allclose(off, [1 + np.e])


# --- transform ----------------------------------------------------------------------------------

def test_transform_reproduces_training_rows(cake, small):
    d = model_matrix("recipe * temperature", cake)
    X, off = d.transform(cake.iloc[[200, 3, 57]])
    np.testing.assert_array_equal(X, d.matrix[[200, 3, 57]])
    assert off is None
    d = model_matrix("x*a + scale(x) + poly(x, 2) + t", small)
    X, _ = d.transform(small)
    np.testing.assert_allclose(X, d.matrix, atol=1e-13)


def test_transform_keeps_training_levels():
    train = pd.DataFrame({"g": ["a", "b", "c"]})
    d = model_matrix("g", train)
    X, _ = d.transform(pd.DataFrame({"g": ["c", "a"]}))     # only two levels present
    np.testing.assert_array_equal(X, [[1, 0, 1], [1, 0, 0]])


def test_transform_unknown_level(cake):
    d = model_matrix("recipe", cake)
    with pytest.raises(ModelSpecError, match=r"'D'.*'recipe'"):
        d.transform(pd.DataFrame({"recipe": ["A", "D"]}))


# --- errors and helpers -------------------------------------------------------------------------

def test_unknown_column_suggests():
    ss = load("sleepstudy")
    with pytest.raises(ModelSpecError, match=r"'Dayz'.*Did you mean 'Days'"):
        model_matrix("1 + Dayz", ss)


def test_unsupported_call_and_non_numeric(small):
    with pytest.raises(ModelSpecError, match=r"foo\(\)"):
        model_matrix("foo(x)", small)
    with pytest.raises(ModelSpecError, match=r"log\(a\).*'a'"):
        model_matrix("log(a)", small)
    with pytest.raises(ModelSpecError, match="parse"):
        model_matrix("x + (a", small)


def test_rhs_variables():
    assert rhs_variables("x * f + log(z + 1) + scale(w, scale = FALSE) + offset(log(e))") == [
        "x", "f", "z", "w", "e"]
    assert rhs_variables("1") == []
    assert rhs_variables("0 + `my var` + I(a^2)") == ["my var", "a"]


def test_r_number_formatting():
    assert [r_number(v) for v in (2.0, 0.5, 1e5, 123456.0, 1e-4, 0.001, -1.5)] == [
        "2", "0.5", "1e+05", "123456", "1e-04", "0.001", "-1.5"]
    d = model_matrix("I(x * 1e5)", pd.DataFrame({"x": [1.0, 2.0]}))
    assert isinstance(d, Design) and d.column_names == ["(Intercept)", "I(x * 1e+05)"]


def test_pickled_design_keeps_its_fitted_transforms():
    """scale / poly / ns parameters are keyed by node identity; a pickled design (a spec sent to
    Dask workers, a saved fit) must rebuild the same matrix on the training rows."""
    import pickle
    df = pd.DataFrame({"x": np.arange(10.0) ** 1.5, "z": np.linspace(0, 1, 10)})
    d = model_matrix("scale(x) + poly(z, 3) + ns(x, df = 3):z", df)
    again = pickle.loads(pickle.dumps(d))
    assert len(again.plan.params) == 3
    np.testing.assert_allclose(again.transform(df)[0], d.matrix, rtol=0, atol=1e-13)
