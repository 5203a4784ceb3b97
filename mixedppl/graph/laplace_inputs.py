"""Numeric inputs of the structure-generic Laplace graph (:mod:`mixedppl.graph.laplace`).

The graph sees a model through data arrays only, so one compiled function serves every formula
with the same :attr:`LaplaceStructure.graph_key`:

* ``sizes`` = (G₁, q_R): the first term's levels and the other terms' random effects;
* the first term: its level codes, its model matrix ``Z₁`` (n × ℓ₁), flat destinations of its
  entries in u (``c1``) and in the (G₁, ℓ₁, ℓ₁) stack of its blocks (``c11``), and where θ sits
  in ``T₁`` (``t1_rows, t1_cols, t1_theta``);
* every other term together as one sparse ``(ZΛ)_R``: its non-zeros ``(nz_row, nz_col)`` (column
  ``off_k + g·ℓ_k + a`` for term k, level g, column a of T_k, level-major as lme4's ``Zt``) whose
  values are ``Σ_e e_z[e] θ[e_th[e]]`` over the contributions e with ``e_nz[e]`` = that non-zero
  (``(ZΛ)[i, (g, a)] = Σ_b z[i, b] T[b, a]``); the pairs of non-zeros in one row (``rr_*``, for
  ``A_RR``) and the flat destinations of ``A_R1``'s entries (``r1_dest``);
* in ``"pairs"`` mode, the pairs of non-zeros whose rows share a level of the first term
  (``pp_*``), from which ``A_R1 A₁₁⁻¹ A_1R`` is formed when that is cheaper than the dense product.

θ enters only through these index maps (θ's position ``t1_theta`` / ``e_th`` for each entry of
T), laid out by :func:`~mixedppl.spec.reterm.lower_triangle_pairs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec.reterm import lower_triangle_pairs

__all__ = ["LaplaceStructure", "laplace_structure", "row_pairs", "design_inputs", "structure_inputs",
           "aux_names",
           "input_names"]


@dataclass(frozen=True)
class LaplaceStructure:
    """What the Laplace graph is built from.

    ``r_mode``: ``"none"`` (one term), ``"dense"`` (the Schur block's product formed densely) or
    ``"pairs"`` (from pairs of rows sharing a level of the first term); ``ell1``: the first
    term's width. The graph depends only on :meth:`graph_key`.

    Examples
    --------
    >>> LaplaceStructure("dense", 2).graph_key()
    ('dense', False)
    >>> LaplaceStructure("none", 2).graph_key(nAGQ=5)
    ('none', False, 2)
    """

    r_mode: str
    ell1: int

    def graph_key(self, nAGQ: int = 1) -> tuple:
        """``(r_mode, first term scalar)``: six graphs per family and link; adaptive
        Gauss–Hermite (``nAGQ > 1``, one term) unrolls its product rule over ℓ₁ and adds it."""
        key = (self.r_mode, self.ell1 == 1)
        return key + (self.ell1,) if nAGQ > 1 else key


def input_names(r_mode: str) -> list[str]:
    """Names of the data inputs after (u, θ, β, φ), in order, for a storage mode.

    Examples
    --------
    >>> input_names("none")[-3:]
    ['t1_rows', 't1_cols', 't1_theta']
    """
    names = ["y", "ntr", "offset", "X", "sizes", "codes1", "Z1", "c1", "c11", "t1_rows",
             "t1_cols", "t1_theta"]
    if r_mode != "none":
        names += ["nz_row", "nz_col", "e_nz", "e_z", "e_th", "rr_a", "rr_b", "rr_row", "rr_dest",
                  "r1_dest"]
    if r_mode == "pairs":
        names += ["pp_a", "pp_b", "pp_ra", "pp_rb", "pp_g", "pp_dest"]
    return names


def row_pairs(spec) -> tuple[np.ndarray, np.ndarray] | None:
    """Ordered pairs of rows (i, i') in the same level of the first term, when forming the Schur
    block's product from them is cheaper than the dense product (else None).

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.glmm_api import glmm_model
    >>> spec = glmm_model("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)",
    ...                   mp.datasets.load("grouseticks"), "poisson")[0]
    >>> len(row_pairs(spec)[0])
    1791
    """
    if len(spec.terms) < 2:
        return None
    t1, rest = spec.terms[0], spec.terms[1:]
    counts = np.bincount(t1.codes, minlength=t1.n_levels)
    r_R = sum(t.n_cols for t in rest)
    n_pairs = int((counts.astype(np.int64) ** 2).sum())
    q_R = sum(t.n_levels * t.n_cols for t in rest)
    if n_pairs * r_R ** 2 * t1.n_cols ** 2 * 8 >= q_R ** 2 * t1.n_levels * t1.n_cols:
        return None
    order = np.argsort(t1.codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    pa, pb = [], []
    for g in np.flatnonzero(counts):
        rows = order[starts[g]:starts[g + 1]]
        pa.append(np.repeat(rows, len(rows)))
        pb.append(np.tile(rows, len(rows)))
    return np.concatenate(pa).astype(np.int64), np.concatenate(pb).astype(np.int64)


def laplace_structure(spec, pairs=None) -> LaplaceStructure:
    """The structure of ``spec``'s Laplace graph (``pairs`` from :func:`row_pairs`)."""
    mode = "none" if len(spec.terms) == 1 else ("pairs" if pairs is not None else "dense")
    return LaplaceStructure(mode, spec.terms[0].n_cols)


def _tril(ell: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = lower_triangle_pairs(ell)
    return (np.array([i for i, _ in pairs], dtype=np.int64),
            np.array([j for _, j in pairs], dtype=np.int64))


def _graph_n_theta(term) -> int:
    """θ entries of a term in the graphs' layout: T's whole lower triangle, ℓ(ℓ+1)/2 (a
    structured term's own parameters are mapped there by ``ModelSpec.graph_theta``)."""
    return term.n_cols * (term.n_cols + 1) // 2


def _rest_nonzeros(terms, n: int, theta_off: int):
    """(ZΛ)_R's non-zeros and the contributions of θ to their values (see the module text)."""
    nz_row, nz_col, e_nz, e_z, e_th = [], [], [], [], []
    rows = np.arange(n, dtype=np.int64)
    base, off = 0, 0
    for t in terms:
        ell = t.n_cols
        codes = np.asarray(t.codes, dtype=np.int64)
        for a in range(ell):
            nz_row.append(rows)
            nz_col.append(off + codes * ell + a)
        for j, (r, c) in enumerate(lower_triangle_pairs(ell)):
            e_nz.append(base + c * n + rows)
            e_z.append(np.asarray(t.z[:, r], float))
            e_th.append(np.full(n, theta_off + j, dtype=np.int64))
        base += ell * n
        off += t.n_levels * ell
        theta_off += _graph_n_theta(t)
    cat = np.concatenate
    return cat(nz_row), cat(nz_col), cat(e_nz), cat(e_z), cat(e_th), off


def _same_row_pairs(n: int, r: int) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs (e, e') of non-zeros in one row; the non-zeros are r blocks of n rows
    (row i's are i, i + n, …)."""
    per_row = np.arange(r, dtype=np.int64)[None, :] * n + np.arange(n, dtype=np.int64)[:, None]
    a = np.repeat(per_row, r, axis=1).ravel()
    b = np.tile(per_row, (1, r)).ravel()
    return a, b


def aux_names(family) -> tuple[str, ...]:
    """The family's extra design matrices (zero-inflation / dispersion formulas:
    :mod:`mixedppl.families.zi_disp`), passed to its ``loglik`` by name; none for most."""
    return tuple(getattr(family, "aux_designs", ()))


def design_inputs(spec, y: np.ndarray, ntr: np.ndarray, pairs=None) -> list[np.ndarray]:
    """The data inputs of the compiled Laplace functions (:func:`structure_inputs`), then the
    family's extra designs (``spec.aux_designs``: zero-inflation / dispersion formulas).

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.glmm_api import glmm_model
    >>> f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    >>> spec, fam, link, y, n = glmm_model(f, mp.datasets.load("cbpp"), "binomial")
    >>> len(design_inputs(spec, y, n)) == len(structure_inputs(spec, y, n))
    True
    """
    aux = [np.asarray(spec.aux_designs[name], float) for name in aux_names(spec.family)]
    return structure_inputs(spec, y, ntr, pairs) + aux


def structure_inputs(spec, y: np.ndarray, ntr: np.ndarray, pairs=None) -> list[np.ndarray]:
    """The data inputs of the compiled Laplace functions, in the order of :func:`input_names`
    (``pairs``: the row pairs of :func:`row_pairs`, or None for the dense product).

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.glmm_api import glmm_model
    >>> f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    >>> spec, fam, link, y, n = glmm_model(f, mp.datasets.load("cbpp"), "binomial")
    >>> [a.shape for a in structure_inputs(spec, y, n)][4:9]
    [(2,), (56,), (56, 1), (56,), (56,)]
    """
    t1, rest = spec.terms[0], spec.terms[1:]
    n, ell1, G1 = len(t1.codes), t1.n_cols, t1.n_levels
    codes1 = np.ascontiguousarray(t1.codes, dtype=np.int64)
    ar = np.arange(ell1, dtype=np.int64)
    c1 = (codes1[:, None] * ell1 + ar[None, :]).ravel()
    c11 = (codes1[:, None, None] * ell1 * ell1 + ar[None, :, None] * ell1
           + ar[None, None, :]).ravel()
    q_rest = sum(t.n_levels * t.n_cols for t in rest)
    sizes = np.array([G1, q_rest], dtype=np.int64)
    vals = [np.asarray(y, float), np.asarray(ntr, float), np.asarray(spec.offset, float),
            np.asarray(spec.X, float), sizes, codes1, np.ascontiguousarray(t1.z, dtype=float),
            c1, c11, *_tril(ell1), np.arange(_graph_n_theta(t1), dtype=np.int64)]
    if not rest:
        return vals
    nz_row, nz_col, e_nz, e_z, e_th, qR = _rest_nonzeros(rest, n, _graph_n_theta(t1))
    rr_a, rr_b = _same_row_pairs(n, sum(t.n_cols for t in rest))
    q1 = G1 * ell1
    r1_dest = ((nz_col * q1 + codes1[nz_row] * ell1)[:, None] + ar[None, :]).ravel()
    vals += [nz_row, nz_col, e_nz, e_z, e_th, rr_a, rr_b, nz_row[rr_a],
             nz_col[rr_a] * qR + nz_col[rr_b], r1_dest]
    if pairs is None:
        return vals
    pa, pb = (np.asarray(p, dtype=np.int64) for p in pairs)
    # every non-zero of row pa[j] with every non-zero of row pb[j]
    r = len(nz_row) // n
    k = np.arange(r, dtype=np.int64) * n
    shape = (len(pa), r, r)
    pp_a = np.broadcast_to(pa[:, None, None] + k[None, :, None], shape).ravel()
    pp_b = np.broadcast_to(pb[:, None, None] + k[None, None, :], shape).ravel()
    pp_ra, pp_rb = nz_row[pp_a], nz_row[pp_b]
    return vals + [pp_a, pp_b, pp_ra, pp_rb, codes1[pp_ra], nz_col[pp_a] * qR + nz_col[pp_b]]
