"""``glmer``: generalized linear mixed models by lme4's Laplace approximation.

Responses, as lme4's ``glmer``: for the binomial, 0/1 (or logical), a factor (a pandas
Categorical: its first category occurring in the data is failure, every other one success),
``cbind(successes, failures)`` (trials = successes + failures), or proportions with ``weights`` =
number of trials; for the Poisson, non-negative integer counts (``offset(log(exposure))`` in the
formula or ``offset=``). The family reads and checks them
(:meth:`~mixedppl.families.base.Family.read_response`) when
:func:`~mixedppl.spec.model_spec.build_spec` builds the model; :func:`glmer` is
``Model(..., family=...).fit(nAGQ=...)``.
"""

from __future__ import annotations

import pandas as pd

from .api import Model
from .core.control import Control
from .core.exceptions import ModelSpecError
from .families import Family, FamilyChoice, get_family
from .families.registry import family_parts
from .spec.frame import check_arguments

__all__ = ["glmer", "glmm_model"]


def _glmm_family(family, link):
    fam, lnk = get_family(family, link, laplace=True)
    if fam.fit_kind != "glmer":
        front = {"lmer": "mp.lmer (or mp.Model(..., family='gaussian'))",
                 "clmm": "mp.clmm"}.get(fam.fit_kind, "mp.Model")
        raise ModelSpecError(f"family={family!r} is not a GLMM family: fit it with {front}")
    return fam, lnk.name


def glmm_model(formula: str, data: pd.DataFrame,
               family: str | Family | FamilyChoice = "binomial",
               link: str | None = None, weights=None, offset=None,
               control: Control | dict | None = None, na_action: str = "omit", *,
               contrasts: dict | None = None):
    """Parse and check a GLMM: ``(spec, family, link, counts, trials)``.

    The spec of ``Model(formula, data, family, link, ...)``, with the counts and trials the
    Laplace graphs take (:meth:`~mixedppl.spec.model_spec.ModelSpec.counts`). lme4's glmer
    checks apply with ``allow.n = TRUE``: a grouping factor may have as many levels, and a term
    as many random effects, as there are observations, not more (the latter as
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
    data = check_arguments(formula, data, "glmer")
    family, ziformula = family_parts(family)                 # "zip", "hurdle_poisson", …
    spec = Model(formula, data, *_glmm_family(family, link), weights=weights,
                 offset=offset, na_action=na_action, contrasts=contrasts, control=control,
                 ziformula=ziformula).spec
    return (spec, spec.family, spec.link, *spec.counts())


def glmer(formula: str, data: pd.DataFrame, family: str | Family | FamilyChoice = "binomial",
          link: str | None = None, nAGQ: int = 1, weights=None, offset=None,
          control: Control | dict | None = None, na_action: str = "omit", *,
          contrasts: dict | None = None, start=None, ziformula: str | None = None,
          dispformula: str | None = None, progress: bool = True):
    """Fit a generalized linear mixed model by maximum likelihood (Laplace approximation).

    Maximises lme4's Laplace approximation to the marginal likelihood,
    ``−2 ℓ(θ, β) ≈ −2 log p(y | û) + ‖û‖² + log|ΛᵀZᵀWZΛ + I|`` (Bates et al. 2015, J. Stat. Softw.
    67(1)), jointly over (θ, β) with exact gradients.

    Parameters
    ----------
    formula : str
        lme4 formula; binomial responses may be ``cbind(successes, failures)``.
    data : DataFrame
    family : str, Family or FamilyChoice
        ``"binomial"``, ``"poisson"``, ``"negative_binomial"``, ``"nbinom1"``, ``"gamma"``,
        ``"beta"``, ``"gaussian"``, ``"tweedie"`` (glmmTMB's ``tweedie()``: Var = φμ^p, the
        power 1 < p < 2 estimated, ``fit.family_params``), ``"t"`` / ``"student_t"``
        (``t_family()``: location μ, scale σ, df estimated), or a family object such as
        ``mp.families.Binomial(link="probit")``. bambi's / brms' names of zero-part models
        are read as the family with ``ziformula="~ 1"`` (unless one is given):
        ``"zip"`` / ``"zero_inflated_poisson"``, ``"zinb"`` /
        ``"zero_inflated_negativebinomial"`` (nbinom2), ``"zero_inflated_binomial"``,
        ``"hurdle_poisson"`` (truncated_poisson), ``"hurdle_negativebinomial"``
        (truncated_nbinom2); see :data:`mixedppl.families.registry.PART_ALIASES`.
        Negative binomial (NB2, glmmTMB's ``nbinom2``; NB1, ``nbinom1``: Var = μ(1 + φ)), Gamma,
        Beta and Gaussian estimate a dispersion φ by maximum likelihood (``fit.dispersion``,
        glmmTMB's ``sigma()`` convention), with TMB's Laplace approximation (exact Hessian), as
        glmmTMB. ``"gaussian"`` here is glmmTMB's ``gaussian()`` fit by ML (any link; for the
        identity link the Laplace approximation is exact: ``lmer(..., reml=False)``'s optimum).
    link : str, optional
        ``"logit"`` (default), ``"probit"``, ``"cloglog"``, ``"cauchit"`` for the binomial;
        ``"log"`` (default), ``"sqrt"``, ``"identity"`` for Poisson; ``"log"`` (default),
        ``"inverse"``, ``"identity"`` for Gamma; ``"identity"`` (default), ``"log"``,
        ``"inverse"`` for the Gaussian; ``"log"`` for the negative binomials; ``"logit"`` for
        Beta.
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
        (L-BFGS-B; glmer's defaults 1e-15, 1e-6, 2000 where not given), ``start_theta``
        (as ``start=``),
        ``check_nobs_vs_nRE`` (default "raise", as lme4's glmerControl).
    na_action : {"omit", "exclude", "raise"}
        Rows with a missing value in a used column: dropped with a warning (``"omit"``); dropped
        with ``fitted()`` / ``residuals()`` padded with NaN to every row of ``data``
        (``"exclude"``, R's ``na.exclude``); or a ModelSpecError (``"raise"``).
    contrasts : dict, optional
        Column → contrast (as R's ``contrasts=``), e.g. ``{"period": "contr.sum"}``.
    start : array-like or dict, optional
        Starting θ, as lme4's ``start``: a vector or ``{"theta": ...}`` (β and φ start at the
        GLM without random effects).
    ziformula : str, optional
        glmmTMB's zero-inflation formula, one-sided (``"~ mined"``, ``"~ 1"``), with random
        terms as glmmTMB's (``"~ mined + (1 | site)"``: fitted with the conditional random
        effects jointly, :mod:`mixedppl.fit.laplace_zire`; ``fit.zi_varcorr``,
        ``fit.zi_random_effects``; the formula may then have no random term of its own):
        structural zeros with probability π = logit⁻¹(X_zi γ [+ Z_zi b_zi]) for poisson, nbinom2, nbinom1, binomial, betabinomial; with ``truncated_poisson`` /
        ``truncated_nbinom2`` it is glmmTMB's hurdle (all zeros from the zero part).
        ``fit.zi_params`` / ``fit.zi_bse`` (logit scale), ``predict(type="zprob")``.
    dispformula : str, optional
        glmmTMB's dispersion formula (``"~ Days"``), fixed effects only, for the families with
        a dispersion parameter: log φ linear in the columns; ``fit.disp_params`` on glmmTMB's
        scale (log σ² for the Gaussian, log θ for nbinom2). See
        :mod:`mixedppl.families.zi_disp`.
    progress : bool
        Dask DataFrame data only: a progress bar over the partitions of each pass over the rows
        (``progress=False`` turns it off); ignored for in-memory data.

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
    data = check_arguments(formula, data, "glmer")
    family, ziformula = family_parts(family, ziformula)      # "zip", "hurdle_poisson", …
    model = Model(formula, data, *_glmm_family(family, link), weights=weights,
                  offset=offset, na_action=na_action, contrasts=contrasts, control=control,
                  start=start, ziformula=ziformula, dispformula=dispformula,
                  progress=progress)
    return model.fit(nAGQ=nAGQ)
