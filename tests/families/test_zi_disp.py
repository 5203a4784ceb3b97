"""Zero-inflation, hurdles and dispersion formulas (families/zi_disp.py), on small simulated data
against independent answers:

- the Laplace deviance of a random-intercept model against a Laplace written here in NumPy
  (per-group Newton on u with the exact row derivatives in η, derived by hand below; TMB's
  Laplace: log|θ²ZᵀWZ + I| with W = −∂²ℓ/∂η²), at random parameters, and its gradient against
  central differences of that independent value;
- at θ = 0 the Laplace deviance is −2 × the likelihood of the model without random effects:
  minimising ours over (β, γ, δ) with θ held at 0 reaches the optimum of the closed-form
  likelihood written with scipy.stats densities and minimised by Nelder–Mead / BFGS;
- fits reach the independent Laplace optimum (scipy's minimum of the NumPy Laplace);
- simulators' zero share and mean against the model's; bad input names the column / term.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

import mixedppl as mp


# ------------------------------------------------------------------------------------------
# data and the independent row log-likelihoods with their η-derivatives

def zip_data(seed, groups=12, per=8, hurdle=False):
    r = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x, z = r.normal(size=len(g)), r.normal(size=len(g))
    mu = np.exp(0.6 + 0.4 * x + 0.4 * r.normal(size=groups)[g])
    pi = special.expit(-0.7 + 0.6 * z)
    if hurdle:
        pos = stats.poisson.ppf(r.uniform(np.exp(-mu), 1.0), mu)
        y = np.where(r.uniform(size=len(g)) < pi, 0.0, np.maximum(pos, 1.0))
    else:
        y = np.where(r.uniform(size=len(g)) < pi, 0.0, r.poisson(mu))
    return pd.DataFrame({"y": y.astype(float), "x": x, "z": z, "g": [f"g{k}" for k in g]})


def gauss_data(seed, groups=12, per=8):
    r = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x = r.normal(size=len(g))
    sigma = np.exp(0.1 + 0.5 * x)
    y = 1.0 + 0.5 * x + 0.7 * r.normal(size=groups)[g] + sigma * r.normal(size=len(g))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})


def zip_rows(y, pi):
    """(ℓ, ∂ℓ/∂η, ∂²ℓ/∂η²) of the ZIP rows at η (log link). y = 0: ℓ = log(π + a),
    a = (1 − π)e^{−μ}; ∂ℓ = −μa/(π + a); ∂²ℓ = −[μa(1 − μ)(π + a) + μ²a²]/(π + a)².
    y > 0: ℓ = log(1 − π) + yη − μ − log y!, ∂ℓ = y − μ, ∂²ℓ = −μ."""
    def rows(eta):
        mu = np.exp(eta)
        a = (1 - pi) * np.exp(-mu)
        s = pi + a
        l0, d0 = np.log(s), -mu * a / s
        h0 = -(mu * a * (1 - mu) * s + (mu * a) ** 2) / s ** 2
        lp = np.log1p(-pi) + y * eta - mu - special.gammaln(y + 1)
        zero = y == 0
        return (np.where(zero, l0, lp), np.where(zero, d0, y - mu), np.where(zero, h0, -mu))
    return rows


def hurdle_rows(y, pi):
    """Hurdle Poisson: y = 0: log π (constant in η); y > 0: log(1 − π) + yη − μ − log y! −
    log(1 − e^{−μ}); ∂ℓ = y − μ − μe^{−μ}/(1 − e^{−μ}), ∂²ℓ = −μ − [μe^{−μ}(1 − μ)(1 − e^{−μ})
    − μ²e^{−2μ}]/(1 − e^{−μ})²."""
    def rows(eta):
        mu = np.exp(eta)
        e = np.exp(-mu)
        lp = (np.log1p(-pi) + y * eta - mu - special.gammaln(y + 1) - np.log1p(-e))
        d = y - mu - mu * e / (1 - e)
        h = -mu - (mu * e * (1 - mu) * (1 - e) - (mu * e) ** 2) / (1 - e) ** 2
        zero = y == 0
        return (np.where(zero, np.log(pi), lp), np.where(zero, 0.0, d), np.where(zero, 0.0, h))
    return rows


def gauss_rows(y, sigma):
    """Gaussian (identity link), σ per row: ∂ℓ = (y − η)/σ², ∂²ℓ = −1/σ²."""
    def rows(eta):
        return (stats.norm.logpdf(y, eta, sigma), (y - eta) / sigma ** 2, -1 / sigma ** 2 + 0 * eta)
    return rows


def numpy_laplace(rows, codes, G, eta_fixed, theta):
    """TMB's Laplace deviance of one scalar random intercept b = θu: per-group Newton on u,
    then −2Σℓ(û) + ‖û‖² + Σ_j log(θ²Σ_{i∈j} w_i + 1), w = −∂²ℓ/∂η²."""
    u = np.zeros(G)
    for _ in range(200):
        ell, d1, d2 = rows(eta_fixed + theta * u[codes])
        grad = -theta * np.bincount(codes, d1, G) + u
        hess = theta ** 2 * np.bincount(codes, -d2, G) + 1.0
        step = grad / hess
        u = u - step
        if np.max(np.abs(step)) < 1e-14:
            break
    ell, _, d2 = rows(eta_fixed + theta * u[codes])
    H = theta ** 2 * np.bincount(codes, -d2, G) + 1.0
    return float(-2 * ell.sum() + u @ u + np.log(H).sum())


# ------------------------------------------------------------------------------------------
# the models

def _zip_model(data, hurdle=False):
    return mp.Model("y ~ x + (1 | g)", data, "truncated_poisson" if hurdle else "poisson",
                    ziformula="~ z")


def _gauss_model(data):
    fam = mp.families.get_family("gaussian", laplace=True)[0]
    return mp.Model("y ~ x + (1 | g)", data, fam, dispformula="~ x")


def _independent(model, kind):
    """x = (θ, β, γ | δ) → the NumPy Laplace deviance."""
    spec = model.spec
    y, X = spec.y, spec.X
    codes, G = spec.terms[0].codes, spec.terms[0].n_levels
    A = spec.aux_designs["X_zi" if kind != "gauss" else "X_disp"]
    p = spec.p

    def dev(x):
        theta, beta, extra = abs(x[0]), x[1:1 + p], x[1 + p:]
        if kind == "gauss":
            rows = gauss_rows(y, np.exp(A @ extra))
        else:
            pi = special.expit(A @ extra)
            rows = hurdle_rows(y, pi) if kind == "hurdle" else zip_rows(y, pi)
        return numpy_laplace(rows, codes, G, X @ beta, theta)
    return dev


CASES = [("zip", s) for s in (1, 2, 3)] + [("hurdle", s) for s in (4, 5)] + \
        [("gauss", s) for s in (6, 7, 8)]


def _case(kind, seed):
    if kind == "gauss":
        return _gauss_model(gauss_data(seed))
    return _zip_model(zip_data(seed, hurdle=kind == "hurdle"), hurdle=kind == "hurdle")


@pytest.mark.parametrize("kind,seed", CASES)
def test_laplace_deviance_and_gradient_are_the_numpy_laplace(kind, seed):
    model = _case(kind, seed)
    ours, dev = model.objective(), _independent(model, kind)
    r = np.random.default_rng(100 + seed)
    for _ in range(3):
        x = np.concatenate([[r.uniform(0.2, 1.2)], r.normal(0, 0.4, len(ours.split(
            np.zeros(100))[1])), r.normal(0, 0.4, model.family.n_phi)])
        value, grad = ours(x)
        # 1e-9 relative: our inner Newton stops at a decrement of 1e-12·|g|, and log|H| is not
        # stationary in u, so D carries that first-order error (2.6e-8 of 320 seen)
        assert value == pytest.approx(dev(x), rel=1e-9)
        h = 1e-5
        fd = [(dev(x + h * e) - dev(x - h * e)) / (2 * h) for e in np.eye(len(x))]
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5)


def _closed_form(model, kind):
    """−2ℓ of the model without random effects, from scipy.stats densities."""
    spec = model.spec
    y, X, p = spec.y, spec.X, spec.p
    A = spec.aux_designs["X_zi" if kind != "gauss" else "X_disp"]

    def f(x):
        beta, extra = x[:p], x[p:]
        eta = X @ beta
        if kind == "gauss":
            return -2 * stats.norm.logpdf(y, eta, np.exp(A @ extra)).sum()
        pi, mu = special.expit(A @ extra), np.exp(eta)
        if kind == "zip":
            ll = np.where(y == 0, np.log(pi + (1 - pi) * stats.poisson.pmf(0, mu)),
                          np.log1p(-pi) + stats.poisson.logpmf(y, mu))
        else:
            ll = np.where(y == 0, np.log(pi), np.log1p(-pi) + stats.poisson.logpmf(y, mu)
                          - np.log(stats.poisson.sf(0, mu)))
        return -2 * ll.sum()
    return f


@pytest.mark.parametrize("kind,seed", CASES[::2])
def test_at_theta_zero_the_fit_is_the_closed_form_optimum(kind, seed):
    model = _case(kind, seed)
    ours, closed = model.objective(), _closed_form(model, kind)
    k = model.spec.p + model.family.n_phi
    start = np.zeros(k)
    ref = optimize.minimize(closed, start, method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 40000,
                                     "maxfev": 40000})
    ref = optimize.minimize(closed, ref.x, method="BFGS", options={"gtol": 1e-9})

    def at_zero(v):
        value, grad = ours(np.concatenate([[0.0], v]))
        return value, grad[1:]
    mine = optimize.minimize(at_zero, start, jac=True, method="BFGS", options={"gtol": 1e-9})
    assert at_zero(ref.x)[0] == pytest.approx(ref.fun, abs=1e-8)     # D(θ = 0) = −2ℓ
    assert mine.fun == pytest.approx(ref.fun, abs=1e-6)
    np.testing.assert_allclose(mine.x, ref.x, atol=2e-4)


@pytest.mark.parametrize("kind,seed", [("zip", 11), ("zip", 12), ("hurdle", 13), ("gauss", 14),
                                       ("gauss", 15)])
def test_fit_reaches_the_numpy_laplace_optimum(kind, seed):
    model = _case(kind, seed)
    fit = model.fit()
    dev = _independent(model, kind)
    x_hat = np.concatenate([fit.theta, fit.beta, fit.phi])
    best = optimize.minimize(dev, x_hat + 0.05, method="BFGS", options={"gtol": 1e-7})
    assert dev(x_hat) <= best.fun + 1e-6
    assert -2 * fit.loglik == pytest.approx(dev(x_hat), abs=1e-6)


def test_simulated_zero_share_and_mean_are_the_models():
    model = _zip_model(zip_data(21, groups=10, per=20))
    fit = model.fit()
    Y = fit.simulate(nsim=400, seed=3)
    zprob = fit.predict(type="zprob").to_numpy()
    assert Y.min() >= 0 and np.all(Y == np.round(Y))
    # the share of structural zeros is at least π on every row (Poisson zeros add to it)
    assert np.mean(Y == 0) >= np.mean(zprob) - 0.02
    # conditional on the modes b̂ is not what simulate does (new b); compare the overall mean
    # with the model's marginal mean: (1 − π) E[exp(η + θv)], v ~ N(0, 1)
    eta_fixed = fit.linear_predictor(include_random=False)
    marginal = (1 - zprob) * np.exp(eta_fixed + fit.theta[0] ** 2 / 2)
    assert Y.mean() == pytest.approx(marginal.mean(), rel=0.05)


def test_hurdle_response_mean_and_zprob():
    fit = _zip_model(zip_data(22), hurdle=True).fit()
    mu = np.exp(fit.linear_predictor())
    pi = fit.predict(type="zprob").to_numpy()
    trunc = mu / (1 - np.exp(-mu))
    np.testing.assert_allclose(fit.predict(type="conditional").to_numpy(), trunc, rtol=1e-12)
    np.testing.assert_allclose(fit.fitted().to_numpy(), (1 - pi) * trunc, rtol=1e-12)
    # zero share of the data = mean π at the optimum (the hurdle's zero part is a logistic GLM
    # with an intercept column here: ~ z has one)
    assert np.mean(fit.spec.y == 0) == pytest.approx(pi.mean(), abs=1e-5)


def test_summary_and_tidy_show_the_parts():
    fit = _zip_model(zip_data(23)).fit()
    text = str(fit.summary())
    assert "Conditional model:" in text and "Zero-inflation model:" in text
    t = fit.tidy()
    zi = t[t["component"] == "zi"]
    assert list(zi["term"]) == ["(Intercept)", "z"]
    np.testing.assert_allclose(zi["estimate"], fit.zi_params, rtol=1e-12)
    np.testing.assert_allclose(zi["std_error"], fit.zi_bse, rtol=1e-12)


@pytest.mark.parametrize("name,zi", [("poisson", True), ("truncated_poisson", True),
                                     ("binomial", True), ("negative_binomial", True),
                                     ("truncated_nbinom2", True)])
def test_mean_and_variance_are_the_pmf_sums(name, zi):
    """E(y/n) and Var(y/n) of the zero-inflated / hurdle law against sums over its pmf
    (scipy.stats), at several (μ, π, φ)."""
    from mixedppl.families import FAMILIES
    from mixedppl.families.zi_disp import with_parts
    fam = with_parts(FAMILIES[name], ["(Intercept)"], [])
    ks = np.arange(0, 400.0)
    for mu, pi, size, n in [(0.4, 0.3, 2.0, 6), (2.5, 0.6, 0.7, 10), (7.0, 0.1, 5.0, 3)]:
        if name == "binomial":
            m = mu / 10
            f = stats.binom.pmf(ks, n, m)
            scale, mean_arg = n, m
        else:
            f = (stats.nbinom.pmf(ks, size, size / (size + mu)) if "nbinom" in name
                 or name == "negative_binomial" else stats.poisson.pmf(ks, mu))
            if name.startswith("truncated"):
                f = np.where(ks == 0, 0.0, f / (1 - f[0]))
            scale, mean_arg = 1, mu
        pmf = (1 - pi) * f
        pmf[0] += pi
        y = ks / scale
        mean = float(pmf @ y)
        var = float(pmf @ (y - mean) ** 2)
        d = size if fam.dispersion else None
        ntr = float(n) if name == "binomial" else 1.0
        assert fam.response_mean(np.array(mean_arg), d, np.array(pi)) == pytest.approx(mean,
                                                                                       rel=1e-10)
        assert fam.variance(np.array(mean_arg), ntr, d, np.array(pi)) == pytest.approx(var,
                                                                                      rel=1e-9)


def test_update_refit_pickle_and_bootstrap_keep_the_parts():
    import pickle
    data = zip_data(24)
    fit = _zip_model(data).fit()
    again = fit.refit(fit.spec.y)
    assert again.loglik == pytest.approx(fit.loglik, abs=1e-8)
    up = fit.update(". ~ . - x")
    assert up.spec.fe_names == ["(Intercept)"] and list(up.zi_params.index) == ["(Intercept)", "z"]
    up2 = fit.update(". ~ .", data=data)
    assert up2.loglik == pytest.approx(fit.loglik, abs=1e-8)
    back = pickle.loads(pickle.dumps(fit))
    np.testing.assert_allclose(back.predict(data.head(4), type="zprob"),
                               fit.predict(type="zprob").to_numpy()[:4], rtol=1e-12)
    ci = fit.confint(method="boot", nsim=4, seed=2)
    assert {"zi~(Intercept)", "zi~z"} <= set(ci.index)
    # fit.sample() of zi / disp models: tests/bayes (the PyMC model's logp against scipy.stats)
    with pytest.raises(NotImplementedError, match="zero-inflated / hurdle"):
        fit.predict(se_fit=True)


# ------------------------------------------------------------------------------------------
# bad input

def test_bad_input_names_the_column_or_term():
    d = zip_data(1)
    with pytest.raises(mp.ModelSpecError, match="ziformula: family 'gaussian' is continuous"):
        mp.glmer("y ~ x + (1 | g)", d, family="gaussian", ziformula="~ z")
    # random terms in the ziformula are fitted (tests/parity/test_glmmtmb_zire.py); one naming
    # a column the data lack is refused by name
    with pytest.raises(mp.ModelSpecError, match="nowhere"):
        mp.glmer("y ~ x + (1 | g)", d, family="poisson", ziformula="~ z + (1 | nowhere)")
    with pytest.raises(mp.ModelSpecError, match=r"dispformula .*random terms such as \(1 \| g\)"):
        mp.glmer("y ~ x + (1 | g)", d, family="nbinom2", dispformula="~ (1 | g)")
    with pytest.raises(mp.ModelSpecError, match="family 'poisson' has no dispersion"):
        mp.glmer("y ~ x + (1 | g)", d, family="poisson", dispformula="~ x")
    with pytest.raises(mp.ModelSpecError, match="one-sided formula"):
        mp.glmer("y ~ x + (1 | g)", d, family="poisson", ziformula="z")
    with pytest.raises(mp.ModelSpecError, match="'w'"):
        mp.glmer("y ~ x + (1 | g)", d, family="poisson", ziformula="~ w")
    bad = d.assign(y=d["y"] - 1)
    with pytest.raises(mp.ModelSpecError, match="'y' has negative values"):
        mp.glmer("y ~ x + (1 | g)", bad, family="poisson", ziformula="~ z")
    with pytest.raises(mp.ModelSpecError, match="non-negative integer counts"):
        mp.glmer("y ~ x + (1 | g)", d.assign(y=d["y"] + 0.5), family="truncated_poisson",
                 ziformula="~ z")
    with pytest.raises(mp.ModelSpecError, match="nAGQ=2"):
        mp.glmer("y ~ x + (1 | g)", d, family="poisson", ziformula="~ z", nAGQ=2)
    with pytest.raises(mp.ModelSpecError, match="rank deficient"):
        mp.glmer("y ~ x + (1 | g)", d.assign(z2=2 * d["z"]), family="poisson",
                 ziformula="~ z + z2")


def test_an_unknown_column_in_a_part_formula_names_that_formula():
    d = zip_data(1)
    with pytest.raises(mp.ModelSpecError, match=r"'zz' used in ziformula '~ zz'.*Did you mean 'z'"):
        mp.glmer("y ~ x + (1 | g)", d, family="poisson", ziformula="~ zz")
    with pytest.raises(mp.ModelSpecError, match=r"'xx' used in dispformula '~ xx'"):
        mp.glmer("y ~ x + (1 | g)", d, family="nbinom2", dispformula="~ xx")
