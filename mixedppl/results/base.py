"""The result base shared by every frequentist fit: fixed effects, Wald inference, random effects,
predictions. LMM / GLMM / CLMM results extend it; they never re-implement these.

A subclass provides ``spec``, ``theta``, ``beta``, ``vcov_beta`` (ndarray), ``b`` (list of (G, ℓ)
arrays, lme4's conditional modes per term), ``condvar`` (list of (G, ℓ, ℓ) conditional covariances),
``loglik`` and ``n_params``.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
from scipy import special

from ..core.exceptions import ModelSpecError
from ..spec.reterm import value_labels
from .varcorr import group_labels

__all__ = ["MixedResult", "per_row"]


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
    """Accessors common to LMM, GLMM and CLMM results (immutable once built)."""

    stat_name = "z value"

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

    def confint(self, level: float = 0.95, method: str = "Wald", **kwargs) -> pd.DataFrame:
        """Wald confidence intervals for the fixed effects.

        lme4's ``confint`` defaults to profile intervals; here the default is Wald (fast and defined
        for every family). ``method="profile"`` (LMMs and GLMMs) and ``method="boot"`` (LMMs) are
        computed by :func:`mixedppl.inference.intervals_mixin.other_confint`.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> fit.confint().round(2).loc["Days"].tolist()
        [7.44, 13.5]
        """
        if method.lower() != "wald":
            from ..inference.intervals_mixin import other_confint
            other = getattr(self, "_confint_method", None)
            if other is None:                    # GLMM / CLMM results: dispatch by result type
                return other_confint(self, method.lower(), level=level, **kwargs)
            return other(method.lower(), level=level, **kwargs)
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        z = special.ndtri(0.5 + level / 2)
        est, se = self._wald_estimates()
        lo, hi = est - z * se, est + z * se
        pct = [f"{100 * (1 - level) / 2:.3g} %", f"{100 * (1 + level) / 2:.3g} %"]
        return pd.DataFrame({pct[0]: lo.to_numpy(), pct[1]: hi.to_numpy()}, index=est.index)

    def _wald_estimates(self) -> tuple[pd.Series, pd.Series]:
        """The estimates and SEs Wald intervals cover (β; a CLMM adds its thresholds)."""
        return self.fe_params, self.fe_bse

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
        (scaled residuals against fitted values) or ``"qq"`` (normal QQ plot of the residuals)."""
        from .. import plotting
        kinds = {"caterpillar": plotting.caterpillar, "residuals": plotting.residual_plot,
                 "qq": plotting.qq_plot}
        if kind not in kinds:
            raise ValueError(f"unknown plot kind {kind!r}; available: {', '.join(kinds)}")
        return kinds[kind](self, **kwargs)

    # -- linear predictor ------------------------------------------------------------------------
    def _eta(self, include_random: bool = True) -> np.ndarray:
        spec = self.spec
        eta = spec.X @ np.asarray(self.beta) + spec.offset
        if include_random:
            for t, b in zip(spec.terms, self.b):
                eta = eta + np.einsum("ij,ij->i", t.z, b[t.codes])
        return eta

    def _eta_new(self, newdata: pd.DataFrame, include_random: bool) -> np.ndarray:
        if not isinstance(newdata, pd.DataFrame):
            raise ModelSpecError("newdata must be a pandas DataFrame")
        if len(newdata) == 0:
            return np.zeros(0)
        X, offset = self.spec.fixed_design.transform(newdata)
        X = _select_columns(X, self.spec)
        eta = X @ np.asarray(self.beta) + (0.0 if offset is None else offset)
        if include_random:
            for t, b in zip(self.spec.terms, self.b):
                eta = eta + _re_contribution(t, b, newdata)
        return eta

    def linear_predictor(self, newdata: pd.DataFrame | None = None,
                         include_random: bool = True) -> np.ndarray:
        """Xβ + Zb + offset on the fitted rows or on ``newdata`` (unseen levels get b = 0)."""
        if newdata is None:
            return self._eta(include_random)
        return self._eta_new(newdata, include_random)

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


def _select_columns(X: np.ndarray, spec) -> np.ndarray:
    """Keep the columns that survived the rank-deficiency check."""
    if not spec.dropped_columns:
        return X
    names = list(spec.fixed_design.column_names)
    return X[:, [names.index(n) for n in spec.fe_names]]


def _re_contribution(term, b: np.ndarray, newdata: pd.DataFrame) -> np.ndarray:
    """z_newᵀ b_level for each new row; levels not seen in the fit contribute 0."""
    z, _ = term.design.transform(newdata)
    missing = [v for v in term.group_vars if v not in newdata.columns]
    if missing:
        raise ModelSpecError(f"newdata lacks grouping column(s) {missing} of term '{term.group}'; "
                             "add them or use include_random=False")
    parts = [value_labels(newdata[v]) for v in term.group_vars]
    labels = [":".join(p) for p in zip(*parts)]
    lookup = {lev: i for i, lev in enumerate(term.levels)}
    idx = np.array([lookup.get(lab, -1) for lab in labels])
    bb = np.where((idx >= 0)[:, None], b[np.clip(idx, 0, None)], 0.0)
    return np.einsum("ij,ij->i", np.asarray(z, float), bb)

