r"""GLMM families as data: one row of :data:`FAMILIES` per family.

A :class:`GLMFamily` row holds everything the layers after it need: the conditional log-density
:math:`\log p(y \mid \mu, \phi)` — the log-density of the matching PyMC distribution, written
out (the values of ``pm.logp`` on the support, without its parameter checks and switches); the
GLMM graph and the Bayesian model share it —, the variance function :math:`V(\mu)`, the
support check, how the response is read (0/1, factor, ``cbind``, proportion + weights, counts),
the start rule (R's ``glm.fit`` start for μ and a moment start of the dispersion), the simulator
and the latent-scale variance of ``icc()``. For families with a dispersion parameter φ (negative
binomial, Gamma, Beta) φ enters the graphs on the log scale (``phi = log φ``), as glmmTMB's
``betadisp``.

Responses are carried as *counts*: for the binomial, ``y`` = successes and ``n`` = trials (lme4's
proportion × prior weights); for the others ``y`` is the response and ``n`` the prior weights
(multiplying the log-density, as R's ``poisson()$aic`` and glmmTMB's ``weights``).

Notes
-----
With :math:`n` the trials (binomial) or prior weight and :math:`\mu` the mean (of the proportion,
for the binomial), the log-densities and variances of ``y/n`` are

- binomial: :math:`\log\binom{n}{y} + y\log\mu + (n - y)\log(1 - \mu)`,
  :math:`V = \mu(1 - \mu)/n`;
- Poisson: :math:`n\,[y\log\mu - \mu - \log y!]`, :math:`V = \mu/n`;
- negative binomial (NB2): :math:`n\,[\log\Gamma(y + \phi) - \log\Gamma(\phi) - \log y! +
  \phi\log\frac{\phi}{\phi + \mu} + y\log\frac{\mu}{\phi + \mu}]`,
  :math:`V = (\mu + \mu^2/\phi)/n`;
- NB1 (glmmTMB's ``nbinom1``): the negative binomial with size :math:`\mu/\phi`,
  :math:`n\,[\log\Gamma(y + \mu/\phi) - \log\Gamma(\mu/\phi) - \log y! -
  (\mu/\phi)\log(1 + \phi) + y\log\frac{\phi}{1 + \phi}]`, :math:`V = \mu(1 + \phi)/n`;
- Gaussian (glmmTMB's ``gaussian()``, by ML in ``glmer``): :math:`n\,[-\tfrac12\log(2\pi\sigma^2)
  - (y - \mu)^2/(2\sigma^2)]`, :math:`V = \sigma^2/n`;
- Gamma: :math:`n\,[k\log(k/\mu) - \log\Gamma(k) + (k - 1)\log y - ky/\mu]` with shape
  :math:`k = 1/\phi^2`, :math:`V = \phi^2\mu^2/n`;
- Beta: :math:`n\,[\log\Gamma(\phi) - \log\Gamma(\mu\phi) - \log\Gamma((1 - \mu)\phi) +
  (\mu\phi - 1)\log y + ((1 - \mu)\phi - 1)\log(1 - y)]`, :math:`V = \mu(1 - \mu)/((1 + \phi)n)`.
- zero-truncated Poisson (glmmTMB's ``truncated_poisson``, y ≥ 1): the Poisson log-density minus
  :math:`\log(1 - e^{-\mu})`, i.e. :math:`n\,[y\log\mu - \mu - \log y! - \log(1 - e^{-\mu})]`;
  μ is the mean of the *untruncated* Poisson (glmmTMB's ``mu``, the link's mean), the truncated
  mean is :math:`m = \mu/(1 - e^{-\mu})` and :math:`V = m(1 + \mu - m)/n`;
- zero-truncated NB2 (``truncated_nbinom2``, y ≥ 1): the NB2 log-density minus
  :math:`\log(1 - p_0)`, :math:`p_0 = (\phi/(\phi + \mu))^\phi`; truncated mean
  :math:`m = \mu/(1 - p_0)`, :math:`V = (\mu + \mu^2/\phi + \mu^2)/((1 - p_0)n) - m^2/n`;
- beta-binomial (glmmTMB's ``betabinomial``, y successes of n trials): with :math:`a = \mu\phi`,
  :math:`b = (1 - \mu)\phi`, :math:`\log\binom{n}{y} + \log B(y + a, n - y + b) - \log B(a, b)`,
  :math:`V = \mu(1 - \mu)(1 + (n - 1)/(1 + \phi))/n` (of y/n).

For the truncated rows the link is on the untruncated mean μ, as in glmmTMB (``fixef`` are
coefficients of log μ); ``fitted()`` reports μ (glmmTMB's ``predict(type = "conditional")``),
whereas glmmTMB's ``fitted()`` / ``predict(type = "response")`` give the truncated mean
:math:`m = \mu/(1 - p_0)` — :meth:`GLMFamily.response_mean` of the row. ``variance`` is the
variance of the truncated distribution at μ.

Dispersion conventions (glmmTMB's ``sigma()``): negative binomial NB2 ``Var(y) = μ + μ²/φ`` (φ: the
``size``, R's ``theta``; glmmTMB's ``nbinom2``); Gamma shape ``1/φ²`` (φ: coefficient of
variation); Beta ``Beta(μφ, (1 − μ)φ)`` (φ: precision; glmmTMB's ``beta_family``, Ferrari &
Cribari-Neto 2004); NB1 ``Var(y) = μ(1 + φ)``; Gaussian φ = σ; the truncated NB2's φ is the NB2 size
of the untruncated distribution; the beta-binomial's φ the precision a + b of its Beta. glmmTMB's own dispersion
coefficient (``fixef(fit)$disp``) is :meth:`GLMFamily.tmb_dispersion` of ours: log σ² for the
Gaussian, log shape = −2 log φ for the Gamma, log φ for the others (glmmTMB 1.1.5).

Links beyond the canonical ones (R's spellings): Poisson ``sqrt`` (μ = η²) and ``identity``;
Gamma ``inverse`` (canonical in R) and ``identity``; Gaussian ``log`` and ``inverse``. With a
link whose μ is not positive for every η (identity, inverse) a fit needs data whose means stay
away from 0; a step of the inner Newton iteration to μ ≤ 0 is a failed point (step halving).
With ``sqrt``, η and −η give the same μ, so for means near 0 the conditional mode need not be
unique (lme4's as well).

The Laplace approximation's log-determinant uses lme4's IRLS (Fisher) weights
``W = n·(dμ/dη)² / V(μ)`` for the binomial and Poisson (``hessian="fisher"``, lme4's ``glmer``), and
the exact Hessian of −log p(y | η) for the dispersion families (``hessian="observed"``, TMB's
Laplace, which is what glmmTMB maximises).

References
----------
McCullagh, P. & Nelder, J. A. (1989). *Generalized Linear Models*, 2nd ed., ch. 2 (links,
variance functions) and ch. 8 (Gamma).
Bates et al. (2015), J. Stat. Softw. 67(1) and lme4's ``vignette("PIRLSmod")`` (IRLS weights).
Brooks, M. E. et al. (2017). glmmTMB balances speed and flexibility among packages for zero-inflated
generalized linear mixed modeling. *The R Journal* 9(2) (NB2, Gamma, Beta parameterisations).
Nakagawa, S., Johnson, P. C. D. & Schielzeth, H. (2017). *J. R. Soc. Interface* 14 (latent
variances).

Examples
--------
>>> from mixedppl.families import get_family
>>> fam, link = get_family("binomial", "probit")
>>> fam is FAMILIES["binomial"], fam.fit_kind
(True, 'glmer')
>>> fam.name, link.name
('binomial', 'probit')
>>> float(link.linkinv_np(0.0))
0.5
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import scipy
from scipy.special import gammaln

from ..core.exceptions import ModelSpecError
from .base import PriorChoice, Response, ResponseInput, check_not_constant
from .gamma_ratio import gamma_ratio, log_gamma_ratio
from .links import Link
from .tweedie import tweedie_logp, tweedie_unit_deviance

__all__ = ["GLMFamily", "FAMILIES", "ShapeParam", "Shaped", "ShapedArray", "shaped", "shape_of"]


class Shaped(float):
    """A dispersion φ (a number) that carries the family's shape parameter (``.shape``: the
    Tweedie power p, Student's df ν), so that the NumPy ``variance`` / ``simulator`` of the
    Tweedie and t rows get both through the ``disp`` argument every layer passes.

    Examples
    --------
    >>> d = Shaped(1.5, 1.6)
    >>> float(d) * 2, d.shape
    (3.0, 1.6)
    """

    def __new__(cls, value, shape=None):
        obj = super().__new__(cls, value)
        obj.shape = shape
        return obj

    def __getnewargs__(self):
        return (float(self), self.shape)


class ShapedArray(np.ndarray):
    """φ per row (a dispersion formula) carrying the shape parameter, as :class:`Shaped`."""

    def __new__(cls, values, shape=None):
        obj = np.asarray(values, float).view(cls)
        obj.shape_param = shape
        return obj

    def __array_finalize__(self, obj):
        self.shape_param = getattr(obj, "shape_param", None)

    def __reduce__(self):
        return (ShapedArray, (np.asarray(self), self.shape_param))


def shaped(disp, shape):
    """φ with the shape parameter attached (:class:`Shaped` / :class:`ShapedArray`); φ itself
    where ``shape`` is None."""
    if shape is None:
        return float(disp) if np.ndim(disp) == 0 else np.asarray(disp, float)
    return Shaped(disp, shape) if np.ndim(disp) == 0 else ShapedArray(disp, shape)


def shape_of(disp, default: float) -> float:
    """The shape parameter carried by ``disp``: ``default`` where ``disp`` is None (the start
    rules' variance); a φ without one is refused (it would silently give ``default``)."""
    if disp is None:
        return default
    value = (disp.shape if isinstance(disp, Shaped) else
             disp.shape_param if isinstance(disp, ShapedArray) else None)
    if value is None:
        raise ValueError("the Tweedie / t rows need φ with its shape parameter (a Shaped value "
                         "from the family's row_dispersion), got a plain number")
    return value


@dataclass(frozen=True)
class ShapeParam:
    """A family's second parameter beside φ, as glmmTMB's ``psi`` (``family_params()``).

    Attributes
    ----------
    name : str
        Short name (``"power"``, ``"df"``).
    label : str
        glmmTMB's ``family_params()`` label (``"Tweedie power"``, ``"Student-t df"``).
    natural : callable
        psi → the parameter (NumPy).
    natural_pt : callable
        The same in PyTensor.
    psi : callable
        The parameter → psi (NumPy; the inverse of ``natural``).
    start : float
        The start value of psi.
    prior : PriorChoice
        The default prior of the parameter on its natural scale (``fit.sample()``).
    flat_outside : (float, float)
        The psi interval outside which the deviance is flat in psi (Student's ν → ∞ is the
        Gaussian limit; the Tweedie p → 1 or 2 its Poisson / Gamma ends): an optimiser that
        ends there may have walked a ridge past a better interior optimum.
    probe : tuple of float
        Natural values at which the fit then profiles the deviance (the rest re-optimised) to
        find such an optimum (:func:`mixedppl.fit.laplace.escape_shape_plateau`).
    limit : str
        What an estimate on that plateau means, for the warning and the summary note.
    """

    name: str
    label: str
    natural: Callable
    natural_pt: Callable
    psi: Callable
    start: float
    prior: PriorChoice | None = None
    flat_outside: tuple[float, float] = (-np.inf, np.inf)
    probe: tuple[float, ...] = ()
    limit: str = ""

    def at_limit(self, psi: float) -> bool:
        """Whether ψ lies on the plateau outside ``flat_outside``."""
        low, high = self.flat_outside
        return not low <= psi <= high


@dataclass(frozen=True)
class DispersionLimit:
    """Where a family's dispersion φ reaches the simpler family it nests (NB2's size → ∞ and
    nbinom1's φ → 0 are the Poisson, betabinomial's precision → ∞ the binomial): beyond
    ``bound`` (natural scale, on the side ``side``) an estimate is that limit, reached where the
    data show no over-dispersion, not an interior optimum.

    Attributes
    ----------
    side : {"above", "below"}
    bound : float
    label : str
        The parameter as the sentence names it (``"NB2 size (theta)"``).
    limit : str
        What the limit means, for the warning and ``summary()``.
    """

    side: str
    bound: float
    label: str
    limit: str

    def reached(self, log_disp: float) -> bool:
        """Whether exp(``log_disp``) lies beyond ``bound``.

        Examples
        --------
        >>> DispersionLimit("above", 1e6, "size", "the Poisson").reached(20.0)
        True
        """
        beyond = float(log_disp) - float(np.log(self.bound))
        return beyond > 0 if self.side == "above" else beyond < 0


def _over_dispersion_limit(simpler: str) -> str:
    return (f"the {simpler} limit: no over-dispersion beyond the random effects; the estimate "
            f"and its standard error are not meaningful and a {simpler} model fits as well")


@dataclass(frozen=True)
class GLMFamily:
    """An exponential-family row of :data:`FAMILIES` (satisfies :class:`~.base.Family`).

    Attributes
    ----------
    name : str
    links : tuple of str
        Links available; the first is the canonical / default one.
    logp : callable
        ``logp(y, mu, n, disp)`` → elementwise PyTensor log-density (``disp``: φ, or None).
    variance : callable
        ``variance(mu, n, disp)`` → Var(y/n | μ) for PyTensor or NumPy inputs (Fisher weights,
        Pearson residuals).
    check : callable
        ``check(y, n, column)`` raises :class:`ModelSpecError` for responses outside the support.
    simulator : callable
        ``simulator(rng, mu, n, disp)`` → draws of the counts ``y`` (NumPy).
    start_mu : callable
        ``start_mu(y, n)`` → R's ``family()$initialize`` start for μ (``n``: trials, > 0).
    moment_dispersion : callable or None
        ``moment_dispersion(y, mu, w)`` → moment estimate of φ from the GLM fit (families with a
        dispersion parameter).
    dispersion : str or None
        Name of the dispersion parameter φ (``"size"``, ``"cv"``, ``"precision"``), None if fixed.
    hessian : {"fisher", "observed"}
        Weights of the Laplace log-determinant (see the module docstring).
    factor_response : callable or None
        ``factor_response(col, column)`` → numeric response from a categorical / logical /
        string column (R's reading of a factor response), or None where the family takes
        numbers only.
    trials : bool
        The response is a number of successes out of ``n`` trials (``cbind``, proportions with
        weights, 0/1): the binomial. Such families also get lme4's separation checks.
    zero_diverges : bool
        An all-zero response has no finite estimates (the intercept diverges to −∞).
    latent : callable or None
        ``latent(link)`` → distribution-specific variance of the latent scale (None: not
        implemented for the family).
    deviance : callable or None
        ``deviance(y, mu, n, disp)`` → unit deviances d_i of ``y/n`` (NumPy): R's
        ``family()$dev.resids`` (binomial, poisson, ``MASS::negative.binomial(theta)``,
        ``Gamma``); for the Beta, betareg's 2[ℓ(y; y, φ) − ℓ(y; μ, φ)].
    tmb_disp_scale : float
        glmmTMB's dispersion coefficient (``fixef(fit)$disp``, the intercept of its
        ``dispformula``) is ``tmb_disp_scale · log φ``: 1 where glmmTMB's φ is ours (NB size,
        nbinom1's φ, Beta precision), 2 for the Gaussian (log σ²), −2 for the Gamma (log shape,
        shape = 1/φ²).
    truncated_mean : callable or None
        ``truncated_mean(mu, disp)`` → E(y | y > 0) of the zero-truncated rows at the
        untruncated mean μ (NumPy); None for the others, whose mean is μ.
    shape : ShapeParam or None
        A second family parameter beside φ (the Tweedie power, Student's df), estimated on
        glmmTMB's ``psi`` scale; it is the last entry of the graphs' ``phi``, and ``logp``,
        ``variance`` and ``simulator`` then see φ as a :class:`Shaped` number carrying it.
    dispersion_limit : DispersionLimit or None
        Where φ reaches a simpler family (a fit there gets a ConvergenceWarning and a
        ``summary()`` note).
    logp_logs : callable or None
        ``logp_logs(y, log_mu, log1m_mu, n)``: ``logp`` from :math:`\\log\\mu` and
        :math:`\\log(1 - \\mu)`, for a family without dispersion whose density depends on μ only
        through them (the binomial). :meth:`loglik` uses it with a link that writes both in η
        (:attr:`~.links.Link.log_linkinv`, logit): through μ = σ(η) the derivative
        :math:`\\frac{n - y}{1 - \\mu}\\,\\mu(1 - \\mu)` is 0/0 once μ rounds to 1 (η > 37) unless
        PyTensor's rewrites cancel it, which the NumPy tier's rewrites do not.
    """

    name: str
    links: tuple[str, ...]
    logp: Callable
    variance: Callable
    check: Callable
    simulator: Callable
    start_mu: Callable
    moment_dispersion: Callable | None = None
    dispersion: str | None = None
    hessian: str = "fisher"
    factor_response: Callable | None = None
    trials: bool = False
    zero_diverges: bool = False
    latent: Callable | None = None
    deviance: Callable | None = None
    tmb_disp_scale: float = 1.0
    truncated_mean: Callable | None = None
    shape: "ShapeParam | None" = None
    dispersion_limit: DispersionLimit | None = None
    logp_logs: Callable | None = None

    #: The GLMM Laplace fit (:func:`mixedppl.glmer`), with lme4's ``allow.n = TRUE``.
    fit_kind = "glmer"
    allow_n = True
    absorbs_intercept = False
    no_random_message = ("formula {formula!r} has no random-effects terms such as '(1 | group)'; "
                         "for a model without random effects use statsmodels' OLS/GLM")

    @property
    def default_link(self) -> str:
        return self.links[0]

    @property
    def key(self) -> tuple:
        """Identifies the compiled graphs of this family."""
        return ("glm", self.name)

    @property
    def n_phi(self) -> int:
        """Number of extra (dispersion) parameters in the graphs."""
        return (0 if self.dispersion is None else 1) + (self.shape is not None)

    @property
    def check_separation(self) -> bool:
        """Whether lme4's complete-separation checks apply (a binary / binomial response)."""
        return self.trials

    def phi_names(self) -> list[str]:
        names = [] if self.dispersion is None else [f"log({self.dispersion})"]
        return names + ([] if self.shape is None else [f"psi({self.shape.name})"])

    def shape_value(self, phi: np.ndarray) -> float | None:
        """The shape parameter on its natural scale (Tweedie power, t df) from the graphs'
        ``phi`` (its last entry), None for a family without one."""
        return None if self.shape is None else float(self.shape.natural(np.asarray(phi)[-1]))

    def dispersion_at_limit(self, phi: np.ndarray) -> str | None:
        """A sentence when the estimated φ (``phi[0]`` is log φ) lies beyond
        ``dispersion_limit``, else None.

        Examples
        --------
        >>> FAMILIES["negative_binomial"].dispersion_at_limit(np.array([21.0]))[:40]
        'the NB2 size (theta) is 1.32e+09, at the'
        """
        lim = self.dispersion_limit
        phi = np.asarray(phi, float)
        if lim is None or not len(phi) or not lim.reached(phi[0]):
            return None
        return f"the {lim.label} is {np.exp(min(phi[0], 700.0)):.3g}, at {lim.limit}"

    # -- the parts glmmTMB's ziformula / dispformula add (none here: families/zi_disp.py) -----
    aux_designs = ()
    zi_names = ()
    zi_mode = None

    @property
    def disp_names(self) -> tuple[str, ...]:
        """The dispersion coefficients' names: glmmTMB's ``fixef(fit)$disp`` (an intercept)."""
        return () if self.dispersion is None else ("(Intercept)",)

    @property
    def n_zi(self) -> int:
        return 0

    def zero_prob(self, phi: np.ndarray, aux: dict) -> None:
        """No structural zeros (see :class:`~mixedppl.families.zi_disp.ZIDispFamily`)."""
        return None

    def row_dispersion(self, phi: np.ndarray, aux: dict) -> float | None:
        """φ = exp(phi[0]) on the family's natural scale (None without dispersion); a
        :class:`Shaped` φ carrying the shape parameter for the Tweedie and t rows."""
        if self.dispersion is None:
            return None
        return shaped(np.exp(phi[0]), self.shape_value(phi))

    def conditional_mean(self, mu: np.ndarray, disp=None) -> np.ndarray:
        """glmmTMB's ``predict(type = "conditional")``: :meth:`response_mean`."""
        return self.response_mean(mu, disp)

    def tmb_dispersion(self, phi: np.ndarray) -> np.ndarray:
        """glmmTMB's dispersion coefficients (``fixef(fit)$disp``) from ours, ``phi = log φ``.

        Examples
        --------
        >>> float(FAMILIES["gaussian"].tmb_dispersion(np.log([2.0]))[0])  # log σ², σ = 2
        1.3862943611198906
        """
        return self.tmb_disp_scale * np.asarray(phi, float)

    # -- the response ------------------------------------------------------------------------
    def read_response(self, source: ResponseInput) -> Response:
        """Read the response as lme4's ``glmer``: a number, a factor (via ``factor_response``), or
        for a binomial ``cbind(successes, failures)`` (``y`` the proportion, with its trials)."""
        if source.cbind is not None:
            if not self.trials:
                raise ModelSpecError(f"{source.expr!r}: cbind(successes, failures) is a binomial "
                                     f"response; family {self.name!r} takes one column")
            return _read_cbind(source)
        return Response(self._read_column(source), expr=source.expr)

    def _read_column(self, source: ResponseInput) -> np.ndarray:
        col, expr = source.column, source.expr
        if col is None:
            return source.numeric()
        numeric = (pd.api.types.is_numeric_dtype(col)
                   and not isinstance(col.dtype, pd.CategoricalDtype))
        if numeric and not pd.api.types.is_bool_dtype(col):
            return col.to_numpy(dtype=float)
        if self.factor_response is not None:
            return self.factor_response(col, expr)
        if pd.api.types.is_bool_dtype(col):
            return col.to_numpy(dtype=float)
        raise ModelSpecError(f"response {expr!r} must be numeric or logical for glmer with "
                             f"family {self.name!r}; it has dtype {col.dtype}")

    def bind(self, response: Response) -> "GLMFamily":
        """The row itself (nothing is learnt from the response)."""
        return self

    def counts(self, response: np.ndarray, trials: np.ndarray | None, weights: np.ndarray,
               column: str) -> tuple[np.ndarray, np.ndarray]:
        """``(y, n)`` the graphs take from the spec's response: successes and trials (proportion
        × weights, or ``cbind``'s trials × weights) for the binomial, else response and weights."""
        if not self.trials:
            return response, weights
        ntr = weights if trials is None else trials * weights
        if trials is None and np.any((response < 0) | (response > 1)):
            raise ModelSpecError(f"binomial response {column!r} must be 0/1 or a proportion in "
                                 "[0, 1] (with weights = trials), or cbind(successes, failures)")
        y = response * ntr
        return np.where(np.abs(y - np.round(y)) < 1e-8, np.round(y), y), ntr

    def check_response(self, y: np.ndarray, n: np.ndarray, response: Response,
                       weights: np.ndarray) -> None:
        """The support check and lme4's ``check.response.not.const`` on the rows with positive
        weight; an all-zero response (or, for the binomial, all successes) is left to the fit's
        data checks, which say which coefficient diverges."""
        column = response.expr
        self.check(y, n, column)
        used = response.y[weights > 0]
        if (response.trials is None and len(used) and used[0] != 0
                and not (self.trials and used[0] == 1)):
            check_not_constant(used, column)

    def response_mean(self, mu: np.ndarray, disp: float | None = None,
                      zprob: None = None) -> np.ndarray:
        """E(y) at the link's mean μ: μ itself, or for a zero-truncated row the truncated mean
        μ/(1 − p₀) (glmmTMB's ``predict(type = "response")``).

        Examples
        --------
        >>> float(FAMILIES["truncated_poisson"].response_mean(np.array([1.0]))[0])
        1.5819767068693265
        """
        mu = np.asarray(mu, float)
        return mu if self.truncated_mean is None else self.truncated_mean(mu, disp)

    def mean_response(self, y: np.ndarray, n: np.ndarray) -> np.ndarray:
        """The response on the scale of μ: the proportion y/n for the binomial, else y."""
        return y / np.where(n > 0, n, 1) if self.trials else y

    # -- likelihood --------------------------------------------------------------------------
    def loglik(self, y, eta, n, phi, link):
        """Elementwise log p(y | η, φ) as a PyTensor expression (φ on the log scale)."""
        if self.logp_logs is not None and link.log_linkinv is not None:
            # log μ and log(1 − μ) written in η: finite η-derivatives where μ rounds to 0 or 1
            return self.logp_logs(y, link.log_linkinv(eta), link.log1m_linkinv(eta), n)
        disp = None if self.dispersion is None else pt.exp(phi[0])
        if self.shape is not None:
            return self.logp(y, link.linkinv(eta), n, disp, self.shape.natural_pt(phi[-1]))
        return self.logp(y, link.linkinv(eta), n, disp)

    def fisher_weights(self, eta, n, phi, link):
        """IRLS weights n·(dμ/dη)²/V(μ) (PyTensor); 0 on rows with n = 0 (a zero prior weight
        removes a row: V(μ)/n would be infinite there, and its derivative NaN)."""
        mu = link.linkinv(eta)
        mu_eta = pt.grad(mu.sum(), eta)
        disp = None if self.dispersion is None else pt.exp(phi[0])
        if self.shape is not None:
            raise NotImplementedError(f"the {self.name} family uses the exact Hessian")
        present = pt.gt(n, 0)
        w = mu_eta ** 2 / self.variance(mu, pt.switch(present, n, 1.0), disp)
        return pt.switch(present, w, 0.0)

    def simulate(self, rng, eta, n, disp, link, zprob: None = None) -> np.ndarray:
        """Responses drawn from p(y | η, φ) in NumPy (counts for the binomial; ``disp``: φ on
        its natural scale, None without dispersion)."""
        mu = link.linkinv_np(np.asarray(eta, float))
        return self.simulator(rng, mu, np.broadcast_to(np.asarray(n, float), mu.shape), disp)

    def unit_deviance(self, y: np.ndarray, mu: np.ndarray, n: np.ndarray,
                      disp: float | None = None) -> np.ndarray:
        """Unit deviances d_i (R's ``dev.resids``) of the mean-scale response y at μ."""
        if self.deviance is None:
            raise NotImplementedError(
                f"no deviance residuals for the {self.name} family (glmmTMB 1.1.5's residuals() "
                "has none either: response, pearson and working only); use type='pearson' or "
                "type='quantile'")
        return self.deviance(np.asarray(y, float), np.asarray(mu, float),
                             np.asarray(n, float), disp)

    def latent_variance(self, link: Link) -> float:
        """Variance of the latent scale for ``icc()`` / ``r_squared()`` (Nakagawa & Schielzeth
        2013): π²/3 (logit), 1 (probit), π²/6 (cloglog) for the binomial."""
        value = None if self.latent is None else self.latent(link)
        if value is None:
            raise NotImplementedError(
                f"icc() / r_squared() are available for LMMs and binomial GLMMs (logit, probit, "
                f"cloglog); {self.name}({link.name}) needs the observation-level variance "
                "approximations of Nakagawa et al. (2017), not implemented yet")
        return float(value)

    # -- start values ------------------------------------------------------------------------
    def start_beta(self, spec, link: Link, y: np.ndarray, ntr: np.ndarray,
                   maxit: int = 50) -> np.ndarray:
        """β of the GLM without random effects by IRLS from R's ``glm.fit`` start for μ."""
        n = np.where(ntr > 0, ntr, 1.0)
        mu = self.start_mu(y, n)
        eta = link.link_np(mu)
        beta = np.zeros(spec.p)
        for _ in range(maxit):
            h = 1e-6
            mu_eta = (link.linkinv_np(eta + h) - link.linkinv_np(eta - h)) / (2 * h)
            w = ntr * mu_eta ** 2 / (self.variance(mu, 1.0) + 1e-300)
            z = eta - spec.offset + (self.mean_response(y, n) - mu) / mu_eta
            sw = np.sqrt(w)
            if not (np.all(np.isfinite(sw)) and np.all(np.isfinite(z))):
                break  # separated data: IRLS diverges; keep the last finite β (a start only)
            try:
                new = np.linalg.lstsq(spec.X * sw[:, None], z * sw, rcond=None)[0]
            except np.linalg.LinAlgError:
                break
            done = np.max(np.abs(new - beta)) < 1e-10 * (1 + np.max(np.abs(new)))
            beta = new
            eta = spec.X @ beta + spec.offset
            mu = link.linkinv_np(eta)
            if done:
                break
        return beta if np.all(np.isfinite(beta)) else np.zeros(spec.p)

    def start_phi(self, spec, link: Link, beta: np.ndarray, y: np.ndarray,
                  ntr: np.ndarray) -> np.ndarray:
        """Moment start for log φ from the GLM fit at β (empty without dispersion)."""
        if self.moment_dispersion is None:
            return np.zeros(0)
        mu = link.linkinv_np(spec.X @ beta + spec.offset)
        w = np.where(ntr > 0, ntr, 1.0)
        log_phi = [np.log(self.moment_dispersion(y, mu, w))]
        return np.array(log_phi + ([] if self.shape is None else [self.shape.start]))

    def start_values(self, spec, link: Link, y: np.ndarray,
                     ntr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(β, log φ): :meth:`start_beta` and :meth:`start_phi`."""
        beta = self.start_beta(spec, link, y, ntr)
        return beta, self.start_phi(spec, link, beta, y, ntr)

    def prior_defaults(self, spec, link: Link, y: np.ndarray, ntr: np.ndarray
                       ) -> dict[str, PriorChoice]:
        """φ ~ LogNormal(log φ⁰, 2) at the moment start φ⁰ (nothing without dispersion); a shape
        parameter (Tweedie power, t df) gets its :attr:`ShapeParam.prior` as ``"shape"``."""
        if self.dispersion is None:
            return {}
        _, phi0 = self.start_values(spec, link, y, ntr)
        out = {"dispersion": PriorChoice("LogNormal", {"mu": float(phi0[0]), "sigma": 2.0})}
        if self.shape is not None:
            out["shape"] = self.shape.prior
        return out


def _read_cbind(source: ResponseInput) -> Response:
    parts, expr = source.cbind, source.expr
    if len(parts) != 2:
        raise ModelSpecError(f"{expr!r}: cbind needs exactly two columns (successes, failures)")
    s, f = (_numeric_part(source, e) for e in parts)
    if np.any(f < 0):
        raise ModelSpecError(f"{expr!r}: negative failures {parts[1]!r} — successes "
                             f"{parts[0]!r} exceed the number of trials")
    if np.any(s < 0):
        raise ModelSpecError(f"{expr!r}: negative successes {parts[0]!r}")
    trials = s + f
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(trials > 0, s / np.where(trials > 0, trials, 1), 0.0)
    return Response(y, trials=trials, expr=expr)


def _numeric_part(source: ResponseInput, expr: str) -> np.ndarray:
    """A part of ``cbind``: numeric or logical."""
    if expr not in source.frame.columns:
        return source.numeric(expr)
    col = source.frame[expr]
    if pd.api.types.is_bool_dtype(col) or (pd.api.types.is_numeric_dtype(col) and not
                                          isinstance(col.dtype, pd.CategoricalDtype)):
        return col.to_numpy(dtype=float)
    raise ModelSpecError(f"response {expr!r} must be numeric or logical for glmer; it has dtype "
                         f"{col.dtype}")


def _int(x):
    return pt.round(x).astype("int64")


# The log-densities are written out rather than taken from ``pm.logp``: PyMC's expressions carry
# parameter checks and switches (NB2: a round trip through (n, p), a Poisson branch and
# ``logpow`` switches) that the Laplace graph differentiates up to three times — the NB2 outer
# graph had 1,400 nodes and took 70–100 s of PyTensor rewrites; written out, 480 nodes and ~1.5 s.
# The values are PyMC's on the support (the responses are checked before a fit; μ > 0 and the
# dispersion > 0 by the links and the log scale of φ), up to rounding.
def _x_times_log(x, log_y):
    """x·log y, and 0 where x = 0 (PyMC's ``logpow``: the limit at y = 0). The switch is on the
    data x only, so the derivatives in y stay one expression."""
    return pt.switch(pt.eq(x, 0), 0.0, x * log_y)


def _binomial_logp(y, mu, n, disp=None):
    r""":math:`\log\binom{n}{y} + y\log\mu + (n - y)\log(1 - \mu)` (``pm.Binomial``'s
    ``logp``)."""
    return _binomial_logp_logs(y, pt.log(mu), pt.log(1.0 - mu), n)


def _binomial_logp_logs(y, log_mu, log1m_mu, n):
    r"""The binomial log-density from :math:`\log\mu` and :math:`\log(1 - \mu)`."""
    y, n = _int(y), _int(n)
    return (pt.gammaln(n + 1.0) - pt.gammaln(y + 1.0) - pt.gammaln(n - y + 1.0)
            + _x_times_log(y, log_mu) + _x_times_log(n - y, log1m_mu))


def _poisson_logp(y, mu, n, disp=None):
    r""":math:`n\,[y\log\mu - \mu - \log y!]` (``pm.Poisson``'s ``logp`` times n)."""
    y = _int(y)
    return n * (_x_times_log(y, pt.log(mu)) - mu - pt.gammaln(y + 1.0))


def _negbin_logp(y, mu, n, size):
    r""":math:`n\,[\log\Gamma(y + \phi) - \log\Gamma(\phi) - \log y! - \phi
    \log(1 + \mu/\phi) + y\log\frac{\mu}{\phi + \mu}]` (``pm.NegativeBinomial``'s ``logp``
    with ``alpha = φ``, times n).

    For φ > 10¹⁰ PyMC switches to the Poisson log-density; here only the term that does not
    depend on μ changes form, :math:`\log\Gamma(y + \phi) - \log\Gamma(\phi)` being the
    asymptotic series beyond φ = 10³ (:func:`~.gamma_ratio.log_gamma_ratio`; written out, the
    difference of two ~10¹¹ numbers has no digits left), so the value tends to the Poisson one
    (``log1p`` keeps :math:`\phi\log(1 + \mu/\phi) \to \mu` accurate).
    """
    y = _int(y)
    return n * (log_gamma_ratio(y, size) - pt.gammaln(y + 1.0) - size * pt.log1p(mu / size)
                + _x_times_log(y, pt.log(mu) - pt.log(mu + size)))


def _nbinom1_logp(y, mu, n, phi):
    r""":math:`n\,[\log\Gamma(y + \mu/\phi) - \log\Gamma(\mu/\phi) - \log y! -
    (\mu/\phi)\log(1 + \phi) + y\log\frac{\phi}{1 + \phi}]` (glmmTMB's ``nbinom1``:
    ``pm.NegativeBinomial``'s ``logp`` with ``mu = μ``, ``alpha = μ/φ``, times n;
    Var = μ(1 + φ)). The log-gamma difference is :func:`~.gamma_ratio.log_gamma_ratio` (as
    φ → 0, the Poisson limit, the size μ/φ grows without bound)."""
    y = _int(y)
    size = mu / phi
    return n * (log_gamma_ratio(y, size) - pt.gammaln(y + 1.0)
                - size * pt.log1p(phi) + y * (pt.log(phi) - pt.log1p(phi)))


def _gaussian_logp(y, mu, n, sigma):
    r""":math:`n\,[-\tfrac12\log(2\pi) - \log\sigma - (y - \mu)^2/(2\sigma^2)]`
    (``pm.Normal``'s ``logp`` times n; glmmTMB's ``gaussian``, whose weights multiply the
    log-density)."""
    return n * (-0.5 * np.log(2.0 * np.pi) - pt.log(sigma) - 0.5 * ((y - mu) / sigma) ** 2)


def _gamma_logp(y, mu, n, cv):
    r""":math:`n\,[k\log(k/\mu) - \log\Gamma(k) + (k - 1)\log y - ky/\mu]`, :math:`k =
    1/\phi^2` (``pm.Gamma``'s ``logp`` with ``alpha = k``, ``beta = k/μ``, times n; y > 0)."""
    shape = 1.0 / cv ** 2
    rate = shape / mu
    return n * (shape * pt.log(rate) - pt.gammaln(shape) + (shape - 1.0) * pt.log(y) - rate * y)


def _beta_logp(y, mu, n, prec):
    r""":math:`n\,[\log\Gamma(\phi) - \log\Gamma(\mu\phi) - \log\Gamma((1 - \mu)\phi) +
    (\mu\phi - 1)\log y + ((1 - \mu)\phi - 1)\log(1 - y)]` (``pm.Beta``'s ``logp`` with
    ``alpha = μφ``, ``beta = (1 − μ)φ``, times n; 0 < y < 1)."""
    a, b = mu * prec, (1.0 - mu) * prec
    return n * ((a - 1.0) * pt.log(y) + (b - 1.0) * pt.log1p(-y)
                - (pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)))


def _log1m_exp(log_p):
    """log(1 − p) from log p < 0, as R's ``log1mexp`` (accurate for p near 0 and near 1)."""
    return pt.switch(pt.gt(log_p, -np.log(2.0)), pt.log(-pt.expm1(log_p)),
                     pt.log1p(-pt.exp(log_p)))


def _truncated_poisson_logp(y, mu, n, disp=None):
    r""":math:`n\,[y\log\mu - \mu - \log y! - \log(1 - e^{-\mu})]` (glmmTMB's
    ``truncated_poisson``: ``dpois(y, mu, TRUE) - log_nzprob``; y ≥ 1)."""
    return _poisson_logp(y, mu, n) - n * _log1m_exp(-mu)


def _truncated_negbin_logp(y, mu, n, size):
    r"""The NB2 log-density minus :math:`n\log(1 - p_0)`, :math:`\log p_0 = -\phi\log(1 +
    \mu/\phi)` (glmmTMB's ``truncated_nbinom2``; y ≥ 1)."""
    return _negbin_logp(y, mu, n, size) - n * _log1m_exp(-size * pt.log1p(mu / size))


def _betabinomial_logp(y, mu, n, prec):
    r""":math:`\log\binom{n}{y} + \log\Gamma(y + a) + \log\Gamma(n - y + b) - \log\Gamma(n +
    \phi) + \log\Gamma(\phi) - \log\Gamma(a) - \log\Gamma(b)`, :math:`a = \mu\phi`,
    :math:`b = (1 - \mu)\phi` (glmmTMB's ``dbetabinom_robust``; ``pm.BetaBinomial``'s ``logp``
    with ``alpha = a``, ``beta = b``; y successes of n trials), the three log-gamma differences
    each :func:`~.gamma_ratio.log_gamma_ratio` (the precision φ → ∞ is the binomial limit)."""
    y, n = _int(y), _int(n)
    a, b = mu * prec, (1.0 - mu) * prec
    return (pt.gammaln(n + 1.0) - pt.gammaln(y + 1.0) - pt.gammaln(n - y + 1.0)
            + log_gamma_ratio(y, a) + log_gamma_ratio(n - y, b)
            - log_gamma_ratio(n, prec))


def _tweedie_logp(y, mu, n, phi, power):
    r"""glmmTMB's ``tweedie``: :math:`n\log f(y; \mu, \phi, p)`, the compound Poisson–Gamma
    density of :mod:`mixedppl.families.tweedie` (Dunn & Smyth's series), 1 < p < 2."""
    return tweedie_logp(y, mu, n, phi, power)


def _student_t_logp(y, mu, n, sigma, df):
    r""":math:`n\,[c(\nu) - \tfrac12\log\pi - \log\sigma - \tfrac{\nu+1}{2}\log(1 + r^2/\nu)]`,
    :math:`r = (y - \mu)/\sigma`, :math:`c(\nu) = \log\Gamma(\tfrac{\nu+1}{2}) -
    \log\Gamma(\tfrac{\nu}{2}) - \tfrac12\log\nu` (glmmTMB's ``t_family``: ``dt((y - mu)/sigma,
    df, TRUE) - log(sigma)``; ``pm.StudentT``'s ``logp`` with ``nu = ν``, ``sigma = σ``).

    :math:`c(\nu)` is a difference of two log-gammas of size ν log ν: written out it loses
    all precision once ν ≳ 1e12 (at ν = 1e16 each row is off by O(10), enough for the
    optimiser to run there). Beyond ν = 1e5 it is the asymptotic series
    :math:`\log\Gamma(x+\tfrac12) - \log\Gamma(x) = \tfrac12\log x - \tfrac1{8x} +
    \tfrac1{192x^3} + O(x^{-5})`, x = ν/2 (Abramowitz & Stegun 6.1.47), i.e.
    :math:`c(\nu) = -\tfrac12\log 2 - \tfrac1{4\nu} + \tfrac1{24\nu^3}`, exact to 1e-26."""
    r = (y - mu) / sigma
    big = df > 1e5
    safe_small = pt.switch(big, 1.0, df)
    safe_big = pt.switch(big, df, 1e5)
    c_small = (pt.gammaln((safe_small + 1.0) / 2.0) - pt.gammaln(safe_small / 2.0)
               - 0.5 * pt.log(safe_small))
    c_big = -0.5 * np.log(2.0) - 0.25 / safe_big + 1.0 / (24.0 * safe_big ** 3)
    return n * (pt.switch(big, c_big, c_small) - 0.5 * np.log(np.pi) - pt.log(sigma)
                - (df + 1.0) / 2.0 * pt.log1p(r ** 2 / df))


def _is_integer(v: np.ndarray) -> np.ndarray:
    return np.abs(v - np.round(v)) <= 1e-8 * np.maximum(1.0, np.abs(v))


def _check_binomial(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any(y < 0):
        raise ModelSpecError(f"binomial response {column!r} has negative successes")
    if np.any(y > n + 1e-8):
        raise ModelSpecError(f"binomial response {column!r} has successes > trials (or a "
                             "proportion above 1)")
    if not np.all(_is_integer(y)) or not np.all(_is_integer(n)):
        raise ModelSpecError(f"binomial response {column!r}: non-integer number of successes or "
                             "trials; give 0/1, cbind(successes, failures), or proportions with "
                             "weights = number of trials")


def _binomial_factor(col, column: str) -> np.ndarray:
    r"""A binomial response from a factor, as lme4's ``glmer`` reads it.

    A pandas Categorical: the first category in the Categorical's order is failure and every
    other category success, :math:`y_i = [\,c_i \ne c_{(1)}\,]`. As in lme4, whose model frame
    is built with ``drop.unused.levels = TRUE`` (``glFormula``), categories with no row in the
    model frame are dropped first, so :math:`c_{(1)}` is the first category that occurs. A
    boolean column: True = success. Strings (object dtype) have no level order and are refused
    with a :class:`ModelSpecError` saying how to give one.

    References
    ----------
    R's ``binomial()$initialize`` (``family.R``: "if a factor, the first level denotes failure
    and all others success"); lme4's ``glFormula`` (``R/modular.R``).
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        seen = codes[codes >= 0]
        first = seen.min() if len(seen) else 0
        return np.where(codes < 0, np.nan, (codes > first).astype(float))
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=float)
    found = sorted(str(v) for v in pd.unique(col.dropna()))[:10]
    example = (f"data[{column!r}] = pd.Categorical(data[{column!r}], categories="
               f"[{found[0]!r}, {found[1]!r}])  # first = failure" if len(found) == 2 else
               f"data[{column!r}] = pd.Categorical(data[{column!r}], categories=[failure, "
               "success, ...])")
    raise ModelSpecError(
        f"binomial response {column!r} has dtype {col.dtype} (values {found}) and no level "
        "order, so which value is the failure is not defined (R's binomial takes a factor: the "
        f"first level is failure, the others success). Give the order: {example}, or compare "
        f"with the success level: data[{column!r}] == {found[-1] if found else 'yes'!r} "
        "(a logical response)")


def _check_poisson(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any(y < 0):
        raise ModelSpecError(f"poisson response {column!r} has negative counts")
    if not np.all(_is_integer(y)):
        raise ModelSpecError(f"poisson response {column!r} has non-integer counts")


def _check_negbin(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any(y < 0) or not np.all(_is_integer(y)):
        raise ModelSpecError(f"negative binomial response {column!r} must be non-negative integer "
                             "counts")


def _check_truncated(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any(y < 1) or not np.all(_is_integer(y)):
        raise ModelSpecError(f"zero-truncated response {column!r} must be positive integer counts "
                             f"(found {int(np.sum((y < 1) | ~_is_integer(y)))} value(s) that are "
                             "not); a hurdle model's zeros need ziformula=, or fit the rows with "
                             "y > 0 only")


def _check_gamma(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any(y <= 0):
        raise ModelSpecError(f"Gamma response {column!r} must be positive (found "
                             f"{int(np.sum(y <= 0))} value(s) <= 0)")


def _check_beta(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any((y <= 0) | (y >= 1)):
        raise ModelSpecError(f"Beta response {column!r} must lie strictly between 0 and 1 (found "
                             f"{int(np.sum((y <= 0) | (y >= 1)))} value(s) outside); squeeze "
                             "exact 0s and 1s, e.g. (y·(n − 1) + 0.5)/n (Smithson & Verkuilen 2006)")


def _check_tweedie(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any(y < 0) or not np.all(np.isfinite(y)):
        raise ModelSpecError(f"tweedie response {column!r} must be non-negative and finite "
                             f"(found {int(np.sum(~(y >= 0) | ~np.isfinite(y)))} value(s) that "
                             "are not; counts below zero have no Tweedie density)")


def _check_gaussian(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if not np.all(np.isfinite(y)):
        raise ModelSpecError(f"gaussian response {column!r} has non-finite values")


def _disp(d, default=1.0):
    return default if d is None else d


def _binomial_var(mu, n, d=None):
    return mu * (1 - mu) / n


def _poisson_var(mu, n, d=None):
    return mu / n


def _negbin_var(mu, n, d=None):
    return (mu + mu ** 2 / _disp(d)) / n


def _nbinom1_var(mu, n, d=None):
    return mu * (1 + _disp(d)) / n


def _gaussian_var(mu, n, d=None):
    return (_disp(d) ** 2 + 0.0 * mu) / n


def _truncated_poisson_mean(mu, d=None):
    return mu / -np.expm1(-mu)


def _truncated_negbin_mean(mu, d):
    return mu / -np.expm1(-d * np.log1p(mu / d))


def _truncated_poisson_var(mu, n, d=None):
    """m(1 + μ − m), m = μ/(1 − e^{−μ}) (PyTensor or NumPy μ)."""
    m = mu / (1 - np.e ** (-mu))
    return m * (1 + mu - m) / n


def _truncated_negbin_var(mu, n, d=None):
    """E(y²)/(1 − p₀) − m², E(y²) = μ + μ²/φ + μ² of the untruncated NB2."""
    d = _disp(d)
    nz = 1 - (d / (d + mu)) ** d
    m = mu / nz
    return ((mu + mu ** 2 / d + mu ** 2) / nz - m ** 2) / n


def _betabinomial_var(mu, n, d=None):
    """Var(y/n) = μ(1 − μ)(1 + (n − 1)/(1 + φ))/n."""
    return mu * (1 - mu) * (1 + (n - 1) / (1 + _disp(d))) / n


def _tweedie_var(mu, n, d=None):
    """φ μ^p / n (p: the power carried by ``d``, 1.5 for a start)."""
    return _disp(d) * mu ** shape_of(d, 1.5) / n


def _student_t_var(mu, n, d=None):
    """σ² ν/(ν − 2) / n for ν > 2 (infinite for ν ≤ 2; σ² for a start)."""
    nu = shape_of(d, np.inf)
    factor = 1.0 if np.isinf(nu) else (nu / (nu - 2.0) if nu > 2 else np.inf)
    return (_disp(d) ** 2 * factor + 0.0 * mu) / n


def _gamma_var(mu, n, d=None):
    return _disp(d) ** 2 * mu ** 2 / n


def _beta_var(mu, n, d=None):
    return mu * (1 - mu) / (1 + _disp(d)) / n


# Simulators, start rules and latent variances: module-level functions (not lambdas) so that a
# family and every result holding one pickle by reference.
def _binomial_sim(rng, mu, n, disp=None):
    return rng.binomial(np.round(n).astype(int), np.clip(mu, 0, 1)).astype(float)


def _poisson_sim(rng, mu, n, disp=None):
    return rng.poisson(mu).astype(float)


def _negbin_sim(rng, mu, n, disp):
    return rng.negative_binomial(disp, disp / (disp + mu)).astype(float)


def _nbinom1_sim(rng, mu, n, disp):
    return rng.negative_binomial(mu / disp, 1.0 / (1.0 + disp)).astype(float)


def _gaussian_sim(rng, mu, n, disp):
    return rng.normal(mu, disp / np.sqrt(n))


def _gamma_sim(rng, mu, n, disp):
    shape = 1.0 / disp ** 2
    return rng.gamma(shape, mu / shape)


def _beta_sim(rng, mu, n, disp):
    return rng.beta(mu * disp, (1 - mu) * disp)


def _tweedie_sim(rng, mu, n, disp):
    """Compound Poisson–Gamma draws: N ~ Poisson(λ), y | N ~ Gamma(N a, s), λ = μ^{2−p}/(φ(2 −
    p)), a = (2 − p)/(p − 1), s = φ(p − 1)μ^{p−1} (y = 0 when N = 0)."""
    p = shape_of(disp, 1.5)
    phi = np.asarray(disp, float)
    lam = mu ** (2 - p) / (phi * (2 - p))
    count = rng.poisson(lam)
    y = rng.gamma(np.maximum(count, 1) * (2 - p) / (p - 1), phi * (p - 1) * mu ** (p - 1))
    return np.where(count > 0, y, 0.0)


def _student_t_sim(rng, mu, n, disp):
    nu = shape_of(disp, np.inf)
    return mu + np.asarray(disp, float) * rng.standard_t(nu, size=np.shape(mu)) / np.sqrt(n)


def _truncated_ppf(rng, mu, p0, ppf):
    """Zero-truncated draws by inversion: F⁻¹(U) with U ~ Uniform(p₀, 1)."""
    u = rng.uniform(p0, 1.0)
    return np.maximum(ppf(u), 1.0).astype(float)


def _truncated_poisson_sim(rng, mu, n, disp=None):
    return _truncated_ppf(rng, mu, np.exp(-mu), lambda u: scipy.stats.poisson.ppf(u, mu))


def _truncated_negbin_sim(rng, mu, n, disp):
    prob = disp / (disp + mu)
    return _truncated_ppf(rng, mu, prob ** disp, lambda u: scipy.stats.nbinom.ppf(u, disp, prob))


def _betabinomial_sim(rng, mu, n, disp):
    p = rng.beta(mu * disp, (1 - mu) * disp)
    return rng.binomial(np.round(n).astype(int), p).astype(float)


def _binomial_start(y, n):
    return (y + 0.5) / (n + 1)


def _count_start(y, n):
    return y + 0.1


def _gaussian_start(y, n):
    return y


def _gamma_start(y, n):
    return y


def _beta_start(y, n):
    return np.clip(y, 0.01, 0.99)


def _betabinomial_moment(y, mu, w):
    """φ from the overdispersion of the proportions: Var(y/n) = μ(1 − μ)/n·(1 + (n − 1)ρ),
    ρ = 1/(1 + φ), with y the proportion and w the trials (a start; ρ kept in (0.001, 0.9))."""
    resid = w * (y - mu) ** 2 / (mu * (1 - mu))  # E = 1 + (n − 1)ρ
    extra = np.sum(resid - 1.0) / max(np.sum(w - 1.0), 1e-8)
    rho = min(max(extra, 1e-3), 0.9)
    return 1.0 / rho - 1.0


def _negbin_moment(y, mu, w):
    """φ from the excess variance: Var − μ = μ²/φ."""
    excess = np.sum(w * ((y - mu) ** 2 - mu)) / np.sum(w * mu ** 2)
    return 1.0 / excess if excess > 1e-3 else 1e3


def _nbinom1_moment(y, mu, w):
    """φ from Var = μ(1 + φ): the Pearson dispersion minus one."""
    return max(np.sum(w * (y - mu) ** 2 / mu) / np.sum(w) - 1.0, 1e-3)


def _tweedie_moment(y, mu, w):
    """φ from Var = φμ^p at p = 1.5 (Pearson)."""
    return max(np.sum(w * (y - mu) ** 2 / mu ** 1.5) / np.sum(w), 1e-3)


def _student_t_moment(y, mu, w):
    """σ from the residuals' median absolute deviation (robust to the t's tails)."""
    return max(1.4826 * np.median(np.abs(y - mu)), 1e-8)


def _gaussian_moment(y, mu, w):
    """σ from the weighted residual mean square."""
    return max(np.sqrt(np.sum(w * (y - mu) ** 2) / np.sum(w)), 1e-8)


def _gamma_moment(y, mu, w):
    """φ (coefficient of variation) from the Pearson residuals (y − μ)/μ."""
    return np.sqrt(np.sum(w * ((y - mu) / mu) ** 2) / np.sum(w))


def _beta_moment(y, mu, w):
    """φ (precision) from Var = μ(1 − μ)/(1 + φ)."""
    return max(np.sum(w * mu * (1 - mu)) / np.sum(w * (y - mu) ** 2) - 1.0, 1.0)


def _ylogy(y, mu):
    """y log(y/μ), 0 at y = 0 (R's ``y_log_y``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)


def _binomial_dev(y, mu, n, disp=None):
    return 2 * n * (_ylogy(y, mu) + _ylogy(1 - y, 1 - mu))


def _poisson_dev(y, mu, n, disp=None):
    return 2 * n * (_ylogy(y, mu) - (y - mu))


def _negbin_dev(y, mu, n, size):
    return 2 * n * (y * np.log(np.maximum(1, y) / mu)
                    - (y + size) * np.log((y + size) / (mu + size)))


def _gamma_dev(y, mu, n, disp=None):
    return -2 * n * (np.log(np.where(y == 0, 1.0, y / mu)) - (y - mu) / mu)


def _nbinom1_dev(y, mu, n, phi):
    """2[ℓ(y; y, φ) − ℓ(y; μ, φ)] with size μ/φ (the saturated ℓ is 0 at y = 0)."""
    def ll(m):
        size = m / phi
        return (gamma_ratio(y, size) - size * np.log1p(phi)
                + y * (np.log(phi) - np.log1p(phi)))
    saturated = np.where(y > 0, ll(np.where(y > 0, y, 1.0)), 0.0)
    return 2 * n * (saturated - ll(mu))


def _gaussian_dev(y, mu, n, disp=None):
    return n * (y - mu) ** 2


def _beta_dev(y, mu, n, prec):
    def ll(m):
        return (gammaln(prec) - gammaln(m * prec) - gammaln((1 - m) * prec)
                + (m * prec - 1) * np.log(y) + ((1 - m) * prec - 1) * np.log1p(-y))
    return 2 * n * (ll(y) - ll(mu))


def _tweedie_dev(y, mu, n, disp):
    """n·d(y, μ) at the power carried by ``disp`` (:func:`~mixedppl.families.tweedie.
    tweedie_unit_deviance`; free of φ)."""
    return n * tweedie_unit_deviance(y, mu, float(shape_of(disp, np.nan)))


def _expit_plus_one(psi):
    return 1.0 + 1.0 / (1.0 + np.exp(-psi))


def _expit_plus_one_pt(psi):
    return 1.0 + pt.sigmoid(psi)


def _logit_minus_one(p):
    return np.log((p - 1.0) / (2.0 - p))


#: glmmTMB's ``psi``: the Tweedie power p = 1 + plogis(psi) (start p = 1.5), Student's
#: df ν = exp(psi) (start ν = 5). Default priors (``fit.sample()``): p ~ Uniform(1, 2), the
#: whole compound Poisson–Gamma range; ν ~ Gamma(2, 0.1), brms' default for Student's df
#: (Juárez & Steel 2010, J. Bus. Econ. Stat. 28, 52–65: mean 20, ν < 5 with probability 0.09).
TWEEDIE_POWER = ShapeParam("power", "Tweedie power", _expit_plus_one, _expit_plus_one_pt,
                           _logit_minus_one, 0.0,
                           PriorChoice("Uniform", {"lower": 1.0, "upper": 2.0}),
                           flat_outside=(-7.0, 7.0), probe=(1.05, 1.2, 1.4, 1.6, 1.8, 1.95),
                           limit="p → 1 is the Poisson-like end (φ-scaled counts), p → 2 the "
                                 "Gamma end")
STUDENT_DF = ShapeParam("df", "Student-t df", np.exp, pt.exp, np.log, float(np.log(5.0)),
                        PriorChoice("Gamma", {"alpha": 2.0, "beta": 0.1}),
                        flat_outside=(-np.inf, float(np.log(1000.0))),
                        probe=(1.5, 3.0, 5.0, 10.0, 30.0, 100.0),
                        limit="ν → ∞ is the Gaussian limit: the data show no heavier tails than "
                              "the normal; family='gaussian' fits the limit")

_BINOMIAL_LATENT = {"logit": np.pi ** 2 / 3, "probit": 1.0, "cloglog": np.pi ** 2 / 6}


def _binomial_latent(link):
    return _BINOMIAL_LATENT.get(link.name)


FAMILIES: dict[str, GLMFamily] = {
    "binomial": GLMFamily("binomial", ("logit", "probit", "cloglog", "cauchit"), _binomial_logp,
                          _binomial_var, _check_binomial, _binomial_sim, _binomial_start,
                          factor_response=_binomial_factor, trials=True, zero_diverges=True,
                          latent=_binomial_latent, deviance=_binomial_dev,
                          logp_logs=_binomial_logp_logs),
    "poisson": GLMFamily("poisson", ("log", "sqrt", "identity"), _poisson_logp, _poisson_var,
                         _check_poisson, _poisson_sim, _count_start, zero_diverges=True,
                         deviance=_poisson_dev),
    "negative_binomial": GLMFamily("negative_binomial", ("log",), _negbin_logp, _negbin_var,
                                   _check_negbin, _negbin_sim, _count_start, _negbin_moment,
                                   dispersion="size", hessian="observed", zero_diverges=True,
                                   deviance=_negbin_dev,
                                   dispersion_limit=DispersionLimit(
                                       "above", 1e6, "NB2 size (theta)",
                                       _over_dispersion_limit("Poisson"))),
    "nbinom1": GLMFamily("nbinom1", ("log",), _nbinom1_logp, _nbinom1_var, _check_negbin,
                         _nbinom1_sim, _count_start, _nbinom1_moment, dispersion="phi",
                         hessian="observed", zero_diverges=True, deviance=_nbinom1_dev,
                         dispersion_limit=DispersionLimit(
                             "below", 1e-6, "nbinom1 dispersion (phi)",
                             _over_dispersion_limit("Poisson"))),
    "gamma": GLMFamily("gamma", ("log", "inverse", "identity"), _gamma_logp, _gamma_var,
                       _check_gamma, _gamma_sim, _gamma_start, _gamma_moment, dispersion="cv",
                       hessian="observed", deviance=_gamma_dev, tmb_disp_scale=-2.0),
    "beta": GLMFamily("beta", ("logit",), _beta_logp, _beta_var, _check_beta, _beta_sim,
                      _beta_start, _beta_moment, dispersion="precision", hessian="observed",
                      deviance=_beta_dev),
    "gaussian": GLMFamily("gaussian", ("identity", "log", "inverse"), _gaussian_logp,
                          _gaussian_var, _check_gaussian, _gaussian_sim, _gaussian_start,
                          _gaussian_moment, dispersion="sigma", hessian="observed",
                          deviance=_gaussian_dev, tmb_disp_scale=2.0),
    "truncated_poisson": GLMFamily("truncated_poisson", ("log",), _truncated_poisson_logp,
                                   _truncated_poisson_var, _check_truncated,
                                   _truncated_poisson_sim, _count_start, hessian="observed",
                                   truncated_mean=_truncated_poisson_mean),
    "truncated_nbinom2": GLMFamily("truncated_nbinom2", ("log",), _truncated_negbin_logp,
                                   _truncated_negbin_var, _check_truncated,
                                   _truncated_negbin_sim, _count_start, _negbin_moment,
                                   dispersion="size", hessian="observed",
                                   truncated_mean=_truncated_negbin_mean,
                                   dispersion_limit=DispersionLimit(
                                       "above", 1e6, "NB2 size (theta)",
                                       _over_dispersion_limit("truncated Poisson"))),
    "betabinomial": GLMFamily("betabinomial", ("logit", "probit", "cloglog"), _betabinomial_logp,
                              _betabinomial_var, _check_binomial, _betabinomial_sim,
                              _binomial_start, _betabinomial_moment, dispersion="precision",
                              hessian="observed", factor_response=_binomial_factor, trials=True,
                              zero_diverges=True,
                              dispersion_limit=DispersionLimit(
                                  "above", 1e6, "beta-binomial precision (phi)",
                                  _over_dispersion_limit("binomial"))),
    "tweedie": GLMFamily("tweedie", ("log",), _tweedie_logp, _tweedie_var, _check_tweedie,
                         _tweedie_sim, _count_start, _tweedie_moment, dispersion="phi",
                         hessian="observed", zero_diverges=True, shape=TWEEDIE_POWER,
                         deviance=_tweedie_dev),
    "student_t": GLMFamily("student_t", ("identity", "log", "inverse"), _student_t_logp,
                           _student_t_var, _check_gaussian, _student_t_sim, _gaussian_start,
                           _student_t_moment, dispersion="sigma", hessian="observed",
                           shape=STUDENT_DF),
}
