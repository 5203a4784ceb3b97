"""The GLMM joint log-density and lme4's Laplace deviance as PyTensor graphs.

With spherical random effects u ~ N(0, I) and b = Λu, the linear predictor is
``η = Xβ + offset + ZΛu``; term k contributes ``z_k[i]·T_k u_{k,g(i)}`` (an index gather over the
level codes: ZΛ is never formed, and its transpose products are scatter-adds). The penalised
deviance is ``g(u) = −2 log p(y | η, φ) + ‖u‖²`` and lme4's Laplace deviance at the conditional
mode û is

    D(θ, β, φ) = g(û) + log|L|²,   L Lᵀ = ΛᵀZᵀ W(û) ZΛ + I,

with W the IRLS (Fisher) weights (lme4) or the exact −∂² log p/∂η² (TMB / glmmTMB, ordinal's
clmm), as the family says (``family.hessian``). φ holds the family's extra parameters (log
dispersion; the thresholds of a cumulative link model); the family supplies the elementwise
``loglik(y, η, n, φ, link)``. The outer gradient is exact by the implicit function theorem: with
G(u, ψ) = g + log|L|², ψ = (θ, β, φ) and H = ∂²g/∂u²,

    dD/dψ = ∂G/∂ψ − ∂/∂ψ [vᵀ ∂g/∂u],   v = H⁻¹ ∂G/∂u held constant.

LLᵀ and H are held in MixedModels.jl's blocked form (:class:`_Blocked`): the first term's block
is block diagonal, a (G₁, ℓ₁, ℓ₁) stack inverted by one batched op
(:func:`~mixedppl.graph.ops.batched_spd_inverse`; elementwise when ℓ₁ = 1); only the Schur
complement of the other terms is dense. Nothing costs O(n·q²) (grouseticks, q = 584: a Laplace
evaluation went from dense q×q products and inverses to a 181×181 dense block).

Graph keys (docs/compile.md)
----------------------------
The graph is *structure-generic*: the number of terms, their widths and level counts and where
each θ sits are data inputs (:mod:`mixedppl.graph.laplace_inputs`). The first term enters through
its codes and ``Z₁`` (n × ℓ₁, ℓ₁ read from the input's shape), θ → T₁ by an index map; all other
terms are one sparse ``(ZΛ)_R`` given as non-zero (row, column) vectors whose values are θ
gathered by an index map and scaled by Z's entries. One compiled function per
``(family.key, link, r_mode, ℓ₁ = 1)`` — ``r_mode`` ``"none"`` (one term), ``"dense"`` or ``"pairs"``
(the Schur block's product from rows sharing a level of term 1), :meth:`LaplaceStructure.graph_key`
— serves every formula: six graphs per family and link, where the term widths tuple made every
new random-effects structure compile anew. Adaptive Gauss–Hermite (``nAGQ > 1``, one term) adds
ℓ₁ and nAGQ to the key (its product rule is unrolled over the K^ℓ₁ nodes).

References
----------
Bates et al. (2015), J. Stat. Softw. 67(1), section 5 (GLMMs); lme4's ``vignette("PIRLSmod")``.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from ..core.compile import compiled
from .laplace_inputs import (LaplaceStructure, aux_names, design_inputs, input_names,
                             laplace_structure, row_pairs)
from .merged_grad import grad as merged_grad
from .ops import batched_spd_inverse
from .relative_factor import factor_values
from .smallmat import bchol

__all__ = ["laplace_functions", "joint_functions", "design_inputs", "row_pairs",
           "laplace_structure", "LaplaceStructure"]

_INT_INPUTS = {"sizes", "codes1", "c1", "c11", "t1_rows", "t1_cols", "t1_theta", "nz_row",
               "nz_col", "e_nz", "e_th", "rr_a", "rr_b", "rr_row", "rr_dest", "r1_dest", "pp_a",
               "pp_b", "pp_ra", "pp_rb", "pp_g", "pp_dest"}
_MATRIX_INPUTS = {"X", "Z1"}


def _symbols(r_mode: str, ell1_scalar: bool, family=None) -> dict:
    s = {name: pt.dvector(name) for name in ("u", "theta", "beta", "phi")}
    s["aux"] = {name: pt.dmatrix(name) for name in aux_names(family)}
    for name in input_names(r_mode):
        if name in _INT_INPUTS:
            s[name] = pt.lvector(name)
        elif name in _MATRIX_INPUTS:
            s[name] = pt.dmatrix(name)
        else:
            s[name] = pt.dvector(name)
    s["r_mode"], s["ell1_scalar"] = r_mode, ell1_scalar
    s["lam"] = pt.dscalar("lam")
    return s


def _inputs(s: dict) -> list:
    return [s["u"], s["theta"], s["beta"], s["phi"], *(s[n] for n in input_names(s["r_mode"])),
            *s["aux"].values()]


class _SparseZL:
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


class _Blocked:
    r"""The SPD matrix :math:`A = \Lambda^\top Z^\top W Z\Lambda + I + \lambda I` (optionally bordered
    by the fixed effects: ``[[A, ΛᵀZᵀWX], [XᵀWZΛ, XᵀWX]]``) in the blocked form of
    MixedModels.jl: the first term's block is block diagonal (one ℓ₁×ℓ₁ block per level, a
    (G₁, ℓ₁, ℓ₁) stack inverted by one batched op), the rest (other terms, fixed effects) is
    dense, and

    .. math:: |A| = \prod_g |A_{11,g}|\;|S|, \qquad S = A_{RR} - A_{R1} A_{11}^{-1} A_{1R}.

    Nothing is O(n·q²): the blocks are scatter-adds over index inputs. Only S (q − q₁ [+ p]
    square) is dense.
    """

    def __init__(self, s: dict, D: _SparseZL, w, with_X: bool = False, lam=0.0):
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
        parts_RR, parts_R1 = [], []
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

    def _pair_product(self, s: dict, D: _SparseZL, w):
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
        """log|A| (first derivatives exact; see :func:`_logdet`)."""
        if not self.has_rest:
            return self.ld1
        return self.ld1 + _logdet(self.S)

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


def _logdet(A):
    """log|A| for SPD A whose first derivative is tr(A⁻¹ dA) with A⁻¹ held constant.

    The value comes from the Cholesky factor; the gradient graph avoids differentiating the
    factorisation (several q×q triangular solves) — only first derivatives of log|L|² are needed.
    """
    value = 2.0 * pt.log(pt.diag(pt.linalg.cholesky(A))).sum()
    Ainv = disconnected_grad(pt.linalg.inv(A))
    linear = pt.sum(Ainv * A)
    return disconnected_grad(value) + linear - disconnected_grad(linear)


def _pieces(s: dict, family, link) -> dict:
    """g, ∂g/∂u, G = g + log|L|² (with L in blocked form) and what the optimum needs."""
    u = s["u"]
    D = _SparseZL(s)
    eta = s["X"] @ s["beta"] + s["offset"] + D.times(u)
    ll = family.loglik(s["y"], eta, s["ntr"], s["phi"], link, **s["aux"])
    d1 = merged_grad(ll.sum(), eta)
    h = -merged_grad(d1.sum(), eta)
    g = -2.0 * ll.sum() + u @ u
    g_u = -2.0 * D.t_times(d1) + 2.0 * u
    if family.hessian == "fisher":
        w = family.fisher_weights(eta, s["ntr"], s["phi"], link)
    else:
        w = h
    A = _Blocked(s, D, w)
    mu = link.linkinv(eta)
    ldL2 = A.logdet()
    return dict(D=D, eta=eta, mu=mu, ll=ll, g=g, g_u=g_u, w=w, h=h, A=A, ldL2=ldL2,
                G=g + ldL2, d1=d1)


def _build_inner(key: tuple, family, link):
    """(g, ∂g/∂u, Newton step (H + λI)⁻¹ ∂g/∂u); inputs ``(λ, *_inputs)``."""
    s = _symbols(*key[:2], family)
    p = _pieces(s, family, link)
    Hb = _Blocked(s, p["D"], p["h"], lam=s["lam"] / 2.0)
    step = Hb.solve(p["g_u"]) / 2.0
    return [s["lam"], *_inputs(s)], [p["g"], p["g_u"], step]


def _agq_deviance(s: dict, p: dict, family, link, K: int):
    """Adaptive Gauss–Hermite deviance for one scalar random-effect term (lme4's nAGQ = K).

    Per group i, with nodes ``u = û_i + σ_i z_k`` (σ_i = 1/L_ii, standard-normal GH rule (z_k, w_k)):
    ``D = −2 Σ_i [log σ_i + log Σ_k w_k exp(−g_i(u_k)/2 + z_k²/2)]`` (K = 1 gives the Laplace D).
    All constants of log p(y | u) are kept (lme4 drops the binomial saturated log-likelihood).
    """
    z, w = np.polynomial.hermite_e.hermegauss(K)
    w = w / w.sum()
    n = s["X"].shape[0]
    codes = s["codes1"]
    sigma = 1.0 / pt.sqrt(p["A"].A11[:, 0, 0])
    U = s["u"][:, None] + sigma[:, None] * z[None, :]
    eta = (s["X"] @ s["beta"] + s["offset"])[:, None] + p["D"].V1[:, 0][:, None] * U[codes]
    ll = family.loglik(pt.repeat(s["y"], K), eta.ravel(), pt.repeat(s["ntr"], K), s["phi"],
                       link).reshape((n, K))
    gi = -2.0 * pt.zeros((s["sizes"][0], K))[codes].inc(ll) + U ** 2
    terms = np.log(w)[None, :] - gi / 2 + (z ** 2 / 2)[None, :]
    return -2.0 * (pt.logsumexp(terms, axis=1) + pt.log(sigma)).sum()


def _agq_deviance_vector(s: dict, p: dict, family, link, K: int, ell: int):
    """Adaptive Gauss–Hermite deviance for one grouping factor with an ℓ-vector random effect.

    Per group i, with ``L_i L_iᵀ`` the ℓ×ℓ block of ``A = ΛᵀZᵀWZΛ + I`` and the product rule
    ``(z_k, w_k)`` of K^ℓ standard-normal nodes, the nodes are ``u_ik = û_i + L_i⁻ᵀ z_k`` and

        D = −2 Σ_i [−log|L_i| + log Σ_k w_k exp(−g_i(u_ik)/2 + ‖z_k‖²/2)],

    ``g_i = −2 log p(y_i | u) + ‖u‖²`` (Pinheiro & Bates 1995, J. Comput. Graph. Stat. 4(1);
    Liu & Pierce 1994, Biometrika 81(3)). K = 1 gives the Laplace D; ℓ = 1 the scalar rule.
    """
    z1, w1 = np.polynomial.hermite_e.hermegauss(K)
    w1 = w1 / w1.sum()
    grid = np.stack(np.meshgrid(*([z1] * ell), indexing="ij"), axis=-1).reshape(-1, ell)
    logw = np.sum(np.log(w1)[np.stack(np.meshgrid(*([np.arange(K)] * ell), indexing="ij"),
                                       axis=-1).reshape(-1, ell)], axis=1)
    nk = grid.shape[0]
    n = s["X"].shape[0]
    codes, G = s["codes1"], s["sizes"][0]
    A11 = p["A"].A11
    L = bchol([[A11[:, a, b] for b in range(ell)] for a in range(ell)], ell)
    uhat = s["u"].reshape((G, ell))
    # back substitution Lᵀ x = z for every group (rows) and node (columns)
    x = [None] * ell
    for a in reversed(range(ell)):
        rhs = pt.as_tensor_variable(grid[:, a])[None, :] - sum(
            (L[b][a][:, None] * x[b] for b in range(a + 1, ell)), start=0.0)
        x[a] = rhs / L[a][a][:, None]
    U = [uhat[:, a][:, None] + x[a] for a in range(ell)]          # ℓ × (G, nk)
    V = p["D"].V1
    eta = (s["X"] @ s["beta"] + s["offset"])[:, None] + sum(
        (V[:, a][:, None] * U[a][codes] for a in range(ell)), start=0.0)
    ll = family.loglik(pt.repeat(s["y"], nk), eta.ravel(), pt.repeat(s["ntr"], nk), s["phi"],
                       link).reshape((n, nk))
    gi = -2.0 * pt.zeros((G, nk))[codes].inc(ll) + sum((Ua ** 2 for Ua in U), start=0.0)
    terms = logw[None, :] - gi / 2 + (np.sum(grid ** 2, axis=1) / 2)[None, :]
    logdet = sum((pt.log(L[a][a]) for a in range(ell)), start=0.0)
    return -2.0 * (pt.logsumexp(terms, axis=1) - logdet).sum()


def _newton_blocked(s: dict, p: dict, family, with_X: bool = False) -> _Blocked:
    """½ ∂²g/∂u² (or over (u, β) jointly) in blocked form."""
    if not with_X and family.hessian != "fisher":
        return p["A"]
    return _Blocked(s, p["D"], p["h"], with_X=with_X)


def _build_outer(key: tuple, family, link, K: int = 1, vector_rule: bool = False):
    s = _symbols(*key[:2], family)
    p = _pieces(s, family, link)
    if K == 1:
        D = p["G"]
    elif vector_rule or key[2] > 1:
        D = _agq_deviance_vector(s, p, family, link, K, key[2])
    else:
        D = _agq_deviance(s, p, family, link, K)
    D_u = merged_grad(D, s["u"])
    v = disconnected_grad(_newton_blocked(s, p, family).solve(D_u) / 2.0)
    obj = D - v @ p["g_u"]
    grads = merged_grad(obj, [s["theta"], s["beta"], s["phi"]], disconnected_inputs="ignore")
    return _inputs(s), [D, *grads]


def _build_estimates(key: tuple, family, link):
    s = _symbols(*key[:2], family)
    p = _pieces(s, family, link)
    return _inputs(s), [p["G"], p["g"], p["ldL2"], p["ll"], p["eta"], p["mu"], p["A"].dense()]


def _joint_grad(s: dict, p: dict):
    """∂g/∂(u, β)."""
    return pt.concatenate([p["g_u"], -2.0 * (s["X"].T @ p["d1"])])


def _build_inner_joint(key: tuple, family, link):
    """g, its gradient over (u, β) jointly and the Newton step (PIRLS with β inside, nAGQ = 0);
    inputs ``(λ, *_inputs)``."""
    s = _symbols(*key[:2], family)
    p = _pieces(s, family, link)
    grad = _joint_grad(s, p)
    Hb = _Blocked(s, p["D"], p["h"], with_X=True, lam=s["lam"] / 2.0)
    return [s["lam"], *_inputs(s)], [p["g"], grad, Hb.solve(grad) / 2.0]


def _build_outer_joint(key: tuple, family, link):
    """lme4's nAGQ = 0 deviance D₀(θ) = G(û(θ), β̂(θ), θ) and its exact gradient over θ (and φ).

    (û, β̂) minimise g jointly, so by the implicit function theorem
    ``dD₀/dθ = ∂G/∂θ − vᵀ ∂/∂θ [∂g/∂(u, β)]`` with ``v = H_(u,β)⁻¹ ∂G/∂(u, β)`` held constant.
    """
    s = _symbols(*key[:2], family)
    p = _pieces(s, family, link)
    D = p["G"]
    D_ub = pt.concatenate(merged_grad(D, [s["u"], s["beta"]]))
    v = disconnected_grad(_newton_blocked(s, p, family, with_X=True).solve(D_ub) / 2.0)
    obj = D - v @ _joint_grad(s, p)
    grads = merged_grad(obj, [s["theta"], s["phi"]], disconnected_inputs="ignore")
    return _inputs(s), [D, *grads]


def _build_fisher_joint(key: tuple, family, link):
    """The joint (u, β) matrix ``[[ΛᵀZᵀWZΛ + I, ΛᵀZᵀWX], [XᵀWZΛ, XᵀWX]]`` with the family's IRLS
    weights, dense: its inverse's ββ block is lme4's ``(R_XᵀR_X)⁻¹`` (``pp$unsc()``), the
    nAGQ = 0 covariance of β̂."""
    s = _symbols(*key[:2], family)
    p = _pieces(s, family, link)
    return _inputs(s), [_Blocked(s, p["D"], p["w"], with_X=True).dense()]


def _structure(structure) -> LaplaceStructure:
    """A :class:`LaplaceStructure`, also from a tuple of term widths (dense Schur product)."""
    if isinstance(structure, LaplaceStructure):
        return structure
    ells = tuple(structure)
    return LaplaceStructure("none" if len(ells) == 1 else "dense", int(ells[0]))


def joint_functions(family, link, structure) -> dict:
    """Compiled functions for lme4's ``nAGQ = 0`` (β estimated inside the penalised IRLS).

    ``structure``: a :class:`LaplaceStructure` (``r_mode`` ``"none"`` or ``"dense"``) or the
    term widths. ``inner``: (g, ∂g/∂(u, β), Newton step (H + λI)⁻¹∂g/∂(u, β)), inputs
    ``(λ, ...)``; ``outer``: (D₀, ∂D₀/∂θ, ∂D₀/∂φ) at the joint mode; ``fisher``: the joint matrix
    with IRLS weights (see :func:`_build_fisher_joint`). Otherwise the inputs of
    :func:`laplace_functions`.

    Examples
    --------
    >>> from mixedppl.families import get_family
    >>> fns = joint_functions(*get_family("binomial", "logit"), (1,))
    >>> sorted(fns)
    ['fisher', 'inner', 'outer']
    """
    gk = _structure(structure).graph_key()
    if gk[0] == "pairs":
        raise ValueError("nAGQ = 0 uses the dense Schur product (r_mode 'none' or 'dense')")
    key = ("glmm-joint", family.key, link.name, gk)
    return {
        "inner": compiled(key + ("inner",), lambda: _build_inner_joint(gk, family, link),
                          kind="fast_run_c"),
        "outer": compiled(key + ("outer",), lambda: _build_outer_joint(gk, family, link),
                          kind="fast_run_c"),
        "fisher": compiled(key + ("fisher",), lambda: _build_fisher_joint(gk, family, link),
                           kind="fast_compile"),
    }


def laplace_functions(family, link, structure, nAGQ: int = 1,
                      vector_rule: bool = False) -> dict:
    """Compiled ``inner`` (g, ∂g/∂u, the Newton step (H + λI)⁻¹ ∂g/∂u with H = ∂²g/∂u²),
    ``outer`` (D, ∂D/∂θ, ∂D/∂β, ∂D/∂φ) and ``estimates`` (including the dense LLᵀ).

    ``structure`` is a :class:`LaplaceStructure` (:func:`laplace_structure`) or a tuple of
    term widths (then the Schur block's product is dense). All take ``(u, θ, β, φ, *data)``
    with the data of :func:`design_inputs` (``inner`` takes λ first); they are cached per
    (family, link, :meth:`LaplaceStructure.graph_key`), so every formula and dataset with that
    key reuses them. With ``nAGQ > 1`` (one grouping factor only) ``outer`` is the adaptive
    Gauss–Hermite deviance and its exact gradient: the scalar rule for an intercept-only term,
    the product rule in the adapted coordinates for a vector term (``vector_rule=True`` forces
    it for ℓ = 1, as a check).

    Examples
    --------
    >>> from mixedppl.families import get_family
    >>> fam, link = get_family("binomial", "logit")
    >>> a = laplace_functions(fam, link, (1,))
    >>> b = laplace_functions(fam, link, LaplaceStructure("none", 1))
    >>> a["outer"] is b["outer"]
    True
    """
    st = _structure(structure)
    gk = st.graph_key(nAGQ)
    key = ("glmm-laplace", family.key, link.name, gk[:2])
    return {
        "inner": compiled(key + ("inner",), lambda: _build_inner(gk, family, link),
                          kind="fast_run_c"),
        "outer": compiled(key + ("outer", gk, nAGQ, vector_rule),
                          lambda: _build_outer(gk, family, link, nAGQ, vector_rule),
                          kind="fast_run_c"),
        "estimates": compiled(key + ("estimates",),
                              lambda: _build_estimates(gk, family, link),
                              kind="fast_compile"),
    }
