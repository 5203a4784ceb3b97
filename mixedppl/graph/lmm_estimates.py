r"""β̂, the conditional modes and their conditional variances from the profiled-deviance graph.

Given the blocked factor of :class:`~mixedppl.graph.lmm.ProfiledLMM` at θ:

- :math:`\hat\beta = R_X^{-1} r_{Xy}` (upper-triangular solve with the fixed-effects block),
- spherical modes of the other terms :math:`u_R = S^{-1}(B_{R,y} - B_{R,X}\hat\beta)` (via the
  Cholesky factor :math:`L_R` of S), then term 1 level by level,
  :math:`u_{1,g} = B_g^{-1}(U_{g,y} - U_{g,X}\hat\beta - T_1^\top (A_{R1}^\top\Lambda_R u_R)_g)`,
  and :math:`b = \Lambda_\theta u`,
- :math:`\operatorname{Var}(b\mid y) = \sigma^2 \Lambda (L L^\top)^{-1} \Lambda^\top`, whose diagonal
  blocks are :math:`T_1 (B_g^{-1} + E_g^\top E_g) T_1^\top` for term 1 with
  :math:`E = L_R^{-1}\Lambda_R^\top A_{R1}\Lambda_1 B^{-1}`, and the diagonal blocks of
  :math:`\Lambda_R S^{-1}\Lambda_R^\top` for the other terms (computed once, at the optimum).

Like the deviance, the graph is generic in the term widths: the other terms' blocks are read
from :math:`\Lambda_R S^{-1}\Lambda_R^\top` at the index pairs ``cv_row, cv_col`` (every (a, b)
of every level of every term), which the caller reshapes per term.

References
----------
Bates et al. (2015), J. Stat. Softw. 67(1), eqs. 16–18 and section 3.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.tensor.slinalg import cholesky, solve_triangular

from .lmm import ProfiledLMM, bmm
from .ops import pair_gather

__all__ = ["estimates"]


def _dense_ar1(g: ProfiledLMM):
    """A_R1 as (q_R, G₁, ℓ₁)."""
    if g.r_mode == "dense":
        return g.AR1
    shape = (g.ARR.shape[0], g.A11.shape[0], g.A11.shape[1])
    return pt.zeros(shape)[g.sp_row, g.sp_grp].inc(g.sp_val)


def _ar1_t_times(g: ProfiledLMM, v):
    """A_R1ᵀ v as (G1, ℓ1)."""
    if g.r_mode == "dense":
        return (g.AR1 * v[:, None, None]).sum(axis=0)
    return pt.zeros((g.A11.shape[0], g.A11.shape[1]))[g.sp_grp].inc(
        g.sp_val * v[g.sp_row][:, None])


def _factor_rest(g: ProfiledLMM) -> None:
    """L_R = chol(S) and C_R = L_R⁻¹ B_R (the deviance itself only needs log|S| and B_RᵀS⁻¹B_R)."""
    if g.r_mode != "none" and not hasattr(g, "LR"):
        g.LR = cholesky(g.S, lower=True)
        g.CR = solve_triangular(g.LR, g.BR, lower=True)


def _modes(g: ProfiledLMM, beta):
    p, T1 = g.p, g.T1
    r1 = g.U[:, :, p] - (g.U[:, :, :p] * beta[None, None, :]).sum(axis=2)
    u_rest = b_rest = None
    if g.r_mode != "none":
        rR = g.CR[:, p] - pt.dot(g.CR[:, :p], beta)
        u_rest = solve_triangular(g.LR.T, rR, lower=False)
        b_rest = g.lam_r(u_rest)
        t = _ar1_t_times(g, b_rest)
        r1 = r1 - (T1[None, :, :] * t[:, :, None]).sum(axis=1)      # T1ᵀ t per level
    u1 = (g.Binv * r1[:, None, :]).sum(axis=2)
    b1 = (T1[None, :, :] * u1[:, None, :]).sum(axis=2)
    return u1, b1, u_rest, b_rest


def _sandwich(T, D):
    """T D_g Tᵀ for a shared T (ℓ, ℓ) and a stack D (G, ℓ, ℓ)."""
    return bmm(bmm(T[None], D), T.T[None])


def _condvar(g: ProfiledLMM):
    """Unscaled conditional covariance blocks Λ(LLᵀ)⁻¹Λᵀ: term 1 as (G₁, ℓ₁, ℓ₁) and, when there
    are other terms, their blocks flattened in ``cv_row, cv_col`` order."""
    D = g.Binv
    if g.r_mode == "none":
        return [_sandwich(g.T1, D)]
    qR, G1, ell = g.ARR.shape[0], g.A11.shape[0], g.A11.shape[1]
    LRinv = solve_triangular(g.LR, pt.eye(qR), lower=True)
    Sinv = pt.dot(LRinv.T, LRinv)
    if g.rest_scalar:
        lam = g.lam_vals
        V = lam[:, None] * Sinv * lam[None, :]
    else:
        V = g.lam_r(g.lam_r(Sinv).T)
    if g.r_mode == "sparse" and g.rest_scalar:
        # the pair scatter's transpose applied to Λ_R S⁻¹ Λ_R: O(pairs·ℓ₁²) instead of a
        # triangular solve with G₁·ℓ₁ right-hand sides and a dense q_R × G₁ copy of A_R1
        C = pair_gather(V.ravel(), g.prods, g.pgrp, g.pdest, qR * qR, G1).reshape((G1, ell, ell))
        D = D + bmm(bmm(g.N.transpose(0, 2, 1), C), g.N)
    else:
        AR1 = _dense_ar1(g)
        H0 = (AR1[:, :, :, None] * g.N[None]).sum(axis=2)              # A_R1 T1 B⁻¹
        H = g.lam_r_t(H0.reshape((qR, G1 * ell)))
        E3 = solve_triangular(g.LR, H, lower=True).reshape((qR, G1, ell))
        D = D + (E3[:, :, :, None] * E3[:, :, None, :]).sum(axis=0)
    return [_sandwich(g.T1, D), V[g.cv_row, g.cv_col]]


def estimates(g: ProfiledLMM) -> dict:
    """Symbolic β̂, R_X factor, modes and conditional variances for the graph ``g``."""
    _factor_rest(g)
    p, LF = g.p, g.LF
    Lxx = LF[:p, :p]
    beta = solve_triangular(Lxx.T, LF[p, :p], lower=False)
    u1, b1, u_rest, b_rest = _modes(g, beta)
    out = {"beta": beta, "Lxx": Lxx, "b1": b1, "u1": u1, "pwrss": g.pwrss, "ldL2": g.ldL2,
           "ldRX2": g.ldRX2, "deviance": g.deviance, "condvar": _condvar(g)}
    if b_rest is not None:
        out["b_rest"] = b_rest
        out["u_rest"] = u_rest
    return out
