r"""θ → :math:`T_k`, symbolically: the relative covariance factor of one random-effect term.

:math:`T_k` is ℓ×ℓ lower triangular, filled column-major from θ_k (lme4's layout, owned by
:func:`mixedppl.spec.reterm.lower_triangle_pairs`; its NumPy twin is
:func:`mixedppl.spec.reterm.relative_factor`). The Laplace graph multiplies by the matrix
(:func:`relative_factor`); the blocked LMM and Laplace graphs take the same layout as index
inputs (:func:`mixedppl.graph.lmm_inputs.lambda_layout`, :mod:`mixedppl.graph.laplace_inputs`) and
read T's entries with :func:`factor_values`, so that one compiled graph serves every term width.
"""

from __future__ import annotations

import pytensor.tensor as pt

from ..spec.reterm import lower_triangle_pairs

__all__ = ["relative_factor", "factor_values"]


def relative_factor(theta_k, ell: int) -> pt.TensorVariable:
    """T_k as an ℓ×ℓ tensor from the term's θ_k (ℓ(ℓ+1)/2 entries).

    Examples
    --------
    >>> import numpy as np
    >>> relative_factor(pt.as_tensor_variable(np.array([1.0, 0.5, 2.0])), 2).eval().tolist()
    [[1.0, 0.0], [0.5, 2.0]]
    """
    pairs = lower_triangle_pairs(ell)
    rows, cols = [p[0] for p in pairs], [p[1] for p in pairs]
    return pt.set_subtensor(pt.zeros((ell, ell))[rows, cols], theta_k)


def factor_values(theta, theta_index) -> pt.TensorVariable:
    """The values of T's stored entries, entry j being ``θ[theta_index[j]]``: the one place where a
    structure-generic graph turns θ into entries of Λ (the index map is data, laid out by
    :func:`~mixedppl.spec.reterm.lower_triangle_pairs`).

    Examples
    --------
    >>> import numpy as np
    >>> factor_values(pt.as_tensor_variable(np.array([1.0, 0.5])), np.array([1, 1, 0])).eval().tolist()
    [0.5, 0.5, 1.0]
    """
    return theta[theta_index]
