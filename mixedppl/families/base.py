r"""The :class:`Family` protocol shared by every family, and the reading of a response.

A family is everything the layers after it need to know about the conditional distribution
:math:`p(y_i \mid \eta_i, \phi)`: how to read the response from the model frame
(:meth:`Family.read_response`), check its support, evaluate the log-density as a PyTensor graph,
give the variance function, start values, the latent-scale variance of ``icc()`` / ``r_squared()``
and draw responses. Nothing outside :mod:`mixedppl.families` switches on a family's name: a new
family is a new object satisfying this protocol (for a GLM family, one row of
:data:`mixedppl.families.glm.FAMILIES`).

The Gaussian family (:mod:`mixedppl.families.gaussian`) reads its response here too; its fit is
the profiled REML / ML of :mod:`mixedppl.fit.lmm_fit`, which needs no likelihood graph from it.

Examples
--------
>>> import pandas as pd
>>> from mixedppl.families import get_family
>>> fam, _ = get_family("binomial")
>>> r = fam.read_response(pd.DataFrame({"s": [1, 3], "f": [2, 0]}), "cbind(s, f)")
>>> r.y.tolist(), r.trials.tolist()
([0.3333333333333333, 1.0], [3.0, 3.0])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..spec.design import model_matrix

__all__ = ["Family", "Response", "ResponseReader", "evaluate_column"]


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
    """

    y: np.ndarray
    trials: np.ndarray | None = None
    levels: list[str] | None = None
    expr: str = ""


class ResponseReader:
    """The ``response=`` callable of :func:`~mixedppl.spec.model_spec.build_spec`.

    Calls ``read(frame, expr)`` (a family's :meth:`Family.read_response`), hands ``y`` to the spec
    and keeps the :class:`Response` in :attr:`last` (trials, levels) for the caller.
    """

    def __init__(self, read: Callable[[pd.DataFrame, str], Response]):
        self.read = read
        self.last: Response | None = None

    def __call__(self, frame: pd.DataFrame, expr: str) -> np.ndarray:
        self.last = self.read(frame, expr)
        return self.last.y


def evaluate_column(frame: pd.DataFrame, expr: str) -> np.ndarray:
    """One numeric column from an expression on the model frame: a column or arithmetic
    (``I(...)`` is implied), as R evaluates a response in ``model.frame``."""
    design = model_matrix(f"0 + I({expr})", frame)
    return np.asarray(design.matrix, float)[:, 0]


@runtime_checkable
class Family(Protocol):
    """What every family provides (GLM families, the cumulative family, the Gaussian).

    Attributes
    ----------
    name : str
        As printed by ``summary()`` (``"binomial"``, ``"cumulative"``, ``"gaussian"``).
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
    """

    name: str
    dispersion: str | None
    hessian: str
    trials: bool

    @property
    def key(self) -> tuple: ...

    @property
    def n_phi(self) -> int: ...

    def phi_names(self) -> list[str]:
        """Labels of φ."""

    def read_response(self, frame: pd.DataFrame, expr: str) -> Response:
        """The response from the model frame (raises ModelSpecError for what the family cannot
        take: the error says what to give instead)."""

    def check(self, y: np.ndarray, n: np.ndarray, column: str) -> None:
        """Raise ModelSpecError for responses outside the support."""

    def loglik(self, y, eta, n, phi, link):
        """Elementwise :math:`n_i \\log p(y_i \\mid \\eta_i, \\phi)` as a PyTensor expression."""

    def start_values(self, spec, link, y: np.ndarray, n: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(β, φ) of the model without random effects, to start the optimiser."""

    def simulate(self, rng: np.random.Generator, eta: np.ndarray, n: np.ndarray, params,
                 link) -> np.ndarray:
        """Responses drawn from :math:`p(y \\mid \\eta)`; ``params`` are the family's natural
        parameters (dispersion φ, thresholds α; None when there are none)."""

    def latent_variance(self, link) -> float:
        """Variance of the latent (link-scale) residual, for ``icc()`` and ``r_squared()``;
        NotImplementedError where no closed form is implemented."""
