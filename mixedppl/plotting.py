"""Plots of fitted models (matplotlib): caterpillar plots of the conditional modes, residuals
against fitted values, normal QQ plots and uniform QQ plots of quantile residuals."""

from __future__ import annotations

import numpy as np
import scipy
from scipy import special

__all__ = ["caterpillar", "residual_plot", "qq_plot", "quantile_plot"]


def caterpillar(fit, group: str | None = None, level: float = 0.95, ax=None):
    """Conditional modes ± z·(conditional SD) per level, sorted, one panel per term.

    Parameters
    ----------
    fit : a fitted result with ``random_effects`` and ``random_effects_se``
    group : str, optional
        Grouping factor (default: the first).
    level : float
        Coverage of the intervals drawn.
    ax : matplotlib Axes or array of Axes, optional

    Returns
    -------
    matplotlib Figure

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> fig = caterpillar(fit, "Subject")
    >>> len(fig.axes)
    2
    """
    import matplotlib.pyplot as plt

    group = group or next(iter(fit.random_effects))
    if group not in fit.random_effects:
        raise ValueError(f"unknown grouping factor {group!r}; valid: {list(fit.random_effects)}")
    re, se = fit.random_effects[group], fit.random_effects_se[group]
    z = special.ndtri(0.5 + level / 2)
    if ax is None:
        fig, axes = plt.subplots(1, re.shape[1], figsize=(3.2 * re.shape[1], 0.18 * len(re) + 1.2),
                                 sharey=False, squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(ax)
        fig = axes[0].figure
    for a, term in zip(axes, re.columns):
        order = np.argsort(re[term].to_numpy())
        vals, errs = re[term].to_numpy()[order], z * se[term].to_numpy()[order]
        y = np.arange(len(vals))
        a.errorbar(vals, y, xerr=errs, fmt="o", ms=3, lw=1)
        a.axvline(0, color="grey", lw=0.8)
        a.set_yticks(y)
        a.set_yticklabels(np.asarray(re.index)[order], fontsize=7)
        a.set_title(f"{group}: {term}")
    fig.tight_layout()
    return fig


def residual_plot(fit, ax=None):
    """Pearson residuals (scaled by σ for an LMM) against fitted values, with a zero line.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> residual_plot(fit).axes[0].get_xlabel()
    'fitted'
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.scatter(fit.fitted(), fit.residuals(type="pearson", scaled=True), s=8)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("fitted")
    ax.set_ylabel("scaled Pearson residual")
    return ax.figure


def qq_plot(fit, ax=None):
    """Normal quantile–quantile plot of the scaled Pearson residuals.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> qq_plot(fit).axes[0].get_ylabel()
    'sample quantiles'
    """
    import matplotlib.pyplot as plt

    r = np.sort(fit.residuals(type="pearson", scaled=True).dropna().to_numpy())
    n = len(r)
    theo = special.ndtri((np.arange(1, n + 1) - 0.5) / n)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(theo, r, s=8)
    lim = [min(theo[0], r[0]), max(theo[-1], r[-1])]
    ax.plot(lim, lim, color="grey", lw=0.8)
    ax.set_xlabel("normal quantiles")
    ax.set_ylabel("sample quantiles")
    return ax.figure


def quantile_plot(fit, nsim: int = 250, seed=123, ax=None):
    """Uniform QQ plot of the simulation-based quantile residuals (DHARMa's ``plotQQunif``),
    with the Kolmogorov–Smirnov test of uniformity in the title; every family.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import mixedppl as mp
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"))
    >>> quantile_plot(g, nsim=50).axes[0].get_xlabel()
    'expected (uniform) quantiles'
    """
    import matplotlib.pyplot as plt

    r = np.sort(fit.residuals(type="quantile", nsim=nsim, seed=seed).dropna().to_numpy())
    n = len(r)
    expected = (np.arange(1, n + 1) - 0.5) / n
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(expected, r, s=8)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    ks = scipy.stats.kstest(r, "uniform")
    ax.set_title(f"quantile residuals: KS p = {ks.pvalue:.3g}", fontsize=9)
    ax.set_xlabel("expected (uniform) quantiles")
    ax.set_ylabel("observed quantile residuals")
    return ax.figure
