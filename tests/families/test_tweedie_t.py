"""The Tweedie and Student-t rows (families/glm.py, families/tweedie.py) against independent
answers:

- the Tweedie series (Dunn & Smyth) against the compound Poisson–Gamma sum written here with
  scipy.stats densities, Σ_j Poisson(j; λ)·Gamma(y; j·a, s), over small and large j_max;
- the density integrates to 1 with the point mass at 0, and has mean μ and variance φμ^p
  (scipy's quad); the t row's log-density is scipy.stats.t's;
- the Op's gradient in (φ, p) against central differences; the family's PyTensor log-density
  and its gradient in (log φ, psi) against the NumPy values;
- the Laplace deviance of a random-intercept model against a Laplace written here in NumPy
  (per-group Newton on u with the row derivatives in η derived by hand), at random parameters
  and seeds, and its gradient against central differences of that independent value;
- fits reach the minimum of that independent Laplace deviance;
- simulators' mean and variance against the model's;
- the bambi / brms names of zero-part models equal the explicit calls; bad input names the
  column / family.
"""

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate, optimize, special, stats

import mixedppl as mp
from mixedppl.families import FAMILIES, get_family
from mixedppl.families.glm import shaped
from mixedppl.families.tweedie import tweedie_logpdf_np, tweedie_logw


def cpg_logpdf(y, mu, phi, p, jmax=4000):
    """log f of the compound Poisson–Gamma law: N ~ Poisson(λ), y | N ~ Gamma(N a, s), summed
    over N = 1 … jmax − 1 (y > 0), and log P(N = 0) = −λ at y = 0; y, mu arrays or numbers."""
    y, mu = np.broadcast_arrays(np.asarray(y, float), np.asarray(mu, float))
    lam = mu ** (2 - p) / (phi * (2 - p))
    a, s = (2 - p) / (p - 1), phi * (p - 1) * mu ** (p - 1)
    j = np.arange(1, jmax)[:, None]
    pos = np.where(y > 0, y, 1.0).ravel()
    terms = (stats.poisson.logpmf(j, lam.ravel()) + stats.gamma.logpdf(pos, j * a,
                                                                       scale=s.ravel()))
    out = np.where(y.ravel() > 0, special.logsumexp(terms, axis=0), -lam.ravel())
    return out.reshape(y.shape) if y.ndim else float(out[0])


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_series_is_the_compound_poisson_gamma_sum(seed):
    r = np.random.default_rng(seed)
    for _ in range(12):
        mu, phi, p = np.exp(r.uniform(-2, 3)), np.exp(r.uniform(-2.5, 1.5)), r.uniform(1.05, 1.95)
        y = np.concatenate([[0.0], r.gamma(1.0, mu, size=4), [mu * 3]])
        ours = tweedie_logpdf_np(y, mu, phi, p)
        ref = cpg_logpdf(y, mu, phi, p)
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mu,phi,p", [(1.3, 0.8, 1.4), (5.0, 2.0, 1.8), (0.3, 0.5, 1.1),
                                      (20.0, 0.05, 1.5), (2.0, 1.0, 1.9)])
def test_density_sums_to_one_with_mean_mu_and_variance_phi_mu_p(mu, phi, p):
    p0 = np.exp(tweedie_logpdf_np(0.0, mu, phi, p))
    # y = e^t: the density's y^(a−1) spike at 0 (a = (2 − p)/(p − 1) < 1) becomes smooth; its
    # mass below y = e^−80 is still ~y^a ≈ 1e−4 at p = 1.9, hence t from −700

    def moment(k):
        def g(t):
            y = np.exp(t)
            return (y - mu * (k == 2)) ** k * np.exp(tweedie_logpdf_np(y, mu, phi, p)) * y
        return integrate.quad(g, -700.0, np.log(mu) + 8.0, limit=800, epsabs=1e-14,
                              epsrel=1e-12, points=[np.log(mu)])[0]
    total, mean = p0 + moment(0), moment(1)
    var = p0 * mu ** 2 + moment(2)
    assert total == pytest.approx(1.0, abs=1e-8)
    assert mean == pytest.approx(mu, rel=1e-7)
    assert var == pytest.approx(phi * mu ** p, rel=1e-6)


def test_series_gradient_is_the_central_difference():
    r = np.random.default_rng(7)
    y = np.concatenate([r.gamma(0.5, 2.0, size=20), [0.01, 50.0]])
    for phi, p in [(0.7, 1.45), (0.05, 1.2), (3.0, 1.9)]:
        _, g_phi, g_p = tweedie_logw(y, phi, p, with_grad=True)
        h = 1e-6
        fd_phi = (tweedie_logw(y, phi * (1 + h), p) - tweedie_logw(y, phi * (1 - h), p)) / (2 * h * phi)
        fd_p = (tweedie_logw(y, phi, p + h) - tweedie_logw(y, phi, p - h)) / (2 * h)
        np.testing.assert_allclose(g_phi, fd_phi, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(g_p, fd_p, rtol=1e-6, atol=1e-5)


def _graph_logp(name, link="log"):
    """(ℓ(y, η, log φ, psi) summed, its gradient in (log φ, psi)) compiled from the family row."""
    fam, lnk = get_family(name, link, laplace=True)
    y, eta, phi = pt.dvector("y"), pt.dvector("eta"), pt.dvector("phi")
    ll = fam.loglik(y, eta, pt.ones_like(y), phi, lnk)
    fn = pytensor.function([y, eta, phi], [ll, pt.grad(ll.sum(), phi)])
    return fam, fn


def test_tweedie_graph_is_the_numpy_density_with_its_gradient():
    fam, fn = _graph_logp("tweedie")
    r = np.random.default_rng(3)
    y = np.where(r.uniform(size=30) < 0.3, 0.0, r.gamma(1.0, 2.0, size=30))
    eta = r.normal(0.3, 0.5, size=30)
    for phi in ([0.2, 0.4], [-0.5, -1.5], [0.9, 1.2]):
        phi = np.array(phi)
        ll, g = fn(y, eta, phi)
        power = 1 + special.expit(phi[1])
        np.testing.assert_allclose(ll, cpg_logpdf(y, np.exp(eta), np.exp(phi[0]), power),
                                   rtol=1e-10)
        h = 1e-6
        fd = [(fn(y, eta, phi + h * e)[0].sum() - fn(y, eta, phi - h * e)[0].sum()) / (2 * h)
              for e in np.eye(2)]
        np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_student_t_graph_is_scipys_density():
    fam, fn = _graph_logp("t", "identity")
    r = np.random.default_rng(4)
    y, eta = r.standard_t(3, size=25) * 2, r.normal(size=25)
    for log_sigma, psi in [(0.3, np.log(3.0)), (-1.0, np.log(40.0)), (1.0, np.log(1.5))]:
        ll, g = fn(y, eta, np.array([log_sigma, psi]))
        np.testing.assert_allclose(ll, stats.t.logpdf(y, np.exp(psi), eta, np.exp(log_sigma)),
                                   rtol=1e-12)


@pytest.mark.parametrize("name,mu,disp,shape,var", [
    ("tweedie", 2.0, 0.8, 1.3, 0.8 * 2.0 ** 1.3), ("tweedie", 0.4, 2.0, 1.8, 2.0 * 0.4 ** 1.8),
    ("student_t", 1.5, 0.7, 5.0, 0.49 * 5 / 3)])
def test_simulator_has_the_rows_mean_and_variance(name, mu, disp, shape, var):
    fam = FAMILIES[name]
    rng = np.random.default_rng(11)
    m = np.full(200_000, mu)
    y = fam.simulator(rng, m, np.ones_like(m), shaped(disp, shape))
    assert y.mean() == pytest.approx(mu, abs=4 * np.sqrt(var / len(y)))
    assert y.var() == pytest.approx(var, rel=0.03)
    assert fam.variance(mu, 1.0, shaped(disp, shape)) == pytest.approx(var)
    if name == "tweedie":          # the mass at zero is exp(−λ)
        lam = mu ** (2 - shape) / (disp * (2 - shape))
        assert np.mean(y == 0) == pytest.approx(np.exp(-lam), abs=4e-3)


# ------------------------------------------------------------------------------------------
# the Laplace deviance against a NumPy Laplace

def tweedie_rows(y, phi, p):
    """(ℓ, ∂ℓ/∂η, ∂²ℓ/∂η²), log link: ℓ = (yμ^{1−p}/(1−p) − μ^{2−p}/(2−p))/φ + c(y, φ, p),
    ∂ℓ = (yμ^{1−p} − μ^{2−p})/φ, ∂²ℓ = ((1−p)yμ^{1−p} − (2−p)μ^{2−p})/φ; ℓ from the compound
    Poisson–Gamma sum."""
    const = cpg_logpdf(y, 1.0, phi, p) - (y / (1 - p) - 1 / (2 - p)) / phi

    def rows(eta):
        mu = np.exp(eta)
        a, b = y * mu ** (1 - p), mu ** (2 - p)
        ell = const + (a / (1 - p) - b / (2 - p)) / phi
        return ell, (a - b) / phi, ((1 - p) * a - (2 - p) * b) / phi
    return rows


def t_rows(y, sigma, nu):
    """Identity link, r = (y − η)/σ: ∂ℓ = (ν + 1)r/(σ(ν + r²)), ∂²ℓ = (ν + 1)(r² − ν)/(σ²(ν +
    r²)²); ℓ scipy's."""
    def rows(eta):
        r = (y - eta) / sigma
        return (stats.t.logpdf(y, nu, eta, sigma), (nu + 1) * r / (sigma * (nu + r ** 2)),
                (nu + 1) * (r ** 2 - nu) / (sigma ** 2 * (nu + r ** 2) ** 2))
    return rows


def numpy_laplace(rows, codes, G, eta_fixed, theta):
    """TMB's Laplace deviance of one scalar random intercept b = θu (per-group Newton on u):
    −2Σℓ(û) + ‖û‖² + Σ_j log(θ²Σ_{i∈j} w_i + 1), w = −∂²ℓ/∂η²."""
    u = np.zeros(G)
    for _ in range(200):
        _, d1, d2 = rows(eta_fixed + theta * u[codes])
        step = (-theta * np.bincount(codes, d1, G) + u) / (theta ** 2 * np.bincount(codes, -d2, G) + 1)
        u = u - step
        if np.max(np.abs(step)) < 1e-14:
            break
    ell, _, d2 = rows(eta_fixed + theta * u[codes])
    return float(-2 * ell.sum() + u @ u + np.log(theta ** 2 * np.bincount(codes, -d2, G) + 1).sum())


def sim_data(kind, seed, groups=10, per=6):
    r = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x = r.normal(size=len(g))
    b = 0.5 * r.normal(size=groups)[g]
    if kind == "tweedie":
        y = FAMILIES["tweedie"].simulator(r, np.exp(0.3 + 0.4 * x + b), 1.0, shaped(0.9, 1.5))
    else:
        y = 1 + 0.5 * x + b + 0.6 * r.standard_t(4, size=len(g))
    return pd.DataFrame({"y": np.round(y, 6), "x": x, "g": [f"g{k}" for k in g]})


def _model(kind, seed):
    fam = get_family("tweedie" if kind == "tweedie" else "t", laplace=True)[0]
    return mp.Model("y ~ x + (1 | g)", sim_data(kind, seed), fam)


def _independent(model, kind):
    spec = model.spec
    y, X, codes, G = spec.y, spec.X, spec.terms[0].codes, spec.terms[0].n_levels

    def dev(x):
        theta, beta, log_phi, psi = abs(x[0]), x[1:3], x[3], x[4]
        rows = (tweedie_rows(y, np.exp(log_phi), 1 + special.expit(psi)) if kind == "tweedie"
                else t_rows(y, np.exp(log_phi), np.exp(psi)))
        return numpy_laplace(rows, codes, G, X @ beta, theta)
    return dev


CASES = [("tweedie", s) for s in (1, 2, 3)] + [("t", s) for s in (4, 5, 6)]


@pytest.mark.parametrize("kind,seed", CASES)
def test_laplace_deviance_and_gradient_are_the_numpy_laplace(kind, seed):
    model = _model(kind, seed)
    ours, dev = model.objective(), _independent(model, kind)
    r = np.random.default_rng(100 + seed)
    for _ in range(3):
        x = np.concatenate([[r.uniform(0.2, 1.0)], r.normal(0, 0.3, 2),
                            [r.normal(-0.3, 0.3)], [r.normal(0 if kind == "tweedie" else 1.5, 0.5)]])
        value, grad = ours(x)
        assert value == pytest.approx(dev(x), rel=1e-9)     # as test_zi_disp.py: Newton's stop
        h = 1e-5
        fd = [(dev(x + h * e) - dev(x - h * e)) / (2 * h) for e in np.eye(len(x))]
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind,seed", [("tweedie", 11), ("tweedie", 12), ("t", 15), ("t", 16)])
def test_fit_reaches_the_numpy_laplace_optimum(kind, seed):
    model = _model(kind, seed)
    fit = model.fit()
    dev = _independent(model, kind)
    x_hat = np.concatenate([fit.theta, fit.beta, fit.phi])
    best = optimize.minimize(dev, x_hat + 0.05, method="BFGS", options={"gtol": 1e-7})
    assert dev(x_hat) <= best.fun + 1e-6
    assert -2 * fit.loglik == pytest.approx(dev(x_hat), abs=1e-6)
    shape = fit.family_params.iloc[0]
    assert shape == pytest.approx(1 + special.expit(fit.phi[-1]) if kind == "tweedie"
                                  else np.exp(fit.phi[-1]))
    sims = fit.simulate(nsim=3, seed=1)
    assert sims.shape == (len(model.spec.y), 3) and np.all(np.isfinite(sims))
    if kind == "tweedie":
        assert np.all(sims >= 0) and np.any(sims == 0)


def test_t_with_gaussian_data_tends_to_the_gaussian_fit():
    """Seed 14's t data look Gaussian: ν̂ runs off to ∞ (psi ≈ 15, the optimiser stops with a
    convergence warning, as glmmTMB's old sleepstudy t fit), and the fit is the Gaussian ML
    fit (glmmTMB's gaussian() by glmer) in the limit."""
    model = _model("t", 14)
    with pytest.warns(mp.ConvergenceWarning):
        fit = model.fit()
    gauss = mp.glmer("y ~ x + (1 | g)", model.spec.data, family="gaussian")
    assert fit.family_params.iloc[0] > 1e5
    assert fit.loglik == pytest.approx(gauss.loglik, abs=1e-4)
    # the t log-likelihood reaches the Gaussian one only as ν → ∞, at rate O(1/ν): the optimiser
    # stops at a finite ν̂ (≈ 1e6 here), so the t fit lies up to ~1e-7 below the limit
    assert fit.loglik >= gauss.loglik - 1e-6
    np.testing.assert_allclose(fit.fe_params, gauss.fe_params, atol=1e-3)
    assert fit.dispersion == pytest.approx(gauss.dispersion, rel=1e-3)


# ------------------------------------------------------------------------------------------
# bambi / brms names of zero-part models

ALIASES = [("zip", "poisson", "~ 1"), ("zero_inflated_poisson", "poisson", "~ 1"),
           ("zinb", "nbinom2", "~ 1"), ("zero_inflated_negativebinomial", "nbinom2", "~ 1"),
           ("hurdle_poisson", "truncated_poisson", "~ 1"),
           ("hurdle_negativebinomial", "truncated_nbinom2", "~ 1")]


@pytest.mark.parametrize("alias,family,zi", ALIASES)
def test_zero_part_alias_is_the_explicit_call(alias, family, zi):
    """The same model (family object, link, zi design, recorded ziformula) through Model; the
    fits through glmer are compared for "zip" below."""
    sal = mp.datasets.load("salamanders")
    a = mp.Model("count ~ mined + (1 | site)", sal, alias).spec
    b = mp.Model("count ~ mined + (1 | site)", sal,
                 get_family(family, laplace=True)[0], ziformula=zi).spec
    assert a.family == b.family and a.family.zi_names == ("(Intercept)",)
    assert a.link.name == b.link.name and a.aux_names == b.aux_names
    np.testing.assert_array_equal(a.aux_designs["X_zi"], b.aux_designs["X_zi"])
    assert a.build_kwargs["ziformula"] == zi


def test_zero_part_alias_fit_is_the_explicit_fit():
    sal = mp.datasets.load("salamanders")
    a = mp.glmer("count ~ mined + (1 | site)", sal, family="zip")
    b = mp.glmer("count ~ mined + (1 | site)", sal, family="poisson", ziformula="~ 1")
    np.testing.assert_array_equal(np.concatenate([a.beta, a.phi, a.theta]),
                                  np.concatenate([b.beta, b.phi, b.theta]))
    assert a.loglik == b.loglik and a.family == b.family
    # refit / update rebuild the zero part from the recorded ziformula
    assert a.refit(sal["count"].to_numpy()).loglik == pytest.approx(a.loglik, abs=1e-6)


def test_zero_part_alias_keeps_a_given_ziformula():
    """Also: zi designs of two widths in one process share the compiled graphs (phi is cut by
    the designs' widths; a graph cut by the first model's width failed on the second)."""
    sal = mp.datasets.load("salamanders")
    mp.glmer("count ~ mined + (1 | site)", sal, family="zip")
    a = mp.glmer("count ~ mined + (1 | site)", sal, family="zip", ziformula="~ mined")
    assert list(a.zi_params.index) == ["(Intercept)", "minedno"]
    # glmmTMB: ziformula = ~mined, family = poisson (tests/reference/glmmtmb_zi_zip_salamanders)
    assert a.zi_params.round(4).tolist() == [1.1393, -1.7361]


# ------------------------------------------------------------------------------------------
# bad input

COUNT_FAMILIES = ["poisson", "nbinom2", "nbinom1", "truncated_poisson", "truncated_nbinom2",
                  "binomial", "betabinomial", "tweedie"]


@pytest.mark.parametrize("family", COUNT_FAMILIES)
def test_counts_below_zero_name_the_column(family):
    d = sim_data("tweedie", 1).assign(count=lambda v: np.round(v["y"]))
    d.loc[3, "count"] = -2.0
    trials = family in ("binomial", "betabinomial")
    formula = ("cbind(count, 10 - count)" if trials else "count") + " ~ x + (1 | g)"
    with pytest.raises(mp.ModelSpecError, match="negative successes 'count'" if trials else
                       "'count'.*(negative|non-negative|positive)"):
        mp.glmer(formula, d, family=family)
    if family not in ("tweedie", "truncated_poisson", "truncated_nbinom2"):
        with pytest.raises(mp.ModelSpecError, match="negative successes 'count'" if trials else
                           "'count'.*negative"):
            mp.glmer(formula, d, family=family, ziformula="~ 1")


@pytest.mark.parametrize("family", ["gaussian", "gamma", "beta", "tweedie", "t"])
def test_zi_formula_on_a_continuous_family_names_it(family):
    d = sim_data("tweedie", 2).assign(y=lambda v: (v["y"] + 0.5) / (v["y"].max() + 1))
    fam = get_family(family, laplace=True)[0]
    with pytest.raises(mp.ModelSpecError, match=f"ziformula: family '{fam.name}' is continuous"):
        mp.glmer("y ~ x + (1 | g)", d, family=family, ziformula="~ x")


def test_tweedie_and_t_bad_input():
    d = sim_data("tweedie", 3)
    with pytest.raises(mp.ModelSpecError, match="link='identity' is not available for family "
                                                "'tweedie'"):
        mp.glmer("y ~ x + (1 | g)", d, family="tweedie", link="identity")
    bad = d.assign(y=d["y"].where(d.index != 2, np.inf))
    with pytest.raises(mp.ModelSpecError, match="'y'.*infinite"):
        mp.glmer("y ~ x + (1 | g)", bad, family="t")
    with pytest.raises(mp.ModelSpecError, match=r"dispformula .*random terms such as \(1 \| g\)"):
        mp.glmer("y ~ x + (1 | g)", d, family="tweedie", dispformula="~ (1 | g)")
    with pytest.raises(mp.ModelSpecError, match="family='zip' is family 'poisson' with a zero part"):
        get_family("zip")


def _scaled_t_model(seed):
    """sleepstudy-like t data: responses in the hundreds, a group SD of ~35 (lme4's θ start,
    SD 1, is far away), ν = 4: the start region from which a path can climb the (θ, ψ) ridge
    to the ν → ∞ plateau."""
    r = np.random.default_rng(seed)
    g = np.repeat(np.arange(12), 8)
    x = np.tile(np.arange(8.0), 12)
    y = 250 + 10 * x + 35 * r.normal(size=12)[g] + 20 * r.standard_t(4, size=len(g))
    d = pd.DataFrame({"y": y, "x": x, "g": [f"s{k}" for k in g]})
    return mp.Model("y ~ x + (1 | g)", d, get_family("t", laplace=True)[0])


@pytest.mark.parametrize("seed", [0, 3, pytest.param(2, marks=pytest.mark.slow),
                                  pytest.param(4, marks=pytest.mark.slow),
                                  pytest.param(5, marks=pytest.mark.slow)])
def test_t_fit_is_the_multistart_numpy_optimum_not_the_plateau(seed):
    """Against a NumPy Laplace minimised from several (θ, ν) starts by BFGS: the fit's deviance
    is no higher than the best of them (the ν → ∞ plateau gives a far higher one; see
    tests/parity/test_glmmtmb_t_sleepstudy.py for the sleepstudy case)."""
    model = _scaled_t_model(seed)
    fit = model.fit()
    dev = _independent(model, "t")
    spec = model.spec
    ols = np.linalg.lstsq(spec.X, spec.y, rcond=None)[0]
    resid = spec.y - spec.X @ ols
    best = np.inf
    for sd, nu in ((40.0, 2.0), (40.0, 20.0), (10.0, 5.0)):
        x0 = np.r_[sd, ols, np.log(resid.std() / 2), np.log(nu)]
        best = min(best, optimize.minimize(dev, x0, method="BFGS", options={"gtol": 1e-6}).fun)
    x_hat = np.concatenate([fit.theta, fit.beta, fit.phi])
    assert dev(x_hat) <= best + 1e-5
