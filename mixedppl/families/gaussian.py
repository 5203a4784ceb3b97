r"""The Gaussian family of the linear mixed model, as a :class:`~mixedppl.families.base.Family`.

.. math:: \log p(y_i \mid \mu_i, \sigma) = -\tfrac12\log(2\pi\sigma^2/w_i)
          - \frac{w_i\,(y_i - \mu_i)^2}{2\sigma^2},\qquad \mathrm{Var}(y_i) = \sigma^2 / w_i,

with the identity link :math:`\mu = \eta` and prior weights :math:`w_i` (R's ``lm`` / ``lmer``
weights: precision weights). σ enters a graph on the log scale (``phi = log σ``).

An LMM is not fitted through this family's log-density: σ and β are profiled out of the deviance
(:mod:`mixedppl.fit.lmm_objective`, lme4's ``lmer``). The family reads and checks the response
(:meth:`GaussianFamily.read_response`, the default response of
:func:`~mixedppl.spec.model_spec.build_spec`) and names the model for :class:`mixedppl.Model`.

References
----------
McCullagh, P. & Nelder, J. A. (1989). *Generalized Linear Models*, 2nd ed., §2.2.
Bates, D. et al. (2015). Fitting linear mixed-effects models using lme4. *J. Stat. Softw.* 67(1).

Examples
--------
>>> import pandas as pd
>>> GAUSSIAN.read_response(pd.DataFrame({"y": [1, 2], "x": [3, 4]}), "log(y)").y.round(3).tolist()
[0.0, 0.693]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor.tensor as pt

from ..core.exceptions import ModelSpecError
from ..spec.design import model_matrix
from .base import Response
from .links import Link

__all__ = ["GaussianFamily", "GAUSSIAN"]


class GaussianFamily:
    """Normal responses with identity link (satisfies :class:`~mixedppl.families.base.Family`)."""

    name = "gaussian"
    links = ("identity",)
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

    def read_response(self, frame: pd.DataFrame, expr: str) -> Response:
        """A numeric (or logical) column, or an expression giving one column (``log(y)``)."""
        if expr in frame.columns:
            col = frame[expr]
            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                raise ModelSpecError(
                    f"response {expr!r} must be numeric for a linear mixed model; it has dtype "
                    f"{col.dtype}. For an ordered categorical response use mp.clmm, for a binary "
                    "one mp.glmer(..., family='binomial').")
            return Response(col.to_numpy(dtype=float), expr=expr)
        design = model_matrix(f"0 + {expr}", frame)
        if design.matrix.shape[1] != 1:
            raise ModelSpecError(f"response {expr!r} must give one numeric column")
        return Response(design.matrix[:, 0].astype(float), expr=expr)

    def check(self, y: np.ndarray, n: np.ndarray, column: str) -> None:
        """Every finite value is in the support (finiteness is checked by the spec)."""

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
