"""ModelSpec → ``pm.Model``: the same model, with priors, for PyMC.

Random effects are non-centred: ``b_k = z_k · L_kᵀ`` with ``z_k ~ N(0, 1)`` (levels × terms) and
``L_k`` the Cholesky factor of Σ_k (``sd_k`` for a scalar term; ``pm.LKJCholeskyCov`` for a vector
term). Level names and term names become coords, so InferenceData carries lme4's labels.

Default priors (weakly informative, scaled to the data as brms / bambi do), with s_y = SD(y):
intercept ~ Normal(mean(y), 2.5 s_y); slopes ~ Normal(0, 2.5 s_y / SD(x_j)); σ and random-effect SDs
~ HalfStudentT(ν=3, 2.5 s_y); correlations ~ LKJ(η=1).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..graph.joint import linear_predictor
from ..results.varcorr import group_labels
from ..spec.model_spec import ModelSpec

__all__ = ["lmm_to_pymc", "default_priors"]


def _safe(name: str) -> str:
    return name.replace(":", "_").replace(".", "_").replace("(", "").replace(")", "")


def default_priors(spec: ModelSpec) -> dict:
    """Prior scales used by :func:`lmm_to_pymc` (documented in the module docstring)."""
    sy = float(np.std(spec.y, ddof=1)) or 1.0
    sx = np.std(spec.X, axis=0, ddof=1)
    is_const = sx == 0
    mu = np.where(is_const, float(np.mean(spec.y)), 0.0)
    sd = np.where(is_const, 2.5 * sy, 2.5 * sy / np.where(is_const, 1.0, sx))
    return {"beta_mu": mu, "beta_sigma": sd, "sigma_scale": 2.5 * sy, "sd_scale": 2.5 * sy,
            "lkj_eta": 1.0}


def _random_effects(spec: ModelSpec, pri: dict) -> list:
    b_terms = []
    for label, t in zip(group_labels(spec.terms), spec.terms):
        lvl, trm = f"{label}__level", f"{label}__term"
        name = _safe(label)
        z = pm.Normal(f"z_{name}", 0.0, 1.0, dims=(lvl, trm))
        if t.n_cols == 1:
            sd = pm.HalfStudentT(f"sd_{name}", nu=3, sigma=pri["sd_scale"])
            b = z * sd
        else:
            chol, _, _ = pm.LKJCholeskyCov(
                f"chol_{name}", n=t.n_cols, eta=pri["lkj_eta"], compute_corr=True,
                sd_dist=pm.HalfStudentT.dist(nu=3, sigma=pri["sd_scale"], size=t.n_cols))
            b = pt.dot(z, chol.T)
        b_terms.append(pm.Deterministic(f"b_{name}", b, dims=(lvl, trm)))
    return b_terms


def lmm_to_pymc(spec: ModelSpec, priors: dict | None = None) -> pm.Model:
    """The linear mixed model of ``spec`` as a PyMC model (non-centred random effects).

    Parameters
    ----------
    spec : ModelSpec
    priors : dict, optional
        Overrides of :func:`default_priors` entries.

    Examples
    --------
    >>> import mixedppl as mp
    >>> m = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> pm_model = m.to_pymc()
    >>> sorted(pm_model.coords)[:2]
    ['Subject__level', 'Subject__term']
    """
    pri = {**default_priors(spec), **(priors or {})}
    coords = {"fixed": spec.fe_names, "obs": np.arange(spec.n)}
    for label, t in zip(group_labels(spec.terms), spec.terms):
        coords[f"{label}__level"] = t.levels
        coords[f"{label}__term"] = t.column_names
    with pm.Model(coords=coords) as model:
        beta = pm.Normal("beta", mu=pri["beta_mu"], sigma=pri["beta_sigma"], dims="fixed")
        sigma = pm.HalfStudentT("sigma", nu=3, sigma=pri["sigma_scale"])
        b_terms = _random_effects(spec, pri)
        eta = linear_predictor(spec, beta, b_terms)
        pm.Normal("y", mu=eta, sigma=sigma / np.sqrt(spec.weights), observed=spec.y, dims="obs")
    return model
