"""Evaluate only the first outputs of a compiled NumPy-tier function.

The family graph of :mod:`mixedppl.graph.laplace_split` returns the per-row arrays (ℓ, ℓ′, h,
w, w′), μ and the φ-gradient of an adjoint-weighted sum of the arrays. The Laplace inner loop
needs ℓ, ℓ′, h only, and the outer function the arrays before it has the adjoints; PyTensor's
Python loop runs every node on every call (its ``output_subset`` is deprecated and needs the
lazy VM). :func:`first_outputs` runs the nodes the first ``n`` outputs depend on, in the
function's own order, on the function's own storage: the cumulative link family's graph for
wine's two-term CLMM has 141 nodes, its first three outputs need ~60 (the φ part's
``AdvancedIncSubtensor1`` scatter-adds and ``Split`` nodes are the costliest nodes there).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import zip_longest

import numpy as np
from pytensor.graph.traversal import ancestors
from pytensor.link.vm import Loop

__all__ = ["first_outputs"]


def first_outputs(fn, n: int) -> Callable[..., list]:
    """``fn(*inputs)[:n]``, computing only what those outputs need.

    ``fn`` is a function compiled by :func:`mixedppl.core.compile.compiled` on the NumPy tier
    (PyTensor's ``Loop`` VM, wrapped in ``_QuietVM``); inputs the first ``n`` outputs do not
    depend on may be left out at the end. Any other function is called whole and its result
    sliced. Like ``fn`` itself (with ``trust_input``), the returned callable does not check
    its inputs and is not thread-safe.

    Examples
    --------
    >>> import pytensor, pytensor.tensor as pt
    >>> from mixedppl.core.compile import numpy_tier_mode
    >>> x, a = pt.dvector("x"), pt.dvector("a")
    >>> fn = pytensor.function([x, a], [x ** 2, (a * x).sum()], mode=numpy_tier_mode())
    >>> first_outputs(fn, 1)([1.0, 3.0])[0].tolist()
    [1.0, 9.0]
    """
    vm = getattr(fn.vm, "_vm", fn.vm)
    if type(vm) is not Loop or vm.time_thunks:
        return lambda *args: fn(*args)[:n]
    fgraph = fn.maker.fgraph
    wanted = fgraph.outputs[:n]
    needed = {v.owner for v in ancestors(wanted) if v.owner is not None}
    steps = [(thunk, clear) for thunk, node, clear in
             zip_longest(vm.thunks, vm.nodes, vm.post_thunk_clear or (), fillvalue=())
             if node in needed]
    thunks = [thunk for thunk, _ in steps]
    clears = [clear for _, clear in steps]
    in_cells = [container.storage for container in fn.input_storage]
    out_cells = [container.storage for container in fn.output_storage[:n]]
    pre_call_clear = list(vm.pre_call_clear)

    def call(*args) -> list:
        for cell, value in zip(in_cells, args):
            cell[0] = value
        for cell in pre_call_clear:
            cell[0] = None
        with np.errstate(all="ignore"):             # as _QuietVM: log(0) → −inf, quietly
            for thunk, clear in zip(thunks, clears):
                thunk()
                for cell in clear:
                    cell[0] = None
        return [cell[0] for cell in out_cells]

    return call
