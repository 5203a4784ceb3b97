"""polars and pyarrow tables as data and newdata (read through narwhals, spec/frame.as_pandas):
the same fits, predictions and errors as the pandas DataFrame they hold."""

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.core.exceptions import DataWarning, ModelSpecError
from mixedppl.spec.frame import as_pandas

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def sleep():
    return mp.datasets.load("sleepstudy")


@pytest.mark.parametrize("convert", [pl.from_pandas, pa.Table.from_pandas], ids=["polars", "pyarrow"])
def test_lmer_on_a_table_equals_pandas(sleep, convert):
    formula = "Reaction ~ Days + (Days | Subject)"
    ref = mp.lmer(formula, sleep)
    fit = mp.lmer(formula, convert(sleep))
    assert fit.loglik == ref.loglik
    np.testing.assert_array_equal(fit.fe_params, ref.fe_params)
    np.testing.assert_array_equal(fit.random_effects["Subject"], ref.random_effects["Subject"])
    new = pd.DataFrame({"Days": [0.0, 5.0], "Subject": ["308", "999"]})
    expect = ref.predict(new)
    got = fit.predict(convert(new))
    np.testing.assert_allclose(got.to_numpy(), expect.to_numpy(), rtol=0, atol=0)
    table = fit.predict(convert(new), se_fit=True)
    np.testing.assert_allclose(table.to_numpy(), ref.predict(new, se_fit=True).to_numpy())


def test_glmer_and_clmm_on_polars():
    cbpp = mp.datasets.load("cbpp")
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    ref = mp.glmer(formula, cbpp, family="binomial")
    fit = mp.glmer(formula, pl.from_pandas(cbpp), family="binomial")
    # polars keeps no category order: herd's levels come back sorted as strings ("1", "10", …),
    # so the random effects are stored in another order and the optimiser's path differs in
    # the last digits (1.5e-8 here); the fit is the same optimum
    np.testing.assert_allclose(fit.fe_params, ref.fe_params, rtol=1e-6)
    np.testing.assert_allclose(fit.predict(pl.from_pandas(cbpp.head(4))),
                               ref.predict(cbpp.head(4)), rtol=1e-6)
    assert set(fit.random_effects["herd"].index) == set(ref.random_effects["herd"].index)
    wine = mp.datasets.load("wine")
    levels = [str(v) for v in wine["rating"].cat.categories]
    ref = mp.clmm("rating ~ temp + contact + (1 | judge)", wine)
    fit = mp.clmm("rating ~ temp + contact + (1 | judge)", pl.from_pandas(wine), levels=levels)
    np.testing.assert_allclose(fit.fe_params, ref.fe_params, rtol=1e-8)
    assert fit.loglik == pytest.approx(ref.loglik, abs=1e-8)


def test_polars_nulls_are_dropped_with_the_pandas_warning(sleep):
    data = sleep.copy()
    data.loc[[3, 17], "Reaction"] = np.nan
    with pytest.warns(DataWarning, match=r"2 row\(s\)"):
        ref = mp.lmer("Reaction ~ Days + (1 | Subject)", data)
    table = pl.from_pandas(sleep).with_columns(
        pl.when(pl.int_range(pl.len()).is_in([3, 17])).then(None)
        .otherwise(pl.col("Reaction")).alias("Reaction"))
    with pytest.warns(DataWarning, match=r"2 row\(s\)"):
        fit = mp.lmer("Reaction ~ Days + (1 | Subject)", table)
    assert fit.nobs == ref.nobs == 178
    assert fit.loglik == ref.loglik


def test_enum_keeps_its_order_categorical_is_sorted():
    df = pl.DataFrame({
        "c": pl.Series(["b", "a", "c", "a"], dtype=pl.Categorical),
        "e": pl.Series(["lo", "hi", "mid", "lo"], dtype=pl.Enum(["lo", "mid", "hi"])),
        "d": pa.array(["z", "y", "z", "x"]).dictionary_encode().to_pylist(),
    })
    out = as_pandas(df)
    assert list(out["c"].cat.categories) == ["a", "b", "c"] and not out["c"].cat.ordered
    assert list(out["e"].cat.categories) == ["lo", "mid", "hi"] and not out["e"].cat.ordered
    arrow = as_pandas(pa.table({"d": pa.array(["z", "y", "z", "x"]).dictionary_encode()}))
    assert list(arrow["d"].cat.categories) == ["x", "y", "z"]


def test_enum_predictor_uses_treatment_contrasts_in_enum_order():
    rng = np.random.default_rng(3)
    n = 120
    g = np.repeat(np.arange(12), 10).astype(str)
    f = rng.choice(["lo", "mid", "hi"], n)
    y = rng.normal(size=n) + (f == "hi") * 2.0 + np.repeat(rng.normal(size=12), 10)
    table = pl.DataFrame({"y": y, "g": g, "f": pl.Series(f, dtype=pl.Enum(["lo", "mid", "hi"]))})
    fit = mp.lmer("y ~ f + (1 | g)", table)
    assert list(fit.fe_params.index) == ["(Intercept)", "fmid", "fhi"]
    ref = mp.lmer("y ~ f + (1 | g)", pd.DataFrame(
        {"y": y, "g": g, "f": pd.Categorical(f, categories=["lo", "mid", "hi"])}))
    np.testing.assert_array_equal(fit.fe_params, ref.fe_params)


@pytest.mark.parametrize("bad, match", [
    ({"y": [1.0]}, "got a dict"),
    (np.zeros((3, 2)), "got a ndarray"),
    (None, "got a NoneType"),
])
def test_not_a_table_is_a_clear_error(bad, match):
    with pytest.raises(ModelSpecError, match=match):
        mp.lmer("y ~ x + (1 | g)", bad)


def test_lazy_frame_asks_for_collect(sleep):
    with pytest.raises(ModelSpecError, match=r"collect\(\)"):
        mp.lmer("Reaction ~ Days + (1 | Subject)", pl.from_pandas(sleep).lazy())


def test_newdata_not_a_table(sleep):
    fit = mp.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(ModelSpecError, match="newdata must be a DataFrame"):
        fit.predict({"Days": [1.0], "Subject": ["308"]})


def test_swapped_arguments_still_named(sleep):
    with pytest.raises(ModelSpecError, match="swapped"):
        mp.lmer(pl.from_pandas(sleep), "Reaction ~ Days + (1 | Subject)")
