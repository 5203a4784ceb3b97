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

import numpy as np
import pytensor.tensor as pt

from .lmm import LOG2PI, ProfiledLMM

__all__ = ["marginal_loglik"]


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
