r"""The :class:`Family` protocol shared by every family, and the reading of a response.

A family is everything the layers after it need to know about the conditional distribution
:math:`p(y_i \mid \eta_i, \phi)`: how to read the response from the model frame
(:meth:`Family.read_response`), check its support, evaluate the log-density as a PyTensor graph,
give the variance function, start values, the latent-scale variance of ``icc()`` / ``r_squared()``
and draw responses; and, as plain data, what :func:`~mixedppl.spec.model_spec.build_spec` and the
front doors need: which fit it takes (:attr:`Family.fit_kind`: ``"lmer"``, ``"glmer"`` or
``"clmm"``, also the key of :class:`~mixedppl.core.control.Control`'s defaults), lme4's
``allow.n`` rule, whether the thresholds absorb the intercept. Nothing outside
:mod:`mixedppl.families` switches on a family's name: a new family is a new object satisfying this
protocol (for a GLM family, one row of :data:`mixedppl.families.glm.FAMILIES`).

Families come before the spec layer, so they do not evaluate R expressions themselves: the spec
hands a family a :class:`ResponseInput` — the model frame, the response expression, the
arguments of ``cbind(...)`` already split, and two callables of the spec layer: ``evaluate``
(the numeric value of an R expression on the frame, e.g. ``size - incidence`` or ``log(y)``) and
``as_character`` (R's ``as.character`` of a column, for ordinal levels).

Default priors are plain data here (:class:`PriorChoice`: a distribution's name and its
parameters); :mod:`mixedppl.priors` (the Bayesian layer) turns them into prior objects.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from mixedppl.families import get_family
>>> fam, _ = get_family("binomial")
>>> frame = pd.DataFrame({"s": [1, 3], "f": [2, 0]})
>>> source = ResponseInput("cbind(s, f)", frame, cbind=("s", "f"),
...                        evaluate=lambda e: frame.eval(e).to_numpy(float)[:, None])
>>> r = fam.read_response(source)
>>> r.y.tolist(), r.trials.tolist()
([0.3333333333333333, 1.0], [3.0, 3.0])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..core.exceptions import ModelSpecError

__all__ = ["Family", "Response", "ResponseInput", "PriorChoice", "check_not_constant"]


@dataclass(frozen=True)
class Response:
    """A response as a family read it.

    Attributes
    ----------
    y : ndarray
        The value the :class:`~mixedppl.spec.model_spec.ModelSpec` holds (``spec.y``): the
        number, the proportion of successes, or the category code 0 … K − 1.
    trials : ndarray or None
        Number of trials of a ``cbind(successes, failures)`` response.
    levels : list of str or None
        Ordered category labels of an ordinal response.
    expr : str
        The response expression of the formula.
    status : ndarray or None
        Event indicator (1 event, 0 censored) of a ``Surv(time, status)`` response (y is then
        the time).
    """

    y: np.ndarray
    trials: np.ndarray | None = None
    levels: list[str] | None = None
    expr: str = ""
    status: np.ndarray | None = None


def _str_labels(values: pd.Series) -> list[str]:
    return [str(v) for v in values]


@dataclass(frozen=True)
class ResponseInput:
    """What the spec layer hands a family to read the response from.

    Attributes
    ----------
    expr : str
        The response expression of the formula (``"y"``, ``"log(y)"``, ``"cbind(s, n - s)"``).
    frame : DataFrame
        The model frame (rows with missing values already dropped).
    cbind : tuple of str or None
        The argument expressions of ``cbind(...)`` when the response is one, else None.
    evaluate : callable
        ``evaluate(expr) -> ndarray (n, k)``: the numeric columns of an R expression on the frame
        (a column, arithmetic, ``log(y)``; a factor gives one column per level).
    as_character : callable
        ``as_character(column) -> list of str``: R's ``as.character`` of each value (``TRUE``,
        ``2``, ``0.5``).
    """

    expr: str
    frame: pd.DataFrame = field(repr=False)
    cbind: tuple[str, ...] | None = None
    evaluate: Callable[[str], np.ndarray] | None = field(default=None, repr=False)
    as_character: Callable[[pd.Series], list[str]] = field(default=_str_labels, repr=False)

    @property
    def column(self) -> pd.Series | None:
        """The data column the expression names, None for an expression."""
        return self.frame[self.expr] if self.expr in self.frame.columns else None

    def numeric(self, expr: str | None = None) -> np.ndarray:
        """One numeric column from an expression (default: the response's), as R evaluates a
        response in ``model.frame``; a ModelSpecError when it gives more than one column."""
        expr = self.expr if expr is None else expr
        if self.evaluate is None:
            raise ModelSpecError(f"response {expr!r} is not a column of the data")
        values = np.asarray(self.evaluate(expr), float)
        if values.ndim == 2 and values.shape[1] != 1:
            raise ModelSpecError(f"response {expr!r} must give one numeric column (it gives "
                                 f"{values.shape[1]})")
        return values.reshape(-1)


@dataclass(frozen=True)
class PriorChoice:
    """A default prior as plain data: a :mod:`mixedppl.priors` class name and its parameters.

    Examples
    --------
    >>> PriorChoice("LogNormal", {"mu": 0.5, "sigma": 2.0}).distribution
    'LogNormal'
    """

    distribution: str
    params: dict


def check_not_constant(used: np.ndarray, column: str) -> None:
    """As lme4's ``check.response.not.const``: a response with one value has nothing to model."""
    if len(used) and np.ptp(used) == 0:
        raise ModelSpecError(f"response {column!r} is constant (every used row is {used[0]:g}): "
                             "there is no variation to model; check the column and the rows kept")


@runtime_checkable
class Family(Protocol):
    """What every family provides (GLM families, the cumulative family, the Gaussian).

    Attributes
    ----------
    name : str
        As printed by ``summary()`` (``"binomial"``, ``"cumulative"``, ``"gaussian"``).
    fit_kind : {"lmer", "glmer", "clmm"}
        The fit the family takes: profiled REML / ML, the GLMM Laplace fit, the CLMM Laplace fit
        with thresholds; also the key of :class:`~mixedppl.core.control.Control`'s defaults.
    allow_n : bool
        lme4's ``allow.n``: a grouping factor may have as many levels as observations (glmer)
        or must have fewer (lmer).
    absorbs_intercept : bool
        The thresholds take the place of the intercept (the cumulative family): the spec drops
        ``(Intercept)`` and columns aliased with it.
    no_random_message : str
        The error for a formula without random terms (``{formula!r}`` is filled in).
    key : tuple
        Identifies the compiled graphs of the family.
    n_phi : int
        Number of extra parameters φ in the graphs (log-dispersion, threshold parameters).
    dispersion : str or None
        Name of a dispersion parameter (``"size"``, ``"cv"``, ``"precision"``).
    hessian : {"fisher", "observed"}
        Weights of the Laplace log-determinant: lme4's IRLS weights or the exact Hessian.
    trials : bool
        The response counts successes out of ``n`` trials (the binomial).
    links : tuple of str
        Links available; the first is the default.
    """

    name: str
    fit_kind: str
    allow_n: bool
    absorbs_intercept: bool
    no_random_message: str
    dispersion: str | None
    hessian: str
    trials: bool
    links: tuple[str, ...]

    @property
    def key(self) -> tuple: ...

    @property
    def n_phi(self) -> int: ...

    def phi_names(self) -> list[str]:
        """Labels of φ."""

    def read_response(self, source: ResponseInput) -> Response:
        """The response from the model frame (raises ModelSpecError for what the family cannot
        take: the error says what to give instead)."""

    def bind(self, response: Response) -> "Family":
        """The family for this response (the cumulative family learns its K levels; the others
        return themselves)."""

    def counts(self, response: np.ndarray, trials: np.ndarray | None, weights: np.ndarray,
               column: str) -> tuple[np.ndarray, np.ndarray]:
        """``(y, n)`` the graphs take: successes and trials for the binomial, else the response
        and the prior weights."""

    def check_response(self, y: np.ndarray, n: np.ndarray, response: Response,
                       weights: np.ndarray) -> None:
        """Raise ModelSpecError for a response outside the support or without variation."""

    def check(self, y: np.ndarray, n: np.ndarray, column: str) -> None:
        """Raise ModelSpecError for responses outside the support."""

    def loglik(self, y, eta, n, phi, link):
        """Elementwise :math:`n_i \\log p(y_i \\mid \\eta_i, \\phi)` as a PyTensor expression."""

    def start_values(self, spec, link, y: np.ndarray, n: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(β, φ) of the model without random effects, to start the optimiser."""

    def prior_defaults(self, spec, link, y: np.ndarray, n: np.ndarray
                       ) -> dict[str, PriorChoice]:
        """Default priors of the family's own parameters (``"dispersion"``, ``"thresholds"``)
        as plain data; empty when the Bayesian layer's defaults cover everything."""

    def simulate(self, rng: np.random.Generator, eta: np.ndarray, n: np.ndarray, params,
                 link) -> np.ndarray:
        """Responses drawn from :math:`p(y \\mid \\eta)`; ``params`` are the family's natural
        parameters (dispersion φ, thresholds α; None when there are none)."""

    def latent_variance(self, link) -> float:
        """Variance of the latent (link-scale) residual, for ``icc()`` and ``r_squared()``;
        NotImplementedError where no closed form is implemented."""
