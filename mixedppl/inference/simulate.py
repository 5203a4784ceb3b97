r"""Responses simulated from a fitted LMM.

``simulate``: as lme4's ``simulate.merMod`` (``use.u = FALSE``),

.. math:: y^* = X\hat\beta + o + \sum_k Z_k u_k + \varepsilon,\quad
          u_{k,g} \sim N(0, \hat\Sigma_k),\ \varepsilon_i \sim N(0, \hat\sigma^2 / w_i).
"""

from __future__ import annotations

import numpy as np

from ..fit.records import LMMFit
from ..graph.linear_predictor import fitted_eta
from ..spec.reterm import relative_factors

__all__ = ["simulate_responses"]


def simulate_responses(record: LMMFit, nsim: int = 1, seed=None) -> np.ndarray:
    """(n, nsim) array of new responses from the fitted model (see the module docstring).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> simulate_responses(fit.record, nsim=2, seed=1).shape
    (180, 2)
    """
    if int(nsim) != nsim or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, got {nsim!r}")
    nsim = int(nsim)
    rng = np.random.default_rng(seed)
    spec = record.spec
    mean = fitted_eta(spec, record.beta, record.b, include_random=False)
    y = np.repeat(mean[:, None], nsim, axis=1)
    for t, T in zip(spec.terms, relative_factors(spec.terms, record.theta)):
        factor = record.sigma * T          # Σ_k = σ² T_k T_kᵀ (singular fits too)
        u = rng.standard_normal((nsim, t.n_levels, t.n_cols)) @ factor.T
        y += np.einsum("ij,sij->is", t.z, u[:, t.codes, :])
    y += rng.standard_normal((spec.n, nsim)) * (record.sigma / np.sqrt(spec.weights))[:, None]
    return y
