"""The family table (mixedppl/families/glm.py): the rows added for glmmTMB's families.

- each written-out log-density equals ``pm.logp`` of the matching PyMC distribution (the rows
  present before have the same test in ``tests/core/test_tiers.py``);
- each simulator draws from the distribution whose mean is μ and variance the row's ``variance``;
- each new family / link, fitted with nAGQ = 15 on small simulated data (several seeds), is at
  the optimum of the exact marginal likelihood computed independently: scipy's densities, the
  integral over the random intercept by the trapezoid rule (``tests/independent.py``).
"""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import mixedppl as mp
from independent import exact_deviance
from mixedppl.families import LINKS, get_family
from mixedppl.families.glm import FAMILIES

_PYMC_LOGP = {
    "nbinom1": lambda pm, y, mu, n, d: n * pm.logp(pm.NegativeBinomial.dist(mu=mu, alpha=mu / d),
                                                   y),
    "gaussian": lambda pm, y, mu, n, d: n * pm.logp(pm.Normal.dist(mu=mu, sigma=d), y),
    "betabinomial": lambda pm, y, mu, n, d: pm.logp(pm.BetaBinomial.dist(n=n, alpha=mu * d,
                                                                         beta=(1 - mu) * d), y),
}


@pytest.mark.parametrize("name", list(_PYMC_LOGP))
def test_written_out_log_densities_equal_pymc(name):
    pm = pytest.importorskip("pymc")
    import pytensor
    import pytensor.tensor as pt
    rng = np.random.default_rng(3)
    y_, mu_, n_, d_ = pt.dvector("y"), pt.dvector("mu"), pt.dvector("n"), pt.dscalar("d")
    ours = FAMILIES[name].logp(y_, mu_, n_, d_)
    theirs = _PYMC_LOGP[name](pm, y_, mu_, n_, d_)
    fn = pytensor.function([y_, mu_, n_, d_], [ours, theirs, pt.grad(ours.sum(), mu_),
                                               pt.grad(theirs.sum(), mu_)])
    for disp in (0.05, 0.7, 2.04, 30.0):
        n = rng.choice([0.5, 1.0, 2.0], 400)
        mu = np.exp(rng.uniform(-4, 5, 400))
        y = (rng.poisson(mu).astype(float) if name == "nbinom1"
             else mu + rng.normal(scale=disp, size=400))
        if name == "betabinomial":   # n trials, mu a probability
            n = rng.integers(1, 30, 400).astype(float)
            mu = 1 / (1 + np.exp(-rng.uniform(-4, 4, 400)))
            y = rng.binomial(n.astype(int), mu).astype(float)
        v_ours, v_theirs, g_ours, g_theirs = fn(y, mu, n, disp)
        np.testing.assert_allclose(v_ours, v_theirs, rtol=1e-9, atol=1e-9)
        # PyMC's gradient goes through PyTensor's C digamma, which is accurate to ~1.5e-10
        # (against mpmath; scipy's, behind our log-gamma differences, to 4e-16); the gradient is
        # that digamma difference times the dispersion (up to 30 here), hence 2e-8 absolute.
        np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-9, atol=2e-8)
        if name == "betabinomial":   # ours against scipy's digamma: ∂/∂μ = φ[Δψ(a) − Δψ(b)]
            from scipy.special import digamma
            a, b = mu * disp, (1 - mu) * disp
            want = disp * (digamma(y + a) - digamma(a) - digamma(n - y + b) + digamma(b))
            np.testing.assert_allclose(g_ours, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,mu,disp,trials", [
    ("nbinom1", 4.0, 2.5, 1.0), ("gaussian", -3.0, 1.7, 1.0), ("gamma", 2.0, 0.4, 1.0),
    ("truncated_poisson", 0.3, None, 1.0), ("truncated_poisson", 2.5, None, 1.0),
    ("truncated_nbinom2", 0.8, 0.6, 1.0), ("truncated_nbinom2", 3.0, 2.0, 1.0),
    ("betabinomial", 0.3, 4.0, 12.0)])
def test_simulator_has_the_rows_mean_and_variance(name, mu, disp, trials):
    """Draws (of y/n: counts over trials for the beta-binomial) have the row's mean (the
    truncated mean for the zero-truncated rows) and its ``variance``; truncated draws are ≥ 1."""
    fam = FAMILIES[name]
    draws = fam.simulator(np.random.default_rng(0), np.full(200_000, mu),
                          np.full(200_000, trials), disp) / trials
    assert draws.mean() == pytest.approx(float(fam.response_mean(mu, disp)), rel=1e-2)
    assert draws.var() == pytest.approx(float(fam.variance(mu, trials, disp)),
                                        rel=2e-2)
    if fam.truncated_mean is not None:
        assert draws.min() >= 1 and np.all(draws == np.round(draws))


@pytest.mark.parametrize("name,disp", [("truncated_poisson", None), ("truncated_nbinom2", 0.7),
                                       ("truncated_nbinom2", 25.0)])
def test_truncated_log_densities(name, disp):
    """log p(y) − log(1 − p(0)) by scipy; summed over y = 1, 2, … the density is 1; the mean and
    variance of the row (response_mean, variance) are the brute-force sums' moments."""
    import pytensor
    import pytensor.tensor as pt
    fam = FAMILIES[name]
    y_, mu_, n_ = pt.dvector("y"), pt.dvector("mu"), pt.dvector("n")
    d_ = pt.dscalar("d")
    fn = pytensor.function([y_, mu_, n_, d_], fam.logp(y_, mu_, n_, d_),
                           on_unused_input="ignore")
    y = np.arange(1.0, 3000.0)
    for mu in (1e-3, 0.2, 1.0, 7.5, 60.0):
        if disp is None:
            base = stats.poisson(mu)
        else:
            base = stats.nbinom(disp, disp / (disp + mu))
        expected = base.logpmf(y) - np.log(base.sf(0))
        ours = fn(y, np.full_like(y, mu), np.ones_like(y), disp or 1.0)
        np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-9)
        p = np.exp(ours)
        assert p.sum() == pytest.approx(1.0, abs=1e-10)
        m = float(fam.response_mean(mu, disp))
        assert (y * p).sum() == pytest.approx(m, rel=1e-9)
        assert ((y - m) ** 2 * p).sum() == pytest.approx(float(fam.variance(mu, 1.0, disp)),
                                                        rel=1e-7)
    # a prior weight multiplies the whole log-density, the truncation term included
    assert fn([2.0], [1.0], [2.5], 1.3)[0] == pytest.approx(2.5 * fn([2.0], [1.0], [1.0], 1.3)[0],
                                                            rel=1e-12)


def test_betabinomial_log_density_is_scipys():
    """glmmTMB's betabinomial: Beta-binomial(n, a = μφ, b = (1 − μ)φ), the binomial coefficient
    included (``dbetabinom_robust``)."""
    import pytensor
    import pytensor.tensor as pt
    y_, mu_, n_, d_ = pt.dvector("y"), pt.dvector("mu"), pt.dvector("n"), pt.dscalar("d")
    fn = pytensor.function([y_, mu_, n_, d_], FAMILIES["betabinomial"].logp(y_, mu_, n_, d_))
    n = np.repeat([1.0, 5.0, 40.0], 41)
    y = np.minimum(np.tile(np.arange(41.0), 3), n)
    for mu, phi in [(0.02, 0.5), (0.4, 3.0), (0.9, 200.0)]:
        ours = fn(y, np.full_like(y, mu), n, phi)
        np.testing.assert_allclose(ours, stats.betabinom.logpmf(y, n, mu * phi, (1 - mu) * phi),
                                   rtol=1e-9, atol=1e-9)


def test_tmb_dispersion_scales():
    """glmmTMB's ``fixef(fit)$disp`` = log σ² (gaussian), log shape = −2 log cv (Gamma), log φ."""
    log_phi = np.log([1.5])
    assert FAMILIES["gaussian"].tmb_dispersion(log_phi)[0] == pytest.approx(np.log(1.5 ** 2))
    assert FAMILIES["gamma"].tmb_dispersion(log_phi)[0] == pytest.approx(np.log(1 / 1.5 ** 2))
    for name in ("negative_binomial", "nbinom1", "beta"):
        assert FAMILIES[name].tmb_dispersion(log_phi)[0] == pytest.approx(np.log(1.5))


# -- the exact marginal optimum -----------------------------------------------------------------

def _scipy_loglik(family: str, link: str, y: np.ndarray):
    """log p(y | η, log φ) from scipy's distributions (nothing of mixedppl)."""
    inverse = {"log": np.exp, "sqrt": np.square, "identity": lambda e: e,
               "inverse": lambda e: 1.0 / e}[link]

    def ll(eta, log_phi):
        shape = (-1,) + (1,) * (np.ndim(eta) - 1)
        yy, mu, phi = y.reshape(shape), inverse(eta), np.exp(log_phi)
        with np.errstate(all="ignore"):
            if family == "poisson":
                out = stats.poisson.logpmf(yy, mu)
            elif family == "nbinom1":
                out = stats.nbinom.logpmf(yy, mu / phi, 1.0 / (1.0 + phi))
            elif family == "gamma":
                out = stats.gamma.logpdf(yy, 1.0 / phi ** 2, scale=mu * phi ** 2)
            else:
                out = stats.norm.logpdf(yy, mu, phi)
        return np.where(np.isfinite(out), out, -1e300) if np.ndim(out) else out
    return ll


def _simulated(family: str, link: str, seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    g = np.repeat(np.arange(12), 8)
    x = r.uniform(-1, 1, len(g))
    u = 0.3 * r.normal(size=12)[g]
    if family == "gaussian":   # log link
        mu = np.exp(1.0 + 0.3 * x + u)
        y = r.normal(mu, 0.4)
    elif family == "gamma":    # inverse link: η in [0.4, 0.8] keeps μ > 0
        mu = 1.0 / (0.6 + 0.1 * x + 0.1 * u / 0.3)
        y = r.gamma(1 / 0.3 ** 2, mu * 0.3 ** 2)
    elif family == "nbinom1":
        mu = np.exp(1.0 + 0.5 * x + u)
        y = r.negative_binomial(mu / 1.5, 1 / 2.5).astype(float)
    else:                      # poisson, sqrt link: η ≈ 3 stays far from 0
        mu = (3.0 + 0.4 * x + u) ** 2
        y = r.poisson(mu).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})


CASES = [("gaussian", "log"), ("gamma", "inverse"), ("nbinom1", "log"), ("poisson", "sqrt")]


@pytest.mark.parametrize("family,link", CASES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_agq_fit_is_the_exact_marginal_optimum(family, link, seed):
    data = _simulated(family, link, seed)
    fit = mp.glmer("y ~ x + (1 | g)", data, family=family, link=link, nAGQ=15)
    spec = fit.spec
    codes, G = spec.terms[0].codes, spec.terms[0].n_levels
    ll = _scipy_loglik(family, link, spec.y.astype(float))
    n_phi = len(fit.phi)

    def dev(z):
        theta, beta, log_phi = abs(z[0]), z[1:1 + spec.p], z[1 + spec.p:]
        rows = (lambda eta: ll(eta, log_phi[0] if n_phi else 0.0))
        return exact_deviance(rows, codes, G, spec.X @ beta, theta)

    z_ours = np.concatenate([fit.theta, fit.beta, fit.phi])
    ours = dev(z_ours)
    assert ours == pytest.approx(-2 * fit.loglik, abs=1e-3)   # AGQ(15) ≈ exact here
    best = optimize.minimize(dev, z_ours, method="Nelder-Mead",
                             options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20_000})
    assert ours <= best.fun + 1e-5, f"{family}({link}) seed {seed}: {ours} vs {best.fun}"
    assert np.max(np.abs(best.x - z_ours)) < 1e-2


def test_links_registered():
    for fam, links in [("poisson", ("log", "sqrt", "identity")),
                       ("gamma", ("log", "inverse", "identity"))]:
        assert get_family(fam)[0].links == links
        for name in links:
            assert get_family(fam, name)[1] is LINKS[name]


def test_unit_deviances_of_the_new_rows():
    """nbinom1: 2[ℓ(y; y) − ℓ(y; μ)] by scipy's NB with size μ/φ (the saturated ℓ is 0 at
    y = 0); Gaussian: R's ``gaussian()$dev.resids``, w (y − μ)²."""
    y, mu, phi = np.array([0.0, 1.0, 4.0, 9.0]), np.array([0.5, 2.0, 3.0, 12.0]), 1.7
    saturated = np.where(y > 0, stats.nbinom.logpmf(y, y / phi, 1 / (1 + phi)), 0.0)
    expected = 2 * (saturated - stats.nbinom.logpmf(y, mu / phi, 1 / (1 + phi)))
    ours = FAMILIES["nbinom1"].unit_deviance(y, mu, np.ones(4), phi)
    np.testing.assert_allclose(ours, expected, rtol=1e-10)
    n = np.array([1.0, 2.0, 0.5, 1.0])
    np.testing.assert_allclose(FAMILIES["gaussian"].unit_deviance(y, mu, n, 3.0),
                               n * (y - mu) ** 2)
