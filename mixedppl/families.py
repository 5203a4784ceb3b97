"""GLMM families and links as data: tables of PyTensor expressions (NumPy twins for prediction).

A :class:`Link` holds the inverse link μ = g⁻¹(η) as a PyTensor expression and its NumPy twin. A
:class:`Family` holds the conditional log-density log p(y | μ, φ) — PyMC's ``pm.logp`` of the
matching distribution, so the GLMM graph and the Bayesian model share one likelihood — the variance
function V(μ) and, for families with a dispersion parameter φ (negative binomial, Gamma, Beta),
its name; φ enters the graphs on the log scale (``phi = log φ``), as glmmTMB's ``betadisp``.

The Laplace approximation's log-determinant uses lme4's IRLS (Fisher) weights
``W = n·(dμ/dη)² / V(μ)`` for the binomial and Poisson (``hessian="fisher"``, lme4's ``glmer``), and
the exact Hessian of −log p(y | η) for the dispersion families (``hessian="observed"``, TMB's
Laplace, which is what glmmTMB maximises).

Responses are carried as *counts*: for the binomial, ``y`` = successes and ``n`` = trials (lme4's
proportion × prior weights); for the others ``y`` is the response and ``n`` the prior weights
(multiplying the log-density, as R's ``poisson()$aic`` and glmmTMB's ``weights``).

Dispersion conventions (glmmTMB's ``sigma()``): negative binomial NB2 ``Var(y) = μ + μ²/φ`` (φ: the
``size``, R's ``theta``); Gamma shape ``1/φ²`` (φ: coefficient of variation); Beta
``Beta(μφ, (1 − μ)φ)`` (φ: precision).

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
import pandas as pd
import pytensor.tensor as pt
from scipy import special

from .core.exceptions import ModelSpecError

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
    logp : callable
        ``logp(y, mu, n, disp)`` → elementwise PyTensor log-density (``disp``: φ, or None).
    variance : callable
        ``variance(mu, n, disp)`` → Var(y/n | μ) for PyTensor or NumPy inputs (Fisher weights,
        Pearson residuals).
    check : callable
        ``check(y, n, column)`` raises :class:`ModelSpecError` for responses outside the support.
    dispersion : str or None
        Name of the dispersion parameter φ (``"size"``, ``"cv"``, ``"precision"``), None if fixed.
    hessian : {"fisher", "observed"}
        Weights of the Laplace log-determinant (see the module docstring).
    factor_response : callable or None
        ``factor_response(col, column)`` → numeric response from a categorical / logical /
        string column (R's reading of a factor response), or None where the family takes
        numbers only.
    """

    name: str
    links: tuple[str, ...]
    logp: Callable
    variance: Callable
    check: Callable
    dispersion: str | None = None
    hessian: str = "fisher"
    factor_response: Callable | None = None

    @property
    def default_link(self) -> str:
        return self.links[0]

    @property
    def key(self) -> tuple:
        """Identifies the compiled graphs of this family."""
        return ("glm", self.name)

    @property
    def n_phi(self) -> int:
        """Number of extra (dispersion) parameters in the graphs."""
        return 0 if self.dispersion is None else 1

    def phi_names(self) -> list[str]:
        return [] if self.dispersion is None else [f"log({self.dispersion})"]

    def loglik(self, y, eta, n, phi, link):
        """Elementwise log p(y | η, φ) as a PyTensor expression (φ on the log scale)."""
        disp = None if self.dispersion is None else pt.exp(phi[0])
        return self.logp(y, link.linkinv(eta), n, disp)

    def simulate_np(self, rng, eta, n, disp, link) -> np.ndarray:
        """Responses drawn from p(y | η, φ) in NumPy (posterior predictive; counts for the
        binomial)."""
        mu = link.linkinv_np(np.asarray(eta, float))
        n = np.broadcast_to(np.asarray(n, float), mu.shape)
        if self.name == "binomial":
            return rng.binomial(np.round(n).astype(int), np.clip(mu, 0, 1)).astype(float)
        if self.name == "poisson":
            return rng.poisson(mu).astype(float)
        if self.name == "negative_binomial":
            return rng.negative_binomial(disp, disp / (disp + mu)).astype(float)
        if self.name == "gamma":
            shape = 1.0 / disp ** 2
            return rng.gamma(shape, mu / shape)
        if self.name == "beta":
            return rng.beta(mu * disp, (1 - mu) * disp)
        raise NotImplementedError(f"no simulator for family {self.name!r}")

    def fisher_weights(self, eta, n, phi, link):
        """IRLS weights n·(dμ/dη)²/V(μ) (PyTensor)."""
        mu = link.linkinv(eta)
        mu_eta = pt.grad(mu.sum(), eta)
        disp = None if self.dispersion is None else pt.exp(phi[0])
        return mu_eta ** 2 / self.variance(mu, n, disp)


def _int(x):
    return pt.round(x).astype("int64")


def _binomial_logp(y, mu, n, disp=None):
    import pymc as pm  # on use: importing pymc costs seconds at `import mixedppl`
    return pm.logp(pm.Binomial.dist(n=_int(n), p=mu), _int(y))


def _poisson_logp(y, mu, n, disp=None):
    import pymc as pm
    return n * pm.logp(pm.Poisson.dist(mu=mu), _int(y))


def _negbin_logp(y, mu, n, size):
    import pymc as pm
    return n * pm.logp(pm.NegativeBinomial.dist(mu=mu, alpha=size), _int(y))


def _gamma_logp(y, mu, n, cv):
    import pymc as pm
    shape = 1.0 / cv ** 2
    return n * pm.logp(pm.Gamma.dist(alpha=shape, beta=shape / mu), y)


def _beta_logp(y, mu, n, prec):
    import pymc as pm
    return n * pm.logp(pm.Beta.dist(alpha=mu * prec, beta=(1 - mu) * prec), y)


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


def _binomial_factor(col, column: str) -> np.ndarray:
    r"""A binomial response from a factor, as lme4's ``glmer`` reads it.

    A pandas Categorical: the first category in the Categorical's order is failure and every
    other category success, :math:`y_i = [\,c_i \ne c_{(1)}\,]`. As in lme4, whose model frame
    is built with ``drop.unused.levels = TRUE`` (``glFormula``), categories with no row in the
    model frame are dropped first, so :math:`c_{(1)}` is the first category that occurs. A
    boolean column: True = success. Strings (object dtype) have no level order and are refused
    with a :class:`ModelSpecError` saying how to give one.

    References
    ----------
    R's ``binomial()$initialize`` (``family.R``: "if a factor, the first level denotes failure
    and all others success"); lme4's ``glFormula`` (``R/modular.R``).
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        seen = codes[codes >= 0]
        first = seen.min() if len(seen) else 0
        return np.where(codes < 0, np.nan, (codes > first).astype(float))
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=float)
    found = sorted(str(v) for v in pd.unique(col.dropna()))[:10]
    example = (f"data[{column!r}] = pd.Categorical(data[{column!r}], categories="
               f"[{found[0]!r}, {found[1]!r}])  # first = failure" if len(found) == 2 else
               f"data[{column!r}] = pd.Categorical(data[{column!r}], categories=[failure, "
               "success, ...])")
    raise ModelSpecError(
        f"binomial response {column!r} has dtype {col.dtype} (values {found}) and no level "
        "order, so which value is the failure is not defined (R's binomial takes a factor: the "
        f"first level is failure, the others success). Give the order: {example}, or compare "
        f"with the success level: data[{column!r}] == {found[-1] if found else 'yes'!r} "
        "(a logical response)")


def _check_poisson(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any(y < 0):
        raise ModelSpecError(f"poisson response {column!r} has negative counts")
    if not np.all(_is_integer(y)):
        raise ModelSpecError(f"poisson response {column!r} has non-integer counts")


def _check_negbin(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any(y < 0) or not np.all(_is_integer(y)):
        raise ModelSpecError(f"negative binomial response {column!r} must be non-negative integer "
                             "counts")


def _check_gamma(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any(y <= 0):
        raise ModelSpecError(f"Gamma response {column!r} must be positive (found "
                             f"{int(np.sum(y <= 0))} value(s) <= 0)")


def _check_beta(y: np.ndarray, n: np.ndarray, column: str) -> None:
    if np.any((y <= 0) | (y >= 1)):
        raise ModelSpecError(f"Beta response {column!r} must lie strictly between 0 and 1 (found "
                             f"{int(np.sum((y <= 0) | (y >= 1)))} value(s) outside); squeeze "
                             "exact 0s and 1s, e.g. (y·(n − 1) + 0.5)/n (Smithson & Verkuilen 2006)")


def _disp(d, default=1.0):
    return default if d is None else d


# Links and variance functions are module-level functions, not lambdas, so that a Family, a Link
# and every result holding them pickle (by reference to these names).
def _probit_inv(e):
    return 0.5 * pt.erfc(-e / np.sqrt(2.0))


def _cloglog_inv(e):
    return -pt.expm1(-pt.exp(e))


def _cloglog_inv_np(e):
    return -np.expm1(-np.exp(e))


def _cloglog_np(m):
    return np.log(-np.log1p(-m))


def _loglog_inv(e):
    return pt.exp(-pt.exp(-e))


def _loglog_inv_np(e):
    return np.exp(-np.exp(-e))


def _loglog_np(m):
    return -np.log(-np.log(m))


def _cauchit_inv(e):
    return 0.5 + pt.arctan(e) / np.pi


def _cauchit_inv_np(e):
    return 0.5 + np.arctan(e) / np.pi


def _cauchit_np(m):
    return np.tan(np.pi * (m - 0.5))


def _binomial_var(mu, n, d=None):
    return mu * (1 - mu) / n


def _poisson_var(mu, n, d=None):
    return mu / n


def _negbin_var(mu, n, d=None):
    return (mu + mu ** 2 / _disp(d)) / n


def _gamma_var(mu, n, d=None):
    return _disp(d) ** 2 * mu ** 2 / n


def _beta_var(mu, n, d=None):
    return mu * (1 - mu) / (1 + _disp(d)) / n


LINKS: dict[str, Link] = {
    "logit": Link("logit", pt.sigmoid, special.expit, special.logit),
    "probit": Link("probit", _probit_inv, special.ndtr, special.ndtri),
    "cloglog": Link("cloglog", _cloglog_inv, _cloglog_inv_np, _cloglog_np),
    "log": Link("log", pt.exp, np.exp, np.log),
    "loglog": Link("loglog", _loglog_inv, _loglog_inv_np, _loglog_np),
    "cauchit": Link("cauchit", _cauchit_inv, _cauchit_inv_np, _cauchit_np),
}

FAMILIES: dict[str, Family] = {
    "binomial": Family("binomial", ("logit", "probit", "cloglog", "cauchit"), _binomial_logp,
                       _binomial_var, _check_binomial, factor_response=_binomial_factor),
    "poisson": Family("poisson", ("log",), _poisson_logp, _poisson_var, _check_poisson),
    "negative_binomial": Family("negative_binomial", ("log",), _negbin_logp, _negbin_var,
                                _check_negbin, dispersion="size", hessian="observed"),
    "gamma": Family("gamma", ("log",), _gamma_logp, _gamma_var, _check_gamma,
                    dispersion="cv", hessian="observed"),
    "beta": Family("beta", ("logit",), _beta_logp, _beta_var, _check_beta,
                   dispersion="precision", hessian="observed"),
}

_ALIASES = {"nbinom2": "negative_binomial", "negbin": "negative_binomial",
            "negativebinomial": "negative_binomial", "nb": "negative_binomial",
            "gamma": "gamma", "beta": "beta", "beta_family": "beta"}


def get_family(family, link: str | None = None) -> tuple[Family, Link]:
    """Look up a family (name or :class:`Family`) and link (name; default: the family's first).

    Raises
    ------
    ModelSpecError
        For an unknown family or a link the family does not offer.
    """
    if isinstance(family, Family):
        fam = family
    else:
        key = str(family).lower().replace("-", "_").replace(" ", "_")
        fam = FAMILIES.get(_ALIASES.get(key, key))
    if fam is None:
        raise ModelSpecError(f"family={family!r} is not available; choose from {sorted(FAMILIES)}")
    name = fam.default_link if link is None else str(link).lower()
    if name not in fam.links:
        raise ModelSpecError(f"link={link!r} is not available for family {fam.name!r}; "
                             f"choose from {list(fam.links)}")
    return fam, LINKS[name]
