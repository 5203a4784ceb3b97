"""Cox frailty models against R's coxme 2.2-22 (tests/reference/coxme_*.json; the R call is in
each file's ``r_call``).

1. The objective at a fixed variance (coxme's ``vfixed``, ``at_fixed_variance``): the integrated
   log-likelihood to 1e-6 and β to 1e-5 relative. For rats (100 litters: coxme's sparse rule
   drops the information between litters) coxme's inner Newton with that approximate Hessian
   stops at its ``eps = 1e-8`` before the mode: its ``at_fixed_variance`` PPL is 3.8e-9 below
   the mode's and its integrated value 3.5e-5 above the tight refit's at the same variance. The
   tight refit (inner eps 1e-12) reaches the mode, so for rats the objective is compared with the
   tight refit's log-likelihood and β (same variance).
2. At the optimum (coxme's outer BFGS is loose, reltol 1e-5): the log-likelihood no lower than the
   better of R's two fits minus 1e-4 and at most 0.05 above; β and each variance within
   2·|R default − R tight| + 1e-4·(1 + |value|) of the better fit; SEs within 2e-2 relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedppl as mp
from mixedppl.core.exceptions import DataWarning, ModelSpecError

from conftest import reference

CASES = {"coxme_kidney": ("kidney", "efron"), "coxme_kidney_breslow": ("kidney", "breslow"),
         "coxme_rats": ("rats", "efron")}


def _vector(x):
    return np.atleast_1d(np.asarray(x, float))


@pytest.fixture(scope="module")
def fits():
    out = {}
    for case, (data, ties) in CASES.items():
        ref = reference(case)
        out[case] = mp.coxme(ref["formula"], mp.datasets.load(data), ties=ties)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_objective_at_fixed_variance(case):
    ref = reference(case)
    data, ties = CASES[case]
    at = ref["at_fixed_variance"]
    fit = mp.coxme(ref["formula"], mp.datasets.load(data), ties=ties, variance=at["variance"])
    if case == "coxme_rats":                       # see the module docstring
        target_ll = ref["tight_refit"]["loglik"]["integrated"]
        target_beta = _vector(ref["tight_refit"]["fixef"]["estimate"])
    else:
        target_ll, target_beta = at["loglik_integrated"], _vector(at["fixef"])
    assert fit.loglik == pytest.approx(target_ll, abs=1e-6)
    np.testing.assert_allclose(fit.fe_params.to_numpy(), target_beta, rtol=1e-5)
    assert fit.loglik_penalized == pytest.approx(at["loglik_penalized"], abs=1e-6)
    np.testing.assert_allclose(fit.fe_bse.to_numpy(), _vector(at["se"]), rtol=1e-5)
    assert fit.loglik_null == pytest.approx(ref["loglik"]["null"], abs=1e-8)


@pytest.mark.parametrize("case", list(CASES))
def test_fit_matches_coxme(fits, case):
    fit, ref = fits[case], reference(case)
    tight = ref["tight_refit"]
    lls = {"default": ref["loglik"]["integrated"], "tight": tight["loglik"]["integrated"]}
    better = max(lls, key=lls.get)
    best = ref if better == "default" else tight
    other = tight if better == "default" else ref
    assert fit.converged
    assert lls[better] - 1e-4 <= fit.loglik <= lls[better] + 0.05
    beta, beta_best = fit.fe_params.to_numpy(), _vector(best["fixef"]["estimate"])
    spread = np.abs(beta_best - _vector(other["fixef"]["estimate"]))
    assert np.all(np.abs(beta - beta_best) <= 2 * spread + 1e-4 * (1 + np.abs(beta_best)))
    for group, v_best in best["random_variance"].items():
        v_other = other["random_variance"][group]
        v = fit.variance_components[group]
        assert abs(v - v_best) <= 2 * abs(v_best - v_other) + 1e-4 * (1 + abs(v_best))
    np.testing.assert_allclose(fit.fe_bse.to_numpy(), _vector(tight["fixef"]["se"]), rtol=2e-2)
    assert fit.nevents == ref["n_events"] and fit.nobs == ref["n"]
    group = list(ref["ranef"])[0]
    ranef = fit.random_effects[group]
    assert list(ranef.index) == ref["ranef"][group]["levels"]
    np.testing.assert_allclose(ranef.to_numpy(), tight["ranef"][group]["value"],
                               atol=2e-3 * np.max(np.abs(tight["ranef"][group]["value"])))


def test_efron_and_breslow_differ_on_tied_kidney(fits):
    assert fits["coxme_kidney"].loglik != pytest.approx(fits["coxme_kidney_breslow"].loglik,
                                                         abs=0.1)


def test_accessors_and_summary(fits):
    fit = fits["coxme_kidney"]
    hr = fit.hazard_ratios()
    np.testing.assert_allclose(hr["exp(coef)"], np.exp(fit.fe_params))
    assert (hr.iloc[:, 1] < hr["exp(coef)"]).all() and (hr.iloc[:, 2] > hr["exp(coef)"]).all()
    assert fit.aic == pytest.approx(-2 * fit.loglik + 2 * 3)
    assert fit.bic == pytest.approx(-2 * fit.loglik + np.log(58) * 3)
    assert fit.pvalues["sex"] < 0.01 < fit.pvalues["age"]
    text = fit.summary()
    for piece in ("events, n = 58, 76", "Integrated loglik", "Fixed coefficients", "id"):
        assert piece in text
    lp = fit.predict()
    risk = fit.predict(type="risk")
    np.testing.assert_allclose(np.exp(lp), risk)
    kidney = mp.datasets.load("kidney")
    new = kidney.head(2).assign(id=[1, 999])
    pred = fit.predict(new)
    no_frailty = fit.predict(new, include_random=False)
    assert pred.iloc[1] == pytest.approx(no_frailty.iloc[1])         # unseen cluster: 0
    assert pred.iloc[0] - no_frailty.iloc[0] == pytest.approx(fit.random_effects["id"]["1"])


def test_profile_interval_for_the_variance(fits):
    fit = fits["coxme_kidney"]
    ci = fit.confint(method="profile")
    lo, hi = ci.loc["var(id)"]
    v = fit.variance_components["id"]
    assert 0 <= lo < v < hi
    for bound in (lo, hi):                  # −2ℓ_I rises by χ²₁(0.95) at each end
        refit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)",
                         mp.datasets.load("kidney"), variance=bound)
        assert 2 * (fit.loglik - refit.loglik) == pytest.approx(3.841458820694124, abs=1e-5)


def test_groups_argument_and_status_codings():
    kidney = mp.datasets.load("kidney")
    a = mp.coxme("Surv(time, status) ~ age + sex", kidney, groups="id")
    b = mp.coxme("Surv(time, status2) ~ age + sex + (1 | id)", kidney.assign(
        status2=kidney["status"] + 1))
    c = mp.coxme("Surv(time, event) ~ age + sex + (1 | id)", kidney.assign(
        event=kidney["status"] == 1))
    for other in (b, c):
        assert other.loglik == pytest.approx(a.loglik, abs=1e-9)


def test_missing_values_are_omitted_with_a_warning():
    kidney = mp.datasets.load("kidney")
    holes = kidney.copy()
    holes.loc[3, "age"] = np.nan
    holes.loc[10, "id"] = np.nan
    with pytest.warns(DataWarning, match="2 row"):
        fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", holes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", kidney.drop([3, 10]))
    assert fit.nobs == 74
    assert fit.loglik == pytest.approx(ref.loglik, abs=1e-9)


@pytest.mark.parametrize("change, match", [
    (lambda d: d.assign(time=np.where(d.index == 0, -1.0, d["time"])), "time column 'time'"),
    (lambda d: d.assign(status=np.where(d.index == 0, 3, d["status"])), "status column 'status'"),
    (lambda d: d.assign(status=0), "no events"),
    (lambda d: d.assign(id=1), "grouping factor 'id' has 1 level"),
])
def test_bad_input_names_the_column(change, match):
    with pytest.raises(ModelSpecError, match=match):
        mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", change(mp.datasets.load("kidney")))


def test_a_cluster_with_one_row_is_fine():
    kidney = mp.datasets.load("kidney")
    one = kidney.drop(index=[1])                     # id 1 keeps a single row
    fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", one)
    assert fit.converged and len(fit.random_effects["id"]) == 38


def test_response_must_be_surv():
    with pytest.raises(ModelSpecError, match="Surv"):
        mp.coxme("time ~ age + (1 | id)", mp.datasets.load("kidney"))
    with pytest.raises(ModelSpecError, match="ties"):
        mp.coxme("Surv(time, status) ~ age + (1 | id)", mp.datasets.load("kidney"), ties="exact")


def test_lrt_against_coxph_without_the_frailty(fits):
    fit = fits["coxme_kidney"]
    t = mp.lrt(fit, drop="(1 | id)")
    assert t.loglik_reduced == pytest.approx(fit.record.loglik_coxph)
    assert t.statistic == pytest.approx(2 * (fit.loglik - fit.record.loglik_coxph))
    assert t.pvalue_boundary == pytest.approx(t.pvalue / 2)
    # coxph's maximised ℓ equals the frailty fit with the variance held at 0
    at_zero = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"),
                       variance=0.0)
    assert t.loglik_reduced == pytest.approx(at_zero.loglik, abs=1e-8)
    with pytest.raises(ModelSpecError, match="random terms"):
        mp.lrt(fit, drop="(1 | litter)")


def test_strata_against_coxme_and_coxph():
    """``coxme(Surv(time, status) ~ age + strata(sex) + (1 | id), kidney)`` (separate baseline
    hazards per sex; tests/reference/scripts/coxme_kidney_strata.R): the objective at the tight
    variance, the optimum with the tolerances above, and coxph's stratified fit at variance 0."""
    ref = reference("coxme_kidney_strata")
    kidney = mp.datasets.load("kidney")
    at = ref["at_fixed_variance"]
    held = mp.coxme(ref["formula"], kidney, variance=at["variance"])
    assert held.loglik == pytest.approx(at["loglik_integrated"], abs=1e-6)
    np.testing.assert_allclose(held.fe_params.to_numpy(), _vector(at["fixef"]), rtol=1e-5)
    assert held.loglik_penalized == pytest.approx(at["loglik_penalized"], abs=1e-6)
    np.testing.assert_allclose(held.fe_bse.to_numpy(), _vector(at["se"]), rtol=1e-5)
    assert held.loglik_null == pytest.approx(ref["loglik"]["null"], abs=1e-8)
    fit, tight = mp.coxme(ref["formula"], kidney), ref["tight_refit"]
    better = max(ref["loglik"]["integrated"], tight["loglik"]["integrated"])
    assert fit.converged and better - 1e-4 <= fit.loglik <= better + 0.05
    spread = abs(ref["random_variance"]["id"] - tight["random_variance"]["id"])
    v_tight = tight["random_variance"]["id"]
    assert abs(fit.variance_components["id"] - v_tight) <= 2 * spread + 1e-4 * (1 + v_tight)
    np.testing.assert_allclose(fit.fe_bse.to_numpy(), _vector(tight["fixef"]["se"]), rtol=2e-2)
    assert list(fit.fe_params.index) == ["age"]
    for ties in ("efron", "breslow"):
        ph = ref["coxph"][ties]
        limit = mp.coxme(ref["formula"], kidney, ties=ties, variance=0.0)
        np.testing.assert_allclose(limit.fe_params.to_numpy(), _vector(ph["estimate"]),
                                   rtol=1e-6)
        np.testing.assert_allclose(limit.fe_bse.to_numpy(), _vector(ph["se"]), rtol=1e-5)
        assert limit.loglik == pytest.approx(ph["loglik"][1], abs=1e-8)
        assert limit.loglik_null == pytest.approx(ph["loglik"][0], abs=1e-8)
