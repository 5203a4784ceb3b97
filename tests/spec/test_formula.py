"""mixedppl's reading of a formula beside formulae's (bambi's parser) and R's (lme4 / stats).

mixedppl reads every random term ``(lhs | g)`` with formulae (``spec/formula.py``) and keeps R's
own rules where formulae reads a formula differently (``docs/design.md``, "mixedppl and
formulae"). The first tests check, for every formula of ``tests/reference/*.json`` and a list of
edge cases, that mixedppl's terms are formulae's where the two agree; each later test shows one
difference: what formulae gives, what R gives (the R call is in the docstring; the numbers are
R's), and that mixedppl gives R's.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from formulae import design_matrices, model_description
from formulae.terms import Intercept, Term

import mixedppl as mp
from mixedppl.spec.design import model_matrix, rhs_variables
from mixedppl.spec.formula import parse_formula, split_top_level
from mixedppl.spec.model_spec import build_spec, split_strata
from conftest import REF_DIR as REFERENCE


def _reference_formulas() -> list[str]:
    """Every string stored under a "formula" key in tests/reference/*.json."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "formula" and isinstance(value, str) and "~" in value:
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(REFERENCE.glob("*.json")):
        walk(json.loads(path.read_text()))
    return list(dict.fromkeys(found))


REFERENCE_FORMULAS = _reference_formulas()
#: formulae's scanner has no ``^`` (it spells the power ``**``): these are read differently below
NEEDS_CARET = [f for f in REFERENCE_FORMULAS if "^" in f]
EDGE_CASES = [
    "y ~ x + (1 + x | g)",
    "y ~ (x | g)",
    "y ~ 0 + x + (0 + x | g)",
    "y ~ -1 + x + (-1 + x | g)",
    "y ~ x * z + (x * z | g)",
    "y ~ a / b + (1 | a / b)",
    "y ~ (1 | a / b / c)",
    "y ~ x + (1 | a:b / c)",
    "y ~ x + (1 | a:b)",
    "y ~ (a + b) / c + (1 | g) + (1 | h)",
    "y ~ poly(x, 2) + log(z + 1) + (1 + poly(x, 2) | g)",
    "y ~ scale(x, scale = FALSE) + (scale(x, scale = FALSE) | g)",
    "y ~ factor(x) + (1 | factor(g))",
    "y ~ `odd name` + (`odd name` | g)",
    "cbind(s, n - s) ~ x + (1 | g)",
    "y ~ (a + b + c) ** 2 + ((a + b + c) ** 2 | g)",
]
#: formulae cannot read ``||`` (a parse error): lme4's expansion of it is a documented difference
#: (``test_double_bar``), so those formulas are not compared term by term
HAS_DOUBLE_BAR = [f for f in REFERENCE_FORMULAS if "||" in f]
AGREE = [f for f in REFERENCE_FORMULAS
         if f not in NEEDS_CARET and f not in HAS_DOUBLE_BAR] + EDGE_CASES


def _norm(text: str) -> str:
    return re.sub(r"[\s`]", "", text)


def _term(label: str) -> frozenset[str]:
    """A term label as the set of its variables (``x:z`` = ``z:x``), whitespace dropped."""
    return frozenset(_norm(v) for v in split_top_level(label, ":"))


def _formulae_term(term) -> frozenset[str]:
    return frozenset() if isinstance(term, Intercept) else \
        frozenset(_norm(str(c.name)) for c in term.components)


def _mixedppl_random(formula: str) -> set[tuple[frozenset, frozenset]]:
    """(columns' term, grouping variables) of every column of every random term."""
    out = set()
    for r in parse_formula(formula).random:
        for piece in split_top_level(r.lhs, "+"):
            if piece.strip() != "0":
                column = frozenset() if piece.strip() == "1" else _term(piece)
                out.add((column, frozenset(r.group_vars)))
    return out


def _formulae_random(formula: str) -> set[tuple[frozenset, frozenset]]:
    return {(_formulae_term(t.expr), _formulae_term(t.factor))
            for t in model_description(formula).group_terms}


def _synthetic(rhs: str, n: int = 12) -> pd.DataFrame:
    """Positive numbers in every column ``rhs`` names (term labels do not depend on the data)."""
    rng = np.random.default_rng(1)
    return pd.DataFrame({v: rng.uniform(1.0, 9.0, n) for v in rhs_variables(rhs)})


def _r_terms(rhs: str) -> tuple[bool, list[str]]:
    """R's intercept flag and term labels of a right-hand side, from mixedppl's R-exact expander."""
    design = model_matrix(rhs, _synthetic(rhs))
    return design.has_intercept, design.term_names


# -- where mixedppl and formulae agree ----------------------------------------------------------

def test_the_formula_lists_are_not_empty():
    assert len(REFERENCE_FORMULAS) >= 15 and NEEDS_CARET
    assert all("(" in f and "|" in f for f in NEEDS_CARET)


@pytest.mark.parametrize("formula", AGREE)
def test_random_terms_are_formulaes(formula):
    """Every column of every random term, and its grouping variables, as formulae reads them."""
    assert _mixedppl_random(formula) == _formulae_random(formula)


@pytest.mark.parametrize("formula", AGREE)
def test_fixed_terms_are_formulaes_up_to_order(formula):
    """The fixed part's terms and intercept: the same set (R orders and names them, see below);
    offset() and a Cox model's strata() are no design columns."""
    description = model_description(formula)
    theirs = {_formulae_term(t) for t in description.common_terms
              if isinstance(t, Term) and not _norm(t.name).startswith(("offset(", "strata("))}
    intercept, labels = _r_terms(split_strata(parse_formula(formula).fixed)[0])
    assert {_term(label) for label in labels} == theirs
    assert intercept == any(isinstance(t, Intercept) for t in description.common_terms)


@pytest.mark.parametrize("formula", AGREE)
def test_response_is_formulaes(formula):
    assert _norm(parse_formula(formula).response) == \
        _norm(model_description(formula).response.term.name)


def test_sum_contrasts_agree():
    """``contr.sum`` (R) and formulae's ``S()`` code a factor alike; only the names differ."""
    data = pd.DataFrame({"f": list("abcabc")})
    ours = model_matrix("f", data, contrasts={"f": "contr.sum"})
    theirs = design_matrices("S(f)", data).common
    assert ours.column_names == ["(Intercept)", "f1", "f2"]        # R: model.matrix(~f, ...)
    np.testing.assert_array_equal(ours.matrix, np.asarray(theirs))


def test_orthogonal_poly_agrees():
    """formulae's ``poly(x, 2)`` has R's numbers: R ``poly(1:5, 2)``."""
    data = pd.DataFrame({"x": [1.0, 2, 3, 4, 5]})
    r_poly = np.array([[-0.6324555320, 0.5345224838], [-0.3162277660, -0.2672612419],
                       [0.0, -0.5345224838], [0.3162277660, -0.2672612419],
                       [0.6324555320, 0.5345224838]])
    ours = model_matrix("0 + poly(x, 2)", data)
    theirs = np.asarray(design_matrices("0 + poly(x, 2)", data).common)
    np.testing.assert_allclose(ours.matrix, r_poly, atol=1e-9)
    np.testing.assert_allclose(theirs, r_poly, atol=1e-9)
    assert ours.column_names == ["poly(x, 2)1", "poly(x, 2)2"]    # R's names


# -- where they differ: formulae, R, mixedppl ----------------------------------------------------

def test_bar_is_one_correlated_block():
    """lme4: ``(Days | Subject)`` is one term with a 2 × 2 covariance, 3 θ (R's theta names
    ``Subject.(Intercept)``, ``Subject.Days.(Intercept)``, ``Subject.Days``); ``(1 | Subject) +
    (0 + Days | Subject)`` is two terms, 2 θ. formulae reads both alike: one term per column."""
    correlated, uncorrelated = ("Reaction ~ Days + (Days | Subject)",
                                "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)")
    assert _formulae_random(correlated) == _formulae_random(uncorrelated)
    assert [t.name for t in model_description(correlated).group_terms] == \
        ["1|Subject", "Days|Subject"]
    r_theta = {f: len(json.loads((REFERENCE / name).read_text())["theta"]["names"])
               for f, name in [(correlated, "lmm_sleepstudy_reml.json"),
                               (uncorrelated, "lmm_sleepstudy_uncorr.json")]}
    assert r_theta == {correlated: 3, uncorrelated: 2}
    sleep = mp.datasets.load("sleepstudy")
    for formula, n_theta in r_theta.items():
        spec = build_spec(formula, sleep)
        assert sum(t.n_theta for t in spec.terms) == n_theta
    assert [r.lhs for r in parse_formula(correlated).random] == ["1 + Days"]


def test_double_bar():
    """lme4's ``expandDoubleVerts``: ``(x * z || g)`` is ``(1 | g) + (0 + x | g) + (0 + z | g) +
    (0 + x:z | g)`` (R: ``lme4::expandDoubleVerts(y ~ (x * z || g))``); formulae has no ``||``."""
    with pytest.raises(Exception, match="parse '\\|'"):
        model_description("y ~ (x * z || g)")
    assert [(r.lhs, r.group) for r in parse_formula("y ~ (x * z || g)").random] == \
        [("1", "g"), ("0 + x", "g"), ("0 + z", "g"), ("0 + x:z", "g")]
    assert [r.lhs for r in parse_formula("Reaction ~ Days + (Days || Subject)").random] == \
        [r.lhs for r in parse_formula("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)")
         .random]


def test_nested_grouping_names():
    """``(1 | batch/cask)``: lme4 names the inner factor ``cask:batch`` (``expandSlash``; R's
    VarCorr groups in lmm_pastes.json); formulae names it ``batch:cask``."""
    formula = "strength ~ 1 + (1 | batch/cask)"
    assert [t.factor.name for t in model_description(formula).group_terms] == \
        ["batch", "batch:cask"]
    r_groups = json.loads((REFERENCE / "lmm_pastes.json").read_text())["ngrps"]
    ours = [r.group for r in parse_formula(formula).random]
    assert set(ours) == set(r_groups) == {"batch", "cask:batch"}
    assert [r.group for r in parse_formula("y ~ (1 | a/b/c)").random] == ["a", "b:a", "c:b:a"]


def test_term_order_by_degree():
    """R's ``terms()`` sorts terms by degree: ``attr(terms(~ x*z*w), "term.labels")`` is
    ``x z w x:z x:w z:w x:z:w``; formulae keeps the order it expands them in."""
    r_labels = ["x", "z", "w", "x:z", "x:w", "z:w", "x:z:w"]
    theirs = [t.name for t in model_description("y ~ x*z*w").common_terms if isinstance(t, Term)]
    assert theirs == ["x", "z", "x:z", "w", "x:w", "z:w", "x:z:w"]
    assert _r_terms("x*z*w")[1] == r_labels
    assert parse_formula("y ~ (x*z*w | g)").random[0].lhs == "1 + " + " + ".join(r_labels)
    # R: attr(terms(~ a:b + c), "term.labels") is "c" "a:b"
    assert [t.name for t in model_description("y ~ a:b + c").common_terms
            if isinstance(t, Term)] == ["a:b", "c"]
    assert _r_terms("a:b + c")[1] == ["c", "a:b"]


def test_interaction_labels():
    """R: a term is a set of variables, labelled in their order of first appearance:
    ``attr(terms(~ x:z + z:x), "term.labels")`` is ``x:z`` and ``~ x + z:x`` gives ``x x:z``;
    formulae keeps ``x:z`` and ``z:x`` apart and labels ``z:x`` as written."""
    assert [t.name for t in model_description("y ~ x:z + z:x").common_terms
            if isinstance(t, Term)] == ["x:z", "z:x"]
    assert _r_terms("x:z + z:x")[1] == ["x:z"]
    assert [t.name for t in model_description("y ~ x + z:x").common_terms
            if isinstance(t, Term)] == ["x", "z:x"]
    assert _r_terms("x + z:x")[1] == ["x", "x:z"]
    assert parse_formula("y ~ (x + z:x | g)").random[0].lhs == "1 + x + x:z"
    assert parse_formula("y ~ (x:z + z:x | g)").random[0].lhs == "1 + x:z"


@pytest.mark.parametrize("lhs, r_intercept", [
    ("x - 1", False), ("x + 0", False), ("x + 1", True), ("1 + 0 + x", False),
    ("0 + x + 1", True)])
def test_intercept_rule(lhs, r_intercept):
    """R: the last ``0`` / ``1`` / ``-1`` decides (``attr(terms(~ 1 + 0 + x), "intercept")`` is 0);
    formulae reads the intercept only where it is written first, and raises on ``x - 1``."""
    try:
        terms = model_description(f"y ~ ({lhs} | g)").group_terms
        formulae_intercept = any(isinstance(t.expr, Intercept) for t in terms)
        assert formulae_intercept != r_intercept
    except TypeError:
        assert lhs in ("x - 1", "x + 0", "x + 1")
    assert _r_terms(lhs)[0] == r_intercept
    [term] = parse_formula(f"y ~ ({lhs} | g)").random
    assert term.lhs == ("1 + x" if r_intercept else "0 + x")


def test_caret_is_rs_power():
    """R writes ``^``: ``(a+b+c)^2`` is every term up to degree 2 and ``I(x^2)`` is the square;
    formulae's scanner has no ``^`` (it spells the operator ``**``)."""
    with pytest.raises(Exception, match="Unexpected character: \\^"):
        model_description("y ~ (a + b + c)^2")
    r_labels = ["a", "b", "c", "a:b", "a:c", "b:c"]   # attr(terms(~ (a+b+c)^2), "term.labels")
    assert _r_terms("(a + b + c)^2")[1] == r_labels
    assert parse_formula("y ~ ((a + b + c)^2 | g)").random[0].lhs == "1 + " + " + ".join(r_labels)
    for formula in NEEDS_CARET:                        # the reference formulas with I(x^2)
        with pytest.raises(Exception, match="\\^"):
            model_description(formula)
        assert parse_formula(formula).random
    data = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    assert model_matrix("I(x^2)", data).column_names == ["(Intercept)", "I(x^2)"]
    np.testing.assert_array_equal(model_matrix("0 + I(x^2)", data).matrix[:, 0], [1, 4, 9])


def test_in_operator():
    """R: ``a %in% b`` is the term with a and b (``a`` within ``b``); formulae's parser stops
    at ``%`` and returns ``a`` alone, without an error. mixedppl keeps both, or refuses."""
    assert [t.name for t in model_description("y ~ a %in% b").common_terms
            if isinstance(t, Term)] == ["a"]
    assert [_term(label) for label in _r_terms("a %in% b")[1]] == [frozenset({"a", "b"})]
    with pytest.raises(mp.ModelSpecError, match="not supported inside the random term"):
        parse_formula("y ~ (a %in% b | g)")


def test_grouping_factor_is_not_distributed():
    """formulae distributes ``(1 | g + h)`` into ``(1 | g) + (1 | h)``; lme4 does not (it
    evaluates ``g + h`` as one grouping expression); mixedppl refuses it."""
    assert [t.name for t in model_description("y ~ (1 | g + h)").group_terms] == ["1|g", "1|h"]
    with pytest.raises(mp.ModelSpecError, match="cannot read the grouping factor"):
        parse_formula("y ~ (1 | g + h)")


def test_offset_is_not_a_term():
    """R: ``offset(log(e))`` is no term (``attr(terms(~ x + offset(log(e))), "term.labels")`` is
    ``x``; its column is ``model.offset``); formulae lists it among the common terms."""
    assert [t.name for t in model_description("y ~ x + offset(log(e))").common_terms
            if isinstance(t, Term)] == ["x", "offset(log(e))"]
    data = pd.DataFrame({"x": [1.0, 2.0, 3.0], "e": [1.0, np.e, np.e ** 2]})
    design = model_matrix("x + offset(log(e))", data)
    assert design.term_names == ["x"]
    np.testing.assert_allclose(design.offset, [0.0, 1.0, 2.0])


def test_scale_divides_by_n_minus_1():
    """R: ``scale(1:4)`` is (x − mean)/sd with sd on n − 1: ±1.1618950, ±0.3872983; formulae's
    ``scale`` divides by the standard deviation on n."""
    data = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    r_scale = [-1.1618950039, -0.3872983346, 0.3872983346, 1.1618950039]
    np.testing.assert_allclose(model_matrix("0 + scale(x)", data).matrix[:, 0], r_scale,
                               atol=1e-9)
    theirs = np.asarray(design_matrices("0 + scale(x)", data).common)[:, 0]
    np.testing.assert_allclose(theirs, (data.x - 2.5) / np.std(data.x))
    assert not np.allclose(theirs, r_scale)


def test_ordered_factor_gets_contr_poly():
    """R codes an ordered factor with ``contr.poly``: ``model.matrix(~ f)`` has ``f.L`` =
    (−0.7071068, 0, 0.7071068) and ``f.Q`` = (0.4082483, −0.8164966, 0.4082483); formulae
    codes it with treatment dummies."""
    f = pd.Categorical(["lo", "mid", "hi"], categories=["lo", "mid", "hi"], ordered=True)
    data = pd.DataFrame({"f": f})
    ours = model_matrix("f", data)
    assert ours.column_names == ["(Intercept)", "f.L", "f.Q"]
    np.testing.assert_allclose(ours.matrix[:, 1:], [[-0.7071067812, 0.4082482905],
                                                    [0.0, -0.8164965809],
                                                    [0.7071067812, 0.4082482905]], atol=1e-9)
    theirs = design_matrices("f", data).common
    assert theirs.terms["f"].labels == ["f[mid]", "f[hi]"]
    np.testing.assert_array_equal(np.asarray(theirs)[:, 1:], [[0, 0], [1, 0], [0, 1]])


def test_a_number_is_no_term():
    """R: ``y ~ 2`` is an error (invalid model formula); formulae reads ``2`` as a term."""
    assert [t.name for t in model_description("y ~ 2").common_terms
            if isinstance(t, Term)] == ["2"]
    with pytest.raises(mp.ModelSpecError, match="invalid term"):
        model_matrix("2", pd.DataFrame({"x": [1.0, 2.0]}))
    with pytest.raises(mp.ModelSpecError, match="invalid term"):
        parse_formula("y ~ (2 | g)")
