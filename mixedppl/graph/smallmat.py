"""Batched small-matrix algebra as elementwise PyTensor graphs.

A batch of G matrices of size ℓ×ℓ (ℓ small: the columns of one random term) is held as a nested
list ``M[i][j]`` of length-G vectors. Cholesky factors, triangular inverses and products are then
unrolled over ℓ into elementwise operations, which PyTensor fuses into a few C loops and
differentiates exactly — much faster than a Python-level loop of G small LAPACK calls.
"""

from __future__ import annotations

import pytensor.tensor as pt

__all__ = ["bchol", "btri_inv", "bmatmul", "btranspose", "bsandwich_t"]


def bchol(A: list[list], ell: int) -> list[list]:
    """Lower Cholesky factors of a batch of SPD matrices (Cholesky–Banachiewicz, unrolled)."""
    L = [[None] * ell for _ in range(ell)]
    for i in range(ell):
        for j in range(i + 1):
            s = A[i][j]
            for k in range(j):
                s = s - L[i][k] * L[j][k]
            L[i][j] = pt.sqrt(s) if i == j else s / L[j][j]
    return L


def btri_inv(L: list[list], ell: int) -> list[list]:
    """Inverses of a batch of lower-triangular matrices (forward substitution, unrolled)."""
    inv = [[None] * ell for _ in range(ell)]
    for j in range(ell):
        inv[j][j] = 1.0 / L[j][j]
        for i in range(j + 1, ell):
            s = 0.0
            for k in range(j, i):
                s = s + L[i][k] * inv[k][j]
            inv[i][j] = -s / L[i][i]
    return inv


def _get(M, i, j):
    v = M[i][j]
    return 0.0 if v is None else v


def bmatmul(A: list[list], B: list[list], ell: int) -> list[list]:
    """Batched product A·B (entries that are None count as 0)."""
    out = [[None] * ell for _ in range(ell)]
    for i in range(ell):
        for j in range(ell):
            terms = [A[i][k] * B[k][j] for k in range(ell)
                     if A[i][k] is not None and B[k][j] is not None]
            out[i][j] = sum(terms[1:], terms[0]) if terms else None
    return out


def btranspose(A: list[list], ell: int) -> list[list]:
    return [[A[j][i] for j in range(ell)] for i in range(ell)]


def bsandwich_t(T: list[list], A: list[list], ell: int) -> list[list]:
    """Tᵀ·A·T for a (shared or batched) lower-triangular T and a batch A."""
    return bmatmul(bmatmul(btranspose(T, ell), A, ell), T, ell)
