r"""GLMM and CLMM → ``pm.Model``: the likelihood is the family's own PyTensor log-density.

The observed node is a ``pm.CustomDist`` whose ``logp`` is ``family.loglik`` — the expression the
Laplace fit integrates — so the frequentist and Bayesian paths share one model definition; its
``random`` is the family's NumPy simulator (posterior predictive checks). Random effects are
non-centred exactly as for the LMM (:mod:`mixedppl.bayes.pymc`), so the pointwise log-likelihood is
conditional on them (as bambi and brms), for LOO / WAIC.

Default priors: :func:`mixedppl.bayes.priors.default_priors` (weakly informative on the link
scale; dispersion φ ~ LogNormal(log φ₀, 2), φ₀ the moment estimate of the model without random
effects; cumulative-link thresholds α₁ < … < α_{K−1} ~ Normal(α⁰_j, 5), ordered
(``"flexible"``), α⁰_j the link quantiles of the observed cumulative proportions; for
``"equidistant"``, α₁ ~ Normal(α⁰₁, 5) and the spacing ~ HalfNormal(5)).

Zero-inflated, hurdle and dispersion-formula models (glmmTMB's ``ziformula`` / ``dispformula``,
:mod:`mixedppl.families.zi_disp`) add free ``zi`` (γ, coords ``zi_coef``) and ``disp`` (δ on
log φ, coords ``disp_coef``) in place of ``dispersion``; their likelihood is the same
``ZIDispFamily.loglik`` the Laplace fit integrates. Random terms in the ziformula
(``ziformula="~ mined + (1 | site)"``, :mod:`mixedppl.graph.laplace_zire`) get their own
non-centred random effects with the conditional terms' priors and parameterisation, named with
the prefix ``zi_`` (free ``z_zi_site``, ``sd_zi_site``; deterministic ``b_zi_site``; coords
``zi_site__level``, ``zi_site__term``), and enter
:math:`\eta^{zi} = X_{zi}\gamma + Z_{zi} b_{zi}`.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from ..core.compile import configure_pytensor
from ..families.glm import shaped
from ..core.exceptions import ModelSpecError
from ..graph.joint import linear_predictor, random_part
from .priors import resolve_priors
from .pymc import fixed_effects, labelled_terms, model_coords, random_effects

__all__ = ["glmm_to_pymc", "clmm_to_pymc"]


def glmm_to_pymc(spec, family, link, y, ntr, priors: dict | None = None):
    """The GLMM as a PyMC model: non-centred random effects, the family's log-density.

    Returns
    -------
    (pymc.Model, dict)
        The model (free ``beta``, ``z_<g>``, ``sd_<g>``, ``cpc_<g>`` for vector terms,
        ``dispersion`` where the family has one, ``zi`` / ``disp`` for a zero-inflated /
        dispersion-formula model and ``z_zi_<g>``, ``sd_zi_<g>`` for the ziformula's random
        terms; deterministics ``b_<g>``, ``b_zi_<g>`` and ``corr_<g>``; observed ``y``) and the
        priors used.

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.glmm_api import glmm_model
    >>> parts = glmm_model("cbind(incidence, size - incidence) ~ period + (1|herd)",
    ...                    mp.datasets.load("cbpp"), "binomial")
    >>> model, used = glmm_to_pymc(*parts)
    >>> sorted(v.name for v in model.free_RVs)
    ['beta', 'sd_herd', 'z_herd']
    """
    import pymc as pm  # imported when a model is built: import mixedppl stays light

    _check_zi_labels(spec)
    configure_pytensor()
    pri = resolve_priors(spec, priors)
    ntr = np.asarray(ntr, float)
    coords = model_coords(spec)
    if getattr(family, "aux_designs", ()):
        coords.update(_part_coords(family))
    with pm.Model(coords=coords) as model:
        eta = linear_predictor(spec, fixed_effects(spec, pri), random_effects(spec, pri))
        if getattr(family, "aux_designs", ()):
            _zi_disp_likelihood(spec, family, link, eta, y, ntr, pri,
                                random_effects(spec, pri, "zi"))
        elif family.dispersion is None:
            def logp(value, eta_):
                return family.loglik(value, eta_, ntr, pt.zeros(0), link)

            def random(eta_, rng=None, size=None):
                return family.simulate(rng, eta_, ntr, None, link)

            pm.CustomDist("y", eta, logp=logp, random=random, observed=y, dims="obs")
        elif getattr(family, "shape", None) is None:
            disp = pri["dispersion"].rv("dispersion")

            def logp(value, eta_, d):
                return family.logp(value, link.linkinv(eta_), ntr, d)

            def random(eta_, d, rng=None, size=None):
                return family.simulate(rng, eta_, ntr, np.asarray(d, float), link)

            pm.CustomDist("y", eta, disp, logp=logp, random=random, observed=y, dims="obs")
        else:   # a shape parameter beside φ (Tweedie power, t df), on its natural scale
            disp = pri["dispersion"].rv("dispersion")
            shape = pri["shape"].rv(family.shape.name)

            def logp(value, eta_, d, s):
                return family.logp(value, link.linkinv(eta_), ntr, d, s)

            def random(eta_, d, s, rng=None, size=None):
                return family.simulate(rng, eta_, ntr, shaped(np.asarray(d, float), float(s)),
                                       link)

            pm.CustomDist("y", eta, disp, shape, logp=logp, random=random, observed=y,
                          dims="obs")
    return model, pri


def _part_coords(family) -> dict:
    """Coords ``zi_coef`` and ``disp_coef``: the columns of the zero-inflation and dispersion designs."""
    out = {}
    if family.zi_names:
        out["zi_coef"] = list(family.zi_names)
    if family.disp_names:
        out["disp_coef"] = list(family.disp_names)
    return out


def _check_zi_labels(spec) -> None:
    """The ziformula's random terms are named ``zi_<group>``: refuse a conditional grouping
    factor of that very name (the two would share their PyMC names)."""
    cond = {label for _, label, _ in labelled_terms(spec, "cond")}
    clash = [label for _, label, _ in labelled_terms(spec, "zi") if label in cond]
    if clash:
        raise ModelSpecError(f"the ziformula's random terms are named {clash} in the PyMC model, "
                             f"which are also grouping factors of the formula "
                             f"{spec.formula!r}: rename the column(s) {clash} to sample it")


def _zi_disp_likelihood(spec, family, link, eta, y, ntr, pri, zi_b=()) -> None:
    r"""The observed ``y`` of a zero-inflated / hurdle / dispersion-formula model.

    Free ``zi`` (γ, logit scale) and ``disp`` (δ, log φ) with the family's default priors
    (:meth:`~mixedppl.families.zi_disp.ZIDispFamily.prior_defaults`); the row predictors
    :math:`\eta^{zi} = X_{zi}\gamma + Z_{zi} b_{zi}` (``zi_b``: the ziformula's random effects,
    :func:`~mixedppl.bayes.pymc.random_effects` of ``"zi"``; none without them) and
    :math:`\log\phi = X_{disp}\delta` are the
    ``CustomDist``'s row parameters, and its ``logp`` is the family's own
    :meth:`~mixedppl.families.zi_disp.ZIDispFamily.loglik` (the Laplace fit's expression),
    given those rows as one-column designs with unit coefficients.
    """
    import pymc as pm

    n = spec.n
    rows = family.row_parts()
    zeros = pt.zeros(n)
    if family.zi_names:
        gamma = pri["zi"].rv("zi", dims="zi_coef")
        eta_zi = (pt.as_tensor(np.asarray(spec.aux_designs["X_zi"], float)) @ gamma
                  + random_part(getattr(spec, "zi_terms", ()), zi_b))
    else:
        eta_zi = zeros
    if family.disp_names:
        delta = pri["disp"].rv("disp", dims="disp_coef")
        log_disp = pt.as_tensor(np.asarray(spec.aux_designs["X_disp"], float)) @ delta
    else:
        log_disp = zeros
    k = rows.n_phi

    def logp(value, eta_, ezi, ld):
        return rows.loglik(value, eta_, ntr, pt.ones(k), link, X_zi=ezi[:, None],
                           X_disp=ld[:, None])

    def random(eta_, ezi, ld, rng=None, size=None):
        ezi, ld = np.asarray(ezi, float), np.asarray(ld, float)
        zprob = 1.0 / (1.0 + np.exp(-ezi)) if family.zi_names else None
        disp = np.exp(ld) if family.disp_names else None
        return family.simulate(rng, np.asarray(eta_, float), ntr, disp, link, zprob=zprob)

    pm.CustomDist("y", eta, eta_zi, log_disp, logp=logp, random=random, observed=y, dims="obs")


def clmm_to_pymc(spec, family, link, y, weights, levels, priors: dict | None = None):
    """The CLMM as a PyMC model: ordered thresholds, non-centred random effects.

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.clmm_api import clmm_model
    >>> parts = clmm_model("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))
    >>> model, used = clmm_to_pymc(*parts)
    >>> sorted(v.name for v in model.free_RVs)
    ['beta', 'sd_judge', 'thresholds', 'z_judge']
    """
    import pymc as pm  # imported when a model is built: import mixedppl stays light

    configure_pytensor()
    pri = resolve_priors(spec, priors)
    w = np.asarray(weights, float)
    coords = model_coords(spec)
    coords["threshold"] = [f"{a}|{b}" for a, b in zip(levels[:-1], levels[1:])]
    K = family.K
    with pm.Model(coords=coords) as model:
        eta = linear_predictor(spec, fixed_effects(spec, pri), random_effects(spec, pri))
        if family.threshold == "flexible":
            mu = np.broadcast_to(np.asarray(pri["thresholds"].mu, float), (K - 1,))
            if not np.all(np.diff(mu) > 0):
                raise ValueError("the thresholds prior must have increasing means (it is the "
                                 "ordered sampler's starting point), e.g. "
                                 f"mp.priors.Normal({np.round(np.linspace(-2, 2, K - 1), 2).tolist()}"
                                 ", 5)")
            alpha = pri["thresholds"].rv("thresholds", dims="threshold",
                                         transform=pm.distributions.transforms.ordered)
        else:
            first = pri["thresholds"].rv("threshold_1")
            spacing = pm.HalfNormal("spacing", 5.0)
            alpha = pm.Deterministic("thresholds", first + spacing * pt.arange(K - 1),
                                     dims="threshold")

        # the (k) core dimension may arrive broadcast to one copy per row: the thresholds are shared
        def logp(value, eta_, a):
            return family.loglik_alpha(value, eta_, w, a.reshape((-1, K - 1))[0], link)

        def random(eta_, a, rng=None, size=None):
            return family.simulate(rng, eta_, w, np.asarray(a).reshape(-1, K - 1)[0], link)

        pm.CustomDist("y", eta, alpha, logp=logp, random=random, signature="(),(k)->()",
                      observed=y, dims="obs")
    return model, pri
