"""Random-effect terms: integer level codes, the term's model matrix and where θ sits.

A term ``(1 + Days | Subject)`` contributes ``q = G·ℓ`` random effects (G levels, ℓ columns), ordered
level-major as in lme4's ``Zt``. Its relative covariance factor is ``Λ_k = I_G ⊗ T_k`` with ``T_k``
lower triangular, filled column-major from ``θ_k`` (ℓ(ℓ+1)/2 values; the diagonal bounded below by 0).

References
----------
Bates et al. (2015), J. Stat. Softw. 67(1), section 2.3 (eqs. 5–8 and the θ layout).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..core.exceptions import ModelSpecError
from .design import Design, model_matrix

__all__ = ["ReTerm", "build_reterm", "grouping_factor", "level_labels", "value_labels",
           "lower_triangle_pairs", "relative_factor", "relative_factors"]


def lower_triangle_pairs(ell: int) -> list[tuple[int, int]]:
    """(row, col) of each θ in an ℓ×ℓ ``T``: the lower triangle in column-major order, as lme4.

    The one θ layout: :meth:`ReTerm.T`, :func:`relative_factors` and the symbolic builder of
    :mod:`mixedppl.graph.relative_factor` all read it.

    Examples
    --------
    >>> lower_triangle_pairs(2)
    [(0, 0), (1, 0), (1, 1)]
    """
    return [(i, j) for j in range(ell) for i in range(j, ell)]


def relative_factor(theta_k: np.ndarray, ell: int) -> np.ndarray:
    r"""The ℓ×ℓ lower-triangular :math:`T_k` filled column-major from θ_k (NumPy).

    Examples
    --------
    >>> relative_factor(np.array([1.0, 0.5, 2.0]), 2).tolist()
    [[1.0, 0.0], [0.5, 2.0]]
    """
    out = np.zeros((ell, ell))
    for (i, j), v in zip(lower_triangle_pairs(ell), theta_k):
        out[i, j] = v
    return out


def relative_factors(terms, theta: np.ndarray) -> list[np.ndarray]:
    r"""θ → :math:`T_k` for every term, θ laid out term after term (``spec.terms`` order).

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> relative_factors(spec.terms, np.array([1.0, 0.5, 2.0]))[0].tolist()
    [[1.0, 0.0], [0.5, 2.0]]
    """
    theta = np.asarray(theta, float)
    out, start = [], 0
    for t in terms:
        out.append(relative_factor(theta[start:start + t.n_theta], t.n_cols))
        start += t.n_theta
    return out


def _num_label(v) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def value_labels(values: pd.Series) -> list[str]:
    """R's ``as.character`` of each value (used to match new rows to fitted levels)."""
    if pd.api.types.is_bool_dtype(values):
        return ["TRUE" if v else "FALSE" for v in values]
    if pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype):
        return [_num_label(v) for v in values]
    return [str(v) for v in values]


def level_labels(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and R-style level labels of one grouping column (unused levels dropped)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.remove_unused_categories()
        return cats.cat.codes.to_numpy(np.int64), [str(c) for c in cats.cat.categories]
    if pd.api.types.is_bool_dtype(values):
        uniq = np.array([False, True])
        codes = values.to_numpy().astype(np.int64)
        used = np.unique(codes)
        remap = -np.ones(2, np.int64)
        remap[used] = np.arange(len(used))
        return remap[codes], [["FALSE", "TRUE"][u] for u in used]
    if pd.api.types.is_numeric_dtype(values):
        uniq, codes = np.unique(values.to_numpy(), return_inverse=True)
        labels = [_num_label(v) for v in uniq]
        return codes.astype(np.int64), labels
    as_str = values.astype(str).to_numpy()
    uniq, codes = np.unique(as_str, return_inverse=True)
    return codes.astype(np.int64), [str(u) for u in uniq]


def grouping_factor(data: pd.DataFrame, group_vars: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Codes and labels of the interaction ``a:b:…`` (first column slowest, unused combos dropped)."""
    codes, labels = level_labels(data[group_vars[0]])
    for var in group_vars[1:]:
        c2, l2 = level_labels(data[var])
        combined = codes * len(l2) + c2
        used, codes = np.unique(combined, return_inverse=True)
        labels = [f"{labels[u // len(l2)]}:{l2[u % len(l2)]}" for u in used]
    return codes.astype(np.int64), labels


@dataclass(frozen=True, eq=False)
class ReTerm:
    """One random-effect term after expansion (see :mod:`mixedppl.spec.formula`).

    Attributes
    ----------
    group : str
        Grouping factor name as lme4 prints it (``"Subject"``, ``"cask:batch"``).
    group_vars : tuple of str
        Data columns forming the grouping factor.
    codes : ndarray of int
        Level index of each row (0-based).
    levels : list of str
        Level labels, in R's order.
    z : ndarray, shape (n, ℓ)
        The term's model-matrix columns (``Z_k`` row i is ``z[i]`` placed in level ``codes[i]``).
    column_names : list of str
        lme4's names of the term's columns (``"(Intercept)"``, ``"Days"``).
    design : Design
        Builds ``z`` for new data at predict time.
    """

    group: str
    group_vars: tuple[str, ...]
    codes: np.ndarray
    levels: list[str]
    z: np.ndarray
    column_names: list[str]
    design: Design = field(repr=False)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def n_cols(self) -> int:
        return self.z.shape[1]

    @property
    def q(self) -> int:
        return self.n_levels * self.n_cols

    @property
    def n_theta(self) -> int:
        return self.n_cols * (self.n_cols + 1) // 2

    def theta_pairs(self) -> list[tuple[int, int]]:
        """(row, col) of each θ in ``T``: the lower triangle in column-major order, as lme4."""
        return lower_triangle_pairs(self.n_cols)

    def theta_mirror(self) -> dict[int, list[int]]:
        """Index of each diagonal θ → indices of the θ below it in its column of ``T``.

        Negating a column of ``T`` leaves ``TTᵀ`` (and every likelihood) unchanged.
        """
        pairs = self.theta_pairs()
        return {k: [m for m, (i, j) in enumerate(pairs) if j == jj and i > j]
                for k, (ii, jj) in enumerate(pairs) if ii == jj}

    def theta_names(self) -> list[str]:
        """lme4's names: ``Subject.(Intercept)``, ``Subject.Days.(Intercept)``, ``Subject.Days``."""
        cn = self.column_names
        return [f"{self.group}.{cn[i]}" if i == j else f"{self.group}.{cn[i]}.{cn[j]}"
                for i, j in self.theta_pairs()]

    def theta_lower(self) -> np.ndarray:
        """Lower bounds: 0 on the diagonal of T, -inf below it."""
        return np.array([0.0 if i == j else -np.inf for i, j in self.theta_pairs()])

    def theta_start(self) -> np.ndarray:
        """lme4's start: T = I."""
        return np.array([1.0 if i == j else 0.0 for i, j in self.theta_pairs()])

    def T(self, theta_k: np.ndarray) -> np.ndarray:
        """The ℓ×ℓ lower-triangular factor for this term's slice of θ."""
        return relative_factor(theta_k, self.n_cols)


def build_reterm(lhs: str, group: str, group_vars: tuple[str, ...], data: pd.DataFrame,
                 contrasts: dict | None = None,
                 factor: tuple[np.ndarray, list[str]] | None = None) -> ReTerm:
    """Build a :class:`ReTerm` from ``(lhs | group)`` on rows already cleaned of missing values.

    ``factor = (codes, labels)`` gives the grouping factor when its levels are known from more
    rows than ``data`` (a Dask DataFrame's levels, collected over every partition)."""
    codes, labels = grouping_factor(data, group_vars) if factor is None else factor
    if len(labels) < 2:
        raise ModelSpecError(
            f"grouping factor '{group}' has {len(labels)} level in the data used "
            f"({labels[0] if labels else 'none'}); a random effect needs at least 2 levels. "
            "Drop the term or use the column as a fixed effect.")
    design = model_matrix(lhs, data, contrasts=contrasts)
    return ReTerm(group=group, group_vars=tuple(group_vars), codes=codes, levels=labels,
                  z=np.ascontiguousarray(design.matrix, dtype=float),
                  column_names=list(design.column_names), design=design)
