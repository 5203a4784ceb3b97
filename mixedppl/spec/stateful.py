"""Whole-column transforms of a formula (``scale()``, ``poly()``, ``bs()``, ``ns()``) on data that
arrives in pieces (a Dask DataFrame's partitions).

Each such call has parameters computed from its argument over all the rows used: ``scale`` the
centre ``mean(x)`` and scale ``sqrt(Σ(x − c)² / (n − 1))``; ``poly`` R's recursion coefficients
``alpha`` and ``norm2`` (``attr(poly(x, d), "coefs")``); ``bs`` / ``ns`` the interior knots (type-7
quantiles of x) and the boundary knots ``range(x)``.

For ``scale`` every partition hands back its count, mean, centred sum of squares (or the sum of
squares about a given centre) and range, merged by Chan, Golub & LeVeque's pairwise update
(:class:`Moments`): O(1) memory, and the centre and scale equal the in-memory ``mean`` / ``sd``
to rounding (~1e-16 relative). For ``poly``, ``bs`` and ``ns`` every partition hands back the
argument's values on its used rows (:func:`collect_arguments`; :func:`combine_arguments` joins
them in partition order) and the client runs the in-memory code itself on the joined column
(:func:`fit_parameters`), so the parameters and the errors (a degree too large for the distinct
values, a bad df) are exactly the pandas path's. The client then holds one float64 column
(8 bytes a row) per such call: an exact quantile needs the sorted values, and poly's QR the
column, and this is the memory it takes. The designs are built with these parameters fixed
(``model_matrix(preset=…)``) and applied per partition as fixed transforms.

References
----------
R Core Team, ``scale``, ``poly`` (package stats), ``bs``, ``ns`` (package splines).
Chan, T. F., Golub, G. H. and LeVeque, R. J. (1979). Updating formulae and a pairwise algorithm
for computing sample variances. Stanford CS report STAN-CS-79-773.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np
import pandas as pd

from ..core.exceptions import ModelSpecError
from .contrasts import (EvalState, _arg, _const, _num, constant_scale_error, evaluate,
                        scale_arguments)
from .design import Node, _expand

__all__ = ["STATEFUL", "Moments", "stateful_calls", "collect_arguments", "combine_arguments",
           "fit_parameters"]

STATEFUL = ("scale", "poly", "bs", "ns")


@dataclass(frozen=True)
class Moments:
    """Count, mean, ``Σ(x − mean)²``, ``Σ(x − c₀)²`` about a fixed centre ``c₀`` and the range of
    the non-missing values of a column piece; ``a + b`` is the piece of both (Chan et al.'s
    pairwise update ``M₂ = M₂ᵃ + M₂ᵇ + δ² nᵃnᵇ / n``).

    Examples
    --------
    >>> x = np.array([1.0, 2.0, 4.0, 8.0])
    >>> m = Moments.of(x[:1], 0.0) + Moments.of(x[1:], 0.0)
    >>> m.n, m.mean, m.m2, float(np.sum((x - x.mean()) ** 2)), m.ss
    (4, 3.75, 28.75, 28.75, 85.0)
    """

    n: int
    mean: float
    m2: float
    ss: float
    lo: float
    hi: float

    @classmethod
    def of(cls, x: np.ndarray, c0: float) -> "Moments":
        x = x[~np.isnan(x)]
        if len(x) == 0:
            return cls(0, 0.0, 0.0, 0.0, np.inf, -np.inf)
        mean = float(np.mean(x))
        return cls(len(x), mean, float(np.sum((x - mean) ** 2)), float(np.sum((x - c0) ** 2)),
                   float(x.min()), float(x.max()))

    def __add__(self, other: "Moments") -> "Moments":
        n = self.n + other.n
        if self.n == 0 or other.n == 0:
            return self if other.n == 0 else other
        delta = other.mean - self.mean
        return Moments(n, self.mean + delta * other.n / n,
                       self.m2 + other.m2 + delta * delta * self.n * other.n / n,
                       self.ss + other.ss, min(self.lo, other.lo), max(self.hi, other.hi))


def _scale_parameters(node: Node, m: Moments) -> tuple:
    """``(centre, scale)`` of ``scale()`` from the merged moments, as ``contrasts._scale``."""
    center, scale = scale_arguments(node)
    c = m.mean if center is True else (None if center is False else center)
    if scale is True:
        s = float(np.sqrt((m.m2 if center is True else m.ss) / max(1, m.n - 1)))
        if not s > 0 or (center is True and m.lo == m.hi):
            raise constant_scale_error(node)
    else:
        s = None if scale is False else scale
    return c, s


def _is_stateful(node: Node) -> bool:
    if node.kind != "call" or node.value not in STATEFUL or not node.args:
        return False
    return not (node.value == "poly" and _const(_arg(node, "raw", 99), False, node))


def _walk(node: Node, out: list, inside: Node | None, rhs: str) -> None:
    if _is_stateful(node):
        if inside is not None:
            raise ModelSpecError(f"formula {rhs!r}: {node} inside {inside} is not read on a Dask "
                                 "DataFrame; compute the inner column first")
        out.append(node)
        inside = node
    for a in node.args:
        _walk(a, out, inside, rhs)


def stateful_calls(rhs: str) -> list[Node]:
    """The ``scale`` / ``poly`` (not ``raw = TRUE``) / ``bs`` / ``ns`` calls of a right-hand side.

    Examples
    --------
    >>> [str(n) for n in stateful_calls("x + scale(z) + poly(w, 2):f + poly(w, 2, raw = TRUE)")]
    ['scale(z)', 'poly(w, 2)']
    """
    ex, _, _ = _expand(rhs)
    out: list[Node] = []
    for node in ex.vars:
        _walk(node, out, None, rhs)
    return out


def collect_arguments(frame: pd.DataFrame, rhss: list[str]) -> dict[str, np.ndarray]:
    """Call text → its argument's values on ``frame`` (rows already cleaned of missing values),
    or their :class:`Moments` for ``scale()``.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 4.0]})
    >>> collect_arguments(frame, ["1 + poly(log(x), 2)"])
    {'poly(log(x), 2)': array([0.        , 0.69314718, 1.38629436])}
    >>> collect_arguments(frame, ["scale(x)"])["scale(x)"].mean
    2.3333333333333335
    """
    out: dict[str, np.ndarray] = {}
    for rhs in rhss:
        for node in stateful_calls(rhs):
            key = str(node)
            if key in out:
                continue
            st = EvalState(frame, True, {}, rhs)
            x = np.asarray(_num(evaluate(node.args[0], st), node), dtype=float)
            x = np.array(np.broadcast_to(x, (len(frame),)), dtype=float)
            if node.value == "scale":
                center = scale_arguments(node)[0]
                x = Moments.of(x, 0.0 if center is True or center is False else float(center))
            out[key] = x
    return out


def combine_arguments(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The partitions' :func:`collect_arguments` joined in order.

    Examples
    --------
    >>> combine_arguments([{"scale(x)": np.array([1.0])}, {"scale(x)": np.array([2.0, 3.0])}])
    {'scale(x)': array([1., 2., 3.])}
    """
    keys = list(dict.fromkeys(k for p in parts for k in p))
    out = {}
    for k in keys:
        pieces = [p[k] for p in parts if k in p]
        out[k] = (reduce(lambda a, b: a + b, pieces) if isinstance(pieces[0], Moments)
                  else np.concatenate(pieces))
    return out


def fit_parameters(rhss: list[str], values: dict[str, np.ndarray]) -> dict:
    """Call text → its parameters, computed on the whole argument column ``values[text]`` by the
    in-memory code (so with its numbers and its errors), for ``model_matrix(preset=…)``.

    Examples
    --------
    >>> fit_parameters(["scale(x)"], {"scale(x)": Moments.of(np.array([1.0, 2.0, 3.0]), 0.0)})
    {'scale(x)': (2.0, 1.0)}
    >>> fit_parameters(["poly(x, 2)"], {"poly(x, 2)": np.array([1.0, 2.0, 4.0])})["poly(x, 2)"][0]
    array([2.33333333, 2.80952381])
    """
    out: dict = {}
    for rhs in rhss:
        for node in stateful_calls(rhs):
            key = str(node)
            if key in out or key not in values:
                continue
            x = values[key]
            if isinstance(x, Moments):
                out[key] = _scale_parameters(node, x)
                continue
            st = EvalState(pd.DataFrame(index=pd.RangeIndex(len(x))), True, {}, rhs,
                           given={id(node.args[0]): x})
            evaluate(node, st)
            out[key] = st.params[id(node)]
    return out
