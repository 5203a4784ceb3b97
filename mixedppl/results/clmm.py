"""CLMMResult: a fitted cumulative link mixed model (ordinal's ``clmm``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..bayes.glmm_pymc import clmm_to_pymc
from ..core.exceptions import ModelSpecError
from ..diagnostics.leverage import glmm_hat_diagonal
from ..inference.bootstrap import glmm_bootstrap_confint
from ..inference.glmm_profile import glmm_profile_confint
from ..inference.prediction import clmm_prediction_table
from ..spec.reterm import value_labels
from ..spec.frame import as_pandas
from .base import new_rows, per_row
from .glmm import LaplaceResult
from .rprint import print_matrix
from .summary import Summary, coef_block, fit_notes, random_effects_table
from .tidy import clmm_fixed_table, clmm_glance

__all__ = ["CLMMResult"]


@dataclass(frozen=True, eq=False)
class CLMMResult(LaplaceResult):
    r"""A cumulative link mixed model fitted by maximum likelihood (see :func:`mixedppl.clmm`).

    The model is :math:`P(Y_i \le j) = F(\alpha_j - x_i^\top\beta - z_i^\top b)` with thresholds
    :math:`\alpha_1 < \dots < \alpha_{K-1}` and no intercept in :math:`x_i`.

    ``CLMMResult(record)`` wraps the :class:`~mixedppl.fit.records.LaplaceFit` of the fit
    (with its thresholds α and the covariance of (α̂, β̂)).

    Attributes
    ----------
    record : LaplaceFit
    thresholds : Series
        α, named ``"1|2"``, ``"2|3"``, … from the response levels (ordinal's ``alpha``).
    theta : ndarray
        Random-effect covariance factors (scalar terms: the SD).
    beta, vcov_beta : ndarray
        Fixed effects (no intercept) and their covariance.
    vcov_all : ndarray
        Covariance of (α, β) (ordinal's ``vcov()`` without the variance parameters).
    levels : list of str
        Response categories in order.
    converged, is_singular : bool

    Examples
    --------
    >>> import mixedppl as mp
    >>> r = mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))
    >>> r.thresholds.round(3).to_dict()
    {'1|2': -1.624, '2|3': 1.513, '3|4': 4.229, '4|5': 6.089}
    >>> round(r.variance_components["judge"], 3)
    1.279
    """

    #: profile intervals of sd/cor and β (thresholds re-optimised at every point); parametric
    #: bootstrap intervals of sd/cor, thresholds and β.
    confint_methods = {"profile": glmm_profile_confint, "boot": glmm_bootstrap_confint}

    def _pymc_model(self, priors: dict | None = None):
        return clmm_to_pymc(self.spec, self.family, self.link, self.counts, self.weights,
                            self.levels, priors)

    # -- parameters --------------------------------------------------------------------------
    @property
    def threshold_names(self) -> list[str]:
        return [f"{a}|{b}" for a, b in zip(self.levels[:-1], self.levels[1:])]

    @property
    def alpha(self) -> np.ndarray:
        return self.record.alpha

    @property
    def vcov_all(self) -> np.ndarray:
        """Covariance of (α̂, β̂) (ordinal's ``vcov()`` without the variance parameters)."""
        return self.record.vcov_alpha_beta

    @property
    def weights(self) -> np.ndarray:
        """The prior weights (``spec.counts()``'s second part)."""
        return self.record.trials

    @property
    def levels(self) -> list:
        return list(self.spec.levels)

    @cached_property
    def thresholds(self) -> pd.Series:
        """Threshold estimates α (ordinal's ``fit$alpha``)."""
        return pd.Series(self.alpha, index=self.threshold_names, name="Estimate")

    @cached_property
    def thresholds_bse(self) -> pd.Series:
        k = len(self.alpha)
        return pd.Series(np.sqrt(np.diag(self.vcov_all)[:k]), index=self.threshold_names,
                         name="Std. Error")

    @property
    def vcov_beta(self) -> np.ndarray:
        k = len(self.alpha)
        return self.vcov_all[k:, k:]

    @property
    def n_params(self) -> int:
        return len(self.alpha) + self.spec.p + len(self.theta)

    def _wald_estimates(self) -> tuple[pd.Series, pd.Series]:
        """Thresholds then β (what :meth:`confint` covers, as ordinal's ``confint``)."""
        return (pd.concat([self.thresholds, self.fe_params]),
                pd.concat([self.thresholds_bse, self.fe_bse]))

    def odds_ratios(self, level: float = 0.95) -> pd.DataFrame:
        r"""exp(β̂) with exponentiated Wald intervals: the cumulative odds ratios of a logit model
        (:math:`P(Y \le j)` is :math:`F(\alpha_j - x^\top\beta)`, so a unit increase of x
        multiplies the odds of a *higher* category by exp(β)); thresholds are not included.

        Examples
        --------
        >>> import mixedppl as mp
        >>> r = mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))
        >>> list(r.odds_ratios().columns)
        ['estimate', '2.5 %', '97.5 %']
        """
        ci = np.exp(self.confint(level=level).loc[self.spec.fe_names])
        return pd.concat([pd.DataFrame({"estimate": np.exp(self.fe_params)}), ci], axis=1)

    def threshold_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value of α (summary's "Threshold coefficients")."""
        return pd.DataFrame({"Estimate": self.thresholds, "Std. Error": self.thresholds_bse,
                             "z value": self.thresholds / self.thresholds_bse})

    # -- variance components -----------------------------------------------------------------
    @cached_property
    def variance_components(self) -> dict:
        """Random-effect variance per grouping factor (a float for a scalar term, as
        ``VarCorr(fit)`` in ordinal; the covariance DataFrame for a vector term)."""
        out = {}
        for t, S in zip(self.spec.terms, self.covs):
            out[t.group] = (float(S[0, 0]) if t.n_cols == 1 else
                            pd.DataFrame(S, index=t.column_names, columns=t.column_names))
        return out

    # -- predictions -------------------------------------------------------------------------
    def _check_newdata_response(self, newdata: pd.DataFrame) -> None:
        col = self.spec.response_name
        if newdata is None or col not in newdata.columns:
            return
        labels = value_labels(newdata[col].dropna())
        unknown = sorted(set(labels) - set(self.levels))
        if unknown:
            raise ModelSpecError(f"newdata column {col!r} has level(s) {unknown} that the "
                                 f"response never had; its levels are {self.levels}")

    def predict(self, newdata: pd.DataFrame | None = None, type: str = "prob",
                include_random: bool = True, se_fit: bool = False,
                interval: str | None = None, level: float = 0.95) -> pd.DataFrame | pd.Series:
        """Predictions: ``"prob"`` (n, K) category probabilities, ``"cum.prob"`` (n, K − 1)
        P(Y ≤ j), ``"class"`` (most probable level) or ``"linear.predictor"`` x'β + z'b
        (unseen group levels get b = 0; ``include_random=False`` gives the population level).

        ``"prob"`` is a DataFrame with a column per level, ``"cum.prob"`` one per threshold
        (``"1|2"``, …); ``"class"`` and ``"linear.predictor"`` are Series. Rows are indexed like
        ``newdata`` (without it: the fitted rows, indexed as :meth:`fitted`).

        With ``se_fit=True`` or ``interval="confidence"`` (not for ``"class"``): delta-method
        standard errors over (α̂, β̂), plus the random effects' conditional variance when
        ``include_random`` (:func:`~mixedppl.inference.prediction.clmm_prediction_table`;
        without random effects ordinal's ``predict(clm, se.fit = TRUE)``). For
        ``"linear.predictor"`` a DataFrame ``fit, se_fit[, lower, upper]``; for ``"prob"`` /
        ``"cum.prob"`` a DataFrame with two column levels, ``out["fit"]``, ``out["se_fit"]``
        (and ``out["lower"]``, ``out["upper"]``, built on the logit scale as ordinal's) each
        one column per level / threshold.

        Examples
        --------
        >>> import mixedppl as mp
        >>> wine = mp.datasets.load("wine")
        >>> r = mp.clmm("rating ~ temp + contact + (1 | judge)", wine)
        >>> r.predict(wine.head(1)).round(3).values.tolist()
        [[0.035, 0.42, 0.472, 0.061, 0.012]]
        >>> r.predict(wine.head(1), se_fit=True)["se_fit"].round(3).values.tolist()
        [[0.03, 0.183, 0.15, 0.055, 0.014]]
        """
        newdata = None if newdata is None else as_pandas(newdata, "newdata")
        kinds = ("prob", "cum.prob", "class", "linear.predictor")
        if type not in kinds:
            raise ValueError(f"type must be one of {kinds}, got {type!r}")
        self._check_newdata_response(newdata)
        eta = self.linear_predictor(newdata, include_random)
        if se_fit or interval is not None:
            names = {"prob": list(self.levels), "cum.prob": self.threshold_names}.get(type)
            table = clmm_prediction_table(self.record, eta, newdata, include_random, type,
                                          interval, level, names)
            return (per_row(self.spec, table.to_numpy(), table.columns) if newdata is None
                    else new_rows(newdata, table.to_numpy(), table.columns))
        columns = None
        if type == "linear.predictor":
            out = eta
        elif type == "cum.prob":
            out, columns = self.family.cumprob_np(self.alpha, eta, self.link), self.threshold_names
        else:
            prob = self.family.prob_np(self.alpha, eta, self.link)
            if type == "class":
                out = np.asarray(self.levels, dtype=object)[np.argmax(prob, axis=1)]
            else:
                out, columns = prob, list(self.levels)
        if newdata is None:
            return per_row(self.spec, out, columns, name=type)
        return new_rows(newdata, out, columns, name=type)

    def fitted(self) -> pd.Series:
        """Probability of the observed category given the conditional modes (ordinal's
        ``fitted()``).

        A Series indexed by the user's row labels of the rows used; with
        ``na_action="exclude"`` one value per row of the data, NaN on the rows dropped.
        """
        prob = self.family.prob_np(self.alpha, self._eta(True), self.link)
        return per_row(self.spec, prob[np.arange(len(prob)), self.counts.astype(int)],
                       name="fitted")

    def _tidy_fixed_table(self) -> pd.DataFrame:
        return clmm_fixed_table(self.threshold_table(), self.coef_table())

    def glance(self) -> pd.DataFrame:
        """broom's ``glance.clmm`` (:func:`~mixedppl.results.tidy.clmm_glance`)."""
        return clmm_glance(self)

    def residuals(self, type: str = "quantile", nsim: int = 250, seed=123) -> pd.Series:
        """DHARMa's simulation-based quantile residuals (the only residuals ordinal's scale
        allows): the observed category against ``nsim`` simulated ones, randomised between
        P(Y* < y) and P(Y* ≤ y); uniform on (0, 1) under the model (see
        :mod:`mixedppl.diagnostics.residuals`).

        Examples
        --------
        >>> import mixedppl as mp
        >>> r = mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))
        >>> res = r.residuals(seed=1)
        >>> len(res), bool(((res >= 0) & (res <= 1)).all())
        (72, True)
        """
        if type != "quantile":
            raise ValueError(f"a CLMM has quantile residuals only (type='quantile'), got {type!r}")
        return per_row(self.spec, self._quantile_values(nsim, seed), name="residuals")

    # -- diagnostics -------------------------------------------------------------------------
    def leverage(self) -> np.ndarray:
        r"""Diagonal of the hat matrix of the penalised weighted least-squares problem at the
        mode, :math:`h_i = W_i a_i^\top M^{-1} a_i` with :math:`W_i` the Fisher information of
        :math:`\eta_i` and :math:`a_i` the row of :math:`[Z\Lambda, -1, X]` (the thresholds'
        common shift as the intercept; see :mod:`mixedppl.diagnostics.leverage`), in [0, 1].

        Examples
        --------
        >>> import mixedppl as mp
        >>> o = mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))
        >>> h = o.leverage()
        >>> bool((h > 0).all() and (h < 1).all()), bool(h.sum() < o.spec.q + o.spec.p + 1)
        (True, True)
        """
        return glmm_hat_diagonal(self.record)

    # -- printing ----------------------------------------------------------------------------
    def summary(self):
        """Text summary in the layout of ordinal's ``summary(clmm(...))`` print-out: the info
        table, R's digits per column (``printCoefmat`` with ``digits = 4``) for coefficients and
        thresholds. ``niter`` counts this fit's optimiser iterations (function evaluations in
        parentheses); ``cond.H`` is the condition number of the Hessian of −log L in this fit's
        parameters (ordinal's are its own; both flag an ill-conditioned fit above ~1e4)."""
        if self.nAGQ == 1:
            head = ["Cumulative Link Mixed Model fitted with the Laplace approximation"]
        else:
            head = ["Cumulative Link Mixed Model fitted with the adaptive Gauss-Hermite ",
                    f"quadrature approximation with {self.nAGQ} quadrature points "]
        grad = (np.max(np.abs(self.opt.projected_gradient())) if self.opt is not None
                else np.nan)
        cond = np.linalg.cond(self.hessian) if self.hessian is not None else np.nan
        niter = (f"{self.opt.n_iter}({self.opt.n_evals})" if self.opt is not None else "")
        info = [self.link.name, self.family.threshold, str(self.nobs), f"{self.loglik:.2f}",
                f"{self.aic:.2f}", niter, f"{grad:.2e}", f"{cond:.1e}"]
        info_names = ["link", "threshold", "nobs", "logLik", "AIC", "niter", "max.grad",
                      "cond.H"]
        groups = ",  ".join(f"{g} {n}" for g, n in self.ngroups.items())
        thr = self.threshold_table().copy()
        lines = head + ["", f"formula: {self.spec.formula}", "",
                        print_matrix([info], [""], info_names), "",
                        "Random effects:", random_effects_table(self, residual=False),
                        f"Number of groups:  {groups} ", ""]
        if self.spec.p:
            lines += ["Coefficients:", coef_block(self.coef_table(), "Pr(>|z|)"), ""]
        else:
            lines += ["No Coefficients", ""]
        lines += ["Threshold coefficients:",
                  coef_block(thr[["Estimate", "Std. Error", "z value"]], None)]
        notes = fit_notes(self)
        return Summary("\n".join(lines + ([""] + notes if notes else [])),
                       tables={"Random effects": self.varcorr, "Coefficients": self.coef_table(),
                               "Threshold coefficients": thr})

    def __repr__(self) -> str:
        return (f"<CLMMResult cumulative({self.link.name}) {self.spec.formula!r}: "
                f"logLik {self.loglik:.4f}, {self.nobs} obs, {len(self.levels)} levels>")
