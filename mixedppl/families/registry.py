"""The family table: a family by name (with glmmTMB's and ordinal's aliases) and its link.

:func:`get_family` is the one place a family's name is read: it gives the object, and from then
on every layer asks the object (``fit_kind``, ``read_response``, ``check_response`` …).

Family objects as R and statsmodels users write them — ``Binomial(link="probit")``, ``Beta()``,
``Poisson()``, ``NegativeBinomial()``, ``Gamma(link="log")``, ``Gaussian()`` — are
:class:`FamilyChoice` values: a name of the table and a link, checked when made and resolved by
:func:`get_family`, so they are accepted wherever a family name is.

Examples
--------
>>> fam, link = get_family("nbinom2")
>>> fam.name, fam.fit_kind, link.name
('negative_binomial', 'glmer', 'log')
>>> fam, link = get_family("ordinal", "probit", threshold="equidistant")
>>> fam.name, fam.threshold, link.name
('cumulative', 'equidistant', 'probit')
>>> fam, link = get_family(Binomial(link="probit"))
>>> fam is FAMILIES["binomial"], link.name
(True, 'probit')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..core.exceptions import ModelSpecError
from .base import Family
from .cumulative import CumulativeFamily
from .gaussian import GAUSSIAN
from .glm import FAMILIES
from .links import LINKS, Link

__all__ = ["get_family", "family_names", "family_parts", "PART_ALIASES", "FamilyChoice", "Binomial", "Poisson",
           "NegativeBinomial", "Gamma", "Beta", "Gaussian"]

_ALIASES = {"nbinom2": "negative_binomial", "negbin": "negative_binomial",
            "negativebinomial": "negative_binomial", "nb": "negative_binomial",
            "beta_family": "beta", "normal": "gaussian", "ordinal": "cumulative",
            "clmm": "cumulative", "gamma_family": "gamma",
            "truncated_negative_binomial": "truncated_nbinom2", "beta_binomial": "betabinomial",
            "t": "student_t", "t_family": "student_t", "studentt": "student_t",
            "student": "student_t"}


#: Names that mean a family *with* a zero part, as bambi and brms spell them: the conditional
#: family (a row of the table) and the default ``ziformula`` (glmmTMB's ``ziformula = ~1``, a
#: constant zero-inflation / hurdle probability). A hurdle is glmmTMB's truncated family with a
#: zero part.
PART_ALIASES: dict[str, tuple[str, str]] = {
    "zip": ("poisson", "~ 1"), "zero_inflated_poisson": ("poisson", "~ 1"),
    "zinb": ("negative_binomial", "~ 1"),
    "zero_inflated_negativebinomial": ("negative_binomial", "~ 1"),
    "zero_inflated_negbinomial": ("negative_binomial", "~ 1"),
    "zero_inflated_nbinom2": ("negative_binomial", "~ 1"),
    "zero_inflated_nbinom1": ("nbinom1", "~ 1"),
    "zero_inflated_binomial": ("binomial", "~ 1"),
    "zero_inflated_betabinomial": ("betabinomial", "~ 1"),
    "hurdle_poisson": ("truncated_poisson", "~ 1"),
    "hurdle_negativebinomial": ("truncated_nbinom2", "~ 1"),
    "hurdle_negbinomial": ("truncated_nbinom2", "~ 1"),
    "hurdle_nbinom2": ("truncated_nbinom2", "~ 1"),
}


def _key(name) -> str:
    return str(name).lower().replace("-", "_").replace(" ", "_")


def family_parts(family, ziformula: str | None = None) -> tuple[object, str | None]:
    """``(family, ziformula)`` with a zero-part name (:data:`PART_ALIASES`: ``"zip"``,
    ``"zinb"``, ``"hurdle_poisson"`` …) replaced by its conditional family and, where no
    ``ziformula`` is given, its default ``"~ 1"``; anything else unchanged.

    Examples
    --------
    >>> family_parts("zip")
    ('poisson', '~ 1')
    >>> family_parts("hurdle_poisson", "~ mined")
    ('truncated_poisson', '~ mined')
    >>> family_parts("poisson")
    ('poisson', None)
    """
    if isinstance(family, str) and _key(family) in PART_ALIASES:
        base, default = PART_ALIASES[_key(family)]
        return base, default if ziformula is None else ziformula
    return family, ziformula


def family_names() -> list[str]:
    """The names :func:`get_family` takes (aliases aside)."""
    return sorted({*FAMILIES, "gaussian", "cumulative"})


@dataclass(frozen=True)
class FamilyChoice:
    """A family of the table with its link, as an object: R's ``binomial(link = "probit")``.

    Subclasses name the row (:attr:`family_name`); the link is checked when the object is made.

    Parameters
    ----------
    link : str, optional
        Default: the family's first (canonical) link.

    Raises
    ------
    ModelSpecError
        For a link the family does not offer.

    Examples
    --------
    >>> Binomial(link="probit")
    Binomial(link='probit')
    >>> Gamma(link="logit")
    Traceback (most recent call last):
    ...
    mixedppl.core.exceptions.ModelSpecError: link='logit' is not available for family 'gamma'; choose from ['log', 'inverse', 'identity']
    """

    link: str | None = None

    #: The family's name in the table (a key of :func:`get_family`).
    family_name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        get_family(self.family_name, self.link)

    def resolve(self, link: str | None = None) -> tuple[str, str | None]:
        """``(name, link)`` for :func:`get_family`; a ``link`` given beside the object must
        agree with the object's."""
        if link is not None and self.link is not None and str(link).lower() != self.link.lower():
            raise ModelSpecError(f"link={link!r} contradicts the family object {self!r}: give "
                                 "the link once")
        return self.family_name, self.link if link is None else link


class Binomial(FamilyChoice):
    """The binomial family (links logit, probit, cloglog, cauchit)."""

    family_name = "binomial"


class Poisson(FamilyChoice):
    """The Poisson family (links log, sqrt, identity)."""

    family_name = "poisson"


class NegativeBinomial(FamilyChoice):
    """The negative binomial NB2 family, glmmTMB's ``nbinom2`` (log link)."""

    family_name = "negative_binomial"


class Gamma(FamilyChoice):
    """The Gamma family (links log, inverse, identity), glmmTMB's ``Gamma(link = ...)``."""

    family_name = "gamma"


class Beta(FamilyChoice):
    """The Beta family (logit link), glmmTMB's ``beta_family()``."""

    family_name = "beta"


class Gaussian(FamilyChoice):
    """The Gaussian family of the linear mixed model (identity link)."""

    family_name = "gaussian"


def get_family(family: str | Family | FamilyChoice = "gaussian", link: str | None = None, *,
               levels=None, threshold: str | None = None,
               laplace: bool = False) -> tuple[Family, Link]:
    """Look up a family (a name or a family object) and its link (a name; default: the
    family's first).

    Parameters
    ----------
    family : str, Family or FamilyChoice
        ``"gaussian"`` / ``"normal"`` (:data:`~mixedppl.families.gaussian.GAUSSIAN`); a row of
        :data:`~mixedppl.families.glm.FAMILIES` (``"binomial"``, ``"poisson"``,
        ``"negative_binomial"`` = ``"nbinom2"``, ``"nbinom1"``, ``"gamma"``, ``"beta"``,
        ``"tweedie"``, ``"student_t"`` = ``"t"``;
        ``"gaussian"`` with ``laplace=True``); ``"cumulative"`` =
        ``"ordinal"`` (:class:`~mixedppl.families.cumulative.CumulativeFamily`); or a family
        object, used as it is; or a :class:`FamilyChoice` (``Binomial(link="probit")``): its
        name and link.
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
    >>> get_family("tweedie")[0].shape.label
    'Tweedie power'
    >>> get_family("weibull")
    Traceback (most recent call last):
    ...
    mixedppl.core.exceptions.ModelSpecError: family='weibull' is not available; choose from ['beta', 'betabinomial', 'binomial', 'cumulative', 'gamma', 'gaussian', 'nbinom1', 'negative_binomial', 'poisson', 'student_t', 'truncated_nbinom2', 'truncated_poisson', 'tweedie']
    """
    if isinstance(family, FamilyChoice):
        family, link = family.resolve(link)
    if isinstance(family, Family) and not isinstance(family, str):
        fam = family
    else:
        key = _key(family)
        if key in PART_ALIASES:
            base, zi = PART_ALIASES[key]
            raise ModelSpecError(f"family={family!r} is family {base!r} with a zero part "
                                 f"(ziformula={zi!r}); it is read by mp.glmer / mp.Model on a "
                                 f"pandas DataFrame: give family={base!r}, ziformula={zi!r} "
                                 "where zero parts are not read")
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
