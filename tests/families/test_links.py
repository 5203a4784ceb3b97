"""Links (mixedppl/families/links.py): the PyTensor inverse equals its NumPy twin, and the NumPy
link inverts it."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from mixedppl.families.links import LINKS

_ETA = {"sqrt": np.linspace(0.1, 5, 50), "inverse": np.linspace(0.05, 3, 50),
        "log": np.linspace(-5, 5, 50), "identity": np.linspace(-5, 5, 50),
        "cloglog": np.linspace(-4, 2.5, 50), "loglog": np.linspace(-2.5, 4, 50)}


@pytest.mark.parametrize("name", list(LINKS))
def test_inverse_link_pytensor_equals_numpy_and_link_inverts_it(name):
    link = LINKS[name]
    eta = _ETA.get(name, np.linspace(-4, 4, 50))
    e = pt.dvector("eta")
    mu = pytensor.function([e], link.linkinv(e))(eta)
    np.testing.assert_allclose(mu, link.linkinv_np(eta), rtol=1e-12)
    np.testing.assert_allclose(link.link_np(mu), eta, rtol=1e-9, atol=1e-12)
    assert np.all((mu > 0) & (mu < 1)) if link.unit_interval else True


def test_new_links_are_rs():
    """R's ``poisson(link = "sqrt")$linkinv`` is η², ``Gamma(link = "inverse")$linkinv`` 1/η."""
    assert LINKS["sqrt"].linkinv_np(np.array([-2.0, 3.0])).tolist() == [4.0, 9.0]
    assert LINKS["inverse"].linkinv_np(np.array([0.5, 4.0])).tolist() == [2.0, 0.25]
