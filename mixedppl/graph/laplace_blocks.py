"""Building blocks of the Laplace graphs: ZΛ without forming it, and ΛᵀZᵀWZΛ + I in blocked form.

Shared by the fused Laplace graphs (:mod:`mixedppl.graph.laplace`, the C tier) and the NumPy
tier's composed ones (:mod:`mixedppl.graph.laplace_split`). The inputs are those of
:mod:`mixedppl.graph.laplace_inputs`; the block structure is MixedModels.jl's: the first term's
block is block diagonal, a (G₁, ℓ₁, ℓ₁) stack inverted by one batched op, and only the Schur
complement of the other terms is dense.

References
----------
Bates et al. (2015), J. Stat. Softw. 67(1), section 3; Bates et al., MixedModels.jl,
``BlockedSparse`` / ``BlockDescription``.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from .laplace_inputs import aux_names, input_names
from .ops import batched_spd_inverse
from .relative_factor import factor_values

__all__ = ["INT_INPUTS", "MATRIX_INPUTS", "symbols", "graph_inputs", "SparseZL", "Blocked",
           "logdet_first_order"]

INT_INPUTS = {"sizes", "codes1", "c1", "c11", "t1_rows", "t1_cols", "t1_theta", "nz_row",
               "nz_col", "e_nz", "e_th", "rr_a", "rr_b", "rr_row", "rr_dest", "r1_dest", "pp_a",
               "pp_b", "pp_ra", "pp_rb", "pp_g", "pp_dest"}
MATRIX_INPUTS = {"X", "Z1"}


def symbols(r_mode: str, ell1_scalar: bool, family=None) -> dict:
    """The symbolic inputs of a Laplace graph by name: (u, θ, β, φ), the data of
    :func:`~mixedppl.graph.laplace_inputs.input_names` for ``r_mode``, the family's extra designs
    (``"aux"``), the Newton damping λ (``"lam"``) and the two layout flags.

    Examples
    --------
    >>> s = symbols("none", True)
    >>> s["Z1"].type.ndim, s["codes1"].dtype, s["r_mode"]
    (2, 'int64', 'none')
    """
    s = {name: pt.dvector(name) for name in ("u", "theta", "beta", "phi")}
    s["aux"] = {name: pt.dmatrix(name) for name in aux_names(family)}
    for name in input_names(r_mode):
        if name in INT_INPUTS:
            s[name] = pt.lvector(name)
        elif name in MATRIX_INPUTS:
            s[name] = pt.dmatrix(name)
        else:
            s[name] = pt.dvector(name)
    s["r_mode"], s["ell1_scalar"] = r_mode, ell1_scalar
    s["lam"] = pt.dscalar("lam")
    return s


def graph_inputs(s: dict) -> list:
    """The inputs of :func:`symbols` in the order the compiled functions take them:
    ``(u, θ, β, φ, *data, *aux)``.

    Examples
    --------
    >>> [v.name for v in graph_inputs(symbols("none", True))][:6]
    ['u', 'theta', 'beta', 'phi', 'y', 'ntr']
    """
    return [s["u"], s["theta"], s["beta"], s["phi"], *(s[n] for n in input_names(s["r_mode"])),
            *s["aux"].values()]


class SparseZL:
    """ZΛ without forming it. The first term's entries are ``V1 = Z₁ T₁`` (n × ℓ₁) in the columns
    ``c1`` of u (level-major); the other terms' are the values ``vR`` of (ZΛ)_R's non-zeros at
    ``(nz_row, nz_col)``, columns counted from the end of term 1
    (:mod:`mixedppl.graph.laplace_inputs`)."""

    def __init__(self, s: dict):
        self.s = s
        theta = s["theta"]
        self.n = s["y"].shape[0]
        self.ell1 = 1 if s["ell1_scalar"] else s["Z1"].shape[1]
        self.G1, self.qR = s["sizes"][0], s["sizes"][1]
        self.q1 = self.G1 * self.ell1
        if s["ell1_scalar"]:
            # a scalar gather: PyTensor's AdvancedIncSubtensor1 (the gradient of a length-1
            # vector gather) rejects a length-1 increment into a longer θ
            self.V1 = s["Z1"] * factor_values(theta, s["t1_theta"][0])
        else:
            T1 = pt.zeros((self.ell1, self.ell1))[s["t1_rows"], s["t1_cols"]].set(
                factor_values(theta, s["t1_theta"]))
            self.V1 = pt.dot(s["Z1"], T1)
        self.has_rest = s["r_mode"] != "none"
        if self.has_rest:
            nnz = s["nz_row"].shape[0]
            self.vR = pt.zeros((nnz,))[s["e_nz"]].inc(s["e_z"] * factor_values(theta, s["e_th"]))

    def times(self, u):
        """ZΛ u (length n)."""
        s = self.s
        if s["ell1_scalar"]:
            out = self.V1[:, 0] * u[s["c1"]]
        else:
            out = (self.V1 * u[s["c1"]].reshape((self.n, self.ell1))).sum(axis=1)
        if self.has_rest:
            uR = u[self.q1:]
            out = out + pt.zeros((self.n,))[s["nz_row"]].inc(self.vR * uR[s["nz_col"]])
        return out

    def t_times(self, d):
        """(ZΛ)ᵀ d (length q): scatter-adds over the level codes."""
        s = self.s
        out = pt.zeros((self.q1,))[s["c1"]].inc((self.V1 * d[:, None]).reshape((-1,)))
        if not self.has_rest:
            return out
        outR = pt.zeros((self.qR,))[s["nz_col"]].inc(self.vR * d[s["nz_row"]])
        return pt.concatenate([out, outR])


def _bmv(M, x):
    """Per level g: M_g x_g for a (G, ℓ, ℓ) stack and x (G, ℓ)."""
    return (M * x[:, None, :]).sum(axis=2)


class Blocked:
    r"""The SPD matrix :math:`A = \Lambda^\top Z^\top W Z\Lambda + I + \lambda I` (optionally bordered
    by the fixed effects: ``[[A, ΛᵀZᵀWX], [XᵀWZΛ, XᵀWX]]``) in the blocked form of
    MixedModels.jl: the first term's block is block diagonal (one ℓ₁×ℓ₁ block per level, a
    (G₁, ℓ₁, ℓ₁) stack inverted by one batched op), the rest (other terms, fixed effects) is
    dense, and

    .. math:: |A| = \prod_g |A_{11,g}|\;|S|, \qquad S = A_{RR} - A_{R1} A_{11}^{-1} A_{1R}.

    Nothing is O(n·q²): the blocks are scatter-adds over index inputs. Only S (q − q₁ [+ p]
    square) is dense.
    """

    def __init__(self, s: dict, D: SparseZL, w, with_X: bool = False, lam=0.0):
        self.D, self.s = D, s
        ell1, G1, q1 = D.ell1, D.G1, D.q1
        self.ell1, self.G1, self.q1 = ell1, G1, q1
        V1 = D.V1
        if s["ell1_scalar"]:
            a11 = pt.zeros((G1,))[s["codes1"]].inc(w * V1[:, 0] ** 2) + (1.0 + lam)
            self.A11 = a11[:, None, None]
            self.A11inv = (1.0 / a11)[:, None, None]
            self.ld1 = pt.sum(pt.log(a11))
        else:
            prods = (w[:, None, None] * V1[:, :, None] * V1[:, None, :]).reshape((-1,))
            A11 = pt.zeros((G1 * ell1 * ell1,))[s["c11"]].inc(prods).reshape((G1, ell1, ell1))
            self.A11 = A11 + (1.0 + lam) * pt.eye(ell1)[None]
            ld, self.A11inv = batched_spd_inverse(self.A11)
            self.ld1 = pt.sum(ld)
        self.has_rest = D.has_rest or with_X
        if not self.has_rest:
            return
        if D.has_rest:
            qR, vR = D.qR, D.vR
            ARR = pt.zeros((qR * qR,))[s["rr_dest"]].inc(
                w[s["rr_row"]] * vR[s["rr_a"]] * vR[s["rr_b"]]).reshape((qR, qR))
            ARR = ARR + (1.0 + lam) * pt.eye(qR)
            wv = w[s["nz_row"]] * vR
            AR1 = pt.zeros((qR * q1,))[s["r1_dest"]].inc(
                (wv[:, None] * V1[s["nz_row"]]).reshape((-1,))).reshape((qR, q1))
        if with_X:
            X = s["X"]
            WX = w[:, None] * X
            p = X.shape[1]
            AX1 = pt.zeros((q1, p))[s["c1"]].inc(
                (V1[:, :, None] * WX[:, None, :]).reshape((-1, p))).T
            AXX = X.T @ WX + lam * pt.eye(p)
            if D.has_rest:
                AXR = pt.zeros((qR, p))[s["nz_col"]].inc(wv[:, None] * X[s["nz_row"]]).T
                ARR = pt.concatenate([pt.concatenate([ARR, AXR.T], axis=1),
                                      pt.concatenate([AXR, AXX], axis=1)], axis=0)
                AR1 = pt.concatenate([AR1, AX1], axis=0)
            else:
                ARR, AR1 = AXX, AX1
        self.ARR, self.AR1 = ARR, AR1
        nR = ARR.shape[0]
        W3 = (AR1.reshape((nR, G1, ell1, 1)) * self.A11inv[None]).sum(axis=2)
        self.W2 = W3.reshape((nR, q1))
        if s["r_mode"] == "pairs" and not with_X:
            self.S = ARR - self._pair_product(s, D, w)
        else:
            self.S = ARR - self.W2 @ AR1.T

    def _pair_product(self, s: dict, D: SparseZL, w):
        r""":math:`A_{R1} A_{11}^{-1} A_{1R}` from the pairs (e, e') of non-zeros of (ZΛ)_R whose
        rows i, i' share a level g of the first term:
        :math:`\sum (w_i v_e V_{1,ia})\,[A_{11,g}^{-1}]_{ab}\,(w_{i'} v_{e'} V_{1,i'b})` scattered
        to (col e, col e'). O(pairs·r_R²·ℓ₁²) instead of the dense q_R²·q₁ product
        (grouseticks: 403 pairs against 181·403·181)."""
        ra, rb = s["pp_ra"], s["pp_rb"]
        left = (w[ra] * D.vR[s["pp_a"]])[:, None] * D.V1[ra]
        right = (w[rb] * D.vR[s["pp_b"]])[:, None] * D.V1[rb]
        if s["ell1_scalar"]:
            vals = left[:, 0] * self.A11inv[:, 0, 0][s["pp_g"]] * right[:, 0]
        else:
            vals = (_bmv(self.A11inv[s["pp_g"]], right) * left).sum(axis=1)
        qR = D.qR
        return pt.zeros((qR * qR,))[s["pp_dest"]].inc(vals).reshape((qR, qR))

    def logdet(self):
        """log|A| (first derivatives exact; see :func:`logdet_first_order`)."""
        if not self.has_rest:
            return self.ld1
        return self.ld1 + logdet_first_order(self.S)

    def _a11_solve(self, r1):
        if self.s["ell1_scalar"]:
            return self.A11inv[:, 0, 0] * r1
        return _bmv(self.A11inv, r1.reshape((self.G1, self.ell1))).reshape((-1,))

    def solve(self, r):
        """A⁻¹ r by block elimination (r ordered as A: term 1, the rest, [β])."""
        if not self.has_rest:
            return self._a11_solve(r)
        r1, rR = r[:self.q1], r[self.q1:]
        xR = pt.linalg.solve(self.S, rR - self.W2 @ r1, assume_a="sym")
        x1 = self._a11_solve(r1 - self.AR1.T @ xR)
        return pt.concatenate([x1, xR])

    def dense(self):
        """A as a dense matrix (for one-off evaluations at the optimum)."""
        ell1, G1, q1 = self.ell1, self.G1, self.q1
        g = pt.arange(G1)[:, None, None] * ell1
        a = pt.arange(ell1)
        dest = ((g + a[None, :, None]) * q1 + g + a[None, None, :]).reshape((-1,))
        A11 = pt.zeros((q1 * q1,))[dest].set(self.A11.reshape((-1,))).reshape((q1, q1))
        if not self.has_rest:
            return A11
        return pt.concatenate([pt.concatenate([A11, self.AR1.T], axis=1),
                               pt.concatenate([self.AR1, self.ARR], axis=1)], axis=0)


def logdet_first_order(A):
    """log|A| for SPD A whose first derivative is tr(A⁻¹ dA) with A⁻¹ held constant.

    The value comes from the Cholesky factor; the gradient graph avoids differentiating the
    factorisation (several q×q triangular solves) — only first derivatives of log|L|² are needed.

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> A = pt.dmatrix("A")
    >>> f = pytensor.function([A], [logdet_first_order(A), pt.grad(logdet_first_order(A), A)])
    >>> M = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> value, grad = f(M)
    >>> bool(np.isclose(value, np.log(1.75))), bool(np.allclose(grad, np.linalg.inv(M)))
    (True, True)
    """
    value = 2.0 * pt.log(pt.diag(pt.linalg.cholesky(A))).sum()
    Ainv = disconnected_grad(pt.linalg.inv(A))
    linear = pt.sum(Ainv * A)
    return disconnected_grad(value) + linear - disconnected_grad(linear)
