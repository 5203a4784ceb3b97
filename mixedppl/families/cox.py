r"""The Cox proportional-hazards "family": a ``Surv(time, status)`` response and its partial
likelihood.

A Cox model leaves the baseline hazard free: row :math:`i` has hazard
:math:`\lambda_0(t)\,e^{\eta_i}` with :math:`\eta_i = x_i^\top\beta + z_i^\top b` and no intercept
(:attr:`CoxFamily.absorbs_intercept`: the baseline hazard takes its place). What is estimated is
the partial likelihood over the distinct event times :math:`t_k`, with risk set
:math:`R_k = \{i : t_i \ge t_k\}`, tied events :math:`E_k`, :math:`d_k = |E_k|`,
:math:`r_i = w_i e^{\eta_i}`, :math:`S_k = \sum_{i\in R_k} r_i` and
:math:`S^{E}_k = \sum_{i\in E_k} r_i`:

.. math::
    \ell_{\mathrm{Breslow}} = \sum_k \Big[\sum_{i\in E_k} w_i\eta_i - W_k \log S_k\Big],\qquad
    \ell_{\mathrm{Efron}} = \sum_k \Big[\sum_{i\in E_k} w_i\eta_i
        - \bar w_k \sum_{r=0}^{d_k-1} \log\big(S_k - \tfrac{r}{d_k} S^{E}_k\big)\Big],

:math:`W_k = \sum_{E_k} w_i`, :math:`\bar w_k = W_k / d_k` (survival's ``coxph`` and coxme's
``coxfit6b``). The graph of this likelihood is :mod:`mixedppl.graph.cox`; this module reads and
checks the response and holds the tie method.

References
----------
Therneau, T. M. & Grambsch, P. M. (2000). *Modeling Survival Data*, ch. 3 and 9.
Efron, B. (1977). The efficiency of Cox's likelihood function for censored data. JASA 72, 557–565.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"time": [5.0, 3.0, 8.0], "status": [1, 2, 1]})
>>> r = CoxFamily("efron").read_response(ResponseInput("Surv(time, status)", frame))
>>> r.y.tolist(), r.status.tolist()
([5.0, 3.0, 8.0], [0.0, 1.0, 0.0])
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.exceptions import ModelSpecError
from .base import Response, ResponseInput

__all__ = ["CoxFamily", "TIES", "surv_arguments", "read_surv"]

TIES = ("efron", "breslow")


def surv_arguments(expr: str) -> tuple[str, str] | None:
    """The two arguments of ``Surv(time, status)`` (split at the top-level comma), or None
    when ``expr`` is not a ``Surv(...)`` call.

    Examples
    --------
    >>> surv_arguments("Surv(time, status == 1)")
    ('time', 'status == 1')
    >>> surv_arguments("y") is None
    True
    """
    text = expr.strip()
    if not (text.startswith("Surv(") and text.endswith(")")):
        return None
    inner, depth, parts, start = text[5:-1], 0, [], 0
    for k, ch in enumerate(inner):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(inner[start:k].strip())
            start = k + 1
    parts.append(inner[start:].strip())
    if len(parts) != 2 or not all(parts):
        raise ModelSpecError(f"{expr!r}: give Surv(time, status) with two arguments (counting-"
                             "process Surv(start, stop, status) is not available)")
    return parts[0], parts[1]


def _values(source: ResponseInput, arg: str) -> pd.Series | np.ndarray:
    if arg in source.frame.columns:
        return source.frame[arg]
    return source.numeric(arg)


def _status_codes(values, arg: str) -> np.ndarray:
    """0/1 event indicator from survival's codings: 0/1, 1/2 (1 = censored) or logical."""
    if isinstance(values, pd.Series) and pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=float)
    if isinstance(values, pd.Series) and not pd.api.types.is_numeric_dtype(values):
        raise ModelSpecError(f"status column {arg!r} must be 0/1, 1/2 or logical (it has dtype "
                             f"{values.dtype})")
    status = np.asarray(values, float)
    seen = set(np.unique(status).tolist())
    if seen <= {0.0, 1.0}:
        return status
    if seen <= {1.0, 2.0}:
        return status - 1.0
    bad = sorted(seen - {0.0, 1.0, 2.0})[:5] or sorted(seen)
    raise ModelSpecError(f"status column {arg!r} must be coded 0/1 (1 = event), 1/2 (2 = event) "
                         f"or logical, as survival's Surv(); it has the values {bad}")


def read_surv(source: ResponseInput) -> Response:
    """Read ``Surv(time, status)``: ``y`` = the times, ``status`` = 1 for an event, 0 censored.

    Raises
    ------
    ModelSpecError
        Naming the column: the response is not ``Surv(...)``, a time is negative, the status is
        not 0/1, 1/2 or logical, or there is no event.
    """
    args = surv_arguments(source.expr)
    if args is None:
        raise ModelSpecError(f"a Cox model needs a Surv(time, status) response, got "
                             f"{source.expr!r}")
    time_arg, status_arg = args
    time = np.asarray(_values(source, time_arg), float)
    if np.any(time < 0):
        raise ModelSpecError(f"time column {time_arg!r} has {int(np.sum(time < 0))} negative "
                             f"value(s) (first at row {int(np.argmax(time < 0))}); survival "
                             "times must be >= 0")
    status = _status_codes(_values(source, status_arg), status_arg)
    if not np.any(status == 1):
        raise ModelSpecError(f"status column {status_arg!r} has no events in the rows used: the "
                             "partial likelihood is empty")
    return Response(y=time, expr=source.expr, status=status)


class CoxFamily:
    """The Cox partial likelihood with Breslow or Efron ties, as a family of the spec layer.

    Parameters
    ----------
    ties : {"efron", "breslow"}
        survival's and coxme's default is Efron.
    """

    name = "cox"
    links = ("log",)
    hessian = "observed"
    dispersion = None
    trials = False
    #: The Cox frailty fit (:func:`mixedppl.coxme`); a cluster may be a single row; the baseline
    #: hazard absorbs the intercept.
    fit_kind = "coxme"
    allow_n = True
    absorbs_intercept = True
    #: ``strata(...)`` in the fixed part gives separate baseline hazards (risk sets within
    #: strata; :func:`mixedppl.graph.cox.risk_set_layout`).
    stratifies = True
    no_random_message = ("formula {formula!r} has no random term such as '(1 | id)'; add one "
                         "(a Cox model without random effects is lifelines' CoxPHFitter or "
                         "statsmodels' PHReg)")

    def __init__(self, ties: str = "efron"):
        ties = str(ties).lower()
        if ties not in TIES:
            raise ModelSpecError(f"ties={ties!r} is not available; choose from {list(TIES)}")
        self.ties = ties

    @property
    def key(self) -> tuple:
        return ("cox", self.ties)

    @property
    def n_phi(self) -> int:
        return 0

    def phi_names(self) -> list[str]:
        return []

    def read_response(self, source: ResponseInput) -> Response:
        """``Surv(time, status)`` (see :func:`read_surv`)."""
        return read_surv(source)

    def bind(self, response: Response) -> "CoxFamily":
        return self

    def counts(self, response: np.ndarray, trials, weights: np.ndarray,
               column: str) -> tuple[np.ndarray, np.ndarray]:
        """``(time, w)``: the times and the prior weights."""
        return response.copy(), weights

    def check(self, y: np.ndarray, n: np.ndarray, column: str) -> None:
        """Times must be finite and non-negative."""
        if np.any(~np.isfinite(y)) or np.any(y < 0):
            raise ModelSpecError(f"the times of {column!r} must be finite and >= 0")

    def check_response(self, y: np.ndarray, n: np.ndarray, response: Response,
                       weights: np.ndarray) -> None:
        """Times (:meth:`check`); events among the rows with positive weight."""
        self.check(y, n, response.expr)
        if response.status is not None and not np.any((response.status == 1) & (weights > 0)):
            raise ModelSpecError(f"{response.expr!r} has no events with positive weight")

    def loglik(self, y, eta, n, phi, link):
        """Not elementwise: the partial likelihood couples the rows of each risk set (it is
        :func:`mixedppl.graph.cox.cox_partial_loglik`)."""
        raise NotImplementedError("the Cox partial likelihood is not a sum of row terms; use "
                                  "mixedppl.graph.cox.cox_partial_loglik")

    def start_values(self, spec, link, y: np.ndarray, n: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """β = 0 (the null model) and no φ; the Cox fit starts from its own coxph fit."""
        return np.zeros(spec.p), np.zeros(0)

    def prior_defaults(self, spec, link, y: np.ndarray, n: np.ndarray) -> dict:
        """No family parameters, so no priors of its own."""
        return {}

    def simulate(self, rng: np.random.Generator, eta: np.ndarray, n: np.ndarray, params,
                 link) -> np.ndarray:
        r"""Event times with a unit exponential baseline hazard: :math:`T_i \sim
        \mathrm{Exp}(e^{\eta_i})` (no censoring)."""
        return rng.exponential(1.0 / np.exp(np.asarray(eta, float)))

    def latent_variance(self, link) -> float:
        """Not defined for the Cox model."""
        raise NotImplementedError("icc() / r_squared() are not defined for Cox models")
