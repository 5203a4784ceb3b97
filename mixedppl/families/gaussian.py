r"""The Gaussian family of the linear mixed model, as a :class:`~mixedppl.families.base.Family`.

.. math:: \log p(y_i \mid \mu_i, \sigma) = -\tfrac12\log(2\pi\sigma^2/w_i)
          - \frac{w_i\,(y_i - \mu_i)^2}{2\sigma^2},\qquad \mathrm{Var}(y_i) = \sigma^2 / w_i,

with the identity link :math:`\mu = \eta` and prior weights :math:`w_i` (R's ``lm`` / ``lmer``
weights: precision weights). σ enters a graph on the log scale (``phi = log σ``).

An LMM is not fitted through this family's log-density: σ and β are profiled out of the deviance
(:mod:`mixedppl.fit.lmm_objective`, lme4's ``lmer``). The family reads and checks the response
(:meth:`GaussianFamily.read_response`, the default family of
:func:`~mixedppl.spec.model_spec.build_spec`) and names the fit :class:`mixedppl.Model` takes
(``fit_kind = "lmer"``).

References
----------
McCullagh, P. & Nelder, J. A. (1989). *Generalized Linear Models*, 2nd ed., §2.2.
Bates, D. et al. (2015). Fitting linear mixed-effects models using lme4. *J. Stat. Softw.* 67(1).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from mixedppl.families.base import ResponseInput
>>> frame = pd.DataFrame({"y": [1, 2], "x": [3, 4]})
>>> source = ResponseInput("log(y)", frame, evaluate=lambda e: np.log(frame[["y"]].to_numpy()))
>>> GAUSSIAN.read_response(source).y.round(3).tolist()
[0.0, 0.693]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor.tensor as pt

from ..core.exceptions import ModelSpecError
from .base import PriorChoice, Response, ResponseInput, check_not_constant
from .links import Link

__all__ = ["GaussianFamily", "GAUSSIAN"]


class GaussianFamily:
    """Normal responses with identity link (satisfies :class:`~mixedppl.families.base.Family`)."""

    name = "gaussian"
    links = ("identity",)
    fit_kind = "lmer"
    allow_n = False
    absorbs_intercept = False
    no_random_message = ("formula {formula!r} has no random-effects terms such as '(1 | group)'; "
                         "for a model without random effects use statsmodels' OLS/GLM")
    dispersion = "sigma"
    hessian = "observed"
    trials = False

    @property
    def default_link(self) -> str:
        return self.links[0]

    @property
    def key(self) -> tuple:
        return ("gaussian",)

    @property
    def n_phi(self) -> int:
        return 1

    def phi_names(self) -> list[str]:
        return ["log(sigma)"]

    def __reduce__(self):
        return "GAUSSIAN"  # the module's one instance (pickles by reference)

    def read_response(self, source: ResponseInput) -> Response:
        """A numeric (or logical) column, or an expression giving one column (``log(y)``)."""
        col = source.column
        if col is not None:
            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                raise ModelSpecError(
                    f"response {source.expr!r} must be numeric for a linear mixed model; it has "
                    f"dtype {col.dtype}. For an ordered categorical response use mp.clmm, for a "
                    "binary one mp.glmer(..., family='binomial').")
            return Response(col.to_numpy(dtype=float), expr=source.expr)
        return Response(source.numeric(), expr=source.expr)

    def bind(self, response: Response) -> "GaussianFamily":
        """The family itself (nothing is learnt from the response)."""
        return self

    def counts(self, response: np.ndarray, trials, weights: np.ndarray,
               column: str) -> tuple[np.ndarray, np.ndarray]:
        """``(y, w)``: the response and the prior weights."""
        return response, weights

    def check(self, y: np.ndarray, n: np.ndarray, column: str) -> None:
        """Every finite value is in the support (finiteness is checked by the spec)."""

    def check_response(self, y: np.ndarray, n: np.ndarray, response: Response,
                       weights: np.ndarray) -> None:
        """A constant response has no variation to model (lme4's ``check.response.not.const``;
        every row counts, as lmer's check)."""
        check_not_constant(y, response.expr)

    def prior_defaults(self, spec, link: Link, y: np.ndarray, n: np.ndarray
                       ) -> dict[str, PriorChoice]:
        """None of its own: σ's prior is the LMM's (:func:`mixedppl.bayes.priors.default_priors`)."""
        return {}

    def variance(self, mu, n, sigma=None):
        """Var(y | μ) = σ²/w."""
        return (1.0 if sigma is None else sigma) ** 2 / n + 0 * mu

    def loglik(self, y, eta, n, phi, link: Link):
        """Elementwise log N(y | μ, σ²/w) (PyTensor; φ = log σ)."""
        sigma = pt.exp(phi[0])
        mu = link.linkinv(eta)
        return (0.5 * pt.log(n) - 0.5 * np.log(2 * np.pi) - phi[0]
                - 0.5 * n * (y - mu) ** 2 / sigma ** 2)

    def simulate(self, rng, eta, n, sigma, link: Link) -> np.ndarray:
        """Draws of y ~ N(μ, σ²/w) (NumPy)."""
        mu = link.linkinv_np(np.asarray(eta, float))
        return rng.normal(mu, sigma / np.sqrt(np.broadcast_to(np.asarray(n, float), mu.shape)))

    def start_values(self, spec, link: Link, y: np.ndarray, n: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Weighted least squares β and log σ of its residuals."""
        sw = np.sqrt(n)
        beta = np.linalg.lstsq(spec.X * sw[:, None], (y - spec.offset) * sw, rcond=None)[0]
        resid = (y - spec.offset - spec.X @ beta) * sw
        return beta, np.array([np.log(max(np.sqrt(np.mean(resid ** 2)), 1e-8))])

    def latent_variance(self, link: Link) -> float:
        """The Gaussian residual variance is the fitted σ², not a constant of the family."""
        raise NotImplementedError("the latent variance of a Gaussian model is its residual "
                                  "variance σ² (fit.sigma ** 2)")


GAUSSIAN = GaussianFamily()
