r"""PyTensor Ops with hand-written gradients for the blocked factor.

``spd_logdet_quad(S, B)`` returns :math:`\log|S|` and :math:`C = B^\top S^{-1} B` for SPD ``S``.
Differentiating through a Cholesky node costs ~3n³ (two full triangular solves and a product); here
the reverse pass needs only :math:`S^{-1}` (LAPACK ``potri`` on the forward pass's factor) and
:math:`W = S^{-1}B`:

.. math:: \bar S = \bar\ell\, S^{-1} - W \bar C_s W^\top, \qquad \bar B = 2 W \bar C_s,
   \qquad \bar C_s = (\bar C + \bar C^\top)/2 .

A non-SPD ``S`` gives NaN outputs (a failed point for the optimiser, not a crash).

``batched_spd_inverse(B)`` returns :math:`\log|B_g|` and :math:`B_g^{-1}` for a stack of small SPD
blocks (G, ℓ, ℓ) — the first term's block-diagonal factor — in one NumPy call whatever ℓ is, so
the graph does not depend on the term's width. With :math:`X = B^{-1}` (symmetric),

.. math:: \bar B_g = \bar\ell_g X_g - X_g \bar X_g X_g .

``pair_scatter(M, prods, grp, dest, size)`` forms :math:`\operatorname{vec} P` with
:math:`P = A_{R1} M_1 A_{1R}` from the precomputed products of the non-zero blocks of
:math:`A_{R1}` that meet in a level of term 1: a fixed sparse matrix :math:`K` (``size`` × G·k) with
:math:`\operatorname{vec}P = K \operatorname{vec}M` and :math:`\bar M = K^\top \overline{\operatorname{vec}P}`;
``K`` is assembled once per data arrays and reused across evaluations.

References
----------
Giles (2008), Collected matrix derivative results for forward and reverse mode AD, section 2.3.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor.tensor as pt
import scipy.linalg as sla
import scipy.sparse as sp
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

__all__ = ["spd_logdet_quad", "pair_scatter", "pair_gather", "batched_spd_inverse"]


def _disconnected(g) -> bool:
    return isinstance(g.type, DisconnectedType)


class SPDLogdetQuad(Op):
    """(S, B) → (log|S|, BᵀS⁻¹B, chol(S), S⁻¹B); the last two are for the reverse pass only."""

    __props__ = ()

    def make_node(self, S, B):
        S, B = pt.as_tensor_variable(S), pt.as_tensor_variable(B)
        return Apply(self, [S, B], [pt.dscalar(), pt.dmatrix(), pt.dmatrix(), pt.dmatrix()])

    def perform(self, node, inputs, outputs):
        S, B = inputs
        if S.shape[0] == 0:  # no fixed effects: log|S| = 0, C = 0
            m = B.shape[1]
            for k, val in enumerate([np.array(0.0), np.zeros((m, m)), np.zeros((0, 0)),
                                     np.zeros((0, m))]):
                outputs[k][0] = val
            return
        try:
            c, _ = sla.cho_factor(S, lower=True, check_finite=False)
            ok = bool(np.all(np.isfinite(np.diag(c))))
        except (np.linalg.LinAlgError, ValueError):
            ok = False
        if not ok:
            n, m = S.shape[0], B.shape[1]
            for k, shape in enumerate([(), (m, m), (n, n), (n, m)]):
                outputs[k][0] = np.full(shape, np.nan)
            return
        W = sla.cho_solve((c, True), B, check_finite=False)
        outputs[0][0] = np.array(2.0 * np.log(np.diag(c)).sum())
        outputs[1][0] = B.T @ W
        outputs[2][0] = c
        outputs[3][0] = W

    def L_op(self, inputs, outputs, output_grads):
        g_ld, g_C = output_grads[0], output_grads[1]
        g_ld = pt.constant(0.0) if _disconnected(g_ld) else g_ld
        g_C = pt.zeros_like(outputs[1]) if _disconnected(g_C) else g_C
        gS, gB = _spd_grad(outputs[2], outputs[3], g_ld, g_C)
        return [gS, gB]

    def connection_pattern(self, node):
        return [[True, True, False, False], [False, True, False, False]]


class SPDLogdetQuadGrad(Op):
    """(chol(S), W, ℓ̄, C̄) → (S̄, B̄) of :class:`SPDLogdetQuad`, computed in place in NumPy."""

    __props__ = ()

    def make_node(self, c, W, g_ld, g_C):
        ins = [pt.as_tensor_variable(x) for x in (c, W, g_ld, g_C)]
        return Apply(self, ins, [pt.dmatrix(), pt.dmatrix()])

    def perform(self, node, inputs, outputs):
        c, W, g_ld, g_C = inputs
        if c.shape[0] == 0:
            outputs[0][0] = np.zeros((0, 0))
            outputs[1][0] = np.zeros(W.shape)
            return
        Cs = (g_C + g_C.T) / 2
        inv, _ = sla.lapack.dpotri(c, lower=1)
        gS = np.tril(inv)
        gS += np.tril(inv, -1).T
        gS *= g_ld
        WC = W @ Cs
        gS -= WC @ W.T
        outputs[0][0] = gS
        outputs[1][0] = 2.0 * WC

    def grad(self, inputs, output_grads):  # pragma: no cover - second order not needed
        raise NotImplementedError("second derivatives of spd_logdet_quad are not implemented")


spd_logdet_quad = SPDLogdetQuad()
_spd_grad = SPDLogdetQuadGrad()


class BatchedSPDInverse(Op):
    """B (G, ℓ, ℓ) → (log|B_g| (G,), B_g⁻¹ (G, ℓ, ℓ)) by batched Cholesky; NaN where B_g is not
    positive definite."""

    __props__ = ()

    def make_node(self, B):
        B = pt.as_tensor_variable(B)
        return Apply(self, [B], [pt.dvector(), pt.dtensor3()])

    def perform(self, node, inputs, outputs):
        (B,) = inputs
        try:
            L = np.linalg.cholesky(B)
            Linv = np.linalg.inv(L)
        except np.linalg.LinAlgError:
            outputs[0][0] = np.full(B.shape[0], np.nan)
            outputs[1][0] = np.full(B.shape, np.nan)
            return
        outputs[0][0] = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
        outputs[1][0] = np.matmul(np.swapaxes(Linv, 1, 2), Linv)

    def L_op(self, inputs, outputs, output_grads):
        g_ld, g_X = output_grads
        g_ld = pt.zeros_like(outputs[0]) if _disconnected(g_ld) else g_ld
        g_X = pt.zeros_like(outputs[1]) if _disconnected(g_X) else g_X
        return [_batched_spd_inverse_grad(outputs[1], g_ld, g_X)]


class BatchedSPDInverseGrad(Op):
    """(X = B⁻¹, ℓ̄, X̄) → B̄ = ℓ̄ X − X X̄ X of :class:`BatchedSPDInverse`."""

    __props__ = ()

    def make_node(self, X, g_ld, g_X):
        ins = [pt.as_tensor_variable(x) for x in (X, g_ld, g_X)]
        return Apply(self, ins, [pt.dtensor3()])

    def perform(self, node, inputs, outputs):
        X, g_ld, g_X = inputs
        outputs[0][0] = g_ld[:, None, None] * X - np.matmul(np.matmul(X, g_X), X)

    def grad(self, inputs, output_grads):  # pragma: no cover - second order not needed
        raise NotImplementedError("second derivatives of batched_spd_inverse are not implemented")


batched_spd_inverse = BatchedSPDInverse()
_batched_spd_inverse_grad = BatchedSPDInverseGrad()


class _PairMatrixCache:
    """K (and Kᵀ) per set of data arrays, keyed by the arrays' identity (they are held here)."""

    def __init__(self, maxsize: int = 8):
        self._store: OrderedDict = OrderedDict()
        self.maxsize = maxsize

    def get(self, prods, grp, dest, size, G):
        key = (id(prods), id(grp), id(dest), int(size), int(G))
        hit = self._store.get(key)
        if hit is not None and hit[0] is prods and hit[1] is grp and hit[2] is dest:
            self._store.move_to_end(key)
            return hit[3], hit[4]
        k = prods.shape[1]
        cols = (grp[:, None] * k + np.arange(k)[None, :]).ravel()
        rows = np.repeat(dest, k)
        K = sp.csr_matrix((prods.ravel(), (rows, cols)), shape=(int(size), int(G) * k))
        KT = K.T.tocsr()
        self._store[key] = (prods, grp, dest, K, KT)
        if len(self._store) > self.maxsize:
            self._store.popitem(last=False)
        return K, KT


_PAIRS = _PairMatrixCache()


class PairScatter(Op):
    """(M (G, k), prods (npairs, k), grp, dest, size) → vec P = K vec M."""

    __props__ = ()

    def make_node(self, M, prods, grp, dest, size):
        ins = [pt.as_tensor_variable(x) for x in (M, prods, grp, dest, size)]
        return Apply(self, ins, [pt.dvector()])

    def perform(self, node, inputs, outputs):
        M, prods, grp, dest, size = inputs
        K, _ = _PAIRS.get(prods, grp, dest, size, M.shape[0])
        outputs[0][0] = K @ M.ravel()

    def L_op(self, inputs, outputs, output_grads):
        M, prods, grp, dest, size = inputs
        gM = pair_gather(output_grads[0], prods, grp, dest, size, M.shape[0]).reshape(M.shape)
        dis = [DisconnectedType()() for _ in range(3)]
        return [gM, pt.zeros_like(prods), *dis]

    def connection_pattern(self, node):
        return [[True], [True], [False], [False], [False]]


class PairGather(Op):
    """Reverse of PairScatter: vec M̄ = Kᵀ vec P̄."""

    __props__ = ()

    def make_node(self, gP, prods, grp, dest, size, G):
        ins = [pt.as_tensor_variable(x) for x in (gP, prods, grp, dest, size, G)]
        return Apply(self, ins, [pt.dvector()])

    def perform(self, node, inputs, outputs):
        gP, prods, grp, dest, size, G = inputs
        _, KT = _PAIRS.get(prods, grp, dest, size, G)
        outputs[0][0] = KT @ gP

    def grad(self, inputs, output_grads):  # pragma: no cover - second order not needed
        raise NotImplementedError("second derivatives of pair_scatter are not implemented")


pair_scatter = PairScatter()
pair_gather = PairGather()
