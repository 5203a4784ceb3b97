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
MixedModels.jl: the first term's block :math:`T_1^\top A_{11,g} T_1 + I` is block diagonal (one ℓ×ℓ
block per level: factorised elementwise in O(G₁)); the other terms share one dense Schur complement
:math:`S = \Lambda_R^\top (A_{RR} - A_{R1} M_1 A_{1R})\Lambda_R + I` with
:math:`M_1 = \Lambda_1 (\Lambda_1^\top A_{11}\Lambda_1 + I)^{-1}\Lambda_1^\top` block diagonal; the
product :math:`A_{R1} M_1 A_{1R}` is formed from the non-zero blocks of :math:`A_{R1}` when that is
cheaper than the dense product (InstEval). All data enter as graph *inputs*, so one compiled
function serves every dataset and refit with the same structure.

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

from .ops import pair_scatter, spd_logdet_quad
from .relative_factor import relative_factor_entries
from .smallmat import bchol, btri_inv

__all__ = ["LMMStructure", "ProfiledLMM"]

LOG2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class LMMStructure:
    """What the compiled graph depends on: term widths and how A_R1 is stored.

    ``ell1``: columns of the first term; ``ell_rest``: columns of each other term;
    ``r_mode``: ``"none"`` (one term), ``"dense"`` or ``"sparse"`` storage of A_R1.
    """

    ell1: int
    ell_rest: tuple[int, ...]
    r_mode: str

    @property
    def theta_sizes(self) -> list[int]:
        return [e * (e + 1) // 2 for e in (self.ell1, *self.ell_rest)]


class ProfiledLMM:
    """Symbolic inputs and outputs of the profiled deviance for one :class:`LMMStructure`.

    After construction, ``inputs`` lists the symbolic inputs (θ first) and the attributes
    ``deviance``, ``pwrss``, ``ldL2``, ``ldRX2`` hold the graph's outputs; :meth:`estimates` adds
    β, the spherical random effects u and the conditional-variance pieces.
    """

    def __init__(self, structure: LMMStructure):
        self.s = s = structure
        self.theta = pt.dvector("theta")
        self.reml = pt.dscalar("reml")
        self.A11, self.A1F = pt.dtensor3("A11"), pt.dtensor3("A1F")
        self.AFF, self.n, self.ldW = pt.dmatrix("AFF"), pt.dscalar("n"), pt.dscalar("ldW")
        self.inputs = [self.theta, self.reml, self.A11, self.A1F, self.AFF, self.n, self.ldW]
        if s.r_mode != "none":
            self.ARR, self.ARF, self.r_sizes = pt.dmatrix("ARR"), pt.dmatrix("ARF"), pt.lvector("r_sizes")
            self.inputs += [self.ARR, self.ARF, self.r_sizes]
        if s.r_mode == "dense":
            self.AR1 = pt.dtensor3("AR1")
            self.inputs.append(self.AR1)
        elif s.r_mode == "sparse":
            self.sp_row, self.sp_grp = pt.lvector("sp_row"), pt.lvector("sp_grp")
            self.sp_val = pt.dmatrix("sp_val")
            self.prods, self.pgrp, self.pdest = pt.dmatrix("prods"), pt.lvector("pgrp"), pt.lvector("pdest")
            self.inputs += [self.sp_row, self.sp_grp, self.sp_val, self.prods, self.pgrp, self.pdest]
        self._build()

    # -- Λ_R applied blockwise ------------------------------------------------------------------
    def _r_blocks(self):
        off, out = self.s.theta_sizes[0], []
        start = pt.constant(0, dtype="int64")
        for k, ell in enumerate(self.s.ell_rest):
            G = self.r_sizes[k]
            out.append((start, G, ell, relative_factor_entries(self.theta, off, ell)))
            start = start + G * ell
            off += ell * (ell + 1) // 2
        return out

    def _lam_diag(self):
        """Λ_R's diagonal when every other term is scalar (then Λ_R is diagonal)."""
        if not hasattr(self, "_lam_vec"):
            parts = [pt.alloc(T[0][0], G) for _, G, _, T in self._r_blocks()]
            self._lam_vec = pt.concatenate(parts) if len(parts) > 1 else parts[0]
        return self._lam_vec

    def lam_r_t(self, M):
        """Λ_Rᵀ M for a matrix M with q_R rows."""
        if all(e == 1 for e in self.s.ell_rest):
            return self._lam_diag()[:, None] * M
        parts = []
        for start, G, ell, T in self._r_blocks():
            blk = M[start:start + G * ell]
            if ell == 1:
                parts.append(T[0][0] * blk)
                continue
            b3 = blk.reshape((G, ell, M.shape[1]))
            cols = [sum((T[a][i] * b3[:, a, :] for a in range(i + 1, ell)), T[i][i] * b3[:, i, :])
                    for i in range(ell)]
            parts.append(pt.stack(cols, axis=1).reshape((G * ell, M.shape[1])))
        return pt.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]

    def lam_r(self, v):
        """Λ_R v for a vector v of length q_R."""
        if all(e == 1 for e in self.s.ell_rest):
            return self._lam_diag() * v
        parts = []
        for start, G, ell, T in self._r_blocks():
            blk = v[start:start + G * ell]
            if ell == 1:
                parts.append(T[0][0] * blk)
                continue
            b2 = blk.reshape((G, ell))
            cols = [sum((T[a][i] * b2[:, i] for i in range(a)), T[a][a] * b2[:, a]) for a in range(ell)]
            parts.append(pt.stack(cols, axis=1).reshape((G * ell,)))
        return pt.concatenate(parts) if len(parts) > 1 else parts[0]

    # -- the deviance ---------------------------------------------------------------------------
    def _build(self):
        s, ell = self.s, self.s.ell1
        T1 = relative_factor_entries(self.theta, 0, ell)
        A = [[self.A11[:, a, b] for b in range(ell)] for a in range(ell)]
        # B_g = T1' A_g T1 + I (each entry a length-G vector)
        TA = [[sum(T1[a][i] * A[a][b] for a in range(i, ell)) for b in range(ell)] for i in range(ell)]
        B = [[sum(TA[i][b] * T1[b][j] for b in range(j, ell)) + (1.0 if i == j else 0.0)
              for j in range(ell)] for i in range(ell)]
        L1 = bchol(B, ell)
        Li = btri_inv(L1, ell)
        self.T1, self.L1, self.Li = T1, L1, Li
        ldL2 = 2.0 * sum(pt.sum(pt.log(L1[i][i])) for i in range(ell))
        U = [sum(T1[a][i] * self.A1F[:, a, :] for a in range(i, ell)) for i in range(ell)]
        C1 = [sum(Li[i][j][:, None] * U[j] for j in range(i + 1)) for i in range(ell)]
        self.C1 = C1
        FF = self.AFF - sum(pt.dot(c.T, c) for c in C1)
        # M1 = T1 B^{-1} T1' = K K' with K = T1 Li'
        K = [[sum(T1[a][i] * Li[j][i] for i in range(min(a, j) + 1)) for j in range(ell)]
             for a in range(ell)]
        self.K = K
        self.M1 = [[sum(K[a][j] * K[b][j] for j in range(ell)) for b in range(ell)]
                   for a in range(ell)]
        if s.r_mode != "none":
            P, Q = self._schur_products()
            if all(e == 1 for e in s.ell_rest):
                lam = self._lam_diag()
                self.S = (self.ARR - P) * lam[:, None] * lam[None, :] + pt.eye(self.ARR.shape[0])
            else:
                self.S = self.lam_r_t(self.lam_r_t(self.ARR - P).T).T + pt.eye(self.ARR.shape[0])
            self.BR = self.lam_r_t(self.ARF - Q)
            ld_S, quad = spd_logdet_quad(self.S, self.BR)[:2]
            ldL2 = ldL2 + ld_S
            FF = FF - quad
        p = FF.shape[0] - 1
        self.FF, self.p, self._LF = FF, p, None
        # log|R_X|² and r² from the same op as the Schur block rather than from cholesky(FF):
        # pwrss = FF_yy − FF_yXᵀ FF_XX⁻¹ FF_Xy. PyTensor's Cholesky gradient brings an
        # AllocDiag (an OpFromGraph) whose late inlining re-imported the whole factorisation:
        # the rewritten graph held two copies of every dense factorisation per evaluation
        # (measured: 2 Cholesky and 2 SPDLogdetQuad nodes instead of one each).
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
        ell, M1, qR = self.s.ell1, self.M1, self.ARR.shape[0]
        if self.s.r_mode == "dense":
            W = pt.stack([sum(self.AR1[:, :, a] * M1[a][b][None, :] for a in range(ell))
                          for b in range(ell)], axis=2)
            G1 = self.AR1.shape[1]
            W2 = W.reshape((qR, G1 * ell))
            P = pt.dot(W2, self.AR1.reshape((qR, G1 * ell)).T)
            Q = pt.dot(W2, self.A1F.reshape((G1 * ell, self.A1F.shape[2])))
            return P, Q
        g = self.sp_grp
        Wv = [sum(self.sp_val[:, a] * M1[a][b][g] for a in range(ell)) for b in range(ell)]
        Mflat = pt.stack([M1[c][d] for c in range(ell) for d in range(ell)], axis=1)
        P = pair_scatter(Mflat, self.prods, self.pgrp, self.pdest, qR * qR).reshape((qR, qR))
        qv = sum(Wv[b][:, None] * self.A1F[g, b, :] for b in range(ell))
        Q = pt.zeros((qR, self.A1F.shape[2]))[self.sp_row].inc(qv)
        return P, Q
