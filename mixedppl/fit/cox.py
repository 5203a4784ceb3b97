r"""The Cox frailty fit (R's coxme): the inner Newton mode, the outer optimiser, the record.

For θ (one standard deviation per random term) the inner problem maximises the penalised partial
likelihood PPL(u, β) over the spherical frailties u and β jointly by Newton's method (started
from the stored mode of the nearest θ moved by its first-order prediction, step halving when PPL
falls); the outer problem minimises
:math:`-\ell_I(\theta)` (:mod:`mixedppl.graph.cox`) with the shared optimiser
(:func:`~mixedppl.fit.optimize.minimize_bounded`, θ ≥ 0 with its boundary probe) and the exact
gradient. The start is the best of coxme's variance grid (``varinit`` = 0.02², 0.1², 0.4², 0.8²).

coxme's answer at a variance is the same numbers (``tests/parity/test_coxme.py``); coxme's outer
BFGS (``reltol`` 1e-5) stops earlier, so at the optimum our integrated log-likelihood is as high as
its or higher. The record holds no result object: :class:`~mixedppl.results.cox.CoxmeResult`
wraps it.
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from ..core.exceptions import ConvergenceWarning, ModelSpecError, SingularFitWarning
from ..core.threads import blas_threads_for
from ..graph.cox import (FrailtyLayout, RiskSets, cox_functions, coxph_functions,
                         frailty_layout, risk_set_layout)
from ..graph.cox_adjoint import outer_gradient
from ..graph.cox_numpy import CoxNumpy, cho_solve, cholesky
from ..spec.model_spec import ModelSpec
from ..spec.reterm import relative_factor
from .optimize import OptSummary, minimize_bounded
from .records import group_labels

__all__ = ["CoxData", "BlockHessian", "CoxmeObjective", "CoxmeFit", "fit_coxph", "fit_coxme", "sparse_levels",
           "VARIANCE_GRID"]

#: coxme's ``varinit``: starting variances tried (the best is the start).
VARIANCE_GRID = (0.02 ** 2, 0.1 ** 2, 0.4 ** 2, 0.8 ** 2)


def sparse_levels(codes: np.ndarray, n_levels: int, sparse: tuple[float, float] | None
                  ) -> np.ndarray:
    """coxme's ``sparse = c(50, .02)`` rule: with at least ``sparse[0]`` levels, the levels
    holding at most a fraction ``sparse[1]`` of the rows are "sparse" (coxme drops the
    information matrix's entries between two of them). A boolean per level.

    Examples
    --------
    >>> bool(sparse_levels(np.repeat(np.arange(100), 3), 100, (50, 0.02)).all())
    True
    >>> bool(sparse_levels(np.repeat(np.arange(10), 3), 10, (50, 0.02)).any())
    False
    """
    if sparse is None or n_levels < sparse[0]:
        return np.zeros(n_levels, bool)
    frac = np.bincount(codes, minlength=n_levels) / len(codes)
    return frac <= sparse[1]


@dataclass(frozen=True, eq=False)
class CoxData:
    """The sorted arrays the graphs take (built once from a spec; Z is never formed).

    Attributes
    ----------
    risk_sets : RiskSets
    frailty : FrailtyLayout
        Where the frailties enter (entries of Z, coxme's sparse levels, the dense block).
    X : ndarray
        Fixed-effect matrix, rows sorted by time.
    re_value : ndarray
        The value of Z in each contribution to an entry of ZΛ (``FrailtyLayout.ct_entry``;
        1 for ``(1 | g)``).
    col_term : ndarray of int
        The term of each frailty.
    offset, weights : ndarray
        Sorted.
    term_slices : list of slice
        Where each term's frailties sit among the q.
    term_shapes : list of (int, int)
        (levels, columns) of each term.
    """

    risk_sets: RiskSets
    frailty: FrailtyLayout
    X: np.ndarray
    re_value: np.ndarray
    col_term: np.ndarray
    offset: np.ndarray
    weights: np.ndarray
    term_slices: list
    term_shapes: list

    @classmethod
    def from_spec(cls, spec: ModelSpec, sparse: tuple[float, float] | None = (50, 0.02)
                  ) -> "CoxData":
        r"""Sort the rows and lay out Z's entries; coxme's sparse rule on the first term of the
        formula when it is ``(1 | g)``.

        A term with m columns (``(1 + x | g)``) has m·G frailties, column by column (the G
        intercepts, then the G slopes: coxme's order) and θ its lower-triangular T in lme4's
        layout; the entry of row i in column k of ZΛ is :math:`\sum_{l \ge k} z_{il} T_{lk}`.
        """
        rs = risk_set_layout(spec.y, spec.status, spec.weights, spec.family.ties, spec.strata)
        rank = np.empty(spec.n, np.int64)
        rank[rs.order] = np.arange(spec.n)              # sorted position of each row
        rows, cols, col_term, slices, start, n_entries = [], [], [], [], 0, 0
        ct_entry, ct_theta, ct_value, theta_start = [], [], [], 0
        for k, t in enumerate(spec.terms):
            G, m = t.n_levels, t.n_cols
            pair_index = {pair: theta_start + i for i, pair in enumerate(t.theta_pairs())}
            for col in range(m):
                rows.append(rank)
                cols.append(start + col * G + t.codes)
                entry = n_entries + np.arange(spec.n)
                for row in range(col, m):
                    ct_entry.append(entry)
                    ct_theta.append(np.full(spec.n, pair_index[(row, col)]))
                    ct_value.append(t.z[:, row])
                n_entries += spec.n
            col_term += [k] * (G * m)
            slices.append(slice(start, start + G * m))
            start += G * m
            theta_start += t.n_theta
        sparse_cols = np.zeros(0, np.int64)
        first = _first_formula_term(spec)
        if first is not None:
            t = spec.terms[first]
            sparse_cols = slices[first].start + np.flatnonzero(
                sparse_levels(t.codes, t.n_levels, sparse))
        col_term = np.asarray(col_term, np.int64)
        re_row, re_col = np.concatenate(rows), np.concatenate(cols).astype(np.int64)
        ct_entry, ct_theta = np.concatenate(ct_entry), np.concatenate(ct_theta)
        order = np.argsort(ct_entry, kind="stable")
        layout = frailty_layout(rs, re_row, re_col, col_term, sparse_cols,
                                ct_entry[order].astype(np.int64),
                                ct_theta[order].astype(np.int64))
        return cls(rs, layout, np.ascontiguousarray(spec.X[rs.order]),
                   np.concatenate(ct_value)[order].astype(float), col_term,
                   spec.offset[rs.order], spec.weights[rs.order], slices,
                   [(t.n_levels, t.n_cols) for t in spec.terms])

    def relative_factor(self, theta: np.ndarray) -> np.ndarray:
        """Λ(θ) as a dense q × q matrix (b = Λu; block-diagonal, the identity of the levels
        Kronecker each term's T, in the frailties' column-by-column order)."""
        theta = np.asarray(theta, float)
        lam = np.zeros((self.q, self.q))
        k0 = 0
        for (G, m), sl in zip(self.term_shapes, self.term_slices):
            T = relative_factor(theta[k0:k0 + m * (m + 1) // 2], m)
            lam[sl, sl] = np.kron(T, np.eye(G))
            k0 += m * (m + 1) // 2
        return lam

    def relative_factor_sparse(self, theta: np.ndarray):
        """Λ(θ) as a SciPy sparse matrix (:meth:`relative_factor`; dense below 500
        frailties, where SciPy's sparse constructors cost more than the product)."""
        theta = np.asarray(theta, float)
        if self.q <= 500:
            return self.relative_factor(theta)
        blocks, k0 = [], 0
        for (G, m), sl in zip(self.term_shapes, self.term_slices):
            T = relative_factor(theta[k0:k0 + m * (m + 1) // 2], m)
            blocks.append(sparse.kron(T, sparse.identity(G), format="csr"))
            k0 += m * (m + 1) // 2
        return sparse.block_diag(blocks, format="csr") if blocks else sparse.csr_matrix((0, 0))

    def frailties(self, theta: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, ...]:
        """b = Λu per term as (G_k, m_k) arrays (level × term column)."""
        b = self.relative_factor_sparse(theta) @ np.asarray(u, float)
        return tuple(b[sl].reshape(m, G).T for (G, m), sl in zip(self.term_shapes,
                                                                  self.term_slices))

    def numpy_evaluator(self) -> CoxNumpy:
        """The NumPy evaluation of the graphs' outputs on these arrays
        (:class:`~mixedppl.graph.cox_numpy.CoxNumpy`; built once, it holds no state)."""
        return self._numpy_evaluator

    @functools.cached_property
    def _numpy_evaluator(self) -> CoxNumpy:
        n_theta = int(self.frailty.ct_theta.max()) + 1 if len(self.frailty.ct_theta) else 0
        return CoxNumpy(self.X, self.offset, self.weights, self.re_value, self.risk_sets,
                        self.frailty, n_theta)

    def args(self) -> list:
        """The data inputs of :func:`~mixedppl.graph.cox.cox_functions` after (θ, u, β)."""
        return [self.X, self.offset, self.weights, self.re_value, *self.risk_sets.inputs(),
                *self.frailty.inputs()]

    @property
    def q(self) -> int:
        return len(self.col_term)

    @property
    def sparse_x(self) -> np.ndarray:
        """Positions in x = (u, β) of the sparse frailties."""
        return self.frailty.sparse_cols

    @property
    def dense_x(self) -> np.ndarray:
        """Positions in x = (u, β) of the dense block (the other frailties, then β)."""
        return np.concatenate([self.frailty.dense_cols, self.q + np.arange(self.X.shape[1])])


def _first_formula_term(spec: ModelSpec) -> int | None:
    """Index in ``spec.terms`` of the formula's first random term when it is ``(1 | g)``
    (coxme lays out only that term as sparse)."""
    if not spec.parsed.random:
        return None
    first = spec.parsed.random[0]
    for k, t in enumerate(spec.terms):
        if t.group == first.group and t.column_names == ["(Intercept)"]:
            return k
    return None


@dataclass(frozen=True, eq=False)
class BlockHessian:
    r"""coxme's H̃ = [[diag(d), C], [Cᵀ, B]] over x = (u, β) permuted to (sparse, dense block).

    Solves by the Schur complement :math:`B - C^\top \mathrm{diag}(d)^{-1} C` of the diagonal:
    O(q_s m_d² + m_d³) for m_d the size of the dense block.
    """

    sparse: np.ndarray
    dense: np.ndarray
    d: np.ndarray
    C: np.ndarray
    B: np.ndarray

    @functools.cached_property
    def factor(self) -> np.ndarray:
        """Lower Cholesky factor of the Schur complement B − CᵀD⁻¹C (of B without sparse
        levels)."""
        if len(self.sparse) == 0:
            return cholesky(self.B)
        return cholesky(self.B - self.C.T @ (self.C / self.d[:, None]))

    def solve(self, g: np.ndarray) -> np.ndarray:
        """H̃⁻¹ g (raises LinAlgError when the Schur complement is not positive definite)."""
        L = self.factor
        if len(self.sparse) == 0:
            return cho_solve(L, g)
        g_s, g_d = g[self.sparse], g[self.dense]
        rhs = g_d - self.C.T @ (g_s / self.d)
        y_d = cho_solve(L, rhs)
        out = np.empty_like(g, dtype=float)
        out[self.sparse] = (g_s - self.C @ y_d) / self.d
        out[self.dense] = y_d
        return out

    def half_logdet_uu(self, q_d: int) -> float:
        r"""½ log|H̃_uu| (the frailty block; its first ``q_d`` dense columns are frailties), by
        the Schur complement of the sparse diagonal: the graph's ``half_logdet`` in NumPy.
        NaN when that block is not positive definite."""
        if len(self.sparse) == 0:       # H_uu's factor is the leading block of H's
            try:
                L = self.factor
            except np.linalg.LinAlgError:
                return np.nan
            return float(np.sum(np.log(np.diag(L)[:q_d])))
        C_u, B_uu = self.C[:, :q_d], self.B[:q_d, :q_d]
        try:
            L = cholesky(B_uu - C_u.T @ (C_u / self.d[:, None]))
        except np.linalg.LinAlgError:
            return np.nan
        return 0.5 * float(np.sum(np.log(self.d)) + 2.0 * np.sum(np.log(np.diag(L))))

    def inverse(self) -> np.ndarray:
        r"""H̃⁻¹ as a dense matrix in x order, by blocks: with S = B − CᵀD⁻¹C (D = diag(d)),
        :math:`\tilde H^{-1} = \begin{pmatrix} D^{-1} + D^{-1}CS^{-1}C^\top D^{-1} &
        -D^{-1}CS^{-1} \\ \cdot & S^{-1}\end{pmatrix}` (O(q_s² m_d), not O((q_s + m_d)³))."""
        L = self.factor
        S_inv = cho_solve(L, np.eye(len(self.dense)))
        m = len(self.sparse) + len(self.dense)
        out = np.empty((m, m))
        DC = self.C / self.d[:, None]
        cross = -DC @ S_inv
        out[np.ix_(self.dense, self.dense)] = S_inv
        if len(self.sparse):
            sp_block = -cross @ DC.T
            sp_block[np.diag_indices_from(sp_block)] += 1.0 / self.d
            out[np.ix_(self.sparse, self.sparse)] = sp_block
            out[np.ix_(self.sparse, self.dense)] = cross
            out[np.ix_(self.dense, self.sparse)] = cross.T
        return out

    def dense_matrix(self) -> np.ndarray:
        """H̃ as a dense (q + p) × (q + p) matrix in x order."""
        m = len(self.sparse) + len(self.dense)
        H = np.zeros((m, m))
        H[self.sparse, self.sparse] = self.d
        H[np.ix_(self.sparse, self.dense)] = self.C
        H[np.ix_(self.dense, self.sparse)] = self.C.T
        H[np.ix_(self.dense, self.dense)] = self.B
        return H


class DenseHessian(np.ndarray):
    """A dense negative Hessian with the :meth:`BlockHessian.solve` interface."""

    def solve(self, g: np.ndarray) -> np.ndarray:
        return np.linalg.solve(np.asarray(self), g)


def _newton(fun, x0: np.ndarray, solve=None, tol: float = 1e-13, maxiter: int = 60):
    """Maximise a concave f by Newton with step halving; ``fun(x) -> (f, ∇f, H)`` with H the
    negative Hessian (anything with ``.solve``), or ``solve(H, g, x)`` giving the step.
    Returns (x, f, gradient, H, iterations, converged).

    Once the Newton decrement gᵀH⁻¹g is below ``tol·(1 + |f|)`` the last step is taken as well
    (no step halving, kept unless f falls): the decrement bounds f's error, but x is then only
    within about √decrement of the mode, and −ℓ_I moves with x at first order (½ log|H̃_uu|
    is not stationary there): without it −ℓ_I at one θ differed by 3·10⁻⁸ between inner starts,
    enough to fail L-BFGS-B's line search near the optimum.
    """
    x = np.asarray(x0, float).copy()
    f, g, H = fun(x)
    for it in range(maxiter):
        try:
            step = H.solve(g) if solve is None else solve(H, g, x)
        except np.linalg.LinAlgError:
            return x, f, g, H, it, False
        decrement = float(g @ step)
        if decrement <= tol * (1.0 + abs(f)):
            if decrement > 0:
                f_new, g_new, H_new = fun(x + step)
                if np.isfinite(f_new) and f_new >= f - 1e-12 * (1.0 + abs(f)):
                    return x + step, f_new, g_new, H_new, it + 1, True
            return x, f, g, H, it, True
        for _ in range(30):
            f_new, g_new, H_new = fun(x + step)
            if np.isfinite(f_new) and f_new >= f - 1e-12 * (1.0 + abs(f)):
                break
            step = step / 2
        else:
            return x, f, g, H, it, False
        x, f, g, H = x + step, f_new, g_new, H_new
    return x, f, g, H, maxiter, False


def fit_coxph(data: CoxData, beta0: np.ndarray | None = None, numpy: bool = True) -> dict:
    """The Cox model without random effects (survival's ``coxph``) by Newton, evaluated by
    :meth:`CoxNumpy.coxph <mixedppl.graph.cox_numpy.CoxNumpy.coxph>` (``numpy=False``: the
    graph :func:`~mixedppl.graph.cox.coxph_functions`; the same numbers).

    Returns a dict: ``beta``, ``loglik`` (maximised), ``loglik_null`` (at β = 0), ``vcov``,
    ``converged``.
    """
    p = data.X.shape[1]
    if numpy:
        fn = data.numpy_evaluator().coxph
    else:
        graph, rs_inputs = coxph_functions(), data.risk_sets.inputs()

        def fn(beta):
            return graph(beta, data.X, data.offset, data.weights, *rs_inputs)

    def fun(beta):
        ll, score, info = fn(beta)
        return float(ll), np.asarray(score), np.asarray(info).view(DenseHessian)

    null = fun(np.zeros(p))[0]
    beta = np.zeros(p) if beta0 is None else np.asarray(beta0, float)
    if p == 0:
        return {"beta": beta, "loglik": null, "loglik_null": null, "vcov": np.zeros((0, 0)),
                "converged": True}
    beta, ll, _, info, _, ok = _newton(fun, beta)
    return {"beta": beta, "loglik": ll, "loglik_null": null,
            "vcov": np.linalg.inv(np.asarray(info)), "converged": ok}


class CoxmeObjective:
    r"""−ℓ_I(θ) and its exact gradient, with the inner mode warm-started between calls.

    The inner Newton steps and the implicit-function solve need the exact Hessian H of −PPL;
    coxme's H̃ (sparse entries dropped) is exact when no level is sparse and is used directly.
    Otherwise :math:`H^{-1}g` is found by conjugate gradients on H (products Hv in O(n + S),
    ``cox_functions("hvp")``) preconditioned by H̃.

    Every quantity is a PyTensor graph (:func:`~mixedppl.graph.cox.cox_functions`); they are
    evaluated by their NumPy mirror :class:`~mixedppl.graph.cox_numpy.CoxNumpy` (the same
    numbers to rounding, ``tests/graph/test_cox_numpy.py``; ~10× less time on small data),
    the θ-gradient too: in closed form when no level is sparse, by the hand-written reverse
    pass of :mod:`mixedppl.graph.cox_adjoint` with sparse levels. ``numpy=False`` evaluates
    every graph itself.

    Parameters
    ----------
    data : CoxData
    beta_start : ndarray
        β of the Cox fit without frailties (the inner start at the first θ).
    numpy : bool
        Evaluate by the NumPy mirror (default) or by the compiled graphs.
    """

    def __init__(self, data: CoxData, beta_start: np.ndarray, numpy: bool = True):
        self.data = data
        self.p = data.X.shape[1]
        self.numpy = data.numpy_evaluator() if numpy else None
        self._args = data.args()
        self._sparse, self._dense = data.sparse_x, data.dense_x
        self._x = np.concatenate([np.zeros(data.q), np.asarray(beta_start, float)])
        self._explicit_start = True      # the next mode starts at self._x (see :meth:`_start`)
        self._modes: list = []           # recent modes, the starts of later ones
        self._v = None                   # the last implicit-gradient solve (a CG start)
        self._cache: dict = {}           # θ bytes → evaluation (see :meth:`value`)
        self.n_inner = 0
        self.n_hvp = 0
        m_d, n_slots = len(self._dense), len(data.risk_sets.slot_weight)
        #: Dense work per evaluation (for :func:`~mixedppl.core.threads.blas_threads_for`).
        self.flops_per_eval = float(n_slots * m_d ** 2 + (len(self._sparse) + m_d) * m_d ** 2)

    @functools.cached_property
    def _newton_fn(self):
        return cox_functions("newton")

    @functools.cached_property
    def _outer_fn(self):
        return cox_functions("outer")

    @functools.cached_property
    def _hvp_fn(self):
        return cox_functions("hvp")

    def reset(self, beta_start: np.ndarray) -> None:
        """Start the next inner Newton from u = 0 and ``beta_start``."""
        self.warm_start(np.concatenate([np.zeros(self.data.q), np.asarray(beta_start, float)]))

    def warm_start(self, x: np.ndarray) -> None:
        """Start the next inner Newton from x = (u, β)."""
        self._x = np.asarray(x, float).copy()
        self._explicit_start = True

    def _start(self, theta: np.ndarray) -> np.ndarray:
        r"""Where the inner Newton at θ starts: the point given to :meth:`warm_start` /
        :meth:`reset` if any, else the first-order prediction from the stored mode nearest θ,
        :math:`\hat x(\theta_k) + (d\hat x/d\theta)(\theta - \theta_k)` with
        :math:`d\hat x/d\theta = \tilde H^{-1}\,\partial(\nabla_x\mathrm{PPL})/\partial\theta`
        (:meth:`CoxNumpy.grad_theta <mixedppl.graph.cox_numpy.CoxNumpy.grad_theta>`; H̃ is H
        without sparse levels, else its approximation: only the start changes, not the mode).
        L-BFGS-B's trial points jump about (θ = 0.8 → 0 → 0.73 on kidney): the last mode is
        not always the nearest. Without the NumPy evaluator, the nearest mode itself."""
        if self._explicit_start or not self._modes:
            self._explicit_start = False
            return self._x
        dist = [float(np.sum((theta - m["theta"]) ** 2)) for m in self._modes]
        m = self._modes[int(np.argmin(dist))]
        if self.numpy is None:
            return m["x"]
        if m["dx_dtheta"] is None:
            u, beta = self.split(m["x"])
            rhs = self.numpy.grad_theta(m["theta"], u, beta)
            try:
                m["dx_dtheta"] = np.stack([m["hess"].solve(rhs[:, j])
                                           for j in range(rhs.shape[1])], axis=1)
            except np.linalg.LinAlgError:
                m["dx_dtheta"] = np.zeros_like(rhs)
        return m["x"] + m["dx_dtheta"] @ (theta - m["theta"])

    def _remember(self, theta: np.ndarray, x: np.ndarray, hess) -> None:
        self._x = x
        self._modes.append({"theta": theta.copy(), "x": x, "hess": hess, "dx_dtheta": None})
        if len(self._modes) > 8:
            self._modes.pop(0)

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(u, β) of the stacked inner vector."""
        return x[:self.data.q], x[self.data.q:]

    def blocks(self, theta: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray,
                                                                  BlockHessian, float]:
        """(PPL, ∇PPL, H̃, ℓ) at (θ, x)."""
        u, beta = self.split(x)
        if self.numpy is not None:
            ppl, grad, d, C, B, loglik = self.numpy.blocks(theta, u, beta)
        else:
            ppl, grad, d, C, B, loglik = self._newton_fn(theta, u, beta, *self._args)
        H = BlockHessian(self._sparse, self._dense, np.asarray(d), np.asarray(C),
                         np.asarray(B))
        return float(ppl), np.asarray(grad), H, float(loglik)

    def hvp(self, theta: np.ndarray, x: np.ndarray, v: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
        """(Hv, ∂/∂θ[vᵀ∇ₓ(−PPL)]) with the exact Hessian H of −PPL."""
        u, beta = self.split(x)
        self.n_hvp += 1
        if self.numpy is not None:
            return self.numpy.hvp(theta, u, beta, v)
        Hv, cross = self._hvp_fn(theta, u, beta, *self._args, v)
        return np.asarray(Hv), np.asarray(cross)

    def solve_exact(self, theta: np.ndarray, x: np.ndarray, H_tilde: BlockHessian,
                    b: np.ndarray, rtol: float = 1e-11, maxiter: int = 200,
                    v0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(H⁻¹b, ∂/∂θ[vᵀ∇ₓ(−PPL)] at v = H⁻¹b) by conjugate gradients preconditioned by H̃
        (one product when H̃ = H), from ``v0`` when given (else H̃⁻¹b)."""
        v = H_tilde.solve(b) if v0 is None or len(self._sparse) == 0 else v0
        Hv, cross = self.hvp(theta, x, v)
        if len(self._sparse) == 0:
            return v, cross
        res = b - Hv
        z = H_tilde.solve(res)
        direction, rz = z, float(res @ z)
        scale = np.linalg.norm(b) + 1e-300
        for _ in range(maxiter):
            if np.linalg.norm(res) <= rtol * scale:
                break
            Hd, cross_d = self.hvp(theta, x, direction)
            step = rz / float(direction @ Hd)
            v, cross, res = v + step * direction, cross + step * cross_d, res - step * Hd
            z = H_tilde.solve(res)
            rz_new = float(res @ z)
            direction, rz = z + (rz_new / rz) * direction, rz_new
        return v, cross

    def mode(self, theta: np.ndarray, x0: np.ndarray | None = None, tol: float = 1e-13
             ) -> dict:
        """The joint mode (û, β̂) of PPL at θ by Newton (from ``x0``, by default from
        :meth:`_start`), with ℓ at the mode; ``tol`` as :func:`_newton`'s."""
        theta = np.asarray(theta, float)
        loglik = {}

        def fun(x):
            ppl, grad, H, ll = self.blocks(theta, x)
            loglik[x.tobytes()] = ll
            return ppl, grad, H

        def exact_step(H, g, x):
            # inexact Newton: a loose solve far from the mode, a tight one near it
            forcing = min(1e-2, float(np.linalg.norm(g)) / (1.0 + abs(float(g @ x))))
            return self.solve_exact(theta, x, H, g, rtol=max(forcing, 1e-10))[0]

        solve = None if len(self._sparse) == 0 else exact_step
        start = self._start(theta) if x0 is None else x0
        x, ppl, grad, hess, iters, ok = _newton(fun, start, solve, tol)
        self.n_inner += iters
        if not ok and x0 is None and start is not self._x:      # a poor prediction
            x, ppl, grad, hess, iters, ok = _newton(fun, self._x, solve, tol)
            self.n_inner += iters
        if ok:
            self._remember(theta, x, hess)
        return {"x": x, "ppl": ppl, "grad_ppl": grad, "hess": hess, "iterations": iters,
                "converged": ok, "loglik": loglik[x.tobytes()]}

    def value(self, theta: np.ndarray) -> dict:
        """The mode at θ and −ℓ_I there (``"f"``; ½ log|H̃_uu| from the Newton step's blocks,
        no gradient graph), cached by θ: L-BFGS-B's line search, the start grid, the boundary
        probe and the final record ask for the same θ again."""
        theta = np.asarray(theta, float)
        key = theta.tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        m = self.mode(theta)
        half_logdet = m["hess"].half_logdet_uu(len(self.data.frailty.dense_cols))
        f = -m["ppl"] + half_logdet if m["converged"] else np.nan
        e = {**m, "f": float(f), "half_logdet": half_logdet, "grad": None}
        self._cache[key] = e
        if len(self._cache) > 16:
            self._cache.pop(next(iter(self._cache)))
        return e

    def evaluate(self, theta: np.ndarray) -> dict:
        """Everything at θ: −ℓ_I, its gradient, PPL, ½ log|H̃_uu|, ℓ at the mode, the mode."""
        e = self.value(theta)
        if e["grad"] is None:
            e["grad"] = self._gradient(np.asarray(theta, float), e)
        return e

    def _gradient(self, theta: np.ndarray, e: dict) -> np.ndarray:
        """d(−ℓ_I)/dθ at the mode ``e`` by the implicit function theorem: in NumPy without
        sparse levels (:meth:`CoxNumpy.theta_gradient
        <mixedppl.graph.cox_numpy.CoxNumpy.theta_gradient>`), else :meth:`implicit_gradient`
        (its partial derivatives by :func:`~mixedppl.graph.cox_adjoint.outer_gradient`, or by
        the graph when ``numpy=False``)."""
        if not e["converged"]:
            return np.full(len(theta), np.nan)
        if self.numpy is not None and self.numpy.dense_gradient:
            u, beta = self.split(e["x"])
            try:
                H = e["hess"]
                return self.numpy.theta_gradient(theta, u, beta, np.asarray(H.B),
                                                 e["grad_ppl"], H.factor)[0]
            except np.linalg.LinAlgError:
                return np.full(len(theta), np.nan)
        return self.implicit_gradient(theta, e, numpy=self.numpy is not None)

    def graph_gradient(self, theta: np.ndarray, e: dict) -> np.ndarray:
        """d(−ℓ_I)/dθ at the mode ``e`` by the graph ``"outer"`` (automatic differentiation of
        −ℓ_I at fixed x) and the implicit function theorem (module docstring of
        :mod:`mixedppl.graph.cox`)."""
        return self.implicit_gradient(theta, e, numpy=False)

    def implicit_gradient(self, theta: np.ndarray, e: dict, numpy: bool) -> np.ndarray:
        """d(−ℓ_I)/dθ = ∂G/∂θ − ∂/∂θ[vᵀ∇ₓ(−PPL)] with v = H⁻¹∂G/∂x (conjugate gradients on the
        exact H, :meth:`solve_exact`); the partial derivatives of G by the graph ``"outer"``
        or, ``numpy=True``, by its NumPy reverse pass
        (:func:`~mixedppl.graph.cox_adjoint.outer_gradient`)."""
        grad = np.full(len(theta), np.nan)
        if not e["converged"]:
            return grad
        u, beta = self.split(e["x"])
        if numpy:
            _, dG_dx, dG_dtheta, *_ = outer_gradient(self.numpy, theta, u, beta)
        else:
            _, dG_dx, dG_dtheta, *_ = self._outer_fn(theta, u, beta, *self._args)
        try:
            v, cross = self.solve_exact(theta, e["x"], e["hess"], np.asarray(dG_dx), v0=self._v)
        except np.linalg.LinAlgError:
            return grad
        self._v = v
        return np.asarray(dG_dtheta, float) - cross

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        e = self.evaluate(theta)
        if not e["converged"] or not np.all(np.isfinite(e["grad"])):
            return np.nan, np.full(len(theta), np.nan)
        return e["f"], e["grad"]


@dataclass(frozen=True, eq=False)
class CoxmeFit:
    r"""A Cox frailty model fitted as coxme fits it.

    Attributes
    ----------
    spec : ModelSpec
    data : CoxData
    theta : ndarray
        Each term's lower-triangular T (lme4's layout, b = Λu, Σ = TTᵀ): for ``(1 | g)`` the
        standard deviation of the frailties (θ² is coxme's variance).
    beta : ndarray
        β̂ at θ̂ (the joint mode of PPL).
    u : ndarray
        Spherical frailties at the mode; the frailties are b = Λu.
    vcov_beta : ndarray
        The β block of H̃⁻¹ (coxme's ``vcov``; H̃ the information with coxme's sparse entries
        dropped).
    vcov_b : ndarray
        The frailty block of H̃⁻¹ on the b scale (coxme's "penalized se" are its diagonal's roots).
    loglik_integrated, loglik_penalized, loglik_fitted, loglik_null, loglik_coxph : float
        ℓ_I(θ̂); PPL at the mode; ℓ at the mode; ℓ at β = 0 without frailties (coxme's NULL);
        the maximised ℓ of the Cox model without frailties.
    beta_coxph : ndarray
    n_events, nobs : int
    df_penalized : float
        coxme's penalised degrees of freedom p + q − tr(H̃⁻¹ P).
    opt : OptSummary or None
        None when every variance was fixed.
    converged : bool
    is_singular : bool
        An estimated T has a diagonal entry at 0 on the η scale (a variance 0, or a correlation
        ±1): :func:`_check_fit`.
    fixed_variance : bool
    timing : dict
    """

    spec: ModelSpec = field(repr=False)
    data: CoxData = field(repr=False)
    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray = field(repr=False)
    vcov_beta: np.ndarray = field(repr=False)
    vcov_b: np.ndarray = field(repr=False)
    loglik_integrated: float
    loglik_penalized: float
    loglik_fitted: float
    loglik_null: float
    loglik_coxph: float
    beta_coxph: np.ndarray = field(repr=False)
    n_events: int
    nobs: int
    df_penalized: float
    opt: OptSummary | None = field(repr=False)
    converged: bool
    is_singular: bool = False
    fixed_variance: bool = False
    objective: CoxmeObjective | None = field(default=None, repr=False)
    timing: dict = field(default_factory=dict, repr=False)

    @property
    def covariances(self) -> list[np.ndarray]:
        """Σ_k = T_k T_kᵀ, the frailty covariance of each term (m_k × m_k; 1 × 1 for
        ``(1 | g)``)."""
        out, k0 = [], 0
        for t in self.spec.terms:
            T = relative_factor(self.theta[k0:k0 + t.n_theta], t.n_cols)
            out.append(T @ T.T)
            k0 += t.n_theta
        return out

    @property
    def variances(self) -> dict:
        """By term, named as coxme's ``VarCorr`` (``"id"``): the variance θ² of a scalar term,
        the covariance matrix Σ of a term with several columns."""
        return {label: float(S[0, 0]) if S.shape == (1, 1) else S
                for label, S in zip(group_labels(self.spec.terms), self.covariances)}

    @property
    def b(self) -> tuple[np.ndarray, ...]:
        """Frailties b = Λu per term as (G_k, m_k) arrays (log-hazard scale, coxme's
        ``ranef``)."""
        return self.data.frailties(self.theta, self.u)

    @property
    def n_params(self) -> int:
        """β and the variance parameters (coxme's ``logLik(type = "integrated")`` df: one
        variance per scalar term; variances and correlations of a term with several columns)."""
        return self.spec.p + len(self.theta)


def _grid_theta(spec: ModelSpec, variance: float) -> np.ndarray:
    """θ with each term's T diagonal at √(variance / var(z column)) (coxme's ``varinit`` for an
    intercept, ``varinit / var(x)`` for a slope), correlations 0."""
    out = []
    for t in spec.terms:
        col_var = np.var(t.z, axis=0, ddof=1) if spec.n > 1 else np.ones(t.n_cols)
        col_var = np.where(col_var > 0, col_var, 1.0)
        T = np.diag(np.sqrt(variance / col_var))
        out += [T[i, j] for i, j in t.theta_pairs()]
    return np.asarray(out, float)


def _theta_start(objective: CoxmeObjective, spec: ModelSpec) -> np.ndarray:
    """The best θ of coxme's grid, −ℓ_I from a looser inner solve (decrement ≤ 1e-9·(1 + |f|):
    f within ~1e-9 relative, enough to rank the grid; not cached, so the optimiser's own
    evaluations are all tight)."""
    best, start = np.inf, None
    for v in VARIANCE_GRID:
        theta = _grid_theta(spec, v)
        m = objective.mode(theta, tol=1e-9)
        f = (-m["ppl"] + m["hess"].half_logdet_uu(len(objective.data.frailty.dense_cols))
             if m["converged"] else np.nan)
        if np.isfinite(f) and f < best:
            best, start = f, theta
    return _grid_theta(spec, 0.4 ** 2) if start is None else start


def _fixed_theta(spec: ModelSpec, variance) -> np.ndarray:
    """θ for ``variance=`` (one variance per term; scalar terms only)."""
    if any(t.n_cols > 1 for t in spec.terms):
        names = [f"({' + '.join(t.column_names)} | {t.group})" for t in spec.terms
                 if t.n_cols > 1]
        raise ModelSpecError(f"variance= holds the variance of scalar terms such as (1 | g); "
                             f"{', '.join(names)} has several columns: pass start= instead")
    variance = np.broadcast_to(np.asarray(variance, float), (len(spec.terms),))
    if np.any(variance < 0):
        raise ModelSpecError(f"variance= must be >= 0, got {variance.tolist()}")
    return np.sqrt(variance)


def _fit_theta(objective: CoxmeObjective, spec: ModelSpec, variance, start, gtol: float,
               maxiter: int):
    """θ̂ (or the fixed variance), the record pieces at it and H̃⁻¹ (coxme's vcov)."""
    opt = None
    if variance is not None:
        theta = _fixed_theta(spec, variance)
        converged = True
    else:
        lower = spec.theta_lower()
        if start is None:
            x0 = _theta_start(objective, spec)
        else:
            x0 = np.asarray(start, float).reshape(-1)
            if len(x0) != len(lower):
                raise ModelSpecError(f"start= needs {len(lower)} values (θ: each term's "
                                     f"lower-triangular T, lme4's layout), got {len(x0)}")
        opt = minimize_bounded(objective, x0, lower, gtol=gtol, maxiter=maxiter,
                               mirror=spec.theta_mirror())
        theta, converged = opt.x, bool(opt.success)
    e = objective.evaluate(theta)
    converged = converged and e["converged"]
    vcov_x = e["hess"].inverse()
    return theta, opt, converged, e, vcov_x, variance


def _check_fit(spec: ModelSpec, theta: np.ndarray, opt, converged: bool, fixed: bool) -> bool:
    """Warn when the optimiser did not converge (ConvergenceWarning) or the fit is singular
    (SingularFitWarning: a diagonal entry of an estimated T below 1e-4 on the η scale, T_kk
    times the SD of its column of Z); returns whether it is singular."""
    if fixed:
        return False
    if not converged:
        warnings.warn(f"coxme: the optimiser did not converge ({opt.message if opt else ''})",
                      ConvergenceWarning, stacklevel=4)
    scale, k0 = [], 0
    for t in spec.terms:
        sd = np.std(t.z, axis=0, ddof=1) if spec.n > 1 else np.ones(t.n_cols)
        sd = np.where(sd > 0, sd, 1.0)
        scale += [sd[i] for i, j in t.theta_pairs() if i == j]
    diagonal = np.isfinite(spec.theta_lower())
    singular = bool(np.any(np.abs(theta[diagonal]) * np.asarray(scale) < 1e-4))
    if singular:
        warnings.warn("coxme: boundary (singular) fit — a frailty variance at 0 or a "
                      "correlation at ±1; see fit.is_singular and fit.variance_components",
                      SingularFitWarning, stacklevel=4)
    return singular


def fit_coxme(spec: ModelSpec, *, sparse: tuple[float, float] | None = (50, 0.02),
              variance: np.ndarray | None = None, start: np.ndarray | None = None,
              gtol: float = 1e-6, maxiter: int = 500) -> CoxmeFit:
    """Fit a Cox frailty model from its spec.

    Parameters
    ----------
    spec : ModelSpec
        Built with a :class:`~mixedppl.families.cox.CoxFamily` (``spec.status`` set).
    sparse : (int, float) or None
        coxme's ``sparse`` rule (:func:`sparse_levels`); None for the exact Laplace
        approximation whatever the number of levels.
    variance : array-like, optional
        Hold each term's variance at this value (coxme's ``vfixed``).
    start : array-like, optional
        Starting θ (standard deviations of scalar terms; default: the best of
        :data:`VARIANCE_GRID`, see :func:`_grid_theta`).
    gtol, maxiter
        Passed to :func:`~mixedppl.fit.optimize.minimize_bounded`.

    Returns
    -------
    CoxmeFit
    """
    t0 = time.perf_counter()
    data = CoxData.from_spec(spec, sparse)
    objective = CoxmeObjective(data, np.zeros(spec.p))
    with blas_threads_for(objective):
        base = fit_coxph(data)
        objective.reset(base["beta"])
        theta, opt, converged, e, vcov_x, variance = _fit_theta(
            objective, spec, variance, start, gtol, maxiter)
        t_opt = time.perf_counter()
        q = data.q
        lam = data.relative_factor_sparse(theta)       # small products: one BLAS thread too
        vcov_b = np.asarray((lam @ (lam @ vcov_x[:q, :q]).T).T)
    singular = _check_fit(spec, theta, opt, converged, variance is not None)
    u, beta = objective.split(e["x"])
    # coxme's df: p + q − tr(H̃⁻¹ P) in b-space, P = Σ⁻¹; = p + q − tr(vcov_u)
    diagonal = np.isfinite(spec.theta_lower())
    df_pen = (spec.p + q - float(np.trace(vcov_x[:q, :q])) if np.all(theta[diagonal] > 0)
              else float(spec.p))
    return CoxmeFit(spec=spec, data=data, theta=np.asarray(theta, float), beta=beta.copy(),
                    u=u.copy(), vcov_beta=vcov_x[q:, q:], vcov_b=vcov_b,
                    loglik_integrated=-e["f"], loglik_penalized=e["ppl"],
                    loglik_fitted=e["loglik"], loglik_null=base["loglik_null"],
                    loglik_coxph=base["loglik"], beta_coxph=base["beta"],
                    n_events=int(np.sum(spec.status * (spec.weights > 0))), nobs=spec.n,
                    df_penalized=df_pen, opt=opt, converged=converged, is_singular=singular,
                    fixed_variance=variance is not None, objective=objective,
                    timing={"optimize": t_opt - t0, "total": time.perf_counter() - t0})
