"""``tidy()`` / ``glance()`` against broom.mixed (and broom for clmm), from
tests/reference/broom_tidy.json (tests/reference/scripts/broom_tidy.R)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import reference

import mixedppl as mp

REF = reference("broom_tidy")
DATA = {"sleepstudy_reml": "sleepstudy", "sleepstudy_ml": "sleepstudy",
        "sleepstudy_uncorr": "sleepstudy", "pastes": "pastes", "penicillin": "penicillin",
        "cake_3x3": "cake", "cbpp": "cbpp", "wine": "wine"}
#: Relative tolerance of the tidy numbers (largest seen: LMMs 1e-6, cbpp 1.1e-6, wine's SEs 5e-5,
#: as tests/parity/test_clmm.py); glance() agrees to 7e-8 everywhere.
RTOL = {"cbpp": 5e-6, "wine": 1e-4}


def _fit(case: str):
    ref = REF[case]
    data = mp.datasets.load(DATA[case])
    if case == "cake_3x3":                    # singular in R too
        with pytest.warns(mp.SingularFitWarning):
            return mp.lmer(ref["formula"], data)
    if ref["kind"] == "lmer":
        return mp.lmer(ref["formula"], data, reml="REML = FALSE" not in ref["call"])
    if ref["kind"] == "glmer":
        return mp.glmer(ref["formula"], data, family="binomial")
    return mp.clmm(ref["formula"], data)


@pytest.fixture(scope="module", params=list(REF))
def case(request):
    return request.param, _fit(request.param)


def _r_names(columns) -> list[str]:
    return [c.replace(".", "_") for c in columns]


def test_tidy_rows_columns_and_numbers(case):
    name, fit = case
    ref = pd.DataFrame(REF[name]["tidy"])
    ours = fit.tidy(conf_int=True)
    if "effect" not in ref:                      # broom's tidy.clmm: no random-effect rows
        ours = ours[ours["effect"] == "fixed"].drop(columns=["effect", "group"])
        ours = ours.reset_index(drop=True)
    assert list(ours.columns) == _r_names(ref.columns)
    assert ours["term"].tolist() == ref["term"].tolist()
    if "group" in ref:
        assert ours["group"].tolist() == list(REF[name]["tidy"]["group"])
        assert ours["effect"].tolist() == ref["effect"].tolist()
    rtol = RTOL.get(name, 2e-6)
    for col in ["estimate", "std_error", "statistic", "df", "conf_low", "conf_high"]:
        if col in ours:
            r = ref[col.replace("_", ".")].to_numpy(float)
            np.testing.assert_allclose(ours[col].to_numpy(float), r, rtol=rtol, atol=rtol,
                                       err_msg=col)
    if "p_value" in ours:
        r = ref["p.value"].to_numpy(float)
        np.testing.assert_allclose(ours["p_value"].to_numpy(float), r, rtol=20 * rtol,
                                   atol=1e-12)


def test_glance(case):
    name, fit = case
    ref = REF[name]["glance"]
    ours = fit.glance()
    expected = {k.replace(".", "_"): v for k, v in ref.items()}
    assert list(ours.columns) == list(expected)
    assert len(ours) == 1
    # broom.mixed's glance is of R's default fit (not a tight refit): the brief's parity
    # tolerances apply — sigma 1e-3 relative, logLik / AIC / BIC / deviance 1e-3 absolute,
    # counts exact. (pastes' sigma sits on a flat ridge: it moved by 1.6e-6 relative between
    # scipy / BLAS builds while logLik stayed within 1e-9.)
    got = ours.iloc[0]
    for key, value in expected.items():
        if key == "sigma":
            assert got[key] == pytest.approx(value, rel=1e-3), key
        elif key in ("nobs", "df_residual"):
            assert got[key] == value, key
        else:
            assert got[key] == pytest.approx(value, abs=1e-3), key


def test_tidy_options():
    fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    tidy = fit.tidy()
    assert "conf_low" not in tidy                     # conf.int = FALSE by default, as broom
    assert fit.tidy(effects="fixed")["effect"].unique().tolist() == ["fixed"]
    assert len(fit.tidy(effects=["ran_pars"])) == 4
    wide = fit.tidy(conf_int=True, conf_level=0.99)
    narrow = fit.tidy(conf_int=True, conf_level=0.5)
    assert (wide["conf_low"][:2] < narrow["conf_low"][:2]).all()
    kr = fit.tidy(ddf="Kenward-Roger")
    np.testing.assert_allclose(kr["df"][:2], fit.df_kr, rtol=1e-12)
    with pytest.raises(ValueError, match="effects must be among"):
        fit.tidy(effects="ran_vals")


DEVIANCE = reference("clm_predict_glmer_deviance")["deviance"]


@pytest.mark.parametrize("case", list(DEVIANCE))
def test_glmm_glance_deviance_is_the_conditional_deviance(case):
    """R's deviance(glmer) (= broom.mixed's glance()$deviance): Σ of the unit deviances at the
    conditional modes, not −2 logLik (tests/reference/scripts/clm_predict_glmer_deviance.R)."""
    ref = DEVIANCE[case]
    g = mp.glmer(ref["formula"], mp.datasets.load("cbpp"), family=ref["family"])
    ours = g.glance()
    assert list(ours.columns).index("deviance") == 5
    np.testing.assert_allclose(ours["deviance"].iloc[0], ref["glance_deviance"], rtol=1e-6)
    assert ref["glance_deviance"] == ref["deviance"]
    assert abs(ref["deviance"] + 2 * ref["logLik"]) > 1           # a different quantity
    np.testing.assert_allclose(ours["deviance"].iloc[0],
                               np.sum(g.residuals("deviance") ** 2), rtol=1e-12)
