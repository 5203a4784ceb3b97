r"""Wald tests of linear hypotheses :math:`L\beta = r` on the fixed effects.

Hypotheses are a matrix L (one row per constraint, one column per fixed effect) with a
right-hand side r, or text: one or more equations separated by ``,`` or ``;``, each a linear
combination of coefficient names (as ``fit.fe_params.index``) and numbers —
``"Days = 0"``, ``"period2 = period3"``, ``"2*recipeB - recipeC = 1"``, ``"period2, period3"``
(a name alone means ``= 0``).

LMM (:class:`~mixedppl.fit.records.LMMFit`): an F test with Satterthwaite or Kenward–Roger df,
as lmerTest's ``contest(fit, L, rhs, joint = TRUE)``
(:func:`mixedppl.inference.ftests.contrast_ftest`). GLMM / CLMM: the χ² statistic

.. math:: W = (L\hat\beta - r)^\top (L V L^\top)^{-1} (L\hat\beta - r) \sim \chi^2_q,

q the rank of L (a pseudo-inverse over the positive eigenvalues of :math:`LVL^\top`).

References
----------
Kuznetsova, Brockhoff & Christensen (2017). lmerTest package. J. Stat. Softw. 82(13).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy import special

from ..fit.records import LMMFit
from .ftests import contrast_ftest

__all__ = ["hypothesis_matrix", "wald_test", "chisq_test"]

_NUMBER = re.compile(r"\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?")


def _side(text: str, names: list[str]) -> tuple[np.ndarray, float]:
    """Coefficients on ``names`` and the constant of one side of an equation."""
    coef, const = np.zeros(len(names)), 0.0
    by_length = sorted(range(len(names)), key=lambda i: -len(names[i]))
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return coef, const
        sign = 1.0
        while pos < n and text[pos] in "+-" or pos < n and text[pos].isspace():
            if text[pos] == "-":
                sign = -sign
            pos += 1
        factor = 1.0
        m = _NUMBER.match(text, pos)
        if m:
            factor = float(m.group())
            pos = m.end()
            while pos < n and text[pos].isspace():
                pos += 1
            if pos < n and text[pos] == "*":
                pos += 1
                while pos < n and text[pos].isspace():
                    pos += 1
            else:
                const += sign * factor
                continue
        hit = next((i for i in by_length if text.startswith(names[i], pos)), None)
        if hit is None:
            raise ValueError(f"cannot read {text[pos:]!r} in a hypothesis: expected a "
                             f"coefficient name (one of {names}) or a number")
        coef[hit] += sign * factor
        pos += len(names[hit])
        while pos < n and text[pos].isspace():
            pos += 1
        if pos < n and text[pos] not in "+-":
            raise ValueError(f"cannot read {text[pos:]!r} in a hypothesis after "
                             f"{names[hit]!r}: expected + or -")


def hypothesis_matrix(names: list[str], hypothesis: str) -> tuple[np.ndarray, np.ndarray]:
    """L and r of a text hypothesis (see the module docstring).

    Examples
    --------
    >>> L, r = hypothesis_matrix(["(Intercept)", "period2", "period3"],
    ...                          "period2 = period3; 2*period2 - (Intercept) = 1")
    >>> L.tolist(), r.tolist()
    ([[0.0, 1.0, -1.0], [-1.0, 2.0, 0.0]], [0.0, 1.0])
    """
    rows, rhs = [], []
    for part in re.split(r"[,;]", hypothesis):
        if not part.strip():
            continue
        sides = part.split("=")
        if len(sides) > 2:
            raise ValueError(f"one '=' per equation, got {part.strip()!r}")
        left, right = (sides[0], sides[1]) if len(sides) == 2 else (sides[0], "0")
        a, c = _side(left, names)
        b, d = _side(right, names)
        if not np.any(a - b):
            raise ValueError(f"the equation {part.strip()!r} has no coefficient")
        rows.append(a - b)
        rhs.append(d - c)
    if not rows:
        raise ValueError("the hypothesis is empty")
    return np.array(rows), np.array(rhs)


def _as_hypothesis(record, hypothesis, rhs) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(hypothesis, str):
        if rhs is not None:
            raise ValueError("rhs= is for a matrix hypothesis; write it into the text")
        return hypothesis_matrix(list(record.spec.fe_names), hypothesis)
    L = np.atleast_2d(np.asarray(hypothesis, float))
    if L.shape[1] != record.spec.p:
        raise ValueError(f"L needs {record.spec.p} columns (one per fixed effect), got "
                         f"{L.shape[1]}")
    r = np.broadcast_to(np.asarray(0.0 if rhs is None else rhs, float), (L.shape[0],))
    return L, np.array(r)


def chisq_test(beta: np.ndarray, vcov: np.ndarray, L: np.ndarray, rhs: np.ndarray,
               tol: float = 1e-8) -> pd.DataFrame:
    """The Wald χ² test of ``L β = rhs`` (see the module docstring): Chisq, Df, Pr(>Chisq)."""
    d, P = np.linalg.eigh(L @ vcov @ L.T)
    keep = d > tol * max(d.max(), 0)
    diff = L @ beta - rhs
    z = P[:, keep].T @ diff
    W = float(np.sum(z ** 2 / d[keep]))
    q = int(keep.sum())
    return pd.DataFrame({"Chisq": [W], "Df": [q], "Pr(>Chisq)": [special.chdtrc(q, W)]})


def wald_test(record, hypothesis, rhs=None, ddf: str = "Satterthwaite", kr=None) -> pd.DataFrame:
    """Test ``L β = rhs`` (see the module docstring).

    Parameters
    ----------
    record : LMMFit or LaplaceFit
    hypothesis : str or array-like (q, p)
    rhs : float or array-like (q,), optional
        With a matrix hypothesis (default 0).
    ddf : {"Satterthwaite", "Kenward-Roger"}
        LMMs only.
    kr : KRAdjusted, optional

    Returns
    -------
    DataFrame
        LMM: Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F); GLMM / CLMM: Chisq, Df, Pr(>Chisq).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> round(float(wald_test(fit.record, "Days = 0")["F value"].iloc[0]), 3)
    45.853
    """
    L, r = _as_hypothesis(record, hypothesis, rhs)
    if isinstance(record, LMMFit):
        return contrast_ftest(record, L, r, ddf=ddf, kr=kr)
    return chisq_test(record.beta, record.vcov_beta, L, r)
