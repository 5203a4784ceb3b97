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
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.core.control import Control
from mixedppl.core.exceptions import DataWarning, ModelSpecError
from mixedppl.families.cox import CoxFamily
from mixedppl.fit.cox import CoxData, CoxmeObjective, fit_coxph
from mixedppl.spec.model_spec import build_spec

from conftest import REF_DIR, reference

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


def test_profile_interval_for_the_frailty_sd(fits):
    """The SD's profile interval: at each end the fit with the variance held there (an
    independent refit, variance=) is χ²₁(0.95)/2 below the fit (to 1e-4 in 2Δℓ), and the ends
    are R's: coxme with vfixed= over the SD, root-found tightly
    (tests/reference/scripts/coxme_kidney_profile.R), within 2e-2 relative as the brief's
    CLMM / Cox tolerance (they agree to ~1e-7)."""
    fit = fits["coxme_kidney"]
    ref = reference("coxme_kidney_profile")
    ci = fit.confint(method="profile", progress=False)
    lo, hi = ci.loc["sd_(Intercept)|id"]
    sd = np.sqrt(fit.variance_components["id"])
    assert 0 < lo < sd < hi
    np.testing.assert_allclose([lo, hi], [ref["interval"]["lower"], ref["interval"]["upper"]],
                               rtol=2e-2)
    np.testing.assert_allclose([lo, hi], [ref["interval"]["lower"], ref["interval"]["upper"]],
                               rtol=1e-5)      # what it reaches today: a regression guard
    for bound in (lo, hi):
        refit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)",
                         mp.datasets.load("kidney"), variance=bound ** 2)
        assert 2 * (fit.loglik - refit.loglik) == pytest.approx(3.841458820694124, abs=1e-4)


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


# -- random slopes: (1 + x | g), tests/reference/scripts/coxme_slopes.R ------------------------
SLOPE_CASES = {"coxme_slopes": "g", "coxme_kidney_slopes": "id"}


def slope_data(case):
    ref = reference(case)
    if case == "coxme_slopes":
        return pd.read_csv(REF_DIR / ref["data_csv"])
    return mp.datasets.load("kidney")


def theta_of(variances, correlation):
    """lme4's θ (T₀₀, T₁₀, T₁₁) of the 2 × 2 covariance with these variances and correlation."""
    v0, v1 = variances
    c = correlation * np.sqrt(v0 * v1)
    T = np.linalg.cholesky(np.array([[v0, c], [c, v1]]))
    return np.array([T[0, 0], T[1, 0], T[1, 1]])


def correlation_of(S):
    return S.iloc[0, 1] / np.sqrt(S.iloc[0, 0] * S.iloc[1, 1])


@pytest.mark.parametrize("case", list(SLOPE_CASES))
def test_slopes_objective_at_the_tight_refit(case):
    """At the tight refit's variances and correlation (coxme's vfixed cannot hold a slope
    term's intercept variance, see the R script), ℓ_I, PPL, β, their SEs and the frailties are
    coxme's."""
    ref, group = reference(case), SLOPE_CASES[case]
    tight = ref["tight_refit"]
    rv = tight["random_variance"][group]
    spec = build_spec(ref["formula"], slope_data(case), CoxFamily("efron"),
                      control=Control(check_nobs_vs_nRE="ignore"))
    data = CoxData.from_spec(spec)
    theta = theta_of(rv["variance"], rv["correlation"])
    obj = CoxmeObjective(data, fit_coxph(data)["beta"])
    e = obj.evaluate(theta)
    assert -e["f"] == pytest.approx(tight["loglik"]["integrated"], abs=1e-6)
    assert e["ppl"] == pytest.approx(tight["loglik"]["penalized"], abs=1e-6)
    u, beta = obj.split(e["x"])
    np.testing.assert_allclose(beta, tight["fixef"]["estimate"], rtol=1e-5)
    se = np.sqrt(np.diag(np.linalg.inv(e["hess"].dense_matrix())))[data.q:]
    np.testing.assert_allclose(se, tight["fixef"]["se"], rtol=1e-5)
    b = data.frailties(theta, u)[0]
    r_b = np.asarray(tight["ranef"][group]["value"], float)
    assert list(spec.terms[0].levels) == tight["ranef"][group]["levels"]
    np.testing.assert_allclose(b, r_b, atol=1e-5 * np.max(np.abs(r_b)))


@pytest.mark.parametrize("case", list(SLOPE_CASES))
def test_slopes_fit_matches_coxme(case):
    """At the optimum, with the tolerances of ``test_fit_matches_coxme``. kidney's
    (1 + age | id) ends at correlation 1 (a singular fit, warned about) with ℓ_I 5.8e-4 above
    coxme's tight refit; coxme's own numbers at its point are ours
    (``test_slopes_objective_at_the_tight_refit``), so the higher value is a better optimum of
    the same function."""
    ref, group = reference(case), SLOPE_CASES[case]
    tight = ref["tight_refit"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = mp.coxme(ref["formula"], slope_data(case))
    singular = any(issubclass(w.category, mp.SingularFitWarning) for w in caught)
    assert singular == fit.is_singular == (case == "coxme_kidney_slopes")
    lls = {"default": ref["loglik"]["integrated"], "tight": tight["loglik"]["integrated"]}
    better = max(lls, key=lls.get)
    best = ref if better == "default" else tight
    other = tight if better == "default" else ref
    assert fit.converged
    assert lls[better] - 1e-4 <= fit.loglik <= lls[better] + 0.05
    beta, beta_best = fit.fe_params.to_numpy(), _vector(best["fixef"]["estimate"])
    spread = np.abs(beta_best - _vector(other["fixef"]["estimate"]))
    assert np.all(np.abs(beta - beta_best) <= 2 * spread + 1e-4 * (1 + np.abs(beta_best)))
    S = fit.variance_components[group]
    rb, ro = best["random_variance"][group], other["random_variance"][group]
    for k in range(2):
        v, vb, vo = S.iloc[k, k], rb["variance"][k], ro["variance"][k]
        assert abs(v - vb) <= 2 * abs(vb - vo) + 1e-4 * (1 + abs(vb))
    rho, rho_b, rho_o = correlation_of(S), rb["correlation"], ro["correlation"]
    assert abs(rho - rho_b) <= 2 * abs(rho_b - rho_o) + 1e-4 * (1 + abs(rho_b))
    np.testing.assert_allclose(fit.fe_bse.to_numpy(), _vector(tight["fixef"]["se"]), rtol=2e-2)
    assert fit.n_params == len(beta) + 3


def test_profile_interval_for_beta(fits):
    """Each end of the β profile interval: the fit with β_j held there (x_j·c as an offset,
    the variance re-optimised) is χ²₁(0.95)/2 below the fit; the interval is near Wald's."""
    fit = fits["coxme_kidney"]
    kidney = mp.datasets.load("kidney")
    ci = fit.confint(method="profile")
    wald = fit.confint()
    assert list(ci.index) == ["sd_(Intercept)|id", "age", "sex"]
    for name, other in (("age", "sex"), ("sex", "age")):
        lo, hi = ci.loc[name]
        assert lo < fit.fe_params[name] < hi
        half = (wald.loc[name].iloc[1] - wald.loc[name].iloc[0]) / 2
        assert abs((hi - lo) / 2 - half) < 0.15 * half
        for c in (lo, hi):
            held = mp.coxme(f"Surv(time, status) ~ {other} + (1 | id)",
                            kidney.assign(off=c * kidney[name]), offset="off")
            assert 2 * (fit.loglik - held.loglik) == pytest.approx(3.841458820694124, abs=1e-5)


def test_profile_interval_for_beta_with_one_covariate():
    """rats has one fixed effect: with it held, the inner problem has no β (p = 0)."""
    rats = mp.datasets.load("rats")
    fit = mp.coxme("Surv(time, status) ~ rx + (1 | litter)", rats)
    lo, hi = fit.confint(method="profile").loc["rx"]
    for c in (lo, hi):
        held = mp.coxme("Surv(time, status) ~ 0 + (1 | litter)", rats.assign(off=c * rats["rx"]),
                        offset="off")
        assert 2 * (fit.loglik - held.loglik) == pytest.approx(3.841458820694124, abs=1e-5)


def test_strata_in_summary_and_predict():
    kidney = mp.datasets.load("kidney")
    fit = mp.coxme("Surv(time, status) ~ age + strata(sex) + (1 | id)", kidney)
    assert fit.strata.to_dict() == {"1": 20, "2": 56} and fit.strata.index.name == "sex"
    assert "Strata: sex (2 strata: 1 n = 20, 2 n = 56)" in fit.summary()
    assert mp.coxme("Surv(time, status) ~ age + (1 | id)", kidney).strata is None
    # the linear predictor has no baseline hazard: new rows need no stratum column
    new = kidney[["age", "id"]].head(3)
    expected = fit.fe_params["age"] * new["age"] + fit.random_effects["id"].loc[
        new["id"].astype(str)].to_numpy()
    np.testing.assert_allclose(fit.predict(new).to_numpy(), expected.to_numpy(), rtol=1e-12)


def kidney_with_holes(ref):
    """kidney with the holes of ``coxme_kidney_na.json`` (1-based rows of survival's kidney)."""
    d = mp.datasets.load("kidney").astype({"time": float, "status": float, "age": float,
                                           "id": float})
    for column, rows in ref["holes"].items():
        d.loc[np.atleast_1d(rows) - 1, column] = np.nan
    return d


def test_missing_values_against_coxme():
    """Missing values in a covariate, the cluster, the time and the status
    (tests/reference/scripts/coxme_kidney_na.R): the rows coxme's na.omit drops, its counts and
    its print's "(5 observations deleted due to missingness)", and the fit with the tolerances
    of :func:`test_fit_matches_coxme` (the tight refit is the better one)."""
    ref = reference("coxme_kidney_na")
    d = kidney_with_holes(ref)
    with pytest.warns(DataWarning, match="5 row"):
        fit = mp.coxme(ref["formula"], d)
    assert fit.n_deleted == ref["n_deleted"] == 5
    dropped = np.flatnonzero(~fit.record.spec.keep) + 1
    assert dropped.tolist() == ref["deleted_rows"]
    assert fit.nobs == ref["n"] and fit.nevents == ref["n_events"]
    assert "(5 observations deleted due to missingness)" in fit.summary()
    assert "events, n = 55, 71 (5 observations deleted due to missingness)" in ref["print"][2]
    tight = ref["tight_refit"]
    lls = [ref["loglik"]["integrated"], tight["loglik"]["integrated"]]
    assert max(lls) - 1e-4 <= fit.loglik <= max(lls) + 0.05
    beta_t, beta_d = _vector(tight["fixef"]["estimate"]), _vector(ref["fixef"]["estimate"])
    assert np.all(np.abs(fit.fe_params.to_numpy() - beta_t)
                  <= 2 * np.abs(beta_t - beta_d) + 1e-4 * (1 + np.abs(beta_t)))
    v_t, v_d = tight["random_variance"]["id"], ref["random_variance"]["id"]
    assert abs(fit.variance_components["id"] - v_t) <= 2 * abs(v_t - v_d) + 1e-4 * (1 + v_t)
    np.testing.assert_allclose(fit.fe_bse.to_numpy(), _vector(tight["fixef"]["se"]), rtol=2e-2)
    assert fit.loglik_null == pytest.approx(ref["loglik"]["null"], abs=1e-8)
    ranef = fit.random_effects["id"]
    assert [str(int(float(v))) for v in ranef.index] == tight["ranef"]["id"]["levels"]
    np.testing.assert_allclose(ranef.to_numpy(), tight["ranef"]["id"]["value"],
                               atol=1e-3 * np.max(np.abs(tight["ranef"]["id"]["value"])))
    # the same numbers as the fit on the complete rows alone, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        complete = mp.coxme(ref["formula"], d.dropna(subset=["time", "status", "age", "id"]))
    assert complete.loglik == pytest.approx(fit.loglik, abs=1e-9)


def test_lrt_of_a_random_slope_against_coxme_anova():
    """(1 + x | g) against (1 | g) on the slopes data (tests/reference/scripts/
    coxme_slopes_anova.R): ``mp.lrt(fit, drop="(0 + x | g)")`` equals the direct likelihood
    ratio of the two fits and coxme's ``anova(fit1, fit2)`` (its tight refits: the statistic
    within 2e-4, df 2, its p-value); the χ̄² boundary p is ½P(χ²₁ > LR) + ½P(χ²₂ > LR);
    ``mp.anova`` gives coxme's table too."""
    from scipy import stats
    ref = reference("coxme_slopes_anova")
    d = pd.read_csv(REF_DIR / ref["data_csv"])
    small, big = (mp.coxme(f, d) for f in ref["formulas"])
    t = mp.lrt(big, drop="(0 + x | g)")
    assert t.df == ref["tight_refit"]["df"] == 2
    assert t.loglik_reduced == pytest.approx(small.loglik, abs=1e-7)
    assert t.statistic == pytest.approx(2 * (big.loglik - small.loglik), abs=2e-7)
    assert t.statistic == pytest.approx(ref["tight_refit"]["chisq"], abs=2e-4)
    assert t.pvalue == pytest.approx(ref["tight_refit"]["p"], rel=1e-4)
    assert t.pvalue_boundary == pytest.approx(
        0.5 * stats.chi2.sf(t.statistic, 1) + 0.5 * stats.chi2.sf(t.statistic, 2), rel=1e-12)
    assert t.pvalue_boundary < t.pvalue
    table = mp.anova(small, big)
    assert table["Df"].iloc[1] == 2
    assert table["Chisq"].iloc[1] == pytest.approx(ref["tight_refit"]["chisq"], abs=2e-4)
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(ref["tight_refit"]["p"], rel=1e-4)
    with pytest.raises(ModelSpecError, match=r"\(0 \+ x \| g\)"):
        mp.lrt(big, drop="(1 + x | g)")
