"""The one pass over the rows: cross-product blocks of ``[Z X y]`` (weighted), summed over chunks.

Blocks, with ``F = [X, y − offset]`` (m = p + 1 columns), W = diag(weights), term 1 the term with
the most levels and R the remaining terms stacked:

- ``A11``: Z₁'WZ₁, block diagonal: stored as (G₁, ℓ₁, ℓ₁)
- ``A1F``: Z₁'WF as (G₁, ℓ₁, m)
- ``ARR``: Z_R'WZ_R (q_R × q_R, dense); ``AR1``: Z_R'WZ₁ (sparse CSR); ``ARF``: Z_R'WF
- ``AFF``: F'WF

Every evaluation of the profiled deviance works from these alone (MixedModels.jl's blocked ``A``).
The pass is written as "per chunk of rows, then sum" so it can be map-reduced over partitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..core.exceptions import ModelSpecError
from ..spec.model_spec import ModelSpec

__all__ = ["CrossProducts", "crossproducts", "z_sparse"]


@dataclass(frozen=True)
class CrossProducts:
    """Weighted cross-product blocks of one model's data (see module docstring)."""

    A11: np.ndarray
    A1F: np.ndarray
    AFF: np.ndarray
    ARR: np.ndarray | None
    AR1: sp.csr_matrix | None
    ARF: np.ndarray | None
    n: float
    ldW: float

    def __add__(self, other: "CrossProducts") -> "CrossProducts":
        def add(a, b):
            return None if a is None else a + b
        return CrossProducts(self.A11 + other.A11, self.A1F + other.A1F, self.AFF + other.AFF,
                             add(self.ARR, other.ARR), add(self.AR1, other.AR1),
                             add(self.ARF, other.ARF), self.n + other.n, self.ldW + other.ldW)


def z_sparse(terms, rows: slice | np.ndarray, n_rows: int) -> sp.csr_matrix:
    """Sparse Z (rows × Σq) for the given terms, columns level-major within each term."""
    blocks = []
    for t in terms:
        codes, z = t.codes[rows], t.z[rows]
        ell = t.n_cols
        cols = (codes[:, None] * ell + np.arange(ell)[None, :]).ravel()
        r = np.repeat(np.arange(n_rows), ell)
        blocks.append(sp.csr_matrix((z.ravel(), (r, cols)), shape=(n_rows, t.q)))
    return sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((n_rows, 0))


def _chunk(spec: ModelSpec, rows: slice, y: np.ndarray, w: np.ndarray) -> CrossProducts:
    t1, rest = spec.terms[0], spec.terms[1:]
    F = np.column_stack([spec.X[rows], y[rows] - spec.offset[rows]])
    wr = w[rows]
    codes, z1 = t1.codes[rows], t1.z[rows]
    G, ell, m = t1.n_levels, t1.n_cols, F.shape[1]
    wz = z1 * wr[:, None]
    A11 = np.empty((G, ell, ell))
    for a in range(ell):
        for b in range(ell):
            A11[:, a, b] = np.bincount(codes, wz[:, a] * z1[:, b], minlength=G)
    A1F = np.empty((G, ell, m))
    for a in range(ell):
        for c in range(m):
            A1F[:, a, c] = np.bincount(codes, wz[:, a] * F[:, c], minlength=G)
    AFF = (F * wr[:, None]).T @ F
    ARR = AR1 = ARF = None
    if rest:
        n_rows = F.shape[0]
        ZR = z_sparse(rest, rows, n_rows)
        Z1 = z_sparse((t1,), rows, n_rows)
        ZRw = sp.diags(wr) @ ZR
        ARR = (ZRw.T @ ZR).toarray()
        AR1 = (ZRw.T @ Z1).tocsr()
        ARF = ZRw.T @ F
    pos = wr > 0
    return CrossProducts(A11, A1F, AFF, ARR, AR1, np.asarray(ARF) if ARF is not None else None,
                         float(pos.sum()), float(np.log(wr[pos]).sum()))


def crossproducts(spec: ModelSpec, y: np.ndarray | None = None, weights: np.ndarray | None = None,
                  chunk_size: int = 1_000_000) -> CrossProducts:
    """Form all cross-product blocks in one pass over the rows (chunked, then summed).

    Parameters
    ----------
    spec : ModelSpec
    y, weights : ndarray, optional
        Override the spec's response / weights (refits: bootstrap, case deletion).
    chunk_size : int
        Rows per chunk.
    """
    if spec.source is not None:
        raise ModelSpecError("this model's rows are in a Dask DataFrame, not in the spec: its "
                             "cross-products are summed over the partitions "
                             "(mixedppl.distributed.dask_crossproducts); refits that read the "
                             "rows again (refit, bootstrap, influence) are not available for it")
    y = spec.y if y is None else y
    w = spec.weights if weights is None else weights
    total = None
    for start in range(0, spec.n, chunk_size):
        part = _chunk(spec, slice(start, min(start + chunk_size, spec.n)), y, w)
        total = part if total is None else total + part
    return total
