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
whose per-level LAPACK Ops run in Python). Crossed and nested terms keep the blocked REML graph
while its dense Schur complement (the columns of the terms after the first) has at most
:data:`MAX_MARGINAL_SCHUR` columns.

Above that the default samples the widest of those terms explicitly (:func:`sampled_terms`) and
integrates the others out given them (:mod:`mixedppl.graph.lmm_partial`: the same blocked graph
on the shifted response :math:`y - Z_E b_E`). Measured on InstEval's ``(1 | s) + (1 | d) + (1 |
dept:service)`` (73,421 rows; CPU time on the loaded 2-core machine, one BLAS thread):

- every term integrated out: 6 parameters, but a dense 1,156² Schur complement, ~90 ms per
  logp + gradient (~0.85 s with the default BLAS threads competing): hours for 4 × 1000 draws;
- every effect sampled (``marginalize=False``, non-centred): 4,134 parameters, 1.3 ms per
  gradient, ~31 leapfrog steps per draw, and the intercept mixes badly (ess_bulk 1 of 200 draws
  after 300 tuning steps: it trades off against the means of 1,128 + 28 effects);
- the lecturers ``(1 | d)`` sampled, the students and ``dept:service`` integrated out (a 28²
  Schur complement): 1,134 parameters, ~2.6 ms per gradient, ~23 steps per draw, ess_bulk of
  the intercept 115 of 200 (centred lecturers; 36 non-centred).

The sampled terms are centred when the REML fit says their levels are data-rich
(:func:`centred_terms`), else non-centred. ``fit.sample(marginalize=True)`` forces every term to
be integrated out, ``marginalize=False`` samples every effect.

A posterior with fewer, better-conditioned dimensions (5 for sleepstudy's ``(Days | Subject)``
instead of 41) needs fewer leapfrog steps, at the cost of one blocked Cholesky per gradient.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.replace import graph_replace

from ..core.compile import configure_pytensor
from ..graph.crossprod import crossproducts
from ..graph.lmm import ProfiledLMM
from ..graph.lmm_inputs import lmm_inputs, lmm_structure
from ..fit.records import group_labels
from ..graph.lmm_marginal import marginal_loglik, one_factor_blocks, one_factor_loglik
from ..graph.lmm_partial import partial_blocks, partial_marginal_loglik
from ..spec.model_spec import ModelSpec
from ..spec.reterm import lower_triangle_pairs
from .priors import resolve_priors
from .pymc import fixed_effects, model_coords, term_factors, term_random_effects

__all__ = ["lmm_marginal_to_pymc", "theta_of", "sampled_terms", "centred_terms",
           "MAX_MARGINAL_SCHUR", "CENTRED_BELOW"]


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


#: largest dense Schur complement (the columns of the terms after the first, q_R) for which the
#: default marginalises every term; above it the widest of those terms are sampled instead
#: (:func:`sampled_terms`). A full-marginal logp + gradient costs ~q_R³ (a Cholesky and an
#: inverse); measured (20,000 rows, ``(1 | g) + (1 | h)`` with 2,000 g levels, one BLAS
#: thread, loaded 2-core machine): 2.5 / 3.5 / 11.7 / 41 ms at q_R = 100 / 200 / 400 / 800,
#: against 0.67 ms for the partial marginal with h sampled (which takes more leapfrog steps)
MAX_MARGINAL_SCHUR = 300


def sampled_terms(spec: ModelSpec) -> list[int]:
    """Positions (in ``spec.terms``) of the terms the default sampler draws explicitly: none
    when every term can be integrated out cheaply (one grouping factor, or a dense Schur
    complement of at most :data:`MAX_MARGINAL_SCHUR` columns), else the widest terms after the
    first, one at a time, until the others' Schur complement is that small.

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)",
    ...                 mp.datasets.load("InstEval")).spec
    >>> [spec.terms[k].group for k in sampled_terms(spec)]
    ['d']
    >>> sampled_terms(mp.Model("Reaction ~ Days + (Days | Subject)",
    ...                        mp.datasets.load("sleepstudy")).spec)
    []
    """
    if len(spec.terms) < 2 or one_factor_blocks(spec) is not None:
        return []
    rest, sampled = list(range(1, len(spec.terms))), []
    while rest and sum(spec.terms[k].q for k in rest) > MAX_MARGINAL_SCHUR:
        widest = max(rest, key=lambda k: spec.terms[k].q)
        rest.remove(widest)
        sampled.append(widest)
    return sorted(sampled)


#: a sampled term is centred when its conditional variances are below this share of its
#: variance (the data dominate the prior: Papaspiliopoulos, Roberts & Sköld 2007)
CENTRED_BELOW = 0.5


def centred_terms(sampled: list[int], covs: list[np.ndarray], condvar: list[np.ndarray]
                  ) -> list[int]:
    """The sampled terms to centre, from a REML fit: those whose mean conditional variance
    (trace over the term's columns, mean over levels) is below :data:`CENTRED_BELOW` times the
    trace of the estimated covariance Σ_k. Data-rich levels make a centred ``b`` nearly
    independent of its SD (InstEval's lecturers: ratio 0.07; ESS of the intercept 3× the
    non-centred one's in a short run); weakly informed levels (or a near-zero Σ_k) stay
    non-centred, which has no funnel.

    Examples
    --------
    >>> import numpy as np
    >>> centred_terms([1, 2], [np.eye(1), np.eye(1), np.eye(1)],
    ...               [np.ones((3, 1, 1)), np.full((3, 1, 1), 0.1), np.full((3, 1, 1), 0.9)])
    [1]
    """
    out = []
    for k in sampled:
        total = float(np.trace(covs[k]))
        cond = float(np.mean(np.trace(condvar[k], axis1=1, axis2=2)))
        if total > 0 and cond < CENTRED_BELOW * total:
            out.append(k)
    return out


def lmm_marginal_to_pymc(spec: ModelSpec, priors: dict | None = None,
                         sampled: list[int] | None = None, centred: bool | Collection[int] = ()):
    """The LMM of ``spec`` with its random effects integrated out, as a PyMC model.

    Parameters
    ----------
    spec : ModelSpec
    priors : dict, optional
        Overrides of the default priors, as :func:`mixedppl.bayes.pymc.lmm_to_pymc`.
    sampled : list of int, optional
        Positions of terms whose random effects are sampled rather than integrated out
        (:mod:`mixedppl.graph.lmm_partial`); default :func:`sampled_terms`, ``[]`` integrates
        out every term.
    centred : bool or collection of int
        Which sampled terms' effects are centred (``b_<g>`` free; the others non-centred,
        ``z_<g>`` free): all, none, or those positions (see :func:`centred_terms`).

    Returns
    -------
    pymc.Model
        Free ``beta``, ``sigma``, ``sd_<g>``, ``cpc_<g>`` (vector terms); deterministic
        ``corr_<g>``; the potential ``y_marginal``; for sampled terms ``z_<g>`` and ``b_<g>``.
        No observed variable: the pointwise log-likelihood is added after sampling,
        conditional on the drawn random effects.

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
    sampled = sampled_terms(spec) if sampled is None else sorted(sampled)
    with pm.Model(coords=model_coords(spec)) as model:
        beta = fixed_effects(spec, pri)
        sigma = pri["sigma"].rv("sigma")
        factors = term_factors(spec, pri)
        blocks = one_factor_blocks(spec)
        if sampled:
            pb = partial_blocks(spec, sampled)
            labels = group_labels(spec.terms)
            b_E = [term_random_effects(labels[k], spec.terms[k], factors[k],
                                       centred if isinstance(centred, bool) else k in centred)
                   for k in pb.sampled]
            flat = pt.concatenate([pt.flatten(b) for b in b_E])
            theta_M = theta_of(pb.sub, [factors[k] for k in pb.marginal], sigma)
            ll = partial_marginal_loglik(pb, theta_M, beta, sigma, flat)
        elif blocks is not None:  # T straight from the factors: no θ vector, no index ops
            T = block_diagonal([pt.reshape(f, (1, 1)) if t.n_cols == 1 else f
                                for t, f in zip(spec.terms, factors)]) / sigma
            ll = one_factor_loglik(blocks, T, beta, sigma)
        else:
            ll = marginal_term(spec, theta_of(spec, factors, sigma), beta, sigma)
        pm.Potential("y_marginal", ll)
    return model
