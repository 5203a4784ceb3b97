"""Gradients of a cost with its duplicates merged (mixedppl/graph/merged_grad.py): the same
numbers as ``pytensor.grad`` of the cost as written, on a smaller graph, with the graph's
inputs untouched."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.traversal import applys_between

from mixedppl.families import get_family
from mixedppl.graph.merged_grad import grad, merge_duplicates


def _cumulative_loglik():
    """Third-order derivative of the cumulative logit log-density in η (as the Laplace outer
    graph takes it), plain and merged."""
    fam, link = get_family("cumulative", "logit")
    y, eta, phi = pt.dvector("y"), pt.dvector("eta"), pt.dvector("phi")
    ll = fam.loglik(y, eta, pt.ones_like(eta), phi, link)
    plain = [ll]
    merged = [ll]
    for _ in range(3):
        plain.append(pt.grad(plain[-1].sum(), eta))
        merged.append(grad(merged[-1].sum(), eta))
    return [y, eta, phi], plain, merged


@pytest.mark.parametrize("seed", range(3))
def test_merged_derivatives_equal_pytensor_grad(seed):
    inputs, plain, merged = _cumulative_loglik()
    r = np.random.default_rng(seed)
    K = int(r.integers(3, 7))
    y = np.arange(40) % K
    eta = r.normal(0, 1.5, 40)
    phi = np.concatenate([[-1.0], np.log(r.uniform(0.3, 1.5, K - 2))])
    f_plain = pytensor.function(inputs, plain)
    f_merged = pytensor.function(inputs, merged)
    for a, b in zip(f_merged(y, eta, phi), f_plain(y, eta, phi)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # third derivative against a central difference of the second
    h = 1e-5
    d2 = pytensor.function(inputs, merged[2])
    fd = (d2(y, eta + h, phi) - d2(y, eta - h, phi)) / (2 * h)
    np.testing.assert_allclose(f_merged(y, eta, phi)[3], fd, rtol=1e-5, atol=1e-6)


def test_merged_graph_is_smaller_and_keeps_its_inputs():
    inputs, plain, merged = _cumulative_loglik()
    n_plain = len(list(applys_between(inputs, plain[-1:])))
    n_merged = len(list(applys_between(inputs, merged[-1:])))
    assert n_merged < 0.8 * n_plain
    x = pt.dvector("x")
    (out,) = merge_duplicates(pt.exp(x).sum() + pt.exp(x).sum())
    f = pytensor.function([x], out)      # x is still the graph's input
    assert f([0.0, 1.0]) == pytest.approx(2 * (1 + np.e))
