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
from .covstruct import TIME_STRUCTURES, Covariance, lower_triangle_pairs
from .design import Design, model_matrix

__all__ = ["ReTerm", "build_reterm", "grouping_factor", "level_labels", "value_labels",
           "lower_triangle_pairs", "relative_factor", "relative_factors"]


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
        out.append(t.T(theta[start:start + t.n_theta]))
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
    structure : str
        The covariance structure of the term's columns (:mod:`mixedppl.spec.covstruct`):
        ``"us"`` (lme4's ``(x | g)``), ``"diag"``, ``"cs"``, ``"ar1"`` or ``"toep"``. θ_k is the
        structure's parameter vector; :meth:`T` maps it to the lower-triangular factor.
    """

    group: str
    group_vars: tuple[str, ...]
    codes: np.ndarray
    levels: list[str]
    z: np.ndarray
    column_names: list[str]
    design: Design = field(repr=False)
    structure: str = "us"

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
    def covariance(self) -> Covariance:
        """The term's :class:`~mixedppl.spec.covstruct.Covariance` (structure and width)."""
        return Covariance(self.structure, self.n_cols)

    @property
    def structured(self) -> bool:
        """Whether θ_k is a structure's parameters rather than lme4's lower triangle of T."""
        return self.structure != "us"

    @property
    def n_theta(self) -> int:
        return self.covariance.n_theta

    def theta_pairs(self) -> list[tuple[int, int]]:
        """(row, col) of each θ in ``T``: the lower triangle in column-major order, as lme4.

        Only for lme4's layout (``us``): a structured term's θ are no entries of T.
        """
        if self.structured:
            raise ModelSpecError(
                f"the {self.structure}() term on '{self.group}' has no lme4 θ layout (its θ are "
                "the structure's SDs and correlation parameters): this computation supports "
                "unstructured terms (x | g) only")
        return lower_triangle_pairs(self.n_cols)

    def theta_mirror(self) -> dict[int, list[int]]:
        """Index of each diagonal θ → indices of the θ below it in its column of ``T``.

        Negating a column of ``T`` leaves ``TTᵀ`` (and every likelihood) unchanged. A structured
        term's SDs are bounded at 0 and have no mirror.
        """
        if self.structured:
            return {}
        pairs = self.theta_pairs()
        return {k: [m for m, (i, j) in enumerate(pairs) if j == jj and i > j]
                for k, (ii, jj) in enumerate(pairs) if ii == jj}

    def theta_names(self) -> list[str]:
        """lme4's names: ``Subject.(Intercept)``, ``Subject.Days.(Intercept)``, ``Subject.Days``
        (a structure's: ``subject.sd``, ``subject.ar1``; see :class:`Covariance`)."""
        return self.covariance.theta_names(self.group, self.column_names)

    def theta_lower(self) -> np.ndarray:
        """Lower bounds: 0 on the diagonal of T (on SDs), -inf elsewhere."""
        return self.covariance.theta_lower()

    def theta_start(self) -> np.ndarray:
        """lme4's start: T = I."""
        return self.covariance.theta_start()

    def T(self, theta_k: np.ndarray) -> np.ndarray:
        """The ℓ×ℓ lower-triangular factor for this term's slice of θ."""
        return self.covariance.factor(theta_k)

    def lower_triangle(self, theta_k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """T in lme4's θ layout (what the graphs take) and its Jacobian with respect to θ_k."""
        return self.covariance.lower_triangle(theta_k)


def _time_levels(design: Design, structure: str, group: str, where: str) -> None:
    """ar1 / toep: the term's columns must be the indicators of one factor of times (no
    intercept); levels that read as numbers must be equally spaced."""
    names = design.column_names
    if len(design.term_names) != 1 or "(Intercept)" in names:
        raise ModelSpecError(
            f"{where}: {structure}() needs one factor of times and no intercept, written as "
            f"{structure}({design.term_names[-1] if design.term_names else 'times'} + 0 | {group});"
            f" got the columns {names}")
    term = design.term_names[0]
    if not all(n.startswith(term) for n in names) or names == [term]:
        raise ModelSpecError(
            f"{where}: '{term}' is numeric; {structure}() needs a factor of equally "
            f"spaced times (one column per time), e.g. factor({term})")
    if len(names) < 2:
        raise ModelSpecError(f"{where}: the factor '{term}' has {len(names)} level; a "
                             "correlation needs at least 2 times")
    levels = [n[len(term):] for n in names]
    try:
        values = np.array([float(v) for v in levels])
    except ValueError:
        return
    steps = np.diff(values)
    if len(steps) and (np.any(steps <= 0) or not np.allclose(steps, steps[0])):
        raise ModelSpecError(
            f"{where}: the levels of '{term}' ({', '.join(levels)}) are not equally spaced; "
            f"{structure}() assumes one time step between consecutive levels "
            "(glmmTMB's ou() for unequal spacing is not supported)")


def build_reterm(lhs: str, group: str, group_vars: tuple[str, ...], data: pd.DataFrame,
                 contrasts: dict | None = None,
                 factor: tuple[np.ndarray, list[str]] | None = None,
                 structure: str = "us", preset: dict | None = None) -> ReTerm:
    """Build a :class:`ReTerm` from ``structure(lhs | group)`` on rows already cleaned of missing
    values (``preset``: :func:`~mixedppl.spec.design.model_matrix`'s).

    ``factor = (codes, labels)`` gives the grouping factor when its levels are known from more
    rows than ``data`` (a Dask DataFrame's levels, collected over every partition)."""
    codes, labels = grouping_factor(data, group_vars) if factor is None else factor
    if len(labels) < 2:
        raise ModelSpecError(
            f"grouping factor '{group}' has {len(labels)} level in the data used "
            f"({labels[0] if labels else 'none'}); a random effect needs at least 2 levels. "
            "Drop the term or use the column as a fixed effect.")
    design = model_matrix(lhs, data, contrasts=contrasts, preset=preset)
    where = f"{structure}({lhs} | {group})"
    if structure in TIME_STRUCTURES:
        _time_levels(design, structure, group, where)
    elif structure == "cs" and design.matrix.shape[1] < 2:
        raise ModelSpecError(f"{where} has one column; compound symmetry needs at least 2")
    return ReTerm(group=group, group_vars=tuple(group_vars), codes=codes, levels=labels,
                  z=np.ascontiguousarray(design.matrix, dtype=float),
                  column_names=list(design.column_names), design=design, structure=structure)
