"""The GLMM joint log-density and lme4's Laplace deviance as PyTensor graphs.

With spherical random effects u ~ N(0, I) and b = Λu, the linear predictor is
``η = Xβ + offset + ZΛu``; term k contributes ``z_k[i]·T_k u_{k,g(i)}`` (an index gather over the
level codes, written as the dense product with the level indicator ``J_k``). The penalised
deviance is ``g(u) = −2 log p(y | η, φ) + ‖u‖²`` and lme4's Laplace deviance at the conditional
mode û is

    D(θ, β, φ) = g(û) + log|L|²,   L Lᵀ = ΛᵀZᵀ W(û) ZΛ + I,

with W the IRLS (Fisher) weights (lme4) or the exact −∂² log p/∂η² (TMB / glmmTMB, ordinal's
clmm), as the family says (``family.hessian``). φ holds the family's extra parameters (log
dispersion; the thresholds of a cumulative link model); the family supplies the elementwise
``loglik(y, η, n, φ, link)``. The outer gradient is exact by the implicit function theorem: with
G(u, ψ) = g + log|L|², ψ = (θ, β, φ) and H = ∂²g/∂u²,

    dD/dψ = ∂G/∂ψ − ∂/∂ψ [vᵀ ∂g/∂u],   v = H⁻¹ ∂G/∂u held constant.

References
----------
Bates et al. (2015), J. Stat. Softw. 67(1), section 5 (GLMMs); lme4's ``vignette("PIRLSmod")``.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from ..fit.compile import compiled

__all__ = ["laplace_functions", "joint_functions", "design_inputs"]


def _T(theta_k, ell: int):
    """Lower-triangular T_k filled column-major from θ_k (as lme4)."""
    pairs = [(i, j) for j in range(ell) for i in range(j, ell)]
    rows, cols = [p[0] for p in pairs], [p[1] for p in pairs]
    return pt.set_subtensor(pt.zeros((ell, ell))[rows, cols], theta_k)


def _symbols(n_terms: int) -> dict:
    s = {name: pt.dvector(name) for name in ("u", "theta", "beta", "phi", "y", "ntr", "offset")}
    s["X"] = pt.dmatrix("X")
    s["J"] = [pt.dmatrix(f"J{k}") for k in range(n_terms)]
    s["Z"] = [pt.dmatrix(f"Z{k}") for k in range(n_terms)]
    return s


def _zlambda(s: dict, ells: tuple[int, ...]):
    """The dense n×q matrix ZΛ (level-major columns, as lme4's Zt)."""
    blocks, start = [], 0
    n = s["X"].shape[0]
    for k, ell in enumerate(ells):
        nt = ell * (ell + 1) // 2
        zT = s["Z"][k] @ _T(s["theta"][start:start + nt], ell)
        start += nt
        blocks.append((s["J"][k][:, :, None] * zT[:, None, :]).reshape((n, -1)))
    return blocks[0] if len(blocks) == 1 else pt.concatenate(blocks, axis=1)


def _logdet(A):
    """log|A| for SPD A whose first derivative is tr(A⁻¹ dA) with A⁻¹ held constant.

    The value comes from the Cholesky factor; the gradient graph avoids differentiating the
    factorisation (several q×q triangular solves) — only first derivatives of log|L|² are needed.
    """
    value = 2.0 * pt.log(pt.diag(pt.linalg.cholesky(A))).sum()
    Ainv = disconnected_grad(pt.linalg.inv(A))
    linear = pt.sum(Ainv * A)
    return disconnected_grad(value) + linear - disconnected_grad(linear)


def _pieces(s: dict, ells: tuple[int, ...], family, link) -> dict:
    """g, ∂g/∂u, ∂²g/∂u², G = g + log|L|² and the quantities needed at the optimum."""
    u = s["u"]
    M = _zlambda(s, ells)
    eta = s["X"] @ s["beta"] + s["offset"] + M @ u
    ll = family.loglik(s["y"], eta, s["ntr"], s["phi"], link)
    d1 = pt.grad(ll.sum(), eta)
    h = -pt.grad(d1.sum(), eta)
    eye = pt.eye(M.shape[1])
    g = -2.0 * ll.sum() + u @ u
    g_u = -2.0 * (M.T @ d1) + 2.0 * u
    H = 2.0 * (M.T @ (h[:, None] * M) + eye)
    if family.hessian == "fisher":
        w = family.fisher_weights(eta, s["ntr"], s["phi"], link)
        A = M.T @ (w[:, None] * M) + eye
    else:
        w, A = h, H / 2.0
    mu = link.linkinv(eta)
    ldL2 = _logdet(A)
    return dict(M=M, eta=eta, mu=mu, ll=ll, g=g, g_u=g_u, H=H, w=w, A=A, ldL2=ldL2, G=g + ldL2,
                d1=d1, h=h)


def _inputs(s: dict) -> list:
    return [s["u"], s["theta"], s["beta"], s["phi"], s["y"], s["ntr"], s["offset"], s["X"],
            *s["J"], *s["Z"]]


def _build_inner(ells, family, link):
    s = _symbols(len(ells))
    p = _pieces(s, ells, family, link)
    return _inputs(s), [p["g"], p["g_u"], p["H"]]


def _agq_deviance(s: dict, p: dict, family, link, K: int):
    """Adaptive Gauss–Hermite deviance for one scalar random-effect term (lme4's nAGQ = K).

    Per group i, with nodes ``u = û_i + σ_i z_k`` (σ_i = 1/L_ii, standard-normal GH rule (z_k, w_k)):
    ``D = −2 Σ_i [log σ_i + log Σ_k w_k exp(−g_i(u_k)/2 + z_k²/2)]`` (K = 1 gives the Laplace D).
    All constants of log p(y | u) are kept (lme4 drops the binomial saturated log-likelihood).
    """
    z, w = np.polynomial.hermite_e.hermegauss(K)
    w = w / w.sum()
    n = s["X"].shape[0]
    sigma = 1.0 / pt.sqrt(pt.diag(p["A"]))
    U = s["u"][:, None] + sigma[:, None] * z[None, :]
    eta = (s["X"] @ s["beta"] + s["offset"])[:, None] + p["M"] @ U
    ll = family.loglik(pt.repeat(s["y"], K), eta.ravel(), pt.repeat(s["ntr"], K), s["phi"],
                       link).reshape((n, K))
    gi = -2.0 * (s["J"][0].T @ ll) + U ** 2
    terms = np.log(w)[None, :] - gi / 2 + (z ** 2 / 2)[None, :]
    return -2.0 * (pt.logsumexp(terms, axis=1) + pt.log(sigma)).sum()


def _block_cholesky(A, G: int, ell: int) -> list[list]:
    """Cholesky factors of the G diagonal ℓ×ℓ blocks of A (level-major), unrolled: entry
    ``L[a][b]`` (a ≥ b) is a length-G vector (plain elementwise graph, cheap exact gradients)."""
    def block(a, b):
        return pt.diagonal(A[a::ell, b::ell])
    L = [[None] * ell for _ in range(ell)]
    for b in range(ell):
        diag = block(b, b) - sum((L[b][k] ** 2 for k in range(b)), start=0.0)
        L[b][b] = pt.sqrt(diag)
        for a in range(b + 1, ell):
            off = block(a, b) - sum((L[a][k] * L[b][k] for k in range(b)), start=0.0)
            L[a][b] = off / L[b][b]
    return L


def _agq_deviance_vector(s: dict, p: dict, family, link, K: int, ell: int):
    """Adaptive Gauss–Hermite deviance for one grouping factor with an ℓ-vector random effect.

    Per group i, with ``L_i L_iᵀ`` the ℓ×ℓ block of ``A = ΛᵀZᵀWZΛ + I`` and the product rule
    ``(z_k, w_k)`` of K^ℓ standard-normal nodes, the nodes are ``u_ik = û_i + L_i⁻ᵀ z_k`` and

        D = −2 Σ_i [−log|L_i| + log Σ_k w_k exp(−g_i(u_ik)/2 + ‖z_k‖²/2)],

    ``g_i = −2 log p(y_i | u) + ‖u‖²`` (Pinheiro & Bates 1995, J. Comput. Graph. Stat. 4(1);
    Liu & Pierce 1994, Biometrika 81(3)). K = 1 gives the Laplace D; ℓ = 1 the scalar rule.
    """
    z1, w1 = np.polynomial.hermite_e.hermegauss(K)
    w1 = w1 / w1.sum()
    grid = np.stack(np.meshgrid(*([z1] * ell), indexing="ij"), axis=-1).reshape(-1, ell)
    logw = np.sum(np.log(w1)[np.stack(np.meshgrid(*([np.arange(K)] * ell), indexing="ij"),
                                       axis=-1).reshape(-1, ell)], axis=1)
    nk = grid.shape[0]
    n = s["X"].shape[0]
    J = s["J"][0]
    G = J.shape[1]
    L = _block_cholesky(p["A"], G, ell)
    uhat = s["u"].reshape((G, ell))
    # back substitution Lᵀ x = z for every group (rows) and node (columns)
    x = [None] * ell
    for a in reversed(range(ell)):
        rhs = pt.as_tensor_variable(grid[:, a])[None, :] - sum(
            (L[b][a][:, None] * x[b] for b in range(a + 1, ell)), start=0.0)
        x[a] = rhs / L[a][a][:, None]
    U = [uhat[:, a][:, None] + x[a] for a in range(ell)]          # ℓ × (G, nk)
    zT = s["Z"][0] @ _T(s["theta"], ell)                           # (n, ℓ)
    eta = (s["X"] @ s["beta"] + s["offset"])[:, None] + sum(
        (zT[:, a][:, None] * (J @ U[a]) for a in range(ell)), start=0.0)
    ll = family.loglik(pt.repeat(s["y"], nk), eta.ravel(), pt.repeat(s["ntr"], nk), s["phi"],
                       link).reshape((n, nk))
    gi = -2.0 * (J.T @ ll) + sum((Ua ** 2 for Ua in U), start=0.0)
    terms = logw[None, :] - gi / 2 + (np.sum(grid ** 2, axis=1) / 2)[None, :]
    logdet = sum((pt.log(L[a][a]) for a in range(ell)), start=0.0)
    return -2.0 * (pt.logsumexp(terms, axis=1) - logdet).sum()


def _build_outer(ells, family, link, K: int = 1, vector_rule: bool = False):
    s = _symbols(len(ells))
    p = _pieces(s, ells, family, link)
    if K == 1:
        D = p["G"]
    elif vector_rule or ells[0] > 1:
        D = _agq_deviance_vector(s, p, family, link, K, ells[0])
    else:
        D = _agq_deviance(s, p, family, link, K)
    D_u = pt.grad(D, s["u"])
    v = disconnected_grad(pt.linalg.solve(p["H"], D_u, assume_a="sym"))
    obj = D - v @ p["g_u"]
    grads = pt.grad(obj, [s["theta"], s["beta"], s["phi"]], disconnected_inputs="ignore")
    return _inputs(s), [D, *grads]


def _build_estimates(ells, family, link):
    s = _symbols(len(ells))
    p = _pieces(s, ells, family, link)
    return _inputs(s), [p[k] for k in ("G", "g", "ldL2", "ll", "eta", "mu", "A")]


def _joint_blocks(s: dict, p: dict, weights):
    """The (u, β) matrix ``[[MᵀWM + c·I, MᵀWX], [XᵀWM, XᵀWX]]`` for per-row weights W."""
    X, M = s["X"], p["M"]
    MX = M.T @ (weights[:, None] * X)
    top = pt.concatenate([M.T @ (weights[:, None] * M) + pt.eye(M.shape[1]), MX], axis=1)
    bottom = pt.concatenate([MX.T, X.T @ (weights[:, None] * X)], axis=1)
    return pt.concatenate([top, bottom], axis=0)


def _build_inner_joint(ells, family, link):
    """g and its gradient and Hessian over (u, β) jointly (PIRLS with β inside, nAGQ = 0)."""
    s = _symbols(len(ells))
    p = _pieces(s, ells, family, link)
    grad = pt.concatenate([p["g_u"], -2.0 * (s["X"].T @ p["d1"])])
    return _inputs(s), [p["g"], grad, 2.0 * _joint_blocks(s, p, p["h"])]


def _build_outer_joint(ells, family, link):
    """lme4's nAGQ = 0 deviance D₀(θ) = G(û(θ), β̂(θ), θ) and its exact gradient over θ (and φ).

    (û, β̂) minimise g jointly, so by the implicit function theorem
    ``dD₀/dθ = ∂G/∂θ − vᵀ ∂/∂θ [∂g/∂(u, β)]`` with ``v = H_(u,β)⁻¹ ∂G/∂(u, β)`` held constant.
    """
    s = _symbols(len(ells))
    p = _pieces(s, ells, family, link)
    D = p["G"]
    grad_g = pt.concatenate([p["g_u"], -2.0 * (s["X"].T @ p["d1"])])
    D_ub = pt.concatenate(pt.grad(D, [s["u"], s["beta"]]))
    Hj = 2.0 * _joint_blocks(s, p, p["h"])
    v = disconnected_grad(pt.linalg.solve(Hj, D_ub, assume_a="sym"))
    obj = D - v @ grad_g
    grads = pt.grad(obj, [s["theta"], s["phi"]], disconnected_inputs="ignore")
    return _inputs(s), [D, *grads]


def _build_fisher_joint(ells, family, link):
    """The joint (u, β) matrix with the family's IRLS weights: its inverse's ββ block is lme4's
    ``(R_XᵀR_X)⁻¹`` (``pp$unsc()``), the nAGQ = 0 covariance of β̂."""
    s = _symbols(len(ells))
    p = _pieces(s, ells, family, link)
    return _inputs(s), [_joint_blocks(s, p, p["w"])]


def joint_functions(family, link, ells: tuple[int, ...]) -> dict:
    """Compiled functions for lme4's ``nAGQ = 0`` (β estimated inside the penalised IRLS).

    ``inner``: (g, ∂g/∂(u, β), ∂²g/∂(u, β)²); ``outer``: (D₀, ∂D₀/∂θ, ∂D₀/∂φ) at the joint mode;
    ``fisher``: the joint matrix with IRLS weights (see :func:`_build_fisher_joint`). Same inputs
    as :func:`laplace_functions`.
    """
    key = ("glmm-joint", family.key, link.name, tuple(ells))
    return {
        "inner": compiled(key + ("inner",), lambda: _build_inner_joint(ells, family, link),
                          kind="fast_run_c"),
        "outer": compiled(key + ("outer",), lambda: _build_outer_joint(ells, family, link),
                          kind="fast_run_c"),
        "fisher": compiled(key + ("fisher",), lambda: _build_fisher_joint(ells, family, link),
                           kind="fast_compile"),
    }


def laplace_functions(family, link, ells: tuple[int, ...], nAGQ: int = 1,
                      vector_rule: bool = False) -> dict:
    """Compiled ``inner`` (g, ∂g/∂u, ∂²g/∂u²), ``outer`` (D, ∂D/∂θ, ∂D/∂β, ∂D/∂φ) and
    ``estimates``.

    All take ``(u, θ, β, φ, y, n, offset, X, J_1…J_K, Z_1…Z_K)``; they are cached per (family,
    link, term widths), so every dataset with that structure reuses them. With ``nAGQ > 1`` (one
    grouping factor only) ``outer`` is the adaptive Gauss–Hermite deviance and its exact
    gradient: the scalar rule for an intercept-only term, the product rule in the adapted
    coordinates for a vector term (``vector_rule=True`` forces it for ℓ = 1, as a check).
    """
    key = ("glmm-laplace", family.key, link.name, tuple(ells))
    return {
        "inner": compiled(key + ("inner",), lambda: _build_inner(ells, family, link),
                          kind="fast_run_c"),
        "outer": compiled(key + ("outer", nAGQ, vector_rule),
                          lambda: _build_outer(ells, family, link, nAGQ, vector_rule),
                          kind="fast_run_c"),
        "estimates": compiled(key + ("estimates",), lambda: _build_estimates(ells, family, link),
                              kind="fast_compile"),
    }


def design_inputs(spec, y: np.ndarray, ntr: np.ndarray) -> list[np.ndarray]:
    """The data inputs (y, n, offset, X, J_k…, Z_k…) of the compiled functions, in order."""
    Js = []
    for t in spec.terms:
        J = np.zeros((spec.n, t.n_levels))
        J[np.arange(spec.n), t.codes] = 1.0
        Js.append(J)
    return [np.asarray(y, float), np.asarray(ntr, float), np.asarray(spec.offset, float),
            np.asarray(spec.X, float), *Js, *[np.asarray(t.z, float) for t in spec.terms]]
