"""Fit an LMM to a Dask DataFrame: the blocks by map-reduce, then the in-memory θ optimisation.

After :func:`~mixedppl.distributed.crossprod.dask_crossproducts` the fit is
:func:`~mixedppl.fit.lmm_fit.fit_lmm` itself, on an
:class:`~mixedppl.fit.lmm_objective.LMMObjective` built from the summed blocks (for crossed
scalar terms with a large Z_RᵀZ₁, its BLAS form
:class:`~mixedppl.distributed.crossed.CrossedScalarObjective`): the profiled
deviance, β̂, the conditional modes and variances, σ̂ and the Satterthwaite parts are all
functions of the blocks, so the record is the in-memory fit's to rounding.
"""

from __future__ import annotations

import time

import numpy as np

from ..core.control import LmerControl
from ..fit.lmm_fit import fit_lmm
from ..fit.lmm_objective import LMMObjective
from ..fit.records import LMMFit
from ..spec.model_spec import ModelSpec
from ..graph.lmm_inputs import lmm_structure
from .crossed import MIN_PRODUCT, CrossedScalarObjective, crossed_scalar_applies
from .crossprod import dask_crossproducts, drop_rank_deficient_blocks

__all__ = ["fit_lmm_dask", "dask_objective"]


def dask_objective(spec: ModelSpec, reml: bool = True, split_every: int = 8,
                   schur: str = "auto") -> LMMObjective:
    """The profiled deviance of a template spec (one pass over the partitions); its ``spec`` is
    the template after the rank check.

    ``schur`` says how the optimiser's evaluations are made: ``"graph"`` the compiled in-memory
    graph; ``"chebyshev"`` / ``"direct"`` the BLAS evaluation of crossed scalar terms
    (:class:`~mixedppl.distributed.crossed.CrossedScalarObjective`, same numbers to rounding);
    ``"auto"`` that one where it applies and C = Z_RᵀZ₁ has at least
    :data:`~mixedppl.distributed.crossed.MIN_PRODUCT` entries, else the graph.
    """
    t0 = time.perf_counter()
    spec, cp = drop_rank_deficient_blocks(spec, dask_crossproducts(spec, split_every))
    t1 = time.perf_counter()
    obj = _objective(spec, reml, cp, schur)
    obj.crossproduct_seconds, obj.prepare_seconds = t1 - t0, time.perf_counter() - t1
    return obj


def _objective(spec: ModelSpec, reml: bool, cp, schur: str) -> LMMObjective:
    if schur not in ("auto", "graph", "chebyshev", "direct"):
        raise ValueError(f"schur must be 'auto', 'graph', 'chebyshev' or 'direct', not {schur!r}")
    if schur == "graph" or cp.AR1 is None:
        return LMMObjective(spec, reml=reml, cp=cp)
    applies = crossed_scalar_applies(lmm_structure(spec, cp))
    if schur == "auto":
        if not applies or cp.AR1.shape[0] * cp.AR1.shape[1] < MIN_PRODUCT:
            return LMMObjective(spec, reml=reml, cp=cp)
    elif not applies:
        raise ValueError(f"schur={schur!r} needs one-column random-effects terms (at least two)")
    return CrossedScalarObjective(spec, reml=reml, cp=cp, method=schur)


def fit_lmm_dask(spec: ModelSpec, reml: bool = True, control: LmerControl | None = None,
                 start: np.ndarray | None = None, split_every: int = 8,
                 schur: str = "auto") -> LMMFit:
    """REML / ML fit of a template spec of a Dask DataFrame (``schur``: see
    :func:`dask_objective`).

    Examples
    --------
    >>> import mixedppl as mp, dask.dataframe as dd
    >>> from mixedppl.spec.dask_spec import build_dask_spec
    >>> ddf = dd.from_pandas(mp.datasets.load("sleepstudy"), npartitions=3)
    >>> fit = fit_lmm_dask(build_dask_spec("Reaction ~ Days + (Days | Subject)", ddf))
    >>> fit.beta.round(3).tolist()
    [251.405, 10.467]
    """
    obj = dask_objective(spec, reml, split_every, schur)
    record = fit_lmm(obj.spec, reml=reml, control=control, start=start, objective=obj)
    record.timing["crossproducts"] = obj.crossproduct_seconds
    record.timing["prepare"] = obj.prepare_seconds     # the objective's inputs (P_k, …)
    return record
