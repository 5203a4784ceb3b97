r"""Kenward–Roger adjusted covariance of β̂ and denominator df, as pbkrtest 0.5-2.

The marginal covariance of y is linear in the variance/covariance parameters
:math:`\gamma = (\operatorname{vech}\Sigma_1, \dots, \operatorname{vech}\Sigma_K, \sigma^2)`:

.. math:: V(\gamma) = \sum_k Z_k (I_{G_k} \otimes \Sigma_k) Z_k^\top + \sigma^2 I
          = \sum_r \gamma_r G_r,

with :math:`G_r = Z_k (I \otimes E_{ij}) Z_k^\top` (:math:`E_{ij}` the symmetric unit matrix of the
entry) and :math:`G = I` for σ². With :math:`\Phi = (X^\top V^{-1} X)^{-1}` (``vcov``),
:math:`P_r = -X^\top V^{-1} G_r V^{-1} X`, :math:`Q_{rs} = X^\top V^{-1} G_r V^{-1} G_s V^{-1} X`,
the expected information :math:`I_{rs} = \operatorname{tr}(V^{-1}G_rV^{-1}G_s) - 2\operatorname{tr}
(\Phi Q_{rs}) + \operatorname{tr}(\Phi P_r \Phi P_s)` (halved) gives :math:`W = 2 I^{-1}` and

.. math:: \Phi_A = \Phi + 2\Phi\Big[\sum_{r,s} W_{rs}(Q_{rs} - P_r \Phi P_s)\Big]\Phi.

The df of a hypothesis :math:`L\beta = 0` (q rows) follow Kenward & Roger's moment matching
(pbkrtest's ``.KR_adjust`` / ``Lb_ddf``). Like pbkrtest, the parameters are plugged in at their REML
estimates whatever their position: a variance estimated as 0 stays in γ with its G_r.

References
----------
Kenward, M. G. & Roger, J. H. (1997). Small sample inference for fixed effects from restricted
maximum likelihood. Biometrics 53, 983–997.
Halekoh, U. & Højsgaard, S. (2014). A Kenward–Roger approximation and parametric bootstrap methods
for tests in linear mixed models – the R package pbkrtest. J. Stat. Softw. 59(9).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, sparse

from ..core.exceptions import ModelSpecError
from ..fit.records import LMMFit

__all__ = ["KRAdjusted", "kr_adjusted", "kr_ddf", "kr_coefficient_ddf", "kr_ftest", "KR_MAX_N"]

KR_MAX_N = 5000


@dataclass(frozen=True)
class KRAdjusted:
    """Φ (``vcov``), Φ_A (``vcovAdj``), the P_r matrices and W = 2·I⁻¹."""

    phi: np.ndarray
    phi_adj: np.ndarray
    P: list
    W: np.ndarray


_STEP = 1e-30    # complex step for ∂Σ/∂γ of a structured term


def _structured_derivatives(t, theta_k: np.ndarray, sigma: float):
    r"""γ_k, ∂Σ_k/∂γ_r (one ℓ×ℓ per parameter) and ∂²Σ_k/∂γ_r∂γ_s of a structured term.

    γ_k are the variances of its SDs and its correlation parameters on their natural scale
    (:meth:`~mixedppl.spec.covstruct.Covariance.gamma_covariance`); first derivatives by a
    complex step (exact), second ones by central differences of those (relative error ~1e-10).
    """
    cov = t.covariance
    psi = cov.to_psi(theta_k, sigma)
    gamma = np.concatenate([psi[:cov.n_sd] ** 2, psi[cov.n_sd:]])
    m = len(gamma)

    def first(g):
        out = []
        for r in range(m):
            gc = g.astype(complex)
            gc[r] += 1j * _STEP
            out.append(cov.gamma_covariance(gc).imag / _STEP)
        return out
    D = first(gamma)
    H = {}
    for r in range(m):
        h = 1e-5 * max(abs(gamma[r]), 1e-2)
        up, dn = gamma.copy(), gamma.copy()
        up[r] += h
        dn[r] -= h
        d_up, d_dn = first(up), first(dn)
        for s in range(m):
            H[r, s] = (d_up[s] - d_dn[s]) / (2 * h)
    for r in range(m):          # symmetrise the differences
        for s in range(r + 1, m):
            H[r, s] = H[s, r] = (H[r, s] + H[s, r]) / 2
    return gamma, D, H


def _blocks(record: LMMFit):
    """Per variance parameter: (sparse Z_k or None for the residual, ℓ, ∂Σ_k/∂γ_r) and its
    value; and the second derivatives ``{(r, s): (Z_k, ℓ, ∂²Σ_k/∂γ_r∂γ_s)}`` (nonzero only
    within a structured term: an unstructured Σ_k is linear in its entries).

    For lme4's ``(x | g)`` γ are the entries of Σ_k (∂Σ/∂γ the symmetric unit matrices, as
    pbkrtest); for a structured term the variances of its SDs and its correlation parameters
    (ρ of ``cs`` / ``ar1``, ``toep``'s partial autocorrelations)."""
    spec, out, gamma, second = record.spec, [], [], {}
    sigma = float(np.sqrt(record.scale))
    start = 0
    for t, S in zip(spec.terms, record.covs):
        ell = t.n_cols
        rows = np.repeat(np.arange(spec.n), ell)
        cols = (t.codes[:, None] * ell + np.arange(ell)[None, :]).ravel()
        Z = sparse.csr_matrix((t.z.ravel(), (rows, cols)), shape=(spec.n, t.q))
        theta_k = np.asarray(record.theta, float)[start:start + t.n_theta]
        start += t.n_theta
        if t.structured:
            g, D, H = _structured_derivatives(t, theta_k, sigma)
            base = len(out)
            out += [(Z, ell, d) for d in D]
            gamma += list(g)
            second.update({(base + r, base + s): (Z, ell, h) for (r, s), h in H.items()
                           if np.any(h != 0)})
            continue
        for i, j in t.theta_pairs():
            E = np.zeros((ell, ell))
            E[i, j] = E[j, i] = 1.0
            out.append((Z, ell, E))
            gamma.append(S[i, j])
    out.append((None, 1, np.ones((1, 1))))
    gamma.append(record.scale)
    return out, np.array(gamma), second


def _apply_e(M: np.ndarray, ell: int, D: np.ndarray) -> np.ndarray:
    """(I_G ⊗ D) M for M with rows level-major (g·ℓ + a), D symmetric ℓ×ℓ."""
    if ell == 1:
        return M * D[0, 0]
    M3 = M.reshape(-1, ell, M.shape[1])
    return np.einsum("ab,gbc->gac", D, M3).reshape(M.shape)


def _marginal_cov(record: LMMFit) -> np.ndarray:
    spec = record.spec
    V = np.eye(spec.n) * record.scale
    for t, S in zip(spec.terms, record.covs):
        same = t.codes[:, None] == t.codes[None, :]
        V += same * (t.z @ S @ t.z.T)
    return V


def _check(record: LMMFit) -> None:
    if not record.reml:
        raise ModelSpecError("Kenward-Roger's method is only available for REML model fits "
                             "(as lmerTest); refit with reml=True")
    if record.spec.n > KR_MAX_N:
        raise ModelSpecError(f"Kenward-Roger needs dense {record.spec.n}×{record.spec.n} matrices; "
                             f"it is limited to n ≤ {KR_MAX_N}: use ddf='Satterthwaite'")
    if not np.allclose(record.spec.weights, 1.0):
        raise ModelSpecError("Kenward-Roger (pbkrtest) is not defined for models with prior "
                             "weights; use ddf='Satterthwaite'")


def _trace_products(blocks, Sinv):
    """tr(V⁻¹G_r V⁻¹G_s) for all r, s, through W_km = Z_kᵀ V⁻¹ Z_m."""
    m = len(blocks)
    SZ = [Sinv if Z is None else np.asarray(Z.T @ Sinv).T for Z, *_ in blocks]  # V⁻¹ Z_k
    K = np.empty((m, m))
    for r, (Zr, lr, Dr) in enumerate(blocks):
        for s in range(r, m):
            Zs, ls, Ds = blocks[s]
            Wrs = SZ[s] if Zr is None else np.asarray(Zr.T @ SZ[s])   # Z_rᵀ V⁻¹ Z_s
            A = _apply_e(Wrs, lr, Dr)
            B = _apply_e(Wrs.T, ls, Ds).T
            K[r, s] = K[s, r] = np.sum(A * B)
    return K


def kr_adjusted(record: LMMFit) -> KRAdjusted:
    """pbkrtest's ``vcovAdj``: Φ_A with its P_r list and W (see the module docstring).

    Examples
    --------
    >>> import mixedppl as mp
    >>> pen = mp.datasets.load("penicillin")
    >>> fit = mp.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    >>> round(float(kr_adjusted(fit.record).phi_adj[0, 0]) ** 0.5, 4)
    0.8086
    """
    _check(record)
    X, phi = record.spec.X, np.asarray(record.vcov_beta)
    blocks, _, second = _blocks(record)
    cf = linalg.cho_factor(_marginal_cov(record))
    Sinv = linalg.cho_solve(cf, np.eye(record.spec.n))
    TT = Sinv @ X
    OO = [TT if Z is None else np.asarray(Z @ _apply_e(np.asarray(Z.T @ TT), ell, D))
          for Z, ell, D in blocks]
    P = [-(O.T @ TT + TT.T @ O) / 2 for O in OO]
    m = len(blocks)
    Q = [[OO[r].T @ Sinv @ OO[s] for s in range(m)] for r in range(m)]
    K = _trace_products(blocks, Sinv)
    info = np.array([[K[r, s] - 2 * np.sum(phi * Q[r][s]) + np.sum((phi @ P[r]) * (P[s] @ phi))
                      for s in range(m)] for r in range(m)])
    condi = np.min(np.abs(np.linalg.eigvalsh(info)))
    W = 2 * (np.linalg.inv(info) if condi > 1e-10 else np.linalg.pinv(info))
    W = (W + W.T) / 2
    U = sum(W[r, s] * (Q[r][s] - P[r] @ phi @ P[s]) for r in range(m) for s in range(m))
    for (r, s), (Z, ell, Hrs) in second.items():    # −¼ Σ W_rs R_rs, R_rs = XᵀV⁻¹(∂²V)V⁻¹X
        ZT = np.asarray(Z.T @ TT)
        U = U - 0.25 * W[r, s] * (ZT.T @ _apply_e(ZT, ell, Hrs))
    return KRAdjusted(phi=phi, phi_adj=phi + 2 * phi @ U @ phi, P=P, W=W)


def _a1_a2(adj: KRAdjusted, L: np.ndarray) -> tuple[float, float]:
    phi = adj.phi
    theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    u = [theta @ phi @ P @ phi for P in adj.P]
    tr = np.array([np.trace(x) for x in u])
    A1 = float(tr @ adj.W @ tr)
    A2 = float(sum(adj.W[i, j] * np.sum(u[i] * u[j].T)
                   for i in range(len(u)) for j in range(len(u))))
    return A1, A2


def _div_zero(x: float, y: float, tol: float = 1e-14) -> float:
    return 1.0 if abs(x) < tol and abs(y) < tol else x / y


def kr_ddf(adj: KRAdjusted, L: np.ndarray, q: int | None = None) -> tuple[float, float]:
    """Kenward–Roger denominator df and F scaling for ``L β = 0`` (pbkrtest's ``.KR_adjust``).

    ``q`` defaults to the rank of L (``Lb_ddf`` uses the number of rows; the same for full-rank L).
    """
    L = np.atleast_2d(np.asarray(L, float))
    q = int(np.linalg.matrix_rank(L)) if q is None else q
    A1, A2 = _a1_a2(adj, L)
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    den = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    V0, V1, V2 = 1 + c1 * B, 1 - c2 * B, 1 - c3 * B
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    rho = _div_zero(1 - A2 / q, V1) ** 2 * V0 / V2 / q
    df2 = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(df2 - 2) < 1e-2 else df2 * (1 - A2 / q) / (df2 - 2)
    return float(df2), float(scaling)


def kr_coefficient_ddf(adj: KRAdjusted) -> np.ndarray:
    """Kenward–Roger df of each coefficient's t test (pbkrtest's ``Lb_ddf`` on the rows of I_p)."""
    p = adj.phi.shape[0]
    return np.array([kr_ddf(adj, np.eye(p)[j:j + 1], q=1)[0] for j in range(p)])


def kr_ftest(adj: KRAdjusted, L: np.ndarray, beta: np.ndarray) -> dict:
    """KR F test of ``L β = 0``: unscaled Wald/q with Φ_A, scaling, df (pbkrtest ``KRmodcomp``)."""
    L = np.atleast_2d(np.asarray(L, float))
    q = int(np.linalg.matrix_rank(L))
    ddf, scaling = kr_ddf(adj, L, q)
    Lb = L @ beta
    wald = float(Lb @ np.linalg.solve(L @ adj.phi_adj @ L.T, Lb))
    return {"FstatU": wald / q, "ndf": q, "ddf": ddf, "F.scaling": scaling}
