r"""The Tweedie density (1 < p < 2) as a PyTensor expression: Dunn & Smyth's series for the
part that does not depend on μ, as an Op with its gradient in (φ, p).

For :math:`1 < p < 2` the Tweedie distribution with mean μ, dispersion φ and power p
(:math:`\mathrm{Var}(y) = \phi\mu^p`) is a compound Poisson–Gamma law: a mass
:math:`P(y = 0) = \exp(-\kappa/\phi)` at zero and for :math:`y > 0`

.. math::

    f(y; \mu, \phi, p) = \frac{1}{y}\, W(y, \phi, p)\,
        \exp\Big(\frac{y\theta - \kappa}{\phi}\Big), \qquad
    \theta = \frac{\mu^{1-p}}{1-p}, \quad \kappa = \frac{\mu^{2-p}}{2-p},

    W = \sum_{j \ge 1} W_j, \qquad
    \log W_j = j \log z - \log j! - \log\Gamma(-j\alpha), \qquad
    \alpha = \frac{2-p}{1-p} < 0,

    \log z = -\alpha\log y + \alpha\log(p - 1) - (1 - \alpha)\log\phi - \log(2 - p).

The terms :math:`W_j` peak near :math:`j_{\max} = y^{2-p}/(\phi(2-p))` (Dunn & Smyth 2005,
§4); as a function of j, :math:`\log W_j` has curvature about :math:`-1/((p-1)j)`, so the
terms fall off like a normal curve of SD :math:`\sqrt{(p-1)j_{\max}}`. :func:`tweedie_logw`
sums :math:`j \in [j_{\max} - 12\,\mathrm{sd} - 20,\; j_{\max} + 12\,\mathrm{sd} + 20]`
(j ≥ 1) by ``logsumexp``, and checks that the two end terms are below
:math:`10^{-17}` of the largest (else the window grows), so the truncation error is below
rounding. W does not depend on μ, so the Laplace graph's derivatives in η never pass the Op;
its gradient in (φ, p) is the :math:`W_j/W`-weighted mean of :math:`\partial\log W_j`:

.. math::

    \frac{\partial\log W}{\partial\phi} = -\frac{1-\alpha}{\phi}\,\bar j, \qquad
    \frac{\partial\log W}{\partial p} = \overline{j\,\big(\partial_p\log z +
        \alpha'\,\psi(-j\alpha)\big)}, \qquad \alpha' = \frac{1}{(1-p)^2},

    \partial_p\log z = \alpha'\big(\log\phi + \log(p - 1) - \log y\big) + \frac{\alpha}{p-1}
        + \frac{1}{2-p}.

This is glmmTMB's ``dtweedie`` (TMB's ``tweedie_logW``, the same series), with glmmTMB's
parameterisation: log link on μ, ``betad = log φ``, ``psi = qlogis(p - 1)``.

References
----------
Dunn, P. K. & Smyth, G. K. (2005). Series evaluation of Tweedie exponential dispersion model
densities. *Statistics and Computing* 15, 267–280.
Jørgensen, B. (1997). *The Theory of Dispersion Models*, ch. 4.

Examples
--------
>>> import numpy as np
>>> from scipy import stats
>>> y, mu, phi, p = np.array([0.0, 0.5, 2.0]), 1.3, 0.8, 1.4
>>> logf = tweedie_logpdf_np(y, mu, phi, p)
>>> lam, a = mu ** (2 - p) / (phi * (2 - p)), (2 - p) / (p - 1)   # compound Poisson–Gamma
>>> scale = phi * (p - 1) * mu ** (p - 1)
>>> j = np.arange(1, 200)
>>> direct = [np.log(np.sum(stats.poisson.pmf(j, lam) * stats.gamma.pdf(v, j * a, scale=scale)))
...           for v in y[1:]]
>>> bool(np.allclose(logf, [-lam, *direct], rtol=1e-12))
True
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from scipy.special import digamma, gammaln, logsumexp

__all__ = ["tweedie_logw", "tweedie_logpdf_np", "tweedie_logp", "TweedieLogW",
           "tweedie_unit_deviance"]


def _window(y: np.ndarray, phi: np.ndarray, p: np.ndarray, k: float) -> tuple[np.ndarray, int]:
    jmax = np.maximum(y ** (2 - p) / (phi * (2 - p)), 1.0)
    sd = np.sqrt((p - 1) * jmax)
    lo = np.maximum(np.floor(jmax - k * sd - 20), 1.0)
    hi = np.ceil(jmax + k * sd + 20)
    return lo, int(np.max(hi - lo)) + 1


def tweedie_logw(y, phi, p, with_grad: bool = False):
    r"""log W(y, φ, p) of Dunn & Smyth's series (y > 0; 0 where y ≤ 0), and with ``with_grad``
    its derivatives in φ and p (see the module docstring).

    Parameters
    ----------
    y, phi, p : array_like
        Broadcast together; 1 < p < 2, φ > 0.
    with_grad : bool

    Returns
    -------
    ndarray, or (log W, ∂log W/∂φ, ∂log W/∂p)

    Examples
    --------
    >>> import numpy as np
    >>> j = np.arange(1, 400)                       # the series summed by brute force
    >>> y, phi, p = 3.0, 0.5, 1.7
    >>> a = (2 - p) / (1 - p)
    >>> logz = -a * np.log(y) + a * np.log(p - 1) - (1 - a) * np.log(phi) - np.log(2 - p)
    >>> brute = np.logaddexp.reduce(j * logz - gammaln(j + 1) - gammaln(-j * a))
    >>> bool(np.isclose(tweedie_logw(y, phi, p), brute, rtol=1e-13))
    True
    """
    y, phi, p = np.broadcast_arrays(*(np.asarray(v, float) for v in (y, phi, p)))
    shape = y.shape
    y, phi, p = y.ravel(), phi.ravel(), p.ravel()
    out = np.zeros(y.shape)
    g_phi, g_p = np.zeros(y.shape), np.zeros(y.shape)
    pos = np.flatnonzero(y > 0)
    # rows sorted by j_max share a window width; chunks bound the memory
    pos = pos[np.argsort(y[pos] ** (2 - p[pos]) / (phi[pos] * (2 - p[pos])), kind="stable")]
    for start in range(0, len(pos), 1024):
        idx = pos[start:start + 1024]
        yy, ff, pp = y[idx], phi[idx], p[idx]
        alpha = (2 - pp) / (1 - pp)
        logz = (-alpha * np.log(yy) + alpha * np.log(pp - 1) - (1 - alpha) * np.log(ff)
                - np.log(2 - pp))
        k = 12.0
        while True:
            lo, width = _window(yy, ff, pp, k)
            j = lo[:, None] + np.arange(width)[None, :]
            terms = (j * logz[:, None] - gammaln(j + 1) - gammaln(-j * alpha[:, None]))
            top = np.max(terms, axis=1)
            # both ends below e^-40 of the largest term (the lower end may be j = 1)
            ok = (terms[:, -1] < top - 40) & ((lo == 1) | (terms[:, 0] < top - 40))
            if np.all(ok) or k > 200:
                break
            k *= 2
        logw = logsumexp(terms, axis=1)
        out[idx] = logw
        if with_grad:
            w = np.exp(terms - logw[:, None])
            dalpha = 1.0 / (1 - pp) ** 2
            dlogz_p = (dalpha * (np.log(ff) + np.log(pp - 1) - np.log(yy)) + alpha / (pp - 1)
                       + 1.0 / (2 - pp))
            jbar = np.sum(w * j, axis=1)
            g_phi[idx] = -(1 - alpha) / ff * jbar
            g_p[idx] = (dlogz_p * jbar
                        + dalpha * np.sum(w * j * digamma(-j * alpha[:, None]), axis=1))
    if with_grad:
        return out.reshape(shape), g_phi.reshape(shape), g_p.reshape(shape)
    return out.reshape(shape)


def tweedie_logpdf_np(y, mu, phi, p):
    r"""log f(y; μ, φ, p) in NumPy: :math:`-\kappa/\phi` at y = 0, else
    :math:`-\log y + \log W + (y\theta - \kappa)/\phi` (see the module docstring).

    Examples
    --------
    >>> float(tweedie_logpdf_np(0.0, 2.0, 1.0, 1.5))      # −μ^{0.5}/(φ·0.5)
    -2.8284271247461903
    """
    y, mu, phi, p = np.broadcast_arrays(*(np.asarray(v, float) for v in (y, mu, phi, p)))
    theta = mu ** (1 - p) / (1 - p)
    kappa = mu ** (2 - p) / (2 - p)
    with np.errstate(divide="ignore"):
        logy = np.log(np.where(y > 0, y, 1.0))
    pos = -logy + tweedie_logw(y, phi, p) + (y * theta - kappa) / phi
    return np.where(y > 0, pos, -kappa / phi)


class TweedieLogW(Op):
    """log W(y, φ, p) elementwise (inputs of one shape), with its gradient in (φ, p)."""

    __props__ = ()

    def make_node(self, y, phi, p):
        y, phi, p = (pt.as_tensor_variable(v).astype("float64") for v in (y, phi, p))
        return Apply(self, [y, phi, p], [y.type()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = np.asarray(tweedie_logw(*inputs), float)

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]

    def grad(self, inputs, output_grads):
        g = output_grads[0]
        d_phi, d_p = TweedieLogWGrad()(*inputs)
        return [grad_undefined(self, 0, inputs[0], "y is data"), g * d_phi, g * d_p]


class TweedieLogWGrad(Op):
    """(∂log W/∂φ, ∂log W/∂p) elementwise; no second derivatives (the Laplace graph takes
    none in φ, p: the covariance comes from differences of the gradient)."""

    __props__ = ()

    def make_node(self, y, phi, p):
        y, phi, p = (pt.as_tensor_variable(v).astype("float64") for v in (y, phi, p))
        return Apply(self, [y, phi, p], [y.type(), y.type()])

    def perform(self, node, inputs, output_storage):
        _, d_phi, d_p = tweedie_logw(*inputs, with_grad=True)
        output_storage[0][0] = np.asarray(d_phi, float)
        output_storage[1][0] = np.asarray(d_p, float)

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0], shapes[0]]

    def grad(self, inputs, output_grads):
        raise NotImplementedError("second derivatives of the Tweedie series in (φ, p) are not "
                                  "implemented")


_logw_op = TweedieLogW()


def tweedie_logp(y, mu, n, phi, power):
    r""":math:`n \log f(y; \mu, \phi, p)` as a PyTensor expression (glmmTMB's ``tweedie``;
    the prior weight n multiplies the log-density)."""
    theta = pt.exp((1.0 - power) * pt.log(mu)) / (1.0 - power)
    kappa = pt.exp((2.0 - power) * pt.log(mu)) / (2.0 - power)
    positive = pt.gt(y, 0)
    y_safe = pt.switch(positive, y, 1.0)
    ones = pt.ones_like(y, dtype="float64")
    logw = _logw_op(y * ones, phi * ones, power * ones)      # 0 where y = 0
    pos = -pt.log(y_safe) + logw + (y * theta - kappa) / phi
    return n * pt.switch(positive, pos, -kappa / phi)


def tweedie_unit_deviance(y: np.ndarray, mu: np.ndarray, p: float) -> np.ndarray:
    r"""The Tweedie unit deviance, 1 < p < 2 (statmod's ``tweedie()$dev.resids`` with weight 1):

    .. math::

        d(y, \mu) = 2\Big[\frac{y^{2-p}}{(1-p)(2-p)} - \frac{y\,\mu^{1-p}}{1-p}
                          + \frac{\mu^{2-p}}{2-p}\Big],
        \qquad d(0, \mu) = \frac{2\mu^{2-p}}{2-p},

    twice the log-likelihood gap :math:`\phi\,2[\ell(y; y) - \ell(y; \mu)]` per unit φ
    (W(y, φ, p) cancels), free of φ.

    References
    ----------
    Jørgensen, B. (1997). *The Theory of Dispersion Models*, §4.1; Dunn & Smyth (2005).

    Examples
    --------
    >>> import numpy as np
    >>> y, mu = np.array([0.0, 0.7, 2.0]), np.array([1.2, 1.0, 1.0])
    >>> d = tweedie_unit_deviance(y, mu, 1.5)
    >>> d.round(6).tolist()
    [4.38178, 0.10672, 0.686292]
    >>> lw = lambda m: tweedie_logpdf_np(y[1:], m, 0.8, 1.5)   # the log-likelihood gap, φ = 0.8
    >>> bool(np.allclose(d[1:], 2 * 0.8 * (lw(y[1:]) - lw(mu[1:])), rtol=1e-12))
    True
    """
    y, mu = np.asarray(y, float), np.asarray(mu, float)
    if not 1.0 < p < 2.0:
        raise ValueError(f"the Tweedie unit deviance needs 1 < p < 2, got p = {p}")
    with np.errstate(divide="ignore"):
        y_part = np.where(y > 0, np.power(np.where(y > 0, y, 1.0), 2 - p) / ((1 - p) * (2 - p)),
                          0.0)
    return 2.0 * (y_part - y * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))
