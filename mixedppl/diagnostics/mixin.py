"""Diagnostic methods of fitted models (ICC, R², influence, leverage)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["DiagnosticsMixin", "VarianceDecompositionMixin"]


class VarianceDecompositionMixin:
    """``icc()`` and ``r_squared()`` (LMM and GLMM results)."""

    def icc(self, by_group: bool = False) -> pd.Series:
        r"""Intra-class correlation, as ``performance::icc``.

        :math:`\text{ICC}_\text{adj} = \sigma^2_r / (\sigma^2_r + \sigma^2_\varepsilon)` and
        :math:`\text{ICC}_\text{unadj} = \sigma^2_r / (\sigma^2_f + \sigma^2_r + \sigma^2_\varepsilon)`,
        with σ²_f the variance of Xβ̂, σ²_r the mean of z_iᵀΣz_i over the observations (random
        slopes included, Johnson 2014) and σ²_ε the residual variance
        (see :mod:`mixedppl.diagnostics.variance`).

        Parameters
        ----------
        by_group : bool
            One ICC per grouping factor, σ²_g / (Σ_k σ²_k + σ²_ε); only for random-intercept
            models (a ``ValueError`` says why otherwise, as performance refuses it).

        Returns
        -------
        Series
            ``adjusted``, ``unadjusted`` (or one value per grouping factor).

        References
        ----------
        Nakagawa, S., Johnson, P. C. D. & Schielzeth, H. (2017). J. R. Soc. Interface 14: 20170213.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> fit.icc().round(4).tolist()
        [0.7217, 0.5206]
        >>> fit2 = mp.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mp.datasets.load("penicillin"))
        >>> fit2.icc(by_group=True).round(4).to_dict()
        {'plate': 0.1509, 'sample': 0.7854}
        """
        from .variance import icc_by_group, variance_parts
        if by_group:
            return icc_by_group(self)
        v = variance_parts(self)
        rand, res, fix = v["var_random"], v["var_residual"], v["var_fixed"]
        return pd.Series({"adjusted": rand / (rand + res), "unadjusted": rand / (fix + rand + res)},
                         name="ICC")

    def r_squared(self) -> pd.Series:
        r"""Nakagawa & Schielzeth's marginal and conditional R² (Johnson's random-slope extension).

        :math:`R^2_m = \sigma^2_f / (\sigma^2_f + \sigma^2_r + \sigma^2_\varepsilon)`,
        :math:`R^2_c = (\sigma^2_f + \sigma^2_r) / (\sigma^2_f + \sigma^2_r + \sigma^2_\varepsilon)`,
        as ``performance::r2_nakagawa`` (terms as in :meth:`icc`).

        Returns
        -------
        Series
            ``marginal``, ``conditional``.

        References
        ----------
        Nakagawa, S. & Schielzeth, H. (2013). Methods Ecol. Evol. 4, 133–142;
        Johnson, P. C. D. (2014). Methods Ecol. Evol. 5, 944–946.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (1 | Subject)", mp.datasets.load("sleepstudy"))
        >>> fit.r_squared().round(4).tolist()
        [0.2799, 0.7043]
        """
        from .variance import variance_parts
        v = variance_parts(self)
        total = v["var_fixed"] + v["var_random"] + v["var_residual"]
        return pd.Series({"marginal": v["var_fixed"] / total,
                          "conditional": (v["var_fixed"] + v["var_random"]) / total}, name="R2")



class DiagnosticsMixin(VarianceDecompositionMixin):
    """Methods added to the LMM result: variance decomposition, influence, leverage."""

    def influence(self, level: str = "observation", method: str = "exact") -> pd.DataFrame:
        r"""Case-deletion influence measures, as HLMdiag (Cook's distance, MDFFITS, COVTRACE, COVRATIO, RVC).

        With δ = β̂ − β̂₍ᵢ₎, V = vcov(β̂), V₍ᵢ₎ that of the refit without case i and p fixed
        effects: ``cooks_d`` = δᵀV⁻¹δ/p, ``mdffits`` = δᵀV₍ᵢ₎⁻¹δ/p, ``covtrace`` =
        |tr(V⁻¹V₍ᵢ₎) − p|, ``covratio`` = det V₍ᵢ₎ / det V, ``rvc_<φ>`` = φ̂₍ᵢ₎/φ̂ − 1 for each
        random-effect variance / covariance and σ² (see :mod:`mixedppl.diagnostics.influence`).

        Parameters
        ----------
        level : str
            A grouping factor of the model (delete all rows of one level at a time) or
            ``"observation"`` (one row at a time; indexed by the row's 0-based position in the data).
        method : {"exact", "approx"}
            ``"exact"``: full refits (zero weights on the deleted rows, same compiled objective);
            ``"approx"``: one-step update with θ held at the full fit's θ̂.

        Returns
        -------
        InfluenceFrame
            One row per deleted case: a DataFrame (numbers and pandas methods unchanged) whose
            ``.plot()`` draws Cook's distance per case, or other measures with
            ``.plot(["cooks_d", "covratio"])`` (see
            :func:`mixedppl.diagnostics.influence.plot_influence`); it returns the Axes.

        References
        ----------
        Christensen, Pearson & Johnson (1992), Technometrics 34, 38–45; Loy & Hofmann (2014),
        J. Stat. Softw. 56(5).

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> infl = fit.influence(level="Subject")
        >>> infl["cooks_d"].idxmax(), round(float(infl["cooks_d"].max()), 4)
        ('309', 0.1485)
        >>> import matplotlib; matplotlib.use("Agg")
        >>> ax = infl.plot()                  # Cook's distance, one bar per subject
        >>> len(ax.patches)
        18
        """
        from .influence import influence_frame
        return influence_frame(self, level=level, method=method)

    def leverage(self, part: str = "total") -> np.ndarray:
        r"""Diagonal of the hat matrix: ``"total"`` (lme4's ``hatvalues``), ``"fixed"`` or ``"random"``.

        Total: H with Xβ̂ + Zb̂ = Hy; fixed: H_F = X(XᵀV⁻¹X)⁻¹XᵀV⁻¹; random: H − H_F
        (see :mod:`mixedppl.diagnostics.leverage`).

        References
        ----------
        Nobre, J. S. & Singer, J. M. (2007). Biom. J. 49, 863–875.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> fit.leverage()[:3].round(4).tolist()
        [0.2293, 0.1697, 0.1268]
        >>> round(float(fit.leverage("fixed").sum()), 6)
        2.0
        """
        if part not in ("total", "fixed", "random"):
            raise ValueError(f"part must be 'total', 'fixed' or 'random', got {part!r}")
        from .leverage import hat_diagonal
        return hat_diagonal(self, part)
