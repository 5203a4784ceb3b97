r"""The Gaussian marginal log-density of an LMM, :math:`\log p(y \mid \beta, \theta, \sigma)`, on the
profiled deviance's blocked factor.

With :math:`L_\theta L_\theta^\top = \Lambda_\theta^\top Z^\top W Z\Lambda_\theta + I` and
:math:`F = [X,\ y - o]`, the graph of :mod:`mixedppl.graph.lmm` forms the block
:math:`F_F = F^\top W F - F^\top W Z\Lambda_\theta (L_\theta L_\theta^\top)^{-1}\Lambda_\theta^\top
Z^\top W F` (``ProfiledLMM.FF``), so the penalised weighted residual sum of squares at a given β is
the quadratic form

.. math:: r^2(\beta, \theta) = \min_u \lVert W^{1/2}(y - o - X\beta - Z\Lambda_\theta u)\rVert^2
   + \lVert u\rVert^2 = v^\top F_F v, \qquad v = (-\beta, 1),

and, as :math:`\operatorname{Cov}(y) = \sigma^2(W^{-1} + Z\Lambda_\theta\Lambda_\theta^\top Z^\top)`
has determinant :math:`\sigma^{2n}|L_\theta|^2/|W|` (matrix determinant lemma),

.. math:: \log p(y\mid\beta,\theta,\sigma) = -\tfrac12\Big[n\log(2\pi\sigma^2) + \log|L_\theta|^2
   + r^2(\beta,\theta)/\sigma^2 - \textstyle\sum_i \log w_i\Big]

(Bates et al. 2015, eq. 34 before profiling β and σ out). One model definition serves the REML
fit and the marginalised sampler: only the last line differs from the deviance.

References
----------
Bates, Mächler, Bolker & Walker (2015). Fitting linear mixed-effects models using lme4.
J. Stat. Softw. 67(1), section 3.4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from ..spec.model_spec import ModelSpec
from .lmm import LOG2PI, ProfiledLMM

__all__ = ["marginal_loglik", "OneFactorBlocks", "one_factor_blocks", "one_factor_loglik"]


def marginal_loglik(g: ProfiledLMM, beta, sigma) -> pt.TensorVariable:
    r""":math:`\log p(y \mid \beta, \theta, \sigma)` on the graph ``g`` (see the module docstring).

    Parameters
    ----------
    g : ProfiledLMM
        The profiled-deviance graph; its ``theta`` input is θ (relative factor, lme4's layout).
    beta : tensor (p,)
    sigma : tensor ()

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> import mixedppl as mp
    >>> from mixedppl.graph.crossprod import crossproducts
    >>> from mixedppl.graph.lmm_inputs import lmm_inputs, lmm_structure
    >>> spec = mp.Model("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff")).spec
    >>> cp = crossproducts(spec)
    >>> s = lmm_structure(spec, cp)
    >>> g = ProfiledLMM(s)
    >>> beta, sigma = pt.dvector("beta"), pt.dscalar("sigma")
    >>> f = pytensor.function([*g.inputs, beta, sigma], marginal_loglik(g, beta, sigma),
    ...                       on_unused_input="ignore")
    >>> round(float(f(np.array([0.8]), 0.0, *lmm_inputs(spec, cp, s), np.array([1527.5]), 49.5)), 3)
    -163.676
    """
    FF, p = g.FF, g.p
    beta = pt.as_tensor_variable(beta)
    r2 = FF[p, p] - 2.0 * pt.dot(beta, FF[:p, p]) + pt.dot(beta, pt.dot(FF[:p, :p], beta))
    return -0.5 * (g.n * (LOG2PI + 2.0 * pt.log(sigma)) + g.ldL2 + r2 / sigma ** 2 - g.ldW)


# -- one grouping factor: the blocks as elementwise closed forms ---------------------------------

@dataclass(frozen=True)
class OneFactorBlocks:
    r"""Cross-product blocks of an LMM whose terms all share one grouping factor.

    With ``z`` the terms' columns side by side (ℓ = Σ ℓ_k), :math:`F = [X,\ y - o]` and prior
    weights w: ``A11[g] = Σ_{i∈g} w_i z_i z_iᵀ`` (G, ℓ, ℓ), ``A1F[g] = Σ_{i∈g} w_i z_i F_iᵀ``
    (G, ℓ, p + 1), ``AFF = FᵀWF``, ``ldW = Σ log w_i``; ``offsets[k]`` is term k's first column.
    """

    A11: np.ndarray
    A1F: np.ndarray
    AFF: np.ndarray
    n: int
    ldW: float
    offsets: tuple[int, ...]

    @property
    def ell(self) -> int:
        return self.A11.shape[1]


#: widest combined block the unrolled factorisation is used for (its graph has O(ℓ³) nodes)
MAX_ONE_FACTOR_WIDTH = 6


def one_factor_blocks(spec: ModelSpec) -> OneFactorBlocks | None:
    """The :class:`OneFactorBlocks` of ``spec``, or None when its terms have more than one
    grouping factor (or together more than :data:`MAX_ONE_FACTOR_WIDTH` columns).

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (Days || Subject)", mp.datasets.load("sleepstudy")).spec
    >>> blocks = one_factor_blocks(spec)
    >>> blocks.A11.shape, blocks.offsets
    ((18, 2, 2), (0, 1))
    >>> one_factor_blocks(mp.Model("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff")).spec).n
    30
    """
    t0 = spec.terms[0]
    if any(t.n_levels != t0.n_levels or not np.array_equal(t.codes, t0.codes)
           for t in spec.terms[1:]):
        return None
    z = np.concatenate([t.z for t in spec.terms], axis=1)
    if z.shape[1] > MAX_ONE_FACTOR_WIDTH:
        return None
    w = np.asarray(spec.weights, float)
    F = np.column_stack([spec.X, spec.y - spec.offset])
    G, ell, m = t0.n_levels, z.shape[1], F.shape[1]
    A11 = np.zeros((G, ell, ell))
    np.add.at(A11, t0.codes, w[:, None, None] * z[:, :, None] * z[:, None, :])
    A1F = np.zeros((G, ell, m))
    np.add.at(A1F, t0.codes, w[:, None, None] * z[:, :, None] * F[:, None, :])
    offsets = tuple(int(o) for o in np.cumsum([0] + [t.n_cols for t in spec.terms[:-1]]))
    return OneFactorBlocks(A11, A1F, (F * w[:, None]).T @ F, spec.n, float(np.log(w).sum()),
                           offsets)


def one_factor_loglik(blocks: OneFactorBlocks, T, beta, sigma) -> pt.TensorVariable:
    r""":math:`\log p(y\mid\beta,\theta,\sigma)` for one grouping factor, in elementwise ops only.

    ``T`` (ℓ×ℓ) is the relative factor of the combined term (block diagonal over the terms).
    Per level g, :math:`B_g = T^\top A_{11,g} T + I = L_g L_g^\top` is factored by the
    Cholesky–Banachiewicz recursion unrolled over the (static) ℓ, each entry a length-G vector,
    and with :math:`c_g = A_{1F,g} v`, :math:`v = (-\beta, 1)`, :math:`w_g = L_g^{-1} T^\top c_g`
    (forward substitution),

    .. math:: r^2 = v^\top A_{FF} v - \textstyle\sum_g \lVert w_g\rVert^2, \qquad
       \log|L_\theta|^2 = 2 \textstyle\sum_g \sum_i \log (L_g)_{ii},

    the quantities of the module docstring (``FF`` of the blocked factor applied to v). Every
    node is an elementwise op, a reduction or an index, so the graph and its gradient fuse into a
    few C loops (or compile entirely with PyTensor's numba / JAX backends); there is no
    per-level LAPACK call. B_g ⪰ I, so the recursion never meets a non-positive pivot.

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> import mixedppl as mp
    >>> spec = mp.Model("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff")).spec
    >>> ll = one_factor_loglik(one_factor_blocks(spec), pt.as_tensor_variable([[0.8]]),
    ...                        np.array([1527.5]), 49.5)
    >>> round(float(ll.eval()), 3)
    -163.676
    """
    ell, p = blocks.ell, blocks.AFF.shape[0] - 1
    T = pt.as_tensor_variable(T)
    beta = pt.as_tensor_variable(beta)
    A11, A1F = pt.constant(blocks.A11), pt.constant(blocks.A1F)
    # B_g = Tᵀ A_g T + I and u_g = Tᵀ A1F_g v as products and sums over the small axes
    AT = (A11[:, :, :, None] * T[None, None, :, :]).sum(axis=2)            # (G, ℓ, ℓ): A_g T
    B = (T.T[None, :, :, None] * AT[:, None, :, :]).sum(axis=2)           # Tᵀ A_g T
    c = A1F[:, :, p] - (A1F[:, :, :p] * beta[None, None, :]).sum(axis=2) if p else A1F[:, :, 0]
    u = (T.T[None, :, :] * c[:, None, :]).sum(axis=2)                      # (G, ℓ)
    L = [[None] * ell for _ in range(ell)]
    w, logdiag, quad = [None] * ell, 0.0, 0.0
    for i in range(ell):
        for j in range(i + 1):
            acc = B[:, i, j] + (1.0 if i == j else 0.0)
            for k in range(j):
                acc = acc - L[i][k] * L[j][k]
            L[i][j] = pt.sqrt(acc) if i == j else acc / L[j][j]
        acc = u[:, i]
        for k in range(i):
            acc = acc - L[i][k] * w[k]
        w[i] = acc / L[i][i]
        logdiag = logdiag + pt.log(L[i][i]).sum()
        quad = quad + (w[i] ** 2).sum()
    AFF = pt.constant(blocks.AFF)
    if p:  # vᵀ A_FF v as a product and sum (a Gemv runs in Python without linked BLAS)
        v = pt.concatenate([-beta, pt.ones(1)])
        vFv = (v[:, None] * AFF * v[None, :]).sum()
    else:
        vFv = AFF[0, 0]
    r2 = vFv - quad
    return -0.5 * (blocks.n * (LOG2PI + 2.0 * pt.log(sigma)) + 2.0 * logdiag
                   + r2 / sigma ** 2 - blocks.ldW)
