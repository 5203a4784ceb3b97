r"""The gradient of G = −PPL + ½ log|H̃_uu| with coxme's sparse levels, by a hand-written
reverse pass in NumPy (what the graph ``cox_functions("outer")`` gets by automatic
differentiation).

With sparse levels H̃ is not a Hessian (coxme drops the information between two sparse
levels), so the closed form of :meth:`CoxNumpy.theta_gradient
<mixedppl.graph.cox_numpy.CoxNumpy.theta_gradient>` does not apply and a dense n × q matrix
would not fit anyway (sim20k: 20,000 × 1,000). Instead the forward evaluation
(:meth:`CoxNumpy.state <mixedppl.graph.cox_numpy.CoxNumpy.state>` and
:meth:`CoxNumpy.information_blocks <mixedppl.graph.cox_numpy.CoxNumpy.information_blocks>`)
is run backwards, each step by its adjoint, in the same O(n + S·m_d + m_d³) as the forward
pass (m_d the dense block's size):

* ½ log|H̃_uu| = ½ Σ log d + ½ log|S|, S = B_uu − C_uᵀ diag(d)⁻¹ C_u, so with
  :math:`\bar S = \tfrac12 S^{-1}`: :math:`\bar B_{uu} = \bar S`,
  :math:`\bar C_u = -2\,\mathrm{diag}(d)^{-1} C_u \bar S`,
  :math:`\bar d_l = \tfrac1{2d_l} + (C_u\bar S C_u^\top)_{ll}/d_l^2`;
* a scatter (``bincount``) and a gather are each other's adjoints, as a cumulative sum and the
  reversed one, and the risk-set operator R and its transpose (``slot_sums`` / ``spread``);
* a product's adjoint multiplies by the other factors.

The pass ends at η (through r = w e^η, the denominators D = R(r), ω = Rᵀ(c/D) and c/D²) and at
the entries of ZΛ, which are linear in θ. The maximum subtracted from η before the exponential
is held constant: every quantity is invariant to it. ``tests/graph/test_cox_numpy.py`` checks
the result against the graph to 1e-10 and against central differences.

References
----------
Griewank, A. & Walther, A. (2008). *Evaluating Derivatives*, 2nd ed., SIAM, ch. 3 (the reverse
mode); Therneau, Grambsch & Pankratz (2003), J. Comput. Graph. Stat. 12, 156–175.
"""

from __future__ import annotations

import numpy as np

from .cox_numpy import CoxNumpy, _bin, _revcumsum, _rows, cho_solve, cholesky

__all__ = ["outer_gradient", "information_blocks_adjoint"]


def _risk_sums_adjoint(g: np.ndarray, start: np.ndarray, end: np.ndarray,
                       n_rows: int) -> np.ndarray:
    """The adjoint of ``_risk_sums(a, start, end)`` (slot s sums rows start_s … end_s − 1)."""
    marks = _rows(start, g, n_rows + 1) - _rows(end, g, n_rows + 1)
    return np.cumsum(marks, axis=0)[:n_rows]


def _half_logdet_adjoint(d_pen: np.ndarray, C: np.ndarray, B_pen: np.ndarray, q_d: int):
    """(½ log|H̃_uu|, d̄, C̄, B̄) by the Schur complement of the sparse diagonal."""
    C_u = C[:, :q_d]
    DC = C_u / d_pen[:, None]
    L = cholesky(B_pen[:q_d, :q_d] - C_u.T @ DC)
    half = 0.5 * float(np.sum(np.log(d_pen))) + float(np.sum(np.log(np.diag(L))))
    S_bar = 0.5 * cho_solve(L, np.eye(q_d))
    DCS = DC @ S_bar
    d_bar = 0.5 / d_pen + np.sum(DCS * DC, axis=1)
    C_bar = np.zeros_like(C)
    C_bar[:, :q_d] = -2.0 * DCS
    B_bar = np.zeros_like(B_pen)
    B_bar[:q_d, :q_d] = S_bar
    return half, d_bar, C_bar, B_bar


def _sparse_adjoint(ev: CoxNumpy, s: dict, r, w_slot, d_bar, C_bar, out: dict) -> None:
    """The sparse levels' part of :func:`information_blocks_adjoint` (d and C), accumulated
    into ``out`` (rw, r, w_slot, the entries' z values, A)."""
    rs, fl, X, K = ev.rs, ev.fl, ev.X, ev.K
    frac, slot_time, n_slots = rs.slot_fraction, rs.slot_time, len(rs.slot_weight)
    q_d, n = len(fl.dense_cols), ev.n
    rw, A, sp_row, sp_z, de_z, T = s["rw"], s["A"], s["sp_row"], s["sp_z"], s["de_z"], s["T"]
    sd_pair, t_pair, w_cum, alpha, alpha2 = (s["sd_pair"], s["t_pair"], s["w_cum"],
                                             s["alpha"], s["alpha2"])
    n_sp = len(sp_z)
    sp_z_bar, T_bar = np.zeros(n_sp), np.zeros(n_sp)
    # C = [row_lev, row_x] − P1 + P2
    g = np.sum(C_bar[fl.sp_level, q_d:] * X[sp_row], axis=1)
    out["rw"] += _bin(sp_row, g * sp_z, n)
    sp_z_bar += g * rw[sp_row]
    a, b = fl.sd_sp, fl.sd_de
    g = C_bar[fl.sp_level[a], fl.de_local[b]]
    out["rw"] += _bin(sp_row[a], g * sp_z[a] * de_z[b], n)
    sp_z_bar += _bin(a, g * rw[sp_row[a]] * de_z[b], n_sp)
    out["de_z"] += _bin(b, g * rw[sp_row[a]] * sp_z[a], len(de_z))
    P1_bar = -C_bar[fl.sp_level]
    T_bar += np.sum(P1_bar * (s["wA_cum"][fl.sp_hi] - s["wA_cum"][fl.sp_lo]), axis=1)
    Y_bar = T[:, None] * P1_bar
    wA_cum_bar = _rows(fl.sp_hi, Y_bar, n_slots + 1) - _rows(fl.sp_lo, Y_bar, n_slots + 1)
    P2_bar = C_bar[fl.tp_level]
    sd_pair_bar = np.sum(P2_bar * s["wfA"][fl.tp_time], axis=1)
    wfA_bar = _rows(fl.tp_time, sd_pair[:, None] * P2_bar, K)
    wA_bar = _revcumsum(wA_cum_bar[1:])
    out["A"] += w_slot[:, None] * wA_bar
    out["w_slot"] += np.sum(A * wA_bar, axis=1)
    g = wfA_bar[slot_time]
    out["A"] += (w_slot * frac)[:, None] * g
    out["w_slot"] += frac * np.sum(A * g, axis=1)
    # d = Σ rw z² − sum_sq
    dl = d_bar[fl.sp_level]
    out["rw"] += _bin(sp_row, dl * sp_z ** 2, n)
    sp_z_bar += 2.0 * dl * rw[sp_row] * sp_z
    se = -dl
    T_bar += 2.0 * T * (w_cum[fl.sp_hi] - w_cum[fl.sp_lo]) * se
    w_cum_bar = (_bin(fl.sp_hi, T ** 2 * se, n_slots + 1)
                 - _bin(fl.sp_lo, T ** 2 * se, n_slots + 1))
    sp_ = -d_bar[fl.tp_level]
    k = fl.tp_time
    sd_pair_bar += sp_ * (2.0 * alpha2[k] * sd_pair - 2.0 * alpha[k] * t_pair)
    alpha2_bar = _bin(k, sp_ * sd_pair ** 2, K)
    alpha_bar = _bin(k, -2.0 * sp_ * sd_pair * t_pair, K)
    T_bar += _bin(fl.tp_first, -2.0 * sp_ * sd_pair * alpha[k], n_sp)
    out["w_slot"] += (frac * alpha_bar[slot_time] + frac ** 2 * alpha2_bar[slot_time]
                      + _revcumsum(w_cum_bar[1:]))
    # sd_pair and the within-level tails T from v = r z
    v_bar = _bin(fl.sp_event, sd_pair_bar[fl.sp_event_pair], n_sp)
    tail_bar = np.concatenate([T_bar, np.zeros(1)]) - _bin(fl.sp_end, T_bar, n_sp + 1)
    v_bar += np.cumsum(tail_bar)[:n_sp]
    out["r"] += _bin(sp_row, v_bar * sp_z, n)
    sp_z_bar += v_bar * r[sp_row]
    out["zval"] += _bin(fl.sp_entry, sp_z_bar, len(out["zval"]))


def information_blocks_adjoint(ev: CoxNumpy, r, omega, w_slot, zval, saved: dict,
                               d_bar, C_bar, B_bar) -> tuple[np.ndarray, ...]:
    """(r̄, ω̄, w̄_slot, z̄val): the adjoint of :meth:`CoxNumpy.information_blocks
    <mixedppl.graph.cox_numpy.CoxNumpy.information_blocks>` at the point whose intermediates
    are ``saved``, for the adjoints (d̄, C̄, B̄) of its outputs."""
    rs, fl, X, K = ev.rs, ev.fl, ev.X, ev.K
    frac, slot_time = rs.slot_fraction, rs.slot_time
    n, q_d = ev.n, len(fl.dense_cols)
    s = saved
    A, rw, de_row, de_z = s["A"], s["rw"], s["de_row"], s["de_z"]
    out = {"rw": np.zeros(n), "r": np.zeros(n), "w_slot": np.zeros(len(w_slot)),
           "zval": np.zeros(len(zval)), "de_z": np.zeros(len(de_z)), "A": np.zeros_like(A)}
    if len(fl.sparse_cols):
        _sparse_adjoint(ev, s, r, w_slot, d_bar, C_bar, out)
    # B = jdj − AᵀWA
    sym = B_bar + B_bar.T
    out["A"] -= w_slot[:, None] * (A @ sym)
    out["w_slot"] -= np.sum((A @ B_bar) * A, axis=1)
    LL, XX = B_bar[:q_d, :q_d], B_bar[q_d:, q_d:]
    LX = B_bar[:q_d, q_d:] + B_bar[q_d:, :q_d].T
    out["rw"] += np.sum((X @ XX) * X, axis=1)
    a, b = fl.dd_a, fl.dd_b
    g = LL[fl.de_local[a], fl.de_local[b]]
    rw_a = rw[de_row[a]]
    out["rw"] += _bin(de_row[a], g * de_z[a] * de_z[b], n)
    de_z_bar = out["de_z"] + _bin(a, g * rw_a * de_z[b], len(de_z)) + _bin(
        b, g * rw_a * de_z[a], len(de_z))
    g = np.sum(LX[fl.de_local] * X[de_row], axis=1)
    out["rw"] += _bin(de_row, g * de_z, n)
    de_z_bar += g * rw[de_row]
    # A = [R(r Z_dense) by buckets, R(rX)]
    A_de_bar, A_x_bar = out["A"][:, :q_d], out["A"][:, q_d:]
    r_bar = out["r"] + np.sum(ev.spread(A_x_bar) * X, axis=1)
    bucket_bar = np.zeros((K + 1, q_d))
    bucket_bar[1:] = _risk_sums_adjoint(A_de_bar, slot_time, rs.slot_time_end, K)
    sd_de_t_bar = -_rows(slot_time, frac[:, None] * A_de_bar, K)
    v_de_bar = bucket_bar[fl.de_bucket, fl.de_local] + _bin(
        fl.de_event, sd_de_t_bar[fl.de_event_time, fl.de_local[fl.de_event]], len(de_z))
    r_bar += _bin(de_row, v_de_bar * de_z, n)
    de_z_bar += v_de_bar * r[de_row]
    zval_bar = out["zval"] + _bin(fl.de_entry, de_z_bar, len(zval))
    return r_bar + omega * out["rw"], r * out["rw"], out["w_slot"], zval_bar


def outer_gradient(ev: CoxNumpy, theta, u, beta) -> tuple:
    r"""``cox_functions("outer")`` in NumPy: (G, ∂G/∂x, ∂G/∂θ, PPL, ½ log|H̃_uu|, ℓ) at
    (θ, u, β) with G = −PPL + ½ log|H̃_uu| and x = (u, β) (the module docstring)."""
    fl, rs, q = ev.fl, ev.rs, ev.q
    zval, eta, r, omega, D, loglik, w_slot = ev.state(theta, u, beta)
    saved: dict = {}
    d, C, B = ev.information_blocks(r, omega, w_slot, zval, saved)
    q_d = len(fl.dense_cols)
    B_pen = B.copy()
    B_pen[np.arange(q_d), np.arange(q_d)] += 1.0
    half, d_bar, C_bar, B_bar = _half_logdet_adjoint(d + 1.0, C, B_pen, q_d)
    r_bar, omega_bar, w_bar, zval_bar = information_blocks_adjoint(
        ev, r, omega, w_slot, zval, saved, d_bar, C_bar, B_bar)
    # back through ω = Rᵀ(c/D), c/D² and D = R(r), then r = w e^η
    c = rs.slot_weight
    D_bar = -c / D ** 2 * ev.slot_sums(omega_bar) - 2.0 * c / D ** 3 * w_bar
    eta_bar = r * (r_bar + ev.spread(D_bar))
    zval_bar = zval_bar + u[fl.re_col] * eta_bar[fl.re_row]
    score = ev.delta_w - r * omega
    grad_ppl = ev.jt(zval, score)
    grad_ppl[:q] -= u
    dppl_dtheta = ev.zval_theta @ (u[fl.re_col] * score[fl.re_row])
    ppl = loglik - 0.5 * float(u @ u)
    dG_dx = -grad_ppl + ev.jt(zval, eta_bar)
    dG_dtheta = -dppl_dtheta + ev.zval_theta @ zval_bar
    return -ppl + half, dG_dx, dG_dtheta, ppl, half, loglik
