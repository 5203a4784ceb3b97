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
levels, levels holding ≤ 2 % of the rows); ``keep`` is the 0/1 mask of the entries kept.
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

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from ..core.compile import compiled

__all__ = ["RiskSets", "risk_set_layout", "cox_partial_loglik", "cox_functions",
           "coxph_functions"]


@dataclass(frozen=True)
class RiskSets:
    """The sorted layout of a survival response (NumPy; the graphs' index inputs).

    Attributes
    ----------
    order : ndarray of int
        Row permutation sorting the data by time (ascending, stable).
    risk_start : ndarray of int (S,)
        Per slot, the first sorted row of its risk set (rows from there on are at risk).
    slot_weight, slot_fraction : ndarray (S,)
        :math:`c_s` and :math:`f_s` (see the module docstring).
    slot_time : ndarray of int (S,)
        The event time (0 … K − 1) of each slot.
    event_rows : ndarray of int (E,)
        Sorted positions of the events; ``event_time`` their event time index.
    n_times : int
        K, the number of distinct event times.
    """

    order: np.ndarray
    risk_start: np.ndarray
    slot_weight: np.ndarray
    slot_fraction: np.ndarray
    slot_time: np.ndarray
    event_rows: np.ndarray
    event_time: np.ndarray
    n_times: int

    def inputs(self) -> list[np.ndarray]:
        """The index and weight inputs of :func:`cox_functions` in order."""
        return [self.risk_start, self.slot_weight, self.slot_fraction, self.slot_time,
                self.event_rows, self.event_time, np.asarray(self.n_times, np.int64)]


def risk_set_layout(time: np.ndarray, status: np.ndarray, weights: np.ndarray,
                    ties: str) -> RiskSets:
    """Sort once and lay out the risk sets and tie slots of ``ties`` ("efron" / "breslow").

    Examples
    --------
    >>> rs = risk_set_layout(np.array([2., 1., 2., 3.]), np.array([1., 1., 1., 0.]),
    ...                      np.ones(4), "efron")
    >>> rs.order.tolist(), rs.risk_start.tolist(), rs.slot_fraction.tolist()
    ([1, 0, 2, 3], [0, 1, 1], [0.0, 0.0, 0.5])
    """
    order = np.argsort(time, kind="stable")
    t, d, w = time[order], status[order], weights[order]
    first = np.searchsorted(t, t, side="left")          # first sorted row with the same time
    event_rows = np.flatnonzero(d == 1)
    ev_first = first[event_rows]
    uniq, event_time = np.unique(ev_first, return_inverse=True)
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
    return RiskSets(order, risk_start.astype(np.int64), np.asarray(slot_weight, float),
                    np.asarray(slot_fraction, float), slot_time.astype(np.int64),
                    event_rows.astype(np.int64), event_time.astype(np.int64), int(len(uniq)))


def _layout_symbols() -> list:
    return [pt.lvector("risk_start"), pt.dvector("slot_weight"), pt.dvector("slot_fraction"),
            pt.lvector("slot_time"), pt.lvector("event_rows"), pt.lvector("event_time"),
            pt.lscalar("n_times")]


def _revcumsum(a):
    return pt.cumsum(a[::-1], axis=0)[::-1]


def _denominators(eta, w, layout):
    """(r, D, Sd) on the max-shifted scale (ℓ is invariant to a shift of η)."""
    risk_start, _, frac, slot_time, ev_rows, ev_time, n_times = layout
    eta_c = eta - disconnected_grad(pt.max(eta))
    r = w * pt.exp(eta_c)
    S = _revcumsum(r)[risk_start]
    Sd = pt.zeros((n_times,))[ev_time].inc(r[ev_rows])
    return eta_c, r, S - frac * Sd[slot_time]


def cox_partial_loglik(eta, w, layout):
    """ℓ(η) (module docstring) for sorted rows; ``layout`` the symbols of :class:`RiskSets`."""
    eta_c, _, D = _denominators(eta, w, layout)
    _, c, _, _, ev_rows, _, _ = layout
    return pt.sum(w[ev_rows] * eta_c[ev_rows]) - pt.sum(c * pt.log(D))


def _score_information(J, eta, w, layout):
    """(ℓ, ∂ℓ/∂x, 𝓘) for η with Jacobian J (n × m), analytically (module docstring)."""
    risk_start, c, frac, slot_time, ev_rows, ev_time, n_times = layout
    eta_c, r, D = _denominators(eta, w, layout)
    loglik = pt.sum(w[ev_rows] * eta_c[ev_rows]) - pt.sum(c * pt.log(D))
    rJ = r[:, None] * J
    SdJ = pt.zeros((n_times, J.shape[1]))[ev_time].inc(rJ[ev_rows])
    M = (_revcumsum(rJ)[risk_start] - frac[:, None] * SdJ[slot_time]) / D[:, None]
    score = pt.sum(w[ev_rows][:, None] * J[ev_rows], axis=0) - pt.dot(c, M)
    into = pt.zeros(eta.shape)[risk_start].inc(c / D)
    tied = pt.zeros((n_times,))[slot_time].inc(c * frac / D)
    omega = pt.cumsum(into) - pt.zeros(eta.shape)[ev_rows].inc(tied[ev_time])
    info = pt.dot(J.T, (r * omega)[:, None] * J) - pt.dot(M.T, c[:, None] * M)
    return loglik, score, info


def _logdet_spd(A):
    L = pt.linalg.cholesky(A)
    return 2.0 * pt.sum(pt.log(pt.diag(L)))


def _build_cox():
    """Inputs and outputs of :func:`cox_functions` (see there)."""
    X, Z = pt.dmatrix("X"), pt.dmatrix("Z")
    col_term = pt.lvector("col_term")
    theta, u, beta = pt.dvector("theta"), pt.dvector("u"), pt.dvector("beta")
    offset, w = pt.dvector("offset"), pt.dvector("w")
    keep = pt.dmatrix("keep")
    layout = _layout_symbols()
    lam = theta[col_term]
    J = pt.concatenate([Z * lam[None, :], X], axis=1)
    eta = pt.dot(X, beta) + offset + pt.dot(Z, lam * u)
    q = u.shape[0]
    loglik, score, info = _score_information(J, eta, w, layout)
    ppl = loglik - 0.5 * pt.sum(u ** 2)
    x_pen = pt.concatenate([u, pt.zeros_like(beta)])
    grad_ppl = score - x_pen
    hess = info + pt.diag(pt.concatenate([pt.ones_like(u), pt.zeros_like(beta)]))
    H_uu = info[:q, :q] * keep + pt.eye(q)
    half_logdet = 0.5 * _logdet_spd(H_uu)
    G = -ppl + half_logdet
    xs = [u, beta]
    dG_dx = pt.concatenate(pt.grad(G, xs))
    v = disconnected_grad(pt.linalg.solve(hess, dG_dx, assume_a="sym"))
    g_x = -grad_ppl                                  # ∂g/∂x with g = −PPL
    dG_dtheta = pt.grad(G, theta) - pt.grad(pt.dot(v, g_x), theta)
    inputs = [theta, u, beta, X, Z, col_term, offset, w, keep, *layout]
    hess_tilde = pt.set_subtensor(hess[:q, :q], H_uu)
    return inputs, {"newton": [ppl, grad_ppl, hess, loglik],
                    "outer": [G, dG_dtheta, ppl, half_logdet, loglik],
                    "hessian_tilde": [hess_tilde]}


def cox_functions(kind: str):
    """Compiled functions of the frailty model (one graph for every data set).

    Parameters
    ----------
    kind : {"newton", "outer", "hessian_tilde"}
        ``"newton"``: (PPL, ∇PPL, −∇²PPL, ℓ) at (θ, u, β) for the inner Newton steps;
        ``"outer"``: (−ℓ_I, d(−ℓ_I)/dθ, PPL, ½ log|H̃_uu|, ℓ) at the mode;
        ``"hessian_tilde"``: −∇²PPL with coxme's sparse entries dropped (its vcov).

    Returns
    -------
    callable
        ``f(theta, u, beta, X, Z, col_term, offset, w, keep, *RiskSets.inputs())``.
    """
    def build():
        inputs, outs = _build_cox()
        return inputs, outs[kind]
    return compiled(("coxme", kind), build)


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
