"""The cumulative link family's written-out η-derivatives (families/cumulative.py:
``CumulativeFamily.eta_derivatives``, used by the NumPy tier's family graph) against PyTensor's
derivatives of its log-density, for all five links, every category (the bottom and top ones
have one threshold), weights, and η from the centre out to the tails where a probability is
1e-12; and the density derivatives against central differences of the CDF in NumPy."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from mixedppl.core.compile import numpy_tier_mode
from mixedppl.families.cumulative import CUMULATIVE_LINKS, CumulativeFamily, _density_derivatives
from mixedppl.families.links import LINKS


@pytest.mark.parametrize("link_name", CUMULATIVE_LINKS)
def test_written_out_derivatives_equal_pytensors(link_name):
    fam, link = CumulativeFamily(4), LINKS[link_name]
    y, eta, n, phi = pt.dvector("y"), pt.dvector("eta"), pt.dvector("n"), pt.dvector("phi")
    ll = fam.loglik(y, eta, n, phi, link)
    d1 = pt.grad(ll.sum(), eta)
    d2 = pt.grad(d1.sum(), eta)
    d3 = pt.grad(d2.sum(), eta)
    f = pytensor.function([y, eta, n, phi], [*fam.eta_derivatives(y, eta, n, phi, link),
                                             ll, d1, d2, d3], mode=numpy_tier_mode())
    r = np.random.default_rng(len(link_name))
    phi_v = np.array([-0.7, np.log(0.9), np.log(1.3)])            # α = (-0.7, 0.2, 1.5)
    etas = np.concatenate([r.normal(0, 1.5, 40), np.linspace(-6, 6, 13)])
    ys = np.tile(np.arange(4.0), len(etas) // 4 + 1)[:len(etas)]
    ws = r.uniform(0.5, 2.0, len(etas))
    out = f(ys, etas, ws, phi_v)
    for k in range(4):
        want, got = out[4 + k], out[k]
        finite = np.isfinite(want)
        assert finite.mean() > 0.9
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-8,
                                   atol=1e-10 * np.abs(want[finite]).max(), err_msg=f"d{k}")


@pytest.mark.parametrize("link_name", CUMULATIVE_LINKS)
def test_density_derivatives_are_those_of_the_cdf(link_name):
    link = LINKS[link_name]
    x = np.linspace(-4, 4, 17)
    xv = pt.dvector("x")
    f = pytensor.function([xv], list(_density_derivatives(link_name, xv, link.linkinv(xv))),
                          mode=numpy_tier_mode())
    F = link.linkinv_np
    h = 1e-3
    fd = [(F(x + h) - F(x - h)) / (2 * h),
          (F(x + h) - 2 * F(x) + F(x - h)) / h ** 2,
          (F(x + 2 * h) - 2 * F(x + h) + 2 * F(x - h) - F(x - 2 * h)) / (2 * h ** 3)]
    for k, (got, want) in enumerate(zip(f(x), fd)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"f^({k})")
