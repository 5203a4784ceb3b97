"""``glmer``: generalized linear mixed models by lme4's Laplace approximation.

Responses, as lme4's ``glmer``: for the binomial, 0/1 (or logical), a factor (a pandas
Categorical: its first category occurring in the data is failure, every other one success),
``cbind(successes, failures)`` (trials = successes + failures), or proportions with ``weights`` =
number of trials; for the Poisson, non-negative integer counts (``offset(log(exposure))`` in the
formula or ``offset=``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .core.control import Control, as_control
from .core.exceptions import ModelSpecError
from .families import GLMFamily, ResponseReader, get_family
from .spec.frame import check_arguments
from .spec.model_spec import build_spec

__all__ = ["glmer", "glmm_model"]

def glmm_model(formula: str, data: pd.DataFrame, family="binomial", link=None, weights=None,
               offset=None, control: Control | dict | None = None, na_action: str = "omit"):
    """Parse and check a GLMM: ``(spec, family, link, counts, trials)``.

    lme4's glmer checks apply with ``allow.n = TRUE``: a grouping factor may have as many levels,
    and a term as many random effects, as there are observations, not more (the latter as
    ``control.check_nobs_vs_nRE`` says). ``na_action`` is as in :func:`glmer`.

    Examples
    --------
    >>> import mixedppl as mp
    >>> cbpp = mp.datasets.load("cbpp")
    >>> f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    >>> spec, fam, link, y, n = glmm_model(f, cbpp, "binomial")
    >>> int(y.sum()), int(n.sum()), link.name
    (99, 842, 'logit')
    """
    check_arguments(formula, data, "glmer")
    control = as_control(control, "glmer")
    fam, lnk = get_family(family, link)
    if not isinstance(fam, GLMFamily):
        raise ModelSpecError(f"family={family!r} is a linear mixed model: fit it with mp.lmer "
                             "(or mp.Model(..., family='gaussian'))")
    reader = ResponseReader(fam.read_response)
    spec = build_spec(formula, data, weights=weights, offset=offset, response=reader,
                      allow_n=True, nobs_vs_nRE=control.nobs_vs_nRE("glmer"),
                      na_action=na_action)
    w = np.asarray(spec.weights, float)
    column = reader.last.expr or spec.response_name
    trials = reader.last.trials
    y, ntr = fam.counts(spec.y, trials, w, column)
    fam.check(y, ntr, column)
    used = spec.y[w > 0]
    # As lme4's check.response.not.const; all zeros / all successes get check_glmm_data's message.
    if (trials is None and len(used) and np.ptp(used) == 0 and used[0] != 0
            and not (fam.trials and used[0] == 1)):
        raise ModelSpecError(f"response {column!r} is constant (every used row is {used[0]:g}): "
                             "there is no variation to model; check the column and the rows kept")
    return spec, fam, lnk, y, ntr


def glmer(formula: str, data: pd.DataFrame, family="binomial", link: str | None = None,
          nAGQ: int = 1, weights=None, offset=None, control: Control | dict | None = None,
          na_action: str = "omit"):
    """Fit a generalized linear mixed model by maximum likelihood (Laplace approximation).

    Maximises lme4's Laplace approximation to the marginal likelihood,
    ``−2 ℓ(θ, β) ≈ −2 log p(y | û) + ‖û‖² + log|ΛᵀZᵀWZΛ + I|`` (Bates et al. 2015, J. Stat. Softw.
    67(1)), jointly over (θ, β) with exact gradients.

    Parameters
    ----------
    formula : str
        lme4 formula; binomial responses may be ``cbind(successes, failures)``.
    data : DataFrame
    family : {"binomial", "poisson", "negative_binomial", "gamma", "beta"} or Family
        Negative binomial (NB2, glmmTMB's ``nbinom2``), Gamma and Beta estimate a dispersion φ
        by maximum likelihood (``fit.dispersion``, glmmTMB's ``sigma()`` convention), with TMB's
        Laplace approximation (exact Hessian), as glmmTMB.
    link : str, optional
        ``"logit"`` (default), ``"probit"``, ``"cloglog"``, ``"cauchit"`` for the binomial;
        ``"log"`` for Poisson, negative binomial and Gamma; ``"logit"`` for Beta.
    nAGQ : int
        0: lme4's fast approximation ``glmer(..., nAGQ = 0)`` (binomial / Poisson only): the
        optimisation is over θ alone, β being estimated jointly with the random effects inside
        the penalised IRLS, ``(û, β̂)(θ) = argmin_{u,β} −2 log p(y | u, β) + ‖u‖²``; the
        objective is the Laplace formula at that point, ``D₀(θ) = −2 log p(y | û, β̂) + ‖û‖² +
        log|L|²``. β̂ is thus a penalised-quasi-likelihood-type estimate, not the Laplace ML
        estimate: ``fit.loglik = −D₀(θ̂)/2`` (lme4's ``logLik``, constants included) is not the
        maximised Laplace log-likelihood (it is ≤ the nAGQ = 1 value; cbpp: −92.0543 vs
        −92.0263), and ``vcov(β̂) = (R_XᵀR_X)⁻¹`` comes from the IRLS matrix at the mode (lme4's
        ``pp$unsc()``; no Hessian is computed), i.e. it treats θ as known. Prefer nAGQ ≥ 1 for
        inference; nAGQ = 0 is a quick fit or a start.
        1: Laplace. > 1: adaptive Gauss–Hermite quadrature with that many nodes, for a single
        random-effect term. For a scalar term, as lme4; for a vector term such as
        ``(1 + x | g)`` (which lme4 refuses) a product rule of nAGQ^ℓ nodes per group in the
        coordinates adapted to each group's mode and conditional Hessian, ``u = û_i + L_i⁻ᵀz``
        (a warning when nAGQ^ℓ > 1000). Unlike lme4, the log-likelihood keeps the binomial
        saturated constant for trials > 1, so it is on the same scale as the Laplace one (cbpp,
        nAGQ=25: −91.9834 here, −50.0050 in lme4, whose Laplace value is −92.0263).
    weights, offset : str or array-like, optional
        Prior weights (binomial: number of trials for proportions) and an offset on the link scale.
    control : Control or dict, optional
        :class:`mixedppl.Control` (or a dict of its fields): ``ftol``, ``gtol``, ``maxiter``
        (L-BFGS-B; glmer's defaults 1e-15, 1e-6, 2000 where not given), ``start_theta``,
        ``check_nobs_vs_nRE`` (default "raise", as lme4's glmerControl).
    na_action : {"omit", "exclude", "raise"}
        Rows with a missing value in a used column: dropped with a warning (``"omit"``); dropped
        with ``fitted()`` / ``residuals()`` padded with NaN to every row of ``data``
        (``"exclude"``, R's ``na.exclude``); or a ModelSpecError (``"raise"``).

    Returns
    -------
    GLMMResult

    Examples
    --------
    >>> import mixedppl as mp
    >>> g = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...           mp.datasets.load("cbpp"), family="binomial")
    >>> round(g.loglik, 3), g.fe_params.round(3).tolist()
    (-92.026, [-1.399, -0.992, -1.129, -1.58])
    """
    from .fit.glmm_checks import check_glmm_data, warn_diverging_coefficients
    from .fit.glmm_fit import fit_glmm
    from .results.glmm import GLMMResult
    check_arguments(formula, data, "glmer")
    control = as_control(control, "glmer")
    spec, fam, lnk, y, ntr = glmm_model(formula, data, family, link, weights, offset, control,
                                        na_action)
    options = control.options("glmer")
    if int(nAGQ) != nAGQ or nAGQ < 0:
        raise ModelSpecError(f"nAGQ must be a non-negative integer, got {nAGQ!r}")
    if nAGQ > 1 and len(spec.terms) != 1:
        raise NotImplementedError(
            f"nAGQ > 1 needs a single random-effect term on one grouping factor, e.g. (1 | g) or "
            f"(1 + x | g); this model has {len(spec.terms)} terms "
            f"({', '.join(t.group for t in spec.terms)}): use nAGQ=1 (Laplace)")
    if nAGQ > 1 and spec.terms[0].n_cols > 1:
        ell = spec.terms[0].n_cols
        if nAGQ ** ell > 1000:
            warnings.warn(
                f"nAGQ={nAGQ} with the {ell}-dimensional random effect of '{spec.terms[0].group}' "
                f"is a product rule of {nAGQ}^{ell} = {nAGQ ** ell} nodes per group (memory and "
                "time grow with nobs × nodes); a smaller nAGQ is usually as accurate — compare "
                "logLik across nAGQ", UserWarning, stacklevel=2)
    separated = check_glmm_data(spec, fam, y, ntr)
    if nAGQ == 0:
        from .fit.glmm_nagq0 import fit_glmm_nagq0
        pieces = fit_glmm_nagq0(spec, fam, lnk, y, ntr, options)
    else:
        pieces = fit_glmm(spec, fam, lnk, y, ntr, options, int(nAGQ))
    if fam.check_separation:
        var = np.diag(pieces["vcov_beta"])
        se = np.sqrt(np.where(var > 0, var, np.nan))
        separated += warn_diverging_coefficients(spec.fe_names, pieces["beta"], se,
                                                 already=separated)
    return GLMMResult(spec=spec, family=fam, link=lnk, counts=y, trials=ntr, nAGQ=nAGQ,
                      separation=tuple(dict.fromkeys(separated)), **pieces)
