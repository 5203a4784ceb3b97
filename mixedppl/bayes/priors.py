r"""The default priors of every family, and the user's overrides: one :func:`default_priors`,
one :func:`resolve_priors`.

The prior objects themselves (``Normal``, ``HalfStudentT``, ``LKJ``, …) are the user-facing
:mod:`mixedppl.priors`. The defaults are weakly informative, as brms / bambi / rstanarm:

- linear mixed models (data scale, s_y = SD(y)): intercept ~ Normal(mean(y), 2.5 s_y); slopes
  ~ Normal(0, 2.5 s_y / SD(x_j)); σ and random-effect SDs ~ HalfStudentT(ν=3, 2.5 s_y);
- GLMMs and cumulative models (link scale): intercept ~ Normal(g(ȳ), 2.5), g the link and ȳ the
  mean response (proportion for the binomial; a cumulative model has no intercept and centres at
  0); slopes ~ Normal(0, 2.5 / SD(x_j)); random-effect SDs ~ HalfStudentT(ν=3, 2.5);
- correlations ~ LKJ(η=1); the family's own parameters (dispersion, thresholds) from
  :meth:`~mixedppl.families.base.Family.prior_defaults` (:func:`family_priors`);
- zero-inflation / dispersion-formula coefficients (``"zi"``: γ on logit π, ``"disp"``: δ on
  log φ; :meth:`~mixedppl.families.zi_disp.ZIDispFamily.prior_defaults`): independent normals,
  a constant column at its start value (the logit of half the share of zeros, or of the share
  for a hurdle; log φ⁰, the moment start) with sd 2.5 (γ) or 2 (δ, so that without a
  dispformula φ ~ LogNormal(log φ⁰, 2) as for the family alone), other columns at 0 with sd
  2.5 / SD(x_j); random terms in the ziformula take the ``"sd"`` / ``"corr"`` priors of the
  conditional ones (on the logit scale, as GLMM SDs);
- a structured term (:mod:`mixedppl.spec.covstruct`): its SDs from the ``"sd"`` prior (one SD
  for ``ar1``), its correlation parameters uniform on their ranges
  (:func:`structure_correlation_range`): ρ ∈ (−1, 1) for ``ar1``, ρ ∈ (−1/(ℓ−1), 1) for ``cs``
  (where R is positive definite), the partial autocorrelations of ``toep`` ∈ (−1, 1)ˡ⁻¹.

Which scale a model takes is its family's ``fit_kind`` (:data:`FIXED_EFFECT_PRIORS`).

References
----------
Gelman, A. et al. (2008), A weakly informative default prior distribution for logistic and other
regression models, Ann. Appl. Stat. 2(4); Bürkner, P.-C. (2017), brms, J. Stat. Softw. 80(1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import priors
from ..spec.model_spec import ModelSpec

__all__ = ["default_priors", "resolve_priors", "family_priors", "FIXED_EFFECT_PRIORS",
           "structure_correlation_range"]


def structure_correlation_range(structure: str, ell: int) -> tuple[int, float, float]:
    """(how many, lower, upper) of a structured term's correlation parameters, each given a
    uniform prior on (lower, upper) (the positive-definite range).

    Examples
    --------
    >>> structure_correlation_range("cs", 5)
    (1, -0.25, 1.0)
    >>> structure_correlation_range("toep", 4)
    (3, -1.0, 1.0)
    """
    return {"diag": (0, -1.0, 1.0), "ar1": (1, -1.0, 1.0), "cs": (1, -1.0 / (ell - 1), 1.0),
            "toep": (ell - 1, -1.0, 1.0)}[structure]


def family_priors(spec: ModelSpec) -> dict:
    """The default priors of the family's own parameters (``"dispersion"``, ``"thresholds"``):
    :meth:`~mixedppl.families.base.Family.prior_defaults` as prior objects.

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("rating ~ temp + (1 | judge)", mp.datasets.load("wine"), "cumulative").spec
    >>> print(family_priors(spec)["thresholds"])  # doctest: +NORMALIZE_WHITESPACE
    Normal(mu=[-2.595, -0.51 ,  1.028,  2.231], sigma=5)
    """
    return {key: priors.from_choice(choice)
            for key, choice in spec.family.prior_defaults(spec, spec.link,
                                                          *spec.counts()).items()}


def _data_scale(spec: ModelSpec) -> dict:
    """The LMM's: scaled by SD(y) (see the module docstring)."""
    sy = float(np.std(spec.y, ddof=1)) or 1.0
    sx = np.std(spec.X, axis=0, ddof=1)
    is_const = sx == 0
    mu = np.where(is_const, float(np.mean(spec.y)), 0.0)
    sd = np.where(is_const, 2.5 * sy, 2.5 * sy / np.where(is_const, 1.0, sx))
    return {"fixed": priors.Normal(mu, sd), "sigma": priors.HalfStudentT(2.5 * sy, 3.0),
            "sd": priors.HalfStudentT(2.5 * sy, 3.0), "corr": priors.LKJ(1.0)}


def _link_scale(spec: ModelSpec, intercept_at: float | None = None) -> dict:
    """A GLMM's: on the link scale, the intercept at g(ȳ) unless ``intercept_at`` is given."""
    family, link = spec.family, spec.link
    y, ntr = spec.counts()
    sx = np.std(spec.X, axis=0, ddof=1) if spec.n > 1 else np.ones(spec.p)
    is_const = sx == 0
    w = np.where(ntr > 0, ntr, 0.0)
    if intercept_at is None:
        if family.trials:  # y: successes out of w trials
            ybar = float(np.sum(y) / max(np.sum(w), 1e-12))
        else:
            ybar = float(np.sum(w * y) / max(np.sum(w), 1e-12))
        ybar = (float(np.clip(ybar, 1e-3, 1 - 1e-3)) if link.unit_interval
                else max(ybar, 1e-3))
        intercept_at = float(link.link_np(ybar))
    mu = np.where(is_const, intercept_at, 0.0)
    sd = np.where(is_const, 2.5, 2.5 / np.where(is_const, 1.0, sx))
    out = {"fixed": priors.Normal(mu, sd), "sd": priors.HalfStudentT(2.5, 3.0),
           "corr": priors.LKJ(1.0)}
    out.update(family_priors(spec))
    return out


def _threshold_scale(spec: ModelSpec) -> dict:
    """A cumulative model's: the link scale centred at 0 (the thresholds take the intercept)."""
    return _link_scale(spec, 0.0)


#: ``Family.fit_kind`` → the default priors of its models.
FIXED_EFFECT_PRIORS: dict[str, Callable[[ModelSpec], dict]] = {
    "lmer": _data_scale, "glmer": _link_scale, "clmm": _threshold_scale}


def default_priors(spec: ModelSpec) -> dict:
    """The default priors of the model ``spec`` (any family; see the module docstring).

    Returns
    -------
    dict
        ``"fixed"`` (a :class:`~mixedppl.priors.Normal` with one mu / sigma per fixed effect),
        ``"sd"`` (:class:`~mixedppl.priors.HalfStudentT`), ``"corr"``
        (:class:`~mixedppl.priors.LKJ`), and ``"sigma"`` (LMM), ``"dispersion"`` or
        ``"thresholds"`` where the family has them.

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> print(default_priors(spec)["sd"])
    HalfStudentT(sigma=140.8, nu=3)
    >>> spec = mp.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                 mp.datasets.load("cbpp"), "binomial").spec
    >>> print(default_priors(spec)["sd"])
    HalfStudentT(sigma=2.5, nu=3)
    """
    return FIXED_EFFECT_PRIORS[spec.family.fit_kind](spec)


def resolve_priors(spec: ModelSpec, user: dict | None) -> dict:
    """:func:`default_priors` updated by the user's ``priors`` dict (unknown keys or types raise).

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff")).spec
    >>> print(resolve_priors(spec, {"sd": mp.priors.HalfNormal(5)})["sd"])
    HalfNormal(sigma=5)
    """
    pri = default_priors(spec)
    for key, value in (user or {}).items():
        if key not in pri:
            raise ValueError(f"unknown prior key {key!r} for this model; use one of {sorted(pri)}")
        want = priors.LKJ if key == "corr" else priors.Prior
        if not isinstance(value, want) or (key != "corr" and isinstance(value, priors.LKJ)):
            raise TypeError(f"priors[{key!r}] must be a mixedppl.priors.{want.__name__} "
                            f"object, got {value!r}")
        pri[key] = value
    return pri
