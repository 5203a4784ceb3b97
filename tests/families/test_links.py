"""Links (mixedppl/families/links.py): the PyTensor inverse equals its NumPy twin, and the NumPy
link inverts it."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy.special import expit

from mixedppl.core import compile as C
from mixedppl.families.glm import FAMILIES
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


def test_logit_log_forms_are_exact_where_log_of_the_inverse_is_not():
    """log σ(η) = −log(1 + e^−η) and log(1 − σ(η)) = −log(1 + e^η) (NumPy's ``logaddexp``);
    log(1 − expit(η)) has lost 5 digits by η = 17."""
    link = LINKS["logit"]
    eta = np.linspace(-700, 700, 141)
    e = pt.dvector("eta")
    log_mu, log1m_mu = pytensor.function([e], [link.log_linkinv(e), link.log1m_linkinv(e)])(eta)
    np.testing.assert_allclose(log_mu, -np.logaddexp(0.0, -eta), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(log1m_mu, -np.logaddexp(0.0, eta), rtol=1e-14, atol=1e-300)
    assert [n for n, link in LINKS.items() if link.log_linkinv] == ["logit"]


def test_binomial_logit_eta_derivatives_are_the_closed_forms_out_to_eta_700():
    """On the NumPy tier (the first fit of every structure) dℓ/dη of the binomial through μ = σ(η)
    was (n − y)/(1 − μ)·μ(1 − μ) = 0/0 = NaN once μ rounds to 1 (η > 37: the fixed effects of a
    separated fit go there); written in η (``Link.log_linkinv``) the derivatives are
    y − nσ(η), −nσ(1 − σ), −nσ(1 − σ)(1 − 2σ) everywhere."""
    family, link = FAMILIES["binomial"], LINKS["logit"]
    rng = np.random.default_rng(2)
    eta = np.concatenate([np.linspace(-700, 700, 141), rng.uniform(-60, 60, 60)])
    n = rng.integers(1, 9, eta.size).astype(float)
    y = np.floor(rng.uniform(0, n + 1))
    yv, ev, nv, phi = pt.dvector("y"), pt.dvector("eta"), pt.dvector("n"), pt.dvector("phi")
    d1 = pt.grad(family.loglik(yv, ev, nv, phi, link).sum(), ev)
    d2 = pt.grad(d1.sum(), ev)
    d3 = pt.grad(d2.sum(), ev)
    got = pytensor.function([yv, ev, nv, phi], [d1, d2, d3], mode=C._mode("fast_run", "numpy"),
                            on_unused_input="ignore")(y, eta, n, np.array([]))
    p, q = expit(eta), expit(-eta)
    want = [y - n * p, -n * p * q, -n * p * q * (q - p)]
    for g, w in zip(got, want):
        assert np.isfinite(g).all()
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12 * n.max())
