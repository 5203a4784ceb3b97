r"""The unprofiled joint density of a mixed model, for the Bayesian path.

For an LMM, :math:`\log p(y, b \mid \beta, \Sigma, \sigma) = \sum_i \log N(y_i \mid \eta_i, \sigma^2/w_i)
+ \sum_k \sum_g \log N(b_{kg} \mid 0, \Sigma_k)` with :math:`\eta = X\beta + \text{offset} + Zb`.
Random effects enter by index gather (``b_k[codes_k]``), as bambi does, never as a dense ``Z @ b``.
The same ``ModelSpec`` gives the profiled deviance of :mod:`mixedppl.graph.lmm`; integrating ``b``
out of this density gives that deviance exactly (tested).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from ..spec.model_spec import ModelSpec

__all__ = ["linear_predictor"]


def linear_predictor(spec: ModelSpec, beta, b_terms: list, X=None) -> pt.TensorVariable:
    """η = Xβ + offset + Σ_k Σ_a z_k[:, a] · b_k[codes_k, a] as a PyTensor expression.

    Parameters
    ----------
    spec : ModelSpec
    beta : tensor (p,)
    b_terms : list of tensors (G_k, ℓ_k)
        Random effects per term, in ``spec.terms`` order.
    X : tensor or ndarray, optional
        Fixed-effects matrix (default ``spec.X``).
    """
    X = spec.X if X is None else X
    eta = pt.dot(X, beta) + spec.offset
    for t, b in zip(spec.terms, b_terms):
        codes = pt.as_tensor_variable(t.codes.astype(np.int64))
        z = pt.as_tensor_variable(t.z)
        eta = eta + pt.sum(z * b[codes], axis=1)
    return eta
