r"""The Cox partial log-likelihood and coxme's Laplace-integrated likelihood as PyTensor graphs.

Rows are sorted by time once (:func:`risk_set_layout`, n log n); then every evaluation is O(n):
with :math:`r_i = w_i e^{\eta_i}` the risk-set sums are reverse cumulative sums over the sorted
rows, read at the first row of each event time. Both tie methods are one layout of *slots*:
a slot s (event time k) has weight :math:`c_s`, fraction :math:`f_s` and denominator

.. math:: D_s = S_k - f_s S^E_k,\qquad \ell(\eta) = \sum_{i\,\mathrm{event}} w_i\eta_i
          - \sum_s c_s \log D_s,

Breslow: one slot per event time, :math:`c = W_k`, :math:`f = 0`; Efron: one slot per event,
:math:`c = \bar w_k`, :math:`f = r/d_k`, r = 0 … d_k − 1 (see :mod:`mixedppl.families.cox`).
With J = ∂η/∂x the rows of [ZΛ, X] and :math:`m_s = \partial \log D_s/\partial x`, the negative
Hessian (information) is

.. math:: \mathcal I = J^\top \mathrm{diag}(r\odot\omega) J - M^\top \mathrm{diag}(c) M,\qquad
          \omega_i = \sum_{s:\,i\in R_s} \frac{c_s}{D_s} - [i\in E]\sum_{s\in k(i)}
          \frac{c_s f_s}{D_s}.

coxme's frailty model (Ripatti & Palmgren 2000; Therneau et al. 2003): b = Λu, u ~ N(0, I),
penalised partial likelihood :math:`\mathrm{PPL}(u, \beta) = \ell(X\beta + Z\Lambda u) -
\tfrac12\lVert u\rVert^2` (= coxme's ``ℓ − ½ bᵀΣ⁻¹b``), and the Laplace-integrated partial
likelihood at the joint mode (û, β̂) of PPL

.. math:: \ell_I(\theta) = \mathrm{PPL}(\hat u, \hat\beta) - \tfrac12\log\lvert H_{uu}\rvert,
          \qquad H_{uu} = \Lambda^\top\mathcal I_{bb}\Lambda + I

(coxme: ``ilik = loglik[2] − ½(log|Σ| + log|H_bb|)``, the same number). coxme drops the
off-diagonal entries of :math:`\mathcal I_{bb}` between "sparse" levels (a factor with ≥ 50
levels, levels holding ≤ 2 % of the rows): H̃ is built in blocks (:class:`FrailtyLayout`,
:func:`_information_blocks`) in O(n + S) per dense column, never from an n × q matrix.
The gradient in θ is exact by the implicit function theorem (as :mod:`mixedppl.graph.laplace`):
with g = −PPL, G = g + ½ log|H̃_uu|, x = (u, β) and v = H⁻¹ ∂G/∂x held constant,
dG/dθ = ∂G/∂θ − ∂/∂θ [vᵀ ∂g/∂x].

References
----------
Therneau, T. M. (2022). coxme: Mixed Effects Cox Models, R package 2.2-22 (``coxfit6b.c``,
``coxme.fit.R``); Therneau, Grambsch & Pankratz (2003), Penalized survival models and frailty,
J. Comput. Graph. Stat. 12, 156–175.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from ..core.compile import compiled

__all__ = ["RiskSets", "risk_set_layout", "FrailtyLayout", "frailty_layout",
           "cox_partial_loglik", "cox_functions", "coxph_functions"]


@dataclass(frozen=True)
class RiskSets:
    """The sorted layout of a survival response (NumPy; the graphs' index inputs).

    With strata (survival's ``strata()``: a baseline hazard per stratum) rows are sorted by
    (stratum, time) and a risk set holds only the rows of its own stratum: sorted rows
    ``risk_start … risk_end − 1``. Event times are numbered stratum by stratum.

    Attributes
    ----------
    order : ndarray of int
        Row permutation sorting the data by (stratum, time) (ascending, stable).
    risk_start, risk_end : ndarray of int (S,)
        Per slot, the first sorted row of its risk set and the end (exclusive) of its stratum.
    slot_weight, slot_fraction : ndarray (S,)
        :math:`c_s` and :math:`f_s` (see the module docstring).
    slot_time : ndarray of int (S,)
        The event time (0 … K − 1) of each slot.
    slot_time_end : ndarray of int (S,)
        The first event time of the next stratum (K for the last stratum).
    event_rows : ndarray of int (E,)
        Sorted positions of the events; ``event_time`` their event time index.
    n_times : int
        K, the number of distinct (stratum, event time) pairs.
    row_stratum : ndarray of int (n,)
        The stratum (0 … G − 1) of each sorted row (not a graph input).
    """

    order: np.ndarray
    risk_start: np.ndarray
    risk_end: np.ndarray
    slot_weight: np.ndarray
    slot_fraction: np.ndarray
    slot_time: np.ndarray
    slot_time_end: np.ndarray
    event_rows: np.ndarray
    event_time: np.ndarray
    n_times: int
    row_stratum: np.ndarray

    def inputs(self) -> list[np.ndarray]:
        """The index and weight inputs of :func:`cox_functions` in order."""
        return [self.risk_start, self.risk_end, self.slot_weight, self.slot_fraction,
                self.slot_time, self.slot_time_end, self.event_rows, self.event_time,
                np.asarray(self.n_times, np.int64)]


def risk_set_layout(time: np.ndarray, status: np.ndarray, weights: np.ndarray,
                    ties: str, strata: np.ndarray | None = None) -> RiskSets:
    """Sort once and lay out the risk sets and tie slots of ``ties`` ("efron" / "breslow"),
    within the strata given as integer codes (``None``: one stratum).

    Examples
    --------
    >>> rs = risk_set_layout(np.array([2., 1., 2., 3.]), np.array([1., 1., 1., 0.]),
    ...                      np.ones(4), "efron")
    >>> rs.order.tolist(), rs.risk_start.tolist(), rs.slot_fraction.tolist()
    ([1, 0, 2, 3], [0, 1, 1], [0.0, 0.0, 0.5])
    >>> st = risk_set_layout(np.array([2., 1., 2., 3.]), np.array([1., 1., 1., 0.]),
    ...                      np.ones(4), "efron", strata=np.array([1, 0, 0, 1]))
    >>> st.order.tolist(), st.risk_start.tolist(), st.risk_end.tolist()
    ([1, 2, 0, 3], [0, 1, 2], [2, 2, 4])
    >>> st.slot_time.tolist(), st.slot_time_end.tolist()
    ([0, 1, 2], [2, 2, 3])
    """
    n = len(time)
    stratum = np.zeros(n, np.int64) if strata is None else np.unique(
        np.asarray(strata), return_inverse=True)[1].reshape(-1).astype(np.int64)
    order = np.lexsort((time, stratum))
    t, d, w, g = time[order], status[order], weights[order], stratum[order]
    new_group = np.r_[True, (t[1:] != t[:-1]) | (g[1:] != g[:-1])] if n else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    stratum_end = np.searchsorted(g, g, side="right")  # end of each sorted row's stratum
    event_rows = np.flatnonzero(d == 1)
    ev_first = first[event_rows]
    uniq, event_time = np.unique(ev_first, return_inverse=True)
    event_time = event_time.reshape(-1)
    counts = np.bincount(event_time)
    wsum = np.bincount(event_time, weights=w[event_rows])
    if ties == "breslow":
        risk_start, slot_weight = uniq, wsum
        slot_fraction, slot_time = np.zeros(len(uniq)), np.arange(len(uniq))
    else:
        rank = np.arange(len(event_rows)) - np.searchsorted(event_time, event_time, "left")
        risk_start = ev_first
        slot_weight = (wsum / counts)[event_time]
        slot_fraction = rank / counts[event_time]
        slot_time = event_time
    risk_end = stratum_end[risk_start]
    time_end = np.searchsorted(uniq, stratum_end[uniq], "left")   # first time of next stratum
    return RiskSets(order, risk_start.astype(np.int64), risk_end.astype(np.int64),
                    np.asarray(slot_weight, float), np.asarray(slot_fraction, float),
                    slot_time.astype(np.int64), time_end[slot_time].astype(np.int64),
                    event_rows.astype(np.int64), event_time.astype(np.int64), int(len(uniq)),
                    g)


def _layout_symbols() -> list:
    return [pt.lvector("risk_start"), pt.lvector("risk_end"), pt.dvector("slot_weight"),
            pt.dvector("slot_fraction"), pt.lvector("slot_time"), pt.lvector("slot_time_end"),
            pt.lvector("event_rows"), pt.lvector("event_time"), pt.lscalar("n_times")]


def _revcumsum(a):
    return pt.cumsum(a[::-1], axis=0)[::-1]


def _risk_sums(a, risk_start, risk_end):
    """Per slot, the sum of the rows of ``a`` in its risk set, sorted rows risk_start … risk_end − 1
    (the reverse cumulative sum restarts at each stratum; risk_end = n without strata)."""
    tail = pt.concatenate([_revcumsum(a), pt.zeros_like(a[:1])], axis=0)
    return tail[risk_start] - tail[risk_end]


def _spread(values, risk_start, risk_end, n):
    """Per sorted row, the sum of ``values`` over the slots whose risk set holds it (the
    transpose of :func:`_risk_sums`)."""
    marks = pt.zeros((n + 1,))[risk_start].inc(values)[risk_end].inc(-values)
    return pt.cumsum(marks)[:-1]


def _denominators(eta, w, layout):
    """(r, D, Sd) on the max-shifted scale (ℓ is invariant to a shift of η)."""
    risk_start, risk_end, _, frac, slot_time, _, ev_rows, ev_time, n_times = layout
    eta_c = eta - disconnected_grad(pt.max(eta))
    r = w * pt.exp(eta_c)
    S = _risk_sums(r, risk_start, risk_end)
    Sd = pt.zeros((n_times,))[ev_time].inc(r[ev_rows])
    return eta_c, r, S - frac * Sd[slot_time]


def cox_partial_loglik(eta, w, layout):
    """ℓ(η) (module docstring) for sorted rows; ``layout`` the symbols of :class:`RiskSets`."""
    eta_c, _, D = _denominators(eta, w, layout)
    _, _, c, _, _, _, ev_rows, _, _ = layout
    return pt.sum(w[ev_rows] * eta_c[ev_rows]) - pt.sum(c * pt.log(D))


def _score_information(J, eta, w, layout):
    """(ℓ, ∂ℓ/∂x, 𝓘) for η with Jacobian J (n × m), analytically (module docstring)."""
    risk_start, risk_end, c, frac, slot_time, _, ev_rows, ev_time, n_times = layout
    eta_c, r, D = _denominators(eta, w, layout)
    loglik = pt.sum(w[ev_rows] * eta_c[ev_rows]) - pt.sum(c * pt.log(D))
    rJ = r[:, None] * J
    SdJ = pt.zeros((n_times, J.shape[1]))[ev_time].inc(rJ[ev_rows])
    M = (_risk_sums(rJ, risk_start, risk_end) - frac[:, None] * SdJ[slot_time]) / D[:, None]
    score = pt.sum(w[ev_rows][:, None] * J[ev_rows], axis=0) - pt.dot(c, M)
    tied = pt.zeros((n_times,))[slot_time].inc(c * frac / D)
    omega = (_spread(c / D, risk_start, risk_end, eta.shape[0])
             - pt.zeros(eta.shape)[ev_rows].inc(tied[ev_time]))
    info = pt.dot(J.T, (r * omega)[:, None] * J) - pt.dot(M.T, c[:, None] * M)
    return loglik, score, info


def _logdet_spd(A):
    L = pt.linalg.cholesky(A)
    return 2.0 * pt.sum(pt.log(pt.diag(L)))


@dataclass(frozen=True)
class FrailtyLayout:
    r"""Where the frailties enter, as index arrays (NumPy; the frailty graphs' index inputs).

    Z is never stored: its entries are (row, column, value) triples, E = n × (number of terms);
    :math:`Z\Lambda` has the values of ``ct_entry`` / ``ct_theta`` below. The columns of x = (u, β)
    are split into the *sparse* columns (coxme's sparse levels of the first term: one entry per
    row at most, the information between two of them dropped) and the *dense block* (the other
    levels, then β), whose information is kept in full.

    Attributes
    ----------
    re_row, re_col : ndarray of int (E,)
        Sorted row and u column of each entry of Z.
    col_term : ndarray of int (q,)
        The term (θ index) of each u column.
    sparse_cols, dense_cols : ndarray of int
        The u columns of the sparse levels and of the other levels (dense block order).
    de_entry, de_local, de_bucket : ndarray of int
        The entries in dense-block level columns, their column in the block, and their row's
        risk-start bucket + 1 (bucket k: rows from the k-th event time's first row to the next;
        0: rows before the first event time, in no risk set).
    de_event, de_event_time : ndarray of int
        Positions (in ``de_entry``) of the entries of event rows, and their event time.
    dd_a, dd_b : ndarray of int
        Pairs of dense-level entries sharing a row (both orders, a = b included).
    sp_entry, sp_level, sp_end : ndarray of int
        The sparse entries in level-major order (level, then row), their level (0 … q_s − 1)
        and the end (exclusive) of their level's run.
    sp_hi, sp_lo : ndarray of int
        Number of slots with risk start ≤ the entry's row, and ≤ the previous row of its level
        (0 for a level's first row): the slots whose risk set holds this entry and the level's
        later rows, but none of its earlier ones.
    tp_level, tp_time, tp_first : ndarray of int
        (level, event time) pairs where a sparse level has events (Efron's tie correction), and
        the first entry of that level at or after the time's risk start.
    sp_event, sp_event_pair : ndarray of int
        Sparse entries of event rows and their (level, time) pair.
    sd_sp, sd_de : ndarray of int
        Pairs (sparse entry, dense-level entry) sharing a row.
    ct_entry, ct_theta : ndarray of int
        The value of entry e of ZΛ is :math:`\sum_c z_c\,\theta_{t(c)}` over the
        *contributions* c with ``ct_entry[c] = e``: ``ct_theta`` is the θ index of each
        (θ is the lower triangle of each term's T, lme4's layout) and :math:`z_c` (the graph's
        ``re_value`` input) the value of Z it multiplies. For ``(1 + x | g)`` the intercept
        column of level j holds :math:`T_{00} + x_i T_{10}`, the slope column
        :math:`x_i T_{11}`; for a scalar term one contribution per entry, θ the term's SD.
    """

    re_row: np.ndarray
    re_col: np.ndarray
    col_term: np.ndarray
    sparse_cols: np.ndarray
    dense_cols: np.ndarray
    de_entry: np.ndarray
    de_local: np.ndarray
    de_bucket: np.ndarray
    de_event: np.ndarray
    de_event_time: np.ndarray
    dd_a: np.ndarray
    dd_b: np.ndarray
    sp_entry: np.ndarray
    sp_level: np.ndarray
    sp_end: np.ndarray
    sp_hi: np.ndarray
    sp_lo: np.ndarray
    tp_level: np.ndarray
    tp_time: np.ndarray
    tp_first: np.ndarray
    sp_event: np.ndarray
    sp_event_pair: np.ndarray
    sd_sp: np.ndarray
    sd_de: np.ndarray
    ct_entry: np.ndarray
    ct_theta: np.ndarray

    def inputs(self) -> list[np.ndarray]:
        """The index inputs of :func:`cox_functions` in field order."""
        return [np.asarray(getattr(self, f), np.int64) for f in self.__dataclass_fields__]


def _same_row_pairs(rows_a: np.ndarray, rows_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with rows_a[i] == rows_b[j] (both lists hold few entries per row)."""
    order_b = np.argsort(rows_b, kind="stable")
    lo = np.searchsorted(rows_b[order_b], rows_a, "left")
    hi = np.searchsorted(rows_b[order_b], rows_a, "right")
    counts = hi - lo
    a = np.repeat(np.arange(len(rows_a)), counts)
    start = np.repeat(lo - np.cumsum(counts) + counts, counts)
    return a, order_b[start + np.arange(len(a))]


def frailty_layout(risk_sets: RiskSets, re_row: np.ndarray, re_col: np.ndarray,
                   col_term: np.ndarray, sparse_cols: np.ndarray,
                   ct_entry: np.ndarray | None = None, ct_theta: np.ndarray | None = None
                   ) -> FrailtyLayout:
    """Lay out the frailty entries for the graphs (see :class:`FrailtyLayout`); rows sorted.

    ``sparse_cols`` must be levels of one scalar term (each row holds at most one of them).
    ``ct_entry`` / ``ct_theta``: the contributions to ZΛ's entries (default: one per entry,
    θ index ``col_term[re_col]``).

    Examples
    --------
    >>> rs = risk_set_layout(np.array([1., 2., 3., 4.]), np.ones(4), np.ones(4), "efron")
    >>> fl = frailty_layout(rs, np.arange(4), np.array([0, 1, 0, 1]), np.zeros(2, int),
    ...                     np.array([0, 1]))
    >>> fl.sp_entry.tolist(), fl.sp_hi.tolist(), fl.sp_lo.tolist()
    ([0, 2, 1, 3], [1, 3, 2, 4], [0, 1, 0, 2])
    """
    q = len(col_term)
    is_sparse = np.zeros(q, bool)
    is_sparse[sparse_cols] = True
    dense_cols = np.flatnonzero(~is_sparse)
    local = np.full(q, -1)
    local[dense_cols] = np.arange(len(dense_cols))
    local[sparse_cols] = np.arange(len(sparse_cols))
    n = int(re_row.max()) + 1 if len(re_row) else 0
    is_event = np.zeros(max(n, 1), bool)
    is_event[risk_sets.event_rows] = True
    time_of_row = np.full(max(n, 1), -1)
    time_of_row[risk_sets.event_rows] = risk_sets.event_time
    time_start, first_slot = np.unique(risk_sets.risk_start, return_index=True)
    time_end_row = risk_sets.risk_end[first_slot]      # end of each event time's stratum
    bucket = np.searchsorted(time_start, re_row, "right")   # 0: before the first event time
    bucket[(bucket > 0) & (re_row >= time_end_row[np.maximum(bucket - 1, 0)])] = 0   # of its
    slots_upto = np.searchsorted(risk_sets.risk_start, re_row, "right")  # stratum, that is
    slots_before = np.searchsorted(risk_sets.risk_end, re_row, "right")  # earlier strata's
    row_stratum = risk_sets.row_stratum

    de_entry = np.flatnonzero(~is_sparse[re_col])
    de_event = np.flatnonzero(is_event[re_row[de_entry]])
    dd_a, dd_b = _same_row_pairs(re_row[de_entry], re_row[de_entry])

    sp_all = np.flatnonzero(is_sparse[re_col])
    sp_entry = sp_all[np.lexsort((re_row[sp_all], local[re_col[sp_all]]))]
    sp_level = local[re_col[sp_entry]]
    # runs: one level within one stratum (rows are stratum-major, so runs are contiguous)
    sp_stratum = row_stratum[re_row[sp_entry]] if len(sp_entry) else sp_level
    first_of_run = (np.r_[True, (sp_level[1:] != sp_level[:-1])
                          | (sp_stratum[1:] != sp_stratum[:-1])] if len(sp_level) else sp_level)
    run_id = np.cumsum(first_of_run) - 1
    run_end = np.searchsorted(run_id, run_id, "right")
    sp_hi = slots_upto[sp_entry]
    sp_lo = np.where(first_of_run, slots_before[sp_entry], np.r_[0, sp_hi[:-1]])
    sp_event = np.flatnonzero(is_event[re_row[sp_entry]])
    ev_time = time_of_row[re_row[sp_entry[sp_event]]]
    pair_key = sp_level[sp_event] * (risk_sets.n_times + 1) + ev_time
    uniq, sp_event_pair = np.unique(pair_key, return_inverse=True)
    tp_level, tp_time = uniq // (risk_sets.n_times + 1), uniq % (risk_sets.n_times + 1)
    # first entry of the level at or after the time's first row: entries are level-major,
    # rows ascending within a level, so search (level, row) lexicographically
    entry_key = sp_level.astype(np.int64) * (n + 1) + re_row[sp_entry]
    tp_first = np.searchsorted(entry_key, tp_level * (n + 1) + time_start[tp_time], "left")
    sd_sp, sd_de = _same_row_pairs(re_row[sp_entry], re_row[de_entry])
    return FrailtyLayout(
        re_row=re_row, re_col=re_col, col_term=col_term, sparse_cols=np.asarray(sparse_cols),
        dense_cols=dense_cols, de_entry=de_entry, de_local=local[re_col[de_entry]],
        de_bucket=bucket[de_entry], de_event=de_event,
        de_event_time=time_of_row[re_row[de_entry[de_event]]], dd_a=dd_a, dd_b=dd_b,
        sp_entry=sp_entry, sp_level=sp_level, sp_end=run_end, sp_hi=sp_hi, sp_lo=sp_lo,
        tp_level=tp_level, tp_time=tp_time, tp_first=tp_first, sp_event=sp_event,
        sp_event_pair=sp_event_pair.reshape(-1), sd_sp=sd_sp, sd_de=sd_de,
        ct_entry=np.arange(len(re_row)) if ct_entry is None else ct_entry,
        ct_theta=col_term[re_col] if ct_theta is None else ct_theta)


def _frailty_symbols() -> list:
    return [pt.lvector(name) for name in FrailtyLayout.__dataclass_fields__]


def _eta_and_values(theta, u, beta, X, offset, re_value, fl):
    """η = Xβ + offset + ZΛu and the entries of ZΛ (sums of their contributions)."""
    re_row, re_col = fl[:2]
    ct_entry, ct_theta = fl[-2:]
    zval = pt.zeros((re_row.shape[0],))[ct_entry].inc(re_value * theta[ct_theta])
    eta = pt.dot(X, beta) + offset + pt.zeros((X.shape[0],))[re_row].inc(zval * u[re_col])
    return eta, zval


def _omega(eta, w, layout):
    """(ℓ, r, ω, c/D²) with ω the module docstring's weights (∂ℓ/∂η = w·δ − r·ω)."""
    risk_start, risk_end, c, frac, slot_time, _, ev_rows, ev_time, n_times = layout
    eta_c, r, D = _denominators(eta, w, layout)
    loglik = pt.sum(w[ev_rows] * eta_c[ev_rows]) - pt.sum(c * pt.log(D))
    tied = pt.zeros((n_times,))[slot_time].inc(c * frac / D)
    omega = (_spread(c / D, risk_start, risk_end, eta.shape[0])
             - pt.zeros(eta.shape)[ev_rows].inc(tied[ev_time]))
    return loglik, r, omega, (c / D) / D


def _information_blocks(r, omega, w_slot, X, zval, layout, fl):
    r"""coxme's information H̃ in blocks: the sparse diagonal d, the cross block C (sparse ×
    dense block) and the dense block B, each in O(n + S) per column of the dense block.

    With :math:`A_{sj} = \sum_{i\in R_s} r_i J_{ij} - f_s\sum_{i\in E_{k(s)}} r_i J_{ij}` and
    :math:`w_s = c_s/D_s^2`, :math:`\mathcal I_{jl} = \sum_i r_i\omega_i J_{ij}J_{il} -
    \sum_s w_s A_{sj}A_{sl}`. A sparse level's :math:`A_{sj}` is constant between two of its
    rows, so its sums over slots are sums over its rows of prefix sums over slots.
    """
    risk_start, risk_end, c, frac, slot_time, time_end, ev_rows, ev_time, n_times = layout
    (re_row, _, _, sparse_cols, dense_cols, de_entry, de_local, de_bucket, de_event,
     de_event_time, dd_a, dd_b, sp_entry, sp_level, sp_end, sp_hi, sp_lo, tp_level, tp_time,
     tp_first, sp_event, sp_event_pair, sd_sp, sd_de) = fl[:24]
    q_d, q_s, p = dense_cols.shape[0], sparse_cols.shape[0], X.shape[1]
    rw = r * omega
    # dense block: A for the dense levels from bucket sums, for X from cumulative sums
    de_row, de_z = re_row[de_entry], zval[de_entry]
    v_de = r[de_row] * de_z
    tail = _risk_sums(pt.zeros((n_times + 1, q_d))[de_bucket, de_local].inc(v_de)[1:],
                      slot_time, time_end)
    sd_de_t = pt.zeros((n_times, q_d))[de_event_time, de_local[de_event]].inc(v_de[de_event])
    rX = r[:, None] * X
    sd_x = pt.zeros((n_times, p))[ev_time].inc(rX[ev_rows])
    A = pt.concatenate([tail - frac[:, None] * sd_de_t[slot_time],
                        _risk_sums(rX, risk_start, risk_end) - frac[:, None] * sd_x[slot_time]], axis=1)
    lev_x = pt.zeros((q_d, p))[de_local].inc((rw[de_row] * de_z)[:, None] * X[de_row])
    lev_lev = pt.zeros((q_d, q_d))[de_local[dd_a], de_local[dd_b]].inc(
        rw[de_row[dd_a]] * de_z[dd_a] * de_z[dd_b])
    jdj = pt.concatenate([pt.concatenate([lev_lev, lev_x], axis=1),
                          pt.concatenate([lev_x.T, pt.dot(X.T, rw[:, None] * X)], axis=1)])
    B = jdj - pt.dot(A.T, w_slot[:, None] * A)
    # sparse levels: within-level tails T (level-major order) and slot-weight prefix sums
    sp_row, sp_z = re_row[sp_entry], zval[sp_entry]
    v_sp = r[sp_row] * sp_z
    run_tail = pt.concatenate([_revcumsum(v_sp), pt.zeros((1,))])
    T = run_tail[:-1] - run_tail[sp_end]
    w_cum = pt.concatenate([pt.zeros((1,)), pt.cumsum(w_slot)])
    alpha = pt.zeros((n_times,))[slot_time].inc(w_slot * frac)
    alpha2 = pt.zeros((n_times,))[slot_time].inc(w_slot * frac ** 2)
    sd_pair = pt.zeros((tp_level.shape[0],))[sp_event_pair].inc(v_sp[sp_event])
    t_pair = T[tp_first]
    sum_sq = (pt.zeros((q_s,))[sp_level].inc(T ** 2 * (w_cum[sp_hi] - w_cum[sp_lo]))
              + pt.zeros((q_s,))[tp_level].inc(sd_pair * (alpha2[tp_time] * sd_pair
                                                          - 2.0 * alpha[tp_time] * t_pair)))
    d = pt.zeros((q_s,))[sp_level].inc(rw[sp_row] * sp_z ** 2) - sum_sq
    # cross block
    wA_cum = pt.concatenate([pt.zeros((1, q_d + p)), pt.cumsum(w_slot[:, None] * A, axis=0)])
    wfA = pt.zeros((n_times, q_d + p))[slot_time].inc((w_slot * frac)[:, None] * A)
    slot_part = (pt.zeros((q_s, q_d + p))[sp_level].inc(T[:, None] * (wA_cum[sp_hi]
                                                                       - wA_cum[sp_lo]))
                 - pt.zeros((q_s, q_d + p))[tp_level].inc(sd_pair[:, None] * wfA[tp_time]))
    row_lev = pt.zeros((q_s, q_d))[sp_level[sd_sp], de_local[sd_de]].inc(
        rw[sp_row[sd_sp]] * sp_z[sd_sp] * de_z[sd_de])
    row_x = pt.zeros((q_s, p))[sp_level].inc((rw[sp_row] * sp_z)[:, None] * X[sp_row])
    C = pt.concatenate([row_lev, row_x], axis=1) - slot_part
    return d, C, B


def _frailty_inputs():
    theta, u, beta = pt.dvector("theta"), pt.dvector("u"), pt.dvector("beta")
    X, offset, w = pt.dmatrix("X"), pt.dvector("offset"), pt.dvector("w")
    re_value = pt.dvector("re_value")
    layout, fl = _layout_symbols(), _frailty_symbols()
    return [theta, u, beta, X, offset, w, re_value, *layout, *fl], layout, fl


def _penalised_blocks(theta, u, beta, X, offset, w, re_value, layout, fl):
    """(PPL, ℓ, d + 1, C, B + P_B): coxme's H̃ of −PPL in blocks."""
    eta, zval = _eta_and_values(theta, u, beta, X, offset, re_value, fl)
    loglik, r, omega, w_slot = _omega(eta, w, layout)
    d, C, B = _information_blocks(r, omega, w_slot, X, zval, layout, fl)
    q_d = fl[4].shape[0]
    pen = pt.concatenate([pt.ones((q_d,)), pt.zeros((X.shape[1],))])
    return loglik - 0.5 * pt.sum(u ** 2), loglik, d + 1.0, C, B + pt.diag(pen)


def _half_logdet_uu(d_pen, C, B, q_d):
    r"""½ log|H̃_uu| by the Schur complement of the sparse diagonal."""
    C_u = C[:, :q_d]
    schur = B[:q_d, :q_d] - pt.dot(C_u.T, C_u / d_pen[:, None])
    return 0.5 * (pt.sum(pt.log(d_pen)) + _logdet_spd(schur))


def _build_cox(kind: str):
    """Inputs and outputs of :func:`cox_functions` (see there)."""
    inputs, layout, fl = _frailty_inputs()
    theta, u, beta, X, offset, w, re_value = inputs[:7]
    if kind == "hvp":
        v = pt.dvector("v")
        return [*inputs, v], _hessian_vector(*inputs[:7], layout, fl, v)
    ppl, loglik, d_pen, C, B = _penalised_blocks(theta, u, beta, X, offset, w, re_value,
                                                 layout, fl)
    if kind == "newton":
        return inputs, [ppl, pt.concatenate(pt.grad(ppl, [u, beta])), d_pen, C, B, loglik]
    half_logdet = _half_logdet_uu(d_pen, C, B, fl[4].shape[0])
    G = -ppl + half_logdet
    g_u, g_beta, g_theta = pt.grad(G, [u, beta, theta])
    return inputs, [G, pt.concatenate([g_u, g_beta]), g_theta, ppl, half_logdet, loglik]


def _hessian_vector(theta, u, beta, X, offset, w, re_value, layout, fl, v):
    r"""(Hv, ∂/∂θ [vᵀ∇ₓg]) for g = −PPL with the exact Hessian H, in O(n + S):
    :math:`Hv = J^\top H_{\eta\eta} (Jv) + Pv`, :math:`H_{\eta\eta}y = r\omega y -
    \sum_s w_s a_s (a_s^\top y)`."""
    risk_start, risk_end, c, frac, slot_time, _, ev_rows, ev_time, n_times = layout
    re_row, re_col = fl[:2]
    q = u.shape[0]
    eta, zval = _eta_and_values(theta, u, beta, X, offset, re_value, fl)
    _, r, omega, w_slot = _omega(eta, w, layout)
    v_u, v_beta = v[:q], v[q:]
    Jv = pt.dot(X, v_beta) + pt.zeros(eta.shape)[re_row].inc(zval * v_u[re_col])
    ry = r * Jv
    a_y = (_risk_sums(ry, risk_start, risk_end)
           - frac * pt.zeros((n_times,))[ev_time].inc(ry[ev_rows])[slot_time])
    t = w_slot * a_y
    spread = (_spread(t, risk_start, risk_end, eta.shape[0])
              - pt.zeros(eta.shape)[ev_rows].inc(
                  pt.zeros((n_times,))[slot_time].inc(frac * t)[ev_time]))
    h = r * omega * Jv - r * spread
    Hv = pt.concatenate([pt.zeros((q,))[re_col].inc(zval * h[re_row]) + v_u, pt.dot(X.T, h)])
    # vᵀ∇ₓg = −(Jv)ᵀ ∂ℓ/∂η + v_uᵀu with ∂ℓ/∂η = wδ − rω; its θ derivative (v held)
    score_eta = pt.zeros(eta.shape)[ev_rows].inc(w[ev_rows]) - r * omega
    cross = pt.grad(-pt.dot(Jv, score_eta), theta)
    return [Hv, cross]


def cox_functions(kind: str):
    r"""Compiled functions of the frailty model (one graph for every data set).

    Parameters
    ----------
    kind : {"newton", "outer", "hvp"}
        ``"newton"``: (PPL, ∇PPL, d, C, B, ℓ) at (θ, u, β): coxme's penalised information H̃
        of −PPL in blocks (sparse diagonal d, cross block C, dense block B; exact when no
        level is sparse); ``"outer"``: (−ℓ_I, ∂(−ℓ_I)/∂x, ∂(−ℓ_I)/∂θ, PPL, ½ log|H̃_uu|, ℓ);
        ``"hvp"``: (Hv, ∂/∂θ[vᵀ∇ₓg]) with the exact Hessian of g = −PPL, for an extra input v.

    Returns
    -------
    callable
        ``f(theta, u, beta, X, offset, w, re_value, *RiskSets.inputs(),
        *FrailtyLayout.inputs()[, v])``.
    """
    return compiled(("coxme", kind), functools.partial(_build_cox, kind))


def _build_coxph():
    X, beta = pt.dmatrix("X"), pt.dvector("beta")
    offset, w = pt.dvector("offset"), pt.dvector("w")
    layout = _layout_symbols()
    loglik, score, info = _score_information(X, pt.dot(X, beta) + offset, w, layout)
    return [beta, X, offset, w, *layout], [loglik, score, info]


def coxph_functions():
    """Compiled (ℓ, ∇ℓ, 𝓘) of the Cox model without random effects at β:
    ``f(beta, X, offset, w, *RiskSets.inputs())``."""
    return compiled(("coxph",), _build_coxph)
