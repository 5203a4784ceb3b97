r"""The Laplace deviance of a zero-inflated / hurdle GLMM whose ``ziformula`` has random terms.

glmmTMB's ``ziformula = ~ mined + (1 | site)`` adds random effects to the zero-inflation
predictor. With spherical u = (u_c, u_z) ~ N(0, I), b_c = Λ_c u_c, b_z = Λ_z u_z (each term with
its own relative factor T_k(θ)),

.. math::

    \eta = X\beta + o + Z_c\Lambda_c u_c, \qquad \eta^{zi} = X_{zi}\gamma + Z_z\Lambda_z u_z,

and the penalised deviance is :math:`g(u) = -2\sum_i \log p(y_i \mid \eta_i, \eta^{zi}_i, \delta)
+ \|u\|^2` with the family's log-density
(:meth:`~mixedppl.families.zi_disp.ZIDispFamily.loglik_zi`). Written as one stacked design
:math:`M = \begin{pmatrix} Z_c\Lambda_c & 0 \\ 0 & Z_z\Lambda_z \end{pmatrix}` (2n × q; rows
1..n give η, rows n+1..2n give η_zi), the Hessian of g over u is

.. math::

    \tfrac12 \partial^2 g/\partial u^2 = A = I + M^\top W M, \qquad
    W = \begin{pmatrix} \mathrm{diag}(w_{cc}) & \mathrm{diag}(w_{cz}) \\
                        \mathrm{diag}(w_{cz}) & \mathrm{diag}(w_{zz}) \end{pmatrix},

:math:`w_{ab} = -\partial^2 \log p_i / \partial\eta^a_i\partial\eta^b_i` (the exact observed
Hessian, mixed derivatives included: TMB's Laplace, what glmmTMB maximises). The Laplace
deviance is :math:`D = g(\hat u) + \log|A|` and its gradient over ψ = (θ, β, φ) is exact by the
implicit function theorem, as in :mod:`mixedppl.graph.laplace`:
:math:`dD/d\psi = \partial/\partial\psi\,[D - v^\top \partial g/\partial u]`, v = (2A)⁻¹ ∂D/∂u
held constant.

M is dense here (n × q per predictor): the models with zi random terms are glmmTMB-sized
(Salamanders: n = 644, q = 46), and this keeps the structure-generic blocked graph of
:mod:`mixedppl.graph.laplace`, shared by every other GLMM, untouched (no new inputs, no
recompiles). θ enters only through an index map: the entries of M are
``M.flat[e_dest] += e_z · θ[e_th]`` (term k, level g, column a of T_k at column
``off_k + g·ℓ_k + a``, θ in the graphs' layout, :meth:`ModelSpec.graph_theta`). One compiled
function per (family key, link) serves every formula.

References
----------
Brooks, M. E. et al. (2017). glmmTMB balances speed and flexibility among packages for
zero-inflated generalized linear mixed modeling. *The R Journal* 9(2), 378–400.
Kristensen, K. et al. (2016). TMB: automatic differentiation and Laplace approximation.
*J. Stat. Softw.* 70(5).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from ..core.compile import compiled
from ..spec.reterm import lower_triangle_pairs
from .laplace_blocks import logdet_first_order
from .relative_factor import factor_values

__all__ = ["zire_functions", "zire_inputs"]


def _symbols(family) -> dict:
    s = {name: pt.dvector(name) for name in ("u", "theta", "beta", "phi", "y", "ntr", "offset",
                                               "e_z")}
    s.update({name: pt.lvector(name) for name in ("e_dest", "e_th")})
    s.update({name: pt.dmatrix(name) for name in ("X", "X_zi")})
    s["X_disp"] = pt.dmatrix("X_disp") if "X_disp" in family.aux_designs else None
    s["lam"] = pt.dscalar("lam")
    return s


def _inputs(s: dict) -> list:
    out = [s[k] for k in ("u", "theta", "beta", "phi", "y", "ntr", "offset", "X", "X_zi",
                          "e_dest", "e_z", "e_th")]
    return out + ([s["X_disp"]] if s["X_disp"] is not None else [])


def _pieces(s: dict, family, link) -> dict:
    u = s["u"]
    n, q = s["y"].shape[0], u.shape[0]
    M = pt.zeros((2 * n * q,))[s["e_dest"]].inc(s["e_z"] * factor_values(s["theta"], s["e_th"]))
    M = M.reshape((2 * n, q))
    lin = M @ u
    eta = s["X"] @ s["beta"] + s["offset"] + lin[:n]
    # γ by X_zi's symbolic width: one graph per family key serves every zi design
    eta_zi = s["X_zi"] @ s["phi"][:s["X_zi"].shape[1]] + lin[n:]
    ll = family.loglik_zi(s["y"], eta, eta_zi, s["ntr"], s["phi"], link, s["X_disp"],
                          s["X_zi"])
    d_c, d_z = pt.grad(ll.sum(), [eta, eta_zi])
    # ll is elementwise, so these are the per-row second derivatives; a hurdle's ll separates
    # into a zero part (η_zi) and a truncated count part (η), so its w_cz is disconnected: 0
    w_cc, w_cz = (-h for h in pt.grad(d_c.sum(), [eta, eta_zi], disconnected_inputs="ignore"))
    w_zz = -pt.grad(d_z.sum(), eta_zi)
    Mc, Mz = M[:n], M[n:]
    WM = pt.concatenate([w_cc[:, None] * Mc + w_cz[:, None] * Mz,
                         w_cz[:, None] * Mc + w_zz[:, None] * Mz], axis=0)
    A = pt.eye(q) + M.T @ WM
    g = -2.0 * ll.sum() + u @ u
    g_u = -2.0 * (M.T @ pt.concatenate([d_c, d_z])) + 2.0 * u
    ldL2 = logdet_first_order(A)
    return dict(eta=eta, eta_zi=eta_zi, mu=link.linkinv(eta), ll=ll, g=g, g_u=g_u, A=A,
                ldL2=ldL2, G=g + ldL2)


def _build_inner(family, link):
    """(g, ∂g/∂u, the Newton step (∂²g/∂u² + λI)⁻¹ ∂g/∂u); inputs ``(λ, *inputs)``."""
    s = _symbols(family)
    p = _pieces(s, family, link)
    q = s["u"].shape[0]
    step = pt.linalg.solve(p["A"] + (s["lam"] / 2.0) * pt.eye(q), p["g_u"], assume_a="sym")
    return [s["lam"], *_inputs(s)], [p["g"], p["g_u"], step / 2.0]


def _build_outer(family, link):
    """(D, ∂D/∂θ, ∂D/∂β, ∂D/∂φ) at the conditional mode."""
    s = _symbols(family)
    p = _pieces(s, family, link)
    D = p["G"]
    D_u = pt.grad(D, s["u"])
    v = disconnected_grad(pt.linalg.solve(p["A"], D_u, assume_a="sym") / 2.0)
    obj = D - v @ p["g_u"]
    grads = pt.grad(obj, [s["theta"], s["beta"], s["phi"]], disconnected_inputs="ignore")
    return _inputs(s), [D, *grads]


def _build_estimates(family, link):
    s = _symbols(family)
    p = _pieces(s, family, link)
    return _inputs(s), [p["G"], p["g"], p["ldL2"], p["ll"], p["eta"], p["mu"], p["A"],
                        p["eta_zi"]]


def zire_functions(family, link) -> dict:
    """Compiled ``inner``, ``outer`` and ``estimates`` (D, g, log|A|, log p per row, η, μ, A,
    η_zi) for a family with a zero part; inputs :func:`zire_inputs` after (u, θ, β, φ).

    Examples
    --------
    >>> from mixedppl.families import FAMILIES
    >>> from mixedppl.families.zi_disp import with_parts
    >>> from mixedppl.families.links import LINKS
    >>> fam = with_parts(FAMILIES["poisson"], ["(Intercept)"], [])
    >>> sorted(zire_functions(fam, LINKS["log"]))
    ['estimates', 'inner', 'outer']
    """
    key = ("glmm-laplace-zire", family.key, link.name)
    return {
        "inner": compiled(key + ("inner",), lambda: _build_inner(family, link),
                          kind="fast_run_c"),
        "outer": compiled(key + ("outer",), lambda: _build_outer(family, link),
                          kind="fast_run_c"),
        "estimates": compiled(key + ("estimates",), lambda: _build_estimates(family, link),
                              kind="fast_compile"),
    }


def _contributions(terms, n: int, q: int, row_off: int, col_off: int, theta_off: int):
    """(e_dest, e_z, e_th) of the terms' entries of M (rows from ``row_off``)."""
    dest, zs, ths = [], [], []
    rows = np.arange(n, dtype=np.int64) + row_off
    for t in terms:
        ell = t.n_cols
        codes = np.asarray(t.codes, dtype=np.int64)
        for j, (r, c) in enumerate(lower_triangle_pairs(ell)):
            dest.append(rows * q + col_off + codes * ell + c)
            zs.append(np.asarray(t.z[:, r], float))
            ths.append(np.full(n, theta_off + j, dtype=np.int64))
        col_off += t.n_levels * ell
        theta_off += ell * (ell + 1) // 2
    return dest, zs, ths, col_off, theta_off


def zire_inputs(spec, y: np.ndarray, ntr: np.ndarray) -> list[np.ndarray]:
    """The data inputs of :func:`zire_functions`: y, trials, offset, X, X_zi, M's index map
    (conditional terms then ``spec.zi_terms``; θ in the graphs' layout) and X_disp if any.

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.spec.model_spec import build_spec
    >>> spec = build_spec("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
    ...                   "poisson", ziformula="~ mined + (1 | site)")
    >>> data = zire_inputs(spec, *spec.counts())
    >>> len(data), bool(data[5].max() < 2 * spec.n * 46)
    (8, True)
    """
    n = len(y)
    q = spec.q + sum(t.q for t in spec.zi_terms)
    d1, z1, t1, col, th = _contributions(spec.terms, n, q, 0, 0, 0)
    d2, z2, t2, _, _ = _contributions(spec.zi_terms, n, q, n, col, th)
    cat = np.concatenate
    vals = [np.asarray(y, float), np.asarray(ntr, float), np.asarray(spec.offset, float),
            np.asarray(spec.X, float), np.asarray(spec.aux_designs["X_zi"], float),
            cat(d1 + d2), cat(z1 + z2), cat(t1 + t2)]
    if "X_disp" in spec.family.aux_designs:
        vals.append(np.asarray(spec.aux_designs["X_disp"], float))
    return vals
