"""Per-row outputs of a fit to a Dask DataFrame as lazy Dask Series, one partition per partition.

Each output partition is computed from the same input partition (``map_partitions``): its rows
(:func:`~mixedppl.spec.dask_spec.partition_spec`), then the in-memory formula —
``fitted = Xβ̂ + Zb̂ + offset`` (:func:`~mixedppl.graph.linear_predictor.fitted_eta`),
``residuals = y − fitted`` (×√w for Pearson, ÷σ̂ when scaled), predictions on new rows by
:func:`~mixedppl.graph.linear_predictor.new_eta` (unseen levels get b = 0). The index is the
input's row labels of the rows used; with ``na_action="exclude"`` every row, NaN on the dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..graph.linear_predictor import fitted_eta, new_eta
from ..spec.dask_spec import for_workers, partition_spec
from ..spec.model_spec import ModelSpec

__all__ = ["lazy_fitted", "lazy_residuals", "lazy_glmm_residuals", "lazy_predict", "map_rows"]


def _aligned(part: pd.DataFrame, rows: ModelSpec | None, values, na_action: str,
             name: str) -> pd.Series:
    if rows is None:
        index = part.index if na_action == "exclude" else part.index[:0]
        return pd.Series(np.full(len(index), np.nan), index=index, name=name)
    out = pd.Series(np.asarray(values, float), index=rows.row_index, name=name)
    return out.reindex(part.index) if na_action == "exclude" else out


def _map(part: pd.DataFrame, spec: ModelSpec, fn: Callable, name: str) -> pd.Series:
    rows = partition_spec(spec, part)
    return _aligned(part, rows, None if rows is None else fn(rows), spec.na_action, name)


def map_rows(spec: ModelSpec, fn: Callable[[ModelSpec], np.ndarray], name: str):
    """A lazy Series of ``fn(rows)`` over the partitions of ``spec.source.ddf``."""
    ddf = spec.source.ddf
    meta = pd.Series(np.zeros(0), name=name)
    return ddf.map_partitions(_map, for_workers(spec), fn, name, meta=meta)


def lazy_fitted(spec: ModelSpec, beta: np.ndarray, b: Sequence[np.ndarray],
                include_random: bool = True, name: str = "fitted",
                inverse_link: Callable | None = None):
    """Xβ + Zb + offset on the fitted rows (or the mean ``inverse_link(η)``), lazily."""
    def fn(rows):
        eta = fitted_eta(rows, beta, b, include_random)
        return eta if inverse_link is None else inverse_link(eta)
    return map_rows(spec, fn, name)


def lazy_glmm_residuals(spec: ModelSpec, beta: np.ndarray, b: Sequence[np.ndarray],
                        type: str, dispersion=None):
    """A GLMM's ``"response"`` y − μ or ``"pearson"`` (y − μ)/√V(μ) residuals (y the
    proportion for the binomial), lazily."""
    if type not in ("response", "pearson"):
        raise ValueError("type must be 'response' or 'pearson' on a Dask DataFrame, got "
                         f"{type!r}")
    family, link = spec.family, spec.link

    def fn(rows):
        _, n = rows.counts()
        eta = fitted_eta(rows, beta, b, True)
        mu = link.linkinv_np(eta)
        r = family.mean_response(rows.counts()[0], n) - family.response_mean(mu, dispersion)
        if type == "pearson":
            r = r / np.sqrt(family.variance(mu, np.where(n > 0, n, 1), dispersion))
        return r
    return map_rows(spec, fn, "residuals")


def lazy_residuals(spec: ModelSpec, beta: np.ndarray, b: Sequence[np.ndarray], type: str,
                   sigma: float, scaled: bool = False):
    """``"response"`` y − fitted, ``"pearson"`` √w (y − fitted), ``"marginal"`` y − Xβ − offset
    (÷σ̂ when ``scaled``), lazily."""
    if type not in ("response", "pearson", "marginal"):
        raise ValueError("type must be 'response', 'pearson' or 'marginal' on a Dask DataFrame "
                         f"(quantile residuals simulate: use a pandas DataFrame), got {type!r}")

    def fn(rows):
        r = rows.y - fitted_eta(rows, beta, b, type != "marginal")
        if type == "pearson":
            r = r * np.sqrt(rows.weights)
        return r / sigma if scaled else r
    return map_rows(spec, fn, "residuals")


def _predict_part(part: pd.DataFrame, spec, beta, b, include_random: bool,
                  inverse_link) -> pd.Series:
    eta = new_eta(spec, beta, b, part, include_random)
    return pd.Series(eta if inverse_link is None else inverse_link(eta), index=part.index,
                     name="predicted")


def lazy_predict(spec: ModelSpec, beta: np.ndarray, b: Sequence[np.ndarray], new_ddf,
                 include_random: bool = True, inverse_link: Callable | None = None):
    """Xβ (+ Zb) (+ offset) on the rows of a Dask DataFrame, lazily (partitions as ``new_ddf``).

    Examples
    --------
    >>> import mixedppl as mp, dask.dataframe as dd
    >>> d = mp.datasets.load("sleepstudy")
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", d)
    >>> lazy = lazy_predict(fit.spec, fit.beta, fit.b, dd.from_pandas(d, npartitions=2))
    >>> bool(np.allclose(lazy.compute(), fit.fitted()))
    True
    """
    meta = pd.Series(np.zeros(0), name="predicted")
    if spec.source is not None:
        spec = for_workers(spec)
    return new_ddf.map_partitions(_predict_part, spec, beta, b, include_random,
                                  inverse_link, meta=meta)
