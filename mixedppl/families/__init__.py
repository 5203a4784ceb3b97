"""Families: the conditional distribution of the response, one :class:`Family` protocol for all.

- :mod:`.base` — the :class:`Family` protocol and the :class:`Response` a family reads;
- :mod:`.links` — links (:data:`LINKS`);
- :mod:`.glm` — binomial, Poisson, negative binomial, Gamma, Beta (:data:`FAMILIES`, one row each);
- :mod:`.gaussian` — the Gaussian of the LMM;
- :mod:`.cumulative` — the cumulative link family of ordinal responses.
"""

from .base import Family, Response, ResponseReader
from .cumulative import CUMULATIVE_LINKS, THRESHOLDS, CumulativeFamily, read_ordinal
from .gaussian import GAUSSIAN, GaussianFamily
from .glm import FAMILIES, GLMFamily, get_family
from .links import LINKS, Link

__all__ = ["Family", "Response", "ResponseReader", "GLMFamily", "GaussianFamily",
           "CumulativeFamily", "FAMILIES", "GAUSSIAN", "LINKS", "Link", "CUMULATIVE_LINKS",
           "THRESHOLDS", "get_family", "read_ordinal"]
