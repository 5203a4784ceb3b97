"""Confidence-interval methods beyond Wald (profile likelihood, parametric bootstrap)."""

from __future__ import annotations

import pandas as pd

__all__ = ["IntervalsMixin"]


class IntervalsMixin:
    """Methods added to the result classes."""

    def _confint_method(self, method: str, level: float = 0.95, **kwargs) -> pd.DataFrame:
        """``confint(method="profile" | "boot")`` (called by :meth:`MixedResult.confint`).

        ``"profile"``: profile-likelihood intervals of the ML deviance, as lme4 (see
        :func:`mixedppl.inference.profile.profile_confint`). ``"boot"``: parametric-bootstrap
        percentile intervals (keywords ``nsim=500``, ``seed=1``, ``n_jobs=1``, ``progress=True``;
        see :func:`mixedppl.inference.bootstrap.bootstrap_confint`). Rows for both are lme4's
        ``oldNames=FALSE`` names: ``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``, …,
        ``sigma``, then the fixed effects.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff"))
        >>> ci = fit.confint(method="profile")
        >>> ci.round(2).loc["sd_(Intercept)|Batch"].tolist()
        [12.2, 84.06]
        >>> list(ci.index)
        ['sd_(Intercept)|Batch', 'sigma', '(Intercept)']
        >>> boot = fit.confint(method="boot", nsim=20, seed=1, progress=False)
        >>> boot.shape
        (3, 2)
        """
        if method == "profile":
            if kwargs:
                raise TypeError(f"confint(method='profile') got unexpected arguments {sorted(kwargs)}")
            from .profile import profile_confint
            return profile_confint(self, level=level)
        if method in ("boot", "bootstrap"):
            from .bootstrap import bootstrap_confint
            return bootstrap_confint(self, level=level, **kwargs)
        raise ValueError(f"confint method must be 'Wald', 'profile' or 'boot', got {method!r}")
