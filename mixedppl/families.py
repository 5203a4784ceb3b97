"""GLMM families and links as data: tables of PyTensor expressions (NumPy twins for prediction).

A :class:`Link` holds the inverse link μ = g⁻¹(η) as a PyTensor expression and its NumPy twin. A
:class:`Family` holds the conditional log-density log p(y | μ) — PyMC's ``pm.logp`` of the matching
distribution, so the GLMM graph and the Bayesian model share one likelihood — and the variance
function V(μ) used for lme4's IRLS (Fisher) weights ``W = n·(dμ/dη)² / V(μ)``.

Responses are carried as *counts*: for the binomial, ``y`` = successes and ``n`` = trials (lme4's
proportion × prior weights); for the Poisson, ``y`` = counts and ``n`` = prior weights (multiplying
the log-density, as R's ``poisson()$aic``).

References
----------
McCullagh & Nelder (1989), *Generalized Linear Models*, 2nd ed., ch. 2 (links, variance functions).
Bates et al. (2015), J. Stat. Softw. 67(1) and lme4's ``vignette("PIRLSmod")`` (IRLS weights).

Examples
--------
>>> from mixedppl.families import get_family
>>> fam, link = get_family("binomial", "probit")
>>> fam.name, link.name
('binomial', 'probit')
>>> float(link.linkinv_np(0.0))
0.5
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from scipy import special

from .exceptions import ModelSpecError

__all__ = ["Family", "Link", "FAMILIES", "LINKS", "get_family"]


@dataclass(frozen=True)
class Link:
    """A link function: ``linkinv`` (PyTensor), ``linkinv_np`` and ``link_np`` (NumPy)."""

    name: str
    linkinv: Callable
    linkinv_np: Callable
    link_np: Callable


@dataclass(frozen=True)
class Family:
    """An exponential family for GLMMs.

    Attributes
    ----------
    name : str
    links : tuple of str
        Links available; the first is the canonical / default one.
    logp : callable
        ``logp(y, mu, n)`` → elementwise PyTensor log-density of the counts ``y``.
    variance : callable
        ``variance(mu, n)`` → Var(y/n | μ) for PyTensor or NumPy inputs (Fisher weights, Pearson
        residuals).
    check : callable
        ``check(y, n, column)`` raises :class:`ModelSpecError` for responses outside the support.
    """

    name: str
    links: tuple[str, ...]
    logp: Callable
    variance: Callable
    check: Callable

    @property
    def default_link(self) -> str:
        return self.links[0]


def _int(x):
    return pt.round(x).astype("int64")


def _binomial_logp(y, mu, n):
    import pymc as pm  # on use: importing pymc costs seconds at `import mixedppl`
    return pm.logp(pm.Binomial.dist(n=_int(n), p=mu), _int(y))


def _poisson_logp(y, mu, n):
    import pymc as pm
    return n * pm.logp(pm.Poisson.dist(mu=mu), _int(y))


def _is_integer(v: np.ndarray) -> np.ndarray:
    return np.abs(v - np.round(v)) <= 1e-8 * np.maximum(1.0, np.abs(v))


def _check_binomial(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any(y < 0):
        raise ModelSpecError(f"binomial response {column!r} has negative successes")
    if np.any(y > n + 1e-8):
        raise ModelSpecError(f"binomial response {column!r} has successes > trials (or a "
                             "proportion above 1)")
    if not np.all(_is_integer(y)) or not np.all(_is_integer(n)):
        raise ModelSpecError(f"binomial response {column!r}: non-integer number of successes or "
                             "trials; give 0/1, cbind(successes, failures), or proportions with "
                             "weights = number of trials")


def _check_poisson(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any(y < 0):
        raise ModelSpecError(f"poisson response {column!r} has negative counts")
    if not np.all(_is_integer(y)):
        raise ModelSpecError(f"poisson response {column!r} has non-integer counts")


LINKS: dict[str, Link] = {
    "logit": Link("logit", pt.sigmoid, special.expit, special.logit),
    "probit": Link("probit", lambda e: 0.5 * pt.erfc(-e / np.sqrt(2.0)), special.ndtr,
                   special.ndtri),
    "cloglog": Link("cloglog", lambda e: -pt.expm1(-pt.exp(e)),
                    lambda e: -np.expm1(-np.exp(e)), lambda m: np.log(-np.log1p(-m))),
    "log": Link("log", pt.exp, np.exp, np.log),
}

FAMILIES: dict[str, Family] = {
    "binomial": Family("binomial", ("logit", "probit", "cloglog"), _binomial_logp,
                       lambda mu, n: mu * (1 - mu) / n, _check_binomial),
    "poisson": Family("poisson", ("log",), _poisson_logp, lambda mu, n: mu / n, _check_poisson),
}


def get_family(family, link: str | None = None) -> tuple[Family, Link]:
    """Look up a family (name or :class:`Family`) and link (name; default: the family's first).

    Raises
    ------
    ModelSpecError
        For an unknown family or a link the family does not offer.
    """
    fam = family if isinstance(family, Family) else FAMILIES.get(str(family).lower())
    if fam is None:
        raise ModelSpecError(f"family={family!r} is not available; choose from {sorted(FAMILIES)}")
    name = fam.default_link if link is None else str(link).lower()
    if name not in fam.links:
        raise ModelSpecError(f"link={link!r} is not available for family {fam.name!r}; "
                             f"choose from {list(fam.links)}")
    return fam, LINKS[name]
