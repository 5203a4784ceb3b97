"""The one front door: ``Model(formula, data, family)`` builds the spec once for every family;
``lmer``, ``glmer`` and ``clmm`` are thin wrappers with one argument set."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
import mixedppl.api as api
from mixedppl.core.exceptions import ModelSpecError
from mixedppl.families import GAUSSIAN
from mixedppl.spec.model_spec import build_spec

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
SLEEP = "Reaction ~ Days + (Days | Subject)"
WINE = "rating ~ temp + contact + (1 | judge)"


@pytest.fixture(scope="module")
def cbpp():
    return mp.datasets.load("cbpp")


@pytest.fixture(scope="module")
def wine():
    return mp.datasets.load("wine")


@pytest.fixture(scope="module")
def sleep():
    return mp.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def glmer_fit(cbpp):
    return mp.glmer(CBPP, cbpp, family="binomial")


@pytest.fixture(scope="module")
def clmm_fit(wine):
    return mp.clmm(WINE, wine)


@pytest.fixture
def count_builds(monkeypatch):
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[0])
        return build_spec(*args, **kwargs)

    monkeypatch.setattr(api, "build_spec", counting)
    return calls


@pytest.mark.parametrize("front, args", [
    ("lmer", (SLEEP, "sleepstudy")),
    ("glmer", (CBPP, "cbpp")),
    ("clmm", (WINE, "wine")),
])
def test_each_front_door_builds_the_spec_once(count_builds, front, args):
    formula, name = args
    fit = getattr(mp, front)(formula, mp.datasets.load(name))
    assert count_builds == [formula]
    assert np.isfinite(fit.loglik)


def test_model_fit_objective_and_refit_use_the_one_spec(count_builds, cbpp):
    model = mp.Model(CBPP, cbpp, "binomial")
    first = model.fit()
    again = model.fit(nAGQ=0)
    objective = model.objective()
    assert count_builds == [CBPP]
    assert first.spec is model.spec and again.spec is model.spec
    x = np.concatenate([first.theta, first.fe_params.to_numpy()])
    assert objective(x)[0] == pytest.approx(first.deviance_laplace, rel=1e-8)
    assert model.family.fit_kind == "glmer" and model.link.name == "logit"


def test_model_of_each_family_holds_its_response(cbpp, wine, sleep):
    lmm = mp.Model(SLEEP, sleep)
    assert lmm.family is GAUSSIAN
    assert lmm.spec.family.fit_kind == "lmer" and lmm.levels is None
    glmm = mp.Model(CBPP, cbpp, family="binomial")
    y, n = glmm.spec.counts()
    assert (int(y.sum()), int(n.sum())) == (99, 842)
    assert glmm.spec.trials is not None
    ordinal = mp.Model(WINE, wine, family="ordinal", threshold="equidistant")
    assert ordinal.levels == ["1", "2", "3", "4", "5"]
    assert ordinal.family.K == 5 and ordinal.family.threshold == "equidistant"
    assert "(Intercept)" not in ordinal.spec.fe_names


def test_the_three_wrappers_take_one_argument_set():
    shared = {"weights", "offset", "na_action", "contrasts", "control", "start"}
    for front in (mp.lmer, mp.glmer, mp.clmm, mp.Model):
        params = set(inspect.signature(front).parameters)
        assert shared <= params, (front.__name__, shared - params)


def _contr_sum(column: pd.Series, prefix: str) -> pd.DataFrame:
    """R's contr.sum coding of a factor, by hand: level k → e_k, the last level → −1."""
    levels = list(column.cat.categories)
    out = {f"{prefix}{k + 1}": np.where(column == lev, 1.0, 0.0)
           - np.where(column == levels[-1], 1.0, 0.0) for k, lev in enumerate(levels[:-1])}
    return pd.DataFrame(out, index=column.index)


def test_glmer_contrasts_match_the_hand_coded_columns(cbpp):
    fit = mp.glmer(CBPP, cbpp, family="binomial", contrasts={"period": "contr.sum"})
    coded = pd.concat([cbpp, _contr_sum(cbpp["period"], "p")], axis=1)
    hand = mp.glmer("cbind(incidence, size - incidence) ~ p1 + p2 + p3 + (1 | herd)", coded,
                    family="binomial")
    assert fit.fe_params.index.tolist() == ["(Intercept)", "period1", "period2", "period3"]
    assert fit.loglik == pytest.approx(hand.loglik, rel=1e-9)
    np.testing.assert_allclose(fit.fe_params.to_numpy(), hand.fe_params.to_numpy(), rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(fit.theta, hand.theta, rtol=1e-5)
    treatment = mp.glmer(CBPP, cbpp, family="binomial")
    assert fit.loglik == pytest.approx(treatment.loglik, rel=1e-8)  # same model, other coding
    assert not np.allclose(fit.fe_params.to_numpy(), treatment.fe_params.to_numpy())


def test_clmm_contrasts_match_the_hand_coded_columns(wine):
    fit = mp.clmm(WINE, wine, contrasts={"temp": "contr.sum"})
    coded = pd.concat([wine, _contr_sum(wine["temp"], "t")], axis=1)
    hand = mp.clmm("rating ~ t1 + contact + (1 | judge)", coded)
    assert fit.fe_params.index.tolist() == ["temp1", "contactyes"]
    assert fit.loglik == pytest.approx(hand.loglik, rel=1e-9)
    np.testing.assert_allclose(fit.fe_params.to_numpy(), hand.fe_params.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(fit.thresholds.to_numpy(), hand.thresholds.to_numpy(),
                               rtol=1e-5)


def test_glmer_start_at_the_optimum_returns_the_same_fit(cbpp, glmer_fit):
    for start in ({"theta": glmer_fit.theta}, glmer_fit.theta):
        again = mp.glmer(CBPP, cbpp, family="binomial", start=start)
        assert again.loglik == pytest.approx(glmer_fit.loglik, rel=1e-10)
        np.testing.assert_allclose(again.theta, glmer_fit.theta, rtol=1e-4)
        np.testing.assert_allclose(again.fe_params, glmer_fit.fe_params, rtol=1e-4)


def test_clmm_start_at_the_optimum_returns_the_same_fit(wine, clmm_fit):
    again = mp.clmm(WINE, wine, start=clmm_fit.theta)
    assert again.loglik == pytest.approx(clmm_fit.loglik, rel=1e-10)
    np.testing.assert_allclose(again.theta, clmm_fit.theta, rtol=1e-4)
    np.testing.assert_allclose(again.fe_params, clmm_fit.fe_params, rtol=1e-4)


def test_lmer_start_as_lme4_list(sleep):
    fit = mp.lmer(SLEEP, sleep)
    again = mp.lmer(SLEEP, sleep, start={"theta": fit.theta})
    assert again.reml_criterion == pytest.approx(fit.reml_criterion, rel=1e-12)


def test_control_as_dict_or_control_for_every_front_door(sleep, cbpp, wine, glmer_fit,
                                                         clmm_fit):
    assert mp.lmer(SLEEP, sleep, control={"maxiter": 5000}).loglik == pytest.approx(
        mp.lmer(SLEEP, sleep, control=mp.Control(maxiter=5000)).loglik, rel=1e-12)
    g = mp.glmer(CBPP, cbpp, family="binomial", control=mp.LmerControl(gtol=1e-7))
    assert g.loglik == pytest.approx(glmer_fit.loglik, rel=1e-8)
    r = mp.clmm(WINE, wine, control={"gtol": 1e-7})
    assert r.loglik == pytest.approx(clmm_fit.loglik, rel=1e-8)
    with pytest.raises(ValueError, match="unknown control"):
        mp.clmm(WINE, wine, control={"tolerance": 1})


def test_bad_family_and_link_names_say_what_is_available(cbpp, wine, sleep):
    with pytest.raises(ModelSpecError, match=r"family='weibull' is not available; choose from "
                       r"\['beta', 'betabinomial', 'binomial', 'cumulative'"):
        mp.Model(CBPP, cbpp, family="weibull")
    with pytest.raises(ModelSpecError, match="link='probit' is not available for family "
                       "'poisson'; choose from \\['log', 'sqrt', 'identity'\\]"):
        mp.glmer("incidence ~ period + (1 | herd)", cbpp, family="poisson", link="probit")
    with pytest.raises(ModelSpecError, match="link='identity' is not available for family "
                       "'cumulative'"):
        mp.clmm(WINE, wine, link="identity")
    with pytest.raises(ModelSpecError, match="not a GLMM family: fit it with mp.lmer"):
        mp.glmer(SLEEP, sleep, family=mp.families.GAUSSIAN)  # "gaussian" is glmmTMB's there
    with pytest.raises(ModelSpecError, match="not a GLMM family: fit it with mp.clmm"):
        mp.glmer(WINE, wine, family="ordinal")
    with pytest.raises(ModelSpecError, match="options of the cumulative"):
        mp.Model(CBPP, cbpp, family="binomial", levels=["a", "b"])
    with pytest.raises(ModelSpecError, match="threshold='spline' is not available"):
        mp.Model(WINE, wine, family="cumulative", threshold="spline")


def test_arguments_of_another_fit_are_refused(cbpp, sleep):
    with pytest.raises(ModelSpecError, match="reml= applies to linear mixed models"):
        mp.Model(CBPP, cbpp, family="binomial").fit(reml=False)
    with pytest.raises(ModelSpecError, match="nAGQ=2 applies to GLMMs"):
        mp.Model(SLEEP, sleep).fit(nAGQ=2)
    with pytest.raises(ModelSpecError, match="start= takes 'theta'"):
        mp.glmer(CBPP, cbpp, family="binomial", start={"theta": [1.0], "fixef": [0, 0, 0, 0]})
    with pytest.raises(ModelSpecError, match="θ has 2 value"):
        mp.glmer(CBPP, cbpp, family="binomial", start=[1.0, 0.5])
