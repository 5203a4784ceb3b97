"""LMMResult: a fitted linear mixed model (lme4 ``lmerMod`` + lmerTest's Satterthwaite tests).

The result wraps the frozen :class:`~mixedppl.fit.records.LMMFit` that
:func:`~mixedppl.fit.lmm_fit.fit_lmm` returns; its methods are short calls into
:mod:`mixedppl.inference` and :mod:`mixedppl.diagnostics`, which take the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import special

from ..bayes.priors import resolve_priors
from ..bayes.marginal import centred_terms, lmm_marginal_to_pymc, sampled_terms
from ..bayes.pymc import lmm_to_pymc
from ..core.control import LmerControl, as_control
from ..core.exceptions import ModelSpecError
from ..diagnostics.influence import influence_frame
from ..diagnostics.leverage import hat_diagonal
from ..diagnostics.residuals import quantile_residuals
from ..fit.lmm_fit import fit_lmm, refit_lmm
from ..fit.records import LMMFit, group_labels
from ..inference.bootstrap import bootstrap_confint
from ..inference.ftests import anova_table
from ..inference.kenward_roger import KRAdjusted, kr_adjusted, kr_coefficient_ddf
from ..inference.prediction import prediction_table
from ..inference.profile import profile_confint
from ..inference.satterthwaite import satterthwaite_df
from ..inference.simulate import simulate_responses
from ..spec.formula import update_formula
from ..spec.model_spec import build_spec
from ..spec.frame import as_pandas
from .base import MixedResult, new_rows, per_row
from .summary import Summary, lmm_summary
from .tidy import lmm_glance, tidy_frame
from .varcorr import varcorr_frame

__all__ = ["LMMResult"]


@dataclass(frozen=True, eq=False)
class LMMResult(MixedResult):
    """A linear mixed model fitted by REML or ML (see :func:`mixedppl.lmer`).

    ``LMMResult(record)`` wraps the :class:`~mixedppl.fit.records.LMMFit` of a fit.

    Attributes
    ----------
    record : LMMFit
        The fit's frozen record (what :func:`~mixedppl.fit.lmm_fit.fit_lmm` returns).
    theta : ndarray
        lme4's θ (``getME(fit, "theta")``): the relative covariance factors' entries.
    converged, is_singular : bool
    opt : OptSummary
        What the optimiser did.
    timing : dict
        Seconds spent: ``total``, ``compile`` (0 when the compiled function was cached),
        ``optimize`` and ``estimates`` (extraction at the optimum).

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.fit.lmm_fit import fit_lmm
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> fit = LMMResult(fit_lmm(spec))
    >>> round(fit.sigma, 4), fit.fe_params.round(3).tolist()
    (25.5918, [251.405, 10.467])
    """

    record: LMMFit

    stat_name = "t value"
    #: ``confint(method=...)`` beyond Wald: profile likelihood and parametric bootstrap.
    confint_methods = {"profile": profile_confint, "boot": bootstrap_confint}

    def _confint_target(self) -> LMMFit:
        return self.record

    # -- the record's fields ---------------------------------------------------------------------

    @property
    def reml(self) -> bool:
        return self.record.reml

    @property
    def sigma(self) -> float:
        """Residual SD (REML or ML estimate, as ``sigma(fit)``)."""
        return self.record.sigma

    @property
    def scale(self) -> float:
        """Residual variance σ²."""
        return self.record.scale

    @property
    def vcov_beta(self) -> np.ndarray:
        return self.record.vcov_beta

    @property
    def estimates(self) -> dict:
        return self.record.estimates

    @property
    def objective(self):
        """The compiled profiled deviance (:class:`~mixedppl.fit.lmm_objective.LMMObjective`)."""
        return self.record.objective

    @property
    def fval(self) -> float:
        return self.record.fval

    # -- scale and likelihood --------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Fixed effects + θ + σ (lme4's ``logLik`` df)."""
        return self.record.n_params

    @property
    def objective_value(self) -> float:
        """The optimised criterion: REML criterion for REML fits, ML deviance otherwise."""
        return self.record.objective_value

    @property
    def loglik(self) -> float:
        """Log-likelihood (the REML log-likelihood for REML fits, as lme4's ``logLik``)."""
        return self.record.loglik

    @property
    def reml_criterion(self) -> float | None:
        """REML criterion at the optimum (None for ML fits)."""
        return self.objective_value if self.reml else None

    def latent_residual_variance(self) -> float:
        """σ̂², the residual variance of :meth:`icc` / :meth:`r_squared`."""
        return self.scale

    # -- variance components ---------------------------------------------------------------------
    @property
    def covs(self) -> tuple[np.ndarray, ...]:
        """Σ_k, the covariance matrix of each term's random effects (the record's)."""
        return self.record.covs

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """As R's ``as.data.frame(VarCorr(fit))``: grp, var1, var2, vcov, sdcor (+ Residual)."""
        return varcorr_frame(self.spec.terms, self.covs, self.scale)

    @cached_property
    def variance_components(self) -> dict:
        """Group → variance (scalar terms) or covariance DataFrame (vector terms)."""
        out = {}
        for label, t, S in zip(group_labels(self.spec.terms), self.spec.terms, self.covs):
            out[label] = float(S[0, 0]) if t.n_cols == 1 else pd.DataFrame(
                S, index=t.column_names, columns=t.column_names)
        return out

    def _pymc_model(self, priors: dict | None = None):
        return lmm_to_pymc(self.spec, priors), resolve_priors(self.spec, priors)

    def _bayes_model(self, priors: dict | None, marginalize: bool | None):
        if marginalize is False:
            model, used = self._pymc_model(priors)
            return model, used, False
        # True: every term integrated out; None: the cheap split (sampled_terms)
        sampled = [] if marginalize else sampled_terms(self.spec)
        centred = centred_terms(sampled, self.covs, self.condvar)
        return (lmm_marginal_to_pymc(self.spec, priors, sampled=sampled, centred=centred),
                resolve_priors(self.spec, priors), True)

    # -- fitted values ---------------------------------------------------------------------------
    def fitted(self) -> pd.Series:
        """Conditional fitted values Xβ̂ + Zb̂ + offset.

        A Series indexed by the user's row labels of the rows used; with
        ``na_action="exclude"`` one value per row of the data, NaN on the rows dropped.
        """
        return per_row(self.spec, self._eta(True), name="fitted")

    def _residual_values(self, type: str = "response", scaled: bool = False, nsim: int = 250,
                         seed=123) -> np.ndarray:
        if type == "quantile":
            rng = np.random.default_rng(seed)
            return quantile_residuals(self.spec.y, simulate_responses(self.record, nsim, rng),
                                      rng)
        if type == "marginal":
            r = self.spec.y - self._eta(False)
        else:
            r = self.spec.y - self._eta(True)
        if type == "pearson":
            r = r * np.sqrt(self.spec.weights)
        elif type not in ("response", "marginal"):
            raise ValueError("type must be 'response', 'pearson', 'marginal' or 'quantile', "
                             f"got {type!r}")
        return r / self.sigma if scaled else r

    def residuals(self, type: str = "response", scaled: bool = False, nsim: int = 250,
                  seed=123) -> pd.Series:
        """Residuals: ``"response"`` y − fitted, ``"pearson"`` √w (y − fitted), ``"marginal"``
        y − Xβ̂ − offset (no random effects; HLMdiag's marginal residuals) — ``scaled`` divides
        these by σ̂ — or ``"quantile"``: DHARMa's simulation-based scaled residuals, uniform on
        (0, 1) under the model (``nsim`` responses simulated with new random effects; ``seed``;
        see :mod:`mixedppl.diagnostics.residuals`).

        Indexed as :meth:`fitted` (NaN on the dropped rows with ``na_action="exclude"``).

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> round(float(fit.residuals("marginal").iloc[0] + fit.fe_params["(Intercept)"]), 4)
        249.56
        """
        return per_row(self.spec, self._residual_values(type, scaled, nsim, seed),
                       name="residuals")

    def predict(self, newdata: pd.DataFrame | None = None, include_random: bool = True,
                se_fit: bool = False, interval: str | None = None,
                level: float = 0.95) -> pd.Series | pd.DataFrame:
        """Predictions Xβ̂ (+ Zb̂) (+ offset); levels unseen in the fit get random effect 0.

        A Series indexed like ``newdata`` (without it: the fitted rows, indexed as
        :meth:`fitted`). With ``se_fit=True`` or ``interval`` a DataFrame: ``fit``, ``se_fit``
        (delta method: x V xᵀ, plus the random effects' conditional variance when
        ``include_random``) and ``lower``, ``upper`` (``"confidence"``, or ``"prediction"``
        which adds σ̂²); see :mod:`mixedppl.inference.prediction`.

        Examples
        --------
        >>> import mixedppl as mp, pandas as pd
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> new = pd.DataFrame({"Days": [0, 5], "Subject": ["308", "999"]})
        >>> fit.predict(new).round(1).tolist()
        [253.7, 303.7]
        >>> fit.predict(new, include_random=False, se_fit=True)["se_fit"].round(3).tolist()
        [6.825, 9.581]
        """
        newdata = None if newdata is None else as_pandas(newdata, "newdata")
        eta = self.linear_predictor(newdata, include_random)
        if se_fit or interval is not None:
            table = prediction_table(self.record, eta, newdata, include_random, interval, level)
            return (per_row(self.spec, table.to_numpy(), list(table.columns)) if newdata is None
                    else new_rows(newdata, table.to_numpy(), list(table.columns)))
        if newdata is None:
            return per_row(self.spec, eta, name="predicted")
        return new_rows(newdata, eta, name="predicted")

    # -- Satterthwaite t tests (lmerTest) --------------------------------------------------------
    @cached_property
    def df(self) -> pd.Series:
        """Satterthwaite denominator df per coefficient (lmerTest's ``summary``)."""
        return pd.Series(satterthwaite_df(self.record), index=self.spec.fe_names, name="df")

    @property
    def tvalues(self) -> pd.Series:
        return self.zvalues

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of the t tests with Satterthwaite df."""
        p = 2 * special.stdtr(self.df.to_numpy(), -np.abs(self.tvalues.to_numpy()))
        return pd.Series(p, index=self.spec.fe_names, name="Pr(>|t|)")

    def coef_table(self, ddf: str = "Satterthwaite") -> pd.DataFrame:
        """Estimate, Std. Error, df, t value, Pr(>|t|).

        ``ddf``: "Satterthwaite" (lmerTest's default), "Kenward-Roger" (pbkrtest: adjusted SEs and
        df; REML fits, n ≤ 5000), "residual" (n − p) or "none" (normal z tests).

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> fit.coef_table(ddf="Kenward-Roger")["df"].round(3).tolist()
        [17.0, 17.0]
        """
        est, se = self.fe_params, self.fe_bse
        key = ddf.lower().replace("_", "-")
        if key in ("kenward-roger", "kr"):
            se = pd.Series(np.sqrt(np.diag(self.vcov_beta_kr)), index=est.index, name="Std. Error")
        t = est / se
        if key == "satterthwaite":
            df = self.df.to_numpy()
        elif key in ("kenward-roger", "kr"):
            df = self.df_kr.to_numpy()
        elif key == "residual":
            df = np.full(len(est), self.nobs - self.spec.p, float)
        elif key in ("none", "normal"):
            p = 2 * special.ndtr(-np.abs(t.to_numpy()))
            return pd.DataFrame({"Estimate": est, "Std. Error": se, "t value": t, "Pr(>|z|)": p})
        else:
            raise ValueError(f"ddf must be 'Satterthwaite', 'Kenward-Roger', 'residual' or 'none', "
                             f"got {ddf!r}")
        p = 2 * special.stdtr(df, -np.abs(t.to_numpy()))
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "df": df, "t value": t,
                             "Pr(>|t|)": p})

    def tidy(self, effects=("fixed", "ran_pars"), conf_int: bool = False,
             conf_level: float = 0.95, ddf: str = "Satterthwaite") -> pd.DataFrame:
        """broom.mixed's ``tidy()`` (:meth:`MixedResult.tidy`), the fixed rows from
        :meth:`coef_table` with denominator df ``ddf`` (broom.mixed's ``ddf.method``)."""
        return tidy_frame(self.coef_table(ddf), self.varcorr, effects, conf_int, conf_level)

    def glance(self) -> pd.DataFrame:
        """broom.mixed's ``glance()``: one row of nobs, sigma, logLik, AIC, BIC, REMLcrit (REML)
        or deviance (ML), df_residual (:func:`~mixedppl.results.tidy.lmm_glance`)."""
        return lmm_glance(self)

    def summary(self) -> Summary:
        """lme4 / lmerTest-style summary (print it; ``str()`` gives the text)."""
        return lmm_summary(self)

    # -- Kenward–Roger ---------------------------------------------------------------------------
    @cached_property
    def _kr_adjusted(self) -> KRAdjusted:
        return kr_adjusted(self.record)

    def _kr_for(self, ddf: str) -> KRAdjusted | None:
        return self._kr_adjusted if ddf.lower().replace("_", "-") in ("kenward-roger", "kr") \
            else None

    @cached_property
    def vcov_beta_kr(self) -> np.ndarray:
        r"""Kenward–Roger adjusted covariance of β̂ (pbkrtest's ``vcovAdj``).

        :math:`\Phi_A = \Phi + 2\Phi\,[\sum_{rs} W_{rs}(Q_{rs} - P_r\Phi P_s)]\,\Phi`; see
        :mod:`mixedppl.inference.kenward_roger` (Kenward & Roger 1997). REML fits with n ≤ 5000.

        Examples
        --------
        >>> import mixedppl as mp
        >>> pen = mp.datasets.load("penicillin")
        >>> fit = mp.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
        >>> round(float(fit.vcov_beta_kr[0, 0]) ** 0.5, 4)
        0.8086
        """
        return self._kr_adjusted.phi_adj

    @cached_property
    def df_kr(self) -> pd.Series:
        """Kenward–Roger denominator df of each coefficient's t test (pbkrtest's ``Lb_ddf``).

        Examples
        --------
        >>> import mixedppl as mp
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", mp.SingularFitWarning)
        ...     fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff2"))
        >>> fit.df_kr.round(3).tolist(), fit.df.round(3).tolist()
        ([5.0], [29.0])
        """
        return pd.Series(kr_coefficient_ddf(self._kr_adjusted), index=self.spec.fe_names,
                         name="df")

    # -- F tests ---------------------------------------------------------------------------------
    def anova(self, ddf: str = "Satterthwaite", type: int = 3) -> pd.DataFrame:
        r"""lmerTest's type III (or ``type=2``, type II) ANOVA table of the fixed terms.

        One F test per term of :math:`L_T\beta = 0`, :math:`L_T` lmerTest's type III contrasts
        (type I with a single term). ``ddf="Satterthwaite"``: :math:`F = \frac1q\sum_m
        (p_m^\top L\hat\beta)^2/d_m` over the eigenpairs of :math:`LV_\beta L^\top`, df combined
        from the per-row Satterthwaite df. ``ddf="Kenward-Roger"``: pbkrtest's scaled F with
        the adjusted covariance. See :mod:`mixedppl.inference.ftests` (Kuznetsova et al. 2017,
        J. Stat. Softw. 82(13)).

        Parameters
        ----------
        ddf : {"Satterthwaite", "Kenward-Roger"}
        type : {3, 2}
            Type II tests each term adjusted for the terms that do not contain it (lmerTest's
            ``anova(fit, type = 2)``).

        Returns
        -------
        DataFrame
            Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F), one row per term (none for an
            intercept-only model).

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> round(float(fit.anova().loc["Days", "F value"]), 3)
        45.853
        """
        kr = self._kr_adjusted if ddf.lower().replace("_", "-") in ("kenward-roger", "kr") \
            and self.spec.p > 1 else None
        return anova_table(self.record, ddf, kr=kr, type=type)

    # -- refits ----------------------------------------------------------------------------------
    def refit(self, newresp, control: LmerControl | None = None) -> "LMMResult":
        """The same model fitted to a new response (lme4's ``refit``), reusing the compiled model.

        Parameters
        ----------
        newresp : array-like (n,)
            One finite number per row used in the fit.
        control : LmerControl, optional

        Returns
        -------
        LMMResult

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> fit2 = fit.refit(fit.spec.y * 2)
        >>> round(float(fit2.fe_params["Days"] / fit.fe_params["Days"]), 6)
        2.0
        """
        return LMMResult(refit_lmm(self.record, y=newresp, control=control))

    def update(self, formula: str, data: pd.DataFrame | None = None, *, reml: bool | None = None,
               control: LmerControl | None = None, start=None, **build_kwargs) -> "LMMResult":
        """Refit with a formula derived from this one (R's ``update``: ``"~ . - Days"``).

        ``.`` stands for the fitted formula's side; ``. - term``, ``. + term``, ``~ . - (1 | g)``
        and a new response (``log(.) ~ .``) are understood. The data, weights, offset and
        contrasts of the original fit are reused unless given.

        Parameters
        ----------
        formula : str
        data : DataFrame, optional
            Data to refit on (default: the data the model was fitted to).
        reml : bool, optional
            Default: this fit's.
        control : LmerControl, optional
        start : array-like, optional
        **build_kwargs
            ``weights``, ``offset``, ``na_action``, ``contrasts``, as :func:`mixedppl.lmer`.

        Examples
        --------
        >>> import mixedppl as mp
        >>> d = mp.datasets.load("sleepstudy")
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", d)
        >>> fit.update("~ . - Days").spec.formula
        'Reaction ~ (1 + Days | Subject)'
        """
        if data is None:
            data = self.spec.data
            build_kwargs = {**self.spec.build_kwargs, **build_kwargs}
        data = as_pandas(data, "data", "update")
        control = as_control(control, "lmer")
        spec = build_spec(update_formula(self.spec, formula), data, control=control,
                          **build_kwargs)
        return LMMResult(fit_lmm(spec, reml=self.reml if reml is None else reml,
                                 control=control, start=start))

    def simulate(self, nsim: int = 1, seed=None) -> np.ndarray:
        r"""New responses from the fitted model, as lme4's ``simulate`` (``use.u = FALSE``).

        :math:`y^* = X\hat\beta + o + \sum_k Z_k u_k + \varepsilon` with new
        :math:`u_{k,g} \sim N(0,\hat\Sigma_k)` and :math:`\varepsilon_i\sim N(0,\hat\sigma^2/w_i)`.

        Parameters
        ----------
        nsim : int
        seed : int or numpy Generator, optional

        Returns
        -------
        ndarray (n, nsim)

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> fit.simulate(nsim=3, seed=1).shape
        (180, 3)
        """
        return simulate_responses(self.record, nsim, seed)

    # -- diagnostics -----------------------------------------------------------------------------
    def influence(self, level: str = "observation", method: str = "exact") -> pd.DataFrame:
        r"""Case-deletion influence measures, as HLMdiag (Cook's distance, MDFFITS, COVTRACE, COVRATIO, RVC).

        With δ = β̂ − β̂₍ᵢ₎, V = vcov(β̂), V₍ᵢ₎ that of the refit without case i and p fixed
        effects: ``cooks_d`` = δᵀV⁻¹δ/p, ``mdffits`` = δᵀV₍ᵢ₎⁻¹δ/p, ``covtrace`` =
        ``|tr(V⁻¹V₍ᵢ₎) − p|``, ``covratio`` = det V₍ᵢ₎ / det V, ``rvc_<φ>`` = φ̂₍ᵢ₎/φ̂ − 1 for each
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
        return influence_frame(self.record, level=level, method=method)

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
        return hat_diagonal(self.record, part)

    def __repr__(self) -> str:
        kind = "REML" if self.reml else "ML"
        return (f"<LMMResult {kind}: {self.spec.formula} | n={self.nobs}, "
                f"logLik={self.loglik:.4f}, converged={self.converged}>")
