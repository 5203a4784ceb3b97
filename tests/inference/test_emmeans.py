"""inference/emmeans.py against independent computations (R parity: tests/parity/test_emmeans.py)."""

import numpy as np
import pandas as pd
import pytest

import mixedppl as mp
from mixedppl.inference.emmeans import cell_means, marginal_means, reference_grid


def _balanced(seed):
    rng = np.random.default_rng(seed)
    a, b, g = ["a1", "a2", "a3"], ["b1", "b2"], [f"g{i}" for i in range(8)]
    rows = [(x, y, h) for h in g for x in a for y in b for _ in range(2)]
    d = pd.DataFrame(rows, columns=["A", "B", "g"])
    u = dict(zip(g, rng.normal(0, 1.0, len(g))))
    d["y"] = (d["A"].map({"a1": 0, "a2": 1, "a3": 3}) + d["B"].map({"b1": 0, "b2": -1})
              + d["g"].map(u) + rng.normal(0, 1, len(d)))
    d["x"] = rng.normal(size=len(d))
    return d


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_balanced_emmeans_are_means_of_the_cells_fitted_values(seed):
    d = _balanced(seed)
    fit = mp.lmer("y ~ A * B + (1 | g)", d)
    fixed = fit.predict(include_random=False).to_numpy()
    cells = pd.Series(fixed).groupby([d["A"], d["B"]]).mean()
    ours = fit.emmeans(["A", "B"])
    np.testing.assert_allclose(ours["emmean"], [cells[(a, b)] for a, b in
                                                zip(ours["A"], ours["B"])], atol=1e-8)
    assert ours["A"].tolist()[:3] == ["a1", "a2", "a3"]        # first variable fastest
    by_a = fit.emmeans("A")
    np.testing.assert_allclose(by_a["emmean"], cells.groupby(level=0).mean()[by_a["A"]],
                               atol=1e-8)


def test_se_is_the_quadratic_form_of_the_averaged_rows():
    d = _balanced(4)
    fit = mp.lmer("y ~ A + B + x + (1 | g)", d)
    out = fit.emmeans("A", ddf="Satterthwaite")
    rg = reference_grid(fit.spec)
    assert rg.grid["x"].unique().tolist() == [pytest.approx(d["x"].mean())]
    L = cell_means(rg, "A").L
    np.testing.assert_allclose(out["SE"], np.sqrt(np.diag(L @ fit.vcov_beta @ L.T)), rtol=1e-10)
    np.testing.assert_allclose(out["emmean"], L @ fit.beta, rtol=1e-10)
    np.testing.assert_allclose(out["df"], mp.inference.satterthwaite.satterthwaite_df(
        fit.record, L), rtol=1e-10)


def test_at_and_by_order():
    d = _balanced(5)
    fit = mp.lmer("y ~ A * x + (1 | g)", d)
    out = fit.emmeans("x", by="A", at={"x": [-1.0, 0.0, 2.0]}, ddf="asymptotic")
    assert out["A"].tolist() == ["a1"] * 3 + ["a2"] * 3 + ["a3"] * 3
    assert out["x"].tolist() == [-1.0, 0.0, 2.0] * 3
    assert np.isinf(out["df"]).all()
    b = fit.fe_params
    np.testing.assert_allclose(out["emmean"].iloc[2], b["(Intercept)"] + 2 * b["x"], rtol=1e-10)


def test_glmm_response_scale_is_the_delta_method():
    g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 mp.datasets.load("cbpp"))
    link, resp = g.emmeans("period"), g.emmeans("period", type="response")
    p = 1 / (1 + np.exp(-link["emmean"]))
    np.testing.assert_allclose(resp["response"], p, rtol=1e-10)
    np.testing.assert_allclose(resp["SE"], p * (1 - p) * link["SE"], rtol=1e-6)
    np.testing.assert_allclose(resp["lower_CL"], 1 / (1 + np.exp(-link["lower_CL"])), rtol=1e-10)


def test_errors():
    fit = mp.lmer("Reaction ~ Days + (1 | Subject)", mp.datasets.load("sleepstudy"))
    with pytest.raises(mp.ModelSpecError, match="not variables"):
        fit.emmeans("Subject")
    with pytest.raises(ValueError, match="type='response'"):
        fit.emmeans("Days", type="response")
    with pytest.raises(ValueError, match="ddf"):
        marginal_means(fit.record, "Days", ddf="residual")
