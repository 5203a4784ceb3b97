"""Prior distributions for :meth:`fit.sample(priors=...) <mixedppl.results.base.MixedResult.sample>`.

Small, immutable descriptions that build PyMC distributions. Pass them in a dict keyed by the
parameter class they apply to:

``"fixed"``
    every fixed effect (a :class:`Normal`; the intercept too).
``"sd"``
    every random-effect standard deviation (:class:`HalfNormal`, :class:`HalfStudentT` or
    :class:`Exponential`).
``"corr"``
    the correlation matrix of each vector-valued term (:class:`LKJ`).
``"sigma"``
    the residual standard deviation of a Gaussian model (a positive distribution as for ``"sd"``).
``"dispersion"``
    the dispersion φ of a negative binomial, Gamma or Beta GLMM (a positive distribution, e.g.
    :class:`LogNormal`).
``"thresholds"``
    the cut-points of a cumulative link model (a :class:`Normal`; they are kept ordered).

Anything not given keeps its default (:func:`mixedppl.bayes.priors.default_priors`).

Examples
--------
>>> import mixedppl as mp
>>> mp.priors.Normal(0, 10)
Normal(mu=0, sigma=10)
>>> mp.priors.LKJ(2).eta
2
"""

from __future__ import annotations

from dataclasses import dataclass

from .families.base import PriorChoice

__all__ = ["Prior", "Normal", "HalfNormal", "HalfStudentT", "Exponential", "LogNormal", "LKJ",
           "from_choice"]


class Prior:
    """Base class: ``rv(name, **kw)`` adds the variable to the current model; ``dist(**kw)`` is the
    unnamed distribution (``pm.<Dist>.dist``, e.g. to sample the prior)."""

    _pm: str = ""

    def _params(self) -> dict:
        return dict(self.__dict__)

    def rv(self, name: str, **kwargs):
        """The named random variable in the model on the context stack.

        Examples
        --------
        >>> import pymc as pm, mixedppl as mp
        >>> with pm.Model():
        ...     x = mp.priors.HalfNormal(2).rv("x")
        >>> x.name
        'x'
        """
        import pymc as pm  # imported on use: importing pymc costs seconds
        return getattr(pm, self._pm)(name, **self._float64_params(), **kwargs)

    def dist(self, **kwargs):
        """The unnamed distribution (``pm.<Dist>.dist``).

        Examples
        --------
        >>> import mixedppl as mp
        >>> mp.priors.Exponential(1.0).dist(size=2).eval().shape
        (2,)
        """
        import pymc as pm
        return getattr(pm, self._pm).dist(**self._float64_params(), **kwargs)

    def _float64_params(self) -> dict:
        """The parameters as float64 arrays: PyTensor makes a Python float that float32 holds
        exactly (``nu=3.0``, ``sigma=2.5``) a float32 constant, and PyMC then computes the
        log-density's normalising constant (``gammaln((nu + 1) / 2)``) in float32 (HalfStudentT:
        2·10⁻⁸ off)."""
        import numpy as np
        return {k: np.asarray(v, dtype=np.float64) for k, v in self._params().items()}

    def __str__(self) -> str:
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


def _fmt(v) -> str:
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        import numpy as np
        return np.array2string(np.asarray(v, float), precision=4, separator=", ")


@dataclass(frozen=True)
class Normal(Prior):
    """Normal(mu, sigma) prior (fixed effects).

    Examples
    --------
    >>> import mixedppl as mp
    >>> str(mp.priors.Normal(0, 10))
    'Normal(mu=0, sigma=10)'
    """

    mu: float = 0.0
    sigma: float = 1.0
    _pm = "Normal"


@dataclass(frozen=True)
class HalfNormal(Prior):
    """HalfNormal(sigma) prior (standard deviations).

    Examples
    --------
    >>> import mixedppl as mp
    >>> mp.priors.HalfNormal(5).sigma
    5
    """

    sigma: float = 1.0
    _pm = "HalfNormal"


@dataclass(frozen=True)
class HalfStudentT(Prior):
    """Half-Student-t(nu, sigma) prior (standard deviations; the default with ``nu=3``).

    Examples
    --------
    >>> import mixedppl as mp
    >>> mp.priors.HalfStudentT(sigma=2.5).nu
    3.0
    """

    sigma: float = 1.0
    nu: float = 3.0
    _pm = "HalfStudentT"


@dataclass(frozen=True)
class Exponential(Prior):
    """Exponential(lam) prior (standard deviations), mean ``1 / lam``.

    Examples
    --------
    >>> import mixedppl as mp
    >>> mp.priors.Exponential(0.5).lam
    0.5
    """

    lam: float = 1.0
    _pm = "Exponential"


@dataclass(frozen=True)
class LogNormal(Prior):
    """LogNormal(mu, sigma) prior: log φ ~ Normal(mu, sigma) (dispersion parameters).

    Examples
    --------
    >>> import mixedppl as mp
    >>> str(mp.priors.LogNormal(0.7, 2))
    'LogNormal(mu=0.7, sigma=2)'
    """

    mu: float = 0.0
    sigma: float = 1.0
    _pm = "LogNormal"


@dataclass(frozen=True)
class Uniform(Prior):
    """Uniform(lower, upper) prior (e.g. the Tweedie power on (1, 2)).

    Examples
    --------
    >>> import mixedppl as mp
    >>> str(mp.priors.Uniform(1, 2))
    'Uniform(lower=1, upper=2)'
    """

    lower: float = 0.0
    upper: float = 1.0
    _pm = "Uniform"


@dataclass(frozen=True)
class Gamma(Prior):
    """Gamma(alpha, beta) prior, mean ``alpha / beta`` (e.g. Student's df: Gamma(2, 0.1)).

    Examples
    --------
    >>> import mixedppl as mp
    >>> str(mp.priors.Gamma(2, 0.1))
    'Gamma(alpha=2, beta=0.1)'
    """

    alpha: float = 1.0
    beta: float = 1.0
    _pm = "Gamma"


@dataclass(frozen=True)
class LKJ(Prior):
    """LKJ(eta) prior on a correlation matrix (``eta=1``: uniform over correlation matrices).

    Only usable as the ``"corr"`` entry. It is sampled through the canonical partial
    correlations, independent scaled Betas under LKJ(η) (:func:`mixedppl.bayes.pymc._corr_cholesky`).

    Examples
    --------
    >>> import mixedppl as mp
    >>> str(mp.priors.LKJ(2))
    'LKJ(eta=2)'
    """

    eta: float = 1.0

    def rv(self, name: str, **kwargs):
        raise TypeError("LKJ is a prior on correlations; use it as priors={'corr': LKJ(eta)}")

    dist = rv


def from_choice(choice: PriorChoice) -> Prior:
    """The prior object a family's plain-data :class:`~mixedppl.families.base.PriorChoice`
    names.

    Examples
    --------
    >>> from mixedppl.families import PriorChoice
    >>> from_choice(PriorChoice("LogNormal", {"mu": 0.5, "sigma": 2.0}))
    LogNormal(mu=0.5, sigma=2.0)
    """
    known = {cls.__name__: cls for cls in (Normal, HalfNormal, HalfStudentT, Exponential,
                                           LogNormal, Uniform, Gamma, LKJ)}
    if choice.distribution not in known:
        raise ValueError(f"unknown prior distribution {choice.distribution!r}; known: "
                         f"{sorted(known)}")
    return known[choice.distribution](**choice.params)
