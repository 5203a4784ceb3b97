"""GLMMResult: a fitted generalized linear mixed model (lme4's ``glmerMod``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import special

from ..bayes.glmm_pymc import glmm_to_pymc
from ..core.exceptions import ModelSpecError
from ..diagnostics.influence import glmm_influence_frame
from ..diagnostics.leverage import glmm_hat_diagonal
from ..diagnostics.residuals import deviance_residuals, quantile_residuals
from ..families.glm import shaped
from ..fit.records import LaplaceFit
from ..inference.bootstrap import glmm_bootstrap_confint
from ..inference.glmm_profile import glmm_profile_confint
from ..inference.prediction import prediction_table
from ..inference.refit import refit_laplace, update_laplace
from ..inference.simulate import simulate_counts, simulate_laplace
from ..spec.frame import as_pandas, check_columns, numeric_vector
from .base import MixedResult, new_rows, per_row
from .rprint import format_real
from .summary import (Summary, coef_block, correlation_block, fit_notes, groups_line, ic_block,
                      random_effects_table, residuals_block, title_block)
from .tidy import glmm_glance
from .varcorr import varcorr_frame
from .zi_disp import (part_blocks, part_estimates, part_tidy_rows, row_parts, zi_random_blocks,
                      zi_random_effects, zi_varcorr)

__all__ = ["GLMMResult", "LaplaceResult"]


@dataclass(frozen=True, eq=False)
class LaplaceResult(MixedResult):
    """What GLMM and CLMM results share: the frozen :class:`~mixedppl.fit.records.LaplaceFit`
    they wrap, and its fields as read-only attributes."""

    record: LaplaceFit

    def _confint_target(self) -> LaplaceFit:
        return self.record

    @property
    def family(self):
        return self.record.family

    @property
    def link(self):
        return self.record.link

    @property
    def phi(self) -> np.ndarray:
        return self.record.phi

    @property
    def deviance_laplace(self) -> float:
        return self.record.deviance_laplace

    @property
    def counts(self) -> np.ndarray:
        return self.record.counts

    @property
    def hessian(self) -> np.ndarray | None:
        return self.record.hessian

    @property
    def nAGQ(self) -> int:
        return self.record.nAGQ

    @property
    def covs(self) -> tuple[np.ndarray, ...]:
        """Σ_k, the covariance matrix of each term's random effects (the record's)."""
        return self.record.covs

    @property
    def loglik(self) -> float:
        """Log-likelihood −D/2, constants included (R's ``logLik`` for Laplace and nAGQ = 0, where
        D is the Laplace formula at the joint IRLS mode (û, β̂); for nAGQ > 1 with binomial
        trials > 1 lme4 drops the saturated log-likelihood, we do not)."""
        return self.record.loglik

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided Wald z p-values of β."""
        return pd.Series(2 * special.ndtr(-np.abs(self.zvalues.to_numpy())),
                         index=self.spec.fe_names, name="Pr(>|z|)")

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value, Pr(>|z|) of β (summary()'s coefficient table)."""
        return pd.DataFrame({"Estimate": self.fe_params, "Std. Error": self.fe_bse,
                             "z value": self.zvalues, "Pr(>|z|)": self.pvalues})

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """``as.data.frame(VarCorr(fit))``: variances / covariances and SDs / correlations.

        With random terms in the ziformula, a leading ``component`` column: the conditional
        model's rows (``"cond"``, glmmTMB's ``VarCorr(fit)$cond``), then the zero-inflation
        model's (``"zi"``, ``VarCorr(fit)$zi``; alone in :attr:`zi_varcorr`)."""
        cond = varcorr_frame(self.spec.terms, self.covs, None)
        zi = zi_varcorr(self)
        if zi is None:
            return cond
        return pd.concat([cond.assign(component="cond"), zi.assign(component="zi")],
                         ignore_index=True)[["component", *cond.columns]]

    @cached_property
    def zi_varcorr(self) -> pd.DataFrame | None:
        """glmmTMB's ``VarCorr(fit)$zi`` in lme4's layout (None without random terms in the
        ziformula)."""
        return zi_varcorr(self)

    @cached_property
    def zi_random_effects(self) -> dict[str, pd.DataFrame]:
        """glmmTMB's ``ranef(fit)$zi``: conditional modes of the ziformula's random terms per
        grouping factor ({} without them; :attr:`random_effects` is ``ranef(fit)$cond``)."""
        return zi_random_effects(self)

    @cached_property
    def zi_random_effects_se(self) -> dict[str, pd.DataFrame]:
        """Conditional SDs of :attr:`zi_random_effects`."""
        return zi_random_effects(self, se=True)

    @property
    def zi_theta(self) -> np.ndarray:
        """θ of the ziformula's random terms (lme4's layout; empty without them)."""
        return np.asarray(self.record.zi_theta)

    # -- simulation and refits -------------------------------------------------------------------
    def simulate(self, nsim: int = 1, seed=None) -> np.ndarray:
        r"""New responses from the fitted model, as lme4's ``simulate`` (``use.u = FALSE``).

        New random effects :math:`u_{k,g} \sim N(0, \hat\Sigma_k)`, then
        :math:`y^* \sim p(y \mid X\hat\beta + o + Zu, \hat\phi)` by the family's simulator
        (see :mod:`mixedppl.inference.simulate`); random terms in the ziformula draw new
        zero-inflation effects too, as glmmTMB's ``simulate``. Values are on the scale of
        ``spec.y``, what
        :meth:`refit` takes: proportions for a binomial (the fit's trials), counts, positive
        values, or category codes 0 … K − 1 of a CLMM (``levels[code]`` is the label).

        Returns
        -------
        ndarray (n, nsim)

        Examples
        --------
        >>> import mixedppl as mp
        >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mp.datasets.load("cbpp"))
        >>> g.simulate(nsim=4, seed=1).shape
        (56, 4)
        """
        return simulate_laplace(self.record, nsim, seed)

    def refit(self, newresp, control=None):
        """The same model fitted to a new response (lme4's ``refit``; see :meth:`simulate` for
        its scale), the compiled deviance reused and θ started at this fit's θ̂; fitted as this
        fit was (its nAGQ, lme4's nAGQ = 0 included).

        Examples
        --------
        >>> import mixedppl as mp
        >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mp.datasets.load("cbpp"))
        >>> g2 = g.refit(g.simulate(seed=2)[:, 0])
        >>> g2.spec.formula == g.spec.formula
        True
        """
        return type(self)(refit_laplace(self.record, newresp, control))

    def update(self, formula: str, data: pd.DataFrame | None = None, *, control=None,
               **build_kwargs):
        """Refit with a formula derived from this one (R's ``update``: ``"~ . - period"``); the
        data, weights, offset, contrasts and na_action of the fit are reused unless given.

        Examples
        --------
        >>> import mixedppl as mp
        >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mp.datasets.load("cbpp"))
        >>> g.update("~ . - period").spec.formula
        'cbind(incidence, size - incidence) ~ (1 | herd)'
        """
        return type(self)(update_laplace(self.record, formula, data, control, **build_kwargs))

    def influence(self, level: str = "observation") -> pd.DataFrame:
        """Case-deletion influence (Cook's distance, MDFFITS, COVTRACE, COVRATIO, RVC of the
        random-effect variances) from warm-started refits without each case: one observation
        or every row of one level of ``level`` (see
        :func:`mixedppl.diagnostics.influence.glmm_influence_frame`).

        Examples
        --------
        >>> import mixedppl as mp
        >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mp.datasets.load("cbpp"))
        >>> g.influence("herd")["cooks_d"].idxmax()
        '11'
        """
        return glmm_influence_frame(self.record, level)

    def _quantile_values(self, nsim: int, seed) -> np.ndarray:
        """DHARMa's quantile residuals of the response counts against ``nsim`` simulated ones
        (:func:`mixedppl.diagnostics.residuals.quantile_residuals`)."""
        rng = np.random.default_rng(seed)
        return quantile_residuals(self.counts, simulate_counts(self.record, nsim, rng), rng)


@dataclass(frozen=True, eq=False)
class GLMMResult(LaplaceResult):
    """A GLMM fitted by maximum likelihood (Laplace or adaptive GHQ; see :func:`mixedppl.glmer`).

    ``GLMMResult(record)`` wraps the :class:`~mixedppl.fit.records.LaplaceFit` of a fit.

    Attributes
    ----------
    record : LaplaceFit
        The fit's frozen record (:func:`~mixedppl.fit.laplace.fit_laplace`,
        :func:`~mixedppl.fit.laplace_nagq0.fit_nagq0`).
    theta : ndarray
        lme4's θ: the random effects' covariance factors (no residual scale: σ = 1).
    beta, vcov_beta : ndarray
        Fixed effects and their covariance ``[2 H⁻¹]_ββ`` (H: Hessian of the Laplace deviance over
        (θ, β)); for ``nAGQ = 0`` lme4's ``(R_XᵀR_X)⁻¹`` from the penalised IRLS (θ held fixed).
    b, condvar : list of ndarray
        Conditional modes b = Λû per term (G, ℓ) and conditional covariances Λ(LLᵀ)⁻¹Λᵀ.
    counts, trials : ndarray
        The response as counts (successes) and trials / prior weights.
    converged, is_singular : bool
    separation : tuple of str
        Fixed effects flagged by the separation checks when the model was fitted (binomial; see
        :mod:`mixedppl.fit.checks`): their estimates diverge. Empty when none were.
    opt : OptSummary
    timing : dict
        Seconds: ``compile`` (0 when cached), ``optimize``, ``total``.

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.glmm_api import glmer
    >>> g = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...           mp.datasets.load("cbpp"))
    >>> g.varcorr.round(3).to_dict("records")[0]["sdcor"]
    0.642
    >>> g.odds_ratios().round(3).loc["period2"].tolist()
    [0.371, 0.203, 0.676]
    """

    #: ``confint(method=...)`` beyond Wald: profile deviance and parametric bootstrap.
    confint_methods = {"profile": glmm_profile_confint, "boot": glmm_bootstrap_confint}

    def _pymc_model(self, priors: dict | None = None):
        return glmm_to_pymc(self.spec, self.family, self.link, self.counts, self.trials, priors)

    @property
    def trials(self) -> np.ndarray:
        return self.record.trials

    @property
    def vcov_beta(self) -> np.ndarray:
        return self.record.vcov_beta

    @property
    def vcov_beta_phi(self) -> np.ndarray | None:
        return self.record.vcov_beta_phi

    @property
    def mu(self) -> np.ndarray:
        return self.record.mu

    @property
    def eta(self) -> np.ndarray:
        return self.record.eta

    @property
    def separation(self) -> tuple:
        return self.record.separation

    # -- likelihood ------------------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        return len(self.theta) + len(self.record.zi_theta) + self.spec.p + len(self.phi)

    @property
    def dispersion(self) -> float | None:
        """The family's dispersion φ, as glmmTMB's ``sigma()``: NB2 size (R's ``theta``), Gamma
        coefficient of variation (shape = 1/φ²), Beta precision; None for binomial / Poisson
        and for a dispersion formula with more than an intercept (``predict(type="disp")``
        gives φ per row)."""
        if self.family.disp_names != ("(Intercept)",):
            return None
        value = float(np.exp(self.phi[self.family.n_zi]))
        shape = getattr(self.family, "shape_value", None)
        return value if shape is None else shaped(value, shape(self.phi))

    @property
    def dispersion_se(self) -> float | None:
        """Delta-method SE of :attr:`dispersion` (from the Hessian over log φ)."""
        if self.dispersion is None or self.vcov_beta_phi is None:
            return None
        k = self.spec.p + self.family.n_zi          # log φ's place (a shape parameter follows)
        return float(self.dispersion * np.sqrt(self.vcov_beta_phi[k, k]))

    @property
    def family_params(self) -> pd.Series | None:
        """glmmTMB's ``family_params(fit)``: the Tweedie power p = 1 + plogis(psi) or Student's
        df ν = exp(psi), labelled as glmmTMB labels them; None for other families.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixedppl as mp
        >>> r = np.random.default_rng(1)
        >>> d = pd.DataFrame({"g": np.repeat(np.arange(10), 8), "x": r.normal(size=80)})
        >>> d["y"] = 1 + d.x + r.normal(size=10)[d.g] + 0.5 * r.standard_t(4, size=80)
        >>> fit = mp.glmer("y ~ x + (1 | g)", d, family="t")
        >>> fit.family_params.index.tolist()
        ['Student-t df']
        """
        shape = getattr(self.family, "shape", None)
        if shape is None:
            return None
        return pd.Series([self.family.shape_value(self.phi)], index=[shape.label],
                         name="family_params")

    @property
    def psi_bse(self) -> float | None:
        """Standard error of glmmTMB's ``psi`` (the shape parameter on its own scale: qlogis(p
        − 1) for the Tweedie, log ν for the t), from the Hessian of the Laplace deviance."""
        if getattr(self.family, "shape", None) is None or self.vcov_beta_phi is None:
            return None
        return float(np.sqrt(self.vcov_beta_phi[-1, -1]))

    @property
    def disp_params(self) -> pd.Series | None:
        """The dispersion coefficients on glmmTMB's scale (``fixef(fit)$disp``, named by the
        columns of the ``dispformula``): log σ² for the Gaussian, log shape = −2 log φ for the
        Gamma, log φ otherwise; None without φ."""
        got = part_estimates(self, "disp")
        return None if got is None else got[0]

    @property
    def disp_bse(self) -> pd.Series | None:
        """Standard errors of :attr:`disp_params` (from the Hessian of the Laplace deviance)."""
        got = part_estimates(self, "disp")
        return None if got is None else got[1]

    @property
    def zi_params(self) -> pd.Series | None:
        """The zero-inflation (or hurdle) coefficients on the logit scale, glmmTMB's
        ``fixef(fit)$zi``; None without ``ziformula``."""
        got = part_estimates(self, "zi")
        return None if got is None else got[0]

    @property
    def zi_bse(self) -> pd.Series | None:
        """Standard errors of :attr:`zi_params`."""
        got = part_estimates(self, "zi")
        return None if got is None else got[1]

    @property
    def deviance(self) -> float:
        """−2 · log-likelihood (summary()'s ``deviance``; R's ``deviance()`` is conditional)."""
        return -2 * self.loglik

    @property
    def df_resid(self) -> int:
        return self.nobs - self.n_params

    # -- Wald inference --------------------------------------------------------------------------
    def _exp_table(self, level: float) -> pd.DataFrame:
        ci = np.exp(self.confint(level=level))
        out = pd.DataFrame({"estimate": np.exp(self.fe_params)})
        return pd.concat([out, ci], axis=1)

    def odds_ratios(self, level: float = 0.95) -> pd.DataFrame:
        """exp(β̂) with exponentiated Wald intervals (meaningful for the logit link)."""
        return self._exp_table(level)

    def incidence_rate_ratios(self, level: float = 0.95) -> pd.DataFrame:
        """exp(β̂) with exponentiated Wald intervals (meaningful for the log link)."""
        return self._exp_table(level)

    # -- variance components ---------------------------------------------------------------------
    @cached_property
    def variance_components(self) -> dict:
        """Covariance matrix of each term's random effects, by grouping factor label."""
        return {f"{t.group}": pd.DataFrame(S, index=t.column_names, columns=t.column_names)
                for t, S in zip(self.spec.terms, self.covs)}

    # -- predictions -----------------------------------------------------------------------------
    def fitted(self) -> pd.Series:
        """Fitted means μ̂ on the response scale (proportions for the binomial).

        A Series indexed by the user's row labels of the rows used; with
        ``na_action="exclude"`` one value per row of the data, NaN on the rows dropped.
        """
        return per_row(self.spec, self._response_mean(self._eta(True)), name="fitted")

    @cached_property
    def _parts(self) -> tuple:
        """(π, φ) on the fitted rows (:func:`~mixedppl.results.zi_disp.row_parts`)."""
        return row_parts(self)

    def _response_mean(self, eta: np.ndarray, parts: tuple | None = None) -> np.ndarray:
        """E(y) at η: the inverse link's μ, or a zero-truncated row's μ/(1 − p₀), times 1 − π
        with a zero part, as glmmTMB's ``fitted()`` / ``predict(type = "response")``."""
        zprob, disp = self._parts if parts is None else parts
        mu = self.link.linkinv_np(eta)
        if zprob is None:
            return self.family.response_mean(mu, disp)
        return self.family.response_mean(mu, disp, zprob)

    def predict(self, newdata: pd.DataFrame | None = None, type: str = "response",
                include_random: bool = True, offset=None, se_fit: bool = False,
                interval: str | None = None, level: float = 0.95) -> pd.Series | pd.DataFrame:
        """Predictions on the ``"response"`` or ``"link"`` scale (unseen levels: b = 0), and
        glmmTMB's ``"conditional"`` (the mean of the non-structural part: μ, or a truncated
        row's μ/(1 − p₀)), ``"zprob"`` (π of a zero-inflated / hurdle model) and ``"disp"``
        (φ per row on the family's natural scale, glmmTMB's ``predict(type = "disp")``).

        A Series indexed like ``newdata`` (without it: the fitted rows, indexed as
        :meth:`fitted`). With ``se_fit=True`` or ``interval="confidence"`` a DataFrame:
        ``fit``, ``se_fit`` (delta method on the link scale, x V xᵀ plus the random effects'
        conditional variance when ``include_random``; times ``|dμ/dη|`` on the response scale),
        ``lower``, ``upper`` (link-scale limits, back-transformed); see
        :mod:`mixedppl.inference.prediction`.

        Offsets on new rows, as lme4's ``predict.merMod``: ``offset(...)`` terms of the formula
        are evaluated on ``newdata``; the fit's ``offset=`` argument, when it named a column, is
        read from that column of ``newdata``. An array ``offset=`` of the fit belongs to the
        fitted rows, so ``newdata`` then needs its own: pass ``offset=`` here (a column name or
        one value per row of ``newdata``; it replaces the fit's ``offset=`` argument, never the
        formula's offset terms).

        Examples
        --------
        >>> import numpy as np, mixedppl as mp
        >>> cbpp = mp.datasets.load("cbpp")
        >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
        ...              offset=np.full(len(cbpp), 0.5))
        >>> eta = g.predict(cbpp.head(2), type="link", offset=[0.5, 0.5])
        >>> bool(np.allclose(eta, g.linear_predictor()[:2]))
        True
        """
        newdata = None if newdata is None else as_pandas(newdata, "newdata")
        if type not in ("response", "link", "conditional", "zprob", "disp"):
            raise ValueError("type must be 'response', 'link', 'conditional', 'zprob' or "
                             f"'disp', got {type!r}")
        if include_random:
            parts = self._parts if newdata is None else row_parts(self, newdata)
        else:   # re.form = NA: no random effects in either predictor
            parts = row_parts(self, newdata, include_random=False)
        if newdata is None:
            if offset is not None:
                raise ValueError("offset= is for the rows of newdata; the fitted rows use the "
                                 "fit's own offset")
            eta = self.linear_predictor(None, include_random)
        else:
            eta = self.linear_predictor(newdata, include_random) + self._new_offset(newdata,
                                                                                   offset)
        if (se_fit or interval is not None) and self.family.truncated_mean is not None:
            what = ("zero-inflated / hurdle" if self.spec.aux_designs else "zero-truncated")
            raise NotImplementedError(
                f"se_fit / interval for the {what} family {self.family.name!r} (its "
                "response mean is not the inverse link of η): use type='link'-scale draws from "
                "fit.simulate() or fit.confint(method='boot')")
        if se_fit or interval is not None:
            table = prediction_table(self.record, eta, newdata, include_random, interval, level,
                                     type=type)
            return (per_row(self.spec, table.to_numpy(), list(table.columns)) if newdata is None
                    else new_rows(newdata, table.to_numpy(), list(table.columns)))
        out = self._predicted(eta, type, parts)
        if newdata is None:
            return per_row(self.spec, out, name="predicted")
        return new_rows(newdata, out, name="predicted")

    def _predicted(self, eta: np.ndarray, type: str, parts: tuple) -> np.ndarray:
        zprob, disp = parts
        if type == "link":
            return eta
        if type == "response":
            return self._response_mean(eta, parts)
        if type == "conditional":
            return self.family.conditional_mean(self.link.linkinv_np(eta), disp)
        if type == "zprob":
            if zprob is None:
                raise ModelSpecError("type='zprob': the model has no zero-inflation part "
                                     "(fit with ziformula=)")
            return zprob
        if disp is None:
            raise ModelSpecError(f"type='disp': family {self.family.name!r} has no dispersion "
                                 "parameter")
        return np.broadcast_to(np.asarray(disp, float), eta.shape).copy()

    def _new_offset(self, newdata: pd.DataFrame, offset) -> np.ndarray | float:
        """The ``offset=`` part of η on ``newdata`` (the formula's offset terms are in X's
        transform)."""
        arg = offset if offset is not None else (self.spec.build_kwargs or {}).get("offset")
        if arg is None:
            return 0.0
        if isinstance(arg, str):
            check_columns(newdata, [arg], "offset=")
            return numeric_vector(newdata[arg], f"offset column {arg!r}", len(newdata))
        if offset is None:
            raise ModelSpecError(
                "the model was fitted with an array offset= (one value per fitted row), so the "
                f"{len(newdata)} rows of newdata need their own: pass predict(newdata, "
                "offset=...) with one value per row (or a column name), or fit with "
                "offset='column' / offset(...) in the formula")
        return numeric_vector(offset, "offset", len(newdata))

    def _residual_values(self, type: str = "pearson", nsim: int = 250, seed=123) -> np.ndarray:
        if type == "quantile":
            return self._quantile_values(nsim, seed)
        n = self.trials
        y = self.family.mean_response(self.counts, n)
        eta = self._eta(True)
        mu = self.link.linkinv_np(eta)
        if type == "response":
            return y - self._response_mean(eta)
        if type == "pearson":
            # the family's variance is that of y (a truncated row's: of the truncated law)
            zprob, disp = self._parts
            extra = () if zprob is None else (zprob,)
            return (y - self._response_mean(eta)) / np.sqrt(
                self.family.variance(mu, np.where(n > 0, n, 1), disp, *extra))
        if type == "deviance":
            return deviance_residuals(self.family, y, mu, n, self._parts[1])
        raise ValueError("type must be 'pearson', 'response', 'deviance' or 'quantile', got "
                         f"{type!r}")

    def residuals(self, type: str = "pearson", scaled: bool = False, nsim: int = 250,
                  seed=123) -> pd.Series:
        r"""Residuals on the proportion / count scale at the conditional means μ̂.

        ``"pearson"`` (y − μ)/√V(μ), ``"response"`` y − μ, ``"deviance"`` sign(y − μ)√d_i
        (R's ``residuals(glmer, type = "deviance")``: the family's unit deviance d_i; the
        Tweedie's is statmod's, free of φ; none for the t, nor from glmmTMB 1.1.5 for any
        family),
        ``"quantile"``: DHARMa's simulation-based scaled residuals, uniform on (0, 1) under
        the model (``nsim`` simulated responses with new random effects, randomised for
        discrete families; ``seed``). See :mod:`mixedppl.diagnostics.residuals`.

        ``scaled`` is accepted for the LMM signature: a GLMM has no residual scale beyond the
        variance function (dispersion included), so it changes nothing.

        Indexed as :meth:`fitted` (NaN on the dropped rows with ``na_action="exclude"``).

        Examples
        --------
        >>> import mixedppl as mp
        >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mp.datasets.load("cbpp"))
        >>> g.residuals("deviance").round(4).iloc[:2].tolist()
        [-1.438, 0.9887]
        >>> r = g.residuals("quantile", seed=1)
        >>> bool(((r >= 0) & (r <= 1)).all())
        True
        """
        return per_row(self.spec, self._residual_values(type, nsim, seed), name="residuals")

    # -- diagnostics -----------------------------------------------------------------------------
    def leverage(self) -> np.ndarray:
        r"""Diagonal of the hat matrix of the penalised weighted least-squares problem at the
        mode (IRLS weights W): :math:`h_i = W_i a_i^\top M^{-1} a_i`, in [0, 1].

        lme4's ``hatvalues(glmer)`` multiplies by the prior weight instead of W_i; its value is
        ``leverage() * prior_weight / W`` (see :mod:`mixedppl.diagnostics.leverage`).

        Examples
        --------
        >>> import mixedppl as mp
        >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mp.datasets.load("cbpp"))
        >>> g.leverage()[:3].round(4).tolist()
        [0.4103, 0.2546, 0.1902]
        """
        return glmm_hat_diagonal(self.record)

    def glance(self) -> pd.DataFrame:
        """broom.mixed's ``glance()`` (:func:`~mixedppl.results.tidy.glmm_glance`)."""
        return glmm_glance(self)

    # -- printing --------------------------------------------------------------------------------
    def summary(self):
        """Text summary in the layout of lme4's ``summary(glmer(...))`` print-out: R's digits
        per column (``printCoefmat`` with ``digits = 4``), the random-effects table and the
        "Correlation of Fixed Effects" as lme4 prints them."""
        method = ("Laplace Approximation" if self.nAGQ == 1 else
                  f"Adaptive Gauss-Hermite Quadrature, nAGQ = {self.nAGQ}")
        kind = "glmerMod" if self.family.hessian == "fisher" else "exact-Hessian Laplace, as glmmTMB"
        family = f" Family: {self.family.name}  ( {self.link.name} )"
        if self.dispersion is not None:
            family += f"  dispersion ({self.family.dispersion}): {format_real([self.dispersion], 4)[0]}"
        if self.family_params is not None:
            family += "  " + ", ".join(f"{k}: {format_real([v], 4)[0]}"
                                      for k, v in self.family_params.items())
        lines = [
            title_block(f"Generalized linear mixed model fit by maximum likelihood ({method})",
                        kind),
            family, f"Formula: {self.spec.formula}", "",
            ic_block(self.aic, self.bic, self.loglik, self.deviance, self.df_resid), "",
            residuals_block(self._residual_values("pearson")), "", "Random effects:",
            *self._random_blocks(), "",
            "Fixed effects:" if not self.spec.aux_designs else "Conditional model:",
            coef_block(self.coef_table(), "Pr(>|z|)"), *part_blocks(self),
        ] + (correlation_block(self.fe_cov) if not self.spec.aux_designs else [])
        notes = fit_notes(self)
        return Summary("\n".join(lines + ([""] + notes if notes else [])),
                       tables={"Random effects": self.varcorr, "Fixed effects": self.coef_table()})

    def _random_blocks(self) -> list[str]:
        """The random-effects tables: lme4's, or glmmTMB's "Conditional model:" and
        "Zero-inflation model:" blocks when the ziformula has random terms."""
        zi = zi_random_blocks(self)
        if not zi:
            return [random_effects_table(self, residual=False),
                    groups_line(self.ngroups, self.nobs)]
        cond = (["", "Conditional model:", random_effects_table(self, residual=False),
                 groups_line(self.ngroups, self.nobs)] if self.spec.terms else [])
        return cond + zi

    def tidy(self, effects=("fixed", "ran_pars"), conf_int: bool = False,
             conf_level: float = 0.95) -> pd.DataFrame:
        """broom.mixed's ``tidy()``; with a zero-inflation / dispersion part a ``component``
        column (``"cond"``, ``"zi"``, ``"disp"``, as ``tidy(glmmTMB)``) and those parts' rows."""
        out = super().tidy(effects, conf_int, conf_level)
        if not self.spec.aux_designs or "fixed" not in effects:
            return out
        out.insert(1, "component", "cond")
        extra = part_tidy_rows(self, conf_int, conf_level).reindex(columns=out.columns)
        return pd.concat([out, extra], ignore_index=True)

    def __repr__(self) -> str:
        return (f"<GLMMResult {self.family.name}({self.link.name}) {self.spec.formula!r}: "
                f"logLik {self.loglik:.4f}, {self.nobs} obs>")
