"""Parse lme4 formulas: split the response, the fixed-effects part and the random-effect terms.

The formula is split at its top-level ``~``, ``+`` and ``-`` here; each random term ``(lhs | g)``
is read by `formulae <https://github.com/bambinos/formulae>`_ (bambi's formula parser, which reads
lme4's bar terms), and lme4's own rules are applied to what formulae read (as lme4's
``findbars`` / ``expandDoubleVerts`` / ``expandSlash`` do). The fixed part keeps its text and goes
to :mod:`mixedppl.spec.design`, which expands it as R's ``terms()`` does (term order, labels and
contrasts decide R's column names, and formulae's differ; see ``docs/design.md``).

- ``(expr | g)``: one random term (one correlated block) with the columns of ``expr``
  (intercept unless ``0 +`` or ``- 1``); ``expr``'s terms ordered by degree as R's ``terms()``.
- ``(expr || g)``: uncorrelated: one term per term of ``expr`` (``(1 + x || g)`` becomes
  ``(1 | g) + (0 + x | g)``, ``(x * z || g)`` four terms).
- ``(expr | a/b)``: nested: ``(expr | a) + (expr | b:a)``; ``a:b`` is the interaction factor.
- ``us(expr | g)``, ``diag(...)``, ``cs(...)``, ``ar1(times + 0 | g)``, ``toep(times + 0 | g)``:
  glmmTMB's covariance structures of one term (``us`` is ``(expr | g)``; see
  :mod:`mixedppl.spec.covstruct`).

References
----------
Bates, Mächler, Bolker & Walker (2015), Fitting linear mixed-effects models using lme4,
J. Stat. Softw. 67(1), section 2.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import formulae
from formulae.terms import GroupSpecificTerm, Term

from ..core.exceptions import ModelSpecError
from .covstruct import GLMMTMB_UNSUPPORTED, STRUCTURES

__all__ = ["ParsedFormula", "RandomTermSpec", "check_syntax", "parse_formula", "split_top_level",
           "update_formula"]

_TOKEN = re.compile(r"""\s*(?:(?P<string>"[^"]*"|'[^']*'|`[^`]*`)"""
                    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[Li]?)"
                    r"|(?P<name>[A-Za-z_.][A-Za-z0-9_.]*)"
                    r"|(?P<open>[(\[])|(?P<close>[)\]])|(?P<op>%[^%]*%|\|\||[^\s]))")


@dataclass(frozen=True)
class RandomTermSpec:
    """One random-effect term ``(lhs | group)`` after expansion.

    Attributes
    ----------
    lhs : str
        Right-hand side of the term's model matrix, e.g. ``"1 + Days"`` or ``"0 + Days"``.
    group : str
        Grouping factor as lme4 names it: ``"Subject"``, ``"cask:batch"``.
    group_vars : tuple of str
        Data columns whose interaction forms the grouping factor, in the order of its name; level
        labels join their levels with ``:`` and the first column varies slowest (as R's ``a:b``).
    structure : str
        glmmTMB's covariance structure: ``"us"`` for ``(lhs | group)``, else the name written
        before the bar's parentheses (``ar1(times + 0 | g)``).
    """

    lhs: str
    group: str
    group_vars: tuple[str, ...]
    structure: str = "us"

    @property
    def label(self) -> str:
        """The term as written: ``1 + Days | Subject`` or ``ar1(0 + times | subject)``."""
        bar = f"{self.lhs} | {self.group}"
        return bar if self.structure == "us" else f"{self.structure}({bar})"


@dataclass(frozen=True)
class ParsedFormula:
    """A formula split into response, fixed part and random terms (in formula order)."""

    formula: str
    response: str
    fixed: str
    random: tuple[RandomTermSpec, ...]


def _caret(formula: str, pos: int, problem: str, hint: str = "") -> ModelSpecError:
    """A ModelSpecError showing the formula with a caret under position ``pos``."""
    return ModelSpecError(f"{problem} in the formula\n    {formula}\n    {' ' * pos}^"
                          + (f"\n{hint}" if hint else ""))


def check_syntax(formula: str) -> None:
    """Raise a ModelSpecError pointing at unbalanced brackets or a missing operator.

    Two operands in a row (``(1 g)``: a random term without its bar) and unclosed or unmatched
    parentheses are reported with the formula and a caret under the offending character.

    Examples
    --------
    >>> check_syntax("y ~ x + (1 | g")
    Traceback (most recent call last):
    ...
    mixedppl.core.exceptions.ModelSpecError: unclosed '(' in the formula
        y ~ x + (1 | g
                ^
    add the missing ')'; a random term reads (terms | group), e.g. (1 | g)
    """
    stack: list[tuple[str, int]] = []
    prev = None  # kind of the previous token: "operand", "name", "open", "op"
    pos = 0
    while pos < len(formula):
        m = _TOKEN.match(formula, pos)
        if m is None or m.end() == pos:  # only trailing whitespace is left
            break
        kind = m.lastgroup
        start, pos = m.start(kind), m.end()
        text = m.group(kind)
        operand = kind in ("string", "number", "name")
        if operand and prev in ("operand", "name") or kind == "open" and prev == "operand":
            inside = stack and stack[-1][0] == "("
            hint = ("a random term needs a bar between its terms and its grouping factor, e.g. "
                    "(1 | g) or (1 + x | g)" if inside else
                    "join terms with an operator such as +, * or :")
            raise _caret(formula, start, f"missing operator before {text!r}", hint)
        if kind == "open":
            stack.append((text, start))
        elif kind == "close":
            want = {")": "(", "]": "["}[text]
            if not stack or stack[-1][0] != want:
                raise _caret(formula, start, f"unmatched {text!r}",
                             f"remove it or add the matching {want!r}")
            stack.pop()
        prev = ("name" if kind == "name" else "operand" if operand or kind == "close"
                else "open" if kind == "open" else "op")
    if stack:
        text, start = stack[-1]
        close = {"(": ")", "[": "]"}[text]
        raise _caret(formula, start, f"unclosed {text!r}",
                     f"add the missing {close!r}; a random term reads (terms | group), e.g. "
                     "(1 | g)")


def split_top_level(s: str, sep: str) -> list[str]:
    """Split ``s`` on ``sep`` where it is not inside parentheses or brackets."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        ch = s[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            start = i + len(sep)
            i += len(sep)
            continue
        i += 1
    parts.append(s[start:])
    return parts


def _strip_outer_parens(s: str) -> str | None:
    """Return the inside of ``s`` if all of it is one parenthesised group, else None."""
    s = s.strip()
    if not (s.startswith("(") and s.endswith(")")):
        return None
    depth = 0
    for i, ch in enumerate(s):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(s) - 1:
            return None
    return s[1:-1]


def _signed_terms(rhs: str) -> list[tuple[str, str]]:
    """Split a right-hand side into (sign, term) at top-level + and - (binary minus)."""
    out, depth, start, sign = [], 0, 0, "+"
    for i, ch in enumerate(rhs):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and ch in "+-":
            before = rhs[start:i].strip()
            if before or out:
                out.append((sign, before))
            elif ch == "-":
                pass
            sign, start = ch, i + 1
    out.append((sign, rhs[start:].strip()))
    return [(s, t) for s, t in out if t]


# ------------------------------------------------------------------------------------------------
# Random terms: formulae reads the bar; lme4's naming, R's term order and `||` are applied here
# ------------------------------------------------------------------------------------------------

#: Operators formulae's parser reads as R's formula algebra (``^`` is handed over as ``**``).
_FORMULAE_OPS = {"+", "-", "*", "/", ":", "^", "(", ")"}


def _mask(expr: str, atoms: list[str], where: str) -> str:
    """``expr`` with each variable or call replaced by a placeholder that formulae reads.

    The text handed to formulae holds operators, numbers and placeholders ``v0, v1, ...`` only;
    ``atoms[k]`` is the original text of ``vk`` (``I(x^2)``, ``poly(x, 2)``, a backquoted name),
    so that formulae reads the formula algebra and never has to evaluate or deparse R code.
    Placeholders are numbered in order of first appearance, the order in which R's ``terms()``
    installs variables. ``^`` is handed over as ``**`` (formulae's spelling).
    """
    out, pos, tokens = [], 0, []
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            break
        tokens.append((m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup), m.end()))
        pos = m.end()
    i = 0
    while i < len(tokens):
        kind, text, start, end = tokens[i]
        if kind == "name" or kind == "string" and text.startswith("`"):
            if i + 1 < len(tokens) and tokens[i + 1][1] in ("(", "["):   # a call or a subset
                depth, j = 0, i + 1
                while True:
                    depth += tokens[j][0] == "open"
                    depth -= tokens[j][0] == "close"
                    if depth == 0:
                        break
                    j += 1
                text, i = expr[start:tokens[j][3]].strip(), j
            if text not in atoms:
                atoms.append(text)
            out.append(f"v{atoms.index(text)}")
        elif kind == "number":
            out.append(text.rstrip("L"))
        elif kind == "string":
            raise ModelSpecError(f"invalid term {text} in the random term {where}: a string is "
                                 "not a variable")
        elif text == "*" and i + 1 < len(tokens) and tokens[i + 1][1] == "*" \
                and tokens[i + 1][2] == end:
            out.append("**")
            i += 1
        elif text in _FORMULAE_OPS:
            out.append("**" if text == "^" else text)
        else:
            raise ModelSpecError(
                f"operator {text!r} is not supported inside the random term {where}; write its "
                "columns with +, *, :, / and ^ (e.g. a:b for a %in% b)")
        i += 1
    return " ".join(out)


def _read_bar(lhs_terms: list[str], intercept: bool, group: str,
              where: str) -> tuple[list[GroupSpecificTerm], list[str]]:
    """formulae's reading of ``(lhs | group)``: its group-specific terms and the atoms.

    ``lhs_terms`` are the left-hand side's non-intercept terms; the intercept is written first as
    ``1 +`` or ``0 +`` (the forms formulae reads as R does, see docs/design.md).
    """
    atoms: list[str] = []
    lhs = _mask(" + ".join(lhs_terms), atoms, where) if lhs_terms else ""
    grp = _mask(group, atoms, where)
    text = f"y ~ ({'1' if intercept else '0'}{' + ' + lhs if lhs else ''} | {grp})"
    log = logging.getLogger("formulae")    # it logs a hint for x^2 written on placeholders
    was_disabled, log.disabled = log.disabled, True
    try:
        description = formulae.model_description(text)
    except Exception as err:  # formulae raises ScanError, ParseError, TypeError, ValueError
        raise ModelSpecError(f"cannot read the random term {where}: {err}") from err
    finally:
        log.disabled = was_disabled
    lost = [atoms[k] for k in range(len(atoms)) if f"v{k}" not in description.var_names]
    if lost:  # formulae's parser stops quietly at a token it cannot read
        raise ModelSpecError(f"cannot read the random term {where}: {', '.join(lost)} not read")
    return description.group_terms, atoms


def _atom_index(component) -> int:
    """Placeholder number of a formulae component (``v3`` -> 3); a number is no variable."""
    if not isinstance(component.name, str):
        raise ModelSpecError(f"invalid term in model formula: {component.name}")
    return int(component.name[1:])


def _atom_names(term: Term, atoms: list[str]) -> list[str]:
    """Original texts of a formulae term's components, in R's variable order."""
    return [atoms[k] for k in sorted(_atom_index(c) for c in term.components)]


def _lme4_groups(factors: list[list[str]], group: str) -> list[tuple[str, tuple[str, ...]]]:
    """lme4's grouping factors from formulae's: ``a/b`` reads a, a:b; lme4 names them a, b:a.

    lme4's ``expandSlash`` puts the new (inner) factor first: ``a/b/c`` gives a, b:a, c:b:a.
    formulae distributes ``(1 | g + h)`` into two terms; lme4 does not, and neither do we.
    """
    out: list[tuple[str, tuple[str, ...]]] = []
    previous: list[str] = []
    for comps in factors:
        if previous and comps[:len(previous)] != previous:
            raise ModelSpecError(
                f"cannot read the grouping factor '| {group}': write one factor (g), an "
                "interaction (a:b) or a nesting (a/b)")
        lme4_vars = [c for c in comps if c not in previous] + (list(out[-1][1]) if out else [])
        out.append((":".join(lme4_vars), tuple(lme4_vars)))
        previous = comps
    return out


def _lhs_terms(lhs: str) -> tuple[bool, list[str]]:
    """Intercept flag (R's rule: the last ``0``/``1``/``-1`` wins) and the other terms of ``lhs``."""
    intercept, terms = True, []
    for sign, term in _signed_terms(lhs):
        if term in ("0", "-1"):
            intercept = False
        elif term == "1":
            intercept = sign == "+"
        elif sign == "-":
            raise ModelSpecError(f"cannot remove {term!r} inside a random term ({lhs} | ...)")
        else:
            terms.append(term)
    return intercept, terms


def _expand_random(inner: str) -> list[RandomTermSpec]:
    """The lme4 terms of one bar ``inner`` = ``lhs | group`` or ``lhs || group``.

    formulae reads the bar (the columns of ``lhs``: ``*``, ``:``, ``/``, ``^`` expanded; the
    grouping factors: ``a/b``, ``a:b``); R's rules are then applied to what it read: terms sorted
    by degree and ``x:z`` = ``z:x`` (``terms()``), one correlated block per bar, ``||`` split into
    uncorrelated blocks (``expandDoubleVerts``), nested factors named inner first (``expandSlash``).
    """
    double = len(split_top_level(inner, "||")) > 1
    parts = split_top_level(inner, "||") if double else split_top_level(inner, "|")
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise ModelSpecError(f"cannot read random term '({inner})': expected '(terms | group)'")
    lhs, group = parts[0].strip(), parts[1].strip()
    intercept, terms = _lhs_terms(lhs)
    if not intercept and not terms:
        raise ModelSpecError(f"random term '({inner})' has no columns")
    group_terms, atoms = _read_bar(terms, intercept, group, f"({inner})")
    factors: list[list[str]] = []
    slopes: dict[frozenset, list[str]] = {}
    for t in group_terms:
        comps = [re.sub(r"\s+", "", atoms[_atom_index(c)]) for c in t.factor.components]
        if comps not in factors:
            factors.append(comps)
        if isinstance(t.expr, Term):
            names = _atom_names(t.expr, atoms)
            slopes.setdefault(frozenset(names), names)
    labels = [":".join(names) for names in sorted(slopes.values(), key=len)]  # stable, as R
    if double:
        lhss = (["1"] if intercept else []) + [f"0 + {label}" for label in labels]
    else:
        lhss = [" + ".join((["1"] if intercept else ["0"]) + labels)]
    return [RandomTermSpec(lhs=l, group=g, group_vars=v)
            for g, v in _lme4_groups(factors, re.sub(r"\s+", "", group)) for l in lhss]


_STRUCTURE_CALL = re.compile(r"^([A-Za-z_.][A-Za-z0-9_.]*)\s*\((.*)\)$", re.S)


def _structured_bar(term: str) -> tuple[str, str] | None:
    """(structure, inside) of ``name(lhs | g)``; a bar inside any other call raises."""
    m = _STRUCTURE_CALL.match(term.strip())
    if m is None or _strip_outer_parens(term[term.index("("):]) is None:
        return None
    name, inner = m.group(1), m.group(2)
    if len(split_top_level(inner, "|")) < 2:
        return None
    if name in STRUCTURES:
        if len(split_top_level(inner, "||")) > 1:
            raise ModelSpecError(f"'{term}': a covariance structure takes a single bar, "
                                 f"e.g. {name}(x | g)")
        return name, inner
    known = ", ".join(f"{s}()" for s in STRUCTURES)
    if name in GLMMTMB_UNSUPPORTED:
        raise ModelSpecError(f"'{term}': glmmTMB's {name}() covariance structure is not "
                             f"supported; the structures are {known}")
    raise ModelSpecError(f"'{term}': {name}() is not a covariance structure (glmmTMB's are "
                         f"{known}, ou(), exp(), gau(), mat(), rr()); write (x | g) for an "
                         "unstructured term")


def parse_formula(formula: str) -> ParsedFormula:
    """Split an lme4 formula into response, fixed-effects right-hand side and random terms.

    Examples
    --------
    >>> p = parse_formula("Reaction ~ Days + (Days | Subject)")
    >>> p.fixed, p.random[0].lhs, p.random[0].group
    ('1 + Days', '1 + Days', 'Subject')
    >>> [t.group for t in parse_formula("y ~ 1 + (1 | batch/cask)").random]
    ['batch', 'cask:batch']
    >>> parse_formula("y ~ x + ar1(times + 0 | g)").random[0].label
    'ar1(0 + times | g)'
    """
    if not isinstance(formula, str):
        raise ModelSpecError("formula must be a string like 'y ~ x + (1 | g)', got a "
                             f"{type(formula).__name__}")
    if "~" not in formula:
        raise ModelSpecError(f"formula must be a string like 'y ~ x + (1 | g)', got {formula!r}")
    check_syntax(formula)
    sides = split_top_level(formula, "~")
    if len(sides) != 2 or not sides[0].strip():
        raise ModelSpecError(f"formula {formula!r} needs exactly one '~' with a response on its left")
    response, rhs = sides[0].strip(), sides[1].strip()
    fixed_terms, random_terms = [], []
    for sign, term in _signed_terms(rhs):
        inner = _strip_outer_parens(term)
        structured = _structured_bar(term) if inner is None else None
        if structured is not None:
            if sign == "-":
                raise ModelSpecError(f"cannot subtract a random term: -{term}")
            name, inside = structured
            random_terms.extend(RandomTermSpec(t.lhs, t.group, t.group_vars, name)
                                for t in _expand_random(inside))
        elif inner is not None and "|" in inner and len(split_top_level(inner, "|")) > 1:
            if sign == "-":
                raise ModelSpecError(f"cannot subtract a random term: -{term}")
            random_terms.extend(_expand_random(inner))
        else:
            fixed_terms.append(term if sign == "+" else f"- {term}")
    fixed = " + ".join(fixed_terms).replace("+ -", "-") if fixed_terms else "1"
    if not any(t.strip() in ("0", "1", "- 1", "-1") for t in fixed_terms):
        fixed = "1 + " + fixed if fixed_terms else "1"
    return ParsedFormula(formula, response, fixed, tuple(random_terms))


# ------------------------------------------------------------------------------------------------
# update(): formula arithmetic on a fitted model
# ------------------------------------------------------------------------------------------------

def _norm(term: str) -> str:
    return re.sub(r"\s+", "", term)


def _random_key(r) -> tuple[str, str, str]:
    """(structure, lhs, group) of a parsed random term (``us`` for lme4's ``(x | g)``)."""
    return (r.structure, _norm(r.lhs), r.group)


def _random_text(r) -> str:
    return f"({r.label})" if r.structure == "us" else r.label


def _random_keys(term: str) -> list[tuple[tuple, str]] | None:
    """(key, text) of each random term that ``term`` expands to (``(x | g)``, ``(x || g)``,
    ``ar1(times + 0 | g)``, …), or None for a fixed term."""
    inner = term.strip()
    if "|" not in inner or not (inner.startswith("(") or _structured_bar(inner) is not None):
        return None
    parsed = parse_formula(f"y ~ 0 + {inner}")
    return [(_random_key(r), _random_text(r)) for r in parsed.random] or None


def _old_terms(spec) -> list[tuple[object, str]]:
    """(key, text) of each term of the fitted formula, fixed ones first."""
    fd = spec.fixed_design
    terms = [] if fd.has_intercept else [("0", "0")]
    terms += [(_norm(t), t) for t in fd.term_names]
    terms += [(_random_key(r), _random_text(r)) for r in spec.parsed.random]
    return terms


def _edit(terms: list, sign: str, term: str) -> list:
    rkeys = _random_keys(term)
    new = rkeys if rkeys else [(_norm(term), term)]
    keys = [k for k, _ in terms]
    if sign == "+":
        return terms + [kt for kt in new if kt[0] not in keys]
    if term == "1":
        return [("0", "0")] + [kt for kt in terms if kt[0] != "0"]
    missing = [t for k, t in new if k not in keys]
    if missing:
        raise ModelSpecError(f"cannot remove {term!r}: the model's terms are "
                             f"{[t for _, t in terms]}")
    drop = {k for k, _ in new}
    return [kt for kt in terms if kt[0] not in drop]


def update_formula(spec, new: str) -> str:
    """The formula of ``spec`` changed by ``new``, as R's ``update.formula`` for the usual edits:
    ``. ~ . - x``, ``~ . + x``, ``~ . - (1 | g)``, ``~ . - 1``, a new response ``log(.) ~ .``;
    a right-hand side without ``.`` replaces the old one.

    Parameters
    ----------
    spec : ModelSpec
        The fitted model (its parsed formula and fixed-effect term labels).
    new : str

    Returns
    -------
    str

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> update_formula(spec, ". ~ . - Days")
    'Reaction ~ (1 + Days | Subject)'
    """
    sides = split_top_level(new, "~")
    if len(sides) != 2:
        raise ModelSpecError(f"update formula must contain one '~', got {new!r}")
    lhs, rhs = sides[0].strip(), sides[1].strip()
    resp = spec.parsed.response if lhs in ("", ".") else lhs.replace(".", spec.parsed.response)
    parts = _signed_terms(rhs)
    if not parts or parts[0] != ("+", "."):
        return f"{resp} ~ {rhs}"
    terms = _old_terms(spec)
    for sign, term in parts[1:]:
        terms = _edit(terms, sign, term)
    texts = [t for _, t in terms]
    return f"{resp} ~ {' + '.join(texts) if texts else '1'}"
