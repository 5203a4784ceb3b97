"""Parse lme4 formulas: split the response, the fixed-effects part and the random-effect terms.

lme4's bar notation is translated here (as lme4's ``findbars`` / ``expandDoubleVerts`` /
``expandSlash`` do); the fixed part is handed to :mod:`mixedppl.spec.design` (an R-exact model-matrix builder).

- ``(expr | g)``: one random term with the columns of ``expr`` (intercept unless ``0 +``).
- ``(expr || g)``: uncorrelated: one term per term of ``expr`` (``(1 + x || g)`` becomes
  ``(1 | g) + (0 + x | g)``).
- ``(expr | a/b)``: nested: ``(expr | a) + (expr | b:a)``; ``a:b`` is the interaction factor.

References
----------
Bates, Mächler, Bolker & Walker (2015), Fitting linear mixed-effects models using lme4,
J. Stat. Softw. 67(1), section 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.exceptions import ModelSpecError

__all__ = ["ParsedFormula", "RandomTermSpec", "check_syntax", "parse_formula", "split_top_level"]

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
    """

    lhs: str
    group: str
    group_vars: tuple[str, ...]


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


def _group_vars(group: str) -> list[tuple[str, tuple[str, ...]]]:
    """Expand a grouping expression: ``a/b`` -> [a, b:a]; ``a:b`` stays one factor."""
    group = re.sub(r"\s+", "", group)
    nested = split_top_level(group, "/")
    out, outer = [], []
    for part in nested:
        vars_ = tuple(v for v in part.split(":") if v)
        if not vars_:
            raise ModelSpecError(f"empty grouping factor in random term '| {group}'")
        outer = list(vars_) + outer if outer else list(vars_)
        out.append((":".join(outer), tuple(outer)))
    return out


def _lhs_terms(lhs: str) -> tuple[bool, list[str]]:
    """Intercept flag and the non-intercept terms of a random term's left-hand side."""
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
    double = len(split_top_level(inner, "||")) > 1
    parts = split_top_level(inner, "||") if double else split_top_level(inner, "|")
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise ModelSpecError(f"cannot read random term '({inner})': expected '(terms | group)'")
    lhs, group = parts[0].strip(), parts[1].strip()
    intercept, terms = _lhs_terms(lhs)
    if double:
        lhss = (["1"] if intercept else []) + [f"0 + {t}" for t in terms]
    else:
        lhss = [" + ".join((["1"] if intercept else ["0"]) + terms)]
    if not lhss or lhss == ["0"]:
        raise ModelSpecError(f"random term '({inner})' has no columns")
    return [RandomTermSpec(lhs=l, group=g, group_vars=v)
            for g, v in _group_vars(group) for l in lhss]


def parse_formula(formula: str) -> ParsedFormula:
    """Split an lme4 formula into response, fixed-effects right-hand side and random terms.

    Examples
    --------
    >>> p = parse_formula("Reaction ~ Days + (Days | Subject)")
    >>> p.fixed, p.random[0].lhs, p.random[0].group
    ('1 + Days', '1 + Days', 'Subject')
    >>> [t.group for t in parse_formula("y ~ 1 + (1 | batch/cask)").random]
    ['batch', 'cask:batch']
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
        if inner is not None and "|" in inner and len(split_top_level(inner, "|")) > 1:
            if sign == "-":
                raise ModelSpecError(f"cannot subtract a random term: -{term}")
            random_terms.extend(_expand_random(inner))
        else:
            fixed_terms.append(term if sign == "+" else f"- {term}")
    fixed = " + ".join(fixed_terms).replace("+ -", "-") if fixed_terms else "1"
    if not any(t.strip() in ("0", "1", "- 1", "-1") for t in fixed_terms):
        fixed = "1 + " + fixed if fixed_terms else "1"
    return ParsedFormula(formula, response, fixed, tuple(random_terms))
