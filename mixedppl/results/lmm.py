"""LMMResult: a fitted linear mixed model (lme4 ``lmerMod`` + lmerTest's Satterthwaite tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import special

from ..bayes.mixin import SampleMixin
from ..diagnostics.mixin import DiagnosticsMixin
from ..fit.optimize import OptSummary
from ..inference.intervals_mixin import IntervalsMixin
from ..inference.tests_mixin import LMMTestsMixin
from ..spec.model_spec import ModelSpec
from .base import MixedResult, new_rows, per_row
from .satterthwaite import satterthwaite_df
from .varcorr import group_labels, term_covariances, varcorr_frame

__all__ = ["LMMResult"]


@dataclass(frozen=True, eq=False)
class LMMResult(MixedResult, LMMTestsMixin, IntervalsMixin, DiagnosticsMixin, SampleMixin):
    """A linear mixed model fitted by REML or ML (see :func:`mixedppl.lmer`).

    Attributes
    ----------
    theta : ndarray
        lme4's θ (``getME(fit, "theta")``): the relative covariance factors' entries.
    converged, is_singular : bool
    opt : OptSummary
        What the optimiser did.
    timing : dict
        Seconds spent: ``total``, ``compile`` (0 when the compiled function was cached),
        ``optimize`` and ``estimates`` (extraction at the optimum).
    """

    spec: ModelSpec
    reml: bool
    theta: np.ndarray
    estimates: dict = field(repr=False)
    opt: OptSummary = field(repr=False)
    converged: bool = True
    is_singular: bool = False
    objective: object = field(default=None, repr=False)
    fval: float = np.nan
    timing: dict = field(default_factory=dict)

    stat_name = "t value"

    # -- scale and likelihood --------------------------------------------------------------------
    @cached_property
    def _dof(self) -> float:
        return self.objective.cp.n - (self.spec.p if self.reml else 0)

    @property
    def beta(self) -> np.ndarray:
        return np.asarray(self.estimates["beta"])

    @cached_property
    def sigma(self) -> float:
        """Residual SD (REML or ML estimate, as ``sigma(fit)``)."""
        return float(np.sqrt(self.estimates["pwrss"] / self._dof))

    @property
    def scale(self) -> float:
        """Residual variance σ²."""
        return self.sigma ** 2

    @cached_property
    def vcov_beta(self) -> np.ndarray:
        L = np.asarray(self.estimates["Lxx"])
        Linv = np.linalg.inv(L)
        return self.scale * Linv.T @ Linv

    @property
    def b(self) -> list[np.ndarray]:
        return [np.asarray(b) for b in self.estimates["b"]]

    @cached_property
    def condvar(self) -> list[np.ndarray]:
        return [self.scale * np.asarray(v) for v in self.estimates["condvar"]]

    @property
    def n_params(self) -> int:
        """Fixed effects + θ + σ (lme4's ``logLik`` df)."""
        return self.spec.p + self.spec.n_theta + 1

    @cached_property
    def objective_value(self) -> float:
        """The optimised criterion: REML criterion for REML fits, ML deviance otherwise."""
        return float(self.estimates["deviance"])

    @property
    def loglik(self) -> float:
        """Log-likelihood (the REML log-likelihood for REML fits, as lme4's ``logLik``)."""
        return -0.5 * self.objective_value

    @property
    def reml_criterion(self) -> float | None:
        """REML criterion at the optimum (None for ML fits)."""
        return self.objective_value if self.reml else None

    # -- variance components ---------------------------------------------------------------------
    @cached_property
    def _covs(self) -> list[np.ndarray]:
        return term_covariances(self.spec.terms, self.theta, self.scale)

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """As R's ``as.data.frame(VarCorr(fit))``: grp, var1, var2, vcov, sdcor (+ Residual)."""
        return varcorr_frame(self.spec.terms, self._covs, self.scale)

    @cached_property
    def variance_components(self) -> dict:
        """Group → variance (scalar terms) or covariance DataFrame (vector terms)."""
        out = {}
        for label, t, S in zip(group_labels(self.spec.terms), self.spec.terms, self._covs):
            out[label] = float(S[0, 0]) if t.n_cols == 1 else pd.DataFrame(
                S, index=t.column_names, columns=t.column_names)
        return out

    # -- fitted values ---------------------------------------------------------------------------
    def fitted(self) -> pd.Series:
        """Conditional fitted values Xβ̂ + Zb̂ + offset.

        A Series indexed by the user's row labels of the rows used; with
        ``na_action="exclude"`` one value per row of the data, NaN on the rows dropped.
        """
        return per_row(self.spec, self._eta(True), name="fitted")

    def _residual_values(self, type: str = "response", scaled: bool = False) -> np.ndarray:
        r = self.spec.y - self._eta(True)
        if type == "pearson":
            r = r * np.sqrt(self.spec.weights)
        elif type != "response":
            raise ValueError(f"type must be 'response' or 'pearson', got {type!r}")
        return r / self.sigma if scaled else r

    def residuals(self, type: str = "response", scaled: bool = False) -> pd.Series:
        """y − fitted (``"response"``) or √w (y − fitted) (``"pearson"``); ``scaled`` divides by σ.

        Indexed as :meth:`fitted` (NaN on the dropped rows with ``na_action="exclude"``).
        """
        return per_row(self.spec, self._residual_values(type, scaled), name="residuals")

    def predict(self, newdata: pd.DataFrame | None = None, include_random: bool = True) -> pd.Series:
        """Predictions Xβ̂ (+ Zb̂) (+ offset); levels unseen in the fit get random effect 0.

        A Series indexed like ``newdata`` (without it: the fitted rows, indexed as
        :meth:`fitted`).

        Examples
        --------
        >>> import mixedppl as mp, pandas as pd
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> new = pd.DataFrame({"Days": [0, 5], "Subject": ["308", "999"]})
        >>> fit.predict(new).round(1).tolist()
        [253.7, 303.7]
        """
        eta = self.linear_predictor(newdata, include_random)
        if newdata is None:
            return per_row(self.spec, eta, name="predicted")
        return new_rows(newdata, eta, name="predicted")

    # -- Satterthwaite t tests (lmerTest) --------------------------------------------------------
    @cached_property
    def df(self) -> pd.Series:
        """Satterthwaite denominator df per coefficient (lmerTest's ``summary``)."""
        return pd.Series(satterthwaite_df(self), index=self.spec.fe_names, name="df")

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

    def summary(self) -> "Summary":
        """lme4 / lmerTest-style summary (print it; ``str()`` gives the text)."""
        from .summary import lmm_summary
        return lmm_summary(self)

    def __repr__(self) -> str:
        kind = "REML" if self.reml else "ML"
        return (f"<LMMResult {kind}: {self.spec.formula} | n={self.nobs}, "
                f"logLik={self.loglik:.4f}, converged={self.converged}>")


class Summary(str):
    """Text of a summary that prints without quotes in notebooks."""

    def __repr__(self) -> str:
        return str(self)
