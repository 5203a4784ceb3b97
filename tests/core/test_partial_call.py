"""first_outputs: the first outputs of a NumPy-tier function, from the nodes they need only."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from pytensor.link.vm import Stack, VMLinker

from mixedppl.core import compile as C
from mixedppl.core.partial_call import first_outputs


def _graph():
    x, a = pt.dvector("x"), pt.dvector("a")
    idx = pt.lvector("idx")
    ll = pt.log1p(pt.exp(x)) - x ** 2
    d1 = pytensor.grad(ll.sum(), x)
    # the "φ part": a scatter-add and a gradient through it, as in the family graphs
    phi = pt.dvector("phi")
    total = (a * (ll + phi[idx])).sum()
    return [x, idx, phi, a], [ll, d1, pytensor.grad(total, phi)]


@pytest.mark.parametrize("seed", range(4))
def test_equals_the_whole_call_and_runs_fewer_nodes(seed):
    rng = np.random.default_rng(seed)
    ins, outs = _graph()
    fn = pytensor.function(ins, outs, mode=C.numpy_tier_mode())
    n = int(rng.integers(3, 12))
    x, idx = rng.normal(size=n), rng.integers(0, 3, n)
    phi, a = rng.normal(size=3), rng.normal(size=n)
    whole = fn(x, idx, phi, a)
    for k in (1, 2):
        part = first_outputs(fn, k)(x, idx, phi, a)
        assert len(part) == k
        for got, want in zip(part, whole):
            np.testing.assert_array_equal(got, want)
    # the first two outputs do not depend on a: it may be left out, and stale storage from a
    # whole call with other inputs never leaks into the result
    fn(x[::-1].copy(), idx, phi, a)
    part = first_outputs(fn, 2)(x, idx, phi)
    np.testing.assert_array_equal(part[1], whole[1])
    # returned arrays are not overwritten by the next call
    first = first_outputs(fn, 1)
    r1 = first(x, idx, phi)[0].copy()
    held = first(x, idx, phi)[0]
    first(x + 1.0, idx, phi)
    np.testing.assert_array_equal(held, r1)


def test_runs_only_the_needed_thunks():
    ins, outs = _graph()
    fn = pytensor.function(ins, outs, mode=C.numpy_tier_mode())
    vm = fn.vm._vm
    ran = []
    vm.thunks = [(lambda th=th, i=i: (ran.append(i), th())[1]) for i, th in enumerate(vm.thunks)]
    call = first_outputs(fn, 1)
    call(np.zeros(3), np.zeros(3, dtype=np.int64), np.zeros(3))
    assert 0 < len(ran) < len(vm.thunks)


def test_other_vms_are_called_whole():
    x = pt.dvector("x")
    fn = pytensor.function([x], [x + 1.0, x * 2.0],
                           mode=Mode(linker=VMLinker(use_cloop=False, lazy=True),
                                     optimizer="fast_compile"))
    assert isinstance(fn.vm, Stack)
    out = first_outputs(fn, 1)(np.array([1.0, 2.0]))
    assert len(out) == 1 and out[0].tolist() == [2.0, 3.0]
