r"""Responses simulated from a fitted model, as lme4's ``simulate.merMod`` (``use.u = FALSE``:
new random effects for every replicate).

LMM (:func:`simulate_responses`):

.. math:: y^* = X\hat\beta + o + \sum_k Z_k u_k + \varepsilon,\quad
          u_{k,g} \sim N(0, \hat\Sigma_k),\ \varepsilon_i \sim N(0, \hat\sigma^2 / w_i).

GLMM / CLMM (:func:`simulate_counts`, :func:`simulate_laplace`): the same new random effects
(:math:`\hat\Sigma_k = T_kT_k^\top`, no residual scale), :math:`\eta^* = X\hat\beta + o + Zu`,
and :math:`y^*_i \sim p(y \mid \eta^*_i, \hat\phi)` drawn by the family's simulator (a row of
:data:`mixedppl.families.glm.FAMILIES`, or the cumulative family's category draw given the
thresholds α̂).

A zero-inflated / hurdle model whose ziformula has random terms (``spec.zi_terms``, as
glmmTMB's ``simulate``): new :math:`u^{zi}_{k,g} \sim N(0, \hat\Sigma^{zi}_k)` as well, drawn
independently of the conditional ones (their covariance is block-diagonal, as in the fit),
:math:`\eta^{zi*} = X_{zi}\hat\gamma + Z_{zi}u^{zi}`, and the structural zero of row i with
probability :math:`\operatorname{logit}^{-1}(\eta^{zi*}_i)`; conditioning on the fit's modes
(``include_random=True``) uses :math:`\hat b_{zi}` there.
"""

from __future__ import annotations

import numpy as np

from ..fit.records import LaplaceFit, LMMFit
from ..graph.linear_predictor import fitted_eta
from ..spec.reterm import relative_factors

__all__ = ["simulate_responses", "simulate_counts", "simulate_laplace", "natural_parameters",
           "counts_to_response"]


def _check_nsim(nsim) -> int:
    if int(nsim) != nsim or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, got {nsim!r}")
    return int(nsim)


def _new_random_part(terms, n: int, theta: np.ndarray, sd_scale: float, nsim: int,
                     rng: np.random.Generator) -> np.ndarray:
    """(n, nsim) Σ_k Z_k u_k with new u_{k,g} ~ N(0, s² T_k T_kᵀ), s = ``sd_scale``, over
    ``terms`` (θ in lme4's layout, term after term)."""
    out = np.zeros((n, nsim))
    for t, T in zip(terms, relative_factors(terms, theta)):
        u = rng.standard_normal((nsim, t.n_levels, t.n_cols)) @ (sd_scale * T).T
        out += np.einsum("ij,sij->is", t.z, u[:, t.codes, :])
    return out


def _modes_part(terms, b) -> np.ndarray:
    """Σ_k Z_k b̂_k on the fitted rows (the conditional modes of ``terms``)."""
    return sum(np.einsum("ij,ij->i", t.z, bk[t.codes]) for t, bk in zip(terms, b))


def simulate_responses(record: LMMFit, nsim: int = 1, seed=None) -> np.ndarray:
    """(n, nsim) array of new responses from a fitted LMM (see the module docstring).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> simulate_responses(fit.record, nsim=2, seed=1).shape
    (180, 2)
    """
    nsim = _check_nsim(nsim)
    rng = np.random.default_rng(seed)
    spec = record.spec
    mean = fitted_eta(spec, record.beta, record.b, include_random=False)
    y = mean[:, None] + _new_random_part(spec.terms, spec.n, record.theta, record.sigma,
                                          nsim, rng)
    y += rng.standard_normal((spec.n, nsim)) * (record.sigma / np.sqrt(spec.weights))[:, None]
    return y


def natural_parameters(record: LaplaceFit):
    """What the family's simulator takes besides η: the thresholds α̂ of a cumulative model,
    the dispersion exp(φ̂) of a family with one, else None."""
    if len(record.alpha):
        return np.asarray(record.alpha)
    if record.spec.aux_designs:   # zero-inflation / dispersion formulas: φ per row
        return record.family.row_dispersion(record.phi, record.spec.aux_designs)
    if len(record.phi):              # a GLM row's φ (with the Tweedie / t shape parameter)
        row = getattr(record.family, "row_dispersion", None)
        return float(np.exp(record.phi[0])) if row is None else row(record.phi, {})
    return None


def _zero_probs(record: LaplaceFit, nsim: int, include_random: bool,
                rng: np.random.Generator) -> list[dict]:
    """``{"zprob": π per row}`` per replicate for a model with a zero-inflation / hurdle part
    (one shared dict without random terms in the ziformula), else ``{}`` per replicate.

    With ``spec.zi_terms``: π from η_zi = X_zi γ̂ + Z_zi b_zi, b_zi new per replicate (drawn after
    the conditional random effects) or the fit's modes (``include_random``)."""
    spec = record.spec
    if not spec.aux_designs:
        return [{}] * nsim
    terms = spec.zi_terms
    if not terms:
        return [{"zprob": record.family.zero_prob(record.phi, spec.aux_designs)}] * nsim
    if include_random:
        zi_re = np.repeat(_modes_part(terms, record.zi_b)[:, None], nsim, axis=1)
    else:
        zi_re = _new_random_part(terms, spec.n, record.zi_theta, 1.0, nsim, rng)
    return [{"zprob": record.family.zero_prob(record.phi, {**spec.aux_designs,
                                                           "zi_re": zi_re[:, s]})}
            for s in range(nsim)]


def simulate_counts(record: LaplaceFit, nsim: int = 1, seed=None,
                    include_random: bool = False) -> np.ndarray:
    """(n, nsim) new responses in the units the Laplace graphs take (``record.counts``:
    successes of the binomial, counts, category codes 0 … K − 1).

    ``include_random=False`` (lme4's ``use.u = FALSE``) draws new random effects;
    ``include_random=True`` conditions on the fit's modes b̂ (``use.u = TRUE``); both apply
    to the ziformula's random terms too (module docstring).

    Examples
    --------
    >>> import mixedppl as mp
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"))
    >>> Y = simulate_counts(g.record, nsim=3, seed=1)
    >>> Y.shape, bool((Y <= g.record.trials[:, None]).all())
    ((56, 3), True)
    """
    nsim = _check_nsim(nsim)
    rng = np.random.default_rng(seed)
    spec = record.spec
    eta = fitted_eta(spec, record.beta, record.b, include_random=include_random)
    eta = np.repeat(eta[:, None], nsim, axis=1)
    if not include_random:
        eta = eta + _new_random_part(spec.terms, spec.n, record.theta, 1.0, nsim, rng)
    params, zeros = natural_parameters(record), _zero_probs(record, nsim, include_random, rng)
    out = np.empty((spec.n, nsim))
    for s in range(nsim):
        out[:, s] = record.family.simulate(rng, eta[:, s], record.trials, params, record.link,
                                           **zeros[s])
    return out


def counts_to_response(record: LaplaceFit, counts: np.ndarray) -> np.ndarray:
    """Counts (:func:`simulate_counts`) on the scale of ``spec.y``, what ``refit`` takes: the
    proportion successes / trials for a family with trials (0 where there are none), else
    unchanged."""
    counts = np.asarray(counts, float)
    if not record.family.trials:
        return counts
    n = np.asarray(record.trials, float).reshape((-1,) + (1,) * (counts.ndim - 1))
    return np.divide(counts, n, out=np.zeros_like(counts), where=n > 0)


def simulate_laplace(record: LaplaceFit, nsim: int = 1, seed=None) -> np.ndarray:
    """(n, nsim) new responses from a GLMM / CLMM on the scale of ``spec.y`` (proportions for a
    binomial, counts, category codes), new random effects as lme4's ``simulate``.

    Examples
    --------
    >>> import mixedppl as mp
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"))
    >>> Y = simulate_laplace(g.record, nsim=2, seed=1)
    >>> Y.shape, bool(((Y >= 0) & (Y <= 1)).all())
    ((56, 2), True)
    """
    return counts_to_response(record, simulate_counts(record, nsim, seed))
