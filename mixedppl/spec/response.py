"""What a family reads its response from: the spec layer's side of the response.

Families come before the spec layer and do not evaluate R expressions: :func:`response_input`
gives the family (:meth:`~mixedppl.families.base.Family.read_response`) the model frame, the
response expression, the arguments of ``cbind(...)`` split at the top level, and this layer's
evaluator of an R expression (``size - incidence``, ``log(y)``: the model matrix of
``0 + I(expr)``, as R's ``model.frame`` evaluates a response) and its ``as.character``.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"incidence": [2, 3], "size": [14, 12]})
>>> source = response_input(frame, "cbind(incidence, size - incidence)")
>>> source.cbind
('incidence', 'size - incidence')
>>> source.numeric("size - incidence").tolist()
[12.0, 9.0]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..families.base import ResponseInput
from .design import model_matrix
from .formula import split_top_level
from .reterm import value_labels

__all__ = ["response_input", "evaluate_expression"]


def evaluate_expression(frame: pd.DataFrame, expr: str) -> np.ndarray:
    """The numeric columns (n × k) of an R expression on the model frame (``I(expr)``)."""
    return np.asarray(model_matrix(f"0 + I({expr})", frame).matrix, float)


def _cbind_arguments(expr: str) -> tuple[str, ...] | None:
    text = expr.strip()
    if not (text.startswith("cbind(") and text.endswith(")")):
        return None
    return tuple(p.strip() for p in split_top_level(text[6:-1], ","))


def response_input(frame: pd.DataFrame, expr: str) -> ResponseInput:
    """The :class:`~mixedppl.families.base.ResponseInput` of ``expr`` on the model frame."""
    return ResponseInput(expr, frame, cbind=_cbind_arguments(expr),
                         evaluate=lambda e: evaluate_expression(frame, e),
                         as_character=value_labels)
