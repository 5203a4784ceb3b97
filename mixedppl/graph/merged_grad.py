"""Symbolic gradients of a cost whose repeated subexpressions are merged first.

``pytensor.grad`` differentiates the graph as written: an expression that appears twice (as
the derivatives of a family's log-density do: each ``pt.grad`` of a sigmoid writes the sigmoid
again) is differentiated twice, and the next derivative of that result doubles it again. The
Laplace graphs take derivatives of the log-density in η up to the fourth order (the observed
weights inside log|L|², then the implicit-function gradient), so their raw graphs were mostly
copies: the two-term CLMM's outer function had 1,002 nodes before PyTensor's rewrites and 450
after. :func:`grad` runs PyTensor's ``MergeOptimizer`` on the cost (identical nodes on identical
inputs become one, in place, without cloning the inputs) before differentiating: 666 raw nodes,
about a fifth less graph building and rewriting, the same compiled graph up to rounding
(docs/compile.md).
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.rewriting.basic import MergeOptimizer

__all__ = ["merge_duplicates", "grad"]


def merge_duplicates(*variables):
    """The variables with every repeated subexpression of their graph computed once.

    Merging replaces, in place, a node's inputs by an identical node computed on the same
    inputs, so the values are unchanged; the graph's inputs stay the same objects.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> x = pt.dvector("x")
    >>> y = pt.exp(x).sum() + pt.exp(x).sum()
    >>> from pytensor.graph.traversal import applys_between
    >>> len(list(applys_between([x], [y]))), len(list(applys_between([x], merge_duplicates(y))))
    (5, 3)
    """
    fgraph = FunctionGraph(outputs=list(variables), clone=False)
    MergeOptimizer().rewrite(fgraph)
    return list(fgraph.outputs)


def grad(cost, wrt, **kwargs):
    """``pytensor.grad(cost, wrt, **kwargs)`` of ``cost`` with its duplicates merged
    (:func:`merge_duplicates`).

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> x = pt.dvector("x")
    >>> s = pt.sigmoid(x)
    >>> g = grad((s * s).sum() + s.sum(), x)
    >>> f = pytensor.function([x], g)
    >>> v = 1 / (1 + np.exp(-np.array([0.3])))
    >>> bool(np.allclose(f([0.3]), (2 * v + 1) * v * (1 - v)))
    True
    """
    (cost,) = merge_duplicates(cost)
    return pt.grad(cost, wrt, **kwargs)
