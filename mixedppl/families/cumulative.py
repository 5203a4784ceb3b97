r"""The cumulative link model for ordinal responses as a family of the Laplace machinery.

For an ordinal response with categories :math:`1, \dots, K` and linear predictor
:math:`\eta_i = x_i^\top\beta + z_i^\top b` (no intercept: it is absorbed into the thresholds),

.. math:: P(Y_i \le j) = F(\alpha_j - \eta_i),\qquad
          P(Y_i = j) = F(\alpha_j - \eta_i) - F(\alpha_{j-1} - \eta_i),

with :math:`\alpha_0 = -\infty`, :math:`\alpha_K = +\infty` and :math:`F` the inverse link (a CDF:
logistic, normal, Gumbel-min for cloglog, Gumbel-max for loglog, Cauchy). The thresholds are kept
ordered by construction: the graph parameters :math:`\phi` map to

- ``"flexible"`` (ordinal's default): :math:`\alpha_1 = \phi_1`, :math:`\alpha_j = \alpha_{j-1} +
  e^{\phi_j}`;
- ``"equidistant"``: :math:`\alpha_j = \phi_1 + (j - 1)\,e^{\phi_2}`.

The log-density of row :math:`i` with weight :math:`n_i` is
:math:`n_i\log[F(\alpha_{y_i} - \eta_i) - F(\alpha_{y_i - 1} - \eta_i)]`.

The family plugs into :mod:`mixedppl.graph.laplace` (``loglik(y, η, n, φ, link)``; the Laplace
log-determinant uses the exact Hessian, as ordinal's ``clmm``), so the Laplace and adaptive
Gauss–Hermite fits of a CLMM are the GLMM code, not a copy of it.

References
----------
Christensen, R. H. B. (2019). *A Tutorial on fitting Cumulative Link Mixed Models with clmm2 from
the ordinal Package*; ordinal's ``clmm`` source (``R/clmm.R``, ``getNLA``).
Agresti, A. (2010). *Analysis of Ordinal Categorical Data*, 2nd ed., ch. 3 and 10.

Examples
--------
>>> import numpy as np
>>> fam = CumulativeFamily(5)
>>> fam.thresholds_np(np.array([-1.6, np.log(3.1), np.log(2.7), np.log(1.9)])).round(2).tolist()
[-1.6, 1.5, 4.2, 6.1]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor.tensor as pt

from ..core.exceptions import ModelSpecError
from .base import PriorChoice, Response, ResponseInput

__all__ = ["CumulativeFamily", "CUMULATIVE_LINKS", "THRESHOLDS", "read_ordinal"]

CUMULATIVE_LINKS = ("logit", "probit", "cloglog", "loglog", "cauchit")
THRESHOLDS = ("flexible", "equidistant")


def _density_derivatives(link_name: str, x, F):
    r"""The link's density f = F′ and its derivatives f′, f″ at x (F = the inverse link at x),
    written out for the five cumulative links in forms that keep their relative precision in
    the tails (logistic: :math:`f = \sigma(x)\sigma(-x)`, :math:`f' = f(\sigma(-x) - \sigma(x))`,
    :math:`f'' = f(1 - 6f)`; normal: :math:`f = \varphi(x)`, :math:`f' = -x f`,
    :math:`f'' = (x^2 - 1) f`; Gumbel-min (cloglog): :math:`f = e^{x - e^x}`,
    :math:`f' = f(1 - e^x)`, :math:`f'' = f((1 - e^x)^2 - e^x)`; Gumbel-max (loglog):
    :math:`f = e^{-x - e^{-x}}`, :math:`f' = f(e^{-x} - 1)`, :math:`f'' = f((e^{-x} - 1)^2 - e^{-x})`;
    Cauchy: :math:`f = 1/(\pi(1 + x^2))`, :math:`f' = -2x\pi f^2`,
    :math:`f'' = (6x^2 - 2)\pi^2 f^3`); another link's by differentiating F.

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.as_tensor_variable(np.array([0.0, 2.0]))
    >>> [np.round(v.eval(), 4).tolist() for v in _density_derivatives("probit", x, None)]
    [[0.3989, 0.054], [-0.0, -0.108], [-0.3989, 0.162]]
    """
    if link_name == "logit":
        lo, hi = pt.sigmoid(-x), pt.sigmoid(x)
        f0 = hi * lo
        return f0, f0 * (lo - hi), f0 * (1.0 - 6.0 * f0)
    if link_name == "probit":
        f0 = pt.exp(-0.5 * x ** 2) / np.sqrt(2.0 * np.pi)
        return f0, -x * f0, (x ** 2 - 1.0) * f0
    if link_name == "cloglog":
        ex = pt.exp(x)
        f0 = pt.exp(x - ex)
        return f0, f0 * (1.0 - ex), f0 * ((1.0 - ex) ** 2 - ex)
    if link_name == "loglog":
        emx = pt.exp(-x)
        f0 = pt.exp(-x - emx)
        return f0, f0 * (emx - 1.0), f0 * ((emx - 1.0) ** 2 - emx)
    if link_name == "cauchit":
        f0 = 1.0 / (np.pi * (1.0 + x ** 2))
        return f0, -2.0 * x * np.pi * f0 ** 2, (6.0 * x ** 2 - 2.0) * np.pi ** 2 * f0 ** 3
    f0 = pt.grad(F.sum(), x)
    f1 = pt.grad(f0.sum(), x)
    return f0, f1, pt.grad(f1.sum(), x)


class CumulativeFamily:
    """Cumulative link likelihood with ``K`` categories (response coded 0 … K−1).

    Parameters
    ----------
    n_categories : int
        K ≥ 3.
    threshold : {"flexible", "equidistant"}
    levels : list of str, optional
        The ordered category labels (what :meth:`read_response` reads the response by).
    """

    name = "cumulative"
    links = CUMULATIVE_LINKS
    hessian = "observed"
    dispersion = None
    trials = False
    #: The CLMM fit (:func:`mixedppl.clmm`); grouping factors may have as many levels as
    #: observations (lme4's glmer rule); the thresholds absorb the intercept.
    fit_kind = "clmm"
    allow_n = True
    absorbs_intercept = True
    no_random_message = ("formula {formula!r} has no random term such as '(1 | judge)'; add one "
                         "(or groups='judge'); for a model without random effects use "
                         "statsmodels' OrderedModel")

    def __init__(self, n_categories: int | None = None, threshold: str = "flexible",
                 levels=None):
        if threshold not in THRESHOLDS:
            raise ModelSpecError(f"threshold={threshold!r} is not available; choose from "
                                 f"{list(THRESHOLDS)}")
        self.levels = None if levels is None else [str(v) for v in levels]
        if n_categories is None and self.levels is not None:
            n_categories = len(self.levels)
        self.K = None if n_categories is None else int(n_categories)
        self.threshold = threshold

    @property
    def default_link(self) -> str:
        return self.links[0]

    def read_response(self, source: ResponseInput) -> Response:
        """Category codes 0 … K − 1 by the family's levels (see :func:`read_ordinal`)."""
        return read_ordinal(source, self.levels)

    def bind(self, response: Response) -> "CumulativeFamily":
        """The family with the K categories the response has (its levels, in order)."""
        return CumulativeFamily(len(response.levels), self.threshold, response.levels)

    def counts(self, response: np.ndarray, trials, weights: np.ndarray,
               column: str) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, w)``: the category codes and the prior weights."""
        return response.copy(), weights

    def check(self, y: np.ndarray, n: np.ndarray, column: str) -> None:
        """Codes must be 0 … K − 1."""
        if np.any((y < 0) | (y > self.K - 1)) or np.any(y != np.round(y)):
            raise ModelSpecError(f"ordinal response {column!r} must be category codes 0 … "
                                 f"{self.K - 1}")

    def check_response(self, y: np.ndarray, n: np.ndarray, response: Response,
                       weights: np.ndarray) -> None:
        """The codes (:meth:`check`); :func:`read_ordinal` has checked the categories."""
        self.check(y, n, response.expr)

    def latent_variance(self, link) -> float:
        """Not implemented for the cumulative family."""
        raise NotImplementedError("icc() / r_squared() are not implemented for cumulative "
                                  "link models")

    @property
    def key(self) -> tuple:
        """What the compiled graphs depend on. With flexible thresholds the graphs read
        K − 1 from the length of φ (:meth:`loglik_alpha`), so one compiled function serves
        every number of categories; equidistant thresholds are built from K."""
        if self.threshold == "flexible":
            return ("cumulative", self.threshold)
        return ("cumulative", self.K, self.threshold)

    @property
    def n_phi(self) -> int:
        return self.K - 1 if self.threshold == "flexible" else 2

    # -- thresholds --------------------------------------------------------------------------
    def thresholds(self, phi):
        """α(φ) as a PyTensor vector of length K − 1."""
        if self.threshold == "flexible":
            return pt.cumsum(pt.concatenate([phi[:1], pt.exp(phi[1:])]))
        return phi[0] + pt.exp(phi[1]) * pt.arange(self.K - 1)

    def thresholds_np(self, phi: np.ndarray) -> np.ndarray:
        """α(φ) in NumPy."""
        phi = np.asarray(phi, float)
        if self.threshold == "flexible":
            return np.cumsum(np.concatenate([phi[:1], np.exp(phi[1:])]))
        return phi[0] + np.exp(phi[1]) * np.arange(self.K - 1)

    def thresholds_jacobian(self, phi: np.ndarray) -> np.ndarray:
        """∂α/∂φ, (K − 1) × n_phi (delta method for the thresholds' covariance)."""
        phi = np.asarray(phi, float)
        if self.threshold == "flexible":
            steps = np.concatenate([[1.0], np.exp(phi[1:])])
            return np.tril(np.ones((self.K - 1, self.K - 1))) * steps[None, :]
        j = np.arange(self.K - 1)
        return np.column_stack([np.ones(self.K - 1), np.exp(phi[1]) * j])

    def phi_from_thresholds(self, alpha: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`thresholds_np` (α must be increasing)."""
        alpha = np.asarray(alpha, float)
        if self.threshold == "flexible":
            return np.concatenate([alpha[:1], np.log(np.diff(alpha))])
        spacing = (alpha[-1] - alpha[0]) / max(len(alpha) - 1, 1)
        return np.array([alpha[0], np.log(spacing)])

    def phi_names(self) -> list[str]:
        return [f"phi{j + 1}" for j in range(self.n_phi)]

    # -- likelihood --------------------------------------------------------------------------
    def loglik(self, y, eta, n, phi, link):
        """n_i · log P(Y_i = y_i | η_i) (PyTensor); y coded 0 … K − 1."""
        return self.loglik_alpha(y, eta, n, self.thresholds(phi), link)

    def loglik_alpha(self, y, eta, n, alpha, link):
        """As :meth:`loglik`, given the thresholds α themselves (the Bayesian path); the top
        category K − 1 is α's length, not a constant, so the graph serves every K."""
        top = alpha.shape[0]
        yi = pt.round(y).astype("int64")
        upper_alpha = pt.concatenate([alpha, pt.zeros(1)])[yi]
        lower_alpha = pt.concatenate([pt.zeros(1), alpha])[yi]
        F_upper = pt.switch(pt.eq(yi, top), 1.0, link.linkinv(upper_alpha - eta))
        F_lower = pt.switch(pt.eq(yi, 0), 0.0, link.linkinv(lower_alpha - eta))
        return n * pt.log(F_upper - F_lower)

    def eta_derivatives(self, y, eta, n, phi, link):
        r"""ℓ_i = n_i log P_i and its first three η-derivatives, written out (PyTensor).

        With :math:`a = \alpha_{y_i} - \eta_i`, :math:`b = \alpha_{y_i - 1} - \eta_i` and
        :math:`P = F(a) - F(b)`, the η-derivatives of P are :math:`P_1 = -(f(a) - f(b))`,
        :math:`P_2 = f'(a) - f'(b)` and :math:`P_3 = -(f''(a) - f''(b))` (f the link's density;
        f and its two derivatives by differentiating the inverse link alone), so

        .. math:: \ell' = n r_1,\quad \ell'' = n (r_2 - r_1^2),\quad
                  \ell''' = n (r_3 - 3 r_2 r_1 + 2 r_1^3),\qquad r_k = P_k / P.

        The numbers of differentiating :meth:`loglik` three times, from a graph that PyTensor
        rewrites in a fraction of the time (the NumPy tier's family graph,
        :mod:`mixedppl.graph.laplace_split`).

        Examples
        --------
        >>> import numpy as np, pytensor, pytensor.tensor as pt
        >>> from mixedppl.families.links import LINKS
        >>> fam, link = CumulativeFamily(3), LINKS["logit"]
        >>> y, eta, phi = pt.dvector("y"), pt.dvector("eta"), pt.dvector("phi")
        >>> d = fam.eta_derivatives(y, eta, pt.ones_like(eta), phi, link)
        >>> ll = fam.loglik(y, eta, pt.ones_like(eta), phi, link)
        >>> g = pt.grad(ll.sum(), eta)
        >>> f = pytensor.function([y, eta, phi], [d[1], g])
        >>> a, b = f([0.0, 1.0, 2.0], [0.3, -0.2, 1.1], [-0.5, 0.2])
        >>> bool(np.allclose(a, b))
        True
        """
        alpha = self.thresholds(phi)
        top = alpha.shape[0]
        yi = pt.round(y).astype("int64")
        a = pt.concatenate([alpha, pt.zeros(1)])[yi] - eta
        b = pt.concatenate([pt.zeros(1), alpha])[yi] - eta

        def cdf_and_derivatives(x, absent, value):
            F = link.linkinv(x)
            f0, f1, f2 = _density_derivatives(link.name, x, F)
            return (pt.switch(absent, value, F),
                    *(pt.switch(absent, 0.0, v) for v in (f0, f1, f2)))

        Fa, fa, fa1, fa2 = cdf_and_derivatives(a, pt.eq(yi, top), 1.0)
        Fb, fb, fb1, fb2 = cdf_and_derivatives(b, pt.eq(yi, 0), 0.0)
        P = Fa - Fb
        r1, r2, r3 = -(fa - fb) / P, (fa1 - fb1) / P, -(fa2 - fb2) / P
        return (n * pt.log(P), n * r1, n * (r2 - r1 ** 2),
                n * (r3 - 3.0 * r2 * r1 + 2.0 * r1 ** 3))

    def cumprob_np(self, alpha: np.ndarray, eta: np.ndarray, link) -> np.ndarray:
        """P(Y ≤ j), n × (K − 1)."""
        return link.linkinv_np(np.asarray(alpha)[None, :] - np.asarray(eta)[:, None])

    def prob_np(self, alpha: np.ndarray, eta: np.ndarray, link) -> np.ndarray:
        """P(Y = j), n × K (rows sum to 1)."""
        cum = self.cumprob_np(alpha, eta, link)
        n = cum.shape[0]
        return np.diff(np.hstack([np.zeros((n, 1)), cum, np.ones((n, 1))]), axis=1)

    def simulate(self, rng, eta, n, alpha, link) -> np.ndarray:
        """One category code per row drawn from P(Y = j | η) (posterior predictive; ``alpha``:
        the thresholds, ``n`` unused: a weight does not change the category drawn)."""
        prob = self.prob_np(np.asarray(alpha), np.atleast_1d(eta), link)
        u = rng.random(len(prob))[:, None]
        return np.minimum((np.cumsum(prob, axis=1) < u).sum(axis=1), self.K - 1).astype(float)

    # -- start values ------------------------------------------------------------------------
    def start_values(self, spec, link, y, ntr) -> tuple[np.ndarray, np.ndarray]:
        """β = 0 and thresholds at the link quantiles of the weighted marginal cumulative
        proportions (the model without covariates)."""
        w = np.where(ntr > 0, ntr, 0.0)
        counts = np.bincount(np.round(y).astype(int), weights=w, minlength=self.K)
        cum = np.cumsum(counts)[:-1] / counts.sum()
        alpha = link.link_np(np.clip(cum, 1e-4, 1 - 1e-4))
        alpha = np.maximum.accumulate(alpha + 1e-3 * np.arange(len(alpha)))
        return np.zeros(spec.p), self.phi_from_thresholds(alpha)

    def prior_defaults(self, spec, link, y: np.ndarray, ntr: np.ndarray
                       ) -> dict[str, PriorChoice]:
        """Thresholds ~ Normal(α⁰, 5) at the start thresholds α⁰ (the first one only, for
        ``"equidistant"``)."""
        _, phi0 = self.start_values(spec, link, y, ntr)
        alpha0 = np.round(self.thresholds_np(phi0), 3)
        mu = alpha0 if self.threshold == "flexible" else float(alpha0[0])
        return {"thresholds": PriorChoice("Normal", {"mu": mu, "sigma": 5.0})}


def read_ordinal(source: ResponseInput, requested=None) -> Response:
    """An ordinal response as ordinal's ``clm``: category codes 0 … K − 1 and the levels.

    The order is ``requested`` (labels), else the categories of an ordered Categorical, else
    the sorted integers; unordered categoricals, strings and logicals without ``requested`` are
    refused (no order). At least 3 observed categories, none of the levels empty.
    """
    expr, col = source.expr, source.column
    if col is None:
        raise ModelSpecError(f"the response of a clmm must be a column of data; got {expr!r}")
    if requested is not None:
        levels = [str(v) for v in requested]
    elif isinstance(col.dtype, pd.CategoricalDtype):
        if not col.cat.ordered:
            raise ModelSpecError(
                f"response {expr!r} is an unordered categorical: give the order of its "
                f"categories with levels=[...] (e.g. levels={list(map(str, col.cat.categories))}"
                f") or make it ordered: data[{expr!r}] = data[{expr!r}].cat.as_ordered()")
        levels = [str(c) for c in col.cat.categories]
    elif pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        found = sorted(set(source.as_character(col)))
        raise ModelSpecError(
            f"response {expr!r} has no order (dtype {col.dtype}): give the order of its "
            f"categories with levels=[...], e.g. levels={found[:10]}, or pass an ordered "
            "pandas Categorical")
    else:
        values = col.to_numpy(dtype=float)
        if np.any(np.abs(values - np.round(values)) > 1e-8):
            raise ModelSpecError(f"response {expr!r} has non-integer values; an ordinal "
                                 "response needs categories (integers, strings with "
                                 "levels=, or an ordered Categorical)")
        levels = [str(v) for v in source.as_character(pd.Series(np.unique(values).astype(int)))]
    labels = source.as_character(col)
    lookup = {lev: i for i, lev in enumerate(levels)}
    unknown = sorted(set(labels) - set(lookup))
    if unknown:
        raise ModelSpecError(f"response {expr!r} has value(s) {unknown[:10]} that are not in "
                             f"its levels {levels}")
    codes = np.array([lookup[v] for v in labels], dtype=float)
    counts = np.bincount(codes.astype(int), minlength=len(levels))
    if np.sum(counts > 0) < 3:
        raise ModelSpecError(
            f"response {expr!r} has {int(np.sum(counts > 0))} observed categories; a "
            "cumulative link model needs at least 3 — for a binary response use "
            "mp.glmer(..., family='binomial')")
    empty = [lev for lev, c in zip(levels, counts) if c == 0]
    if empty:
        raise ModelSpecError(
            f"response {expr!r}: level(s) {empty} have no observations, so their thresholds "
            "are not identified; drop them (e.g. .cat.remove_unused_categories()) or merge "
            "them with a neighbour")
    return Response(codes, levels=levels, expr=expr)
