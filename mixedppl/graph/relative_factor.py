r"""θ → :math:`T_k`, symbolically: the relative covariance factor of one random-effect term.

:math:`T_k` is ℓ×ℓ lower triangular, filled column-major from θ_k (lme4's layout, owned by
:func:`mixedppl.spec.reterm.lower_triangle_pairs`; its NumPy twin is
:func:`mixedppl.spec.reterm.relative_factor`). The Laplace graph multiplies by the matrix
(:func:`relative_factor`); the blocked LMM and Laplace graphs take the same layout as index
inputs (:func:`mixedppl.graph.lmm_inputs.lambda_layout`, :mod:`mixedppl.graph.laplace_inputs`) and
read T's entries with :func:`factor_values`, so that one compiled graph serves every term width.

A structured term (:mod:`mixedppl.spec.covstruct`) reaches the fitting graphs in the same layout:
its objective maps θ to T's lower triangle in NumPy with the exact Jacobian. The PyMC model
samples a structure's SDs and correlations directly; :func:`correlation_factor` is the symbolic
Cholesky factor of its correlation matrix.
"""

from __future__ import annotations

import pytensor.tensor as pt

from ..spec.reterm import lower_triangle_pairs

__all__ = ["relative_factor", "factor_values", "correlation_factor"]


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


def correlation_factor(structure: str, w, ell: int) -> pt.TensorVariable:
    r"""chol(R) (ℓ×ℓ) of a structure's correlation matrix from its correlations ``w``.

    ``ar1``: w = (ρ,), :math:`R_{ij} = \rho^{|i-j|}`, whose factor is written out:
    :math:`C_{i0} = \rho^i`, :math:`C_{ij} = \rho^{i-j}\sqrt{1-\rho^2}` (1 ≤ j ≤ i);
    ``cs``: w = (ρ,), :math:`R = (1-\rho)I + \rho\,11^\top`; ``toep``: w the ℓ − 1 partial
    autocorrelations, R the Toeplitz matrix of their autocorrelations (Durbin–Levinson, as
    :mod:`mixedppl.spec.covstruct`); ``diag``: the identity.

    Examples
    --------
    >>> import numpy as np
    >>> C = correlation_factor("ar1", pt.as_tensor_variable(np.array([0.5])), 3).eval()
    >>> np.round(C @ C.T, 6).tolist()
    [[1.0, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 1.0]]
    """
    import numpy as np

    i, j = np.tril_indices(ell)
    if structure == "diag":
        return pt.eye(ell)
    if structure == "ar1":
        rho = w[0]
        vals = rho ** (i - j).astype(float) * pt.where(j == 0, 1.0, pt.sqrt(1 - rho ** 2))
        return pt.set_subtensor(pt.zeros((ell, ell))[i, j], vals)
    lag = np.abs(np.subtract.outer(np.arange(ell), np.arange(ell)))
    if structure == "cs":
        R = (1 - w[0]) * pt.eye(ell) + w[0] * pt.ones((ell, ell))
    else:
        r, phi = [], []
        for k in range(ell - 1):
            p = w[k]
            rk = sum((phi[m] * r[k - 1 - m] for m in range(k)), pt.constant(0.0)) + p * (
                1 - sum((phi[m] * r[m] for m in range(k)), pt.constant(0.0)))
            phi = [phi[m] - p * phi[k - 1 - m] for m in range(k)] + [p]
            r.append(rk)
        R = pt.stack([pt.constant(1.0)] + r)[lag]
    return pt.linalg.cholesky(R)
