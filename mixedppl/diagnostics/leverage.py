r"""Hat-matrix diagonals of a linear mixed model (lme4's ``hatvalues`` and its fixed / random split).

With :math:`A = [Z\Lambda_\theta,\ X]`, prior weights W and
:math:`M = A^\top W A + \operatorname{diag}(I_q, 0_p)`, the fitted values are
:math:`X\hat\beta + Z\hat b = H y` with :math:`H = A M^{-1} A^\top W`, so
:math:`h_i = w_i\, a_i^\top M^{-1} a_i` (``"total"``, lme4's ``hatvalues``). The marginal (fixed) part is
:math:`H_F = X (X^\top V^{-1} X)^{-1} X^\top V^{-1}` with
:math:`V \propto Z\Lambda\Lambda^\top Z^\top + W^{-1}` (Woodbury:
:math:`V^{-1} \propto W - WZ\Lambda K^{-1}\Lambda^\top Z^\top W`, :math:`K = \Lambda^\top Z^\top W Z\Lambda + I`);
``"random"`` is the difference, the diagonal of :math:`Z G Z^\top V^{-1}(I - H_F)`.

References
----------
Nobre, J. S. & Singer, J. M. (2007). Residual analysis for linear mixed models. Biom. J. 49, 863–875.
Bates, D. et al. (2015). J. Stat. Softw. 67(1), section 3 (the penalised least squares system).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..spec.reterm import relative_factors

__all__ = ["hat_diagonal"]


def _z_lambda(spec, theta: np.ndarray) -> sp.csr_matrix:
    """Sparse ZΛ_θ (n × q), columns level-major within each term as lme4's Zt."""
    blocks = []
    for t, T in zip(spec.terms, relative_factors(spec.terms, theta)):
        zt = t.z @ T
        ell = t.n_cols
        cols = (t.codes[:, None] * ell + np.arange(ell)[None, :]).ravel()
        rows = np.repeat(np.arange(spec.n), ell)
        blocks.append(sp.csr_matrix((zt.ravel(), (rows, cols)), shape=(spec.n, t.q)))
    return sp.hstack(blocks, format="csr")


def _rowwise_quad(A, Minv_factor, w: np.ndarray, chunk: int = 20000) -> np.ndarray:
    """w_i a_iᵀ M⁻¹ a_i for every row of A, given M's Cholesky factor (chunked over rows)."""
    out = np.empty(A.shape[0])
    for s in range(0, A.shape[0], chunk):
        block = A[s:s + chunk]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        sol = sla.cho_solve(Minv_factor, block.T)
        out[s:s + chunk] = np.einsum("ij,ji->i", block, sol)
    return w * out


def hat_diagonal(record, part: str = "total") -> np.ndarray:
    """Diagonal of the total, fixed (marginal) or random part of the hat matrix (module docstring).

    ``record`` is an :class:`~mixedppl.fit.records.LMMFit` (only its spec and θ are used).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> hat_diagonal(fit.record)[:3].round(4).tolist()
    [0.2293, 0.1697, 0.1268]
    """
    if part not in ("total", "fixed", "random"):
        raise ValueError(f"part must be 'total', 'fixed' or 'random', got {part!r}")
    spec = record.spec
    w = np.asarray(spec.weights, float)
    ZL = _z_lambda(spec, np.asarray(record.theta, float))
    X = np.asarray(spec.X, float)
    q = ZL.shape[1]
    if part in ("total", "random"):
        A = sp.hstack([ZL, sp.csr_matrix(X)], format="csr")
        M = (A.T @ sp.diags(w) @ A).toarray()
        M[np.arange(q), np.arange(q)] += 1.0
        total = _rowwise_quad(A, sla.cho_factor(M, lower=True), w)
        if part == "total":
            return total
    K = (ZL.T @ sp.diags(w) @ ZL).toarray() + np.eye(q)
    WX = w[:, None] * X
    VinvX = WX - sp.diags(w) @ ZL @ sla.cho_solve(sla.cho_factor(K, lower=True), ZL.T @ WX)
    XtVX = X.T @ VinvX
    fixed = np.einsum("ij,ji->i", X, np.linalg.solve(XtVX, VinvX.T))
    return fixed if part == "fixed" else total - fixed
