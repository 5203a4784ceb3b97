r"""Satterthwaite denominator degrees of freedom, as lmerTest.

For a contrast :math:`\ell`, with variance parameters :math:`\psi = (\theta, \sigma)`,
:math:`A = 2 H^{-1}` (H the Hessian of the REML / ML deviance in ψ, pseudo-inverted over positive
eigenvalues as lmerTest does) and :math:`g = \partial(\ell^\top V_\beta(\psi)\ell)/\partial\psi`,

.. math:: \nu = \frac{2\,(\ell^\top V_\beta \ell)^2}{g^\top A g}.

Here H and g come from the model's PyTensor graph by automatic differentiation (lmerTest uses
``numDeriv``).

References
----------
Kuznetsova, Brockhoff & Christensen (2017). lmerTest package: tests in linear mixed effects models.
J. Stat. Softw. 82(13).
"""

from __future__ import annotations

import numpy as np

from ..core.threads import blas_threads_for
from ..fit.records import LMMFit

__all__ = ["satterthwaite_df", "varpar_covariance"]


def varpar_covariance(hessian: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """2·H⁻¹ over the positive eigenvalues of H (lmerTest's pseudo-inverse)."""
    vals, vecs = np.linalg.eigh((hessian + hessian.T) / 2)
    pos = vals > tol
    return 2 * (vecs[:, pos] / vals[pos]) @ vecs[:, pos].T


def satterthwaite_df(record: LMMFit, contrasts: np.ndarray | None = None) -> np.ndarray:
    """Satterthwaite df for each row of ``contrasts`` (default: each fixed effect).

    Parameters
    ----------
    record : LMMFit
    contrasts : ndarray (m, p), optional

    Returns
    -------
    ndarray (m,)

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> satterthwaite_df(fit.record).round(2).tolist()
    [17.0, 17.0]
    """
    p = record.spec.p
    L = np.eye(p) if contrasts is None else np.atleast_2d(contrasts)
    with blas_threads_for(record.objective):
        hess, jac = record.objective.satterthwaite_parts(record.theta, record.sigma)
    A = varpar_covariance(hess)
    V = record.vcov_beta
    J = jac.reshape(p, p, -1)
    out = []
    for ell in L:
        var = ell @ V @ ell
        g = np.einsum("i,ijk,j->k", ell, J, ell)
        out.append(2 * var**2 / (g @ A @ g))
    return np.array(out)
