"""ModelSpec → ``pm.Model``: the same model, with priors, for PyMC.

Random effects are non-centred: ``b_k = z_k · L_kᵀ`` with ``z_k ~ N(0, 1)`` (levels × terms) and
``L_k`` the Cholesky factor of Σ_k (``sd_k`` for a scalar term; ``pm.LKJCholeskyCov`` for a vector
term). Level names and term names become coords, so InferenceData carries lme4's labels.

Default priors (weakly informative, scaled to the data as brms / bambi do), with s_y = SD(y):
intercept ~ Normal(mean(y), 2.5 s_y); slopes ~ Normal(0, 2.5 s_y / SD(x_j)); σ and random-effect SDs
~ HalfStudentT(ν=3, 2.5 s_y); correlations ~ LKJ(η=1). Override any of them with
``priors={"fixed": ..., "sd": ..., "corr": ..., "sigma": ...}`` (:mod:`mixedppl.priors` objects);
``post.summary()`` prints the priors used.

Why explicit (non-centred) random effects rather than marginalised ones: the marginal LMM density
needs a dense or sparse Cholesky per gradient evaluation, while the non-centred form is a gather
and a sum, has no funnel for NUTS, and gives random-effect draws (for the conditional pointwise
log-likelihood, ``predict`` and ``random_effects``) directly, in the same form as GLMM and CLMM.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from .. import priors
from ..fit.compile import configure_pytensor
from ..graph.joint import linear_predictor
from ..results.varcorr import group_labels
from ..spec.model_spec import ModelSpec

__all__ = ["lmm_to_pymc", "default_priors", "resolve_priors", "model_coords"]


def _safe(name: str) -> str:
    return name.replace(":", "_").replace(".", "_").replace("(", "").replace(")", "")


def default_priors(spec: ModelSpec) -> dict:
    """The default priors of :func:`lmm_to_pymc`, as :mod:`mixedppl.priors` objects.

    Returns
    -------
    dict
        ``"fixed"`` (a :class:`~mixedppl.priors.Normal` with one mu / sigma per fixed effect),
        ``"sd"``, ``"sigma"`` (:class:`~mixedppl.priors.HalfStudentT`) and ``"corr"``
        (:class:`~mixedppl.priors.LKJ`).

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> print(default_priors(spec)["sd"])
    HalfStudentT(sigma=140.8, nu=3)
    """
    sy = float(np.std(spec.y, ddof=1)) or 1.0
    sx = np.std(spec.X, axis=0, ddof=1)
    is_const = sx == 0
    mu = np.where(is_const, float(np.mean(spec.y)), 0.0)
    sd = np.where(is_const, 2.5 * sy, 2.5 * sy / np.where(is_const, 1.0, sx))
    return {"fixed": priors.Normal(mu, sd), "sigma": priors.HalfStudentT(2.5 * sy, 3.0),
            "sd": priors.HalfStudentT(2.5 * sy, 3.0), "corr": priors.LKJ(1.0)}


def resolve_priors(spec: ModelSpec, user: dict | None) -> dict:
    """Defaults updated by the user's ``priors`` dict (unknown keys or types raise).

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
            raise ValueError(f"unknown prior key {key!r}; use one of {sorted(pri)}")
        want = priors.LKJ if key == "corr" else priors.Prior
        if not isinstance(value, want) or (key != "corr" and isinstance(value, priors.LKJ)):
            raise TypeError(f"priors[{key!r}] must be a mixedppl.priors.{want.__name__} "
                            f"object, got {value!r}")
        pri[key] = value
    return pri


def _vector_term(name: str, label: str, n: int, pri: dict):
    chol, corr, stds = pm.LKJCholeskyCov(
        f"chol_{name}", n=n, eta=pri["corr"].eta, compute_corr=True, store_in_trace=False,
        sd_dist=pri["sd"].dist(size=n))
    pm.Deterministic(f"sd_{name}", stds, dims=f"{label}__term")
    pm.Deterministic(f"corr_{name}", corr, dims=(f"{label}__term", f"{label}__term_"))
    return chol


def _random_effects(spec: ModelSpec, pri: dict) -> list:
    b_terms = []
    for label, t in zip(group_labels(spec.terms), spec.terms):
        lvl, trm = f"{label}__level", f"{label}__term"
        name = _safe(label)
        z = pm.Normal(f"z_{name}", 0.0, 1.0, dims=(lvl, trm))
        if t.n_cols == 1:
            b = z * pri["sd"].rv(f"sd_{name}")
        else:
            b = pt.dot(z, _vector_term(name, label, t.n_cols, pri).T)
        b_terms.append(pm.Deterministic(f"b_{name}", b, dims=(lvl, trm)))
    return b_terms


def model_coords(spec: ModelSpec) -> dict:
    """Coords of the PyMC model: ``fixed``, ``obs``, ``<group>__level``, ``<group>__term`` (and
    ``<group>__term_``, the second axis of a correlation matrix).

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff")).spec
    >>> sorted(model_coords(spec))
    ['Batch__level', 'Batch__term', 'fixed', 'obs']
    """
    coords = {"fixed": spec.fe_names, "obs": np.arange(spec.n)}
    for label, t in zip(group_labels(spec.terms), spec.terms):
        coords[f"{label}__level"] = t.levels
        coords[f"{label}__term"] = t.column_names
        if t.n_cols > 1:
            coords[f"{label}__term_"] = t.column_names
    return coords


def lmm_to_pymc(spec: ModelSpec, priors: dict | None = None) -> pm.Model:
    """The linear mixed model of ``spec`` as a PyMC model (non-centred random effects).

    Parameters
    ----------
    spec : ModelSpec
    priors : dict, optional
        Overrides of :func:`default_priors`: keys ``"fixed"``, ``"sd"``, ``"corr"``, ``"sigma"``,
        values :mod:`mixedppl.priors` objects.

    Returns
    -------
    pymc.Model
        Free variables ``beta`` (dim ``fixed``), ``sigma``, ``z_<g>`` and ``sd_<g>`` (scalar
        term) or ``chol_<g>`` (vector term); deterministics ``b_<g>``, and for vector terms
        ``sd_<g>`` (dim term) and ``corr_<g>``; observed ``y`` (dim ``obs``).

    Examples
    --------
    >>> import mixedppl as mp
    >>> m = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> pm_model = m.to_pymc()
    >>> sorted(pm_model.coords)[:2]
    ['Subject__level', 'Subject__term']
    >>> [v.name for v in pm_model.deterministics]
    ['sd_Subject', 'corr_Subject', 'b_Subject']
    """
    configure_pytensor()
    pri = resolve_priors(spec, priors)
    with pm.Model(coords=model_coords(spec)) as model:
        beta = pri["fixed"].rv("beta", dims="fixed")
        sigma = pri["sigma"].rv("sigma")
        b_terms = _random_effects(spec, pri)
        eta = linear_predictor(spec, beta, b_terms)
        pm.Normal("y", mu=eta, sigma=sigma / np.sqrt(spec.weights), observed=spec.y, dims="obs")
    return model
