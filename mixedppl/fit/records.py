r"""Frozen fit records: what a fit computes, handed up to inference, diagnostics and results.

``fit_lmm`` returns an :class:`LMMFit`; the Laplace / AGQ fit's pieces are described by
:class:`LaplaceFit`. Records hold numbers and the compiled objective, never a result object:
``inference/``, ``diagnostics/`` and ``bayes/`` are functions of a record, and the result
classes (``results/``) wrap one.

For term k with relative covariance factor :math:`T_k(\theta)` (lme4's
:math:`\Lambda_k = I_{G_k} \otimes T_k`), the random effects' covariance is

.. math:: \Sigma_k = s^2\, T_k T_k^\top,

s the residual SD σ̂ for an LMM (θ is relative to σ) and 1 for families without a scale
parameter (:func:`term_covariances`, the one θ → T → Σ computation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..spec.model_spec import ModelSpec
from ..spec.reterm import relative_factors
from .optimize import OptSummary

__all__ = ["LMMFit", "LaplaceFit", "term_covariances", "group_labels", "residual_variance",
           "beta_covariance"]


def residual_variance(estimates: dict, n: int, p: int, reml: bool) -> float:
    """σ̂² = r²(θ) / (n − p·reml) from the graph's estimates at θ (``pwrss`` = r²); ``n`` counts
    the rows with positive weight (the objective's ``cp.n``)."""
    return float(estimates["pwrss"]) / (n - (p if reml else 0))


def beta_covariance(estimates: dict, scale: float) -> np.ndarray:
    """vcov β̂ = σ̂² (R_XᵀR_X)⁻¹ from the estimates' ``Lxx`` = R_Xᵀ."""
    Linv = np.linalg.inv(np.asarray(estimates["Lxx"]))
    return scale * Linv.T @ Linv


def term_covariances(terms, theta: np.ndarray, scale: float) -> tuple[np.ndarray, ...]:
    r"""Σ_k = scale · T_k T_kᵀ for each term (see the module docstring).

    Parameters
    ----------
    terms : sequence of ReTerm
        The model's random-effect terms (``spec.terms``), θ laid out term after term.
    theta : ndarray
        lme4's θ.
    scale : float
        σ̂² for an LMM, 1 otherwise.

    Returns
    -------
    tuple of ndarray
        One (ℓ_k, ℓ_k) covariance matrix per term.

    Examples
    --------
    >>> import numpy as np, mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> term_covariances(spec.terms, np.array([1.0, 0.5, 2.0]), 4.0)[0].tolist()
    [[4.0, 2.0], [2.0, 17.0]]
    """
    return tuple(scale * T @ T.T for T in relative_factors(terms, theta))


def group_labels(terms) -> list[str]:
    """Group names as R prints them: a repeated factor gets ``.1``, ``.2`` (``Subject.1``).

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
    ...                 mp.datasets.load("sleepstudy")).spec
    >>> group_labels(spec.terms)
    ['Subject', 'Subject.1']
    """
    seen: dict[str, int] = {}
    out = []
    for t in terms:
        k = seen.get(t.group, 0)
        out.append(t.group if k == 0 else f"{t.group}.{k}")
        seen[t.group] = k + 1
    return out


@dataclass(frozen=True, eq=False)
class LMMFit:
    r"""A linear mixed model fitted by profiled REML / ML (what :func:`~mixedppl.fit.lmm_fit.fit_lmm`
    computes), as lme4's ``merMod`` slots.

    Attributes
    ----------
    spec : ModelSpec
    reml : bool
    theta : ndarray
        lme4's θ at the optimum (after the boundary check).
    beta : ndarray
        β̂(θ̂).
    sigma : float
        σ̂ = √(r²(θ̂) / (n − p·reml)), r² the penalised residual sum of squares.
    vcov_beta : ndarray
        σ̂² (R_Xᵀ R_X)⁻¹.
    b : tuple of ndarray
        Conditional modes per term, (G_k, ℓ_k).
    condvar : tuple of ndarray
        Conditional covariances of b per term, (G_k, ℓ_k, ℓ_k), scaled by σ̂².
    covs : tuple of ndarray
        Σ_k = σ̂² T_k T_kᵀ per term (:func:`term_covariances`).
    objective_value : float
        The optimised criterion at θ̂: the REML criterion for REML fits, the ML deviance otherwise.
    fval : float
        The optimiser's final value (after lme4's boundary check).
    opt : OptSummary
    converged, is_singular : bool
    objective : LMMObjective
        The compiled profiled deviance (reused by refits, profiles, Satterthwaite df).
    estimates : dict
        Raw graph outputs at θ̂ (``beta``, ``Lxx``, ``pwrss``, ``ldL2``, ``ldRX2``,
        ``deviance``, unscaled ``condvar``, ``b``).
    timing : dict
        Seconds: ``total``, ``compile``, ``optimize``, ``estimates``.

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.fit.lmm_fit import fit_lmm
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> rec = fit_lmm(spec)
    >>> round(rec.sigma, 4), round(rec.loglik, 3)
    (25.5918, -871.814)
    """

    spec: ModelSpec = field(repr=False)
    reml: bool
    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    vcov_beta: np.ndarray = field(repr=False)
    b: tuple = field(repr=False)
    condvar: tuple = field(repr=False)
    covs: tuple = field(repr=False)
    objective_value: float
    fval: float
    opt: OptSummary = field(repr=False)
    converged: bool
    is_singular: bool
    objective: object = field(repr=False)
    estimates: dict = field(repr=False, default_factory=dict)
    timing: dict = field(repr=False, default_factory=dict)

    @classmethod
    def from_estimates(cls, spec: ModelSpec, reml: bool, theta: np.ndarray, estimates: dict,
                       n: int, **fields) -> "LMMFit":
        r"""The record at θ from the graph's estimates: σ̂² = r²/(n − p·reml),
        vcov β̂ = σ̂² (R_XᵀR_X)⁻¹ (``Lxx`` = R_Xᵀ), condvar scaled by σ̂², Σ_k by σ̂².

        ``n`` is the number of rows with positive weight (the objective's ``cp.n``);
        ``fields`` are the remaining attributes (opt, converged, …).
        """
        theta = np.asarray(theta, float)
        scale = residual_variance(estimates, n, spec.p, reml)
        return cls(spec=spec, reml=bool(reml), theta=theta,
                   beta=np.asarray(estimates["beta"]), sigma=float(np.sqrt(scale)),
                   vcov_beta=beta_covariance(estimates, scale),
                   b=tuple(np.asarray(v) for v in estimates["b"]),
                   condvar=tuple(scale * np.asarray(v) for v in estimates["condvar"]),
                   covs=term_covariances(spec.terms, theta, scale),
                   objective_value=float(estimates["deviance"]), estimates=estimates, **fields)

    @property
    def scale(self) -> float:
        """Residual variance σ̂²."""
        return self.sigma ** 2

    @property
    def loglik(self) -> float:
        """−objective_value / 2: the (REML) log-likelihood, as lme4's ``logLik``."""
        return -0.5 * self.objective_value

    @property
    def n_params(self) -> int:
        """Fixed effects + θ + σ (lme4's ``logLik`` df)."""
        return self.spec.p + self.spec.n_theta + 1


@dataclass(frozen=True, eq=False)
class LaplaceFit:
    r"""A GLMM / CLMM fitted by the Laplace approximation or adaptive Gauss–Hermite quadrature
    (what :func:`~mixedppl.fit.laplace.fit_laplace` and, for nAGQ = 0,
    :func:`~mixedppl.fit.laplace_nagq0.fit_nagq0` compute), as lme4's ``glmerMod`` slots.

    The Laplace deviance over (θ, β, φ) is
    :math:`D = \log|L_\theta|^2 + \|u\|^2 - 2\sum_i \log p(y_i \mid \eta_i, \phi)` at the
    conditional mode :math:`\hat u`, :math:`\eta = X\beta + Z\Lambda_\theta u + o`.

    Attributes
    ----------
    spec : ModelSpec
    family, link : object
        The response family and its link (``spec.family``, ``spec.link``).
    counts, trials : ndarray
        The response as the family reads it (successes / counts / category codes) and the
        trials or prior weights (``spec.counts()``).
    theta, beta, phi : ndarray
        Random-effect covariance factors, fixed effects, family parameters (dispersion on the
        log scale, or a CLMM's threshold parameters).
    vcov_beta : ndarray
        Covariance of β̂, ``[2 H⁻¹]_ββ`` (H the Hessian of D over (θ, β, φ)); for nAGQ = 0
        lme4's ``(R_XᵀR_X)⁻¹`` from the penalised IRLS.
    vcov_beta_phi : ndarray
        Covariance of (β̂, φ̂) (the ββ block alone when φ is empty).
    alpha : ndarray
        A cumulative model's thresholds α(φ) (empty otherwise).
    vcov_alpha_beta : ndarray or None
        Covariance of (α̂, β̂), :math:`J V J^\top` with V = ``vcov_beta_phi`` and J the Jacobian
        of (α(φ), β) (ordinal's ``vcov()``); None for a GLMM.
    b, condvar : tuple of ndarray
        Conditional modes b = Λû per term (G, ℓ) and conditional covariances Λ(LLᵀ)⁻¹Λᵀ.
    mu, eta : ndarray
        Fitted means and linear predictor at the mode.
    deviance_laplace : float
        D at the optimum (−2 log-likelihood, constants included).
    hessian : ndarray or None
        H at the optimum (None for nAGQ = 0, whose vcov comes from the penalised IRLS).
    opt : OptSummary
    nAGQ : int
    converged, is_singular : bool
    separation : tuple of str
        Fixed effects flagged by the separation checks (binomial; :mod:`mixedppl.fit.checks`).
    zi_theta, zi_b, zi_condvar, eta_zi
        With random terms in the ziformula (``spec.zi_terms``,
        :mod:`mixedppl.fit.laplace_zire`): their θ, conditional modes and covariances, and the
        zero-inflation predictor η_zi at the mode (empty / None otherwise).
    timing : dict
        Seconds: ``compile`` (0 when cached), ``optimize``, ``total``.

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.fit.laplace import fit_laplace
    >>> spec = mp.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                 mp.datasets.load("cbpp"), family="binomial").spec
    >>> rec = fit_laplace(spec)
    >>> round(rec.loglik, 4), rec.theta.round(4).tolist()
    (-92.0263, [0.6423])
    """

    spec: ModelSpec = field(repr=False)
    family: object
    link: object
    counts: np.ndarray = field(repr=False)
    trials: np.ndarray = field(repr=False)
    theta: np.ndarray
    beta: np.ndarray
    vcov_beta: np.ndarray = field(repr=False)
    b: tuple = field(repr=False)
    condvar: tuple = field(repr=False)
    mu: np.ndarray = field(repr=False)
    eta: np.ndarray = field(repr=False)
    deviance_laplace: float
    hessian: np.ndarray | None = field(repr=False)
    opt: OptSummary = field(repr=False)
    nAGQ: int = 1
    phi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    vcov_beta_phi: np.ndarray | None = field(default=None, repr=False)
    alpha: np.ndarray = field(default_factory=lambda: np.zeros(0))
    vcov_alpha_beta: np.ndarray | None = field(default=None, repr=False)
    converged: bool = True
    is_singular: bool = False
    separation: tuple = ()
    timing: dict = field(default_factory=dict, repr=False)
    zi_theta: np.ndarray = field(default_factory=lambda: np.zeros(0))
    zi_b: tuple = field(default=(), repr=False)
    zi_condvar: tuple = field(default=(), repr=False)
    eta_zi: np.ndarray | None = field(default=None, repr=False)

    @property
    def covs(self) -> tuple[np.ndarray, ...]:
        """Σ_k = T_k T_kᵀ per term (no residual scale)."""
        return term_covariances(self.spec.terms, self.theta, 1.0)

    @property
    def zi_covs(self) -> tuple[np.ndarray, ...]:
        """Σ_k of the ziformula's random terms (``spec.zi_terms``; empty without them)."""
        if not self.spec.zi_terms:
            return ()
        return term_covariances(self.spec.zi_terms, self.zi_theta, 1.0)

    @property
    def loglik(self) -> float:
        """−D/2 at the optimum."""
        return -0.5 * self.deviance_laplace
