r"""The Cox frailty quantities of :mod:`mixedppl.graph.cox`, evaluated directly in NumPy.

The PyTensor graphs of :mod:`mixedppl.graph.cox` define the model (the partial likelihood, its
Laplace-integrated form and their exact gradients). Their evaluation costs PyTensor's dispatch
per node, ~2.5 ms per call on kidney (76 rows), about 80 % of a fit; this module evaluates the
same quantities with the same O(n + S) risk-set sums as a few dozen whole-array NumPy calls (on
small data as products with the dense S × n risk-set matrix, :data:`DENSE_RISK_MAX_ENTRIES`).
``tests/graph/test_cox_numpy.py`` checks every output against the graphs' (to 1e-10 relative)
at random points, tied data, strata, sparse levels and random slopes. The θ-gradient with sparse
levels is the reverse pass of :mod:`mixedppl.graph.cox_adjoint`.

Notation as in :mod:`mixedppl.graph.cox`: slots s with weight :math:`c_s`, fraction :math:`f_s`,
denominators :math:`D_s = \sum_i m_{si} r_i` with :math:`m_{si} = [i \in R_s] - f_s [i \in
E_{k(s)}]`; :math:`\pi_s = m_s \odot r / D_s`. The negative Hessian of ℓ in η is

.. math:: H_{\eta\eta} = \sum_s c_s\,(\mathrm{diag}\,\pi_s - \pi_s\pi_s^\top)
          = \mathrm{diag}(r\omega) - \sum_s \frac{c_s}{D_s^2}\,(m_s\odot r)(m_s\odot r)^\top .

**The θ-gradient without sparse levels** (:meth:`CoxNumpy.theta_gradient`; the graph's
``"outer"`` does it by automatic differentiation). With A = ZΛ (n × q), J = [A, X], H the negative
Hessian of −PPL in x = (u, β), :math:`K = H_{uu}^{-1}`, :math:`P = AKA^\top` and
G = −PPL + ½ log|H_uu|: each slot's term of H_ηη is the Hessian of a log-sum-exp, so its
η-derivative contracted with P is (third cumulant)

.. math:: \tfrac12\sum_{ij}P_{ij}\,\partial_{\eta_k}(H_{\eta\eta})_{ij} = t_k
          = \tfrac12\sum_s c_s\pi_{sk}\big[P_{kk} - \pi_s^\top\mathrm{diag}P - 2(P\pi_s)_k
          + 2\pi_s^\top P\pi_s\big],

every sum over s a spread of slot values over rows (never an n × S matrix). Then
:math:`\partial G/\partial x = -\nabla\mathrm{PPL} + J^\top t`, with :math:`A_j = \partial A/
\partial\theta_j` (constant: A is linear in θ) :math:`\partial G/\partial\theta_j =
(t - \partial\ell/\partial\eta)^\top A_j u + \mathrm{tr}(K A^\top H_{\eta\eta} A_j)`, and by the
implicit function theorem with :math:`v = H^{-1}\,\partial G/\partial x`

.. math:: \frac{dG}{d\theta_j} = \frac{\partial G}{\partial\theta_j}
          + (A_j v_u)^\top \frac{\partial\ell}{\partial\eta} - (Jv)^\top H_{\eta\eta} A_j u .

References
----------
McCullagh, P. (1987). Tensor Methods in Statistics, ch. 2 (cumulants of a log-sum-exp);
Therneau, Grambsch & Pankratz (2003), J. Comput. Graph. Stat. 12, 156–175.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from ..core.compile import scatter_add

__all__ = ["CoxNumpy", "cholesky", "cho_solve", "DENSE_GRADIENT_MAX_Q",
           "DENSE_GRADIENT_MAX_ENTRIES", "DENSE_RISK_MAX_ENTRIES"]

#: :meth:`CoxNumpy.theta_gradient` needs A = ZΛ dense (n × q) and H_uu⁻¹ (q × q): used up to
#: these sizes, above them the graph's gradient.
DENSE_GRADIENT_MAX_Q = 400
DENSE_GRADIENT_MAX_ENTRIES = 4_000_000
#: Up to this many slots × rows the risk-set sums are products with the dense S × n matrix
#: :math:`(m_{si})` (built once); above it, cumulative sums. On kidney (58 × 76) a product costs
#: ~1 µs for a vector and ~9 µs for 40 columns, the cumulative sums 13 µs and 63 µs: NumPy's
#: per-call overhead dominates small data, the product's S·n work large data.
DENSE_RISK_MAX_ENTRIES = 50_000


def cholesky(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor by LAPACK's ``dpotrf`` (what ``np.linalg.cholesky`` computes,
    at half its call overhead on small matrices); raises LinAlgError when A is not positive
    definite."""
    if A.size == 0:
        return np.zeros(A.shape)
    L, info = lapack.dpotrf(A, lower=1, clean=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"not positive definite (dpotrf info {info})")
    return L


def cho_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A⁻¹b from A's lower factor by LAPACK's ``dpotrs`` (``scipy.linalg.cho_solve`` without
    its checks: a quarter of its call overhead)."""
    if L.size == 0:
        return np.zeros(np.shape(b))
    x, _ = lapack.dpotrs(L, b, lower=1)
    return x


def _revcumsum(a: np.ndarray) -> np.ndarray:
    return np.cumsum(a[::-1], axis=0)[::-1]


def _risk_sums(a: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Per slot the sum of ``a``'s rows start … end − 1 (graph.cox._risk_sums)."""
    tail = np.concatenate([_revcumsum(a), np.zeros((1,) + a.shape[1:])], axis=0)
    return tail[start] - tail[end]


def _rows(index: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    """out[index[k]] += values[k] (rows of a 2-D ``values``; repeated indices summed)."""
    if values.ndim == 1:
        return _bin(index, values, n_rows)
    if values.ndim == 2 and values.shape[1] <= 8:     # few columns: a bincount each
        out = np.empty((n_rows, values.shape[1]))
        for j in range(values.shape[1]):
            out[:, j] = _bin(index, values[:, j], n_rows)
        return out
    out = np.zeros((n_rows,) + values.shape[1:])
    if len(index):
        scatter_add(out, (index,), values)
    return out


def _bin(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(index, weights=values, minlength=size)[:size].astype(float, copy=False)


def _bin2(i: np.ndarray, j: np.ndarray, values: np.ndarray, shape: tuple) -> np.ndarray:
    return _bin(i * shape[1] + j, values, shape[0] * shape[1]).reshape(shape)


class CoxNumpy:
    """NumPy evaluation of :func:`~mixedppl.graph.cox.cox_functions` for one data set.

    Parameters
    ----------
    X, offset, w, re_value : ndarray
        Sorted as :class:`~mixedppl.fit.cox.CoxData` holds them.
    risk_sets : RiskSets
    frailty : FrailtyLayout
    n_theta : int
        Length of θ.
    dense_risk : bool, optional
        Risk-set sums by the dense S × n matrix (True) or by cumulative sums (False); default
        by size (:data:`DENSE_RISK_MAX_ENTRIES`). The same numbers to rounding.

    Examples
    --------
    >>> from mixedppl.graph.cox import risk_set_layout, frailty_layout
    >>> rs = risk_set_layout(np.array([1., 2., 2., 3.]), np.array([1., 1., 1., 0.]),
    ...                      np.ones(4), "efron")
    >>> fl = frailty_layout(rs, np.arange(4), np.array([0, 1, 0, 1]), np.zeros(2, int),
    ...                     np.zeros(0, int))
    >>> ev = CoxNumpy(np.zeros((4, 0)), np.zeros(4), np.ones(4), np.ones(4), rs, fl, 1)
    >>> ppl, grad, d, C, B, loglik = ev.blocks(np.array([0.5]), np.zeros(2), np.zeros(0))
    >>> round(loglik, 6), round(float(-np.log(4 * 3 * 2)), 6), B.shape   # Efron: 4, 3, 3 − ½·2 at risk
    (-3.178054, -3.178054, (2, 2))
    """

    def __init__(self, X, offset, w, re_value, risk_sets, frailty, n_theta: int,
                 dense_risk: bool | None = None):
        self.X, self.offset, self.w = X, offset, w
        self.rs, self.fl = risk_sets, frailty
        self.n, self.p = X.shape
        self.q = len(frailty.col_term)
        fl = frailty
        n_entries = len(fl.re_row)
        # ZΛ's entries are linear in θ: zval = Σ_j θ_j zval_j
        self.zval_theta = np.stack([
            _bin(fl.ct_entry, re_value * (fl.ct_theta == j), n_entries)
            for j in range(n_theta)]) if n_theta else np.zeros((0, n_entries))
        self.delta_w = _bin(risk_sets.event_rows, w[risk_sets.event_rows], self.n)
        self.K = K = int(risk_sets.n_times)
        rs = risk_sets
        # event times and slots are sorted by time: their sums are runs (np.add.reduceat);
        # a row's risk sets are the slots spread_hi[i] … spread_lo[i] (slot order)
        self._ev_starts = np.searchsorted(rs.event_time, np.arange(K), "left")
        self._slot_starts = np.searchsorted(rs.slot_time, np.arange(K), "left")
        rows = np.arange(self.n)
        self._spread_hi = np.searchsorted(rs.risk_start, rows, "right")
        self._spread_lo = np.searchsorted(rs.risk_end, rows, "right")
        self._sorted = bool(np.all(np.diff(rs.event_time) >= 0)
                            and np.all(np.diff(rs.slot_time) >= 0)
                            and np.all(np.diff(rs.risk_start) >= 0)
                            and np.all(np.diff(rs.risk_end) >= 0) and K > 0
                            and len(np.unique(rs.event_time)) == K
                            and len(np.unique(rs.slot_time)) == K)
        n_slots = len(rs.slot_weight)
        if dense_risk is None:
            dense_risk = n_slots * self.n <= DENSE_RISK_MAX_ENTRIES
        self._M = self._MT = None
        self._last_state = None
        if dense_risk and n_slots * self.n > 0:
            M = self.slot_sums(np.eye(self.n))                # m_si, built by the cumulative sums
            self._M, self._MT = M, np.ascontiguousarray(M.T)
        self.dense_gradient = (len(fl.sparse_cols) == 0 and self.q <= DENSE_GRADIENT_MAX_Q
                               and self.n * max(self.q, 1) <= DENSE_GRADIENT_MAX_ENTRIES)

    @property
    def dense_risk(self) -> bool:
        """Whether the risk-set sums are products with the dense S × n matrix."""
        return self._M is not None

    # -- risk-set operators -------------------------------------------------------------
    def slot_sums(self, ry: np.ndarray) -> np.ndarray:
        r"""Per slot :math:`\sum_i m_{si} (ry)_i` (rows of ``ry`` already multiplied by r)."""
        if self._M is not None:
            return self._M @ ry
        rs = self.rs
        if self._sorted:
            ev = np.add.reduceat(ry[rs.event_rows], self._ev_starts, axis=0)
        else:
            ev = _rows(rs.event_time, ry[rs.event_rows], self.K)
        frac = rs.slot_fraction if ry.ndim == 1 else rs.slot_fraction[:, None]
        return _risk_sums(ry, rs.risk_start, rs.risk_end) - frac * ev[rs.slot_time]

    def spread(self, t: np.ndarray) -> np.ndarray:
        r"""Per row :math:`\sum_s m_{si} t_s` (the transpose of :meth:`slot_sums`)."""
        if self._MT is not None:
            return self._MT @ t
        rs = self.rs
        frac = rs.slot_fraction if t.ndim == 1 else rs.slot_fraction[:, None]
        if self._sorted:
            cum = np.concatenate([np.zeros((1,) + t.shape[1:]), np.cumsum(t, axis=0)])
            out = cum[self._spread_hi] - cum[self._spread_lo]
            tied = np.add.reduceat(frac * t, self._slot_starts, axis=0)
        else:
            marks = (_rows(rs.risk_start, t, self.n + 1) - _rows(rs.risk_end, t, self.n + 1))
            out = np.cumsum(marks, axis=0)[:-1]
            tied = _rows(rs.slot_time, frac * t, self.K)
        out[rs.event_rows] -= tied[rs.event_time]
        return out

    def state(self, theta, u, beta):
        """(zval, η, r, ω, D, ℓ, w_slot) at (θ, u, β), read-only; the last point's is kept
        (conjugate gradients ask for Hv at one point again and again)."""
        theta, u, beta = (np.asarray(a, float) for a in (theta, u, beta))
        key = theta.tobytes() + u.tobytes() + beta.tobytes()
        if self._last_state is not None and self._last_state[0] == key:
            return self._last_state[1]
        out = self._state(theta, u, beta)
        for a in out:
            if isinstance(a, np.ndarray):
                a.setflags(write=False)
        self._last_state = (key, out)
        return out

    def _state(self, theta, u, beta):
        fl, rs = self.fl, self.rs
        zval = np.asarray(theta, float) @ self.zval_theta
        eta = self.X @ beta + self.offset + _bin(fl.re_row, zval * u[fl.re_col], self.n)
        eta_c = eta - (eta.max() if self.n else 0.0)
        r = self.w * np.exp(eta_c)
        D = self.slot_sums(r)
        c = rs.slot_weight
        ev = rs.event_rows
        loglik = float(np.sum(self.w[ev] * eta_c[ev]) - np.sum(c * np.log(D)))
        omega = self.spread(c / D)
        return zval, eta, r, omega, D, loglik, (c / D) / D

    def jt(self, zval, y):
        """Jᵀy for J = [ZΛ, X]."""
        fl = self.fl
        return np.concatenate([_bin(fl.re_col, zval * y[fl.re_row], self.q), self.X.T @ y])

    def _Jv(self, zval, v):
        fl = self.fl
        return self.X @ v[self.q:] + _bin(fl.re_row, zval * v[:self.q][fl.re_col], self.n)

    # -- the graph outputs --------------------------------------------------------------
    def blocks(self, theta, u, beta):
        """``cox_functions("newton")``: (PPL, ∇PPL, d + 1, C, B + P_B, ℓ)."""
        zval, eta, r, omega, D, loglik, w_slot = self.state(theta, u, beta)
        score = self.delta_w - r * omega
        grad = self.jt(zval, score)
        grad[:self.q] -= u
        if self.dense_gradient:
            # no sparse level: B is the whole information, Jᵀdiag(rω)J − R(J)ᵀdiag(w)R(J)
            J = np.concatenate([self.dense_A(zval), self.X], axis=1)
            RJ = self.slot_sums(r[:, None] * J)
            B = J.T @ ((r * omega)[:, None] * J) - RJ.T @ (w_slot[:, None] * RJ)
            d, C = np.zeros(0), np.zeros((0, J.shape[1]))
        else:
            d, C, B = self.information_blocks(r, omega, w_slot, zval)
        q_d = len(self.fl.dense_cols)
        B[np.arange(q_d), np.arange(q_d)] += 1.0
        return loglik - 0.5 * float(u @ u), grad, d + 1.0, C, B, loglik

    def information_blocks(self, r, omega, w_slot, zval, saved: dict | None = None):
        """graph.cox._information_blocks (its docstring has the math); ``saved``, when given,
        receives the intermediate arrays its adjoint needs
        (:func:`mixedppl.graph.cox_adjoint.information_blocks_adjoint`)."""
        rs, fl, X, K = self.rs, self.fl, self.X, self.K
        frac, slot_time, ev_rows, ev_time = (rs.slot_fraction, rs.slot_time, rs.event_rows,
                                             rs.event_time)
        q_d, q_s, p = len(fl.dense_cols), len(fl.sparse_cols), self.p
        rw = r * omega
        de_row, de_z = fl.re_row[fl.de_entry], zval[fl.de_entry]
        rX = r[:, None] * X
        sd_x = _rows(ev_time, rX[ev_rows], K)
        A = _risk_sums(rX, rs.risk_start, rs.risk_end) - frac[:, None] * sd_x[slot_time]
        jdj = X.T @ (rw[:, None] * X)
        if q_d:                          # the dense levels' columns before X's
            v_de = r[de_row] * de_z
            tail = _risk_sums(_bin2(fl.de_bucket, fl.de_local, v_de, (K + 1, q_d))[1:],
                              slot_time, rs.slot_time_end)
            sd_de_t = _bin2(fl.de_event_time, fl.de_local[fl.de_event], v_de[fl.de_event],
                            (K, q_d))
            A = np.concatenate([tail - frac[:, None] * sd_de_t[slot_time], A], axis=1)
            lev_x = _rows(fl.de_local, (rw[de_row] * de_z)[:, None] * X[de_row], q_d)
            lev_lev = _bin2(fl.de_local[fl.dd_a], fl.de_local[fl.dd_b],
                            rw[de_row[fl.dd_a]] * de_z[fl.dd_a] * de_z[fl.dd_b], (q_d, q_d))
            jdj = np.concatenate([np.concatenate([lev_lev, lev_x], axis=1),
                                  np.concatenate([lev_x.T, jdj], axis=1)])
        B = jdj - A.T @ (w_slot[:, None] * A)
        sp_row, sp_z = fl.re_row[fl.sp_entry], zval[fl.sp_entry]
        v_sp = r[sp_row] * sp_z
        run_tail = np.concatenate([_revcumsum(v_sp), np.zeros(1)])
        T = run_tail[:-1] - run_tail[fl.sp_end]
        w_cum = np.concatenate([np.zeros(1), np.cumsum(w_slot)])
        alpha = _bin(slot_time, w_slot * frac, K)
        alpha2 = _bin(slot_time, w_slot * frac ** 2, K)
        sd_pair = _bin(fl.sp_event_pair, v_sp[fl.sp_event], len(fl.tp_level))
        t_pair = T[fl.tp_first] if len(fl.tp_first) else np.zeros(0)
        sum_sq = (_bin(fl.sp_level, T ** 2 * (w_cum[fl.sp_hi] - w_cum[fl.sp_lo]), q_s)
                  + _bin(fl.tp_level, sd_pair * (alpha2[fl.tp_time] * sd_pair
                                                 - 2.0 * alpha[fl.tp_time] * t_pair), q_s))
        d = _bin(fl.sp_level, rw[sp_row] * sp_z ** 2, q_s) - sum_sq
        if saved is not None:
            saved.update(rw=rw, de_row=de_row, de_z=de_z, A=A, sp_row=sp_row, sp_z=sp_z, T=T,
                         w_cum=w_cum, alpha=alpha, alpha2=alpha2, sd_pair=sd_pair,
                         t_pair=t_pair)
        if q_s == 0:
            return d, np.zeros((0, q_d + p)), B
        wA_cum = np.concatenate([np.zeros((1, q_d + p)), np.cumsum(w_slot[:, None] * A, axis=0)])
        wfA = _rows(slot_time, (w_slot * frac)[:, None] * A, K)
        if saved is not None:
            saved.update(wA_cum=wA_cum, wfA=wfA)
        slot_part = (_rows(fl.sp_level, T[:, None] * (wA_cum[fl.sp_hi] - wA_cum[fl.sp_lo]), q_s)
                     - _rows(fl.tp_level, sd_pair[:, None] * wfA[fl.tp_time], q_s))
        row_x = _rows(fl.sp_level, (rw[sp_row] * sp_z)[:, None] * X[sp_row], q_s)
        if q_d:
            row_lev = _bin2(fl.sp_level[fl.sd_sp], fl.de_local[fl.sd_de],
                            rw[sp_row[fl.sd_sp]] * sp_z[fl.sd_sp] * de_z[fl.sd_de], (q_s, q_d))
            row_x = np.concatenate([row_lev, row_x], axis=1)
        return d, row_x - slot_part, B

    def _H_eta(self, r, omega, w_slot, y):
        r""":math:`H_{\eta\eta} y` (y a vector or the columns of a matrix)."""
        rr = r if y.ndim == 1 else r[:, None]
        ws = w_slot if y.ndim == 1 else w_slot[:, None]
        return rr * omega.reshape(rr.shape) * y - rr * self.spread(ws * self.slot_sums(rr * y))

    def _A_theta(self, j, y):
        """A_j y = (∂ZΛ/∂θ_j) y for a q-vector y."""
        fl = self.fl
        return _bin(fl.re_row, self.zval_theta[j] * y[fl.re_col], self.n)

    def hvp(self, theta, u, beta, v):
        """``cox_functions("hvp")``: (Hv, ∂/∂θ[vᵀ∇ₓ(−PPL)]) with the exact Hessian."""
        zval, eta, r, omega, D, _, w_slot = self.state(theta, u, beta)
        Jv = self._Jv(zval, v)
        h = self._H_eta(r, omega, w_slot, Jv)
        Hv = self.jt(zval, h)
        Hv[:self.q] += v[:self.q]
        score = self.delta_w - r * omega
        cross = np.array([-self._A_theta(j, v[:self.q]) @ score + h @ self._A_theta(j, u)
                          for j in range(len(self.zval_theta))])
        return Hv, cross

    def grad_theta(self, theta, u, beta) -> np.ndarray:
        r""":math:`\partial(\nabla_x \mathrm{PPL})/\partial\theta_j` at fixed x = (u, β), one
        column per θ_j: :math:`[A_j^\top s;\,0] - J^\top H_{\eta\eta} A_j u` with
        :math:`s = \partial\ell/\partial\eta` (A = ZΛ is linear in θ, η moves by
        :math:`A_j u`). By the implicit function theorem the mode moves as
        :math:`d\hat x/d\theta = H^{-1}` times this (H the negative Hessian of PPL)."""
        fl, q = self.fl, self.q
        zval, eta, r, omega, D, _, w_slot = self.state(theta, u, beta)
        score = self.delta_w - r * omega
        out = np.empty((q + self.p, len(self.zval_theta)))
        for j, zval_j in enumerate(self.zval_theta):
            out[:, j] = -self.jt(zval, self._H_eta(r, omega, w_slot, self._A_theta(j, u)))
            out[:q, j] += _bin(fl.re_col, zval_j * score[fl.re_row], q)
        return out

    def dense_A(self, zval) -> np.ndarray:
        """ZΛ as a dense n × q matrix."""
        fl = self.fl
        return _bin2(fl.re_row, fl.re_col, zval, (self.n, self.q))

    def theta_gradient(self, theta, u, beta, H: np.ndarray, grad_ppl: np.ndarray,
                       L_full: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """(dG/dθ, ½ log|H_uu|) at the mode (u, β) with no sparse level (module docstring);
        ``H`` the negative Hessian of −PPL in x order, ``grad_ppl`` ∇PPL there, ``L_full``
        its lower Cholesky factor when already at hand."""
        q = self.q
        zval, eta, r, omega, D, _, w_slot = self.state(theta, u, beta)
        c = self.rs.slot_weight
        score = self.delta_w - r * omega
        A = self.dense_A(zval)
        if L_full is None:
            L_full = cholesky(H)                    # H_uu's factor is its leading block
        L = np.ascontiguousarray(L_full[:q, :q])
        half_logdet = float(np.sum(np.log(np.diag(L))))
        Kinv = cho_solve(L, np.eye(q))
        AK = A @ Kinv
        dP = np.sum(AK * A, axis=1)
        Q = self.slot_sums(r[:, None] * A) / D[:, None]
        QK = Q @ Kinv
        gamma = np.sum(QK * Q, axis=1)
        pi_dP = self.slot_sums(r * dP) / D
        term3 = r * np.sum(A * self.spread((c / D)[:, None] * QK), axis=1)
        t = 0.5 * (r * omega * dP - r * self.spread(c * pi_dP / D) - 2.0 * term3
                   + 2.0 * r * self.spread(c * gamma / D))
        g_x = -grad_ppl + self.jt(zval, t)
        v = cho_solve(L_full, g_x)
        hJv = self._H_eta(r, omega, w_slot, self._Jv(zval, v))
        out = np.empty(len(self.zval_theta))
        for j in range(len(out)):
            Aj_u = self._A_theta(j, u)
            Aj = self.dense_A(self.zval_theta[j])
            trace = float(np.sum(AK * self._H_eta(r, omega, w_slot, Aj)))
            dG = (t - score) @ Aj_u + trace
            out[j] = dG + self._A_theta(j, v[:q]) @ score - hJv @ Aj_u
        return out, half_logdet

    def coxph(self, beta):
        """``coxph_functions()`` without frailties: (ℓ, ∇ℓ, 𝓘) at β (q is ignored)."""
        rs = self.rs
        eta = self.X @ beta + self.offset
        eta_c = eta - (eta.max() if self.n else 0.0)
        r = self.w * np.exp(eta_c)
        D = self.slot_sums(r)
        c = rs.slot_weight
        ev = rs.event_rows
        loglik = float(np.sum(self.w[ev] * eta_c[ev]) - np.sum(c * np.log(D)))
        omega = self.spread(c / D)
        score = self.X.T @ (self.delta_w - r * omega)
        RX = self.slot_sums(r[:, None] * self.X)
        info = self.X.T @ ((r * omega)[:, None] * self.X) - RX.T @ (((c / D) / D)[:, None] * RX)
        return loglik, score, info
