"""results/rprint.py against base R itself: format(), format.pval(), abbreviate() and
printCoefmat() on 300 / 200 / 3 / 80 random inputs drawn in R (reference/scripts/r_format.R)."""

import numpy as np
import pandas as pd
import pytest
from conftest import reference

from mixedppl.results.rprint import (abbreviate, cat_fill, format_pval, format_real,
                                     print_coefmat, strwrap)

REF = reference("r_format")


def test_format_equals_r():
    bad = [(c["x"], c["digits"], c["nsmall"], format_real(c["x"], c["digits"][0], c["nsmall"][0]),
            c["out"]) for c in REF["format"]
           if format_real(c["x"], c["digits"][0], c["nsmall"][0]) != c["out"]]
    assert not bad, bad[:3]


def test_format_pval_equals_r():
    bad = [(c["p"], c["digits"]) for c in REF["pval"]
           if format_pval(c["p"], c["digits"][0]) != c["out"]]
    assert not bad, bad[:3]


def test_abbreviate_equals_r():
    for c in REF["abbreviate"]:
        assert abbreviate(c["x"], c["minlength"][0]) == c["out"]


def test_print_coefmat_equals_r():
    for c in REF["coefmat"]:
        table = pd.DataFrame(np.array(c["m"]), columns=c["cols"], index=c["rows"])
        assert print_coefmat(table, c["digits"][0]).splitlines() == c["out"]


def test_title_wrapping_as_lme4():
    """lme4's .prt.methTit: strwrap to width − 2, then cat(fill = TRUE) at 80 columns."""
    title = "Generalized linear mixed model fit by maximum likelihood (Laplace Approximation)"
    lines = strwrap(title, 78, exdent=2)
    assert cat_fill(lines + [" [", "glmerMod", "]"]) == (
        "Generalized linear mixed model fit by maximum likelihood (Laplace\n"
        "  Approximation) [glmerMod]")


@pytest.mark.parametrize("x", [[np.nan, 1.5], [np.inf, -2.0]])
def test_non_finite_entries(x):
    out = format_real(x, 4)
    assert len({len(s) for s in out}) == 1 and ("NaN" in out[0] or "Inf" in out[0])
