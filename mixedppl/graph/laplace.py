"""The GLMM joint log-density and lme4's Laplace deviance as PyTensor graphs.

With spherical random effects u ~ N(0, I) and b = Λu, the linear predictor is
``η = Xβ + offset + ZΛu``; term k contributes ``z_k[i]·T_k u_{k,g(i)}`` (an index gather over the
level codes: ZΛ is never formed, and its transpose products are scatter-adds). The penalised
deviance is ``g(u) = −2 log p(y | η, φ) + ‖u‖²`` and lme4's Laplace deviance at the conditional
mode û is

    D(θ, β, φ) = g(û) + log|L|²,   L Lᵀ = ΛᵀZᵀ W(û) ZΛ + I,

with W the IRLS (Fisher) weights (lme4) or the exact −∂² log p/∂η² (TMB / glmmTMB, ordinal's
clmm), as the family says (``family.hessian``). φ holds the family's extra parameters (log
dispersion; the thresholds of a cumulative link model); the family supplies the elementwise
``loglik(y, η, n, φ, link)``. The outer gradient is exact by the implicit function theorem: with
G(u, ψ) = g + log|L|², ψ = (θ, β, φ) and H = ∂²g/∂u²,

    dD/dψ = ∂G/∂ψ − ∂/∂ψ [vᵀ ∂g/∂u],   v = H⁻¹ ∂G/∂u held constant.

LLᵀ and H are held in MixedModels.jl's blocked form (:class:`~mixedppl.graph.laplace_blocks.Blocked`): the first term's block
is block diagonal, a (G₁, ℓ₁, ℓ₁) stack inverted by one batched op
(:func:`~mixedppl.graph.ops.batched_spd_inverse`; elementwise when ℓ₁ = 1); only the Schur
complement of the other terms is dense. Nothing costs O(n·q²) (grouseticks, q = 584: a Laplace
evaluation went from dense q×q products and inverses to a 181×181 dense block).

Graph keys (docs/compile.md)
----------------------------
The graph is *structure-generic*: the number of terms, their widths and level counts and where
each θ sits are data inputs (:mod:`mixedppl.graph.laplace_inputs`). The first term enters through
its codes and ``Z₁`` (n × ℓ₁, ℓ₁ read from the input's shape), θ → T₁ by an index map; all other
terms are one sparse ``(ZΛ)_R`` given as non-zero (row, column) vectors whose values are θ
gathered by an index map and scaled by Z's entries. One compiled function per
``(family.key, link, r_mode, ℓ₁ = 1)`` — ``r_mode`` ``"none"`` (one term), ``"dense"`` or ``"pairs"``
(the Schur block's product from rows sharing a level of term 1), :meth:`LaplaceStructure.graph_key`
— serves every formula: six graphs per family and link, where the term widths tuple made every
new random-effects structure compile anew. Adaptive Gauss–Hermite (``nAGQ > 1``, one term) adds
ℓ₁ and nAGQ to the key (its product rule is unrolled over the K^ℓ₁ nodes).

These fused graphs are the C tier. On the NumPy tier (the first fit of a structure, and every
fit without a C compiler) the Laplace ``inner`` / ``outer`` functions and the ``estimates`` are
composed of a per-(family, link) graph of per-row η-derivatives and family-free structure
graphs shared by every family and by one- and two-term models
(:mod:`mixedppl.graph.laplace_split`): a new family compiles one small graph, a new structure
usually nothing.

References
----------
Bates et al. (2015), J. Stat. Softw. 67(1), section 5 (GLMMs); lme4's ``vignette("PIRLSmod")``.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from ..core.compile import compiled
from .laplace_blocks import Blocked, SparseZL, graph_inputs, symbols
from .laplace_inputs import LaplaceStructure, design_inputs, laplace_structure, row_pairs
from .laplace_split import estimates_function, split_functions
from .merged_grad import grad as merged_grad
from .smallmat import bchol

__all__ = ["laplace_functions", "joint_functions", "design_inputs", "row_pairs",
           "laplace_structure", "LaplaceStructure"]


def _pieces(s: dict, family, link) -> dict:
    """g, ∂g/∂u, G = g + log|L|² (with L in blocked form) and what the optimum needs."""
    u = s["u"]
    D = SparseZL(s)
    eta = s["X"] @ s["beta"] + s["offset"] + D.times(u)
    ll = family.loglik(s["y"], eta, s["ntr"], s["phi"], link, **s["aux"])
    d1 = merged_grad(ll.sum(), eta)
    h = -merged_grad(d1.sum(), eta)
    g = -2.0 * ll.sum() + u @ u
    g_u = -2.0 * D.t_times(d1) + 2.0 * u
    if family.hessian == "fisher":
        w = family.fisher_weights(eta, s["ntr"], s["phi"], link)
    else:
        w = h
    A = Blocked(s, D, w)
    mu = link.linkinv(eta)
    ldL2 = A.logdet()
    return dict(D=D, eta=eta, mu=mu, ll=ll, g=g, g_u=g_u, w=w, h=h, A=A, ldL2=ldL2,
                G=g + ldL2, d1=d1)


def _build_inner(key: tuple, family, link):
    """(g, ∂g/∂u, Newton step (H + λI)⁻¹ ∂g/∂u); inputs ``(λ, *graph_inputs)``."""
    s = symbols(*key[:2], family)
    p = _pieces(s, family, link)
    Hb = Blocked(s, p["D"], p["h"], lam=s["lam"] / 2.0)
    step = Hb.solve(p["g_u"]) / 2.0
    return [s["lam"], *graph_inputs(s)], [p["g"], p["g_u"], step]


def _agq_deviance(s: dict, p: dict, family, link, K: int):
    """Adaptive Gauss–Hermite deviance for one scalar random-effect term (lme4's nAGQ = K).

    Per group i, with nodes ``u = û_i + σ_i z_k`` (σ_i = 1/L_ii, standard-normal GH rule (z_k, w_k)):
    ``D = −2 Σ_i [log σ_i + log Σ_k w_k exp(−g_i(u_k)/2 + z_k²/2)]`` (K = 1 gives the Laplace D).
    All constants of log p(y | u) are kept (lme4 drops the binomial saturated log-likelihood).
    """
    z, w = np.polynomial.hermite_e.hermegauss(K)
    w = w / w.sum()
    n = s["X"].shape[0]
    codes = s["codes1"]
    sigma = 1.0 / pt.sqrt(p["A"].A11[:, 0, 0])
    U = s["u"][:, None] + sigma[:, None] * z[None, :]
    eta = (s["X"] @ s["beta"] + s["offset"])[:, None] + p["D"].V1[:, 0][:, None] * U[codes]
    ll = family.loglik(pt.repeat(s["y"], K), eta.ravel(), pt.repeat(s["ntr"], K), s["phi"],
                       link).reshape((n, K))
    gi = -2.0 * pt.zeros((s["sizes"][0], K))[codes].inc(ll) + U ** 2
    terms = np.log(w)[None, :] - gi / 2 + (z ** 2 / 2)[None, :]
    return -2.0 * (pt.logsumexp(terms, axis=1) + pt.log(sigma)).sum()


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
    codes, G = s["codes1"], s["sizes"][0]
    A11 = p["A"].A11
    L = bchol([[A11[:, a, b] for b in range(ell)] for a in range(ell)], ell)
    uhat = s["u"].reshape((G, ell))
    # back substitution Lᵀ x = z for every group (rows) and node (columns)
    x = [None] * ell
    for a in reversed(range(ell)):
        rhs = pt.as_tensor_variable(grid[:, a])[None, :] - sum(
            (L[b][a][:, None] * x[b] for b in range(a + 1, ell)), start=0.0)
        x[a] = rhs / L[a][a][:, None]
    U = [uhat[:, a][:, None] + x[a] for a in range(ell)]          # ℓ × (G, nk)
    V = p["D"].V1
    eta = (s["X"] @ s["beta"] + s["offset"])[:, None] + sum(
        (V[:, a][:, None] * U[a][codes] for a in range(ell)), start=0.0)
    ll = family.loglik(pt.repeat(s["y"], nk), eta.ravel(), pt.repeat(s["ntr"], nk), s["phi"],
                       link).reshape((n, nk))
    gi = -2.0 * pt.zeros((G, nk))[codes].inc(ll) + sum((Ua ** 2 for Ua in U), start=0.0)
    terms = logw[None, :] - gi / 2 + (np.sum(grid ** 2, axis=1) / 2)[None, :]
    logdet = sum((pt.log(L[a][a]) for a in range(ell)), start=0.0)
    return -2.0 * (pt.logsumexp(terms, axis=1) - logdet).sum()


def _newton_blocked(s: dict, p: dict, family, with_X: bool = False) -> Blocked:
    """½ ∂²g/∂u² (or over (u, β) jointly) in blocked form."""
    if not with_X and family.hessian != "fisher":
        return p["A"]
    return Blocked(s, p["D"], p["h"], with_X=with_X)


def _build_outer(key: tuple, family, link, K: int = 1, vector_rule: bool = False):
    s = symbols(*key[:2], family)
    p = _pieces(s, family, link)
    if K == 1:
        D = p["G"]
    elif vector_rule or key[2] > 1:
        D = _agq_deviance_vector(s, p, family, link, K, key[2])
    else:
        D = _agq_deviance(s, p, family, link, K)
    D_u = merged_grad(D, s["u"])
    v = disconnected_grad(_newton_blocked(s, p, family).solve(D_u) / 2.0)
    obj = D - v @ p["g_u"]
    grads = merged_grad(obj, [s["theta"], s["beta"], s["phi"]], disconnected_inputs="ignore")
    return graph_inputs(s), [D, *grads]


def _joint_grad(s: dict, p: dict):
    """∂g/∂(u, β)."""
    return pt.concatenate([p["g_u"], -2.0 * (s["X"].T @ p["d1"])])


def _build_inner_joint(key: tuple, family, link):
    """g, its gradient over (u, β) jointly and the Newton step (PIRLS with β inside, nAGQ = 0);
    inputs ``(λ, *graph_inputs)``."""
    s = symbols(*key[:2], family)
    p = _pieces(s, family, link)
    grad = _joint_grad(s, p)
    Hb = Blocked(s, p["D"], p["h"], with_X=True, lam=s["lam"] / 2.0)
    return [s["lam"], *graph_inputs(s)], [p["g"], grad, Hb.solve(grad) / 2.0]


def _build_outer_joint(key: tuple, family, link):
    """lme4's nAGQ = 0 deviance D₀(θ) = G(û(θ), β̂(θ), θ) and its exact gradient over θ (and φ).

    (û, β̂) minimise g jointly, so by the implicit function theorem
    ``dD₀/dθ = ∂G/∂θ − vᵀ ∂/∂θ [∂g/∂(u, β)]`` with ``v = H_(u,β)⁻¹ ∂G/∂(u, β)`` held constant.
    """
    s = symbols(*key[:2], family)
    p = _pieces(s, family, link)
    D = p["G"]
    D_ub = pt.concatenate(merged_grad(D, [s["u"], s["beta"]]))
    v = disconnected_grad(_newton_blocked(s, p, family, with_X=True).solve(D_ub) / 2.0)
    obj = D - v @ _joint_grad(s, p)
    grads = merged_grad(obj, [s["theta"], s["phi"]], disconnected_inputs="ignore")
    return graph_inputs(s), [D, *grads]


def _build_fisher_joint(key: tuple, family, link):
    """The joint (u, β) matrix ``[[ΛᵀZᵀWZΛ + I, ΛᵀZᵀWX], [XᵀWZΛ, XᵀWX]]`` with the family's IRLS
    weights, dense: its inverse's ββ block is lme4's ``(R_XᵀR_X)⁻¹`` (``pp$unsc()``), the
    nAGQ = 0 covariance of β̂."""
    s = symbols(*key[:2], family)
    p = _pieces(s, family, link)
    return graph_inputs(s), [Blocked(s, p["D"], p["w"], with_X=True).dense()]


def _structure(structure) -> LaplaceStructure:
    """A :class:`LaplaceStructure`, also from a tuple of term widths (dense Schur product)."""
    if isinstance(structure, LaplaceStructure):
        return structure
    ells = tuple(structure)
    return LaplaceStructure("none" if len(ells) == 1 else "dense", int(ells[0]))


def joint_functions(family, link, structure) -> dict:
    """Compiled functions for lme4's ``nAGQ = 0`` (β estimated inside the penalised IRLS).

    ``structure``: a :class:`LaplaceStructure` (``r_mode`` ``"none"`` or ``"dense"``) or the
    term widths. ``inner``: (g, ∂g/∂(u, β), Newton step (H + λI)⁻¹∂g/∂(u, β)), inputs
    ``(λ, ...)``; ``outer``: (D₀, ∂D₀/∂θ, ∂D₀/∂φ) at the joint mode; ``fisher``: the joint matrix
    with IRLS weights (see :func:`_build_fisher_joint`). Otherwise the inputs of
    :func:`laplace_functions`.

    Examples
    --------
    >>> from mixedppl.families import get_family
    >>> fns = joint_functions(*get_family("binomial", "logit"), (1,))
    >>> sorted(fns)
    ['fisher', 'inner', 'outer']
    """
    gk = _structure(structure).graph_key()
    if gk[0] == "pairs":
        raise ValueError("nAGQ = 0 uses the dense Schur product (r_mode 'none' or 'dense')")
    key = ("glmm-joint", family.key, link.name, gk)
    return {
        "inner": compiled(key + ("inner",), lambda: _build_inner_joint(gk, family, link),
                          kind="fast_run_c"),
        "outer": compiled(key + ("outer",), lambda: _build_outer_joint(gk, family, link),
                          kind="fast_run_c"),
        "fisher": compiled(key + ("fisher",), lambda: _build_fisher_joint(gk, family, link),
                           kind="fast_compile"),
    }


def laplace_functions(family, link, structure, nAGQ: int = 1,
                      vector_rule: bool = False) -> dict:
    """Compiled ``inner`` (g, ∂g/∂u, the Newton step (H + λI)⁻¹ ∂g/∂u with H = ∂²g/∂u²),
    ``outer`` (D, ∂D/∂θ, ∂D/∂β, ∂D/∂φ) and ``estimates`` (including the dense LLᵀ).

    ``structure`` is a :class:`LaplaceStructure` (:func:`laplace_structure`) or a tuple of
    term widths (then the Schur block's product is dense). On the NumPy tier ``inner`` and
    ``outer`` (``nAGQ = 1``), and ``estimates`` on every tier, are composed of the shared graphs
    of :mod:`mixedppl.graph.laplace_split`. All take ``(u, θ, β, φ, *data)``
    with the data of :func:`design_inputs` (``inner`` takes λ first); they are cached per
    (family, link, :meth:`LaplaceStructure.graph_key`), so every formula and dataset with that
    key reuses them. With ``nAGQ > 1`` (one grouping factor only) ``outer`` is the adaptive
    Gauss–Hermite deviance and its exact gradient: the scalar rule for an intercept-only term,
    the product rule in the adapted coordinates for a vector term (``vector_rule=True`` forces
    it for ℓ = 1, as a check).

    Examples
    --------
    >>> from mixedppl.families import get_family
    >>> fam, link = get_family("binomial", "logit")
    >>> a = laplace_functions(fam, link, (1,))
    >>> b = laplace_functions(fam, link, LaplaceStructure("none", 1))
    >>> a["outer"] is b["outer"]
    True
    """
    st = _structure(structure)
    gk = st.graph_key(nAGQ)
    key = ("glmm-laplace", family.key, link.name, gk[:2])
    composed: dict = {}

    def split(part: str):
        """The NumPy tier of ``part``: the composed functions, built once for both parts."""
        if nAGQ > 1 or vector_rule:
            return None

        def build():
            if not composed:
                composed.update(split_functions(family, link, st))
            return composed[part]
        return build

    return {
        "inner": compiled(key + ("inner",), lambda: _build_inner(gk, family, link),
                          kind="fast_run_c", numpy_build=split("inner")),
        "outer": compiled(key + ("outer", gk, nAGQ, vector_rule),
                          lambda: _build_outer(gk, family, link, nAGQ, vector_rule),
                          kind="fast_run_c", numpy_build=split("outer")),
        "estimates": estimates_function(family, link, st),
    }
