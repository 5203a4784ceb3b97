"""R's splines::bs / ns in formulas (spec/splines.py), against R (reference/splines.json, written
by reference/scripts/splines.R) and against an independent Cox–de Boor recursion."""

import numpy as np
import pandas as pd
import pytest
from conftest import reference

import mixedppl as mp
from mixedppl.core.exceptions import ModelSpecError
from mixedppl.spec.splines import bs_basis, ns_basis

REF = reference("splines")

CASES = {
    "bs(x)": ("bs", {}),
    "bs(x, df = 5)": ("bs", {"df": 5}),
    "bs(x, df = 6, degree = 2)": ("bs", {"df": 6, "degree": 2}),
    "bs(x, knots = c(2, 5))": ("bs", {"knots": (2, 5)}),
    "bs(x, df = 4, intercept = TRUE)": ("bs", {"df": 4, "intercept": True}),
    "bs(x, degree = 1, knots = 3)": ("bs", {"degree": 1, "knots": 3}),
    "ns(x)": ("ns", {}),
    "ns(x, df = 4)": ("ns", {"df": 4}),
    "ns(x, knots = c(1, 4, 8))": ("ns", {"knots": (1, 4, 8)}),
    "ns(x, df = 3, intercept = TRUE)": ("ns", {"df": 3, "intercept": True}),
    "ns(x, df = 3, Boundary.knots = c(0.5, 10))": ("ns", {"df": 3, "boundary": (0.5, 10)}),
}


@pytest.mark.parametrize("case", REF["cases"], ids=[c["call"] for c in REF["cases"]])
def test_basis_equals_r(case):
    kind, kwargs = CASES[case["call"]]
    fn = bs_basis if kind == "bs" else ns_basis
    basis, spec = fn(np.array(REF["x"]), **kwargs)
    np.testing.assert_allclose(basis, np.array(case["basis"]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(spec.knots, case["knots"], rtol=1e-14)
    np.testing.assert_allclose(spec.boundary, case["boundary"], rtol=1e-14)
    # new x inside and outside the boundary knots (R's predict.bs / predict.ns)
    np.testing.assert_allclose(spec(np.array(REF["newx"])), np.array(case["predict"]),
                               rtol=0, atol=1e-12)


def _de_boor(t: np.ndarray, x: np.ndarray, order: int) -> np.ndarray:
    """Cox–de Boor recursion, written out (independent of scipy); right end closed."""
    n = len(t) - order
    B = np.zeros((len(x), len(t) - 1))
    for i in range(len(t) - 1):
        B[:, i] = (t[i] <= x) & (x < t[i + 1])
    last = np.max(np.nonzero(t[:-1] < t[1:])[0])
    B[x == t[-1], last] = 1.0
    for k in range(2, order + 1):
        new = np.zeros((len(x), len(t) - k))
        for i in range(len(t) - k):
            left = (x - t[i]) / (t[i + k - 1] - t[i]) if t[i + k - 1] > t[i] else 0.0
            right = (t[i + k] - x) / (t[i + k] - t[i + 1]) if t[i + k] > t[i + 1] else 0.0
            new[:, i] = left * B[:, i] + right * B[:, i + 1]
        B = new
    return B[:, :n]


@pytest.mark.parametrize("seed", range(8))
def test_random_bs_against_de_boor_and_ns_constraints(seed):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.gamma(2.0, 3.0, size=int(rng.integers(15, 60))))
    degree = int(rng.integers(1, 4))
    df = degree + int(rng.integers(1, 5))
    basis, spec = bs_basis(x, df=df, degree=degree, intercept=True)
    t = np.r_[[spec.boundary[0]] * (degree + 1), spec.knots, [spec.boundary[1]] * (degree + 1)]
    np.testing.assert_allclose(basis, _de_boor(t, x, degree + 1), atol=1e-12)
    np.testing.assert_allclose(basis.sum(axis=1), 1.0, atol=1e-12)  # partition of unity
    N, nspec = ns_basis(x, df=df)
    assert N.shape == (len(x), df)
    lo, hi = nspec.boundary
    h = 1e-4 * (hi - lo)

    def second_difference(at):
        return (nspec(np.array([at - h])) - 2 * nspec(np.array([at])) +
                nspec(np.array([at + h]))) / h ** 2

    typical = np.abs(second_difference(lo + 0.3 * (hi - lo))).max()
    for edge, sign in ((lo, 1.0), (hi, -1.0)):
        # natural: f''(edge) = 0, so the linear continuation is C² there and a centred second
        # difference across the boundary knot is O(h) instead of f''(edge) / 2
        assert np.abs(second_difference(edge)).max() < 1e-2 * typical
        # linear beyond the boundary
        out = edge - sign * np.array([1.0, 2.0, 3.0])
        vals = nspec(out)
        np.testing.assert_allclose(vals[2] - vals[1], vals[1] - vals[0], atol=1e-10)


@pytest.mark.parametrize("key, formula", [
    ("lmer_ns", "Reaction ~ ns(Days, df = 3) + (1 | Subject)"),
    ("lmer_bs", "Reaction ~ bs(Days, df = 4) + (1 | Subject)"),
])
def test_lmer_with_splines_equals_lme4(key, formula):
    ref = REF[key]
    fit = mp.lmer(formula, mp.datasets.load("sleepstudy"))
    assert list(fit.fe_params.index) == list(ref["fixef"])
    expected = np.array(list(ref["fixef"].values()))
    assert np.all(np.abs(fit.fe_params.to_numpy() - expected)
                  <= np.maximum(1e-4 * np.abs(expected), 1e-4))
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    new = pd.DataFrame({"Days": [0.5, 9.5], "Subject": ["308", "308"]})
    np.testing.assert_allclose(fit.predict(new), ref["predict_new"], rtol=1e-6)


def test_splines_in_glmer_and_interactions():
    cbpp = mp.datasets.load("cbpp").assign(t=lambda d: d["period"].astype(int) + 0.0)
    fit = mp.glmer("cbind(incidence, size - incidence) ~ ns(t, df = 2) + (1 | herd)", cbpp,
                   family="binomial")
    assert list(fit.fe_params.index) == ["(Intercept)", "ns(t, df = 2)1", "ns(t, df = 2)2"]
    sleep = mp.datasets.load("sleepstudy").assign(
        grp=lambda d: np.where(d["Subject"].astype(int) % 2 == 0, "a", "b"))
    fit = mp.lmer("Reaction ~ bs(Days, df = 3) * grp + (1 | Subject)", sleep)
    assert "bs(Days, df = 3)2:grpb" in fit.fe_params.index


@pytest.mark.parametrize("formula, match", [
    ("Reaction ~ ns(Days, dof = 3) + (1 | Subject)", "has no argument 'dof'"),
    ("Reaction ~ bs(Days, df = 2) + (1 | Subject)", "df = 2 is too small for degree 3"),
    ("Reaction ~ ns(Days, df = 0) + (1 | Subject)", "df = 0 is too small"),
    ("Reaction ~ bs(Days, degree = 0) + (1 | Subject)", "degree must be at least 1"),
    ("Reaction ~ ns(Days, df = k) + (1 | Subject)", "column 'k'"),
    ("Reaction ~ ns(Days, df = Days) + (1 | Subject)", "must be a constant"),
])
def test_bad_spline_arguments_are_named(formula, match):
    with pytest.raises(ModelSpecError, match=match):
        mp.lmer(formula, mp.datasets.load("sleepstudy"))
