"""Families: the conditional distribution of the response, one :class:`Family` protocol for all.

- :mod:`.base` — the :class:`Family` protocol, the :class:`ResponseInput` a family reads from and
  the :class:`Response` it returns;
- :mod:`.links` — links (:data:`LINKS`);
- :mod:`.glm` — binomial, Poisson, negative binomial (NB2, NB1), Gamma, Beta, glmmTMB's Gaussian
  (:data:`FAMILIES`, one row each);
- :mod:`.gaussian` — the Gaussian of the LMM;
- :mod:`.cumulative` — the cumulative link family of ordinal responses;
- :mod:`.cox` — the Cox partial likelihood of a ``Surv(time, status)`` response;
- :mod:`.registry` — :func:`get_family`, a family by name or by object (``Binomial(link="probit")``).
"""

from .base import Family, PriorChoice, Response, ResponseInput
from .cox import TIES, CoxFamily
from .cumulative import CUMULATIVE_LINKS, THRESHOLDS, CumulativeFamily, read_ordinal
from .gaussian import GAUSSIAN, GaussianFamily
from .glm import FAMILIES, GLMFamily
from .links import LINKS, Link
from .registry import (Beta, Binomial, FamilyChoice, Gamma, Gaussian, NegativeBinomial, Poisson,
                       family_names, get_family)

__all__ = ["Family", "PriorChoice", "Response", "ResponseInput", "GLMFamily", "GaussianFamily",
           "CumulativeFamily", "FAMILIES", "GAUSSIAN", "LINKS", "Link", "CUMULATIVE_LINKS",
           "THRESHOLDS", "CoxFamily", "TIES", "family_names", "get_family", "read_ordinal",
           "FamilyChoice", "Binomial", "Poisson", "NegativeBinomial", "Gamma", "Beta", "Gaussian"]
