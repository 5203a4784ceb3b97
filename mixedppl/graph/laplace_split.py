"""The NumPy tier's Laplace functions, split into a family part and a family-free structure part.

The fused graphs of :mod:`mixedppl.graph.laplace` are compiled per (family, link, structure):
each new family, link or random-effects layout pays PyTensor's graph rewrites (1–3 s on two
cores) before its first number. On the NumPy tier the same functions are composed here from
graphs that each cover many models (docs/compile.md, "Sixth pass"):

* ``eta`` — η = Xβ + offset + ZΛu — and the **structure graphs** ``inner``, ``outer``,
  ``estimates``, which see the family only through per-row arrays: ℓ_i = log p(y_i | η_i, φ), its
  η-derivatives ℓ′ and h = −ℓ″, and the weights w of log|L|² with w′ = ∂w/∂η (w = h for the
  ``hessian="observed"`` families, the IRLS weights for ``"fisher"``). They are compiled once
  per ``(r_mode, ℓ₁ = 1)`` for every family and link; a one-term model uses the ``"dense"``
  layout with an empty second block (q_R = 0), so adding a second term reuses the one-term
  graph;
* the **family graph**: those per-row arrays, μ, and the φ-gradient of
  Σ_i a_ℓ,i ℓ_i + a_1,i ℓ′_i + a_h,i h_i + a_w,i w_i for given adjoints a (when only the
  arrays are wanted, only their nodes run: :func:`mixedppl.core.partial_call.first_outputs`),
  elementwise in η and compiled once per (family, link): a small graph whose rewrites take a
  fraction of a second.

Exactness. Inside a structure graph each family array q enters *linearised* about the current η,
``q + q′·(η − ⟦η⟧)`` with ⟦·⟧ held constant (``disconnected_grad``): the value is q, and the first
derivative with respect to anything η depends on (θ, β, u) is q′ ∂η, as in the fused graph. The
Laplace outer gradient only ever needs first derivatives of G = g + log|L|² and of vᵀ∂g/∂u
(v held constant, :func:`mixedppl.graph.laplace._build_outer`), so the composed gradient is the
fused one, term by term; the φ part is the chain rule through the adjoints,
``∂D/∂φ = Σ_i (∂D/∂q_i)(∂q_i/∂φ)``. Only rounding differs (tests/graph/
test_laplace_split.py: equal to 1e-10 on four families, and the gradient against central
differences of D on every family and link).

References
----------
Bates et al. (2015), J. Stat. Softw. 67(1), section 5; Kristensen et al. (2016), J. Stat. Softw.
70(5) (TMB: the Laplace gradient by the implicit function theorem).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from ..core.compile import compiled
from ..core.partial_call import first_outputs
from .laplace_blocks import INT_INPUTS, Blocked, SparseZL, symbols
from .laplace_inputs import LaplaceStructure, aux_names, input_names
from .merged_grad import grad as merged_grad

__all__ = ["split_functions", "estimates_function", "generic_mode"]

_KIND = "fast_run_numpy"


def _trusted(fn):
    """``fn`` with PyTensor's input checks off (``trust_input``): its callers here pass float64
    / int64 arrays of the right dimensions only (the checks were a fifth of a small GLMM's
    evaluation time, ~4 µs per input and call)."""
    fn.trust_input = True
    return fn


def _floats(*xs):
    return [np.asarray(x, dtype=float) for x in xs]


def generic_mode(structure: LaplaceStructure) -> str:
    """The structure graphs' layout for ``structure``: ``"pairs"`` stays, one term (``"none"``)
    becomes ``"dense"`` with an empty second block.

    Examples
    --------
    >>> generic_mode(LaplaceStructure("none", 1)), generic_mode(LaplaceStructure("pairs", 2))
    ('dense', 'pairs')
    """
    return "pairs" if structure.r_mode == "pairs" else "dense"


def _padding(r_mode: str) -> list[np.ndarray]:
    """Empty arrays for the second block's inputs of a one-term model in the dense layout."""
    extra = input_names("dense")[len(input_names(r_mode)):] if r_mode == "none" else []
    return [np.zeros(0, dtype=np.int64 if name in INT_INPUTS else float) for name in extra]


# -- family graphs ---------------------------------------------------------------------------

def _family_symbols(family) -> dict:
    s = {name: pt.dvector(name) for name in ("y", "eta", "ntr", "phi")}
    s["aux"] = {name: pt.dmatrix(name) for name in aux_names(family)}
    return s


def _family_inputs(s: dict) -> list:
    return [s["y"], s["eta"], s["ntr"], s["phi"], *s["aux"].values()]


def _family_arrays(s: dict, family, link) -> dict:
    """ℓ, ℓ′, h = −ℓ″, and the weights w of log|L|² with w′ = ∂w/∂η, all per row: w = h for
    ``hessian="observed"`` families (TMB, ordinal), the IRLS weights for ``"fisher"`` (lme4).
    A family with ``eta_derivatives`` (the cumulative link family) gives ℓ … ℓ‴ written out;
    the others are differentiated by PyTensor."""
    eta = s["eta"]
    if hasattr(family, "eta_derivatives"):             # written out by the family
        ll, d1, d2, d3 = family.eta_derivatives(s["y"], eta, s["ntr"], s["phi"], link,
                                                **s["aux"])
        h = -d2
        if family.hessian != "fisher":
            return dict(ll=ll, d1=d1, h=h, w=h, w_eta=-d3)
    else:
        ll = family.loglik(s["y"], eta, s["ntr"], s["phi"], link, **s["aux"])
        d1 = merged_grad(ll.sum(), eta)
        h = -merged_grad(d1.sum(), eta)
    w = family.fisher_weights(eta, s["ntr"], s["phi"], link) if family.hessian == "fisher" else h
    return dict(ll=ll, d1=d1, h=h, w=w, w_eta=merged_grad(w.sum(), eta))


#: The family arrays every structure graph takes, in order, and those with adjoints (w′ enters
#: the structure graphs linearly and has none).
ARRAYS = ("ll", "d1", "h", "w", "w_eta")
ADJOINTS = ("ll", "d1", "h", "w")


def _build_family(family, link):
    """The family arrays (:data:`ARRAYS`), μ, and ∂/∂φ Σ_i Σ_q a_q,i q_i for the adjoints a of
    :data:`ADJOINTS`: one graph, called with a = 0 for the arrays alone (the φ part shares its
    subexpressions, so one graph costs about what the gradient alone would)."""
    s = _family_symbols(family)
    a = _family_arrays(s, family, link)
    adj = [pt.dvector("a_" + k) for k in ADJOINTS]
    total = sum((pt.sum(ai * a[k]) for ai, k in zip(adj, ADJOINTS)), start=pt.constant(0.0))
    phi_grad = merged_grad(total, s["phi"], disconnected_inputs="ignore")
    return _family_inputs(s) + adj, [*(a[k] for k in ARRAYS), link.linkinv(s["eta"]), phi_grad]


# -- structure graphs ------------------------------------------------------------------------

def _structure_symbols(mode: str, ell1_scalar: bool) -> dict:
    s = symbols(mode, ell1_scalar)
    s["fam"] = {k: pt.dvector(k) for k in ARRAYS}
    return s


def _structure_inputs(s: dict) -> list:
    return [s["u"], s["theta"], s["beta"], *(s[n] for n in input_names(s["r_mode"]))]


def _structure_pieces(s: dict) -> dict:
    """g, ∂g/∂u, the blocked A = ΛᵀZᵀWZΛ + I and G = g + log|A| with the family arrays
    linearised about η (module docstring)."""
    D = SparseZL(s)
    f = s["fam"]
    eta = s["X"] @ s["beta"] + s["offset"] + D.times(s["u"])
    delta = eta - disconnected_grad(eta)
    ll = f["ll"] + f["d1"] * delta
    d1 = f["d1"] - f["h"] * delta
    w = f["w"] + f["w_eta"] * delta
    u = s["u"]
    g = -2.0 * ll.sum() + u @ u
    g_u = -2.0 * D.t_times(d1) + 2.0 * u
    A = Blocked(s, D, w)
    ldL2 = A.logdet()
    return dict(D=D, eta=eta, g=g, g_u=g_u, A=A, ldL2=ldL2, G=g + ldL2)


def _build_eta(mode: str, ell1_scalar: bool):
    s = symbols(mode, ell1_scalar)
    D = SparseZL(s)
    return _structure_inputs(s), [s["X"] @ s["beta"] + s["offset"] + D.times(s["u"])]


def _build_structure_inner(mode: str, ell1_scalar: bool):
    """(g, ∂g/∂u, (H + λI)⁻¹ ∂g/∂u / 2) from ℓ, ℓ′, h; inputs ``(λ, u, θ, β, *data, ℓ, ℓ′, h)``."""
    s = symbols(mode, ell1_scalar)
    ll, d1, h = pt.dvector("ll"), pt.dvector("d1"), pt.dvector("h")
    D = SparseZL(s)
    u = s["u"]
    g = -2.0 * ll.sum() + u @ u
    g_u = -2.0 * D.t_times(d1) + 2.0 * u
    step = Blocked(s, D, h, lam=s["lam"] / 2.0).solve(g_u) / 2.0
    return [s["lam"], *_structure_inputs(s), ll, d1, h], [g, g_u, step]


def _build_structure_outer(mode: str, ell1_scalar: bool):
    """D, ∂D/∂θ, ∂D/∂β and the adjoints of ℓ, ℓ′, h, w for the φ chain rule. The implicit-
    function term's Newton matrix is built from h (for ``hessian="observed"`` families w = h, so
    it is A again: one graph serves both kinds, at the price of that second block build)."""
    s = _structure_symbols(mode, ell1_scalar)
    p = _structure_pieces(s)
    D = p["G"]
    D_u = merged_grad(D, s["u"])
    v = disconnected_grad(Blocked(s, p["D"], s["fam"]["h"]).solve(D_u) / 2.0)
    obj = D - v @ p["g_u"]
    f = s["fam"]
    grads = merged_grad(obj, [s["theta"], s["beta"], *(f[k] for k in ADJOINTS)],
                        disconnected_inputs="ignore")
    return _structure_inputs(s) + list(f.values()), [D, *grads]


def _build_structure_estimates(mode: str, ell1_scalar: bool):
    s = _structure_symbols(mode, ell1_scalar)
    p = _structure_pieces(s)
    return _structure_inputs(s) + list(s["fam"].values()), [
        p["G"], p["g"], p["ldL2"], p["eta"], p["A"].dense()]


# -- composition -----------------------------------------------------------------------------

class _Parts:
    """The compiled pieces for one (family, link, structure) and how data are split among them."""

    def __init__(self, family, link, structure: LaplaceStructure):
        mode, scalar = generic_mode(structure), structure.ell1 == 1
        self.family = family
        self.n_struct = len(input_names(structure.r_mode))
        self.padding = _padding(structure.r_mode)
        self.n_aux = len(aux_names(family))
        fkey = ("glmm-family", family.key, link.name)
        skey = ("glmm-structure", mode, scalar)
        self.eta = _trusted(compiled(skey + ("eta",), lambda: _build_eta(mode, scalar),
                                     kind=_KIND))
        self.family_fn = _trusted(compiled(fkey, lambda: _build_family(family, link),
                                           kind=_KIND))
        self.skey, self.mode, self.scalar = skey, mode, scalar
        # the inner loop needs ℓ, ℓ′, h; the outer function the arrays; the estimates μ too:
        # only those nodes run (not the φ part, which the outer function's second call needs)
        self._first = {k: first_outputs(self.family_fn, k)
                       for k in (3, len(ARRAYS), len(ARRAYS) + 1)}

    def split(self, data: tuple) -> tuple[list, list]:
        """(structure data in the generic layout, the family's aux designs)."""
        n = self.n_struct
        return list(data[:n]) + self.padding, list(data[n:n + self.n_aux])

    def family_at(self, u, theta, beta, phi, data, n_out: int = len(ARRAYS)):
        """(structure data, family inputs, the family graph's first ``n_out`` outputs: the
        arrays of :data:`ARRAYS`, then μ) at (u, θ, β, φ)."""
        sdata, aux = self.split(data)
        (eta,) = self.eta(u, theta, beta, *sdata)
        fin = [sdata[0], eta, sdata[1], phi, *aux]
        return sdata, fin, self._first[n_out](*fin)


def split_functions(family, link, structure: LaplaceStructure) -> dict:
    """``inner`` and ``outer`` with the signatures of
    :func:`~mixedppl.graph.laplace.laplace_functions` (``(λ, u, θ, β, φ, *data)`` and
    ``(u, θ, β, φ, *data)``), composed of the family and structure graphs (module docstring).

    Examples
    --------
    >>> import numpy as np, mixedppl as mp
    >>> from mixedppl.glmm_api import glmm_model
    >>> from mixedppl.graph.laplace_inputs import design_inputs, laplace_structure
    >>> f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    >>> spec, fam, link, y, n = glmm_model(f, mp.datasets.load("cbpp"), "binomial")
    >>> fns = split_functions(fam, link, laplace_structure(spec))
    >>> D, g_theta, g_beta, g_phi = fns["outer"](np.zeros(15), np.array([0.64]),
    ...     np.array([-1.4, -1.0, -1.1, -1.6]), np.zeros(0), *design_inputs(spec, y, n))
    >>> g_beta.shape, g_phi.shape
    ((4,), (0,))
    """
    parts = _Parts(family, link, structure)
    mode, scalar = parts.mode, parts.scalar
    s_inner = _trusted(compiled(parts.skey + ("inner",),
                                lambda: _build_structure_inner(mode, scalar), kind=_KIND))
    # PyTensor's fast_compile rewrites for the structure's outer graph: it holds no family
    # derivatives to cancel (they come in as arrays), so fast_run's canonicalisation buys ~15 %
    # per evaluation for twice the rewriting (cbpp: 1.3 → 0.65 s once; 0.76 → 0.87 ms a call)
    s_outer = _trusted(compiled(parts.skey + ("outer",),
                                lambda: _build_structure_outer(mode, scalar),
                                kind="fast_compile"))
    n_phi = int(family.n_phi)

    def inner(lam, u, theta, beta, phi, *data):
        lam, u, theta, beta, phi = _floats(lam, u, theta, beta, phi)
        sdata, _, arrays = parts.family_at(u, theta, beta, phi, data, 3)
        return s_inner(lam, u, theta, beta, *sdata, *arrays)

    def outer(u, theta, beta, phi, *data):
        u, theta, beta, phi = _floats(u, theta, beta, phi)
        sdata, fin, arrays = parts.family_at(u, theta, beta, phi, data)
        D, g_theta, g_beta, *adjoints = s_outer(u, theta, beta, *sdata, *arrays)
        g_phi = parts.family_fn(*fin, *adjoints)[-1] if n_phi else np.zeros(0)
        return D, np.asarray(g_theta), np.asarray(g_beta), np.asarray(g_phi, float)

    return {"inner": inner, "outer": outer}


def estimates_function(family, link, structure: LaplaceStructure):
    """``estimates(u, θ, β, φ, *data)`` → (D, g, log|L|², ℓ per row, η, μ, LLᵀ dense), as
    :func:`~mixedppl.graph.laplace.laplace_functions` returns, from the family and structure
    graphs: a new family or structure compiles only its own small graph.

    Examples
    --------
    >>> import numpy as np, mixedppl as mp
    >>> from mixedppl.glmm_api import glmm_model
    >>> from mixedppl.graph.laplace_inputs import design_inputs, laplace_structure
    >>> f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    >>> spec, fam, link, y, n = glmm_model(f, mp.datasets.load("cbpp"), "binomial")
    >>> est = estimates_function(fam, link, laplace_structure(spec))
    >>> D, g, ldL2, ll, eta, mu, A = est(np.zeros(15), np.array([0.64]),
    ...     np.array([-1.4, -1.0, -1.1, -1.6]), np.zeros(0), *design_inputs(spec, y, n))
    >>> A.shape, bool(np.isclose(D, g + ldL2))
    ((15, 15), True)
    """
    parts = _Parts(family, link, structure)
    mode, scalar = parts.mode, parts.scalar
    s_est = compiled(parts.skey + ("estimates",),
                     lambda: _build_structure_estimates(mode, scalar), kind="fast_compile")

    def estimates(u, theta, beta, phi, *data):
        u, theta, beta, phi = _floats(u, theta, beta, phi)
        sdata, _, (*arrays, mu) = parts.family_at(u, theta, beta, phi, data, len(ARRAYS) + 1)
        G, g, ldL2, eta, A = s_est(u, theta, beta, *sdata, *arrays)
        return G, g, ldL2, arrays[0], eta, mu, A

    return estimates
