r"""The Cox frailty benchmark cases and the simulated clustered survival set (no mixedppl import).

``simulate_clustered_survival`` draws the 20,000-row / 1,000-cluster set of issue 13: row i in
cluster g has hazard

.. math:: \lambda_i(t) = \lambda_0(t)\, e^{x_{1i}\beta_1 + x_{2i}\beta_2 + b_g},\qquad
          \lambda_0(t) = \frac{k}{s}\Big(\frac{t}{s}\Big)^{k-1},\qquad b_g \sim N(0, 0.5),

a Weibull baseline (shape k = 1.5, scale s = 10), :math:`x_1 \sim N(0, 1)`,
:math:`x_2 \sim \mathrm{Bernoulli}(0.5)`, β = (0.5, −0.3). The event time is drawn by inverting
the cumulative hazard, :math:`T = s\,(E\,e^{-\eta})^{1/k}` with E ~ Exp(1); an independent
exponential censoring time (rate 0.035) censors about 30 % of the rows, and the observed times are
rounded up to one decimal, which ties many of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
BUNDLED = HERE.parent / "mixedppl" / "datasets" / "data"

#: The frailty variance of the simulated set.
FRAILTY_VARIANCE = 0.5


def simulate_clustered_survival(n: int = 20_000, n_clusters: int = 1_000, seed: int = 13,
                                shape: float = 1.5, scale: float = 10.0,
                                beta: tuple[float, float] = (0.5, -0.3),
                                censor_rate: float = 0.035) -> pd.DataFrame:
    """Clustered survival data as described in the module docstring.

    Returns
    -------
    DataFrame
        Columns ``time`` (rounded up to 0.1), ``status`` (1 = event), ``x1``, ``x2``,
        ``cluster`` (a string label, clusters of equal size ``n // n_clusters``).

    Examples
    --------
    >>> d = simulate_clustered_survival(2_000, 100)
    >>> d.shape, d["cluster"].nunique(), bool(0.2 < 1 - d["status"].mean() < 0.4)
    ((2000, 5), 100, True)
    """
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(n_clusters), -(-n // n_clusters))[:n]
    frailty = rng.normal(0.0, np.sqrt(FRAILTY_VARIANCE), n_clusters)
    x1 = rng.normal(size=n)
    x2 = rng.integers(0, 2, n).astype(float)
    eta = beta[0] * x1 + beta[1] * x2 + frailty[cluster]
    event_time = scale * (rng.exponential(size=n) * np.exp(-eta)) ** (1.0 / shape)
    censor_time = rng.exponential(1.0 / censor_rate, size=n)
    time = np.ceil(np.minimum(event_time, censor_time) * 10.0) / 10.0
    return pd.DataFrame({"time": time, "status": (event_time <= censor_time).astype(int),
                         "x1": x1, "x2": x2, "cluster": [f"c{g}" for g in cluster]})


@dataclass(frozen=True)
class CoxCase:
    """One benchmark model: its formula, where its data comes from and the tie method."""

    name: str
    formula: str
    dataset: str | None        # a mixedppl.datasets name, or None for the simulated set
    ties: str = "efron"

    def load(self) -> pd.DataFrame:
        """The case's data (bundled CSV or the simulated set)."""
        if self.dataset is None:
            return simulate_clustered_survival()
        return pd.read_csv(BUNDLED / f"{self.dataset}.csv")


CASES: dict[str, CoxCase] = {c.name: c for c in (
    CoxCase("kidney", "Surv(time, status) ~ age + sex + (1 | id)", "kidney"),
    CoxCase("kidney_breslow", "Surv(time, status) ~ age + sex + (1 | id)", "kidney", "breslow"),
    CoxCase("rats", "Surv(time, status) ~ rx + (1 | litter)", "rats"),
    CoxCase("sim20k", "Surv(time, status) ~ x1 + x2 + (1 | cluster)", None),
)}
