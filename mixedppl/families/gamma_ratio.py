r"""The log-gamma difference :math:`\log\Gamma(y + s) - \log\Gamma(s)` and its derivatives in s,
accurate for every s > 0 (y ≥ 0).

The negative binomials (NB2's size, nbinom1's μ/φ) and the beta-binomial (μφ, (1 − μ)φ, φ)
hold this difference. Written out it is two numbers of size s log s: at s = 10¹² a row loses
~10⁻² log-units, at 10¹⁶ tens; the derivatives in η, divided by the dispersion, lose as much.
These are the Poisson and binomial limits (size → ∞, φ → 0, precision → ∞) that an optimiser
walks into on data that are not over-dispersed.

:math:`\Delta_0(y, s) = \log\Gamma(y + s) - \log\Gamma(s)` and, for k ≥ 1,
:math:`\Delta_k(y, s) = \psi^{(k-1)}(y + s) - \psi^{(k-1)}(s) = \partial^k_s \Delta_0`. Below
s = :data:`SERIES_FROM` they are scipy's ``gammaln`` / ``polygamma`` differences; beyond it, with
:math:`t = y + s` and :math:`D_p = t^{-p} - s^{-p} = s^{-p}\,\mathrm{expm1}(-p\,
\mathrm{log1p}(y/s))` (no cancellation), the asymptotic series (Abramowitz & Stegun 6.1.41,
6.3.18, 6.4.11):

.. math::
    \Delta_0 &= (s - \tfrac12)\,\mathrm{log1p}(y/s) + y\log t - y
                + \textstyle\sum_{j\ge1} \frac{B_{2j}}{2j(2j-1)} D_{2j-1},\\
    \Delta_1 &= \mathrm{log1p}(y/s) - \tfrac12 D_1 - \textstyle\sum_{j\ge1}
                \frac{B_{2j}}{2j} D_{2j},\\
    \Delta_{m+1} &= (-1)^{m+1}\Bigl[(m-1)!\,D_m + \tfrac{m!}{2} D_{m+1} +
                \textstyle\sum_{j\ge1} B_{2j}\frac{(2j+m-1)!}{(2j)!} D_{2j+m}\Bigr], \quad m \ge 1,

four Bernoulli terms each (the first omitted one is below 10⁻²⁵ of the value at s = 10³).

:class:`GammaRatio` is the PyTensor Op (order k, inputs y and s); its gradient in s is the Op of
order k + 1, so the Laplace graph's derivatives of any order stay one node each instead of the
two-branch expression trees a ``switch`` would differentiate (which cost 10–20 s of PyTensor
rewrites for nbinom1 and betabinomial).

Examples
--------
>>> import numpy as np
>>> from scipy.special import gammaln
>>> s = np.array([0.5, 30.0, 1e6])
>>> bool(np.allclose(gamma_ratio(3.0, s), gammaln(3.0 + s) - gammaln(s), rtol=1e-12))
True
>>> float(gamma_ratio(2.0, 1e16))    # log(s (s + 1)) = 2 log s, where gammaln's difference is 0
73.68272297580947
"""

from __future__ import annotations

import math

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from scipy.special import gammaln, polygamma

__all__ = ["SERIES_FROM", "gamma_ratio", "log_gamma_ratio", "GammaRatio"]

#: beyond this s the differences come from the asymptotic series
SERIES_FROM = 1e3

_BERNOULLI = (1.0 / 6.0, -1.0 / 30.0, 1.0 / 42.0, -1.0 / 30.0)   # B_2, B_4, B_6, B_8


def _series(y: np.ndarray, s: np.ndarray, order: int) -> np.ndarray:
    """Δ_order(y, s) from the asymptotic series (s ≥ SERIES_FROM)."""
    l1p = np.log1p(y / s)

    def D(p):   # t^-p − s^-p without cancellation
        return s ** (-p) * np.expm1(-p * l1p)

    if order == 0:
        out = (s - 0.5) * l1p + y * np.log(y + s) - y
        for j, b in enumerate(_BERNOULLI, 1):
            out = out + b / (2 * j * (2 * j - 1)) * D(2 * j - 1)
        return out
    if order == 1:
        out = l1p - 0.5 * D(1)
        for j, b in enumerate(_BERNOULLI, 1):
            out = out - b / (2 * j) * D(2 * j)
        return out
    m = order - 1
    out = math.factorial(m - 1) * D(m) + 0.5 * math.factorial(m) * D(m + 1)
    for j, b in enumerate(_BERNOULLI, 1):
        out = out + b * math.factorial(2 * j + m - 1) / math.factorial(2 * j) * D(2 * j + m)
    return (-1) ** (m + 1) * out


def gamma_ratio(y, s, order: int = 0) -> np.ndarray:
    r""":math:`\Delta_k(y, s)`: :math:`\log\Gamma(y + s) - \log\Gamma(s)` for k = 0, else its
    k-th derivative in s, :math:`\psi^{(k-1)}(y + s) - \psi^{(k-1)}(s)` (NumPy; y ≥ 0, s > 0).

    Examples
    --------
    >>> from scipy.special import digamma
    >>> bool(np.isclose(gamma_ratio(4.0, 2.5, 1), digamma(6.5) - digamma(2.5), rtol=1e-13))
    True
    """
    y, s = np.broadcast_arrays(np.asarray(y, float), np.asarray(s, float))
    big = s >= SERIES_FROM
    s_small = np.where(big, 1.0, s)
    if order == 0:
        exact = gammaln(y + s_small) - gammaln(s_small)
    else:
        exact = polygamma(order - 1, y + s_small) - polygamma(order - 1, s_small)
    if not big.any():
        return exact
    return np.where(big, _series(y, np.where(big, s, SERIES_FROM), order), exact)


class GammaRatio(Op):
    """Δ_order(y, s) elementwise (inputs of one shape); its gradient in s is the Op of the next
    order (y is data: no gradient)."""

    __props__ = ("order",)

    def __init__(self, order: int = 0):
        self.order = int(order)

    def make_node(self, y, s):
        y, s = (pt.as_tensor_variable(v).astype("float64") for v in (y, s))
        return Apply(self, [y, s], [s.type()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = np.asarray(gamma_ratio(inputs[0], inputs[1], self.order), float)

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[1]]

    def grad(self, inputs, output_grads):
        return [grad_undefined(self, 0, inputs[0], "y is data"),
                output_grads[0] * GammaRatio(self.order + 1)(*inputs)]


def log_gamma_ratio(y, s):
    r""":math:`\log\Gamma(y + s) - \log\Gamma(s)` as a PyTensor expression, accurate for every
    s > 0 (:class:`GammaRatio` of order 0 on y and s broadcast to one shape)."""
    ones = pt.ones_like(y + s, dtype="float64")
    return GammaRatio(0)(y * ones, s * ones)
