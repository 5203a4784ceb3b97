"""Numeric inputs of the profiled-deviance graph, prepared once per dataset from the cross-products.

Decides how ``A_R1`` is stored: dense (q_R × G₁ × ℓ₁) when the dense product ``A_R1 M₁ A_1R`` is
cheap, or as its non-zero ℓ₁-blocks plus the list of block pairs that meet in a level of term 1
(InstEval: ~2·10⁶ pairs instead of a 1,156 × 2,972 × 1,156 product).

The layout of θ is data too: where θ's entries sit in T₁ (``t1_rows, t1_cols``) and in Λ_R (its
non-zeros ``lam_row, lam_col`` and their θ indices ``lam_theta``), and which entries of
Λ_R S⁻¹ Λ_Rᵀ hold the other terms' conditional-variance blocks (``cv_row, cv_col``): the graph
(:mod:`mixedppl.graph.lmm`) is then the same for every term width and number of terms.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..spec.model_spec import ModelSpec
from ..spec.reterm import lower_triangle_pairs
from .crossprod import CrossProducts
from .lmm import LMMStructure

__all__ = ["lmm_structure", "lmm_inputs", "lambda_layout"]

# One dense multiply-add is ~this many times cheaper than one scattered pair update.
_DENSE_ADVANTAGE = 30.0
#: Largest memory for the sparse storage's pair lists before the dense one is preferred.
_SPARSE_MAX_BYTES = 1e9


def _blocks(AR1: sp.csr_matrix, ell1: int):
    """Non-zero (row, level) blocks of A_R1 with their ℓ₁ values, sorted by level."""
    coo = AR1.tocoo()
    grp, col = np.divmod(coo.col, ell1)
    key = coo.row.astype(np.int64) * (AR1.shape[1] // ell1) + grp
    uniq, inv = np.unique(key, return_inverse=True)
    vals = np.zeros((len(uniq), ell1))
    np.add.at(vals, (inv, col), coo.data)
    rows, grps = np.divmod(uniq, AR1.shape[1] // ell1)
    order = np.argsort(grps, kind="stable")
    return rows[order], grps[order], vals[order]


def _pairs(rows: np.ndarray, grps: np.ndarray, qR: int):
    """All (k1, k2) block pairs sharing a level, and their flat destination in P (q_R × q_R)."""
    counts = np.bincount(grps)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    k1 = np.repeat(np.arange(len(grps)), counts[grps])
    first = np.repeat(starts[grps], counts[grps])
    within = np.arange(len(k1)) - np.repeat(np.cumsum(counts[grps]) - counts[grps], counts[grps])
    k2 = first + within
    return k1, k2, rows[k1] * qR + rows[k2]


def _pair_count(AR1: sp.csr_matrix, ell1: int) -> int:
    per_level = np.diff(AR1.tocsc().indptr)[::ell1] if ell1 == 1 else \
        np.diff(AR1.tocsc().indptr).reshape(-1, ell1).max(axis=1)
    return int((per_level.astype(np.int64) ** 2).sum())


def lmm_structure(spec: ModelSpec, cp: CrossProducts) -> LMMStructure:
    """The graph structure for this model: term widths and dense/sparse storage of A_R1."""
    t1, rest = spec.terms[0], spec.terms[1:]
    if not rest:
        return LMMStructure(t1.n_cols, (), "none")
    qR, q1 = cp.AR1.shape
    dense_cost = qR * qR * q1 + qR * q1 * t1.n_cols
    pairs = _pair_count(cp.AR1, t1.n_cols)
    sparse_cost = pairs * t1.n_cols * _DENSE_ADVANTAGE
    mode = "sparse" if sparse_cost < dense_cost else "dense"
    # the pair lists take (ℓ₁² + 5) numbers per pair: above ~1 GB prefer the dense A_R1 when
    # it is smaller (crossed factors with many rows per cell, e.g. 10⁶ rows on 10⁴ × 10³ levels:
    # 10⁸ pairs, 4 GB, against an 80 MB dense A_R1)
    sparse_bytes, dense_bytes = 8.0 * pairs * (t1.n_cols ** 2 + 5), 8.0 * qR * q1
    if mode == "sparse" and sparse_bytes > _SPARSE_MAX_BYTES and dense_bytes < sparse_bytes:
        mode = "dense"
    return LMMStructure(t1.n_cols, tuple(t.n_cols for t in rest), mode)


def _tril_positions(ell: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of a lower-triangular ℓ×ℓ matrix filled column-major (lme4's θ order, the
    one layout :func:`~mixedppl.spec.reterm.lower_triangle_pairs` owns)."""
    pairs = lower_triangle_pairs(ell)
    return (np.array([i for i, _ in pairs], dtype=np.int64),
            np.array([j for _, j in pairs], dtype=np.int64))


def lambda_layout(structure: LMMStructure, n_levels: list[int]
                  ) -> tuple[np.ndarray, ...]:
    """Λ_R's non-zeros and the other terms' conditional-variance entries.

    Returns ``(lam_row, lam_col, lam_theta, cv_row, cv_col)``: Λ_R = ⊕_k I_{G_k} ⊗ T_k has
    ``Λ_R[lam_row[j], lam_col[j]] = θ[lam_theta[j]]``; ``(cv_row[j], cv_col[j])`` run over every
    (a, b) of every level's ℓ_k × ℓ_k diagonal block, term by term, level-major.
    """
    lam_row, lam_col, lam_theta, cv_row, cv_col = [], [], [], [], []
    start, theta_off = 0, structure.theta_sizes[0]
    for ell, G in zip(structure.ell_rest, n_levels):
        rows, cols = _tril_positions(ell)
        base = start + np.arange(G, dtype=np.int64)[:, None] * ell
        lam_row.append((base + rows[None, :]).ravel())
        lam_col.append((base + cols[None, :]).ravel())
        lam_theta.append(np.tile(theta_off + np.arange(len(rows), dtype=np.int64), G))
        a, b = np.divmod(np.arange(ell * ell, dtype=np.int64), ell)
        cv_row.append((base + a[None, :]).ravel())
        cv_col.append((base + b[None, :]).ravel())
        start += G * ell
        theta_off += len(rows)
    return tuple(np.concatenate(v).astype(np.int64) for v in
                 (lam_row, lam_col, lam_theta, cv_row, cv_col))


def lmm_inputs(spec: ModelSpec, cp: CrossProducts, structure: LMMStructure) -> list[np.ndarray]:
    """Input arrays in the order of ``ProfiledLMM(structure).inputs[2:]`` (after θ and reml)."""
    vals = [cp.A11, cp.A1F, cp.AFF, np.array(cp.n, dtype=np.float64),
            np.array(cp.ldW, dtype=np.float64), *_tril_positions(structure.ell1)]
    if structure.r_mode == "none":
        return vals
    rest = spec.terms[1:]
    vals += [cp.ARR, cp.ARF, *lambda_layout(structure, [t.n_levels for t in rest])]
    ell1, qR, q1 = structure.ell1, cp.AR1.shape[0], cp.AR1.shape[1]
    if structure.r_mode == "dense":
        vals.append(np.ascontiguousarray(cp.AR1.toarray().reshape(qR, q1 // ell1, ell1)))
        return vals
    rows, grps, bvals = _blocks(cp.AR1, ell1)
    k1, k2, dest = _pairs(rows, grps, qR)
    prods = (bvals[k1][:, :, None] * bvals[k2][:, None, :]).reshape(len(k1), ell1 * ell1)
    return vals + [rows.astype(np.int64), grps.astype(np.int64), bvals, prods, grps[k1], dest]
