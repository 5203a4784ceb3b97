r"""Responses simulated from a fitted LMM, and the formula arithmetic of ``update``.

``simulate``: as lme4's ``simulate.merMod`` (``use.u = FALSE``),

.. math:: y^* = X\hat\beta + o + \sum_k Z_k u_k + \varepsilon,\quad
          u_{k,g} \sim N(0, \hat\Sigma_k),\ \varepsilon_i \sim N(0, \hat\sigma^2 / w_i).

``update_formula``: R's ``update.formula`` for the usual edits: ``. ~ . - x``, ``~ . + x``,
``~ . - (1 | g)``, a new response ``log(y) ~ .``.
"""

from __future__ import annotations

import re

import numpy as np

from ..core.exceptions import ModelSpecError
from ..fit.records import LMMFit
from ..spec.formula import parse_formula, split_top_level

__all__ = ["simulate_responses", "update_formula"]


def simulate_responses(record: LMMFit, nsim: int = 1, seed=None) -> np.ndarray:
    """(n, nsim) array of new responses from the fitted model (see the module docstring).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> simulate_responses(fit.record, nsim=2, seed=1).shape
    (180, 2)
    """
    if int(nsim) != nsim or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, got {nsim!r}")
    nsim = int(nsim)
    rng = np.random.default_rng(seed)
    spec = record.spec
    mean = spec.X @ record.beta + spec.offset
    y = np.repeat(mean[:, None], nsim, axis=1)
    for t, sl in zip(spec.terms, spec.theta_slices()):
        factor = record.sigma * t.T(record.theta[sl])          # Σ_k = σ² T_k T_kᵀ (singular fits too)
        u = rng.standard_normal((nsim, t.n_levels, t.n_cols)) @ factor.T
        y += np.einsum("ij,sij->is", t.z, u[:, t.codes, :])
    y += rng.standard_normal((spec.n, nsim)) * (record.sigma / np.sqrt(spec.weights))[:, None]
    return y


def _norm(term: str) -> str:
    return re.sub(r"\s+", "", term)


def _random_keys(term: str) -> list[tuple[str, str]] | None:
    """(lhs, group) of each random term that ``term`` expands to, or None for a fixed term."""
    inner = term.strip()
    if not (inner.startswith("(") and "|" in inner):
        return None
    parsed = parse_formula(f"y ~ 0 + {inner}")
    return [(_norm(r.lhs), r.group) for r in parsed.random] or None


def _old_terms(spec) -> list[tuple[object, str]]:
    """(key, text) of each term of the fitted formula, fixed ones first."""
    fd = spec.fixed_design
    terms = [] if fd.has_intercept else [("0", "0")]
    terms += [(_norm(t), t) for t in fd.term_names]
    terms += [((_norm(r.lhs), r.group), f"({r.lhs} | {r.group})") for r in spec.parsed.random]
    return terms


def _signed_parts(rhs: str) -> list[tuple[str, str]]:
    """Top-level ``+`` / ``-`` separated pieces of a right-hand side, with their signs."""
    out, depth, sign, cur = [], 0, "+", ""
    for ch in rhs:
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and ch in "+-":
            if cur.strip():
                out.append((sign, cur.strip()))
            sign, cur = ch, ""
        else:
            cur += ch
    if cur.strip():
        out.append((sign, cur.strip()))
    return out


def _edit(terms: list, sign: str, term: str) -> list:
    rkeys = _random_keys(term)
    new = [(k, f"({k[0]} | {k[1]})") for k in rkeys] if rkeys else [(_norm(term), term)]
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
    """The formula of ``spec`` changed by ``new`` (R's ``update.formula`` common cases)."""
    sides = split_top_level(new, "~")
    if len(sides) != 2:
        raise ModelSpecError(f"update formula must contain one '~', got {new!r}")
    lhs, rhs = sides[0].strip(), sides[1].strip()
    resp = spec.parsed.response if lhs in ("", ".") else lhs.replace(".", spec.parsed.response)
    parts = _signed_parts(rhs)
    if not parts or parts[0] != ("+", "."):
        return f"{resp} ~ {rhs}"
    terms = _old_terms(spec)
    for sign, term in parts[1:]:
        terms = _edit(terms, sign, term)
    texts = [t for _, t in terms]
    return f"{resp} ~ {' + '.join(texts) if texts else '1'}"
