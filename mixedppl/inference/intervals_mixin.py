"""Confidence-interval methods beyond Wald (profile likelihood, parametric bootstrap)."""

from __future__ import annotations

import pandas as pd

__all__ = ["IntervalsMixin", "other_confint"]


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
        return other_confint(self, method, level=level, **kwargs)


def other_confint(fit, method: str, level: float = 0.95, **kwargs) -> pd.DataFrame:
    """``confint(method=...)`` beyond Wald for any result: LMMs get ``"profile"`` and ``"boot"``,
    GLMMs (``glmer``, families without a dispersion parameter) ``"profile"``.

    Examples
    --------
    >>> import mixedppl as mp
    >>> cbpp = mp.datasets.load("cbpp")
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    >>> g.confint(method="profile").round(3).loc["period2"].tolist()
    [-1.617, -0.408]
    """
    from ..results.glmm import GLMMResult
    from ..results.lmm import LMMResult
    if method not in ("profile", "boot", "bootstrap"):
        raise ValueError(f"confint method must be 'Wald', 'profile' or 'boot', got {method!r}")
    if method == "profile":
        if kwargs:
            raise TypeError(f"confint(method='profile') got unexpected arguments {sorted(kwargs)}")
        if isinstance(fit, LMMResult):
            from .profile import profile_confint
            return profile_confint(fit, level=level)
        if isinstance(fit, GLMMResult):
            from .glmm_profile import glmm_profile_confint
            return glmm_profile_confint(fit, level=level)
    elif isinstance(fit, LMMResult):
        from .bootstrap import bootstrap_confint
        return bootstrap_confint(fit, level=level, **kwargs)
    raise NotImplementedError(
        f"confint(method={method!r}) is not available for {type(fit).__name__}; "
        + ("use 'Wald' or 'profile'" if isinstance(fit, GLMMResult) else "use 'Wald'"))
