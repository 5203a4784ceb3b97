"""The result base shared by every frequentist fit: fixed effects, Wald inference, random effects,
predictions, the confint method table, variance decomposition, plots and ``sample()``. LMM / GLMM /
CLMM results extend it; they never re-implement these.

A subclass provides ``spec``, ``theta``, ``beta``, ``vcov_beta`` (ndarray), ``b`` (list of (G, ℓ)
arrays, lme4's conditional modes per term), ``condvar`` (list of (G, ℓ, ℓ) conditional covariances),
``covs`` (Σ_k per term), ``loglik``, ``n_params``, ``_pymc_model(priors)`` (the same model as a
``pm.Model`` and the priors used) and, for ``confint(method=...)`` beyond Wald, its
``confint_methods`` table.
"""

from __future__ import annotations

import html
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import special

from .. import plotting
from ..bayes.sample import sample_model
from ..diagnostics.variance import icc as icc_table
from ..diagnostics.variance import r_squared as r_squared_table
from ..graph.linear_predictor import fitted_eta, new_eta
from ..inference.contrasts import contrast_table
from ..inference.emmeans import marginal_means
from ..inference.icc import icc_interval
from ..inference.wald import wald_test
from ..spec.frame import as_pandas
from .tables import html_table, to_latex, to_markdown
from .tidy import tidy_frame

__all__ = ["MixedResult", "per_row", "new_rows"]

#: ``fit.plot(kind)``: the plotting function of each kind.
PLOT_KINDS = {"caterpillar": plotting.caterpillar, "residuals": plotting.residual_plot,
              "qq": plotting.qq_plot, "quantile": plotting.quantile_plot}


def per_row(spec, values, columns=None, name: str | None = None):
    """Per-row values of the fitted rows, labelled with the user's row labels.

    Parameters
    ----------
    spec : ModelSpec
        The fit's spec: ``row_index`` labels the fitted rows; with ``na_action="exclude"`` the
        result is padded with NaN to every row of the user's data (``data_index``), as R's
        ``naresid`` / ``napredict``.
    values : array-like
        One value (or one row, with ``columns``) per fitted row.
    columns : list, optional
        Column labels of a 2-D ``values`` (a DataFrame is returned).
    name : str, optional
        Name of the returned Series.

    Returns
    -------
    Series or DataFrame
    """
    values = np.asarray(values)
    n = values.shape[0]
    index = spec.row_index if spec.row_index is not None and len(spec.row_index) == n \
        else pd.RangeIndex(n)
    keep = np.asarray(spec.keep, bool)
    if (spec.na_action == "exclude" and spec.data_index is not None
            and keep.shape[0] == len(spec.data_index) and int(keep.sum()) == n and n < keep.shape[0]):
        dtype = float if values.dtype.kind in "biuf" else object
        full = np.full((keep.shape[0],) + values.shape[1:], np.nan, dtype=dtype)
        full[keep] = values
        values, index = full, spec.data_index
    if columns is not None:
        return pd.DataFrame(values, index=index, columns=columns)
    return pd.Series(values, index=index, name=name)


def new_rows(newdata: pd.DataFrame, values, columns=None, name: str | None = None):
    """Predictions on ``newdata`` as a Series (or, with ``columns``, a DataFrame) indexed like it."""
    if columns is not None:
        return pd.DataFrame(np.asarray(values), index=newdata.index, columns=columns)
    return pd.Series(np.asarray(values), index=newdata.index, name=name)


class MixedResult:
    """Accessors common to LMM, GLMM and CLMM results (immutable once built).

    A result holds its fit's frozen record (``self.record``: :class:`~mixedppl.fit.records.LMMFit`
    or :class:`~mixedppl.fit.records.LaplaceFit`); the fields every record has are read here once.
    """

    stat_name = "z value"

    # -- the record's shared fields --------------------------------------------------------------
    @property
    def spec(self):
        """The :class:`~mixedppl.spec.model_spec.ModelSpec` the model was fitted from."""
        return self.record.spec

    @property
    def theta(self) -> np.ndarray:
        """lme4's θ (``getME(fit, "theta")``): the relative covariance factors' entries."""
        return self.record.theta

    @property
    def beta(self) -> np.ndarray:
        """β̂ as an array (:attr:`fe_params` names it)."""
        return self.record.beta

    @property
    def b(self) -> list[np.ndarray]:
        """Conditional modes per term, each (levels × columns)."""
        return list(self.record.b)

    @property
    def condvar(self) -> list[np.ndarray]:
        """Conditional covariances of the modes per term, each (levels × columns × columns)."""
        return list(self.record.condvar)

    @property
    def opt(self):
        """What the optimiser did (:class:`~mixedppl.fit.optimize.OptSummary`)."""
        return self.record.opt

    @property
    def converged(self) -> bool:
        return self.record.converged

    @property
    def is_singular(self) -> bool:
        """A variance estimated as 0 (or a correlation as ±1), as lme4's ``isSingular``."""
        return self.record.is_singular

    @property
    def timing(self) -> dict:
        """Seconds spent (``total``, ``compile``, ``optimize`` ...)."""
        return self.record.timing

    # -- fixed effects ---------------------------------------------------------------------------
    @cached_property
    def fe_params(self) -> pd.Series:
        """Fixed-effect estimates β̂, named as lme4's ``fixef()``."""
        return pd.Series(np.asarray(self.beta, float), index=self.spec.fe_names, name="Estimate")

    @cached_property
    def fe_cov(self) -> pd.DataFrame:
        """Covariance matrix of β̂ (lme4's ``vcov()``)."""
        names = self.spec.fe_names
        return pd.DataFrame(np.asarray(self.vcov_beta), index=names, columns=names)

    @cached_property
    def fe_bse(self) -> pd.Series:
        """Standard errors of β̂."""
        return pd.Series(np.sqrt(np.diag(self.vcov_beta)), index=self.spec.fe_names,
                         name="Std. Error")

    @property
    def zvalues(self) -> pd.Series:
        """Wald statistics β̂ / SE."""
        return (self.fe_params / self.fe_bse).rename(self.stat_name)

    #: ``confint(method=...)`` beyond Wald: method name → function of ``(fit record, level, **kw)``
    #: (see :meth:`_confint_target`). Subclasses fill it.
    confint_methods: dict = {}

    def confint(self, level: float = 0.95, method: str = "Wald", **kwargs) -> pd.DataFrame:
        """Confidence intervals: Wald (default) or, where the model has them, profile / bootstrap.

        lme4's ``confint`` defaults to profile intervals; here the default is Wald (fast and defined
        for every family). ``"profile"``: profile-likelihood intervals, for LMMs of the ML
        deviance as lme4 (:func:`mixedppl.inference.profile.profile_confint`), for GLMMs of the
        Laplace deviance (:func:`mixedppl.inference.glmm_profile.glmm_profile_confint`; also
        CLMMs, with the thresholds re-optimised; every family parameter is profiled too, as
        glmmTMB's: a single dispersion on the log scale, reported on its own, zero-inflation
        ``zi~x`` and dispersion-formula ``log(size)~x`` coefficients, the Tweedie / t shape
        ``psi(power)`` / ``psi(df)``, and the SDs of random terms in the ziformula,
        ``zi~sd_(Intercept)|site``).
        ``"boot"`` (LMMs, GLMMs, CLMMs): parametric-bootstrap percentile intervals, as lme4's
        ``bootMer`` (keywords ``nsim=500``, ``seed=1``, ``n_jobs=1``, ``progress=True``; see
        :func:`mixedppl.inference.bootstrap.bootstrap_confint` and
        :func:`~mixedppl.inference.bootstrap.glmm_bootstrap_confint`). Rows for both are lme4's
        ``oldNames=FALSE`` names: ``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``,
        …, ``sigma``, then the fixed effects.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> fit.confint().round(2).loc["Days"].tolist()
        [7.44, 13.5]
        >>> fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff"))
        >>> ci = fit.confint(method="profile")
        >>> ci.round(2).loc["sd_(Intercept)|Batch"].tolist()
        [12.2, 84.06]
        >>> list(ci.index)
        ['sd_(Intercept)|Batch', 'sigma', '(Intercept)']
        >>> boot = fit.confint(method="boot", nsim=20, seed=1, progress=False)
        >>> boot.shape
        (3, 2)
        >>> cbpp = mp.datasets.load("cbpp")
        >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
        >>> g.confint(method="profile").round(3).loc["period2"].tolist()
        [-1.617, -0.408]
        """
        key = method.lower()
        if key != "wald":
            return self._confint_other("boot" if key == "bootstrap" else key, level, **kwargs)
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        z = special.ndtri(0.5 + level / 2)
        est, se = self._wald_estimates()
        lo, hi = est - z * se, est + z * se
        pct = [f"{100 * (1 - level) / 2:.3g} %", f"{100 * (1 + level) / 2:.3g} %"]
        return pd.DataFrame({pct[0]: lo.to_numpy(), pct[1]: hi.to_numpy()}, index=est.index)

    def _confint_other(self, method: str, level: float, **kwargs) -> pd.DataFrame:
        if method not in ("profile", "boot"):
            raise ValueError(f"confint method must be 'Wald', 'profile' or 'boot', got {method!r}")
        if method not in self.confint_methods:
            available = " or ".join(repr(m) for m in ["Wald", *self.confint_methods])
            raise NotImplementedError(f"confint(method={method!r}) is not available for "
                                      f"{type(self).__name__}; use {available}")
        if method == "profile" and set(kwargs) - {"progress"}:
            raise TypeError("confint(method='profile') got unexpected arguments "
                            f"{sorted(set(kwargs) - {'progress'})}")
        return self.confint_methods[method](self._confint_target(), level=level, **kwargs)

    def _confint_target(self):
        """What the functions of :attr:`confint_methods` take: the fit's record (a result whose
        fit path returns none yet passes itself)."""
        return self

    def _wald_estimates(self) -> tuple[pd.Series, pd.Series]:
        """The estimates and SEs Wald intervals cover (β; a CLMM adds its thresholds)."""
        return self.fe_params, self.fe_bse

    # -- broom.mixed's tables --------------------------------------------------------------------
    def tidy(self, effects=("fixed", "ran_pars"), conf_int: bool = False,
             conf_level: float = 0.95) -> pd.DataFrame:
        """The parameters as broom.mixed's ``tidy()``: one row per fixed effect
        (``effect = "fixed"``) and random-effect SD / correlation (``"ran_pars"``); see
        :mod:`mixedppl.results.tidy`. ``conf_int=True`` adds Wald intervals (t with the
        Satterthwaite df for an LMM, normal otherwise; NaN for ``ran_pars``, as broom.mixed).

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> fit.tidy()[["effect", "group", "term"]].values.tolist()[2:]
        [['ran_pars', 'Subject', 'sd__(Intercept)'], ['ran_pars', 'Subject', 'cor__(Intercept).Days'], ['ran_pars', 'Subject', 'sd__Days'], ['ran_pars', 'Residual', 'sd__Observation']]
        >>> fit.tidy(conf_int=True).loc[1, ["conf_low", "conf_high"]].round(3).tolist()
        [7.206, 13.729]
        """
        return tidy_frame(self._tidy_fixed_table(), self.varcorr, effects, conf_int, conf_level)

    def _tidy_fixed_table(self) -> pd.DataFrame:
        """The coefficient table the ``fixed`` rows of :meth:`tidy` come from."""
        return self.coef_table()

    # -- tables for notebooks and documents ------------------------------------------------------
    def to_markdown(self, digits: int = 4) -> str:
        """The coefficient table (:meth:`tidy`'s fixed rows' source) as a Markdown table.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> print(fit.to_markdown().splitlines()[2])
        | (Intercept) | 251.4 | 6.825 | 17 | 36.84 | < 2.2e-16 |
        """
        return to_markdown(self._tidy_fixed_table(), digits)

    def to_latex(self, digits: int = 4, caption: str | None = None,
                 label: str | None = None) -> str:
        """The coefficient table as a LaTeX ``tabular`` (booktabs; a ``table`` float with a
        caption or label)."""
        return to_latex(self._tidy_fixed_table(), digits, caption, label)

    def _repr_html_(self) -> str:
        """Notebook display: the one-line description, then the coefficient and random-effect
        tables as HTML ``<table>`` elements."""
        return (f'<div class="mixedppl-result"><p><code>{html.escape(repr(self))}</code></p>'
                f"{html_table(self._tidy_fixed_table(), caption='Coefficients')}"
                f"{html_table(self.varcorr, caption='Random effects')}</div>")

    # -- marginal means, contrasts, Wald tests ---------------------------------------------------
    def _kr_for(self, ddf: str):
        """A cached Kenward–Roger adjustment when ``ddf`` asks for one (LMMs), else None."""
        return None

    def emmeans(self, specs, by=None, at: dict | None = None, type: str = "link",
                ddf: str = "Kenward-Roger", level: float = 0.95) -> pd.DataFrame:
        """Estimated marginal means, as R's ``emmeans(fit, specs, by = by, at = at)``.

        Means over emmeans' reference grid (factors at their levels, numeric predictors at
        their means unless ``at=``), equal weights over the other factors; rows in emmeans'
        order (first variable of ``specs`` fastest, ``by`` outermost). LMM df: Kenward–Roger
        (emmeans' default) or ``ddf="Satterthwaite"``; GLMM / CLMM: asymptotic (df = ∞); a
        CLMM's means are on emmeans' latent scale; ``type="response"`` back-transforms a
        GLMM's. See :func:`mixedppl.inference.emmeans.marginal_means`.

        Returns
        -------
        DataFrame
            ``specs`` / ``by`` variables, ``emmean`` (``response``), ``SE``, ``df``,
            ``lower_CL``, ``upper_CL``.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)",
        ...               mp.datasets.load("cake"))
        >>> fit.emmeans("recipe").round(3)[["recipe", "emmean", "SE", "df"]].values.tolist()
        [['A', 33.122, 1.737, 42.0], ['B', 31.644, 1.737, 42.0], ['C', 31.6, 1.737, 42.0]]
        """
        return marginal_means(self.record, specs, by, at, type=type, ddf=ddf, level=level,
                              kr=self._kr_for(ddf))

    def contrasts(self, specs, method="pairwise", adjust: str | None = None, by=None,
                  at: dict | None = None, ddf: str = "Kenward-Roger",
                  type: str = "link") -> pd.DataFrame:
        """Contrasts of marginal means, as ``contrast(emmeans(fit, specs, by = by), method)``.

        ``method``: ``"pairwise"`` ("A - B", "A - C", "B - C"), ``"revpairwise"`` ("B - A",
        "C - A", "C - B"), ``"trt.vs.ctrl"``, ``"poly"``, a dict of coefficient vectors or a
        matrix (one row per contrast); ``adjust``: ``"tukey"`` (pairwise default),
        ``"dunnettx"`` (trt.vs.ctrl default), ``"sidak"``, ``"holm"``, ``"bonferroni"``,
        ``"none"``, within each ``by`` group. ``type="response"`` (GLMMs, log / logit links):
        ratios / odds ratios ``"A / B"``, as emmeans' ``contrast(..., type = "response")``.
        See :mod:`mixedppl.inference.contrasts`.

        Returns
        -------
        DataFrame
            ``by`` variables, ``contrast``, ``estimate``, ``SE``, ``df``, ``ratio``, ``p_value``;
            on the response scale ``contrast``, ``ratio`` / ``odds_ratio``, ``SE``, ``df``,
            ``null``, ``z_ratio``, ``p_value``.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)",
        ...               mp.datasets.load("cake"))
        >>> fit.contrasts("recipe").round(4)[["contrast", "p_value"]].values.tolist()
        [['A - B', 0.82], ['A - C', 0.8102], ['B - C', 0.9998]]
        >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mp.datasets.load("cbpp"))
        >>> first = g.contrasts("period", type="response").iloc[0]
        >>> first["contrast"], round(float(first["odds_ratio"]), 3)
        ('period1 / period2', 2.698)
        """
        return contrast_table(self.record, specs, method, adjust, by, at, ddf,
                              kr=self._kr_for(ddf), type=type)

    def wald_test(self, hypothesis, rhs=None, ddf: str = "Satterthwaite") -> pd.DataFrame:
        """Wald test of ``L β = rhs``: ``"Days = 0"``, ``"period2 = period3"`` or a matrix L.

        LMMs: an F test with Satterthwaite / Kenward–Roger df (lmerTest's ``contest``, joint);
        GLMMs / CLMMs: χ². See :mod:`mixedppl.inference.wald`.

        Examples
        --------
        >>> import mixedppl as mp
        >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mp.datasets.load("cbpp"))
        >>> int(g.wald_test("period2, period3, period4")["Df"].iloc[0])
        3
        """
        return wald_test(self.record, hypothesis, rhs, ddf=ddf, kr=self._kr_for(ddf))

    # -- random effects --------------------------------------------------------------------------
    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels per grouping factor (lme4's ``ngrps``)."""
        return {t.group: t.n_levels for t in self.spec.terms}

    def _by_group(self, per_term: list[np.ndarray]) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for t, vals in zip(self.spec.terms, per_term):
            frame = pd.DataFrame(vals, index=pd.Index(t.levels, name=t.group),
                                 columns=t.column_names)
            out[t.group] = frame if t.group not in out else pd.concat([out[t.group], frame], axis=1)
        return out

    @cached_property
    def random_effects(self) -> dict[str, pd.DataFrame]:
        """Conditional modes (BLUPs) per grouping factor, levels × terms, as lme4's ``ranef()``."""
        return self._by_group(self.b)

    @cached_property
    def random_effects_se(self) -> dict[str, pd.DataFrame]:
        """Conditional SDs of the random effects (``attr(ranef(fit, condVar=TRUE), "postVar")``)."""
        return self._by_group([np.sqrt(np.clip(np.einsum("gii->gi", v), 0, None))
                               for v in self.condvar])

    def coef(self) -> dict[str, pd.DataFrame]:
        """Fixed plus random effects per level, as lme4's ``coef()``."""
        out = {}
        for group, re in self.random_effects.items():
            frame = pd.DataFrame(np.tile(self.fe_params.to_numpy(), (len(re), 1)), index=re.index,
                                 columns=self.spec.fe_names)
            for col in re.columns:
                if col in frame.columns:
                    frame[col] = frame[col] + re[col]
                else:
                    frame[col] = re[col]
            out[group] = frame
        return out

    def plot(self, kind: str = "caterpillar", **kwargs):
        """Plot the fit: ``"caterpillar"`` (conditional modes ± 95% intervals), ``"residuals"``
        (scaled residuals against fitted values), ``"qq"`` (normal QQ plot of the residuals) or
        ``"quantile"`` (uniform QQ plot of the simulation-based quantile residuals, every family;
        keywords ``nsim``, ``seed``).

        Examples
        --------
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> len(fit.plot().axes)
        2
        """
        if kind not in PLOT_KINDS:
            raise ValueError(f"unknown plot kind {kind!r}; available: {', '.join(PLOT_KINDS)}")
        return PLOT_KINDS[kind](self, **kwargs)

    # -- variance decomposition ------------------------------------------------------------------
    def latent_residual_variance(self) -> float:
        """Residual variance on the latent scale for :meth:`icc` / :meth:`r_squared`: the
        family's distribution-specific variance (binomial π²/3 logit, 1 probit, π²/6 cloglog;
        Nakagawa & Schielzeth 2013); an LMM's σ̂²."""
        return self.family.latent_variance(self.link)

    def icc(self, by_group: bool = False, ci: bool = False, method: str = "delta",
            level: float = 0.95, nsim: int = 500, seed=1, n_jobs: int = 1,
            progress: bool = False) -> pd.Series | pd.DataFrame:
        r"""Intra-class correlation, as ``performance::icc``.

        :math:`\text{ICC}_\text{adj} = \sigma^2_r / (\sigma^2_r + \sigma^2_\varepsilon)` and
        :math:`\text{ICC}_\text{unadj} = \sigma^2_r / (\sigma^2_f + \sigma^2_r + \sigma^2_\varepsilon)`,
        with σ²_f the variance of Xβ̂, σ²_r the mean of z_iᵀΣz_i over the observations (random
        slopes included, Johnson 2014) and σ²_ε the residual variance
        (:meth:`latent_residual_variance`; see :mod:`mixedppl.diagnostics.variance`).

        Parameters
        ----------
        by_group : bool
            One ICC per grouping factor, σ²_g / (Σ_k σ²_k + σ²_ε); only for random-intercept
            models (a ``ValueError`` says why otherwise, as performance refuses it).
        ci : bool
            Add a confidence interval (:func:`mixedppl.inference.icc.icc_interval`; LMMs and
            binomial GLMMs, not with ``by_group``).
        method : {"delta", "boot"}
            ``"delta"``: the delta method on the logit scale, from the covariance of (θ, σ, β)
            (LMM: lmerTest's 2H⁻¹ of the deviance in (θ, σ) and vcov β̂; GLMM: 2H⁻¹ of the
            Laplace deviance). ``"boot"``: percentile intervals over parametric-bootstrap refits,
            as ``performance::icc(ci = level)`` (keywords ``nsim``, ``seed``, ``n_jobs``,
            ``progress`` as ``confint(method="boot")``).
        level : float

        Returns
        -------
        Series or DataFrame
            ``adjusted``, ``unadjusted`` (or one value per grouping factor); with ``ci=True`` a
            DataFrame with columns ``ICC``, [``SE``,] and the interval's ends.

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
        >>> fit.icc(ci=True).round(3).loc["adjusted"].tolist()
        [0.722, 0.072, 0.562, 0.84]
        """
        if ci:
            if by_group:
                raise ValueError("icc(ci=True) gives intervals for the overall ICCs; drop by_group")
            return icc_interval(self._confint_target(), method=method, level=level, nsim=nsim,
                                seed=seed, n_jobs=n_jobs, progress=progress)
        return icc_table(self.spec, self.beta, self.covs, self.latent_residual_variance(),
                         by_group=by_group)

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
        return r_squared_table(self.spec, self.beta, self.covs, self.latent_residual_variance())

    # -- Bayesian switch -------------------------------------------------------------------------
    def sample(self, draws: int = 1000, tune: int = 1000, chains: int = 4, random_seed=1,
               priors: dict | None = None, progressbar: bool = True, sampler: str | None = None,
               marginalize: bool | None = None, log_likelihood: bool | None = None,
               **pm_kwargs):
        """Sample the same model with NUTS and return a BayesResult.

        Parameters
        ----------
        draws, tune, chains : int
            Posterior draws and tuning steps per chain, number of chains.
        random_seed : int, optional
        priors : dict, optional
            Overrides of the default priors: keys ``"fixed"``, ``"sd"``, ``"corr"``, ``"sigma"``
            (and ``"zi"`` / ``"disp"`` for zero-inflation / dispersion-formula coefficients),
            values :mod:`mixedppl.priors` objects (defaults: :mod:`mixedppl.bayes.priors`).
            ``"sd"`` and ``"corr"`` apply to the random terms of the ziformula too.
        progressbar : bool
            The sampler's progress bar.
        sampler : {"nutpie", "pymc", "numpyro", "blackjax"}, optional
            Default nutpie when installed (``pip install mixedppl[bayes]``), else PyMC's NUTS
            (:mod:`mixedppl.bayes.samplers`).
        marginalize : bool, optional
            LMMs only. Default: sample (β, θ, σ) from the marginal likelihood computed by the
            REML graph and draw the random effects from their exact conditional
            (:mod:`mixedppl.bayes.marginal`), except that where integrating every term out is
            expensive (a dense Schur complement of more than
            :data:`~mixedppl.bayes.marginal.MAX_MARGINAL_SCHUR` columns: InstEval's crossed
            students and lecturers) the widest crossed terms' effects are sampled with the
            parameters and the others integrated out given them. True integrates every term out
            whatever it costs; False samples every random effect (non-centred).
        log_likelihood : bool, optional
            Store the pointwise log-likelihood (conditional on the random effects) for LOO /
            WAIC; default yes (a marginalised LMM with more than 5·10⁷ draws × rows: no).
        **pm_kwargs
            ``cores``, ``target_accept`` (default 0.9); with ``sampler="pymc"`` whatever
            ``pm.sample`` takes; see :func:`mixedppl.bayes.sample.sample_model`.

        Returns
        -------
        BayesResult
            ``.idata`` holds posterior, sample_stats, pointwise log_likelihood and observed_data.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff"))
        >>> post = fit.sample(draws=200, tune=300, chains=2, cores=1, progressbar=False)
        >>> list(post.fe_params.index)
        ['(Intercept)']
        """
        model, used, marginalized = self._bayes_model(priors, marginalize)
        return sample_model(model, self.spec, used, draws=draws, tune=tune, chains=chains,
                            random_seed=random_seed, progressbar=progressbar, sampler=sampler,
                            marginalized=marginalized, log_likelihood=log_likelihood,
                            **pm_kwargs)

    def _bayes_model(self, priors: dict | None, marginalize: bool | None):
        """(pm.Model, priors used, marginalised?) for :meth:`sample`: the family's explicit
        model; only LMMs (which override this) can be marginalised."""
        if marginalize:
            raise ValueError(f"marginalize=True is for linear mixed models; a "
                             f"{type(self).__name__} samples its random effects explicitly "
                             "(leave marginalize unset)")
        model, used = self._pymc_model(priors)
        return model, used, False

    # -- linear predictor ------------------------------------------------------------------------
    def _eta(self, include_random: bool = True) -> np.ndarray:
        return fitted_eta(self.spec, self.beta, self.b, include_random)

    def linear_predictor(self, newdata: pd.DataFrame | None = None,
                         include_random: bool = True) -> np.ndarray:
        """Xβ + Zb + offset on the fitted rows or on ``newdata`` (unseen levels get b = 0)."""
        newdata = None if newdata is None else as_pandas(newdata, "newdata")
        if newdata is None:
            return self._eta(include_random)
        return new_eta(self.spec, self.beta, self.b, newdata, include_random)

    @property
    def nobs(self) -> int:
        return self.spec.n

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_params

    @property
    def bic(self) -> float:
        return -2 * self.loglik + np.log(self.nobs) * self.n_params

    @property
    def deviance(self) -> float:
        """−2 · log-likelihood (for REML fits: of the REML criterion's likelihood)."""
        return -2 * self.loglik
