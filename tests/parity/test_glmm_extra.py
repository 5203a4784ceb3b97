"""glmer: nAGQ = 0 against lme4 (tests/reference/glmm_nagq0.json, made by
tests/reference/scripts/glmer_nagq0.R), separation / degenerate-group / convergence warnings, and
offsets in predict(newdata)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.core.exceptions import ConvergenceWarning, ModelSpecError
from mixedppl.fit.checks import (DegenerateGroupsWarning, SeparationWarning,
                                      check_glmm_data)
from mixedppl.glmm_api import glmer, glmm_model

from conftest import reference, rel_close

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
GROUSE = "TICKS ~ YEAR + scale(HEIGHT) + (1|BROOD) + (1|INDEX) + (1|LOCATION)"


# -- nAGQ = 0 --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nagq0_fits():
    return {"cbpp": glmer(CBPP, mp.datasets.load("cbpp"), family="binomial", nAGQ=0),
            "grouseticks": glmer(GROUSE, mp.datasets.load("grouseticks"), family="poisson",
                                 nAGQ=0)}


@pytest.mark.parametrize("case", ["cbpp", "grouseticks"])
def test_nagq0_matches_lme4(nagq0_fits, case):
    fit, ref = nagq0_fits[case], reference("glmm_nagq0")[case]
    tight = ref["tight_refit"]
    fe = np.asarray(tight["fixef"])
    assert list(fit.fe_params.index) == ref["fixef_names"]
    assert np.all(np.abs(fit.fe_params.to_numpy() - fe) <= np.maximum(1e-4 * np.abs(fe), 1e-4))
    rel_close(fit.theta, tight["theta"], 1e-3, 1e-4)
    assert abs(fit.loglik - tight["logLik"]) <= 1e-3
    assert fit.deviance == pytest.approx(tight["deviance_summary"], abs=2e-3)
    assert fit.aic == pytest.approx(tight["AIC"], abs=2e-3)
    # vcov is lme4's (R_X'R_X)^-1 from the PIRLS decomposition (no Hessian at nAGQ = 0)
    rel_close(fit.fe_bse, tight["se"], 1e-2)
    np.testing.assert_allclose(fit.vcov_beta, tight["vcov"], rtol=1e-2, atol=1e-6)
    rel_close(fit.fitted()[:10], tight["fitted_first10"], 1e-4)
    for group, blk in tight["ranef"].items():
        ours = fit.random_effects[group]["(Intercept)"]
        assert list(ours.index) == blk["levels"]
        r = np.asarray(blk["condval"])
        assert np.max(np.abs(ours.to_numpy() - r)) <= 2e-3 * np.max(np.abs(r))
        rel_close(fit.random_effects_se[group]["(Intercept)"], blk["condsd"], 1e-2)
    assert fit.converged and fit.nAGQ == 0
    assert "nAGQ = 0" in str(fit.summary())
    with pytest.raises(NotImplementedError, match="nAGQ=0.*nAGQ=1"):
        fit.confint(method="profile")


def test_nagq0_is_not_the_laplace_optimum(nagq0_fits):
    """β̂ of nAGQ = 0 is the joint PIRLS mode: its Laplace logLik is below lme4's nAGQ = 1 one,
    and its SEs (R_X, θ known) differ from the Hessian-based Laplace SEs."""
    lap = reference("glmm_cbpp_laplace")["tight_refit"]
    fit = nagq0_fits["cbpp"]
    assert fit.loglik < lap["logLik"] - 0.02
    assert np.max(np.abs(fit.fe_params.to_numpy() - lap["fixef"])) > 0.01


def test_nagq0_gradient_is_exact():
    from mixedppl.fit.laplace_nagq0 import JointObjective
    obj = JointObjective(*glmm_model(GROUSE, mp.datasets.load("grouseticks"), "poisson"))
    theta = np.array([0.5, 0.8, 0.4])

    def cold(t):  # the joint mode from scratch, to full precision, for the differences
        obj.u, obj.beta = np.zeros(obj.q), obj.beta0.copy()
        obj.mode(t, tol=1e-15, maxit=200)
        return obj(t)

    _, grad = cold(theta)
    num = np.array([(cold(theta + 1e-5 * e)[0] - cold(theta - 1e-5 * e)[0]) / 2e-5
                    for e in np.eye(3)])
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-6)


def test_nagq0_rejects_dispersion_families():
    sleep = mp.datasets.load("sleepstudy")
    with pytest.raises(NotImplementedError, match="nAGQ=0.*'gamma'"):
        glmer("Reaction ~ Days + (1 | Subject)", sleep, family="gamma", nAGQ=0)
    with pytest.raises(ModelSpecError, match="non-negative integer"):
        glmer(CBPP, mp.datasets.load("cbpp"), nAGQ=-1)


# -- bad-input warnings --------------------------------------------------------------------------
def _binary_data(seed=1, G=12, n=10):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(G), n)
    x = rng.normal(size=G * n)
    trt = np.tile(np.repeat(["a", "b"], n // 2), G)
    eta = -0.5 + 0.8 * x + 0.7 * rng.normal(size=G)[g]
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "x": x, "x2": rng.normal(size=G * n), "trt": trt,
                         "g": pd.Categorical(g.astype(str))})


def _caught(fn):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn()
    return out, w


def test_quasi_complete_separation_names_the_coefficient():
    d = _binary_data()
    d.loc[d.trt == "b", "y"] = 0
    fit, w = _caught(lambda: glmer("y ~ x + trt + (1 | g)", d))
    sep = [str(x.message) for x in w if issubclass(x.category, SeparationWarning)]
    assert len(sep) == 1 and "'trtb'" in sep[0] and "all 60 rows with trtb = 1 are failures" \
        in sep[0] and "'x'" not in sep[0].split("will diverge")[0]
    assert fit.fe_params["trtb"] < -10 and abs(fit.fe_params["x"]) < 5
    # recorded on the fit and stated by summary(), as the other warnings
    assert fit.separation == ("trtb",)
    notes = str(fit.summary()).split("Fixed effects:")[1]
    assert "separation: the estimate(s) of fixed effect(s) 'trtb' diverge" in notes


def test_complete_separation_by_two_columns_is_detected():
    d = _binary_data()
    d["y"] = ((d["x"] + d["x2"]) > 0).astype(int)
    fit, w = _caught(lambda: glmer("y ~ x + x2 + (1 | g)", d))
    sep = [str(x.message) for x in w if issubclass(x.category, SeparationWarning)]
    assert len(sep) == 1 and "'x', 'x2'" in sep[0] and "'(Intercept)'" not in sep[0]
    assert "1·x + 1·x2" in sep[0]
    # the optimiser cannot reach a finite optimum: the fit says so
    assert any(issubclass(x.category, ConvergenceWarning) for x in w) or fit.fe_params["x"] > 10
    assert fit.separation == ("x", "x2")
    assert "fixed effect(s) 'x', 'x2' diverge" in str(fit.summary())


def test_no_separation_or_group_warning_on_ordinary_data():
    for name, f, fam in [("cbpp", CBPP, "binomial"), ("grouseticks", GROUSE, "poisson")]:
        spec, family, _, y, n = glmm_model(f, mp.datasets.load(name), fam)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_glmm_data(spec, family, y, n)


def test_degenerate_groups_warn_with_term_and_count():
    d = _binary_data(seed=2)
    d.loc[::10, "y"], d.loc[1::10, "y"] = 1, 0  # every group has a success and a failure
    d.loc[d.g.isin(["0", "1", "2"]), "y"] = 0
    d.loc[d.g == "3", "y"] = 1
    spec, family, _, y, n = glmm_model("y ~ x + (1 | g)", d, "binomial")
    _, w = _caught(lambda: check_glmm_data(spec, family, y, n))
    msgs = [str(x.message) for x in w if issubclass(x.category, DegenerateGroupsWarning)]
    assert len(msgs) == 1
    assert "'(… | g)': 4 of its 12 levels" in msgs[0]
    assert "3 with only failures, 1 with only successes" in msgs[0]


def test_constant_response_is_an_error():
    d = _binary_data().assign(y=0)
    with pytest.raises(ModelSpecError, match="every response is failures"):
        glmer("y ~ x + (1 | g)", d)
    with pytest.raises(ModelSpecError, match="every response is a success"):
        glmer("y ~ x + (1 | g)", d.assign(y=1))


def test_non_convergence_warns_and_flags():
    fit, w = _caught(lambda: glmer(CBPP, mp.datasets.load("cbpp"), control={"maxiter": 2}))
    assert any(issubclass(x.category, ConvergenceWarning) for x in w)
    assert fit.converged is False
    text = str(fit.summary())
    grad = np.max(np.abs(fit.opt.projected_gradient()))
    assert f"Model failed to converge with max|grad| = {grad:.3g} (optimizer did not " \
           "converge" in text
    assert "boundary (singular)" not in text and "separation" not in text


# -- offsets on new rows -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ticks():
    g = mp.datasets.load("grouseticks")
    return g.assign(expo=1.0 + (np.arange(len(g)) % 3), lexpo=lambda d: np.log(d["expo"]))


def _hand_eta(fit, new, offset):
    X = fit.spec.fixed_design.transform(new)[0]
    b = fit.random_effects["LOCATION"]["(Intercept)"]
    return X @ fit.beta + offset + b.loc[new["LOCATION"].astype(str)].to_numpy()


def test_predict_applies_formula_offset(ticks):
    fit = glmer("TICKS ~ YEAR + offset(log(expo)) + (1 | LOCATION)", ticks, family="poisson")
    new = ticks.head(5).assign(expo=[1.0, 2.0, 3.0, 4.0, 5.0])
    hand = _hand_eta(fit, new, np.log(new["expo"].to_numpy()))
    np.testing.assert_allclose(fit.predict(new, type="link"), hand, rtol=1e-12)
    np.testing.assert_allclose(fit.predict(new), np.exp(hand), rtol=1e-12)
    np.testing.assert_allclose(fit.predict(ticks, type="link"), fit.linear_predictor(), 1e-12)


def test_predict_with_offset_argument(ticks):
    arr = glmer("TICKS ~ YEAR + (1 | LOCATION)", ticks, family="poisson",
                offset=ticks["lexpo"].to_numpy())
    col = glmer("TICKS ~ YEAR + (1 | LOCATION)", ticks, family="poisson", offset="lexpo")
    new = ticks.head(5).assign(expo=[1.0, 2.0, 3.0, 4.0, 5.0],
                               lexpo=lambda d: np.log(d["expo"]))
    hand = _hand_eta(arr, new, new["lexpo"].to_numpy())
    with pytest.raises(ModelSpecError, match="array offset=.*5 rows of newdata"):
        arr.predict(new)
    np.testing.assert_allclose(arr.predict(new, type="link", offset=new["lexpo"]), hand,
                               rtol=1e-12)
    np.testing.assert_allclose(col.predict(new, type="link"), _hand_eta(col, new,
                                                                        new["lexpo"].to_numpy()),
                               rtol=1e-12)
    np.testing.assert_allclose(col.predict(new, type="link", offset="lexpo"),
                               col.predict(new, type="link"))
    with pytest.raises(ModelSpecError, match="one value per row"):
        arr.predict(new, offset=[0.0, 1.0])
    with pytest.raises(ModelSpecError, match="lexpo"):
        col.predict(new.drop(columns="lexpo"))
    with pytest.raises(ValueError, match="newdata"):
        arr.predict(offset=np.zeros(5))


# -- adaptive GHQ for a vector random effect (one grouping factor; lme4 refuses these) --------
def _sim_poisson_slopes(G=30, n=8, seed=3):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(G), n)
    x = rng.uniform(-1, 1, G * n)
    S = np.array([[0.36, 0.072], [0.072, 0.16]])
    b = rng.multivariate_normal([0, 0], S, size=G)
    eta = 0.5 + 0.3 * x + b[g, 0] + b[g, 1] * x
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x,
                         "g": pd.Categorical([f"g{i:02d}" for i in g])})


def test_vector_agq_with_scalar_term_equals_scalar_rule():
    from mixedppl.fit.laplace import LaplaceObjective
    model = glmm_model(CBPP, mp.datasets.load("cbpp"), "binomial")
    x = np.array([0.8, -1.2, -0.8, -1.0, -1.3])
    d1, g1 = LaplaceObjective(*model, nAGQ=9)(x)
    d2, g2 = LaplaceObjective(*model, nAGQ=9, vector_rule=True)(x)
    assert d1 == pytest.approx(d2, abs=1e-10)
    np.testing.assert_allclose(g1, g2, atol=1e-10)


def test_vector_agq_equals_brute_force_integral():
    """Two groups of a (1 + x | g) Poisson model: the 15×15 product rule in the adapted
    coordinates against scipy's dblquad of the same integrand (exp(−g_i(u)/2)/2π per group)."""
    from scipy import integrate, stats

    from mixedppl.fit.laplace import LaplaceObjective
    d = _sim_poisson_slopes()
    two = d[d.g.isin(["g00", "g01"])].assign(g=lambda f: f.g.cat.remove_unused_categories())
    spec, fam, link, y, n = glmm_model("y ~ x + (1 + x | g)", two, "poisson")
    obj = LaplaceObjective(spec, fam, link, y, n, nAGQ=15)
    theta, beta = np.array([0.7, 0.2, 0.5]), np.array([0.4, 0.2])
    D, grad = obj(np.concatenate([theta, beta]))
    T = np.array([[theta[0], 0.0], [theta[1], theta[2]]])
    brute = 0.0
    for i in range(2):
        rows = spec.terms[0].codes == i
        X, Z, yi = spec.X[rows], spec.terms[0].z[rows], y[rows]

        def g(u1, u2):
            eta = X @ beta + Z @ (T @ np.array([u1, u2]))
            return -2 * stats.poisson.logpmf(yi, np.exp(eta)).sum() + u1 ** 2 + u2 ** 2
        uh = obj.u[2 * i:2 * i + 2]
        g0 = g(*uh)
        val, _ = integrate.dblquad(lambda u2, u1: np.exp(-(g(u1, u2) - g0) / 2) / (2 * np.pi),
                                   uh[0] - 12, uh[0] + 12, uh[1] - 12, uh[1] + 12,
                                   epsabs=1e-14, epsrel=1e-12)
        brute += g0 - 2 * np.log(val)
    assert D == pytest.approx(brute, abs=1e-8)
    # and its gradient is exact (implicit function theorem through û)
    x = np.concatenate([theta, beta])
    num = np.array([(obj(x + 1e-5 * e)[0] - obj(x - 1e-5 * e)[0]) / 2e-5 for e in np.eye(5)])
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_vector_agq_loglik_converges_in_nagq():
    d = _sim_poisson_slopes()
    fits = {k: glmer("y ~ x + (1 + x | g)", d, family="poisson", nAGQ=k) for k in (1, 7, 11, 15)}
    ll = {k: f.loglik for k, f in fits.items()}
    # measured: ℓ7 − ℓ15 = 1.21e-4, ℓ11 − ℓ15 = −4.4e-6 (8 Poisson counts per group: the
    # integrand is far enough from Gaussian that the 7-node rule is off by ~1e-4), Laplace 0.06
    assert abs(ll[11] - ll[15]) < 1e-5
    assert abs(ll[7] - ll[15]) < 2e-4
    assert abs(ll[1] - ll[15]) > 0.03
    for k in (7, 11):
        np.testing.assert_allclose(fits[k].fe_params, fits[15].fe_params, atol=2e-5)
        rel_close(fits[k].theta, fits[15].theta, 1e-3)
    assert all(f.converged for f in fits.values())
    assert "nAGQ = 15" in str(fits[15].summary())


def test_vector_agq_node_warning_and_term_limit():
    d = _sim_poisson_slopes().assign(y=0)
    with pytest.warns(UserWarning, match="33\\^2 = 1089 nodes per group"):
        with pytest.raises(ModelSpecError, match="every response is zero"):
            glmer("y ~ x + (1 + x | g)", d, family="poisson", nAGQ=33)
    with pytest.raises(NotImplementedError, match="single random-effect term.*2 terms"):
        glmer("y ~ x + (1 | g) + (0 + x | g)", d, family="poisson", nAGQ=5)


def test_schur_product_from_row_pairs_equals_the_dense_product(monkeypatch):
    """The blocked Laplace graph forms A_R1 A_11⁻¹ A_1R from pairs of rows sharing a level of the
    first term when that is cheaper (grouseticks); forced on for a vector first term and off for
    the dense product, both give the same fit."""
    import mixedppl.fit.laplace as GF
    from mixedppl.graph.laplace import row_pairs

    sl = mp.datasets.load("sleepstudy").copy()
    sl["cnt"] = np.round(sl["Reaction"] / 30).astype(int)
    sl["grp"] = (np.arange(len(sl)) % 7).astype(str)

    def forced(spec):
        t1 = spec.terms[0]
        order = np.argsort(t1.codes, kind="stable")
        counts = np.bincount(t1.codes, minlength=t1.n_levels)
        starts = np.concatenate([[0], np.cumsum(counts)])
        groups = [order[starts[g]:starts[g + 1]] for g in np.flatnonzero(counts)]
        return (np.concatenate([np.repeat(r, len(r)) for r in groups]).astype(np.int64),
                np.concatenate([np.tile(r, len(r)) for r in groups]).astype(np.int64))

    f = "cnt ~ Days + (Days | Subject) + (1 | grp)"
    monkeypatch.setattr(GF, "row_pairs", forced)
    a = mp.glmer(f, sl, family="poisson")
    monkeypatch.setattr(GF, "row_pairs", lambda spec: None)
    b = mp.glmer(f, sl, family="poisson")
    assert abs(a.loglik - b.loglik) < 1e-9
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.fe_params, b.fe_params, rtol=1e-7, atol=1e-9)
    gr = mp.datasets.load("grouseticks")
    spec = glmm_model("TICKS ~ YEAR + (1|BROOD) + (1|INDEX) + (1|LOCATION)", gr, "poisson")[0]
    pairs = row_pairs(spec)
    assert pairs is not None and len(pairs[0]) == 403   # INDEX: one row per level


# -- factor responses (R's binomial: first level = failure, the others success) --------------------
def _factor_data():
    d = _binary_data(seed=3)
    yes = d["y"].to_numpy() == 1
    d["f"] = pd.Categorical(np.where(yes, "yes", "no"), categories=["no", "yes"])
    # three levels: "b" and "c" are both successes
    d["f3"] = pd.Categorical(np.where(yes, np.where(d["x"] > 0, "b", "c"), "a"),
                             categories=["a", "b", "c"])
    d["logical"] = yes
    d["text"] = np.where(yes, "yes", "no")
    return d


def test_factor_response_is_the_zero_one_response():
    d = _factor_data()
    base = glmer("y ~ x + (1 | g)", d)
    assert base.converged and base.separation == ()
    # no notes after the tables (the last is lme4's "Correlation of Fixed Effects")
    assert str(base.summary()).splitlines()[-3:] == [
        "Correlation of Fixed Effects:", "  (Intr)", "x -0.134"]
    for col in ("f", "f3", "logical"):
        fit = glmer(f"{col} ~ x + (1 | g)", d)
        np.testing.assert_array_equal(fit.counts, base.counts)
        np.testing.assert_allclose(fit.beta, base.beta, rtol=0, atol=1e-12)
        np.testing.assert_allclose(fit.theta, base.theta, rtol=0, atol=1e-12)
        assert fit.loglik == pytest.approx(base.loglik, abs=1e-10)


def test_factor_response_levels():
    d = _factor_data()
    _, _, _, y3, _ = glmm_model("f3 ~ x + (1 | g)", d)
    np.testing.assert_array_equal(y3, (d["f3"] != "a").to_numpy(float))
    assert set(d.loc[y3 == 1, "f3"]) == {"b", "c"}
    # the order of the categories decides, not the labels: "yes" first means yes = failure
    flipped = d.assign(f=pd.Categorical(d["f"].astype(str), categories=["yes", "no"]))
    _, _, _, yf, _ = glmm_model("f ~ x + (1 | g)", flipped)
    np.testing.assert_array_equal(yf, 1 - d["y"].to_numpy(float))
    # an unused category: lme4 drops unused levels (glFormula, drop.unused.levels = TRUE), so
    # the first category that occurs is the failure
    unused = d.assign(f=pd.Categorical(d["f"].astype(str), categories=["never", "no", "yes"]))
    _, _, _, yu, _ = glmm_model("f ~ x + (1 | g)", unused)
    np.testing.assert_array_equal(yu, d["y"].to_numpy(float))


def test_string_response_says_how_to_give_the_levels():
    d = _factor_data()
    with pytest.raises(ModelSpecError, match=r"pd\.Categorical\(data\['text'\], "
                                             r"categories=\['no', 'yes'\]\)"):
        glmm_model("text ~ x + (1 | g)", d)
    with pytest.raises(ModelSpecError, match="first level is failure"):
        glmm_model("text ~ x + (1 | g)", d)
    with pytest.raises(ModelSpecError, match="must be numeric or logical.*'poisson'"):
        glmm_model("f ~ x + (1 | g)", d, family="poisson")
