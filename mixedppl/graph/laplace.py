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

__all__ = ["laplace_functions", "design_inputs"]


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
    return dict(M=M, eta=eta, mu=mu, ll=ll, g=g, g_u=g_u, H=H, w=w, A=A, ldL2=ldL2, G=g + ldL2)


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


def _build_outer(ells, family, link, K: int = 1):
    s = _symbols(len(ells))
    p = _pieces(s, ells, family, link)
    D = p["G"] if K == 1 else _agq_deviance(s, p, family, link, K)
    D_u = pt.grad(D, s["u"])
    v = disconnected_grad(pt.linalg.solve(p["H"], D_u, assume_a="sym"))
    obj = D - v @ p["g_u"]
    grads = pt.grad(obj, [s["theta"], s["beta"], s["phi"]], disconnected_inputs="ignore")
    return _inputs(s), [D, *grads]


def _build_estimates(ells, family, link):
    s = _symbols(len(ells))
    p = _pieces(s, ells, family, link)
    return _inputs(s), [p[k] for k in ("G", "g", "ldL2", "ll", "eta", "mu", "A")]


def laplace_functions(family, link, ells: tuple[int, ...], nAGQ: int = 1) -> dict:
    """Compiled ``inner`` (g, ∂g/∂u, ∂²g/∂u²), ``outer`` (D, ∂D/∂θ, ∂D/∂β, ∂D/∂φ) and
    ``estimates``.

    All take ``(u, θ, β, φ, y, n, offset, X, J_1…J_K, Z_1…Z_K)``; they are cached per (family,
    link, term widths), so every dataset with that structure reuses them. With ``nAGQ > 1`` (one
    scalar term only) ``outer`` is the adaptive Gauss–Hermite deviance and its exact gradient.
    """
    key = ("glmm-laplace", family.key, link.name, tuple(ells))
    return {
        "inner": compiled(key + ("inner",), lambda: _build_inner(ells, family, link),
                          kind="fast_run_c"),
        "outer": compiled(key + ("outer", nAGQ), lambda: _build_outer(ells, family, link, nAGQ),
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
