"""The count families at the edges of their dispersion: NB2's size → ∞, nbinom1's φ → 0 and
betabinomial's precision → ∞ (the Poisson / binomial limits an optimiser walks into when the
data are not over-dispersed).

Their log-densities hold :math:`\\log\\Gamma(y + s) - \\log\\Gamma(s)`, written out a difference
of two numbers of size s log s: before ``_log_gamma_ratio`` nbinom1 at φ = 1e-12 and
betabinomial at precision 1e16 were tens of log-units off per row. The independent answer here
is the product form :math:`\\sum_{k<y}\\log(s + k) = y\\log s + \\sum_{k<y}\\mathrm{log1p}(k/s)`
(integer y), summed with :func:`math.fsum`.
"""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.families.gamma_ratio import SERIES_FROM, GammaRatio, gamma_ratio
from mixedppl.families.glm import FAMILIES


def _ratio_exact(y: int, s: float) -> float:
    """log Γ(y + s) − log Γ(s) as Σ_{k<y} log(s + k), without cancellation."""
    return y * math.log(s) + math.fsum(math.log1p(k / s) for k in range(int(y)))


def _nb2_exact(y, mu, size):
    return (_ratio_exact(y, size) - math.lgamma(y + 1) - size * math.log1p(mu / size)
            + (y * (math.log(mu) - math.log(mu + size)) if y else 0.0))


def _nbinom1_exact(y, mu, phi):
    size = mu / phi
    return (_ratio_exact(y, size) - math.lgamma(y + 1) - size * math.log1p(phi)
            + y * (math.log(phi) - math.log1p(phi)))


def _betabinomial_exact(y, mu, n, prec):
    a, b = mu * prec, (1 - mu) * prec
    return (math.lgamma(n + 1) - math.lgamma(y + 1) - math.lgamma(n - y + 1)
            + _ratio_exact(y, a) + _ratio_exact(n - y, b) - _ratio_exact(n, prec))


@pytest.fixture(scope="module")
def compiled():
    import pytensor
    import pytensor.tensor as pt
    y, mu, n, d = pt.dvector("y"), pt.dvector("mu"), pt.dvector("n"), pt.dvector("d")
    out = {}
    for name in ("negative_binomial", "nbinom1", "betabinomial", "truncated_nbinom2"):
        lp = FAMILIES[name].logp(y, mu, n, d)
        # the first derivatives in μ and the dispersion: finite on both sides of the switch
        out[name] = pytensor.function(
            [y, mu, n, d], [lp, pt.grad(lp.sum(), mu), pt.grad(lp.sum(), d)])
    return out


DISPERSIONS = [0.3, 7.0, 2e3, 0.99 * SERIES_FROM, 1.01 * SERIES_FROM, 3e7, 1e10, 1e12,
               1e14, 1e16]


@pytest.mark.parametrize("seed", range(4))
def test_log_densities_equal_the_product_form_at_every_dispersion(compiled, seed):
    rng = np.random.default_rng(seed)
    m = 30
    y = rng.integers(0, 40, m).astype(float)
    mu = np.exp(rng.uniform(-3, 4, m))
    for size in DISPERSIONS:
        d = np.full(m, size)
        v, g_mu, g_d = compiled["negative_binomial"](y, mu, np.ones(m), d)
        want = [_nb2_exact(int(a), b, size) for a, b in zip(y, mu)]
        np.testing.assert_allclose(v, want, rtol=1e-12, atol=1e-9, err_msg=f"NB2 size {size}")
        assert np.all(np.isfinite(g_mu)) and np.all(np.isfinite(g_d))
        phi = 1.0 / size   # nbinom1's φ → 0 as the NB2 size grows
        v, g_mu, g_d = compiled["nbinom1"](y, mu, np.ones(m), np.full(m, phi))
        want = [_nbinom1_exact(int(a), b, phi) for a, b in zip(y, mu)]
        np.testing.assert_allclose(v, want, rtol=1e-12, atol=1e-9, err_msg=f"nbinom1 φ {phi}")
        assert np.all(np.isfinite(g_mu)) and np.all(np.isfinite(g_d))
    trials = rng.integers(1, 25, m).astype(float)
    p = 1 / (1 + np.exp(-rng.uniform(-3, 3, m)))
    succ = rng.binomial(trials.astype(int), p).astype(float)
    for prec in DISPERSIONS:
        v, g_mu, g_d = compiled["betabinomial"](succ, p, trials, np.full(m, prec))
        want = [_betabinomial_exact(int(a), b, int(c), prec) for a, b, c in zip(succ, p, trials)]
        np.testing.assert_allclose(v, want, rtol=1e-12, atol=1e-9,
                                   err_msg=f"betabinomial precision {prec}")
        assert np.all(np.isfinite(g_mu)) and np.all(np.isfinite(g_d))


def test_the_limits_are_poisson_and_binomial(compiled):
    from scipy import stats
    y = np.array([0.0, 1, 3, 8, 20, 55])
    mu = np.array([0.2, 1.5, 2.0, 9.0, 18.0, 60.0])
    one = np.ones_like(y)
    pois = stats.poisson.logpmf(y, mu)
    np.testing.assert_allclose(compiled["negative_binomial"](y, mu, one, one * 1e16)[0], pois,
                               rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(compiled["nbinom1"](y, mu, one, one * 1e-16)[0], pois,
                               rtol=1e-12, atol=1e-10)
    n = np.array([1.0, 4, 10, 10, 30, 60])
    p = np.array([0.3, 0.5, 0.01, 0.9, 0.6, 0.95])
    np.testing.assert_allclose(compiled["betabinomial"](np.minimum(y, n), p, n, one * 1e16)[0],
                               stats.binom.logpmf(np.minimum(y, n), n, p), rtol=1e-12,
                               atol=1e-10)
    # truncated NB2 → truncated Poisson
    yt = y[y > 0]
    np.testing.assert_allclose(
        compiled["truncated_nbinom2"](yt, mu[y > 0], one[y > 0], one[y > 0] * 1e16)[0],
        stats.poisson.logpmf(yt, mu[y > 0]) - np.log(-np.expm1(-mu[y > 0])), rtol=1e-12,
        atol=1e-10)


@pytest.mark.parametrize("order", range(5))
def test_series_and_scipy_agree_where_they_meet_and_the_op_derivatives_chain(order):
    """Δ_k(y, s) = ∂ᵏ/∂sᵏ [log Γ(y + s) − log Γ(s)]: the series at s = 10³ equals scipy's
    difference there (which is still accurate), far out it equals the product form's
    derivatives by central differences, and the Op's gradient is the next order."""
    from scipy.special import gammaln, polygamma
    from mixedppl.families.gamma_ratio import _series
    y = np.array([0.0, 1.0, 3.0, 17.0, 400.0, 5e4])
    s = np.full_like(y, SERIES_FROM)
    direct = (gammaln(y + s) - gammaln(s) if order == 0
              else polygamma(order - 1, y + s) - polygamma(order - 1, s))
    np.testing.assert_allclose(_series(y, s, order), direct, rtol=1e-10,
                               atol=1e-13 * SERIES_FROM ** -max(order - 1, 0))
    # far out: derivative of the product form Σ_k log(s + k) (y integer) by hand
    for yv, sv in ((3.0, 1e9), (17.0, 4e12)):
        k = np.arange(int(yv))
        exact = [np.sum(np.log(sv + k)), np.sum(1 / (sv + k)), -np.sum(1 / (sv + k) ** 2),
                 2 * np.sum(1 / (sv + k) ** 3), -6 * np.sum(1 / (sv + k) ** 4)][order]
        got = float(gamma_ratio(yv, sv, order))
        np.testing.assert_allclose(got, exact, rtol=1e-12)
    import pytensor
    import pytensor.tensor as pt
    yt, st = pt.dvector("y"), pt.dvector("s")
    g = pt.grad(GammaRatio(order)(yt, st).sum(), st)
    fn = pytensor.function([yt, st], g)
    sv = np.array([0.7, 40.0, 2e3, 1e8])
    np.testing.assert_allclose(fn(np.full(4, 6.0), sv), gamma_ratio(6.0, sv, order + 1),
                               rtol=1e-14)


def _poisson_groups(seed, n_groups=12, per=8):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    b = rng.normal(scale=0.5, size=n_groups)
    y = rng.poisson(np.exp(0.8 + 0.3 * x + b[g]))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_count_fits_on_equidispersed_data_reach_the_poisson_optimum(seed):
    """On Poisson data NB2 and nbinom1 nest the Poisson GLMM as a limit: their maximised
    Laplace log-likelihood is never below the Poisson fit's (an optimiser stopped in the
    cancellation region used to report a lower one, or a wrong answer near it)."""
    d = _poisson_groups(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pois = mp.glmer("y ~ x + (1 | g)", d, family="poisson")
        for fam in ("nbinom2", "nbinom1"):
            fit = mp.glmer("y ~ x + (1 | g)", d, family=fam)
            assert np.isfinite(fit.loglik)
            assert fit.loglik >= pois.loglik - 1e-6, (fam, fit.loglik, pois.loglik)
            if fit.loglik - pois.loglik < 1e-4:   # at the limit: the same fixed effects
                np.testing.assert_allclose(fit.fe_params, pois.fe_params, atol=2e-3)


def _binomial_groups(seed, n_groups=10, per=8):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    trials = rng.integers(5, 15, g.size)
    p = 1 / (1 + np.exp(-(0.2 + 0.5 * x + rng.normal(scale=0.4, size=n_groups)[g])))
    y = rng.binomial(trials, p)
    return pd.DataFrame({"y": y, "f": trials - y, "x": x, "g": [f"g{k}" for k in g]})


def test_a_dispersion_at_its_limit_is_warned_about_and_noted():
    """NB2 on equidispersed data (seed 2: θ̂ ≈ 7e8) and betabinomial on binomial data end at
    the Poisson / binomial limit: a ConvergenceWarning names it, summary() notes it, and the
    fit equals the simpler model's; an interior NB2 estimate (seed 0, θ̂ ≈ 18) gets neither."""
    d = _poisson_groups(2)
    with pytest.warns(mp.ConvergenceWarning, match="NB2 size .* Poisson limit"):
        nb = mp.glmer("y ~ x + (1 | g)", d, family="nbinom2")
    assert "Poisson limit" in str(nb.summary())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pois = mp.glmer("y ~ x + (1 | g)", d, family="poisson")
    assert abs(nb.loglik - pois.loglik) < 1e-5
    np.testing.assert_allclose(nb.fe_params, pois.fe_params, atol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mp.ConvergenceWarning)
        inner = mp.glmer("y ~ x + (1 | g)", _poisson_groups(0), family="nbinom2")
    assert "limit" not in str(inner.summary())
    b = _binomial_groups(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bb = mp.glmer("cbind(y, f) ~ x + (1 | g)", b, family="betabinomial")
        binom = mp.glmer("cbind(y, f) ~ x + (1 | g)", b, family="binomial")
    messages = [str(w.message) for w in caught if issubclass(w.category, mp.ConvergenceWarning)]
    if bb.disp_params.iloc[0] > np.log(1e6):   # at the limit: warned, and the binomial fit
        assert any("binomial limit" in m for m in messages), messages
        assert abs(bb.loglik - binom.loglik) < 1e-5
    else:                                      # an interior optimum: above the binomial fit
        assert bb.loglik >= binom.loglik - 1e-6


def test_a_zero_part_at_minus_infinity_is_warned_about_and_noted():
    """A ZIP fitted to Poisson data (no excess zeros) ends with its zi intercept near −25 (SE
    ~1e5, as glmmTMB's): a ConvergenceWarning, a summary() note, the Poisson fit's logLik;
    Salamanders' ZIP (π̂ 0.36–0.76) gets neither."""
    d = _poisson_groups(2)
    with pytest.warns(mp.ConvergenceWarning, match="zero-inflation probability is below"):
        zip_ = mp.glmer("y ~ x + (1 | g)", d, family="poisson", ziformula="~ 1")
    assert zip_.zi_params.iloc[0] < -18
    assert "no excess zeros" in str(zip_.summary())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pois = mp.glmer("y ~ x + (1 | g)", d, family="poisson")
    assert abs(zip_.loglik - pois.loglik) < 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error", mp.ConvergenceWarning)
        sal = mp.glmer("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
                       family="poisson", ziformula="~ mined")
    assert "excess zeros" not in str(sal.summary())
