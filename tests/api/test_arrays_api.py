"""The array door (``mp.lmm`` / ``mp.glmm``) and family objects give the formula door's fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.arrays_api import array_formula
from mixedppl.core.exceptions import ModelSpecError
from mixedppl.families import FAMILIES, GAUSSIAN, get_family

TOL = dict(rtol=1e-10, atol=1e-10)


@pytest.fixture(scope="module")
def sleep():
    return mp.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def cbpp():
    return mp.datasets.load("cbpp")


def assert_same_fit(a, b, names: bool = True):
    """Every number of two fits of one model agrees to 1e-10."""
    np.testing.assert_allclose(a.theta, b.theta, **TOL)
    np.testing.assert_allclose(a.beta, b.beta, **TOL)
    np.testing.assert_allclose(a.vcov_beta, b.vcov_beta, **TOL)
    np.testing.assert_allclose(a.loglik, b.loglik, **TOL)
    np.testing.assert_allclose(a.varcorr["vcov"], b.varcorr["vcov"], **TOL)
    for x, y in zip(a.b, b.b):
        np.testing.assert_allclose(x, y, **TOL)
    if names:
        assert list(a.fe_params.index) == list(b.fe_params.index)
        assert a.varcorr[["grp", "var1", "var2"]].equals(b.varcorr[["grp", "var1", "var2"]])


@pytest.mark.parametrize("reml", [True, False])
def test_lmm_sleepstudy_is_lmer(sleep, reml):
    X = np.column_stack([np.ones(len(sleep)), sleep["Days"]])
    fit = mp.lmm(sleep["Reaction"].to_numpy(), pd.DataFrame(X, columns=["const", "Days"]),
                 groups={"Subject": sleep["Subject"]}, random_effects={"Subject": ["1", "Days"]},
                 random_data={"Days": sleep["Days"].to_numpy()}, reml=reml)
    ref = mp.lmer("Reaction ~ Days + (1 + Days | Subject)", sleep, reml=reml)
    assert_same_fit(fit, ref)
    np.testing.assert_allclose(fit.sigma, ref.sigma, **TOL)
    np.testing.assert_allclose(fit.df, ref.df, rtol=1e-8)
    assert fit.spec.formula == "y ~ 1 + Days + (1 + Days | Subject)"


def test_lmm_default_is_random_intercept_and_slope_from_x(sleep):
    X = np.column_stack([np.ones(len(sleep)), sleep["Days"]])
    fit = mp.lmm(sleep["Reaction"], X, sleep["Subject"].to_numpy())
    assert fit.spec.formula == "y ~ 1 + x2 + (1 | group)"
    slope = mp.lmm(sleep["Reaction"], X, {"Subject": sleep["Subject"]},
                   random_effects={"Subject": ["x2"]})
    assert_same_fit(slope, mp.lmer("Reaction ~ Days + (0 + Days | Subject)", sleep), names=False)


def test_lmm_penicillin_crossed_is_lmer():
    pen = mp.datasets.load("penicillin")
    fit = mp.lmm(pen["diameter"], np.ones((len(pen), 1)),
                 groups={"plate": pen["plate"], "sample": pen["sample"]})
    assert_same_fit(fit, mp.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen))


def test_glmm_cbpp_with_trials_is_glmer(cbpp):
    X = pd.get_dummies(cbpp["period"], prefix="period", drop_first=True, dtype=float)
    X.insert(0, "(Intercept)", 1.0)
    fit = mp.glmm(cbpp["incidence"], X, {"herd": cbpp["herd"]}, family="binomial",
                  trials=cbpp["size"])
    ref = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    assert_same_fit(fit, ref, names=False)
    assert list(fit.fe_params.index) == ["(Intercept)", "period_2", "period_3", "period_4"]
    probit = mp.glmm(cbpp["incidence"], X, {"herd": cbpp["herd"]},
                     family=mp.families.Binomial(link="probit"), trials=cbpp["size"])
    assert probit.link.name == "probit"
    assert_same_fit(probit, mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                                     cbpp, family="binomial", link="probit"), names=False)


def test_names_cannot_clash():
    """A response or failures column never takes a user's name."""
    n = 4
    f, d = array_formula(np.arange(n, dtype=float), pd.DataFrame({"y": np.ones(n) * 2,
                                                                  "failures": np.arange(n)}),
                         {"g": list("aabb")}, trials=np.full(n, 5.0))
    assert f == "cbind(y_, failures_) ~ 0 + y + failures + (1 | g)"
    assert d["failures_"].tolist() == [5.0, 4.0, 3.0, 2.0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(y=[1.0, 2.0, 3.0]), "X column 'x1' has 4 values; y has 3"),
    (dict(groups={"g": list("aab")}), r"groups\['g'\] has 3 values; y has 4"),
    (dict(groups={"g": ["a", None, "b", "b"]}), r"groups\['g'\] has 1 missing id"),
    (dict(y=[1.0, np.nan, 3.0, 4.0]), "y has 1 missing or infinite value"),
    (dict(random_effects={"h": ["1"]}), r"group\(s\) \['h'\] that are not in groups"),
    (dict(random_effects={"g": ["1", "z"]}), r"names \['z'\], which are neither"),
    (dict(random_data={"z": [1.0, 2.0, np.inf, 4.0]}), r"random_data\['z'\] has 1 missing"),
    (dict(X=np.column_stack([np.ones(4), [1.0, 2, 3, 5]]), random_data={"x2": [1.0, 2, 3, 4]}),
     r"differs from X's column 'x2'"),
    (dict(random_data={"g": [1.0, 2.0, 3.0, 4.0]}), "both grouping factors and variables"),
    (dict(X=pd.DataFrame({"log dose": [1.0, 2, 3, 4]})), "cannot be used in a formula"),
    (dict(X=pd.DataFrame({"f": list("abab")})), "X column 'f' must be numeric"),
    (dict(groups={}), "groups is empty"),
])
def test_clear_errors(kwargs, message):
    args = dict(y=[1.0, 2.0, 3.0, 4.0], X=np.ones((4, 1)), groups={"g": list("aabb")})
    args.update(kwargs)
    with pytest.raises(ModelSpecError, match=message):
        array_formula(**args)


@pytest.mark.parametrize("obj, name, link", [
    (mp.families.Binomial(), "binomial", "logit"),
    (mp.families.Binomial(link="probit"), "binomial", "probit"),
    (mp.families.Poisson(), "poisson", "log"),
    (mp.families.NegativeBinomial(), "negative_binomial", "log"),
    (mp.families.Gamma(link="log"), "gamma", "log"),
    (mp.families.Beta(), "beta", "logit"),
])
def test_family_objects_resolve_to_the_table_rows(obj, name, link):
    fam, lnk = get_family(obj)
    assert fam is FAMILIES[name] and lnk.name == link
    assert get_family(obj) == get_family(name, link)
    assert get_family(mp.families.Gaussian())[0] is GAUSSIAN


def test_family_object_errors():
    with pytest.raises(ModelSpecError, match="not available for family 'binomial'"):
        mp.families.Binomial(link="log")
    with pytest.raises(ModelSpecError, match="contradicts the family object"):
        get_family(mp.families.Binomial(link="probit"), "logit")


def test_family_objects_give_the_names_fits(sleep, cbpp):
    f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    assert_same_fit(mp.glmer(f, cbpp, family=mp.families.Binomial(link="cloglog")),
                    mp.glmer(f, cbpp, family="binomial", link="cloglog"))
    g = "Reaction ~ Days + (1 | Subject)"
    assert_same_fit(mp.glmer(g, sleep, family=mp.families.Gamma()),
                    mp.glmer(g, sleep, family="gamma"))
    assert_same_fit(mp.Model("Reaction ~ Days + (Days | Subject)", sleep,
                             family=mp.families.Gaussian()).fit(),
                    mp.lmer("Reaction ~ Days + (Days | Subject)", sleep))
    spec = mp.Model(f, cbpp, family=mp.families.Binomial(link="probit")).spec
    assert spec.link.name == "probit"
