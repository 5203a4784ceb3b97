"""Exceptions and warnings raised by mixedppl.

Errors about the user's model or data are raised at the spec layer with the user's own names
(column, level, term); numerical trouble during a fit is reported with warnings, as lme4 does.
"""

from __future__ import annotations


class ModelSpecError(ValueError):
    """The formula, data or arguments do not describe a model that can be fitted.

    The message names the column, level or term involved and says what to do about it.
    """


class ConvergenceWarning(UserWarning):
    """The optimiser stopped without meeting its convergence criteria (``fit.converged`` is False)."""


class SingularFitWarning(UserWarning):
    """The fit is singular: a variance is estimated as 0 or a correlation as ±1 (``is_singular``)."""


class IdentifiabilityWarning(UserWarning):
    """The likelihood does not depend on a parameter (flat in it): the data cannot estimate it."""


class RankDeficiencyWarning(UserWarning):
    """The fixed-effects model matrix is rank deficient; columns were dropped as lme4 drops them."""


class DataWarning(UserWarning):
    """Something about the data was changed on the way in (e.g. rows with missing values dropped)."""


class SeparationWarning(UserWarning):
    """A binomial fixed effect has no finite estimate (complete or quasi-complete separation)."""


class DegenerateGroupsWarning(UserWarning):
    """Many levels of a grouping factor have only zero (or only full-success) responses."""


class NonNestedWarning(UserWarning):
    """``anova()`` was given models that are not nested, so its χ² test is meaningless."""
