"""Independent answers for the randomized optimum tests: dense NumPy objectives and brute force.

Nothing here uses mixedppl's graphs or optimiser. Each objective is written from its definition:

* LMM: the profiled REML / ML deviance from the dense n×n marginal covariance
  ``V(θ) = W⁻¹ + Z Λ(θ) Λ(θ)ᵀ Zᵀ`` (σ² profiled out; Bates et al. 2015, eqs. 34–42, written
  without the penalised least-squares trick): with ``r² = (y − Xβ̂)ᵀV⁻¹(y − Xβ̂)`` and β̂ the GLS
  estimate, ``d_ML = log|V| + n(1 + log(2π r²/n))`` and
  ``d_REML = log|V| + log|XᵀV⁻¹X| + (n − p)(1 + log(2π r²/(n − p)))``.
* GLMM / CLMM with one scalar random intercept: the exact marginal deviance
  ``−2 Σ_j log ∫ Π_{i∈j} p(y_i | η_i + θu) φ(u) du``, the integral by the trapezoid rule on a fixed
  fine grid of u (no adaptation, no Gauss–Hermite), and lme4's Laplace deviance per group
  ``L_j(û) + log(1 + θ² Σ_{i∈j} w_i)`` with ``L_j(u) = −2 Σ log p(y_i | η_i) + u²``, û by a
  vectorised Newton iteration (canonical links, where the observed and expected weights agree).

The brute-force minimiser is a grid over θ followed by local refinement; β (and thresholds) are
minimised for each θ (a convex problem for these log-concave likelihoods).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import optimize, special, stats

# ---------------------------------------------------------------------------------------------
# LMM


def dense_Z(spec) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Dense Z (n × q), columns level-major per term, and each term's (q offset, ℓ)."""
    n = spec.n
    blocks, layout, off = [], [], 0
    for t in spec.terms:
        G, ell = t.n_levels, t.n_cols
        Zk = np.zeros((n, G * ell))
        for j in range(ell):
            Zk[np.arange(n), t.codes * ell + j] = t.z[:, j]
        blocks.append(Zk)
        layout.append((off, ell))
        off += G * ell
    return np.hstack(blocks), layout


def lambda_matrix(spec, theta: np.ndarray) -> np.ndarray:
    """Λ(θ) = blockdiag(I_G ⊗ T_k), with T_k lower triangular filled column-major from θ_k."""
    mats, start = [], 0
    for t in spec.terms:
        ell = t.n_cols
        T = np.zeros((ell, ell))
        pairs = [(i, j) for j in range(ell) for i in range(j, ell)]
        for (i, j), v in zip(pairs, theta[start:start + len(pairs)]):
            T[i, j] = v
        mats.append(np.kron(np.eye(t.n_levels), T))
        start += len(pairs)
    q = sum(m.shape[0] for m in mats)
    L = np.zeros((q, q))
    o = 0
    for m in mats:
        L[o:o + len(m), o:o + len(m)] = m
        o += len(m)
    return L


class DenseLMM:
    """Profiled REML / ML deviance of an LMM from the dense marginal covariance."""

    def __init__(self, spec, reml: bool = True):
        self.spec, self.reml = spec, reml
        self.Z, _ = dense_Z(spec)
        self.y, self.X = spec.y - spec.offset, spec.X
        self.w = spec.weights

    def __call__(self, theta) -> float:
        theta = np.asarray(theta, float)
        n, p = self.X.shape
        Lam = lambda_matrix(self.spec, theta)
        ZL = self.Z @ Lam
        V = np.diag(1.0 / self.w) + ZL @ ZL.T
        c = np.linalg.cholesky(V)
        ldV = 2 * np.sum(np.log(np.diag(c)))
        Xs = np.linalg.solve(c, self.X)
        ys = np.linalg.solve(c, self.y)
        beta, *_ = np.linalg.lstsq(Xs, ys, rcond=None)
        r2 = float(np.sum((ys - Xs @ beta) ** 2))
        if self.reml:
            ldX = np.linalg.slogdet(Xs.T @ Xs)[1]
            return float(ldV + ldX + (n - p) * (1 + np.log(2 * np.pi * r2 / (n - p))))
        return float(ldV + n * (1 + np.log(2 * np.pi * r2 / n)))


def theta_grid(spec, per_axis: int) -> np.ndarray:
    """Grid points over θ: diagonals in [0, 4] (0 included), off-diagonals in [−3, 3]."""
    axes = []
    for lo in spec.theta_lower():
        if lo == 0:
            axes.append(np.concatenate([[0.0], np.geomspace(0.01, 4.0, per_axis - 1)]))
        else:
            axes.append(np.linspace(-3.0, 3.0, per_axis))
    return np.array(list(itertools.product(*axes)))


def brute_minimum(f, spec, per_axis: int | None = None, n_refine: int = 4) -> tuple[float, np.ndarray]:
    """Minimum of f(θ) over θ: a grid, then Nelder–Mead from the best grid points.

    Diagonal entries of T enter f only through Λ(θ)Λ(θ)ᵀ, so f is defined for any real θ and
    every covariance matrix is reached; the refinement is therefore unconstrained and the
    minimum is reported at |θ| on the diagonal (any sign gives the same value).
    """
    k = spec.n_theta
    per_axis = per_axis or {1: 120, 2: 30, 3: 12}.get(k, 7)
    grid = theta_grid(spec, per_axis)
    vals = np.array([f(t) for t in grid])
    best_f, best_x = np.inf, None
    for i in np.argsort(vals)[:n_refine]:
        if k == 1:
            lo, hi = max(grid[i, 0] * 0.3 - 0.05, -0.05), grid[i, 0] * 2 + 0.05
            r = optimize.minimize_scalar(lambda t: f(np.array([t])), bounds=(lo, hi),
                                         method="bounded", options={"xatol": 1e-10})
            x, fx = np.array([r.x]), r.fun
        else:
            r = optimize.minimize(f, grid[i], method="Nelder-Mead",
                                  options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000,
                                           "maxfev": 20000})
            x, fx = r.x, r.fun
        for cand, fc in ((x, fx), (grid[i], vals[i])):
            if fc < best_f:
                best_f, best_x = float(fc), np.array(cand, float)
    lower = spec.theta_lower()
    best_x[lower == 0] = np.abs(best_x[lower == 0])
    return best_f, best_x


# ---------------------------------------------------------------------------------------------
# GLMM / CLMM with one scalar random intercept

U_GRID = np.linspace(-8.0, 8.0, 401)
LOG_PHI = stats.norm.logpdf(U_GRID)


def binomial_loglik(y, n_trials):
    """log p(y | η) for binomial counts (logit link), with the binomial coefficient."""
    const = special.gammaln(n_trials + 1) - special.gammaln(y + 1) - special.gammaln(n_trials - y + 1)

    def ll(eta):
        shape = (-1,) + (1,) * (np.ndim(eta) - 1)
        return (const.reshape(shape) + y.reshape(shape) * eta
                - n_trials.reshape(shape) * np.logaddexp(0.0, eta))
    return ll


def poisson_loglik(y):
    """log p(y | η) for Poisson counts (log link)."""
    const = -special.gammaln(y + 1)

    def ll(eta):
        shape = (-1,) + (1,) * (np.ndim(eta) - 1)
        return const.reshape(shape) + y.reshape(shape) * eta - np.exp(eta)
    return ll


def cumulative_logit_loglik(y_codes, K):
    """log p(y = k | η) = log(F(α_k − η) − F(α_{k−1} − η)), logistic F; α passed with η."""
    def ll(eta, alpha):
        a = np.concatenate([[-np.inf], alpha, [np.inf]])
        shape = (-1,) + (1,) * (np.ndim(eta) - 1)
        upper, lower = a[y_codes + 1].reshape(shape), a[y_codes].reshape(shape)
        # log(F(u) − F(l)) = log F(u) + log(1 − exp(log F(l) − log F(u))), stably
        log_fu = -np.logaddexp(0.0, -(upper - eta))
        log_fl = -np.logaddexp(0.0, -(lower - eta))
        return log_fu + np.log1p(-np.exp(np.minimum(log_fl - log_fu, -1e-300)))
    return ll


def exact_deviance(loglik_rows, codes, G, eta_fixed, theta) -> float:
    """−2 Σ_j log ∫ Π_{i∈j} p(y_i | η_i + θu) φ(u) du by the trapezoid rule on U_GRID."""
    eta = eta_fixed[:, None] + theta * U_GRID[None, :]            # n × m
    lp = loglik_rows(eta)                                          # n × m
    member = np.zeros((G, len(codes)))
    member[codes, np.arange(len(codes))] = 1.0
    per_group = member @ lp + LOG_PHI[None, :]
    du = U_GRID[1] - U_GRID[0]
    m = per_group.max(axis=1, keepdims=True)
    w = np.full(len(U_GRID), du)
    w[[0, -1]] = du / 2
    return float(-2 * np.sum(m[:, 0] + np.log(np.exp(per_group - m) @ w)))


def laplace_deviance(y, n_trials, family, codes, G, eta_fixed, theta, iters=60) -> float:
    """lme4's Laplace deviance for one scalar random intercept (canonical links)."""
    u = np.zeros(G)
    for _ in range(iters):
        eta = eta_fixed + theta * u[codes]
        mu, w = (n_trials * special.expit(eta), n_trials * special.expit(eta) * special.expit(-eta)) \
            if family == "binomial" else (np.exp(eta), np.exp(eta))
        grad = np.bincount(codes, weights=-(y - mu) * theta, minlength=G) + u
        hess = np.bincount(codes, weights=w * theta ** 2, minlength=G) + 1.0
        step = grad / hess
        u = u - step
        if np.max(np.abs(step)) < 1e-13:
            break
    eta = eta_fixed + theta * u[codes]
    ll = binomial_loglik(y, n_trials)(eta) if family == "binomial" else poisson_loglik(y)(eta)
    w = n_trials * special.expit(eta) * special.expit(-eta) if family == "binomial" else np.exp(eta)
    H = np.bincount(codes, weights=w * theta ** 2, minlength=G) + 1.0
    return float(-2 * ll.sum() + np.sum(u ** 2) + np.sum(np.log(H)))


def dense_laplace(ZL: np.ndarray, pieces) -> float:
    """lme4's Laplace deviance −2ℓ(û) + ûᵀû + log|(ZΛ)ᵀW(ZΛ) + I| with ZΛ dense.

    ``pieces(u)`` gives (ℓ per row, ∂ℓ/∂η, W = −∂²ℓ/∂η²) at η = fixed part + ZΛu; û by
    Newton's method.
    """
    u = np.zeros(ZL.shape[1])
    for _ in range(100):
        _, d1, w = pieces(u)
        H = ZL.T @ (w[:, None] * ZL) + np.eye(len(u))
        step = np.linalg.solve(H, -ZL.T @ d1 + u)
        u = u - step
        if np.max(np.abs(step)) < 1e-13:
            break
    ll, _, w = pieces(u)
    A = ZL.T @ (w[:, None] * ZL) + np.eye(len(u))
    return float(-2 * ll.sum() + u @ u + np.linalg.slogdet(A)[1])


def brute_minimum_glmm(dev_at, beta0, theta_grid_pts, grad_at=None) -> tuple[float, float, np.ndarray]:
    """min over (θ ≥ 0, β) of dev_at(θ, β).

    β is minimised by BFGS at each θ of a grid (warm-started along it; the problem in β is convex
    for log-concave likelihoods), then (θ, β) jointly by BFGS from the best grid point, with |θ|
    (the deviance is even in θ). ``grad_at(θ, β)`` gives ∂/∂β when available.
    """
    start = np.asarray(beta0, float)
    best = (np.inf, None, None)
    for theta in theta_grid_pts:
        jac = (lambda b, t=theta: grad_at(t, b)) if grad_at is not None else None
        r = optimize.minimize(lambda b, t=theta: dev_at(t, b), start, jac=jac, method="BFGS",
                              options={"gtol": 1e-6})
        start = r.x
        if r.fun < best[0]:
            best = (float(r.fun), float(theta), r.x.copy())
    f0, t0, b0 = best
    r = optimize.minimize(lambda z: dev_at(abs(z[0]), z[1:]), np.concatenate([[t0], b0]),
                          method="BFGS", options={"gtol": 1e-7})
    if r.fun < f0:
        return float(r.fun), abs(float(r.x[0])), r.x[1:]
    return f0, t0, b0
