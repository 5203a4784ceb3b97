r"""Zero-inflation, hurdles and dispersion formulas (glmmTMB's ``ziformula`` / ``dispformula``).

A :class:`ZIDispFamily` wraps one row of :data:`~mixedppl.families.glm.FAMILIES` (the
*conditional* family) and adds up to two linear predictors, each with its own fixed-effects
design from the spec layer (``X_zi``, ``X_disp``; :attr:`ZIDispFamily.aux_designs` names them,
:func:`mixedppl.graph.laplace.design_inputs` hands them to the graphs):

- the zero-inflation predictor :math:`\eta^{zi} = X_{zi}\gamma`, :math:`\pi = \mathrm{logit}^{-1}
  (\eta^{zi})` (glmmTMB's ``ziformula``, logit link);
- the dispersion predictor :math:`\log\phi = X_{disp}\delta` (glmmTMB's ``dispformula``; our δ
  is on the row's log φ scale, glmmTMB's ``fixef(fit)$disp`` is ``tmb_disp_scale · δ``: log σ²
  for the Gaussian, log shape for the Gamma, log φ otherwise).

The family's parameter vector ``phi`` of the Laplace graph is :math:`(\gamma, \delta)`; its
elementwise log-density is, with :math:`f` the conditional family's density at
(μ, φ_i) and prior weight w (the trials of a binomial stay inside f),

.. math::

    \text{zero-inflation:}\quad \log p(y) = w\,\begin{cases}
        \log(\pi + (1 - \pi) f(0)) & y = 0 \\ \log(1 - \pi) + \log f(y) & y > 0\end{cases}

    \text{hurdle (truncated } f\text{):}\quad \log p(y) = w\,\begin{cases}
        \log\pi & y = 0 \\ \log(1 - \pi) + \log f_{>0}(y) & y > 0\end{cases}

with :math:`\log\pi = -\mathrm{softplus}(-\eta^{zi})`, :math:`\log(1 - \pi) =
-\mathrm{softplus}(\eta^{zi})` and :math:`\log(\pi + (1 - \pi) f(0))` as a ``logaddexp``, so
that nothing overflows for large :math:`|\eta^{zi}|`. The switch is on the data y only, so the
three derivatives the Laplace graph takes stay one expression per row. The Laplace
log-determinant uses the exact Hessian in η (TMB's Laplace, what glmmTMB maximises).

Means (glmmTMB's ``predict`` types): ``"conditional"`` μ (the link's mean), ``"zprob"`` π,
``"response"`` :math:`(1 - \pi)\mu` (zero-inflation) or :math:`(1 - \pi)\,m`,
:math:`m = \mu/(1 - p_0)` the truncated mean (hurdle). Variance of y:
:math:`(1 - \pi)(V_c + c^2) - (1 - \pi)^2 c^2` with :math:`(c, V_c)` the conditional mean and
variance of the non-structural part (μ and V(μ), or the truncated m and its variance).

References
----------
Brooks, M. E. et al. (2017). glmmTMB balances speed and flexibility among packages for
zero-inflated generalized linear mixed modeling. *The R Journal* 9(2), 378–400.
Lambert, D. (1992). Zero-inflated Poisson regression. *Technometrics* 34(1), 1–14.
Mullahy, J. (1986). Specification and testing of some modified count data models. *J.
Econometrics* 33(3), 341–365 (hurdles).

Examples
--------
>>> import numpy as np
>>> from mixedppl.families import FAMILIES
>>> fam = with_parts(FAMILIES["poisson"], ["(Intercept)"], [])
>>> fam.zi_mode, fam.n_phi, fam.aux_designs
('zi', 1, ('X_zi',))
>>> fam.zero_prob(np.array([0.0]), {"X_zi": np.ones((2, 1))}).tolist()
[0.5, 0.5]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from ..core.exceptions import ModelSpecError
from .base import PriorChoice, Response, ResponseInput, check_not_constant
from .glm import GLMFamily, shaped
from .links import Link

__all__ = ["ZIDispFamily", "with_parts", "unwrap_parts"]


def _is_integer(v: np.ndarray) -> np.ndarray:
    return np.abs(v - np.round(v)) <= 1e-8 * np.maximum(1.0, np.abs(v))


@dataclass(frozen=True)
class ZIDispFamily:
    """A GLMM family row with a zero-inflation / hurdle part and/or a dispersion formula.

    Attributes
    ----------
    base : GLMFamily
        The conditional family (a ``truncated_*`` row makes the zero part a hurdle).
    zi_names : tuple of str
        Columns of the zero-inflation design (empty: no zero part).
    disp_names : tuple of str
        Columns of the dispersion design (``("(Intercept)",)`` without a dispformula; empty
        for a family without dispersion).
    """

    base: GLMFamily
    zi_names: tuple[str, ...]
    disp_names: tuple[str, ...]

    fit_kind = "glmer"
    allow_n = True
    absorbs_intercept = False
    hessian = "observed"
    check_separation = False
    latent = None

    # -- what the layers after it read --------------------------------------------------------
    @property
    def name(self) -> str:
        return self.base.name

    @property
    def links(self) -> tuple[str, ...]:
        return self.base.links

    @property
    def default_link(self) -> str:
        return self.base.default_link

    @property
    def dispersion(self) -> str | None:
        return self.base.dispersion

    @property
    def trials(self) -> bool:
        return self.base.trials

    @property
    def zero_diverges(self) -> bool:
        return self.base.zero_diverges and not self.zi_names

    @property
    def tmb_disp_scale(self) -> float:
        return self.base.tmb_disp_scale

    @property
    def no_random_message(self) -> str:
        return self.base.no_random_message

    @property
    def zi_mode(self) -> str | None:
        """``"zi"`` (zero-inflation), ``"hurdle"`` (a truncated family with a zero part) or
        None."""
        if not self.zi_names:
            return None
        return "hurdle" if self.base.truncated_mean is not None else "zi"

    @property
    def truncated_mean(self):
        """Set where the response mean is not the inverse link (blocks link-scale intervals)."""
        return self.base.truncated_mean if self.zi_mode is None else _zi_mean_marker

    @property
    def aux_designs(self) -> tuple[str, ...]:
        """Names of the extra design matrices the graphs take, in order (spec.aux_designs)."""
        return (("X_zi",) if self.zi_names else ()) + (("X_disp",) if self.disp_names else ())

    @property
    def n_zi(self) -> int:
        return len(self.zi_names)

    @property
    def shape(self):
        """The conditional family's shape parameter (Tweedie power, t df), or None; it is the
        last entry of ``phi``."""
        return self.base.shape

    @property
    def n_phi(self) -> int:
        return len(self.zi_names) + len(self.disp_names) + (self.base.shape is not None)

    def shape_value(self, phi: np.ndarray) -> float | None:
        return self.base.shape_value(phi)

    @property
    def key(self) -> tuple:
        """The compiled graphs depend on which parts exist, not on their widths."""
        return ("zi_disp", self.base.key, self.zi_mode, bool(self.disp_names))

    def phi_names(self) -> list[str]:
        return ([f"zi~{n}" for n in self.zi_names]
                + [f"log({self.base.dispersion})~{n}" for n in self.disp_names]
                + ([] if self.base.shape is None else [f"psi({self.base.shape.name})"]))

    def split(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(γ, δ): zero-inflation and dispersion coefficients (δ on our log φ scale)."""
        phi = np.asarray(phi, float)
        return phi[:self.n_zi], phi[self.n_zi:self.n_zi + len(self.disp_names)]

    def row_parts(self) -> "ZIDispFamily":
        """The same family with its zero-inflation and dispersion designs replaced by one column
        each: :meth:`loglik` at ``phi = (1, 1)`` with ``X_zi = η_zi`` and ``X_disp = log φ`` per
        row (the PyMC model's likelihood, :mod:`mixedppl.bayes.glmm_pymc`).

        Examples
        --------
        >>> from mixedppl.families import FAMILIES
        >>> fam = with_parts(FAMILIES["negative_binomial"], ["(Intercept)", "x"], ["(Intercept)"])
        >>> fam.row_parts().n_phi
        2
        """
        return ZIDispFamily(self.base, ("eta_zi",) if self.zi_names else (),
                            ("log_disp",) if self.disp_names else ())

    def dispersion_at_limit(self, phi: np.ndarray) -> str | None:
        """The conditional family's :meth:`~.glm.GLMFamily.dispersion_at_limit` where the
        dispersion is one constant (no dispformula), else None."""
        if self.disp_names != ("(Intercept)",):
            return None
        return self.base.dispersion_at_limit(self.split(phi)[1])

    def zero_part_at_limit(self, zprob: np.ndarray | None) -> str | None:
        """A sentence when the fitted zero probability π (per row) is below 1e-8 on every row:
        the zero part's coefficients ran off to −∞ (no excess zeros; for a hurdle, no zeros),
        else None.

        Examples
        --------
        >>> from mixedppl.families import FAMILIES
        >>> fam = with_parts(FAMILIES["poisson"], ["(Intercept)"], [])
        >>> fam.zero_part_at_limit(np.full(3, 1e-11))[:45]
        'the zero-inflation probability is below 1e-08'
        """
        if zprob is None or not len(zprob) or float(np.max(zprob)) >= 1e-8:
            return None
        if self.zi_mode == "hurdle":
            return ("the hurdle's zero probability is below 1e-08 on every row (its coefficients "
                    "ran off to -Inf: the data have no zeros); the zero-part estimates and their "
                    "standard errors are not meaningful")
        return ("the zero-inflation probability is below 1e-08 on every row (its coefficients "
                "ran off to -Inf: no excess zeros); the zero-inflation estimates and their "
                "standard errors are not meaningful and the model without ziformula fits as "
                "well")

    def tmb_dispersion(self, phi: np.ndarray) -> np.ndarray:
        """glmmTMB's ``fixef(fit)$disp`` from the dispersion coefficients δ (``phi``'s tail)."""
        return self.base.tmb_disp_scale * np.asarray(phi, float)

    # -- the response --------------------------------------------------------------------------
    def read_response(self, source: ResponseInput) -> Response:
        return self.base.read_response(source)

    def bind(self, response: Response) -> "ZIDispFamily":
        return self

    def counts(self, response, trials, weights, column):
        return self.base.counts(response, trials, weights, column)

    def mean_response(self, y, n):
        return self.base.mean_response(y, n)

    def check(self, y: np.ndarray, n: np.ndarray, column: str) -> None:
        """The conditional family's support; a hurdle's zeros belong to its zero part."""
        if self.zi_mode is None:
            self.base.check(y, n, column)
            return
        if np.any(y < 0):
            raise ModelSpecError(f"{self.name} response {column!r} has negative values "
                                 f"({int(np.sum(y < 0))} below zero)")
        if self.zi_mode == "hurdle":
            if not np.all(_is_integer(y)):
                raise ModelSpecError(f"hurdle response {column!r} must be non-negative "
                                     "integer counts")
            return
        self.base.check(y, n, column)

    def check_response(self, y, n, response: Response, weights) -> None:
        """:meth:`check` and lme4's ``check.response.not.const``."""
        self.check(y, n, response.expr)
        used = response.y[weights > 0]
        if response.trials is None and len(used) and used[0] != 0:
            check_not_constant(used, response.expr)

    # -- likelihood (PyTensor) -----------------------------------------------------------------
    # The graphs are shared by every model of one key (the parts that exist, not their
    # widths), so phi is cut by the designs' symbolic widths, never by this object's counts.
    def _zi_width(self, X_zi):
        return X_zi.shape[1] if self.zi_names else 0

    def _disp_tensor(self, phi, X_zi, X_disp):
        if not self.disp_names:
            return None
        k = self._zi_width(X_zi)
        return pt.exp(X_disp @ phi[k:k + X_disp.shape[1]])

    def loglik(self, y, eta, n, phi, link, X_zi=None, X_disp=None):
        """Elementwise log p(y | η, γ, δ) (see the module docstring)."""
        if (self.zi_names and X_zi is None) or (self.disp_names and X_disp is None):
            raise ValueError("ZIDispFamily.loglik needs the designs X_zi / X_disp")
        if self.zi_mode is None:
            extra = () if self.base.shape is None else (self.base.shape.natural_pt(phi[-1]),)
            return self.base.logp(y, link.linkinv(eta), n, self._disp_tensor(phi, X_zi, X_disp),
                                  *extra)
        # γ by X_zi's symbolic width (see _disp_tensor)
        return self.loglik_zi(y, eta, X_zi @ phi[:X_zi.shape[1]], n, phi, link, X_disp, X_zi)

    def loglik_zi(self, y, eta, eta_zi, n, phi, link, X_disp=None, X_zi=None):
        """Elementwise log p(y | η, η_zi, δ) at a given zero-inflation predictor ``eta_zi``
        (``X_zi γ``, plus ``Z_zi b_zi`` when the ziformula has random terms:
        :mod:`mixedppl.graph.laplace_zire`). ``X_zi`` gives γ's width in φ (φ = (γ, δ, shape)),
        so δ is cut after it."""
        mu = link.linkinv(eta)
        disp = self._disp_tensor(phi, X_zi, X_disp)
        extra = () if self.base.shape is None else (self.base.shape.natural_pt(phi[-1]),)
        weight, inner_n = (1.0, n) if self.base.trials else (n, 1.0)
        log_f = self.base.logp(y, mu, inner_n, disp, *extra)
        log_pi, log_1mpi = -pt.softplus(-eta_zi), -pt.softplus(eta_zi)
        zero = pt.eq(y, 0)
        if self.zi_mode == "hurdle":
            ll = pt.switch(zero, log_pi, log_1mpi + log_f)
        else:
            ll = pt.switch(zero, pt.logaddexp(log_pi, log_1mpi + log_f), log_1mpi + log_f)
        return weight * ll

    def fisher_weights(self, eta, n, phi, link):
        raise NotImplementedError("zero-inflated / dispersion-formula models use the exact "
                                  "Hessian (hessian='observed')")

    # -- per-row parameters (NumPy) ------------------------------------------------------------
    def zero_prob(self, phi: np.ndarray, aux: dict) -> np.ndarray | None:
        """π per row from the zero-inflation design (None without a zero part); ``aux["zi_re"]``,
        where given, is added to η_zi (the ziformula's random terms)."""
        if not self.zi_names:
            return None
        eta_zi = np.asarray(aux["X_zi"], float) @ self.split(phi)[0]
        if aux.get("zi_re") is not None:     # Z_zi b_zi of the ziformula's random terms
            eta_zi = eta_zi + np.asarray(aux["zi_re"], float)
        return 1.0 / (1.0 + np.exp(-eta_zi))

    def row_dispersion(self, phi: np.ndarray, aux: dict) -> np.ndarray | None:
        """φ per row (the conditional family's natural scale; None without dispersion)."""
        if not self.disp_names:
            return None
        return shaped(np.exp(np.asarray(aux["X_disp"], float) @ self.split(phi)[1]),
                      self.base.shape_value(phi))

    def conditional_mean(self, mu: np.ndarray, disp=None) -> np.ndarray:
        """The mean of the non-structural part: μ, or the truncated mean of a hurdle."""
        return self.base.response_mean(mu, disp)

    def response_mean(self, mu: np.ndarray, disp=None, zprob=None) -> np.ndarray:
        """E(y): (1 − π) times the conditional part's mean (glmmTMB's ``type = "response"``)."""
        c = self.conditional_mean(np.asarray(mu, float), disp)
        return c if zprob is None else (1.0 - zprob) * c

    def variance(self, mu, n, disp=None, zprob=None):
        """Var(y/n): (1 − π)(V_c + c²) − (1 − π)²c² (see the module docstring)."""
        v = self.base.variance(mu, n, disp)
        if zprob is None:
            return v
        c = self.conditional_mean(np.asarray(mu, float), disp)
        return (1 - zprob) * (v + c ** 2) - (1 - zprob) ** 2 * c ** 2

    def simulate(self, rng, eta, n, disp, link, zprob=None) -> np.ndarray:
        """Draws: structural zeros with probability π, else the conditional family's."""
        y = self.base.simulate(rng, eta, n, disp, link)
        if zprob is None:
            return y
        return np.where(rng.uniform(size=y.shape) < zprob, 0.0, y)

    def unit_deviance(self, y, mu, n, disp=None):
        """The conditional family's unit deviance (at φ per row) for a dispersion formula;
        none for a zero part."""
        if self.zi_mode is None:
            return self.base.unit_deviance(y, mu, n, disp)
        raise NotImplementedError(f"no deviance residuals for a zero-inflated / hurdle / "
                                  f"dispersion-formula {self.name} model (glmmTMB has none)")

    def latent_variance(self, link: Link) -> float:
        raise NotImplementedError("icc() / r_squared() are not implemented for zero-inflated / "
                                  "dispersion-formula models")

    # -- start values --------------------------------------------------------------------------
    def start_values(self, spec, link: Link, y: np.ndarray,
                     ntr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """β from the conditional family's GLM start (on the rows with y > 0 for a hurdle),
        γ a constant logit of the share of zeros, δ the constant moment start of log φ."""
        beta = self.base.start_beta(spec, link, y, ntr)
        parts = []
        if self.zi_names:
            w = np.where(ntr > 0, ntr, 1.0) if not self.base.trials else np.ones_like(y)
            p0 = float(np.sum(w * (y == 0)) / np.sum(w))
            share = p0 if self.zi_mode == "hurdle" else 0.5 * p0
            share = min(max(share, 0.02), 0.98)
            parts.append(_constant(spec.aux_designs["X_zi"], np.log(share / (1 - share))))
        if self.disp_names:
            log_phi = self.base.start_phi(spec, link, beta, y, ntr)
            log_phi = float(log_phi[0]) if len(log_phi) else 0.0
            parts.append(_constant(spec.aux_designs["X_disp"], log_phi))
        if self.base.shape is not None:
            parts.append(np.array([self.base.shape.start]))
        return beta, np.concatenate(parts) if parts else np.zeros(0)

    def prior_defaults(self, spec, link, y, ntr) -> dict[str, PriorChoice]:
        r"""Default priors of the zero-inflation and dispersion coefficients (``"zi"``, ``"disp"``).

        Independent normals on the coefficients' own scales (logit π for γ, log φ for δ), as
        the fixed-effects priors of a GLMM (:mod:`mixedppl.bayes.priors`): a column constant
        over the rows centred at the start value of :meth:`start_values` (γ⁰ = logit of the
        share of zeros, halved for zero-inflation; δ⁰ = log φ⁰, the moment start) with sd 2.5
        for γ and 2 for δ; any other column centred at 0 with sd 2.5 / SD(x_j). Without a
        ``dispformula`` δ is one intercept, so ``"disp"`` is the conditional family's
        φ ~ LogNormal(log φ⁰, 2) written on log φ.
        """
        _, start = self.start_values(spec, link, y, ntr)
        gamma, delta = self.split(start)
        out = {}
        for key, coef, X, sd0 in (("zi", gamma, "X_zi", 2.5), ("disp", delta, "X_disp", 2.0)):
            if not len(coef):
                continue
            Xp = np.asarray(spec.aux_designs[X], float)
            sx = np.std(Xp, axis=0, ddof=1) if len(Xp) > 1 else np.zeros(Xp.shape[1])
            const = sx == 0
            mu = np.where(const, coef, 0.0)
            sd = np.where(const, sd0, 2.5 / np.where(const, 1.0, sx))
            out[key] = PriorChoice("Normal", {"mu": mu.tolist(), "sigma": sd.tolist()})
        return out


def _zi_mean_marker(mu, disp=None):
    """Placeholder that marks a response mean other than the inverse link (never called)."""
    raise NotImplementedError


def _constant(X: np.ndarray, value: float) -> np.ndarray:
    """Coefficients c with X c ≈ value on every row (least squares; the intercept's value)."""
    X = np.asarray(X, float)
    return np.linalg.lstsq(X, np.full(X.shape[0], value), rcond=None)[0]


def with_parts(base, zi_names, disp_names) -> ZIDispFamily:
    """The family ``base`` with a zero-inflation design (columns ``zi_names``; empty for none)
    and a dispersion design (``disp_names``; empty: the intercept where ``base`` has φ).

    Raises :class:`ModelSpecError` where glmmTMB's families take no such part.

    Examples
    --------
    >>> from mixedppl.families import FAMILIES
    >>> with_parts(FAMILIES["truncated_poisson"], ["(Intercept)", "minedno"], []).zi_mode
    'hurdle'
    >>> with_parts(FAMILIES["gaussian"], [], ["(Intercept)", "Days"]).phi_names()
    ['log(sigma)~(Intercept)', 'log(sigma)~Days']
    """
    if not isinstance(base, GLMFamily):
        raise ModelSpecError(f"ziformula / dispformula are read for the GLMM families "
                             f"(glmer); family {getattr(base, 'name', base)!r} takes neither")
    zi_names, disp_names = tuple(zi_names), tuple(disp_names)
    if zi_names and not _counts_family(base):
        raise ModelSpecError(f"ziformula: family {base.name!r} is continuous; zero-inflation is "
                             "for count and binomial families (poisson, nbinom2, nbinom1, "
                             "binomial, betabinomial; truncated_poisson / truncated_nbinom2 for "
                             "hurdles)")
    if base.dispersion is None:
        if disp_names:
            raise ModelSpecError(f"dispformula: family {base.name!r} has no dispersion "
                                 "parameter (use nbinom2, nbinom1, gaussian, Gamma, beta, "
                                 "betabinomial or truncated_nbinom2)")
    elif not disp_names:
        disp_names = ("(Intercept)",)
    return ZIDispFamily(base, zi_names, disp_names)


def unwrap_parts(family):
    """The conditional family of a :class:`ZIDispFamily` (a refit or ``update()`` rebuilds the
    parts from its formulas); any other family or name unchanged.

    Examples
    --------
    >>> from mixedppl.families import FAMILIES
    >>> unwrap_parts(with_parts(FAMILIES["poisson"], ["(Intercept)"], [])) is FAMILIES["poisson"]
    True
    >>> unwrap_parts("poisson")
    'poisson'
    """
    return family.base if isinstance(family, ZIDispFamily) else family


def _counts_family(base: GLMFamily) -> bool:
    """Discrete responses with mass at zero (or a truncated row, whose zero part is a hurdle)."""
    return base.name in _ZI_FAMILIES


_ZI_FAMILIES = ("poisson", "negative_binomial", "nbinom1", "binomial", "betabinomial",
                "truncated_poisson", "truncated_nbinom2")
