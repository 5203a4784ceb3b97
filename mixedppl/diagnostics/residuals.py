r"""Residuals beyond response and Pearson: deviance residuals of a GLMM and DHARMa's
simulation-based quantile residuals for every family.

Deviance residuals (R's ``residuals(glmer, type = "deviance")``), at the conditional means
:math:`\hat\mu_i` (random effects at their modes):

.. math:: r^D_i = \operatorname{sign}(y_i - \hat\mu_i)\sqrt{d_i},

:math:`d_i` the family's unit deviance (``family()$dev.resids``; see
:meth:`mixedppl.families.glm.GLMFamily.unit_deviance`).

Quantile (scaled) residuals, as DHARMa's ``simulateResiduals`` with ``method = "PIT"``: with
:math:`y^{*}_{i1}, \dots, y^{*}_{im}` responses simulated from the fitted model (new random
effects, lme4's ``use.u = FALSE``, DHARMa's default),

.. math:: r^Q_i \sim U\Big(\tfrac1m\#\{s: y^*_{is} < y_i\},\ \tfrac1m\#\{s: y^*_{is} \le y_i\}\Big),

a draw between the two when ties make them differ (discrete families: the randomised
probability integral transform), their common value otherwise. Under the model :math:`r^Q_i`
is uniform on (0, 1) (up to the 1/m grid), whatever the family.

References
----------
Dunn, P. K. & Smyth, G. K. (1996). Randomized quantile residuals. J. Comput. Graph. Stat. 5,
236–244.
Hartig, F. (2022). DHARMa: residual diagnostics for hierarchical (multi-level / mixed)
regression models. R package version 0.4.6 (``getQuantile``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["deviance_residuals", "quantile_residuals"]


def deviance_residuals(family, y: np.ndarray, mu: np.ndarray, n: np.ndarray,
                       disp: float | None = None) -> np.ndarray:
    """sign(y − μ)·√d_i on the mean scale (proportions for a binomial; ``n`` its trials or the
    prior weights).

    Examples
    --------
    >>> import numpy as np
    >>> from mixedppl.families import get_family
    >>> fam, _ = get_family("poisson")
    >>> deviance_residuals(fam, np.array([0.0, 3.0]), np.array([1.0, 1.0]),
    ...                    np.ones(2)).round(4).tolist()
    [-1.4142, 1.6099]
    """
    d = family.unit_deviance(y, mu, n, disp)
    return np.sign(np.asarray(y, float) - np.asarray(mu, float)) * np.sqrt(np.maximum(d, 0.0))


def quantile_residuals(observed: np.ndarray, simulated: np.ndarray,
                       rng: np.random.Generator | int | None = None) -> np.ndarray:
    """DHARMa's PIT residuals of ``observed`` (n,) against ``simulated`` (n, m) draws.

    Examples
    --------
    >>> import numpy as np
    >>> sims = np.array([[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 5.0]])
    >>> r = quantile_residuals(np.array([2.5, 1.0]), sims, rng=1)
    >>> float(r[0]), bool(0.0 <= r[1] <= 0.75)
    (0.75, True)
    """
    observed = np.asarray(observed, float)
    simulated = np.asarray(simulated, float)
    if simulated.ndim != 2 or simulated.shape[0] != observed.shape[0]:
        raise ValueError(f"simulated must be (n, nsim) with n = {observed.shape[0]}, got "
                         f"{simulated.shape}")
    m = simulated.shape[1]
    rng = np.random.default_rng(rng)
    below = (simulated < observed[:, None]).sum(axis=1) / m
    at_most = (simulated <= observed[:, None]).sum(axis=1) / m
    draw = rng.uniform(below, at_most)
    return np.where(at_most > below, draw, at_most)
