r"""The LMM's Gaussian marginal over some of its terms, given the random effects of the others:
:math:`\log p(y \mid \beta, \theta_M, \sigma, b_E)` with the terms M integrated out and the terms
E's random effects :math:`b_E` as parameters.

With the terms split into the marginalised M and the sampled E,
:math:`y = X\beta + o + Z_E b_E + Z_M b_M + \varepsilon`, so given :math:`b_E` the model of the terms
M alone holds for the shifted response :math:`y - Z_E b_E`. Its marginal log-density is
:func:`~mixedppl.graph.lmm_marginal.marginal_loglik` on the blocked REML graph of the terms M
(:class:`~mixedppl.graph.lmm.ProfiledLMM`), whose data enter only through the cross-product blocks
of :math:`F = [X,\ y - o]`; replacing y by :math:`y - Z_E b_E` changes only the blocks that involve
the response column:

.. math:: A_{MF}[:, y] \to A_{MF}[:, y] - Z_M^\top W Z_E\, b_E, \qquad
   A_{FF}[X, y] \to A_{FF}[X, y] - X^\top W Z_E\, b_E,

.. math:: A_{FF}[y, y] \to (y - o)^\top W (y - o) - 2\, b_E^\top Z_E^\top W (y - o)
   + b_E^\top Z_E^\top W Z_E\, b_E .

The products with :math:`b_E` are sparse matrix–vector products over the non-zeros of
:math:`Z_M^\top W Z_E` and :math:`Z_E^\top W Z_E` (gathers and scatter-adds, O(nnz) per evaluation,
never a pass over the n rows), so the cost of one log-density and gradient is that of the terms M's
blocked factor plus O(nnz): with InstEval's lecturers ``(1 | d)`` in E, the terms M are the
students (block diagonal) and ``dept:service`` (a 28 × 28 Schur complement), where marginalising
every term needs a dense 1,156 × 1,156 Schur complement.

References
----------
Bates, Mächler, Bolker & Walker (2015). Fitting linear mixed-effects models using lme4.
J. Stat. Softw. 67(1), section 3.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
import scipy.sparse as sp
from pytensor.graph.replace import graph_replace

from ..spec.model_spec import ModelSpec
from .crossprod import crossproducts, z_sparse
from .lmm import ProfiledLMM
from .lmm_inputs import lmm_inputs, lmm_structure
from .lmm_marginal import marginal_loglik

__all__ = ["SparseBlock", "PartialBlocks", "partial_blocks", "partial_marginal_loglik",
           "sub_spec", "sparse_matvec"]


@dataclass(frozen=True)
class SparseBlock:
    """A sparse matrix as its non-zeros: ``rows``, ``cols``, ``vals`` and its ``shape``."""

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def of(cls, A) -> "SparseBlock":
        coo = sp.coo_matrix(A)
        coo.sum_duplicates()
        return cls(coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(float),
                   tuple(int(s) for s in coo.shape))

    def tocsr(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.vals, (self.rows, self.cols)), shape=self.shape)


def sparse_matvec(A: SparseBlock, v) -> pt.TensorVariable:
    """A v as a gather and a scatter-add over A's non-zeros (C ops in PyTensor, and so is the
    gradient: the same two ops transposed).

    Examples
    --------
    >>> import numpy as np
    >>> A = SparseBlock.of(np.array([[1.0, 0.0], [2.0, 3.0], [0.0, 0.0]]))
    >>> sparse_matvec(A, np.array([1.0, 10.0])).eval().tolist()
    [1.0, 32.0, 0.0]
    """
    v = pt.as_tensor_variable(v)
    return pt.zeros(A.shape[0])[A.rows].inc(A.vals * v[A.cols])


def sub_spec(spec: ModelSpec, keep: list[int]) -> ModelSpec:
    """``spec`` with only the terms at the positions ``keep`` (in ``spec.terms`` order).

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff")).spec
    >>> len(sub_spec(spec, []).terms)
    0
    """
    return dataclasses.replace(spec, terms=tuple(spec.terms[k] for k in keep))


@dataclass(frozen=True)
class PartialBlocks:
    r"""What :func:`partial_marginal_loglik` needs of a model's data (formed once).

    ``marginal``: positions of the terms M in ``spec.terms``; ``sampled``: of the terms E (their
    b stacked term after term, level-major, as :func:`~mixedppl.graph.crossprod.z_sparse`
    orders them); ``sub``: the spec of the terms M alone; ``C1E``, ``CRE``: the non-zeros of
    :math:`Z_1^\top W Z_E` and :math:`Z_R^\top W Z_E` (term 1 of M and the other terms of M,
    as :mod:`~mixedppl.graph.crossprod` splits them; ``CRE`` is None with one term in M);
    ``XE`` = :math:`X^\top W Z_E` (p, q_E), ``yE`` = :math:`Z_E^\top W (y - o)`,
    ``EE``: the non-zeros of :math:`Z_E^\top W Z_E`.
    """

    marginal: tuple[int, ...]
    sampled: tuple[int, ...]
    sub: ModelSpec
    C1E: SparseBlock
    CRE: SparseBlock | None
    XE: np.ndarray
    yE: np.ndarray
    EE: SparseBlock

    @property
    def q_sampled(self) -> int:
        return self.C1E.shape[1]


def partial_blocks(spec: ModelSpec, sampled: list[int]) -> PartialBlocks:
    """The :class:`PartialBlocks` of ``spec`` with the terms at positions ``sampled`` in E.

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
    ...                 mp.datasets.load("sleepstudy")).spec
    >>> pb = partial_blocks(spec, [1])
    >>> pb.marginal, pb.q_sampled, pb.XE.shape
    ((0,), 18, (2, 18))
    """
    sampled = tuple(sorted(int(k) for k in sampled))
    marginal = tuple(k for k in range(len(spec.terms)) if k not in sampled)
    if not sampled or not marginal:
        raise ValueError("a partial marginal needs at least one sampled and one marginalised term")
    sub = sub_spec(spec, list(marginal))
    n, all_rows = spec.n, slice(None)
    w = np.asarray(spec.weights, float)
    ZE = z_sparse([spec.terms[k] for k in sampled], all_rows, n)
    ZEw = (sp.diags(w) @ ZE).tocsc()
    Z1 = z_sparse(sub.terms[:1], all_rows, n)
    C1E = SparseBlock.of(Z1.T @ ZEw)
    CRE = (SparseBlock.of(z_sparse(sub.terms[1:], all_rows, n).T @ ZEw)
           if len(sub.terms) > 1 else None)
    XE = np.asarray(ZEw.T @ spec.X).T if spec.p else np.zeros((0, ZE.shape[1]))
    yE = np.asarray(ZEw.T @ (spec.y - spec.offset)).ravel()
    EE = SparseBlock.of(ZE.T @ ZEw)
    return PartialBlocks(marginal, sampled, sub, C1E, CRE, np.ascontiguousarray(XE), yE, EE)


def _shift_last(A: pt.TensorVariable, delta, axis: int) -> pt.TensorVariable:
    """A with ``delta`` subtracted from its last entry along ``axis`` (the response column)."""
    last = A.shape[axis] - 1
    idx = [slice(None)] * A.ndim
    idx[axis] = last
    return pt.set_subtensor(A[tuple(idx)], A[tuple(idx)] - delta)


def partial_marginal_loglik(pb: PartialBlocks, theta_M, beta, sigma, b_E) -> pt.TensorVariable:
    r""":math:`\log p(y\mid\beta,\theta_M,\sigma,b_E)` (module docstring) as an expression in θ of
    the terms M (lme4's layout, ``pb.sub.terms`` order), β, σ and the flat :math:`b_E`.

    Examples
    --------
    >>> import numpy as np
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
    ...                 mp.datasets.load("sleepstudy")).spec
    >>> pb = partial_blocks(spec, [1])
    >>> ll = partial_marginal_loglik(pb, np.array([1.0]), np.array([251.4, 10.5]), 25.0,
    ...                              np.zeros(18))
    >>> round(float(ll.eval()), 3)
    -908.323
    """
    sub = pb.sub
    cp = crossproducts(sub)
    structure = lmm_structure(sub, cp)
    g = ProfiledLMM(structure)
    data = [np.array(0.0), *lmm_inputs(sub, cp, structure)]
    b_E = pt.as_tensor_variable(b_E)
    beta = pt.as_tensor_variable(np.asarray(beta, float) if isinstance(beta, np.ndarray) else beta)
    const = {v: pt.constant(np.asarray(a)) for v, a in zip(g.inputs[1:], data)}
    G1, ell1 = sub.terms[0].n_levels, sub.terms[0].n_cols
    const[g.A1F] = _shift_last(pt.constant(cp.A1F), sparse_matvec(pb.C1E, b_E).reshape(
        (G1, ell1)), axis=2)
    if pb.CRE is not None:
        const[g.ARF] = _shift_last(pt.constant(cp.ARF), sparse_matvec(pb.CRE, b_E), axis=1)
    p = sub.p
    AFF = pt.constant(cp.AFF)
    yy = (AFF[p, p] - 2.0 * pt.dot(pb.yE, b_E)
          + pt.sum(pb.EE.vals * b_E[pb.EE.rows] * b_E[pb.EE.cols]))
    if p:
        xy = AFF[:p, p] - (pt.constant(pb.XE) * b_E[None, :]).sum(axis=1)
        AFF = pt.set_subtensor(AFF[:p, p], xy)
        AFF = pt.set_subtensor(AFF[p, :p], xy)
    const[g.AFF] = pt.set_subtensor(AFF[p, p], yy)
    ll = marginal_loglik(g, beta, pt.as_tensor_variable(sigma))
    replace = {g.theta: pt.as_tensor_variable(theta_M).astype("float64"), **const}
    return graph_replace(ll, replace, strict=False)
