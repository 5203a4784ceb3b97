"""GLMM case-deletion influence (mixedppl.diagnostics.influence.glmm_influence_frame): each
deleted case's warm-started refit equals a fresh glmer fit of the data without it, and the
measures follow from (β̂, V, β̂₍ᵢ₎, V₍ᵢ₎) by their definitions."""

import numpy as np
import pytest

import mixedppl as mp

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def test_cbpp_herd_deletion_matches_fresh_fits():
    cbpp = mp.datasets.load("cbpp")
    g = mp.glmer(CBPP, cbpp)
    infl = g.influence("herd")
    assert list(infl.columns) == ["cooks_d", "mdffits", "covtrace", "covratio",
                                  "rvc_herd.var((Intercept))"]
    V = g.vcov_beta
    p = g.spec.p
    for herd in ("11", "3"):
        fresh = mp.glmer(CBPP, cbpp[cbpp["herd"].astype(str) != herd])
        d = g.beta - fresh.beta
        row = infl.loc[herd]
        assert row["cooks_d"] == pytest.approx(d @ np.linalg.solve(V, d) / p, rel=2e-3)
        assert row["mdffits"] == pytest.approx(d @ np.linalg.solve(fresh.vcov_beta, d) / p,
                                               rel=2e-3)
        assert row["covratio"] == pytest.approx(
            np.linalg.det(fresh.vcov_beta) / np.linalg.det(V), rel=2e-3)
        assert row["rvc_herd.var((Intercept))"] == pytest.approx(
            fresh.theta[0] ** 2 / g.theta[0] ** 2 - 1, rel=2e-3, abs=1e-6)
