"""The LMM's cross-product blocks of a Dask DataFrame: per partition, then a tree sum.

Each partition becomes its rows (:func:`~mixedppl.spec.dask_spec.partition_spec`, global level
codes) and then its :class:`~mixedppl.graph.crossprod.CrossProducts` (the same function as the
in-memory path's chunks); the blocks — q-sized, ``A_R1`` sparse — are summed by
:func:`~mixedppl.core.dask.tree_reduce`. Only blocks travel, never rows.

The rank-deficiency check, which the in-memory path makes on X (lme4's pivoted QR with tolerance
1e-7), is made here on X'WX: a column is dropped when its squared residual after projection on
the kept columns is below 1e-14 of its squared norm (the same rule on the Gram matrix).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from functools import partial

import numpy as np

from ..core.dask import tree_reduce
from ..core.exceptions import RankDeficiencyWarning
from ..graph.crossprod import CrossProducts, crossproducts
from ..spec.dask_spec import for_workers, partition_spec
from ..spec.model_spec import ModelSpec

__all__ = ["dask_crossproducts", "drop_rank_deficient_blocks", "gram_rank_deficient"]


def _part_blocks(part, i: int, spec: ModelSpec) -> CrossProducts | None:
    rows = partition_spec(spec, part)
    return None if rows is None else crossproducts(rows)


def _sum(blocks: list) -> CrossProducts | None:
    total = None
    for cp in blocks:
        if cp is not None:
            total = cp if total is None else total + cp
    return total


def dask_crossproducts(spec: ModelSpec, split_every: int = 8) -> CrossProducts:
    """The cross-product blocks of a template spec's rows (every partition of
    ``spec.source.ddf``), summed by a tree reduction.

    Examples
    --------
    >>> import mixedppl as mp, dask.dataframe as dd
    >>> from mixedppl.spec.dask_spec import build_dask_spec
    >>> d = mp.datasets.load("sleepstudy")
    >>> spec = build_dask_spec("Reaction ~ Days + (Days | Subject)", dd.from_pandas(d, npartitions=3))
    >>> cp = dask_crossproducts(spec)
    >>> cp.n, cp.A11.shape, round(float(cp.AFF[1, 2]), 2) == round(float(d.Days @ d.Reaction), 2)
    (180.0, (18, 2, 2), True)
    """
    return tree_reduce(spec.source.ddf, partial(_part_blocks, spec=for_workers(spec)), _sum,
                       split_every=split_every,
                       progress="Dask: cross-products" if spec.source.progress else None)


def gram_rank_deficient(G: np.ndarray, names: list[str], tol: float = 1e-7) -> list[int]:
    """Indices of the columns kept by the left-to-right rank check, from the Gram matrix X'X.

    Column j is dropped when ``G_jj − g_jᵀ G_KK⁻¹ g_j ≤ tol² G_jj`` (K the kept columns before
    it), the squared form of :func:`~mixedppl.spec.model_spec.drop_rank_deficient`'s rule.

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), [1., 2, 3, 4], [2., 4, 6, 8]])
    >>> gram_rank_deficient(X.T @ X, ["a", "b", "c"])
    [0, 1]
    """
    kept: list[int] = []
    for j in range(G.shape[0]):
        gjj = G[j, j]
        r2 = gjj
        if kept and gjj > 0:
            gk = G[kept, j]
            r2 = gjj - gk @ np.linalg.solve(G[np.ix_(kept, kept)], gk)
        if gjj <= 0 or r2 <= tol ** 2 * gjj:
            continue
        kept.append(j)
    return kept


def drop_rank_deficient_blocks(spec: ModelSpec, cp: CrossProducts
                               ) -> tuple[ModelSpec, CrossProducts]:
    """The spec and blocks without the fixed-effect columns that the rank check drops (with
    build_spec's RankDeficiencyWarning)."""
    p = spec.p
    kept = gram_rank_deficient(cp.AFF[:p, :p], spec.fe_names)
    if len(kept) == p:
        return spec, cp
    dropped = [c for j, c in enumerate(spec.fe_names) if j not in kept]
    warnings.warn(f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
                  f"column(s): {', '.join(dropped)}", RankDeficiencyWarning, stacklevel=4)
    cols = kept + [p]
    cp = replace(cp, AFF=cp.AFF[np.ix_(cols, cols)], A1F=cp.A1F[:, :, cols],
                 ARF=None if cp.ARF is None else cp.ARF[:, cols])
    spec = replace(spec, X=np.zeros((0, len(kept))), fe_names=[spec.fe_names[j] for j in kept],
                   dropped_columns=dropped)
    return spec, cp
