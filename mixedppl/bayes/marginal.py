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
from ..graph.lmm_marginal import marginal_loglik
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


def marginal_term(spec: ModelSpec, theta, beta, sigma) -> pt.TensorVariable:
    r""":math:`\log p(y\mid\beta,\theta,\sigma)` of ``spec``'s data as an expression in the given
    θ, β, σ: the REML graph of the model's structure with its data inputs replaced by constants.

    Examples
    --------
    >>> import numpy as np
    >>> import mixedppl as mp
    >>> spec = mp.Model("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff")).spec
    >>> ll = marginal_term(spec, np.array([0.8]), np.array([1527.5]), 49.5)
    >>> round(float(ll.eval()), 3)
    -163.676
    """
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
        theta = theta_of(spec, term_factors(spec, pri), sigma)
        pm.Potential("y_marginal", marginal_term(spec, theta, beta, sigma))
    return model
