"""Results of fits to a Dask DataFrame: the in-memory result, with per-row outputs lazy.

:class:`DaskLMMResult` is an :class:`~mixedppl.results.lmm.LMMResult` (every number — fixef,
vcov, SEs, Satterthwaite df, VarCorr, BLUPs, logLik — is a function of the record, which a Dask
fit fills from the summed blocks). What reads rows returns a lazy Dask Series aligned with the
input's partitions (``fitted``, ``residuals``, ``predict`` on a Dask DataFrame, see
:mod:`mixedppl.distributed.rows`); what would refit the rows in memory (refit, update,
simulate, bootstrap, influence, leverage, Kenward–Roger, quantile residuals, sampling) raises.
"""

from __future__ import annotations

from ..core.dask import is_dask_collection
from ..distributed.rows import lazy_fitted, lazy_glmm_residuals, lazy_predict, lazy_residuals
from .glmm import GLMMResult
from .lmm import LMMResult

__all__ = ["DaskLMMResult", "DaskGLMMResult", "DaskRowsMixin"]

_IN_MEMORY = ("{what} reads the rows again in memory and is not available for a fit to a Dask "
              "DataFrame; fit ddf.compute() (a pandas DataFrame) for it")


class DaskRowsMixin:
    """Lazy per-row outputs of a fit whose spec's rows are in a Dask DataFrame."""

    def fitted(self):
        """Conditional fitted values Xβ̂ + Zb̂ + offset: a lazy Dask Series, partitions as the
        data's, indexed by its row labels of the rows used."""
        return lazy_fitted(self.spec, self.beta, self.b)

    def predict(self, newdata=None, include_random: bool = True, se_fit: bool = False,
                interval: str | None = None, level: float = 0.95):
        """Predictions Xβ̂ (+ Zb̂) (+ offset): lazy on a Dask DataFrame (or on the fitted
        rows without ``newdata``), a pandas Series on a pandas DataFrame."""
        if se_fit or interval is not None:
            if newdata is None or is_dask_collection(newdata):
                raise NotImplementedError("se_fit / interval on Dask rows: give a pandas "
                                          "DataFrame of the rows to predict")
            return super().predict(newdata, include_random, se_fit, interval, level)
        if newdata is None:
            return lazy_fitted(self.spec, self.beta, self.b, include_random, name="predicted")
        if is_dask_collection(newdata):
            return lazy_predict(self.spec, self.beta, self.b, newdata, include_random)
        return super().predict(newdata, include_random)

    def linear_predictor(self, newdata=None, include_random: bool = True):
        if newdata is None or is_dask_collection(newdata):
            return self.predict(newdata, include_random)
        return super().linear_predictor(newdata, include_random)

    def _not_in_memory(self, what: str):
        raise NotImplementedError(_IN_MEMORY.format(what=what))

    def refit(self, *args, **kwargs):
        self._not_in_memory("refit()")

    def update(self, *args, **kwargs):
        self._not_in_memory("update()")

    def simulate(self, *args, **kwargs):
        self._not_in_memory("simulate()")

    def influence(self, *args, **kwargs):
        self._not_in_memory("influence()")

    def leverage(self, *args, **kwargs):
        self._not_in_memory("leverage()")

    def sample(self, *args, **kwargs):
        self._not_in_memory("sample()")


class DaskLMMResult(DaskRowsMixin, LMMResult):
    """An LMM fitted to a Dask DataFrame (see :func:`mixedppl.lmer`).

    Examples
    --------
    >>> import mixedppl as mp, dask.dataframe as dd
    >>> d = mp.datasets.load("sleepstudy")
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", dd.from_pandas(d, npartitions=3))
    >>> type(fit).__name__, fit.nobs, round(fit.reml_criterion, 4)
    ('DaskLMMResult', 180, 1743.6283)
    >>> type(fit.fitted()).__module__.split(".")[0]
    'dask'
    """

    def residuals(self, type: str = "response", scaled: bool = False, nsim: int = 250,
                  seed=123):
        """Residuals (``"response"``, ``"pearson"``, ``"marginal"``; ``scaled`` divides by σ̂)
        as a lazy Dask Series aligned with the data's partitions."""
        return lazy_residuals(self.spec, self.beta, self.b, type, self.sigma, scaled)

    def _kr_adjusted(self):
        self._not_in_memory("Kenward–Roger")

    def __repr__(self) -> str:
        return super().__repr__().replace("LMMResult", "DaskLMMResult", 1)



class DaskGLMMResult(DaskRowsMixin, GLMMResult):
    """A binomial / Poisson GLMM fitted to a Dask DataFrame (see :func:`mixedppl.glmer`):
    fitted means, residuals and predictions are lazy Dask Series.

    Examples
    --------
    >>> import mixedppl as mp, dask.dataframe as dd
    >>> cbpp = dd.from_pandas(mp.datasets.load("cbpp"), npartitions=2)
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    >>> type(g).__name__, g.nobs, round(g.loglik, 2)
    ('DaskGLMMResult', 56, -92.03)
    """

    def fitted(self):
        """Fitted means μ̂ (proportions for the binomial), lazily."""
        return lazy_fitted(self.spec, self.beta, self.b, inverse_link=self.link.linkinv_np)

    def predict(self, newdata=None, type: str = "response", include_random: bool = True,
                offset=None, se_fit: bool = False, interval: str | None = None,
                level: float = 0.95):
        """Predictions on the ``"response"`` or ``"link"`` scale: lazy on a Dask DataFrame
        (or on the fitted rows without ``newdata``), as GLMMResult's on a pandas DataFrame."""
        if type not in ("response", "link"):
            raise ValueError(f"type must be 'response' or 'link', got {type!r}")
        inverse = self.link.linkinv_np if type == "response" else None
        if newdata is not None and not is_dask_collection(newdata):
            return GLMMResult.predict(self, newdata, type, include_random, offset, se_fit,
                                      interval, level)
        if se_fit or interval is not None or offset is not None:
            raise NotImplementedError("se_fit / interval / offset= on Dask rows: give a pandas "
                                      "DataFrame of the rows to predict")
        if newdata is None:
            return lazy_fitted(self.spec, self.beta, self.b, include_random, "predicted",
                               inverse)
        return lazy_predict(self.spec, self.beta, self.b, newdata, include_random, inverse)

    def residuals(self, type: str = "pearson", scaled: bool = False, nsim: int = 250,
                  seed=123):
        """``"pearson"`` or ``"response"`` residuals as a lazy Dask Series."""
        return lazy_glmm_residuals(self.spec, self.beta, self.b, type, self.dispersion)

    def __repr__(self) -> str:
        return GLMMResult.__repr__(self).replace("GLMMResult", "DaskGLMMResult", 1)
