"""glmmTMB's families and links (issue 15) against glmmTMB 1.1.5 and lme4.

References: ``tests/reference/glmmtmb_<case>.json``, written by
``tests/reference/glmmtmb_families.R``
(the R call is in each file). The glmmTMB fits are tight refits (``rel.tol = 1e-12``); the Poisson
links are lme4's ``glmer`` (our Poisson row is lme4's, with IRLS weights), at ``tolPwrss = 1e-12``.
First the objective at R's estimates (no optimiser involved), then the fit.
"""

import numpy as np
import pytest

import mixedppl as mp
from conftest import reference, rel_close
from mixedppl.core.exceptions import ModelSpecError
from mixedppl.families import get_family


def _sleep():
    d = mp.datasets.load("sleepstudy")
    d["r"] = d["Reaction"] / 100
    return d


def _grouse_pos():
    d = mp.datasets.load("grouseticks")
    return d[d["TICKS"] > 0]


_DATA = {"sleepstudy": _sleep, "grouseticks": lambda: mp.datasets.load("grouseticks"),
         "grouse_pos": _grouse_pos,
         "cbpp": lambda: mp.datasets.load("cbpp")}

# case: (formula, data, family, link)
CASES = {
    "gaussian_identity": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", "gaussian", None),
    "gaussian_log": ("Reaction ~ Days + (1 | Subject)", "sleepstudy", "gaussian", "log"),
    "gamma_inverse": ("r ~ Days + (1 | Subject)", "sleepstudy", "gamma", "inverse"),
    "gamma_identity": ("Reaction ~ Days + (1 | Subject)", "sleepstudy", "gamma", "identity"),
    "nbinom1_grouse": ("TICKS ~ YEAR + (1 | LOCATION)", "grouseticks", "nbinom1", None),
    "poisson_sqrt_cbpp": ("size ~ period + (1 | herd)", "cbpp", "poisson", "sqrt"),
    "poisson_identity_cbpp": ("size ~ period + (1 | herd)", "cbpp", "poisson", "identity"),
    "truncated_poisson_grouse": ("TICKS ~ YEAR + (1 | LOCATION)", "grouse_pos",
                                 "truncated_poisson", None),
    "truncated_nbinom2_grouse": ("TICKS ~ YEAR + (1 | LOCATION)", "grouse_pos",
                                 "truncated_nbinom2", None),
    "betabinomial_cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp",
                          "betabinomial", None),
}


def _r_sds(ref):
    """R's SDs and correlations of the (single) random-effect term."""
    if ref["package"] == "lme4":
        return np.atleast_1d(np.asarray(ref["theta"], float)), np.zeros(0)
    (sd,), cor = ref["re_sd"].values(), list(ref["re_cor"].values())[0]
    return np.atleast_1d(np.asarray(sd, float)), np.atleast_1d(np.asarray(cor, float))


def _r_parameters(ref, family):
    """R's estimates as our optimiser's vector (θ: the lower Cholesky factor of the term's
    covariance, column-major; β; log φ)."""
    sd, cor = _r_sds(ref)
    if len(sd) == 1:
        theta = sd
    else:  # 2 × 2
        S = np.array([[sd[0] ** 2, cor[0] * sd[0] * sd[1]], [cor[0] * sd[0] * sd[1], sd[1] ** 2]])
        L = np.linalg.cholesky(S)
        theta = np.array([L[0, 0], L[1, 0], L[1, 1]])
    phi = ([] if "disp" not in ref else
           [ref["disp"]["estimate"] / family.tmb_dispersion([1.0])[0]])
    return np.concatenate([theta, ref["fixef"]["estimate"], phi])


def _model(case):
    formula, data, family, link = CASES[case]
    return mp.Model(formula, _DATA[data](), get_family(family, link, laplace=True)[0], link)


@pytest.fixture(scope="module")
def fits():
    return {case: _model(case).fit() for case in CASES}


@pytest.mark.parametrize("case", list(CASES))
def test_objective_at_r_estimates_is_rs_loglik(case):
    ref = reference(f"glmmtmb_{case}")
    model = _model(case)
    value, _ = model.objective(nAGQ=1)(_r_parameters(ref, model.family))
    assert -value / 2 == pytest.approx(ref["logLik"], abs=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_fit_matches_r(fits, case):
    fit, ref = fits[case], reference(f"glmmtmb_{case}")
    assert fit.converged
    assert fit.family.name == CASES[case][2] and fit.link.name == ref["link"]
    fe = np.asarray(ref["fixef"]["estimate"])
    assert list(fit.fe_params.index) == ref["fixef"]["names"]
    assert np.all(np.abs(fit.fe_params.to_numpy() - fe) <= np.maximum(1e-4 * np.abs(fe), 1e-4))
    rel_close(fit.fe_bse, ref["fixef"]["se"], 1e-2)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    sd, cor = _r_sds(ref)
    cov = fit.covs[0]
    if np.all(sd < 1e-4):   # R at the boundary (betabinomial_cbpp: 1.4e-5): ours at it too
        assert np.all(np.sqrt(np.diag(cov)) < 1e-3) and fit.is_singular
    else:
        rel_close(np.sqrt(np.diag(cov)), sd, 1e-3)
    if len(cor):
        r = cov[1, 0] / np.sqrt(cov[0, 0] * cov[1, 1])
        assert r == pytest.approx(cor[0], rel=1e-3)
    # glmmTMB's fitted(): the truncated mean μ/(1 − p₀) for the zero-truncated rows, μ otherwise
    fitted = fit.fitted().to_numpy()
    np.testing.assert_allclose(fitted[:10], ref["fitted_first10"], rtol=1e-3)
    np.testing.assert_allclose(fit.predict().to_numpy(), fitted, rtol=1e-12)
    if "disp" in ref:   # glmmTMB fits of families with a dispersion parameter
        assert fit.dispersion == pytest.approx(ref["sigma"], rel=1e-3)
        d = ref["disp"]["estimate"]
        assert abs(fit.disp_params.iloc[0] - d) <= max(1e-4 * abs(d), 1e-4)
        assert fit.disp_bse.iloc[0] == pytest.approx(ref["disp"]["se"], rel=1e-2)
    else:
        assert fit.dispersion is None and fit.disp_params is None


def test_gaussian_identity_glmer_is_lmer_ml(fits):
    """The Laplace approximation is exact for the Gaussian with identity link: glmer's
    Gaussian is lmer's ML fit (same β, covariance, σ and log-likelihood)."""
    glmm = fits["gaussian_identity"]
    lmm = mp.lmer("Reaction ~ Days + (Days | Subject)", _sleep(), reml=False)
    assert glmm.loglik == pytest.approx(lmm.loglik, abs=1e-6)
    np.testing.assert_allclose(glmm.fe_params, lmm.fe_params, rtol=1e-5)
    assert glmm.dispersion == pytest.approx(lmm.sigma, rel=1e-5)


def test_gaussian_is_lmer_outside_glmer():
    """``"gaussian"`` is the LMM family for lmer / Model, glmmTMB's Laplace row in glmer."""
    assert get_family("gaussian")[0].fit_kind == "lmer"
    assert get_family("gaussian", laplace=True)[0].fit_kind == "glmer"
    with pytest.raises(ModelSpecError, match="link='logit' is not available for family "
                                             "'gaussian'"):
        mp.glmer("Reaction ~ Days + (1 | Subject)", _sleep(), family="gaussian", link="logit")


@pytest.mark.parametrize("family,column,value,match", [
    ("nbinom1", "TICKS", -1.0, "negative binomial response 'TICKS' must be non-negative"),
    ("nbinom1", "TICKS", 0.5, "negative binomial response 'TICKS' must be non-negative integer"),
    ("gamma", "TICKS", 0.0, "Gamma response 'TICKS' must be positive"),
    ("gaussian", "TICKS", np.inf, "column 'TICKS' has 1 infinite value"),
    ("truncated_poisson", "TICKS", 0.0, "zero-truncated response 'TICKS' must be positive"),
    ("truncated_nbinom2", "TICKS", 2.5, "zero-truncated response 'TICKS' must be positive "
                                        "integer counts"),
])
def test_bad_responses_name_the_column(family, column, value, match):
    d = mp.datasets.load("grouseticks").assign(TICKS=lambda d: d["TICKS"] + 1.0)
    d.loc[3, column] = value
    with pytest.raises(ModelSpecError, match=match):
        mp.glmer("TICKS ~ YEAR + (1 | LOCATION)", d, family=family)


@pytest.mark.parametrize("case", ["gaussian_log", "nbinom1_grouse"])
def test_pymc_model_likelihood_is_the_familys(fits, case):
    """The Bayesian model (``Model.to_pymc``) of a new family has its likelihood: at the fit's β
    and φ, with the random effects at 0, the observed term is scipy's log-density summed."""
    pytest.importorskip("pymc")
    from scipy import stats
    fit = fits[case]
    model = _model(case).to_pymc()
    point = model.initial_point()
    assert all(np.all(point[v.name] == 0) for v in model.value_vars if v.name.startswith("z_"))
    point["beta"] = np.asarray(fit.beta)
    point["dispersion_log__"] = np.log(fit.dispersion)
    loglik = model.compile_fn(model.logp(vars=[model["y"]], sum=True), inputs=model.value_vars,
                              on_unused_input="ignore")
    mu = fit.link.linkinv_np(fit.spec.X @ np.asarray(fit.beta) + fit.spec.offset)
    y, phi = fit.spec.y, fit.dispersion
    expected = (stats.norm.logpdf(y, mu, phi) if case == "gaussian_log" else
                stats.nbinom.logpmf(y, mu / phi, 1 / (1 + phi)))
    assert float(loglik(point)) == pytest.approx(float(expected.sum()), rel=1e-10)


def test_gaussian_and_nbinom1_residuals_and_simulations(fits):
    """The rows' deviance and simulator reach the result methods: Gaussian deviance residuals
    are y − μ̂; simulated NB1 counts (new random effects, lme4's simulate) have the marginal
    mean of the fitted model."""
    g = fits["gaussian_identity"]
    np.testing.assert_allclose(g.residuals("deviance"), g.spec.y - g.fitted(), atol=1e-10)
    nb = fits["nbinom1_grouse"]
    sims = np.asarray(nb.simulate(nsim=400, seed=5))
    assert sims.min() >= 0 and np.all(sims == np.round(sims))
    # marginal mean (new random effects): E y = exp(Xβ̂ + σ̂²/2)
    eta = nb.spec.X @ np.asarray(nb.beta) + nb.spec.offset
    sd2 = float(nb.covs[0][0, 0])
    assert sims.mean() == pytest.approx(float(np.mean(np.exp(eta + sd2 / 2))), rel=0.05)


def test_truncated_rows_residuals_use_the_truncated_mean(fits):
    """Pearson residuals of a zero-truncated fit: (y − E(y | y > 0)) / sd(y | y > 0), both of the
    truncated law (brute-force sums over y = 1…2999 at each row's μ)."""
    from scipy import stats
    fit = fits["truncated_poisson_grouse"]
    mu = fit.link.linkinv_np(fit.linear_predictor())
    y = np.arange(1, 3000)[None, :]
    p = stats.poisson.pmf(y, mu[:, None])
    p /= p.sum(axis=1, keepdims=True)
    mean = (p * y).sum(axis=1)
    var = (p * y ** 2).sum(axis=1) - mean ** 2
    np.testing.assert_allclose(fit.fitted().to_numpy(), mean, rtol=1e-9)
    expected = (fit.spec.y - mean) / np.sqrt(var)
    np.testing.assert_allclose(fit.residuals("pearson").to_numpy(), expected, rtol=1e-7)
    with pytest.raises(NotImplementedError, match="truncated"):
        fit.predict(se_fit=True)
