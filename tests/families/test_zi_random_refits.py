"""simulate / bootstrap / influence / refit / update of models with random terms in the
ziformula (glmmTMB's ``ziformula = ~ x + (1 | g)``; issue 15), on small simulated data.

Independent answers:

- simulate: the marginal moments of the fitted model by Gauss–Hermite quadrature over the
  random effects (cond and zi effects independent, as in the fit): per row E(y) and P(y = 0),
  and per group the variance of its number of zeros, E[Σ P₀(1 − P₀) | b] + Var(Σ P₀ | b) over
  (b_c, b_z) of that group; conditioning on the modes, P(y = 0) = π̂ + (1 − π̂) e^{−μ̂}.
  Each within 5 Monte Carlo standard errors of 4,000 replicates.
- bootstrap: each replicate equals a fresh ``glmer`` fit of the same simulated response.
- influence: each row equals the measures computed here from a fresh fit without the case.
- update / refit: equal to a fresh fit of the updated model (logLik to 1e-8).
"""

import numpy as np
import pandas as pd
import pytest
from numpy.polynomial.hermite_e import hermegauss
from scipy import special

import mixedppl as mp
from conftest import rel_close
from mixedppl.inference.bootstrap import glmm_bootstrap_params
from mixedppl.inference.simulate import simulate_counts

# design: (formula, ziformula); "same" puts one grouping factor in both predictors (as the
# Salamanders model), "crossed" different ones
DESIGNS = {"same": ("y ~ x + (1 | gc)", "~ x + (1 | gc)"),
           "crossed": ("y ~ x + (1 | gc)", "~ x + (1 | gz)")}
_FITS: dict = {}


def _sim(seed: int, family: str = "poisson", design: str = "crossed") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, Gc, Gz = 96, 8, 6
    gc, gz = np.repeat(np.arange(Gc), n // Gc), rng.integers(0, Gz, n)
    x = np.round(rng.normal(size=n), 3)
    eta = 0.9 + 0.5 * x + rng.normal(0, 0.5, Gc)[gc]
    etaz = -0.4 + 0.7 * x + rng.normal(0, 1.2, max(Gc, Gz))[gc if design == "same" else gz]
    mu = np.exp(eta)
    y = (rng.poisson(mu) if family == "poisson"
         else rng.negative_binomial(2.0, 2.0 / (2.0 + mu)))
    y = np.where(rng.uniform(size=n) < special.expit(etaz), 0, y)
    return pd.DataFrame({"y": y.astype(float), "x": x,
                         "gc": pd.Categorical([f"c{i}" for i in gc]),
                         "gz": pd.Categorical([f"z{i}" for i in gz])})


def _fit(design: str, seed: int, family: str = "poisson"):
    key = (design, seed, family)
    if key not in _FITS:
        formula, zi = DESIGNS[design]
        data = _sim(seed, family, design)
        _FITS[key] = (mp.glmer(formula, data, family=family, ziformula=zi), data)
    return _FITS[key]


def _predictors(fit):
    """Fixed parts of η and η_zi per row, and the codes of the cond / zi grouping factors."""
    spec = fit.spec
    eta = spec.X @ fit.beta
    eta_zi = spec.aux_designs["X_zi"] @ fit.phi[:fit.family.n_zi]
    return eta, eta_zi, spec.terms[0].codes, spec.zi_terms[0].codes


def _marginal_moments(fit, nodes: int = 60):
    """Per row E(y) and P(y = 0) of the zero-inflated Poisson, b_c ~ N(0, θ_c²) and
    b_z ~ N(0, θ_z²) independent, by Gauss–Hermite quadrature."""
    eta, eta_zi, _, _ = _predictors(fit)
    v, w = hermegauss(nodes)
    w = w / w.sum()
    sc, sz = fit.theta[0], fit.zi_theta[0]
    pi = special.expit(eta_zi[:, None] + sz * v[None, :]) @ w          # E π
    pois0 = np.exp(-np.exp(eta[:, None] + sc * v[None, :])) @ w       # E e^{−μ}
    mean = (1 - pi) * np.exp(eta + sc ** 2 / 2)
    return mean, pi + (1 - pi) * pois0


def _zero_count_variance(fit, sz: float, nodes: int = 40) -> np.ndarray:
    """Var(number of zeros in group g) per level of the (shared) grouping factor, by 2-D
    quadrature over (b_c, b_z) of that group (rows independent given them)."""
    eta, eta_zi, codes, _ = _predictors(fit)
    v, w = hermegauss(nodes)
    w = w / w.sum()
    sc = fit.theta[0]
    out = []
    for g in range(fit.spec.terms[0].n_levels):
        rows = codes == g
        mu = np.exp(eta[rows, None, None] + sc * v[None, :, None])
        pi = special.expit(eta_zi[rows, None, None] + sz * v[None, None, :])
        p0 = pi + (1 - pi) * np.exp(-mu)                     # rows × b_c × b_z
        W = w[:, None] * w[None, :]
        s1 = np.sum(p0, axis=0)
        within = np.sum(np.sum(p0 * (1 - p0), axis=0) * W)
        between = np.sum(s1 ** 2 * W) - np.sum(s1 * W) ** 2
        out.append(within + between)
    return np.array(out)


@pytest.mark.parametrize("design", ["same", "crossed"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulated_mean_and_zero_share_are_the_marginal_moments(design, seed):
    fit, _ = _fit(design, seed)
    nsim = 4000
    Y = fit.simulate(nsim=nsim, seed=seed + 10)
    assert Y.shape == (fit.spec.n, nsim) and np.all(Y >= 0) and np.all(Y == np.round(Y))
    mean, p0 = _marginal_moments(fit)
    se_mean = Y.std(axis=1) / np.sqrt(nsim)
    zero = (Y == 0).mean(axis=1)
    se_zero = np.sqrt(p0 * (1 - p0) / nsim)
    assert np.all(np.abs(Y.mean(axis=1) - mean) <= 5 * se_mean)
    assert np.all(np.abs(zero - p0) <= 5 * se_zero)
    # the zero part's random effect matters: without it (θ_z = 0) the zero share is another
    eta, eta_zi, _, _ = _predictors(fit)
    p0_fixed = special.expit(eta_zi) + (1 - special.expit(eta_zi)) * np.exp(
        -np.exp(eta + fit.theta[0] ** 2 / 2))
    assert np.max(np.abs(zero - p0_fixed) / se_zero) > 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zero_counts_of_a_group_vary_as_the_model_says(seed):
    """New b_zi per replicate, with the fitted SD: the between-replicate variance of a group's
    number of zeros (what a b_zi held at its mode, or a wrong θ_z, gets wrong)."""
    fit, _ = _fit("same", seed)
    nsim = 4000
    Y = simulate_counts(fit.record, nsim=nsim, seed=seed + 20)
    codes = fit.spec.terms[0].codes
    counts = np.array([(Y[codes == g] == 0).sum(axis=0) for g in range(codes.max() + 1)])
    dev2 = (counts - counts.mean(axis=1, keepdims=True)) ** 2
    emp, se = dev2.mean(axis=1), dev2.std(axis=1) / np.sqrt(nsim)
    want = _zero_count_variance(fit, fit.zi_theta[0])
    assert np.all(np.abs(emp - want) <= 5 * se)
    assert np.mean((emp - _zero_count_variance(fit, 0.0)) / se) > 5


@pytest.mark.parametrize("seed", [0, 1])
def test_simulation_given_the_modes_uses_the_zi_modes(seed):
    fit, _ = _fit("crossed", seed)
    nsim = 4000
    Y = simulate_counts(fit.record, nsim=nsim, seed=seed + 30, include_random=True)
    pi = special.expit(fit.record.eta_zi)
    p0 = pi + (1 - pi) * np.exp(-fit.record.mu)
    rel_close(pi, fit.predict(type="zprob").to_numpy(), 1e-10)
    zero = (Y == 0).mean(axis=1)
    assert np.all(np.abs(zero - p0) <= 5 * np.sqrt(p0 * (1 - p0) / nsim))
    rel_close(Y.mean(axis=1), (1 - pi) * fit.record.mu, 0,
              5 * Y.std(axis=1).max() / np.sqrt(nsim))


@pytest.mark.parametrize("design,seed,family", [("same", 3, "poisson"),
                                                ("crossed", 4, "poisson"),
                                                ("crossed", 5, "nbinom2")])
def test_bootstrap_replicates_are_fresh_fits(design, seed, family):
    fit, data = _fit(design, seed, family)
    reps = glmm_bootstrap_params(fit.record, nsim=3, seed=seed)
    assert list(reps.columns[:2]) == ["sd_(Intercept)|gc",
                                      f"zi~sd_(Intercept)|{fit.spec.zi_terms[0].group}"]
    assert list(reps.columns[2:]) == (fit.family.phi_names() + fit.spec.fe_names)
    Y = simulate_counts(fit.record, nsim=3, seed=seed)       # the same draws
    formula, zi = DESIGNS[design]
    for j in range(3):
        fresh = mp.glmer(formula, data.assign(y=Y[:, j]), family=family, ziformula=zi)
        want = np.concatenate([fresh.theta, fresh.zi_theta, fresh.phi, fresh.beta])
        rel_close(reps.iloc[j].to_numpy(), want, 1e-4, 1e-4)
    ci = fit.confint(method="boot", nsim=3, seed=seed, progress=False)
    assert list(ci.index) == list(reps.columns)


def _case_measures(fit, fresh):
    """Cook's D, MDFFITS, COVTRACE, COVRATIO, RVC (cond then zi variance) of a deletion."""
    d = fit.beta - fresh.beta
    V, Vi, p = fit.vcov_beta, fresh.vcov_beta, len(d)
    vc = np.array([fit.theta[0] ** 2, fit.zi_theta[0] ** 2])
    vci = np.array([fresh.theta[0] ** 2, fresh.zi_theta[0] ** 2])
    return [d @ np.linalg.solve(V, d) / p, d @ np.linalg.solve(Vi, d) / p,
            abs(np.trace(np.linalg.solve(V, Vi)) - p), np.linalg.det(Vi) / np.linalg.det(V),
            *(vci / vc - 1)]


@pytest.mark.parametrize("level", ["gc", "gz"])
def test_influence_is_case_deletion_refits(level):
    fit, data = _fit("crossed", 6)
    frame = fit.influence(level)
    zi_group = fit.spec.zi_terms[0].group
    assert list(frame.columns) == ["cooks_d", "mdffits", "covtrace", "covratio",
                                   "rvc_gc.var((Intercept))",
                                   f"rvc_zi~{zi_group}.var((Intercept))"]
    assert np.all(np.isfinite(frame.to_numpy())) and not fit.record.is_singular
    formula, zi = DESIGNS["crossed"]
    for label in frame.index[:3]:
        keep = (data[level] != label).to_numpy()
        fresh = mp.glmer(formula, data[keep], family="poisson", ziformula=zi)
        rel_close(frame.loc[label].to_numpy(), _case_measures(fit, fresh), 2e-3, 1e-6)


def test_update_adds_and_removes_zi_random_terms_as_fresh_fits():
    data = _sim(9)
    formula, zi = DESIGNS["crossed"]
    plain = mp.glmer(formula, data, family="poisson", ziformula="~ x")
    with_re = mp.glmer(formula, data, family="poisson", ziformula=zi)
    added = plain.update(". ~ .", ziformula=zi)
    assert added.loglik == pytest.approx(with_re.loglik, abs=1e-8)
    rel_close(added.zi_theta, with_re.zi_theta, 1e-6, 1e-8)
    assert not with_re.record.is_singular
    removed = with_re.update(". ~ .", ziformula="~ x")
    assert not removed.spec.zi_terms
    assert removed.loglik == pytest.approx(plain.loglik, abs=1e-8)
    fewer = with_re.update(". ~ . - x")
    fresh = mp.glmer("y ~ (1 | gc)", data, family="poisson", ziformula=zi)
    assert fewer.loglik == pytest.approx(fresh.loglik, abs=1e-8)
    again = with_re.refit(with_re.spec.y)
    assert again.loglik == pytest.approx(with_re.loglik, abs=1e-6)
    rel_close(again.zi_theta, with_re.zi_theta, 1e-4, 1e-4)


def test_model_objective_is_the_fits_deviance():
    """``mp.Model(...).objective()`` of a zi random-term model is the joint (b_cond, b_zi)
    Laplace deviance the fit minimised (it raised NotImplementedError before): at the optimum
    its value is −2ℓ̂ and its gradient vanishes; nAGQ ≠ 1 is refused by name."""
    fit, data = _fit("crossed", 1)
    formula, zi = DESIGNS["crossed"]
    model = mp.Model(formula, data, mp.families.get_family("poisson", laplace=True)[0],
                     ziformula=zi)
    value, grad = model.objective()(fit.record.opt.x)
    assert value == pytest.approx(-2 * fit.loglik, abs=1e-6)
    assert np.max(np.abs(grad)) < 1e-2
    with pytest.raises(mp.ModelSpecError, match="nAGQ=2"):
        model.objective(nAGQ=2)
