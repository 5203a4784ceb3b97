"""Profile intervals of zero-inflated, dispersion-formula, Tweedie / t GLMMs and of models with
random terms in the ziformula (mixedppl.inference.glmm_profile, issue 15).

References: ``tests/reference/glmmtmb_profile_ci.json`` (``tests/reference/scripts/
glmmtmb_profile_ci.R``, glmmTMB 1.1.5): for every parameter of glmmTMB's fixed vector, the ends
root-found on the Laplace likelihood profile (each point a full nlminb refit of the others on
the TMB objective, uniroot tol 1e-11; ``rise_minus_crit`` ≤ 1e-10). Rows map to glmmTMB's as

===========================  ==========================================================
ours                         glmmTMB (``confint(method = "profile")`` row / parameter)
===========================  ==========================================================
``(Intercept)``, ``x``       ``(Intercept)``, ``x`` (beta)
``zi~x``                     ``zi~x`` (betazi)
``log(size)~x``              ``d~x`` (betad; our log φ, glmmTMB's scale / tmb_disp_scale)
``phi``, ``sigma``           exp(``d~(Intercept)``) without a dispformula (Tweedie, t)
``psi(power)``, ``psi(df)``  psi (``Tweedie power`` / ``Student-t df`` rows, psi scale)
``sd_(Intercept)|g``         exp(``theta_1|g.1``) (theta, log SD)
``zi~sd_(Intercept)|site``   exp of the zi theta (thetazi)
===========================  ==========================================================

Independent check (random seeds, small data): at each end of a ZIP model's intervals a NumPy
Laplace deviance written here (one scalar random intercept, per-group Newton, the exact
Hessian of the ZIP log-density) re-minimised by scipy over the other parameters has risen by
qchisq(0.95, 1).
"""

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from conftest import reference, rel_close
from scipy import optimize, special, stats

import mixedppl as mp
from mixedppl.core.exceptions import IdentifiabilityWarning

CRIT = stats.chi2.ppf(0.95, 1)


def _sim(name):
    d = pd.DataFrame(reference(name)["data"])
    d["g"] = pd.Categorical(d["g"])
    return d


CASES = {
    "zinb2_disp_salamanders": lambda: mp.glmer("count ~ mined + (1 | site)",
                                               mp.datasets.load("salamanders"), family="nbinom2",
                                               ziformula="~ mined", dispformula="~ mined"),
    "zip_salamanders": lambda: mp.glmer("count ~ mined + (1 | site)",
                                        mp.datasets.load("salamanders"), family="poisson",
                                        ziformula="~ mined"),
    "zinb2_disp_sim": lambda: mp.glmer("y_zinb ~ x + (1 | g)", _sim("glmmtmb_zi_zinb2_disp_sim"),
                                       family="nbinom2", ziformula="~ x", dispformula="~ x"),
    "zire_zip_salamanders": lambda: mp.glmer("count ~ mined + (1 | site)",
                                             mp.datasets.load("salamanders"), family="poisson",
                                             ziformula="~ mined + (1 | site)"),
    "tweedie_sim": lambda: mp.glmer("y_tw ~ x + (1 | g)", _sim("glmmtmb_tw_tweedie_sim"),
                                    family="tweedie"),
    "t_sim": lambda: mp.glmer("y_t ~ x + (1 | g)", _sim("glmmtmb_tw_tweedie_sim"), family="t"),
}


@lru_cache(maxsize=None)
def fitted_with_warnings(case):
    fit = CASES[case]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IdentifiabilityWarning)
        ci = fit.confint(method="profile", progress=False)
    return fit, ci, [str(w.message) for w in caught
                     if issubclass(w.category, IdentifiabilityWarning)]


def fitted(case):
    return fitted_with_warnings(case)[:2]


def _r_rows(case, fit, ci) -> dict[str, list[float]]:
    """R's exact ends under our row names and on our rows' scales (the table above)."""
    fam, spec = fit.family, fit.spec
    rows = list(ci.index)
    names = {"beta": list(spec.fe_names), "betazi": [f"zi~{n}" for n in fam.zi_names],
             "theta": [n for n in rows if n.startswith(("sd_", "cor_"))],
             "thetazi": [n for n in rows if n.startswith("zi~sd_")],
             "psi": [n for n in rows if n.startswith("psi(")]}
    if spec.aux_designs:
        names["betad"] = [f"log({fam.dispersion})~{n}" for n in fam.disp_names]
    else:
        names["betad"] = [fam.dispersion]
    seen: dict[str, int] = {}
    out = {}
    for p in reference("glmmtmb_profile_ci")[case]["exact"]["params"]:
        k = seen.get(p["par"], 0)
        seen[p["par"]] = k + 1
        ends = np.array([float(v) for v in p["ends"]])        # "-Inf" / "Inf": unbounded
        if p["par"] == "betad":
            ends = ends / fam.tmb_disp_scale
            if not spec.aux_designs:
                ends = np.exp(ends)
        out[names[p["par"]][k]] = sorted(ends)
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_profile_ends_match_glmmtmb_root_found_ends(case):
    fit, ci = fitted(case)
    ref = reference("glmmtmb_profile_ci")[case]
    assert abs(fit.loglik - ref["logLik"]) < 1e-3
    want = _r_rows(case, fit, ci)
    assert sorted(ci.index) == sorted(want)         # every parameter is profiled
    for name, ends in want.items():
        ours, ends = ci.loc[name].to_numpy(), np.asarray(ends)
        np.testing.assert_array_equal(ours[np.isinf(ends)], ends[np.isinf(ends)])
        assert np.all(np.isfinite(ours[np.isfinite(ends)])), (name, ours, ends)
        rel_close(ours[np.isfinite(ends)], ends[np.isfinite(ends)], 1e-3, 1e-6)


def test_unbounded_ends_are_inf_with_a_warning():
    """Salamanders ZINB2 with zi ~ mined and dispformula ~ mined: the zero-inflation
    coefficients are barely determined (Wald SEs 2.5); as π → 0 for the mined sites the
    dispersion formula absorbs the zeros, so their profiles flatten below the cut-off. R's
    root-found ends agree (-Inf, -Inf and Inf; for zi~minedno's upper end uniroot's only sign
    change is a failed inner fit, which the R script's re-check of the rise rejects)."""
    fit, ci, caught = fitted_with_warnings("zinb2_disp_salamanders")
    assert ci.loc["zi~(Intercept)"].iloc[0] == -np.inf
    assert list(ci.loc["zi~minedno"]) == [-np.inf, np.inf]
    assert np.all(np.isfinite(ci.drop(["zi~(Intercept)", "zi~minedno"]).to_numpy()))
    assert len(caught) == 3 and all("zi~" in m and "unbounded" in m for m in caught)


def test_rows_are_named_and_ordered_as_the_bootstrap_rows():
    """SDs (conditional, then ``zi~sd_…``), the family's parameters, then β."""
    assert list(fitted("zire_zip_salamanders")[1].index) == [
        "sd_(Intercept)|site", "zi~sd_(Intercept)|site", "zi~(Intercept)", "zi~minedno",
        "(Intercept)", "minedno"]
    assert list(fitted("zinb2_disp_sim")[1].index) == [
        "sd_(Intercept)|g", "zi~(Intercept)", "zi~x", "log(size)~(Intercept)", "log(size)~x",
        "(Intercept)", "x"]
    assert list(fitted("tweedie_sim")[1].index) == [
        "sd_(Intercept)|g", "phi", "psi(power)", "(Intercept)", "x"]


@pytest.mark.parametrize("case", ["zinb2_disp_sim", "zip_salamanders", "t_sim"])
def test_each_end_is_a_chi2_rise_of_a_fixed_parameter_refit(case):
    """At each end, the Laplace deviance re-minimised by scipy's L-BFGS-B over every other
    coordinate (from the fit, not the profiler's warm starts) has risen by qchisq(0.95, 1).
    (The ziformula-random-term case is left to the comparison with glmmTMB's root-found ends:
    from the fit, L-BFGS-B needs ~5 min of its dense joint Laplace graph here.)"""
    from mixedppl.inference.glmm_profile import _GLMMProfiler, phi_rows

    fit, ci = fitted(case)
    prof = _GLMMProfiler(fit.record)
    rows = dict(zip(ci.index, ci.to_numpy()))
    inverse = {name: (np.log if natural is np.exp else (lambda v: v))
               for name, natural in phi_rows(fit.record)}
    for k, name in enumerate(prof.names):
        for end in rows[name]:
            x = inverse.get(name, lambda v: v)(end)
            free = np.arange(prof.dim) != k

            def f(u):
                z = prof.z_hat.copy()
                z[k], z[free] = x, u
                d, g = prof.dev(z)
                return d, g[free]
            r = optimize.minimize(f, prof.z_hat[free], jac=True, method="L-BFGS-B",
                                  bounds=list(zip(prof.lower[free], prof.upper[free])),
                                  options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 2000})
            assert abs(r.fun - prof.d_min - CRIT) < 1e-4 * CRIT, (name, end, r.fun - prof.d_min)


# -- an independent ZIP Laplace deviance (NumPy) ------------------------------------------------
def _zip_rows(y, eta, eta_zi):
    """log p, ∂/∂η, −∂²/∂η² of the ZIP log-density per row (π = logit⁻¹ η_zi)."""
    mu = np.exp(eta)
    log_pi, log_1mpi = -np.logaddexp(0, -eta_zi), -np.logaddexp(0, eta_zi)
    zero = y == 0
    log_p0 = np.logaddexp(log_pi, log_1mpi - mu)
    r = np.exp(log_1mpi - mu - log_p0)              # P(count part | y = 0)
    ll = np.where(zero, log_p0, log_1mpi + y * eta - mu - special.gammaln(y + 1))
    d1 = np.where(zero, -mu * r, y - mu)
    w = np.where(zero, mu * r - mu ** 2 * r * (1 - r), mu)
    return ll, d1, w


def _zip_laplace(params, y, X, Xz, codes, G):
    """D = Σ_j [g_j(û_j) + log(1 + σ² Σ_{i∈j} w_i)], g_j(u) = −2Σ log p + u², η = Xβ + σu."""
    sigma, beta, gamma = params[0], params[1:1 + X.shape[1]], params[1 + X.shape[1]:]
    eta0, eta_zi = X @ beta, Xz @ gamma
    u = np.zeros(G)
    for _ in range(100):
        ll, d1, w = _zip_rows(y, eta0 + sigma * u[codes], eta_zi)
        grad = -2 * sigma * np.bincount(codes, d1, G) + 2 * u
        hess = 2 * sigma ** 2 * np.bincount(codes, w, G) + 2
        step = grad / hess
        u -= step
        if np.max(np.abs(step)) < 1e-12:
            break
    ll, _, w = _zip_rows(y, eta0 + sigma * u[codes], eta_zi)
    return float(-2 * ll.sum() + u @ u + np.log(1 + sigma ** 2 * np.bincount(codes, w, G)).sum())


def _zip_data(seed, G=12, m=7):
    r = np.random.default_rng(seed)
    g = np.repeat(np.arange(G), m)
    x = np.round(r.normal(size=G * m), 3)
    mu = np.exp(0.7 + 0.5 * x + r.normal(0, 0.6, G)[g])
    y = np.where(r.uniform(size=G * m) < special.expit(-0.6 + 0.8 * x), 0, r.poisson(mu))
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical([f"g{k:02d}" for k in g])})


@pytest.mark.parametrize("seed", [3, 17, 29])
def test_zip_profile_ends_against_an_independent_laplace_deviance(seed):
    d = _zip_data(seed)
    fit = mp.glmer("y ~ x + (1 | g)", d, family="poisson", ziformula="~ x")
    ci = fit.confint(method="profile", progress=False)
    y, codes = d["y"].to_numpy(float), d["g"].cat.codes.to_numpy()
    X = np.column_stack([np.ones(len(d)), d["x"]])
    dev = lambda p: _zip_laplace(p, y, X, X, codes, 12)         # noqa: E731
    hat = np.concatenate([[fit.varcorr["sdcor"].iloc[0]], fit.fe_params, fit.zi_params])
    d_min = optimize.minimize(dev, hat, method="Nelder-Mead",
                              options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000}).fun
    assert abs(d_min - (-2 * fit.loglik)) < 1e-5                # the same optimum
    rows = ["sd_(Intercept)|g", "(Intercept)", "x", "zi~(Intercept)", "zi~x"]
    assert sorted(ci.index) == sorted(rows)
    for k, name in enumerate(rows):
        free = np.arange(len(hat)) != k
        for end in ci.loc[name]:
            def at(u):
                p = hat.copy()
                p[k], p[free] = end, u
                return dev(p)
            r = optimize.minimize(at, hat[free], method="BFGS", options={"gtol": 1e-8})
            assert abs(r.fun - d_min - CRIT) < 1e-4 * CRIT, (seed, name, end, r.fun - d_min)
