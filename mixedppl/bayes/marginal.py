r"""The marginalised LMM as a PyMC model: (β, θ, σ) sampled from :math:`\log p(y\mid\beta,\theta,\sigma)`.

The random effects are integrated out: the model's only likelihood term is a ``pm.Potential``,
``y_marginal``, the Gaussian marginal log-density computed by the profiled REML graph's blocked
Cholesky (:func:`mixedppl.graph.lmm_marginal.marginal_loglik` on a
:class:`~mixedppl.graph.lmm.ProfiledLMM`, the same graph the REML fit optimises), with the data
blocks as constants and θ a function of the sampled parameters:
:math:`T_k = \operatorname{diag}(\mathrm{sd}_k) L^R_k / \sigma` (lme4's relative factor, so
:math:`\Sigma_k = \sigma^2 T_k T_k^\top`), θ its lower triangle in lme4's order
(:func:`~mixedppl.spec.reterm.lower_triangle_pairs`).

The parameters and their priors are the explicit model's (:mod:`mixedppl.bayes.pymc`: ``beta``,
``sigma``, ``sd_<g>``, ``cpc_<g>``, deterministic ``corr_<g>``); only the ``z_<g>`` are gone.
The random effects are drawn afterwards from their exact Gaussian conditional, one draw per
posterior draw (:mod:`mixedppl.bayes.conditional`), so the posterior holds ``b_<g>`` (and the
``z_<g>`` they correspond to) with the same names and coords as the explicit sampler's.

When every term shares one grouping factor (sleepstudy's ``(Days | Subject)`` and ``(Days ||
Subject)``, any ``(x | g)``) the potential is the same density in closed form,
:func:`~mixedppl.graph.lmm_marginal.one_factor_loglik` on the factors' T directly (no θ vector):
only elementwise ops, reductions and views, so PyTensor fuses the logp and its gradient into a few
C loops (sleepstudy: ~50 µs per logp + gradient under load against ~320 µs on the blocked graph,
whose per-level LAPACK Ops run in Python). Crossed and nested terms keep the blocked REML graph;
on InstEval's ``(1 | s) + (1 | d) + (1 | dept:service)`` one logp + gradient there costs ~0.85 s
of CPU (measured under load: the dense 1,156² Schur complement's Cholesky, inverse and products
per gradient), so 4 × 1000 draws (~56,000 gradients at ~7 leapfrog steps) would take hours, not
the issue's 10 minutes.

A posterior with fewer, better-conditioned dimensions (5 for sleepstudy's ``(Days | Subject)``
instead of 41; 5 for InstEval instead of ~4,100) needs fewer leapfrog steps, at the cost of one
blocked Cholesky per gradient.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.replace import graph_replace

from ..core.compile import configure_pytensor
from ..graph.crossprod import crossproducts
from ..graph.lmm import ProfiledLMM
from ..graph.lmm_inputs import lmm_inputs, lmm_structure
from ..graph.lmm_marginal import marginal_loglik, one_factor_blocks, one_factor_loglik
from ..spec.model_spec import ModelSpec
from ..spec.reterm import lower_triangle_pairs
from .priors import resolve_priors
from .pymc import fixed_effects, model_coords, term_factors

__all__ = ["lmm_marginal_to_pymc", "theta_of"]


def theta_of(spec: ModelSpec, factors: list, sigma) -> pt.TensorVariable:
    """θ (lme4's layout, every term in ``spec.terms`` order) from the covariance Cholesky factors
    of :func:`~mixedppl.bayes.pymc.term_factors` and σ.

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> chol = pt.as_tensor_variable(np.array([[20.0, 0.0], [1.0, 5.0]]))
    >>> theta_of(spec, [chol], 10.0).eval().tolist()
    [2.0, 0.1, 0.5]
    """
    parts = []
    for t, f in zip(spec.terms, factors):
        if t.n_cols == 1:
            parts.append(pt.reshape(f / sigma, (1,)))
        else:
            rows, cols = zip(*lower_triangle_pairs(t.n_cols))
            parts.append(f[list(rows), list(cols)] / sigma)
    return pt.concatenate(parts)


def block_diagonal(blocks: list) -> pt.TensorVariable:
    """The block-diagonal matrix of square symbolic ``blocks``, by joins with zero blocks (ops with
    C implementations, unlike ``pytensor.tensor.linalg.block_diag``).

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> block_diagonal([pt.as_tensor_variable(np.ones((1, 1))),
    ...                 pt.as_tensor_variable(2 * np.eye(2))]).eval().tolist()
    [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]
    """
    if len(blocks) == 1:
        return pt.as_tensor_variable(blocks[0])
    sizes = [int(b.type.shape[0]) if b.type.shape[0] is not None else int(b.shape[0].eval())
             for b in blocks]
    total, rows, start = sum(sizes), [], 0
    for b, k in zip(blocks, sizes):
        parts = [pt.zeros((k, start)), b, pt.zeros((k, total - start - k))]
        rows.append(pt.concatenate([q for q, w in zip(parts, (start, k, total - start - k))
                                    if w], axis=1))
        start += k
    return pt.concatenate(rows, axis=0)


def relative_factor_matrix(spec: ModelSpec, theta, blocks) -> pt.TensorVariable:
    """The ℓ×ℓ relative factor of all terms of a one-grouping-factor model side by side (block
    diagonal, term k's lower-triangular T_k from its θ in lme4's order at ``blocks.offsets[k]``).

    Examples
    --------
    >>> import numpy as np, mixedppl as mp
    >>> from mixedppl.graph.lmm_marginal import one_factor_blocks
    >>> spec = mp.Model("Reaction ~ Days + (Days || Subject)", mp.datasets.load("sleepstudy")).spec
    >>> relative_factor_matrix(spec, np.array([2.0, 0.5]), one_factor_blocks(spec)).eval().tolist()
    [[2.0, 0.0], [0.0, 0.5]]
    """
    rows, cols = [], []
    for t, o in zip(spec.terms, blocks.offsets):
        for r, c in lower_triangle_pairs(t.n_cols):
            rows.append(o + r)
            cols.append(o + c)
    theta = pt.as_tensor_variable(theta).astype("float64")
    return pt.zeros((blocks.ell, blocks.ell))[rows, cols].set(theta)


def marginal_term(spec: ModelSpec, theta, beta, sigma) -> pt.TensorVariable:
    r""":math:`\log p(y\mid\beta,\theta,\sigma)` of ``spec``'s data as an expression in the given
    θ, β, σ: the REML graph of the model's structure with its data inputs replaced by constants
    or, when every term has the same grouping factor (sleepstudy's ``(Days | Subject)`` and
    ``(Days || Subject)``), its closed form in elementwise ops
    (:func:`~mixedppl.graph.lmm_marginal.one_factor_loglik`: no LAPACK call, so its logp and
    gradient cost a few C loops).

    Examples
    --------
    >>> import numpy as np
    >>> import mixedppl as mp
    >>> spec = mp.Model("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff")).spec
    >>> ll = marginal_term(spec, np.array([0.8]), np.array([1527.5]), 49.5)
    >>> round(float(ll.eval()), 3)
    -163.676
    """
    blocks = one_factor_blocks(spec)
    if blocks is not None:
        return one_factor_loglik(blocks, relative_factor_matrix(spec, theta, blocks), beta, sigma)
    cp = crossproducts(spec)
    structure = lmm_structure(spec, cp)
    g = ProfiledLMM(structure)
    data = [np.array(0.0), *lmm_inputs(spec, cp, structure)]
    ll = marginal_loglik(g, pt.as_tensor_variable(np.asarray(beta, float) if isinstance(
        beta, np.ndarray) else beta), pt.as_tensor_variable(sigma))
    replace = {g.theta: pt.as_tensor_variable(theta).astype("float64")}
    replace.update({v: pt.constant(np.asarray(a)) for v, a in zip(g.inputs[1:], data)})
    return graph_replace(ll, replace, strict=False)


def lmm_marginal_to_pymc(spec: ModelSpec, priors: dict | None = None):
    """The LMM of ``spec`` with its random effects integrated out, as a PyMC model.

    Parameters
    ----------
    spec : ModelSpec
    priors : dict, optional
        Overrides of the default priors, as :func:`mixedppl.bayes.pymc.lmm_to_pymc`.

    Returns
    -------
    pymc.Model
        Free ``beta``, ``sigma``, ``sd_<g>``, ``cpc_<g>`` (vector terms); deterministic
        ``corr_<g>``; the potential ``y_marginal``. No observed variable: the pointwise
        log-likelihood is added after sampling, conditional on the drawn random effects.

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> m = lmm_marginal_to_pymc(spec)
    >>> sorted(v.name for v in m.free_RVs), [v.name for v in m.potentials]
    (['beta', 'cpc_Subject', 'sd_Subject', 'sigma'], ['y_marginal'])
    """
    import pymc as pm

    configure_pytensor()
    pri = resolve_priors(spec, priors)
    with pm.Model(coords=model_coords(spec)) as model:
        beta = fixed_effects(spec, pri)
        sigma = pri["sigma"].rv("sigma")
        factors = term_factors(spec, pri)
        blocks = one_factor_blocks(spec)
        if blocks is not None:  # T straight from the factors: no θ vector, no index ops
            T = block_diagonal([pt.reshape(f, (1, 1)) if t.n_cols == 1 else f
                                for t, f in zip(spec.terms, factors)]) / sigma
            ll = one_factor_loglik(blocks, T, beta, sigma)
        else:
            ll = marginal_term(spec, theta_of(spec, factors, sigma), beta, sigma)
        pm.Potential("y_marginal", ll)
    return model
