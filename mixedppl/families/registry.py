"""The family table: a family by name (with glmmTMB's and ordinal's aliases) and its link.

:func:`get_family` is the one place a family's name is read: it gives the object, and from then
on every layer asks the object (``fit_kind``, ``read_response``, ``check_response`` …).

Examples
--------
>>> fam, link = get_family("nbinom2")
>>> fam.name, fam.fit_kind, link.name
('negative_binomial', 'glmer', 'log')
>>> fam, link = get_family("ordinal", "probit", threshold="equidistant")
>>> fam.name, fam.threshold, link.name
('cumulative', 'equidistant', 'probit')
"""

from __future__ import annotations

from ..core.exceptions import ModelSpecError
from .base import Family
from .cumulative import CumulativeFamily
from .gaussian import GAUSSIAN
from .glm import FAMILIES
from .links import LINKS, Link

__all__ = ["get_family", "family_names"]

_ALIASES = {"nbinom2": "negative_binomial", "negbin": "negative_binomial",
            "negativebinomial": "negative_binomial", "nb": "negative_binomial",
            "beta_family": "beta", "normal": "gaussian", "ordinal": "cumulative",
            "clmm": "cumulative", "gamma_family": "gamma"}


def family_names() -> list[str]:
    """The names :func:`get_family` takes (aliases aside)."""
    return sorted({*FAMILIES, "gaussian", "cumulative"})


def get_family(family: str | Family = "gaussian", link: str | None = None, *,
               levels=None, threshold: str | None = None,
               laplace: bool = False) -> tuple[Family, Link]:
    """Look up a family (a name or a family object) and its link (a name; default: the
    family's first).

    Parameters
    ----------
    family : str or Family
        ``"gaussian"`` / ``"normal"`` (:data:`~mixedppl.families.gaussian.GAUSSIAN`); a row of
        :data:`~mixedppl.families.glm.FAMILIES` (``"binomial"``, ``"poisson"``,
        ``"negative_binomial"`` = ``"nbinom2"``, ``"nbinom1"``, ``"gamma"``, ``"beta"``;
        ``"gaussian"`` with ``laplace=True``); ``"cumulative"`` =
        ``"ordinal"`` (:class:`~mixedppl.families.cumulative.CumulativeFamily`); or a family
        object, used as it is.
    link : str, optional
    levels : list, optional
        The order of the response categories (cumulative family only).
    threshold : {"flexible", "equidistant"}, optional
        Threshold structure (cumulative family only; default ``"flexible"``).
    laplace : bool
        Whether the family is for ``glmer`` (glmmTMB's Laplace fit): then ``"gaussian"`` is the
        row :data:`FAMILIES["gaussian"] <mixedppl.families.glm.FAMILIES>` (identity, log or
        inverse link; σ estimated by maximum likelihood, as glmmTMB's ``gaussian()``), not the
        LMM's :data:`~mixedppl.families.gaussian.GAUSSIAN`.

    Raises
    ------
    ModelSpecError
        For an unknown family, a link the family does not offer, or cumulative options given to
        another family.

    Examples
    --------
    >>> fam, link = get_family("gaussian")
    >>> fam.name, fam.fit_kind, link.name
    ('gaussian', 'lmer', 'identity')
    >>> fam, link = get_family("gaussian", "log", laplace=True)
    >>> fam.name, fam.fit_kind, link.name
    ('gaussian', 'glmer', 'log')
    >>> get_family("tweedie")
    Traceback (most recent call last):
    ...
    mixedppl.core.exceptions.ModelSpecError: family='tweedie' is not available; choose from ['beta', 'binomial', 'cumulative', 'gamma', 'gaussian', 'nbinom1', 'negative_binomial', 'poisson']
    """
    if isinstance(family, Family) and not isinstance(family, str):
        fam = family
    else:
        key = str(family).lower().replace("-", "_").replace(" ", "_")
        key = _ALIASES.get(key, key)
        if key == "cumulative":
            fam = CumulativeFamily(threshold=threshold or "flexible", levels=levels)
        else:
            fam = FAMILIES.get(key) if laplace else {**FAMILIES, "gaussian": GAUSSIAN}.get(key)
        if fam is None:
            raise ModelSpecError(f"family={family!r} is not available; choose from "
                                 f"{family_names()}")
    if not isinstance(fam, CumulativeFamily) and (levels is not None or threshold is not None):
        raise ModelSpecError(f"levels= and threshold= are options of the cumulative (ordinal) "
                             f"family, not of family {fam.name!r}")
    name = fam.links[0] if link is None else str(link).lower()
    if name not in fam.links:
        raise ModelSpecError(f"link={link!r} is not available for family {fam.name!r}; "
                             f"choose from {list(fam.links)}")
    return fam, LINKS[name]
