"""Whole-column transforms of a formula (``scale()``, ``poly()``, ``bs()``, ``ns()``) on data that
arrives in pieces (a Dask DataFrame's partitions).

Each such call has parameters computed from its argument over all the rows used: ``scale`` the
centre ``mean(x)`` and scale ``sqrt(Σ(x − c)² / (n − 1))``; ``poly`` R's recursion coefficients
``alpha`` and ``norm2`` (``attr(poly(x, d), "coefs")``); ``bs`` / ``ns`` the interior knots (type-7
quantiles of x) and the boundary knots ``range(x)``. Every partition hands back the argument's
values on its used rows (:func:`collect_arguments`; :func:`combine_arguments` joins them in
partition order); the client then runs the in-memory code itself on the joined column
(:func:`fit_parameters`), so the parameters, and the errors (a constant column, a degree too
large for the distinct values), are exactly the pandas path's; the designs are then built with
these parameters fixed (``model_matrix(preset=…)``) and applied per partition as fixed
transforms. The client holds one float64 column (8 bytes a row) per such call: an exact
quantile needs the sorted values, and this is the memory it takes.

References
----------
R Core Team, ``scale``, ``poly`` (package stats), ``bs``, ``ns`` (package splines).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.exceptions import ModelSpecError
from .contrasts import EvalState, _arg, _const, _num, evaluate
from .design import Node, _expand

__all__ = ["STATEFUL", "stateful_calls", "collect_arguments", "combine_arguments",
           "fit_parameters"]

STATEFUL = ("scale", "poly", "bs", "ns")


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
    """Call text → its argument's values on ``frame`` (rows already cleaned of missing values).

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 4.0]})
    >>> collect_arguments(frame, ["1 + scale(log(x))"])
    {'scale(log(x))': array([0.        , 0.69314718, 1.38629436])}
    """
    out: dict[str, np.ndarray] = {}
    for rhs in rhss:
        for node in stateful_calls(rhs):
            key = str(node)
            if key in out:
                continue
            st = EvalState(frame, True, {}, rhs)
            x = np.asarray(_num(evaluate(node.args[0], st), node), dtype=float)
            out[key] = np.array(np.broadcast_to(x, (len(frame),)), dtype=float)
    return out


def combine_arguments(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The partitions' :func:`collect_arguments` joined in order.

    Examples
    --------
    >>> combine_arguments([{"scale(x)": np.array([1.0])}, {"scale(x)": np.array([2.0, 3.0])}])
    {'scale(x)': array([1., 2., 3.])}
    """
    keys = list(dict.fromkeys(k for p in parts for k in p))
    return {k: np.concatenate([p[k] for p in parts if k in p]) for k in keys}


def fit_parameters(rhss: list[str], values: dict[str, np.ndarray]) -> dict:
    """Call text → its parameters, computed on the whole argument column ``values[text]`` by the
    in-memory code (so with its numbers and its errors), for ``model_matrix(preset=…)``.

    Examples
    --------
    >>> fit_parameters(["scale(x)"], {"scale(x)": np.array([1.0, 2.0, 3.0])})
    {'scale(x)': (2.0, 1.0)}
    """
    out: dict = {}
    for rhs in rhss:
        for node in stateful_calls(rhs):
            key = str(node)
            if key in out or key not in values:
                continue
            x = values[key]
            st = EvalState(pd.DataFrame(index=pd.RangeIndex(len(x))), True, {}, rhs,
                           given={id(node.args[0]): x})
            evaluate(node, st)
            out[key] = st.params[id(node)]
    return out
