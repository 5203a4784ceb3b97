"""The profiled deviance at R's θ equals R's REML criterion / ML deviance (no optimiser involved)."""

import numpy as np
import pytest

import mixedppl as mp
from conftest import reference
from lmm_cases import CASES


@pytest.mark.parametrize("case", list(CASES))
def test_deviance_at_R_theta(case):
    if case == "lmm_instevel":
        pytest.importorskip("scipy")
    data, reml = CASES[case]
    ref = reference(case)
    model = mp.Model(ref["formula"], mp.datasets.load(data))
    assert model.spec.theta_names() == ref["theta"]["names"]
    assert model.spec.fe_names == ref["fixef"]["names"]
    objective = model.objective(reml=reml)
    dev, grad = objective(np.array(ref["theta"]["values"]))
    target = ref["REMLcrit"] if reml else -2 * ref["logLik"]
    assert abs(dev / target - 1) < 1e-8
    assert np.all(np.isfinite(grad))


def test_gradient_matches_finite_differences():
    ref = reference("lmm_sleepstudy_reml")
    objective = mp.Model(ref["formula"], mp.datasets.load("sleepstudy")).objective()
    theta = np.array([0.8, 0.1, 0.3])
    _, grad = objective(theta)
    h = 1e-6
    fd = [(objective.deviance(theta + h * e) - objective.deviance(theta - h * e)) / (2 * h)
          for e in np.eye(3)]
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6)
