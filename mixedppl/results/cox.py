r"""The result of a Cox frailty fit (:func:`mixedppl.coxme`), with coxme's accessors.

Wald inference on β uses the β block of the inverse information of the penalised partial
likelihood at the mode (coxme's ``vcov``): :math:`z_j = \hat\beta_j/\mathrm{se}_j`, two-sided
normal p-values, hazard ratios :math:`e^{\hat\beta_j}` with the interval
:math:`e^{\hat\beta_j \pm z_{1-\alpha/2}\,\mathrm{se}_j}`. The information criteria are those of
the integrated partial likelihood that the fit maximises, with p + (one variance per term)
parameters and, for BIC, the number of events as n (coxme's ``logLik(type="integrated")``).

Examples
--------
>>> import mixedppl as mp
>>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))
>>> round(fit.variance_components["id"], 3), round(fit.loglik, 3)
(0.457, -181.905)
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
from scipy import special

from ..fit.cox import CoxmeFit
from ..fit.records import group_labels
from ..graph.linear_predictor import fitted_eta, new_eta
from ..inference.cox_profile import profile_intervals
from ..spec.frame import as_pandas
from ..spec.model_spec import split_strata
from .cox_summary import coxme_print
from .tables import html_table, to_latex, to_markdown
from .tidy import tidy_frame
from .varcorr import varcorr_frame

__all__ = ["CoxmeResult"]


class CoxmeResult:
    """A fitted Cox frailty model.

    Parameters
    ----------
    record : CoxmeFit
        What :func:`~mixedppl.fit.cox.fit_coxme` computed.
    """

    def __init__(self, record: CoxmeFit):
        self.record = record
        self.spec = record.spec

    # -- fixed effects -----------------------------------------------------------------------
    @property
    def fe_params(self) -> pd.Series:
        """β̂ (log hazard ratios), as coxme's ``fixef``."""
        return pd.Series(self.record.beta, index=self.spec.fe_names, name="coef")

    @property
    def fe_cov(self) -> pd.DataFrame:
        """vcov β̂ (coxme's ``vcov``)."""
        names = self.spec.fe_names
        return pd.DataFrame(self.record.vcov_beta, index=names, columns=names)

    @property
    def fe_bse(self) -> pd.Series:
        """Standard errors of β̂."""
        return pd.Series(np.sqrt(np.diag(self.record.vcov_beta)), index=self.spec.fe_names,
                         name="se(coef)")

    @property
    def zvalues(self) -> pd.Series:
        return (self.fe_params / self.fe_bse).rename("z")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided Wald p-values, 1 − P(χ²₁ < z²) as coxme prints them."""
        return pd.Series(special.chdtrc(1, self.zvalues.to_numpy() ** 2),
                         index=self.spec.fe_names, name="p")

    def hazard_ratios(self, level: float = 0.95) -> pd.DataFrame:
        """exp(β̂) with Wald intervals ``exp(β̂ ± z·se)``.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)",
        ...                mp.datasets.load("kidney"))
        >>> fit.hazard_ratios().round(3).loc["sex"].tolist()
        [0.258, 0.114, 0.584]
        """
        z = special.ndtri(0.5 + level / 2)
        b, se = self.fe_params, self.fe_bse
        pct = [f"{100 * (1 - level) / 2:g} %", f"{100 * (1 + level) / 2:g} %"]
        return pd.DataFrame({"exp(coef)": np.exp(b), pct[0]: np.exp(b - z * se),
                             pct[1]: np.exp(b + z * se)})

    def coef_table(self) -> pd.DataFrame:
        """coef, exp(coef), se(coef), z, p (coxme's "Fixed coefficients")."""
        return pd.DataFrame({"coef": self.fe_params, "exp(coef)": np.exp(self.fe_params),
                             "se(coef)": self.fe_bse, "z": self.zvalues, "p": self.pvalues})

    # -- random effects ----------------------------------------------------------------------
    @property
    def variance_components(self) -> dict:
        """The frailty variance of each scalar term, the covariance matrix (a DataFrame over
        the term's columns) of a term with several columns (coxme's ``VarCorr``, which prints
        correlations off the diagonal)."""
        out = {}
        for (label, v), t in zip(self.record.variances.items(), self.spec.terms):
            out[label] = v if t.n_cols == 1 else pd.DataFrame(v, index=t.column_names,
                                                              columns=t.column_names)
        return out

    @property
    def random_effects(self) -> dict:
        """Frailties b̂ (log-hazard scale) per term, indexed by level (coxme's ``ranef``): a
        Series for a scalar term, a DataFrame (one column per term column) otherwise."""
        out = {}
        for label, t, b in zip(group_labels(self.spec.terms), self.spec.terms, self.record.b):
            index = pd.Index(t.levels, name=t.group)
            out[label] = (pd.Series(b[:, 0], index=index, name="frailty") if t.n_cols == 1
                          else pd.DataFrame(b, index=index, columns=t.column_names))
        return out

    @property
    def random_effects_se(self) -> dict:
        """coxme's "penalized se" of the frailties: √diag of the frailty block of H̃⁻¹ (the
        shape of :attr:`random_effects`)."""
        se = np.sqrt(np.diag(self.record.vcov_b))
        out = {}
        for label, t, s in zip(group_labels(self.spec.terms), self.spec.terms,
                               self.record.data.term_slices):
            index = pd.Index(t.levels, name=t.group)
            block = se[s].reshape(t.n_cols, t.n_levels).T
            out[label] = (pd.Series(block[:, 0], index=index, name="se") if t.n_cols == 1
                          else pd.DataFrame(block, index=index, columns=t.column_names))
        return out

    @property
    def strata(self) -> pd.Series | None:
        """Rows per stratum of ``strata(...)`` in the formula, indexed by the strata's values
        (None without strata).

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.coxme("Surv(time, status) ~ age + strata(sex) + (1 | id)",
        ...                mp.datasets.load("kidney"))
        >>> fit.strata.to_dict()
        {'1': 20, '2': 56}
        """
        if self.spec.strata is None:
            return None
        _, variables = split_strata(self.spec.parsed.fixed)
        keys = self.spec.data[variables].astype(str).to_numpy()[self.spec.keep]
        labels = [""] * (int(self.spec.strata.max()) + 1)
        for code, key in zip(self.spec.strata, keys):
            labels[code] = ", ".join(key)
        return pd.Series(np.bincount(self.spec.strata),
                         index=pd.Index(labels, name=", ".join(variables)), name="n")

    # -- likelihoods -------------------------------------------------------------------------
    @property
    def loglik(self) -> float:
        """The integrated (Laplace) partial log-likelihood the fit maximises."""
        return self.record.loglik_integrated

    @property
    def loglik_penalized(self) -> float:
        """PPL at the mode: ℓ(β̂, b̂) − ½ b̂ᵀΣ⁻¹b̂ (coxme's ``loglik["Penalized"]``)."""
        return self.record.loglik_penalized

    @property
    def loglik_fitted(self) -> float:
        """ℓ(β̂, b̂), the partial log-likelihood at the mode (coxme prints it as "Fitted")."""
        return self.record.loglik_fitted

    @property
    def loglik_null(self) -> float:
        """ℓ at β = 0 without frailties (coxme's ``loglik["NULL"]``)."""
        return self.record.loglik_null

    @property
    def n_params(self) -> int:
        return self.record.n_params

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """−2ℓ_I + log(number of events)·df (coxme's ``nobs`` is the number of events)."""
        return -2.0 * self.loglik + np.log(self.nevents) * self.n_params

    @property
    def nevents(self) -> int:
        return self.record.n_events

    @property
    def nobs(self) -> int:
        return self.record.nobs

    @property
    def n_deleted(self) -> int:
        """Rows of the data dropped for missing values in a model column (coxme's
        ``length(fit$na.action)``; its print says "(k observations deleted due to
        missingness)")."""
        return int(len(self.record.spec.keep) - int(np.sum(self.record.spec.keep)))

    @property
    def converged(self) -> bool:
        return self.record.converged

    @property
    def is_singular(self) -> bool:
        """A frailty variance estimated at 0 or a correlation at ±1 (warned about at the fit)."""
        return self.record.is_singular

    @property
    def ties(self) -> str:
        return self.spec.family.ties

    # -- prediction --------------------------------------------------------------------------
    def predict(self, newdata: pd.DataFrame | None = None, type: str = "lp",
                include_random: bool = True) -> pd.Series:
        """Linear predictor Xβ̂ + offset + Zb̂ (``"lp"``, not centred, as coxme) or relative
        risk exp(lp) (``"risk"``); clusters unseen in the fit get frailty 0.

        Examples
        --------
        >>> import pandas as pd, mixedppl as mp
        >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)",
        ...                mp.datasets.load("kidney"))
        >>> new = pd.DataFrame({"age": [40, 40], "sex": [2, 2], "id": [1, 999]})
        >>> fit.predict(new).round(3).tolist()
        [-2.024, -2.539]
        """
        newdata = None if newdata is None else as_pandas(newdata, "newdata")
        if type not in ("lp", "risk"):
            raise ValueError(f"type must be 'lp' or 'risk', got {type!r}")
        if newdata is None:
            eta = fitted_eta(self.spec, self.record.beta, self.record.b, include_random)
            index = self.spec.row_index
        else:
            eta = new_eta(self.spec, self.record.beta, self.record.b, newdata, include_random)
            index = newdata.index
        out = np.exp(eta) if type == "risk" else eta
        return pd.Series(out, index=index, name=type)

    # -- intervals ---------------------------------------------------------------------------
    def confint(self, level: float = 0.95, method: str = "Wald",
                progress: bool = True) -> pd.DataFrame:
        """Intervals for β and, with ``method="profile"``, for every frailty SD and correlation
        (lme4's names, ``sd_(Intercept)|id``, ``cor_x.(Intercept)|g``, first): Wald
        ``β̂ ± z·se``, or where −2ℓ_I rises by χ²₁(level) with the rest re-optimised
        (:mod:`mixedppl.inference.cox_profile`; coxme has no such interval). An SD whose
        profile stays below the cut-off down to 0 has lower end 0, a correlation's end may be
        ±1, as lme4's. The profile shows a bar over its rows unless ``progress=False``.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)",
        ...                mp.datasets.load("kidney"))
        >>> ci = fit.confint(method="profile").round(3)
        >>> ci.loc[["sd_(Intercept)|id", "sex"]].values.tolist()
        [[0.175, 1.213], [-2.397, -0.522]]
        """
        if method not in ("Wald", "wald", "profile"):
            raise ValueError(f"method must be 'Wald' or 'profile', got {method!r}")
        z = special.ndtri(0.5 + level / 2)
        b, se = self.fe_params, self.fe_bse
        cols = [f"{100 * (1 - level) / 2:g} %", f"{100 * (1 + level) / 2:g} %"]
        if method != "profile":
            return pd.DataFrame({cols[0]: b - z * se, cols[1]: b + z * se})
        rows = profile_intervals(self.record, level, progress)
        return pd.DataFrame.from_dict(rows, orient="index", columns=cols)

    # -- printing ----------------------------------------------------------------------------
    def summary(self) -> str:
        """The fit laid out as coxme's ``print(fit)``, line by line
        (:func:`~mixedppl.results.cox_summary.coxme_print`)."""
        return coxme_print(self)

    # -- tables: broom-style tidy / glance, notebooks and documents ----------------------------
    @property
    def varcorr(self) -> pd.DataFrame:
        """The frailty (co)variances in lme4's ``as.data.frame(VarCorr())`` layout (``grp``,
        ``var1``, ``var2``, ``vcov``, ``sdcor``; no residual row).

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))
        >>> fit.varcorr[["grp", "var1"]].values.tolist()
        [['id', '(Intercept)']]
        """
        covs = [np.atleast_2d(np.asarray(v, float)) for v in self.record.variances.values()]
        return varcorr_frame(self.spec.terms, covs, None)

    def _tidy_fixed_table(self) -> pd.DataFrame:
        return pd.DataFrame({"Estimate": self.fe_params, "Std. Error": self.fe_bse,
                             "z value": self.zvalues, "Pr(>|z|)": self.pvalues})

    def tidy(self, effects=("fixed", "ran_pars"), conf_int: bool = False,
             conf_level: float = 0.95, exponentiate: bool = False) -> pd.DataFrame:
        """The parameters as broom's ``tidy()``: one row per log hazard ratio
        (``effect = "fixed"``; ``exponentiate=True``: hazard ratios, with exponentiated Wald
        limits, as ``tidy.coxph``) and per frailty SD / correlation (``"ran_pars"``).

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))
        >>> fit.tidy()[["effect", "term"]].values.tolist()
        [['fixed', 'age'], ['fixed', 'sex'], ['ran_pars', 'sd__(Intercept)']]
        >>> round(float(fit.tidy(exponentiate=True)["estimate"].iloc[1]), 3)
        0.258
        """
        out = tidy_frame(self._tidy_fixed_table(), self.varcorr, effects, conf_int, conf_level)
        if exponentiate:
            fixed = out["effect"] == "fixed"
            cols = ["estimate"] + (["conf_low", "conf_high"] if conf_int else [])
            out.loc[fixed, cols] = np.exp(out.loc[fixed, cols].to_numpy(float))
        return out

    def glance(self) -> pd.DataFrame:
        """One row: ``nobs``, ``nevent``, ``logLik`` (the integrated partial log-likelihood),
        ``AIC``, ``BIC``, as broom's ``glance.coxph`` names them.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.coxme("Surv(time, status) ~ age + sex + (1 | id)", mp.datasets.load("kidney"))
        >>> fit.glance()[["nobs", "nevent"]].values.tolist()
        [[76, 58]]
        """
        return pd.DataFrame([{"nobs": self.nobs, "nevent": self.nevents, "logLik": self.loglik,
                              "AIC": self.aic, "BIC": self.bic}])

    def to_markdown(self, digits: int = 4) -> str:
        """coxme's "Fixed coefficients" table as Markdown (:meth:`coef_table`)."""
        return to_markdown(self.coef_table(), digits)

    def to_latex(self, digits: int = 4, caption: str | None = None,
                 label: str | None = None) -> str:
        """coxme's "Fixed coefficients" table as a LaTeX ``tabular``."""
        return to_latex(self.coef_table(), digits, caption, label)

    def _repr_html_(self) -> str:
        """Notebook display: the one-line description, then the fixed coefficients and the
        frailty variances as HTML ``<table>`` elements."""
        return (f'<div class="mixedppl-result"><p><code>{html.escape(repr(self))}</code></p>'
                f"{html_table(self.coef_table(), caption='Fixed coefficients')}"
                f"{html_table(self.varcorr, caption='Random effects')}</div>")

    def __repr__(self) -> str:
        return (f"<CoxmeResult {self.spec.formula!r}: ties={self.ties}, "
                f"loglik={self.loglik:.4f}, events={self.nevents}, n={self.nobs}>")
