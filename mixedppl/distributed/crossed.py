r"""A fast profiled deviance for crossed scalar terms with a large first term (``(1|a) + (1|b)``).

For a model whose first random-effects term has one column and whose other terms have one column
each (Λ_R = diag(λ)), the in-memory graph (:mod:`mixedppl.graph.lmm`) forms per evaluation the
Schur complement

.. math::

   S(\theta) = \Lambda_R (A_{RR} - C\,\mathrm{diag}(m)\,C^\top) \Lambda_R + I, \qquad
   m_j = \frac{t^2}{1 + t^2 d_j},

with :math:`C = Z_R^\top W Z_1` (q_R × G₁), :math:`d_j = (Z_1^\top W Z_1)_{jj}` and t the first
term's θ. For 10⁴ × 10³ crossed levels the product :math:`P = C\,\mathrm{diag}(m)\,C^\top` is
10¹⁰ multiply-adds, and its adjoint as many again: the whole cost of the θ fit.
:class:`CrossedScalarObjective` evaluates the same deviance, with its exact gradient written out
by hand (below), in one of two ways:

- **Chebyshev** (default when the spread of d allows it): :math:`m_j` is, for every t, a function
  :math:`g_t(d) = t^2/(1 + t^2 d)` of :math:`d_j` alone, analytic on :math:`[d_{min}, d_{max}]`
  with its only pole at :math:`d = -1/t^2 \le 0`. Its Chebyshev interpolant of degree K on that
  interval converges like :math:`\rho^{-K}` with :math:`\rho = a + \sqrt{a^2 - 1}`,
  :math:`a = (d_{max} + d_{min}) / (d_{max} - d_{min})` for every t (the pole is never nearer
  than 0; Trefethen 2013, thm 8.2), so K is chosen with :math:`\rho^{-K} \le 10^{-17}`, below
  rounding. Then :math:`P = \sum_k c_k(t) P_k` with :math:`P_k = C\,\mathrm{diag}(T_k(x))\,C^\top`
  formed *once* (K + 1 BLAS ``dsyrk`` products, the positive and negative parts of T_k
  separately) and each evaluation costs :math:`O(K q_R^2 + q_R^3)`; :math:`\partial P/\partial t`
  uses the interpolant of :math:`\partial g_t/\partial t` (exact derivative of the same
  interpolation, which is linear in the node values).
- **direct**: :math:`P` and :math:`\partial P/\partial t` by two ``dsyrk`` per evaluation
  (:math:`C\,\mathrm{diag}(\sqrt m)` and :math:`C\,\mathrm{diag}(\sqrt{|m'|})`), when the
  Chebyshev degree would exceed :data:`MAX_DEGREE` (counts per level spread over orders of
  magnitude).

The gradient. With :math:`F_0 = A_{FF} - \sum_j m_j a_j a_j^\top` (:math:`a_j` = row j of
:math:`Z_1^\top W F`), :math:`B_R = \Lambda_R (A_{RF} - Q)`, :math:`Q = C\,\mathrm{diag}(m) A_{1F}`,
:math:`K = S^{-1} B_R`, :math:`FF = F_0 - B_R^\top K`, the deviance is
:math:`D = \sum_j \log(1 + t^2 d_j) + \log|S| + \text{reml}\,\log|FF_{XX}| + \nu(1 + \log(2\pi r^2/\nu)) - \log|W|`
(ν = n − reml·p, :math:`r^2 = FF_{yy} - FF_{yX} FF_{XX}^{-1} FF_{Xy}`). Its adjoints:
:math:`\bar F = \text{reml}\,(FF_{XX}^{-1} \oplus 0) + (\nu / r^2)\, v v^\top` with
:math:`v = (-FF_{XX}^{-1} FF_{Xy}, 1)` (envelope theorem), :math:`\bar S = S^{-1} + K \bar F K^\top`,
:math:`\bar B_R = -2 K \bar F`; so
:math:`\partial D/\partial\lambda = 2(\bar S \circ H)\lambda + \mathrm{rowsum}(\bar B_R \circ E)`
(:math:`H = A_{RR} - P`, :math:`E = A_{RF} - Q`) and
:math:`\partial D/\partial t = \sum_j 2 t d_j / (1 + t^2 d_j) - \sum_j m'_j a_j^\top \bar F a_j
- \mathrm{tr}(\Lambda \bar S \Lambda\, \partial P) + 2\,\mathrm{tr}((\Lambda K \bar F)^\top \partial Q)`.
Everything but P is O(q_R³ + G₁ q_R m): milliseconds beside the product.

The estimates (β̂, modes, conditional variances) and the Satterthwaite parts are the in-memory
graphs' (one evaluation each): only the optimiser's many evaluations take this path.

References
----------
Bates, Mächler, Bolker & Walker (2015), J. Stat. Softw. 67(1), eqs. 34–42.
Trefethen (2013), *Approximation Theory and Approximation Practice*, SIAM, ch. 8.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.linalg.blas import dsyrk
from scipy.linalg.lapack import dpotri

from ..fit.lmm_objective import LMMObjective
from ..graph.crossprod import CrossProducts
from ..graph.lmm import LMMStructure
from ..spec.model_spec import ModelSpec

__all__ = ["CrossedScalarObjective", "crossed_scalar_applies", "chebyshev_degree",
           "MAX_DEGREE", "MIN_PRODUCT"]

#: Largest Chebyshev degree before the direct path is used (K + 1 q_R × q_R matrices are kept).
MAX_DEGREE = 48
#: Smallest q_R · G₁ for which :func:`~mixedppl.distributed.lmm.dask_objective` takes this path
#: (below it the compiled graph is as fast and is the in-memory fit itself).
MIN_PRODUCT = 2_000_000
_MAX_BYTES = 2e9


def crossed_scalar_applies(structure: LMMStructure) -> bool:
    """Whether the model has the shape this objective handles: a one-column first term and
    one-column other terms (at least one).

    Examples
    --------
    >>> crossed_scalar_applies(LMMStructure(1, (1, 1), "dense"))
    True
    >>> crossed_scalar_applies(LMMStructure(2, (1,), "dense"))
    False
    """
    return structure.ell1 == 1 and structure.r_mode != "none" and structure.rest_scalar


def chebyshev_degree(d_min: float, d_max: float, tol: float = 1e-17) -> int:
    """Degree K with :math:`\\rho^{-K} \\le` ``tol`` for the Chebyshev interpolant of
    :math:`t^2 / (1 + t^2 d)` on ``[d_min, d_max]`` (every t; ρ from the pole at 0).

    Examples
    --------
    >>> chebyshev_degree(900.0, 1100.0)
    15
    >>> chebyshev_degree(5.0, 5.0)
    1
    """
    if d_max <= d_min * (1 + 1e-12):
        return 1
    if d_min <= 0:
        return 10 ** 9
    a = (d_max + d_min) / (d_max - d_min)
    rho = a + np.sqrt(a * a - 1.0)
    return max(1, int(np.ceil(-np.log(tol) / np.log(rho))) + 1)


def _cheb_nodes(K: int) -> np.ndarray:
    """Chebyshev points of the first kind, x_i = cos(π(i + ½)/(K + 1))."""
    return np.cos(np.pi * (np.arange(K + 1) + 0.5) / (K + 1))


def _cheb_coefs(values: np.ndarray) -> np.ndarray:
    """Interpolation coefficients c_k (Σ c_k T_k) from the values at :func:`_cheb_nodes`
    (the discrete cosine transform, exact for degree ≤ K)."""
    K1 = values.shape[0]
    i = np.arange(K1) + 0.5
    T = np.cos(np.pi * np.outer(np.arange(K1), i) / K1)          # T_k(x_i)
    c = (2.0 / K1) * (T @ values)
    c[0] /= 2.0
    return c


def _syrk(A: np.ndarray) -> np.ndarray:
    """A Aᵀ (both triangles) by BLAS dsyrk; A Fortran-ordered (q × k)."""
    if A.shape[1] == 0:
        return np.zeros((A.shape[0], A.shape[0]))
    L = dsyrk(1.0, A, lower=1)
    return np.tril(L) + np.tril(L, -1).T


def _cho_inverse(L: np.ndarray) -> np.ndarray:
    """S⁻¹ from the lower Cholesky factor of S (LAPACK dpotri, both triangles)."""
    inv, info = dpotri(L, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dpotri failed ({info})")
    return np.tril(inv) + np.tril(inv, -1).T


class CrossedScalarObjective(LMMObjective):
    """The profiled REML / ML deviance of an LMM with crossed scalar terms, evaluated from the
    blocks with BLAS (see the module docstring); the same numbers as
    :class:`~mixedppl.fit.lmm_objective.LMMObjective` to rounding.

    Parameters
    ----------
    spec : ModelSpec
    reml : bool
    cp : CrossProducts
        The summed blocks.
    method : {"auto", "chebyshev", "direct"}
        How P(θ) is formed ("auto": Chebyshev when its degree is at most :data:`MAX_DEGREE`
        and its matrices fit in 2 GB).

    Examples
    --------
    >>> import mixedppl as mp
    >>> d = mp.datasets.load("Penicillin")
    >>> spec = mp.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", d).spec
    >>> fast, graph = CrossedScalarObjective(spec, cp=LMMObjective(spec).cp), LMMObjective(spec)
    >>> th = np.array([1.5, 3.0])
    >>> bool(np.isclose(fast(th)[0], graph(th)[0], rtol=1e-12, atol=0))
    True
    >>> fast.method
    'chebyshev'
    """

    def __init__(self, spec: ModelSpec, reml: bool = True, cp: CrossProducts | None = None,
                 method: str = "auto"):
        super().__init__(spec, reml=reml, cp=cp)
        if not crossed_scalar_applies(self.structure):
            raise ValueError("CrossedScalarObjective needs one-column random-effects terms "
                             f"(at least two); this model has {self.structure}")
        cp = self.cp
        self._d = np.ascontiguousarray(cp.A11[:, 0, 0])
        self._a = np.ascontiguousarray(cp.A1F[:, 0, :])                  # (G1, m)
        self._C = np.asfortranarray(cp.AR1.toarray())                    # (qR, G1)
        self._lam_theta = self.data[11]   # lmm_inputs: A11 … t1_cols, ARR, ARF, lam_row, lam_col, lam_theta
        qR = self._C.shape[0]
        K = chebyshev_degree(float(self._d.min()), float(self._d.max()))
        fits = (K + 1) * qR * qR * 8.0 <= _MAX_BYTES
        if method == "auto":
            method = "chebyshev" if K <= MAX_DEGREE and fits else "direct"
        if method not in ("chebyshev", "direct"):
            raise ValueError(f"method must be 'auto', 'chebyshev' or 'direct', not {method!r}")
        self.method, self.degree = method, (K if method == "chebyshev" else None)
        if method == "chebyshev":
            self._prepare_chebyshev(K)

    # -- P(t) and ∂P/∂t -------------------------------------------------------------------------
    def _prepare_chebyshev(self, K: int) -> None:
        lo, hi = float(self._d.min()), float(self._d.max())
        self._lo, self._hw = (hi + lo) / 2.0, max((hi - lo) / 2.0, 1e-300)
        self._nodes = self._lo + self._hw * _cheb_nodes(K)
        x = np.clip((self._d - self._lo) / self._hw, -1.0, 1.0) if hi > lo else \
            np.zeros_like(self._d)
        Tk = np.cos(np.outer(np.arange(K + 1), np.arccos(x)))            # T_k(x_j), (K+1, G1)
        C = self._C
        mats = []
        for t in Tk:
            pos, neg = t > 0, t < 0
            Pk = _syrk(np.asfortranarray(C[:, pos] * np.sqrt(t[pos])))
            if neg.any():
                Pk -= _syrk(np.asfortranarray(C[:, neg] * np.sqrt(-t[neg])))
            mats.append(Pk)
        self._Pk = np.stack(mats)                                        # (K+1, qR, qR)

    def _P(self, t: float, m: np.ndarray, dm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.method == "chebyshev":
            nd = self._nodes
            B = 1.0 + t * t * nd
            coefs = np.stack([_cheb_coefs(t * t / B), _cheb_coefs(2.0 * t / B ** 2)])
            both = np.tensordot(coefs, self._Pk, axes=1)                 # one read of the P_k
            return both[0], both[1]
        C = self._C
        P = _syrk(C * np.sqrt(m))
        dP = np.sign(t) * _syrk(C * np.sqrt(np.abs(dm)))
        return P, dP

    # -- the deviance and its gradient ---------------------------------------------------------
    @property
    def flops_per_eval(self) -> float:
        qR = float(self._C.shape[0])
        return qR ** 3 + (0.0 if self.method == "chebyshev" else 2 * qR * qR * self._C.shape[1])

    def compile(self) -> "CrossedScalarObjective":
        """Nothing to compile for the deviance (the estimates graph compiles on first use)."""
        return self

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """d(θ) and ∇d(θ)."""
        full, J = self.layout(theta)
        f, g = self._evaluate(full)
        return f, g if J is None else J.T @ g

    def _evaluate(self, full: np.ndarray) -> tuple[float, np.ndarray]:
        cp, d, a, C = self.cp, self._d, self._a, self._C
        t = float(full[0])
        lam = full[self._lam_theta]
        B1 = 1.0 + t * t * d
        m, dm = t * t / B1, 2.0 * t / B1 ** 2
        P, dP = self._P(t, m, dm)
        am, adm = a * m[:, None], a * dm[:, None]
        Q, dQ = C @ am, C @ adm                                          # (qR, mF)
        F0 = cp.AFF - a.T @ am
        H = cp.ARR - P
        E = cp.ARF - Q
        S = lam[:, None] * H * lam[None, :]
        S[np.diag_indices_from(S)] += 1.0
        try:
            cho = sla.cho_factor(S, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return np.inf, np.full(len(full), np.nan)
        ld_S = 2.0 * np.log(np.diag(cho[0])).sum()
        BR = lam[:, None] * E
        Kmat = sla.cho_solve(cho, BR, check_finite=False)
        FF = F0 - BR.T @ Kmat
        p = FF.shape[0] - 1
        reml = float(self._reml)
        nmp = cp.n - reml * p
        if p > 0:
            try:
                choX = sla.cho_factor(FF[:p, :p], lower=True, check_finite=False)
            except np.linalg.LinAlgError:
                return np.inf, np.full(len(full), np.nan)
            ldRX2 = 2.0 * np.log(np.diag(choX[0])).sum()
            beta = sla.cho_solve(choX, FF[:p, p], check_finite=False)
            XXinv = sla.cho_solve(choX, np.eye(p), check_finite=False)
        else:
            ldRX2, beta, XXinv = 0.0, np.zeros(0), np.zeros((0, 0))
        pwrss = FF[p, p] - FF[:p, p] @ beta
        if not pwrss > 0:
            return np.inf, np.full(len(full), np.nan)
        ld1 = np.log(B1).sum()
        dev = (ld1 + ld_S + reml * ldRX2 + nmp * (1.0 + np.log(2 * np.pi * pwrss / nmp))
               - cp.ldW)
        # adjoints
        v = np.append(-beta, 1.0)
        Fbar = (nmp / pwrss) * np.outer(v, v)
        Fbar[:p, :p] += reml * XXinv
        Sinv = _cho_inverse(cho[0])
        KF = Kmat @ Fbar
        Sbar = Sinv + KF @ Kmat.T
        BRbar = -2.0 * KF
        g_lam = 2.0 * ((Sbar * H) @ lam) + (BRbar * E).sum(axis=1)
        g = np.bincount(self._lam_theta, weights=g_lam, minlength=len(full)).astype(float)
        Pbar = -(lam[:, None] * Sbar * lam[None, :])
        Qbar = -(lam[:, None] * BRbar)
        g_t = ((2.0 * t * d / B1).sum() - np.einsum("jc,cd,jd->", adm, Fbar, a)
               + (Pbar * dP).sum() + (Qbar * dQ).sum())
        g[0] += g_t
        return float(dev), g
