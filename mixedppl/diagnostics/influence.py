r"""Case-deletion influence of a linear mixed model (HLMdiag's ``cooks.distance``, ``mdffits``,
``covtrace``, ``covratio``, ``rvc``).

Deleting case i (one observation, or every observation of one level of a grouping factor) gives
:math:`\hat\beta_{(i)}`, :math:`V_{(i)} = \widehat{\operatorname{vcov}}(\hat\beta_{(i)})` and the variance
components of the refit. With p fixed effects, :math:`\delta = \hat\beta - \hat\beta_{(i)}` and
:math:`V = \widehat{\operatorname{vcov}}(\hat\beta)` of the full fit:

.. math:: D_i = \delta^\top V^{-1}\delta / p,\quad \text{MDFFITS}_i = \delta^\top V_{(i)}^{-1}\delta / p,

.. math:: \text{COVTRACE}_i = |\operatorname{tr}(V^{-1}V_{(i)}) - p|,\quad
          \text{COVRATIO}_i = \det V_{(i)} / \det V,\quad
          \text{RVC}_{i,\varphi} = \hat\varphi_{(i)} / \hat\varphi - 1,

φ running over σ² and each random-effect variance and covariance. ``method="exact"`` refits the
model with zero prior weights on the deleted rows (the same compiled objective; a zero weight removes
the row, so n, and σ̂'s degrees of freedom, drop as in a refit without it), started from the full
fit's θ. ``method="approx"`` is the one-step update: θ held at the full fit's θ̂, β̂, σ̂ and
vcov recomputed once without the case (no optimisation).

GLMMs / CLMMs (:func:`glmm_influence_frame`): the same measures from case-deletion refits of
the Laplace deviance (zero prior weights on the deleted rows, the same compiled objective),
each started at the full fit's optimum and Hessian
(:func:`~mixedppl.fit.laplace_refit.warm_refit`), :math:`V_{(i)} = [2H_{(i)}^{-1}]_{\beta\beta}`
from differences of the exact gradient at the refit, and RVC over the random-effect variances
and covariances (no residual σ²). With random terms in the ziformula (``spec.zi_terms``) the
refits are of the joint deviance over (θ_c, θ_z, β, φ)
(:class:`~mixedppl.fit.laplace_zire.ZIReObjective`), the cases may be the levels of a zi
term's grouping factor too, and RVC covers the zi terms' variances (``rvc_zi~site.var(…)``).

The table is an :class:`InfluenceFrame`, a DataFrame whose ``.plot()`` draws the measures per
deleted case (:func:`plot_influence`, as HLMdiag's ``dotplot_diag``).

References
----------
Christensen, R., Pearson, L. M. & Johnson, W. (1992). Case-deletion diagnostics for mixed models.
Technometrics 34, 38–45.
Loy, A. & Hofmann, H. (2014). HLMdiag: a suite of diagnostics for hierarchical linear models in R.
J. Stat. Softw. 56(5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.control import LmerControl
from ..core.threads import blas_threads_for
from ..fit.laplace_refit import n_theta, refit_objective, warm_refit, warm_refit_vcov
from ..fit.laplace_zire import zi_spec
from ..fit.lmm_fit import refit_lmm, refit_theta, start_hessian
from ..fit.lmm_objective import LMMObjective
from ..fit.records import (LaplaceFit, LMMFit, beta_covariance, residual_variance,
                           term_covariances)

__all__ = ["InfluenceFrame", "influence_frame", "glmm_influence_frame", "plot_influence",
           "varcomp_names"]

_QUIET = LmerControl(check_conv="ignore", check_singular="ignore")


def varcomp_names(spec) -> list[str]:
    """``Subject.var((Intercept))``, ``Subject.cov((Intercept),Days)``, …, ``sigma2``; a
    structured term's components are its own parameters, SDs as variances and correlation
    parameters as they are: ``g.var(times1)`` (``g.var(ar1)`` for ar1's one SD), ``g.cor_cs``,
    ``g.cor_ar1``, ``g.cor_pacf1``, … (:meth:`~mixedppl.spec.covstruct.Covariance.psi_names`)."""
    out = []
    for t in spec.terms:
        cn = t.column_names
        if t.structured:
            for name in t.covariance.psi_names(t.group, cn):
                what = name.split("|")[0]
                out.append(f"{t.group}.var({what[3:]})" if what.startswith("sd_")
                           else f"{t.group}.{what}")
            continue
        for i, j in t.theta_pairs():
            out.append(f"{t.group}.var({cn[i]})" if i == j else f"{t.group}.cov({cn[j]},{cn[i]})")
    return out + ["sigma2"]


def _varcomp(spec, theta: np.ndarray, scale: float) -> np.ndarray:
    covs = term_covariances(spec.terms, theta, scale)
    vals, start = [], 0
    for t, S in zip(spec.terms, covs):
        start += t.n_theta
        if t.structured:
            cov = t.covariance
            psi = cov.to_psi(theta[start - t.n_theta:start], float(np.sqrt(scale)))
            vals += list(psi[:cov.n_sd] ** 2) + list(psi[cov.n_sd:])
            continue
        vals += [S[i, j] for i, j in t.theta_pairs()]
    return np.array(vals + [scale])


def _cases(record: LMMFit, level: str) -> tuple[list[str], list[np.ndarray]]:
    """Labels and row masks of the cases to delete."""
    spec = record.spec
    if level == "observation":
        rows = np.flatnonzero(spec.keep)      # positions in the user's data (0-based)
        return list(rows), [np.arange(spec.n) == i for i in range(spec.n)]
    terms = (*spec.terms, *getattr(spec, "zi_terms", ()))
    for t in terms:
        if level in (t.group, *t.group_vars) and (level == t.group or len(t.group_vars) == 1):
            return list(t.levels), [t.codes == g for g in range(t.n_levels)]
    valid = list(dict.fromkeys(t.group for t in terms)) + ["observation"]
    raise ValueError(f"level must be a grouping factor of the model or 'observation'; got "
                     f"{level!r}, valid: {valid}")


def _deleted_fit(record: LMMFit, mask: np.ndarray, method: str, hessian=None):
    """(β, vcov β, variance components) of the fit without the rows in ``mask``.

    The exact refit starts at θ̂ and, when ``hessian`` (scale, H) is given, from the full
    fit's Hessian as well (the projected quasi-Newton of
    :func:`~mixedppl.fit.lmm_fit.refit_theta`: ~6 deviance evaluations instead of ~20), then
    lme4's boundary checks; β̂, σ̂² = r²/(n − p·reml) and vcov β̂ = σ̂² (R_XᵀR_X)⁻¹ from the
    estimates at the refit's θ, as :func:`~mixedppl.fit.lmm_fit.fit_lmm` gives them.
    """
    w = np.where(mask, 0.0, record.spec.weights)
    theta = np.asarray(record.theta, float)
    if method == "exact" and (hessian is None or hessian[1] is None):
        f = refit_lmm(record, weights=w, control=_QUIET, start=record.theta)
        return f.beta, f.vcov_beta, _varcomp(f.spec, f.theta, f.scale)
    spec = record.spec.with_weights(w)
    obj = LMMObjective(spec, record.reml, structure=record.objective.structure)
    if method == "exact":
        theta = refit_theta(obj, theta, _QUIET, hessian)
    est = obj.estimates(theta)
    scale = residual_variance(est, obj.cp.n, spec.p, record.reml)
    return np.asarray(est["beta"]), beta_covariance(est, scale), _varcomp(spec, theta, scale)


def _measures(beta, V, vc, deleted) -> list[list[float]]:
    """Cook's D, MDFFITS, COVTRACE, COVRATIO and RVC per deleted fit (β_i, V_i, vc_i)."""
    Vinv, p = np.linalg.inv(V), len(beta)
    rows = []
    for b_i, V_i, vc_i in deleted:
        d = beta - b_i
        with np.errstate(divide="ignore", invalid="ignore"):
            rvc = np.where(vc != 0, vc_i / vc - 1, np.nan)
        rows.append([d @ Vinv @ d / p, d @ np.linalg.solve(V_i, d) / p,
                     abs(np.trace(Vinv @ V_i) - p), np.linalg.det(V_i) / np.linalg.det(V), *rvc])
    return rows


def _laplace_varcomp(record: LaplaceFit, x: np.ndarray) -> np.ndarray:
    """The random-effect variances and covariances at x = (θ, β, φ): the conditional terms',
    then those of the ziformula's terms (θ = (θ_c, θ_z))."""
    spec, nc = record.spec, record.spec.n_theta
    vc = _varcomp(spec, x[:nc], 1.0)[:-1]
    if not spec.zi_terms:
        return vc
    return np.concatenate([vc, _varcomp(zi_spec(spec), x[nc:n_theta(record)], 1.0)[:-1]])


def _laplace_varcomp_names(spec) -> list[str]:
    names = varcomp_names(spec)[:-1]
    if spec.zi_terms:
        names += [f"zi~{n}" for n in varcomp_names(zi_spec(spec))[:-1]]
    return names


def glmm_influence_frame(record: LaplaceFit, level: str = "observation") -> pd.DataFrame:
    """Case-deletion influence of a GLMM / CLMM (module docstring): one row per deleted case,
    cooks_d, mdffits, covtrace, covratio, rvc_<component>.

    Examples
    --------
    >>> import mixedppl as mp
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"))
    >>> glmm_influence_frame(g.record, level="herd").shape
    (15, 5)
    """
    spec = record.spec
    labels, masks = _cases(record, level)
    beta = np.asarray(record.beta)
    nt = n_theta(record)
    vc = _laplace_varcomp(record, np.concatenate([record.theta, record.zi_theta]))
    objectives = (refit_objective(record, weights=np.where(mask, 0.0, spec.weights))
                  for mask in masks)
    deleted = []
    first = next(objectives)
    with blas_threads_for(first):
        for obj in (first, *objectives):
            x, _ = warm_refit(record, obj)
            deleted.append((x[nt:nt + spec.p], warm_refit_vcov(obj, x, spec.p, nt),
                            _laplace_varcomp(record, x)))
    cols = ["cooks_d", "mdffits", "covtrace", "covratio"]
    cols += [f"rvc_{n}" for n in _laplace_varcomp_names(spec)]
    name = "observation" if level == "observation" else level
    return InfluenceFrame(_measures(beta, np.asarray(record.vcov_beta), vc, deleted),
                          index=pd.Index(labels, name=name), columns=cols)


def influence_frame(record: LMMFit, level: str = "observation",
                    method: str = "exact") -> pd.DataFrame:
    """One row per deleted case: cooks_d, mdffits, covtrace, covratio, rvc_<component>.

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> infl = influence_frame(fit.record, level="Subject", method="approx")
    >>> infl.shape
    (18, 8)
    """
    if method not in ("exact", "approx"):
        raise ValueError(f"method must be 'exact' or 'approx', got {method!r}")
    labels, masks = _cases(record, level)
    beta, V = np.asarray(record.beta), np.asarray(record.vcov_beta)
    vc = _varcomp(record.spec, record.theta, record.scale)
    hess = start_hessian(record) if method == "exact" else None
    with blas_threads_for(record.objective):
        deleted = [_deleted_fit(record, mask, method, hess) for mask in masks]
    rows = _measures(beta, V, vc, deleted)
    cols = ["cooks_d", "mdffits", "covtrace", "covratio"]
    cols += [f"rvc_{n}" for n in varcomp_names(record.spec)]
    name = "observation" if level == "observation" else level
    return InfluenceFrame(rows, index=pd.Index(labels, name=name), columns=cols)


_LABELS = {"cooks_d": "Cook's distance", "mdffits": "MDFFITS", "covtrace": "COVTRACE",
           "covratio": "COVRATIO"}


class _PlotAccessor:
    """``frame.plot``: called, draws :func:`plot_influence`; its attributes are pandas' own
    plot accessor's (``frame.plot.scatter(...)``, ``frame.plot.line()`` …)."""

    def __init__(self, frame: "InfluenceFrame"):
        self._frame = frame

    def __call__(self, measures="cooks_d", ax=None, **kwargs):
        return plot_influence(self._frame, measures=measures, ax=ax, **kwargs)

    def __getattr__(self, name):
        return getattr(pd.DataFrame(self._frame).plot, name)


class InfluenceFrame(pd.DataFrame):
    """The influence table (one row per deleted case), a DataFrame with a ``.plot()`` of its own.

    Everything a DataFrame does is unchanged, except that ``frame.plot()`` draws
    :func:`plot_influence` (Cook's distance per deleted case by default); pandas' plots stay
    available as ``frame.plot.bar(...)``, ``frame.plot.scatter(...)``, etc.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> infl = fit.influence(level="Subject")
    >>> ax = infl.plot()
    >>> len(ax.patches), ax.get_ylabel()
    (18, "Cook's distance")
    >>> axes = infl.plot(["cooks_d", "covratio"])
    >>> [a.get_ylabel() for a in axes]
    ["Cook's distance", 'COVRATIO']
    """

    @property
    def _constructor(self):
        return InfluenceFrame

    @property
    def plot(self):
        return _PlotAccessor(self)


def plot_influence(frame: pd.DataFrame, measures="cooks_d", ax=None, highlight: int = 3,
                   color: str = "C0", highlight_color: str = "C3"):
    r"""Bar chart of case-deletion influence measures, one bar per deleted case.

    As HLMdiag's ``dotplot_diag``, drawn as bars: one panel per measure, the cases in the table's
    order (levels of the grouping factor, or observations), the ``highlight`` largest values in
    another colour and labelled. For ``covratio`` (1 = no influence) the bars start at 1.

    Parameters
    ----------
    frame : DataFrame
        The output of :meth:`~mixedppl.results.lmm.LMMResult.influence` (or :func:`influence_frame`).
    measures : str or list of str
        Columns to draw: ``"cooks_d"`` (default), ``"mdffits"``, ``"covtrace"``, ``"covratio"`` or
        an ``rvc_…`` column.
    ax : matplotlib Axes or sequence of Axes, optional
        Where to draw (one per measure); a new figure otherwise.
    highlight : int
        How many of the largest values (for covratio: farthest from 1) to colour and label.
    color, highlight_color : str
        Bar colours.

    Returns
    -------
    matplotlib Axes (one measure) or ndarray of Axes (several)

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> ax = plot_influence(fit.influence(level="Subject"))
    >>> len(ax.patches), ax.get_title()
    (18, "Cook's distance by Subject")
    """
    import matplotlib.pyplot as plt

    single = isinstance(measures, str)
    measures = [measures] if single else list(measures)
    unknown = [m for m in measures if m not in frame.columns]
    if unknown:
        raise ValueError(f"unknown measure(s) {unknown}; valid: {list(frame.columns)}")
    if ax is None:
        n = len(frame)
        fig, axes = plt.subplots(len(measures), 1, squeeze=False, sharex=True,
                                 figsize=(min(max(4.0, 0.28 * n + 1.5), 14.0),
                                          2.6 * len(measures) + 0.6))
        axes = axes[:, 0]
    else:
        axes = np.atleast_1d(ax)
        fig = axes[0].figure
    if len(axes) != len(measures):
        raise ValueError(f"{len(measures)} measure(s) but {len(axes)} Axes")
    labels = [str(v) for v in frame.index]
    x = np.arange(len(frame))
    group = frame.index.name or "case"
    for a, m in zip(axes, measures):
        vals = frame[m].to_numpy(float)
        base = 1.0 if m == "covratio" else 0.0
        dev = np.nan_to_num(np.abs(vals - base), nan=-np.inf)
        top = np.argsort(-dev, kind="stable")[:max(0, int(highlight))]
        colors = np.full(len(vals), color, dtype=object)
        colors[top] = highlight_color
        a.bar(x, vals - base, bottom=base, color=list(colors), width=0.8)
        a.axhline(base, color="grey", lw=0.8)
        for i in top:
            if np.isfinite(vals[i]):
                a.annotate(labels[i], (x[i], vals[i]), xytext=(0, 2), textcoords="offset points",
                           ha="center", va="bottom" if vals[i] >= base else "top", fontsize=7)
        a.set_ylabel(_LABELS.get(m, m))
        a.set_title(f"{_LABELS.get(m, m)} by {group}")
    last = axes[-1]
    if len(frame) <= 60:
        last.set_xticks(x)
        last.set_xticklabels(labels, rotation=90, fontsize=7)
    last.set_xlabel(group)
    fig.tight_layout()
    return axes[0] if single else axes
