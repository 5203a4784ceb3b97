"""glmmTMB's ``t_family()`` on sleepstudy: a ridge to the ν → ∞ plateau, and the real optimum.

References (glmmTMB 1.1.5, tight refits ``rel.tol = 1e-12``):

- ``tests/reference/glmmtmb_student_t_sleep.json`` (``tests/reference/glmmtmb_families.R``) and
  the ``default_start`` block of ``glmmtmb_student_t_sleep_starts.json``
  (``tests/reference/scripts/glmmtmb_t_sleepstudy.R``)::

      glmmTMB(Reaction ~ Days + (1 | Subject), data = sleep, family = t_family(), control = tight)

  stop at ν̂ ≈ 2.8e6, logLik −897.0393: the Gaussian ML limit. The t log-density tends to the
  Gaussian one at rate O(1/ν), so ∂ℓ/∂ψ (ψ = log ν) vanishes there and the optimiser reports
  convergence on the plateau. **This is not the maximum.**
- ``start_nu5``: the same call with ``start = list(psi = log(5), theta = log(37))`` reaches
  ν̂ = 4.539, logLik −891.2907 (5.75 higher), max |gradient| 9e-7. That is the reference here.

Our optimiser used to stop on the plateau as well (from lme4's θ start the path climbs a
ridge in (θ, ψ)); :func:`mixedppl.fit.laplace.escape_shape_plateau` now profiles the deviance at a
few ν when ψ̂ ends beyond log 1000 and restarts from the best. The proof that the interior point
is the better one does not rest on the Laplace approximation either: the exact marginal
likelihood (adaptive 1-D quadrature over each subject's intercept, scipy) is −891.17 at our
estimate and −897.04 at the plateau point (``test_exact_marginal_prefers_the_interior_optimum``).
Tolerances are the brief's: β max(1e-4·|R|, 1e-4), SD and σ 1e-3 relative, SEs 1e-2 (GLMM),
logLik 1e-3, BLUPs 2e-3·max|R|.
"""

import numpy as np
import pytest
from scipy import integrate, stats

import mixedppl as mp
from conftest import reference, rel_close

FORMULA = "Reaction ~ Days + (1 | Subject)"


@pytest.fixture(scope="module")
def sleep():
    return mp.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def fit(sleep):
    return mp.glmer(FORMULA, sleep, family="t")


def test_sleepstudy_t_is_glmmtmbs_interior_optimum(fit):
    ref = reference("glmmtmb_student_t_sleep_starts")["start_nu5"]
    assert fit.converged
    beta_r = np.asarray(ref["fixef"]["estimate"])
    np.testing.assert_array_less(np.abs(fit.fe_params.to_numpy() - beta_r),
                                 np.maximum(1e-4 * np.abs(beta_r), 1e-4))
    rel_close(fit.fe_bse.to_numpy(), ref["fixef"]["se"], 1e-2)
    rel_close(fit.varcorr["sdcor"].iloc[0], ref["re_sd"], 1e-3)
    rel_close(np.exp(fit.disp_params.iloc[0]), ref["sigma"], 1e-3)     # betad = log σ
    rel_close(fit.disp_bse.iloc[0], ref["disp"]["se"], 1e-2)
    rel_close(fit.family_params.iloc[0], ref["df"], 1e-3)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    blups = fit.random_effects["Subject"].iloc[:5, 0].to_numpy()
    r_blups = np.asarray(ref["ranef_first5"])
    assert np.max(np.abs(blups - r_blups)) <= 2e-3 * np.max(np.abs(r_blups))


def test_plateau_point_is_glmmtmbs_default_fit_and_lower(fit):
    """glmmTMB's default fit is the ν → ∞ plateau: our objective there is R's logLik (no
    optimiser involved), 5.75 below the optimum we report."""
    ref = reference("glmmtmb_student_t_sleep")
    x = np.r_[ref["re_sd"]["Subject"], ref["fixef"]["estimate"], ref["disp"]["estimate"],
              np.log(2.8e6)]
    model = mp.Model(FORMULA, fit.spec.data, mp.families.get_family("t", laplace=True)[0])
    value, _ = model.objective(nAGQ=1)(x)
    assert -value / 2 == pytest.approx(ref["logLik"], abs=1e-4)
    assert fit.loglik > ref["logLik"] + 5.0


def _exact_loglik(data, sd, beta, log_sigma, nu):
    """log ∫ Π_i t_ν(y_i − x_iβ − b; σ) N(b; 0, sd²) db per subject, by adaptive quadrature."""
    y, days = data["Reaction"].to_numpy(), data["Days"].to_numpy()
    codes = data["Subject"].astype("category").cat.codes.to_numpy()
    sigma, total = np.exp(log_sigma), 0.0
    for j in np.unique(codes):
        r = y[codes == j] - beta[0] - beta[1] * days[codes == j]
        grid = np.linspace(-8 * sd, 8 * sd, 161)
        logf = np.array([np.sum(stats.t.logpdf(r - u, nu, scale=sigma)) for u in grid]) \
            + stats.norm.logpdf(grid, scale=sd)
        shift = logf.max()
        value, _ = integrate.quad(
            lambda u: np.exp(np.sum(stats.t.logpdf(r - u, nu, scale=sigma))
                             + stats.norm.logpdf(u, scale=sd) - shift),
            -8 * sd, 8 * sd, points=[grid[np.argmax(logf)]], limit=400, epsrel=1e-10)
        total += np.log(value) + shift
    return total


def test_exact_marginal_prefers_the_interior_optimum(fit, sleep):
    """The independent proof: exact integration over the random intercepts (not the Laplace
    approximation both we and glmmTMB maximise) ranks the two points the same way."""
    ref = reference("glmmtmb_student_t_sleep")
    ours = _exact_loglik(sleep, fit.varcorr["sdcor"].iloc[0], fit.fe_params.to_numpy(),
                         fit.disp_params.iloc[0], fit.family_params.iloc[0])
    plateau = _exact_loglik(sleep, ref["re_sd"]["Subject"], np.asarray(ref["fixef"]["estimate"]),
                            ref["disp"]["estimate"], 2.8e6)
    assert plateau == pytest.approx(ref["logLik"], abs=1e-3)   # Laplace is exact at ν → ∞
    assert ours > plateau + 5.0
