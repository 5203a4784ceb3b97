r"""The profiled REML / ML deviance of a linear mixed model as a PyTensor graph.

With relative covariance factor :math:`\Lambda_\theta` (block diagonal, one :math:`I_G\otimes T_k` per
term), lme4's penalised least squares gives (Bates et al. 2015, eqs. 34–42)

.. math::

   L_\theta L_\theta^\top = \Lambda_\theta^\top Z^\top W Z \Lambda_\theta + I, \qquad
   d_{ML}(\theta) = \log|L_\theta|^2 + n\left[1 + \log\frac{2\pi r^2_\theta}{n}\right] - \sum\log w_i,

   d_{REML}(\theta) = \log|L_\theta|^2 + \log|R_X|^2 + (n-p)\left[1 + \log\frac{2\pi r^2_\theta}{n-p}\right]
   - \sum\log w_i,

where :math:`r^2_\theta` is the penalised weighted residual sum of squares and :math:`R_X` the
fixed-effects block of the Cholesky factor. :math:`L_\theta` is computed blockwise as in
MixedModels.jl: the first term's block :math:`B_g = T_1^\top A_{11,g} T_1 + I` is block diagonal
(one ℓ×ℓ block per level, held as a (G, ℓ, ℓ) stack and inverted by one batched op,
:func:`~mixedppl.graph.ops.batched_spd_inverse`); the other terms share one dense Schur complement
:math:`S = \Lambda_R^\top (A_{RR} - A_{R1} M_1 A_{1R})\Lambda_R + I` with
:math:`M_1 = \Lambda_1 (\Lambda_1^\top A_{11}\Lambda_1 + I)^{-1}\Lambda_1^\top` block diagonal; the
product :math:`A_{R1} M_1 A_{1R}` is formed from the non-zero blocks of :math:`A_{R1}` when that is
cheaper than the dense product (InstEval).

The graph is *structure-generic*: the term widths, the number of terms and where each θ sits in
:math:`T_1` and :math:`\Lambda_R` are data inputs (index vectors, see
:mod:`mixedppl.graph.lmm_inputs`), not unrolled into the graph. One compiled function therefore
serves every formula with the same :attr:`LMMStructure.graph_key` — whether A_R1 is absent, dense
or sparse, and whether Λ_R is diagonal — so a never-seen model structure compiles nothing
(see ``docs/compile.md``).

References
----------
Bates, Mächler, Bolker & Walker (2015). Fitting linear mixed-effects models using lme4.
J. Stat. Softw. 67(1). Bates et al., MixedModels.jl, ``src/linearmixedmodel.jl`` (``updateL!``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from pytensor.tensor.slinalg import cholesky

from .ops import batched_spd_inverse, pair_scatter, spd_logdet_quad

__all__ = ["LMMStructure", "ProfiledLMM", "bmm"]

LOG2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class LMMStructure:
    """What a model's inputs look like: term widths and how A_R1 is stored.

    ``ell1``: columns of the first term; ``ell_rest``: columns of each other term;
    ``r_mode``: ``"none"`` (one term), ``"dense"`` or ``"sparse"`` storage of A_R1. The compiled
    graph depends only on :attr:`graph_key`.
    """

    ell1: int
    ell_rest: tuple[int, ...]
    r_mode: str

    @property
    def theta_sizes(self) -> list[int]:
        return [e * (e + 1) // 2 for e in (self.ell1, *self.ell_rest)]

    @property
    def rest_scalar(self) -> bool:
        """Whether every term after the first has one column (then Λ_R is diagonal)."""
        return all(e == 1 for e in self.ell_rest)

    @property
    def graph_key(self) -> tuple[str, bool]:
        """What the graph is built from: ``(r_mode, rest_scalar)`` — five graphs for all LMMs."""
        return (self.r_mode, self.r_mode != "none" and self.rest_scalar)


def bmm(X, Y):
    """Batched matrix product of stacks ``X`` (G, a, k) and ``Y`` (G, k, b) (either may have a
    leading 1 to broadcast) as one elementwise product and sum: small ℓ stay in NumPy."""
    return (X[:, :, :, None] * Y[:, None, :, :]).sum(axis=2)


class ProfiledLMM:
    """Symbolic inputs and outputs of the profiled deviance for one graph key.

    After construction, ``inputs`` lists the symbolic inputs (θ first) and the attributes
    ``deviance``, ``pwrss``, ``ldL2``, ``ldRX2`` hold the graph's outputs;
    :func:`~mixedppl.graph.lmm_estimates.estimates` adds β, the modes and the
    conditional-variance pieces. ``structure`` is an :class:`LMMStructure` or its
    :attr:`~LMMStructure.graph_key`.
    """

    def __init__(self, structure: LMMStructure | tuple[str, bool]):
        key = structure.graph_key if isinstance(structure, LMMStructure) else tuple(structure)
        self.r_mode, self.rest_scalar = key
        self.theta = pt.dvector("theta")
        self.reml = pt.dscalar("reml")
        self.A11, self.A1F = pt.dtensor3("A11"), pt.dtensor3("A1F")
        self.AFF, self.n, self.ldW = pt.dmatrix("AFF"), pt.dscalar("n"), pt.dscalar("ldW")
        self.t1_rows, self.t1_cols = pt.lvector("t1_rows"), pt.lvector("t1_cols")
        self.inputs = [self.theta, self.reml, self.A11, self.A1F, self.AFF, self.n, self.ldW,
                       self.t1_rows, self.t1_cols]
        if self.r_mode != "none":
            self.ARR, self.ARF = pt.dmatrix("ARR"), pt.dmatrix("ARF")
            self.lam_row, self.lam_col = pt.lvector("lam_row"), pt.lvector("lam_col")
            self.lam_theta = pt.lvector("lam_theta")
            self.cv_row, self.cv_col = pt.lvector("cv_row"), pt.lvector("cv_col")
            self.inputs += [self.ARR, self.ARF, self.lam_row, self.lam_col, self.lam_theta,
                            self.cv_row, self.cv_col]
        if self.r_mode == "dense":
            self.AR1 = pt.dtensor3("AR1")
            self.inputs.append(self.AR1)
        elif self.r_mode == "sparse":
            self.sp_row, self.sp_grp = pt.lvector("sp_row"), pt.lvector("sp_grp")
            self.sp_val = pt.dmatrix("sp_val")
            self.prods, self.pgrp, self.pdest = pt.dmatrix("prods"), pt.lvector("pgrp"), pt.lvector("pdest")
            self.inputs += [self.sp_row, self.sp_grp, self.sp_val, self.prods, self.pgrp, self.pdest]
        self._build()

    # -- Λ_R from its non-zeros (row, col, index into θ) -------------------------------------------
    @property
    def lam_vals(self):
        """Values of Λ_R's non-zeros (its diagonal when :attr:`rest_scalar`)."""
        return self.theta[self.lam_theta]

    def lam_r_t(self, M):
        """Λ_Rᵀ M for a matrix M with q_R rows."""
        if self.rest_scalar:
            return self.lam_vals[:, None] * M
        return pt.zeros((self.ARR.shape[0], M.shape[1]))[self.lam_col].inc(
            self.lam_vals[:, None] * M[self.lam_row])

    def lam_r(self, v):
        """Λ_R v for a vector (or matrix) v with q_R rows."""
        if self.rest_scalar:
            return self.lam_vals * v if v.ndim == 1 else self.lam_vals[:, None] * v
        vals = self.lam_vals if v.ndim == 1 else self.lam_vals[:, None]
        return pt.zeros_like(v)[self.lam_row].inc(vals * v[self.lam_col])

    # -- the deviance ---------------------------------------------------------------------------
    def _build(self):
        ell = self.A11.shape[1]
        n_t1 = self.t1_rows.shape[0]
        # T1: lower triangular, filled column-major from θ[:n_t1] (the index vectors say where)
        T1 = pt.zeros((ell, ell))[self.t1_rows, self.t1_cols].set(self.theta[:n_t1])
        self.T1 = T1
        B = bmm(bmm(T1.T[None], self.A11), T1[None]) + pt.eye(ell)[None]
        ld1, Binv = batched_spd_inverse(B)
        self.Binv = Binv
        ldL2 = ld1.sum()
        U = bmm(T1.T[None], self.A1F)                    # Λ₁ᵀ Z₁ᵀ W F per level: (G, ℓ, m)
        self.U = U
        FF = self.AFF - (U[:, :, :, None] * bmm(Binv, U)[:, :, None, :]).sum(axis=(0, 1))
        self.N = bmm(T1[None], Binv)                     # T1 B⁻¹
        self.M1 = bmm(self.N, T1.T[None])                # T1 B⁻¹ T1ᵀ
        if self.r_mode != "none":
            P, Q = self._schur_products()
            qR = self.ARR.shape[0]
            if self.rest_scalar:
                lam = self.lam_vals
                self.S = (self.ARR - P) * lam[:, None] * lam[None, :] + pt.eye(qR)
            else:
                self.S = self.lam_r_t(self.lam_r_t(self.ARR - P).T).T + pt.eye(qR)
            self.BR = self.lam_r_t(self.ARF - Q)
            ld_S, quad = spd_logdet_quad(self.S, self.BR)[:2]
            ldL2 = ldL2 + ld_S
            FF = FF - quad
        p = FF.shape[0] - 1
        self.FF, self.p, self._LF = FF, p, None
        # log|R_X|² and r² from the same op as the Schur block rather than from cholesky(FF):
        # pwrss = FF_yy − FF_yXᵀ FF_XX⁻¹ FF_Xy (PyTensor's Cholesky gradient re-imported the
        # factorisation through a late-inlined AllocDiag: two copies per evaluation).
        self.ldRX2, quad_F = spd_logdet_quad(FF[:p, :p], FF[:p, p:])[:2]
        self.pwrss = FF[p, p] - quad_F[0, 0]
        self.ldL2 = ldL2
        nmp = self.n - self.reml * p
        self.deviance = (ldL2 + self.reml * self.ldRX2
                         + nmp * (1.0 + pt.log(2 * np.pi * self.pwrss / nmp)) - self.ldW)

    @property
    def LF(self):
        """Lower Cholesky factor of the fixed-effects block ``FF`` (built on first use: only the
        estimates and variance-parameter graphs need it, never the deviance)."""
        if self._LF is None:
            self._LF = cholesky(self.FF, lower=True, on_error="nan")
        return self._LF

    def _schur_products(self):
        """P = A_R1 M1 A_1R and Q = A_R1 M1 A_1F (dense or from the non-zero blocks)."""
        M1, qR = self.M1, self.ARR.shape[0]
        G1, ell = self.A11.shape[0], self.A11.shape[1]
        if self.r_mode == "dense":
            W2 = (self.AR1[:, :, :, None] * M1[None]).sum(axis=2).reshape((qR, G1 * ell))
            P = pt.dot(W2, self.AR1.reshape((qR, G1 * ell)).T)
            Q = pt.dot(W2, self.A1F.reshape((G1 * ell, self.A1F.shape[2])))
            return P, Q
        g = self.sp_grp
        P = pair_scatter(M1.reshape((G1, ell * ell)), self.prods, self.pgrp, self.pdest,
                         qR * qR).reshape((qR, qR))
        Wv = (self.sp_val[:, :, None] * M1[g]).sum(axis=1)          # (blocks, ℓ)
        qv = (Wv[:, :, None] * self.A1F[g]).sum(axis=1)             # (blocks, m)
        Q = pt.zeros((qR, self.A1F.shape[2]))[self.sp_row].inc(qv)
        return P, Q
