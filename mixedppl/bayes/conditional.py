r"""Random effects of the marginalised LMM: exact draws from :math:`p(b \mid y, \beta, \theta, \sigma)`,
and the pointwise log-likelihood conditional on them.

With :math:`b = \Lambda_\theta u`, :math:`M = \Lambda_\theta^\top Z^\top W Z\Lambda_\theta + I` and
:math:`h = \Lambda_\theta^\top Z^\top W (y - o - X\beta)`, the conditional of the spherical random
effects is Gaussian (Bates et al. 2015, eq. 13–16 at a given β):

.. math:: u \mid y, \beta, \theta, \sigma \sim N(M^{-1}h,\ \sigma^2 M^{-1}),
   \qquad u = L^{-\top}(L^{-1}h + \sigma\varepsilon),\ \varepsilon \sim N(0, I),\ M = LL^\top .

:math:`L` is formed blockwise as in the REML graph (:mod:`mixedppl.graph.lmm`), from the same
cross-product blocks (:mod:`mixedppl.graph.crossprod`): term 1's block
:math:`M_{11} = \operatorname{diag}_g(T_1^\top A_{11,g}T_1 + I)` has one ℓ×ℓ Cholesky factor per
level (batched); with :math:`C = \Lambda_1^\top A_{1R}\Lambda_R` (sparse) and
:math:`K = L_{11}^{-1}C`, the other terms' factor is the Cholesky factor of the dense Schur
complement :math:`\Lambda_R^\top A_{RR}\Lambda_R + I - K^\top K`. One draw per posterior draw;
with one term the draws are one batched NumPy computation over all posterior draws.

The pointwise log-likelihood stored for LOO / WAIC is conditional on the drawn b,
:math:`\log N(y_i \mid x_i\beta + z_i b + o_i, \sigma^2/w_i)`, as the explicit sampler's (and
bambi's, brms'): the marginal density does not factor over rows.

References
----------
Bates, Mächler, Bolker & Walker (2015). Fitting linear mixed-effects models using lme4.
J. Stat. Softw. 67(1), section 3.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..graph.crossprod import crossproducts
from ..graph.lmm import LMMStructure
from ..graph.lmm_inputs import lambda_layout
from ..graph.lmm_partial import PartialBlocks
from ..spec.model_spec import ModelSpec
from ..spec.reterm import lower_triangle_pairs

__all__ = ["ConditionalRE", "theta_draws", "pointwise_loglik"]


def theta_draws(spec: ModelSpec, sd: list, corr: list, sigma: np.ndarray) -> np.ndarray:
    """θ draws (S, n_θ), lme4's layout, from the SD draws (S, ℓ_k), correlation draws
    (S, ℓ_k, ℓ_k) of every term and σ (S,): :math:`T_k = \\operatorname{diag}(sd)\\,
    \\operatorname{chol}(R)/\\sigma`.

    Examples
    --------
    >>> import numpy as np, mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> theta_draws(spec, [np.array([[20.0, 5.0]])], [np.array([[[1, .6], [.6, 1]]])],
    ...             np.array([10.0])).round(3).tolist()
    [[2.0, 0.3, 0.4]]
    """
    parts = []
    for t, s, r in zip(spec.terms, sd, corr):
        chol = np.asarray(s).reshape(len(sigma), t.n_cols)[:, :, None] * np.linalg.cholesky(r)
        rows, cols = zip(*lower_triangle_pairs(t.n_cols))
        parts.append(chol[:, list(rows), list(cols)] / sigma[:, None])
    return np.concatenate(parts, axis=1)


class ConditionalRE:
    """The blocks needed to draw b | y, β, θ, σ for one model (formed once; see module docstring).

    Examples
    --------
    >>> import numpy as np, mixedppl as mp
    >>> spec = mp.Model("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff")).spec
    >>> cre = ConditionalRE(spec)
    >>> b = cre.draw(np.array([[1527.5]]), np.array([[0.8]]), np.array([49.5]), np.zeros((1, 6)))
    >>> b[0].shape
    (1, 6, 1)
    """

    def __init__(self, spec: ModelSpec, partial: PartialBlocks | None = None):
        self.partial = partial
        spec = partial.sub if partial is not None else spec
        self.spec = spec
        self.cp = cp = crossproducts(spec)
        self.t1, self.rest = spec.terms[0], spec.terms[1:]
        self.ell1, self.G1 = self.t1.n_cols, self.t1.n_levels
        self.n_t1 = self.ell1 * (self.ell1 + 1) // 2
        self.q1 = self.ell1 * self.G1
        self.q = sum(t.q for t in spec.terms)
        self.t1_rows, self.t1_cols = map(list, zip(*lower_triangle_pairs(self.ell1)))
        if self.rest:
            structure = LMMStructure(self.ell1, tuple(t.n_cols for t in self.rest), "dense")
            lam_row, lam_col, lam_theta = lambda_layout(
                structure, [t.n_levels for t in self.rest])[:3]
            self.lam = (lam_row, lam_col, lam_theta)
            self.qR = cp.ARR.shape[0]
            self.A1R = cp.AR1.T.tocsr()
        if partial is not None:
            self._C1E = partial.C1E.tocsr()
            self._CRE = partial.CRE.tocsr() if partial.CRE is not None else None

    def _h_parts(self, beta: np.ndarray, b_sampled: np.ndarray | None):
        """Z₁ᵀW(y − o − Xβ − Z_E b_E) as (G, ℓ) and, with other terms, Z_RᵀW(y − o − Xβ −
        Z_E b_E) (q_R,); b_E the sampled terms' effects of a partial marginal (else none)."""
        p = self.spec.p
        v = np.concatenate([-beta, [1.0]])
        c1 = self.cp.A1F @ v if p else self.cp.A1F[:, :, -1]
        cR = (self.cp.ARF @ v) if self.rest else None
        if b_sampled is not None:
            c1 = c1 - (self._C1E @ b_sampled).reshape(c1.shape)
            cR = cR - self._CRE @ b_sampled if self.rest else None
        return c1.reshape(self.G1, self.ell1), cR

    def draw(self, beta: np.ndarray, theta: np.ndarray, sigma: np.ndarray,
             eps: np.ndarray, b_sampled: np.ndarray | None = None) -> list[np.ndarray]:
        r"""b draws per term, each (S, G_k, ℓ_k), for S parameter draws.

        Parameters
        ----------
        beta : (S, p); theta : (S, n_θ); sigma : (S,)
        eps : (S, q)
            Standard normal draws (ε in the module docstring), in u's order: term 1
            level-major, then the other terms. ``eps = 0`` gives the conditional means.
        b_sampled : (S, q_E), optional
            With ``partial``: the sampled terms' random effects of each draw (flat, as
            :class:`~mixedppl.graph.lmm_partial.PartialBlocks` orders them); the draws are then
            of the marginalised terms only (θ theirs), given these.
        """
        if not self.rest:
            return [self._draw_one_term(beta, theta, sigma, eps, b_sampled)]
        out = [np.empty((len(sigma), t.n_levels, t.n_cols)) for t in self.spec.terms]
        for s in range(len(sigma)):
            bs = None if b_sampled is None else b_sampled[s]
            for k, b in enumerate(self._draw_blocked(beta[s], theta[s], sigma[s], eps[s], bs)):
                out[k][s] = b
        return out

    def _T1(self, theta: np.ndarray) -> np.ndarray:
        """(S, ℓ, ℓ) relative factors of term 1."""
        T = np.zeros(theta.shape[:-1] + (self.ell1, self.ell1))
        T[..., self.t1_rows, self.t1_cols] = theta[..., :self.n_t1]
        return T

    def _draw_one_term(self, beta, theta, sigma, eps, b_sampled=None) -> np.ndarray:
        S, G, ell = len(sigma), self.G1, self.ell1
        T = self._T1(theta)                                           # (S, ℓ, ℓ)
        p = self.spec.p
        c1 = self.cp.A1F[None, :, :, -1] - (np.einsum("gac,sc->sga", self.cp.A1F[:, :, :p], beta)
                                            if p else 0.0)            # (S, G, ℓ)
        if b_sampled is not None:
            c1 = c1 - (self._C1E @ b_sampled.T).T.reshape(S, G, ell)
        h = np.einsum("sba,sgb->sga", T, c1)                          # T1ᵀ c
        B = np.einsum("sba,gbc,scd->sgad", T, self.cp.A11, T) + np.eye(ell)
        L = np.linalg.cholesky(B)                                     # (S, G, ℓ, ℓ)
        v = _tri_solve(L, h, lower=True)
        w = v + sigma[:, None, None] * eps.reshape(S, G, ell)
        u = _tri_solve(np.swapaxes(L, -1, -2), w, lower=False)
        return np.einsum("sab,sgb->sga", T, u)                        # b_g = T1 u_g

    def _draw_blocked(self, beta, theta, sigma, eps, b_sampled=None) -> list[np.ndarray]:
        G, ell, q1, qR = self.G1, self.ell1, self.q1, self.qR
        T1 = self._T1(theta)
        lam_row, lam_col, lam_theta = self.lam
        LamR = sp.csr_matrix((theta[lam_theta], (lam_row, lam_col)), shape=(qR, qR))
        Lam1 = sp.bsr_matrix((np.broadcast_to(T1, (G, ell, ell)).copy(), np.arange(G),
                              np.arange(G + 1)), shape=(q1, q1))
        B = np.einsum("ba,gbc,cd->gad", T1, self.cp.A11, T1) + np.eye(ell)
        L11 = np.linalg.cholesky(B)
        L11inv = sp.bsr_matrix((np.linalg.inv(L11), np.arange(G), np.arange(G + 1)),
                               shape=(q1, q1))
        C = (Lam1.T @ self.A1R @ LamR).tocsr()                        # Λ₁ᵀ A_1R Λ_R
        K = (L11inv @ C).tocsr()
        LamRt = LamR.T.tocsr()
        D = LamRt @ np.asarray(LamRt @ self.cp.ARR).T + np.eye(qR)
        Sch = D - (K.T @ K).toarray()
        L22 = np.linalg.cholesky(Sch)
        c1, cR = self._h_parts(beta, b_sampled)
        h1 = np.einsum("ba,gb->ga", T1, c1).ravel()
        h2 = LamRt @ cR
        v1 = L11inv @ h1
        v2 = sla.solve_triangular(L22, h2 - K.T @ v1, lower=True)
        w1, w2 = v1 + sigma * eps[:q1], v2 + sigma * eps[q1:]
        u2 = sla.solve_triangular(L22, w2, lower=True, trans="T")
        u1 = L11inv.T @ (w1 - K @ u2)
        b1 = np.einsum("ab,gb->ga", T1, u1.reshape(G, ell))
        bR = LamR @ u2
        out, start = [b1], 0
        for t in self.rest:
            out.append(bR[start:start + t.q].reshape(t.n_levels, t.n_cols))
            start += t.q
        return out


def _tri_solve(L: np.ndarray, rhs: np.ndarray, lower: bool) -> np.ndarray:
    """Solve the batched triangular systems L x = rhs (L: (..., ℓ, ℓ), rhs: (..., ℓ)) by
    substitution over the small ℓ (vectorised over every leading axis)."""
    ell = L.shape[-1]
    x = np.zeros_like(rhs)
    order = range(ell) if lower else range(ell - 1, -1, -1)
    for i in order:
        acc = rhs[..., i] - np.einsum("...j,...j->...", L[..., i, :], x)
        x[..., i] = acc / L[..., i, i]
    return x


def pointwise_loglik(spec: ModelSpec, beta: np.ndarray, b_terms: list[np.ndarray],
                     sigma: np.ndarray) -> np.ndarray:
    r"""(S, n) :math:`\log N(y_i \mid x_i\beta + z_i b + o_i, \sigma^2/w_i)` for S draws.

    Examples
    --------
    >>> import numpy as np, mixedppl as mp
    >>> spec = mp.Model("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff")).spec
    >>> ll = pointwise_loglik(spec, np.array([[1527.5]]), [np.zeros((1, 6, 1))], np.array([50.]))
    >>> ll.shape
    (1, 30)
    """
    eta = beta @ spec.X.T + spec.offset
    for t, b in zip(spec.terms, b_terms):
        eta = eta + np.einsum("ra,sra->sr", t.z, b[:, t.codes, :])
    w = spec.weights
    var = sigma[:, None] ** 2 / w[None, :]
    return -0.5 * (np.log(2 * np.pi * var) + (spec.y[None, :] - eta) ** 2 / var)
