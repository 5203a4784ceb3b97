"""Sampling a model with NUTS: the Bayesian switch behind ``fit.sample()``.

A result class builds its ``pm.Model`` from its ModelSpec — the LMM's marginalised one
(:func:`mixedppl.bayes.marginal.lmm_marginal_to_pymc`, the default) or explicit one
(:func:`mixedppl.bayes.pymc.lmm_to_pymc`, ``marginalize=False``), the GLMM's / CLMM's
(:mod:`mixedppl.bayes.glmm_pymc`) — and hands it to :func:`sample_model`, which samples it with
the chosen NUTS implementation (:mod:`mixedppl.bayes.samplers`: nutpie when installed, else
PyMC's) and returns one kind of InferenceData whichever sampler ran: ``posterior`` (named
coords), ``sample_stats`` (``diverging``, ``n_steps``, ``step_size``...), ``log_likelihood``
(pointwise ``y``) and ``observed_data``.

For a marginalised LMM the random effects are drawn afterwards from their exact conditional,
one draw per posterior draw (:mod:`mixedppl.bayes.conditional`), and stored as ``b_<g>`` (and
the non-centred ``z_<g>`` they correspond to, so the explicit model's posterior predictive runs
on them), with the pointwise log-likelihood conditional on them, as the explicit sampler's.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..core.threads import blas_threads_for
from ..fit.records import group_labels
from ..graph.lmm_partial import partial_blocks
from .conditional import ConditionalRE, pointwise_loglik, theta_draws
from .pymc import _safe
from .result import BayesResult
from .samplers import check_sampler, default_sampler, sample_nutpie

__all__ = ["sample_model", "DEFAULT_TARGET_ACCEPT", "MAX_LOGLIK_ENTRIES"]

#: NUTS target acceptance used unless the caller passes one: 0.9 removes the occasional divergence
#: of the non-centred sleepstudy model at PyMC's 0.8 for a small cost in step size.
DEFAULT_TARGET_ACCEPT = 0.9

#: draws × rows above which a marginalised LMM's pointwise log-likelihood is not stored unless
#: asked for (``log_likelihood=True``): InstEval's 4,000 × 73,421 would take 2.3 GB.
MAX_LOGLIK_ENTRIES = 50_000_000


def _draws(post, name: str) -> np.ndarray:
    x = post[name].values
    return x.reshape((-1,) + x.shape[2:])


def add_random_effects(idata, spec, random_seed=None, log_likelihood: bool | None = None):
    """Draw b | y, β, θ, σ for every posterior draw of a marginalised LMM and add ``b_<g>``,
    ``z_<g>`` to the posterior, the pointwise ``y`` log-likelihood (conditional on b) and
    ``observed_data``. Returns the InferenceData."""
    import xarray as xr

    post = idata.posterior
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    S = n_chain * n_draw
    sigma = _draws(post, "sigma")
    beta = _draws(post, "beta") if spec.p else np.zeros((S, 0))
    labels = group_labels(spec.terms)
    names = [_safe(label) for label in labels]
    sampled = [k for k, name in enumerate(names) if f"b_{name}" in post]  # a partial marginal
    sd, corr = [], []
    for name, t in zip(names, spec.terms):
        sd.append(_draws(post, f"sd_{name}").reshape(S, t.n_cols))
        corr.append(_draws(post, f"corr_{name}") if t.n_cols > 1 else np.ones((S, 1, 1)))
    if sampled:
        pb = partial_blocks(spec, sampled)
        b_E = np.concatenate([_draws(post, f"b_{names[k]}").reshape(S, -1) for k in pb.sampled],
                             axis=1)
        cre = ConditionalRE(spec, pb)
        theta = theta_draws(pb.sub, [sd[k] for k in pb.marginal], [corr[k] for k in pb.marginal],
                            sigma)
        eps = np.random.default_rng(random_seed).standard_normal((S, cre.q))
        drawn = dict(zip(pb.marginal, cre.draw(beta, theta, sigma, eps, b_E)))
        b_terms = [drawn[k] if k in drawn else _draws(post, f"b_{names[k]}")
                   for k in range(len(spec.terms))]
    else:
        theta = theta_draws(spec, sd, corr, sigma)
        cre = ConditionalRE(spec)
        eps = np.random.default_rng(random_seed).standard_normal((S, cre.q))
        b_terms = cre.draw(beta, theta, sigma, eps)
    new = {}
    for k, (label, t, b, s, r) in enumerate(zip(labels, spec.terms, b_terms, sd, corr)):
        if k in sampled:
            continue
        name, dims = names[k], ("chain", "draw", f"{label}__level", f"{label}__term")
        chol = s[:, :, None] * np.linalg.cholesky(r)                  # b = z Lᵀ
        z = np.linalg.solve(chol[:, None], b[..., None])[..., 0] if t.n_cols > 1 else b / s[:, None]
        coords = {f"{label}__level": t.levels, f"{label}__term": t.column_names}
        shape = (n_chain, n_draw, t.n_levels, t.n_cols)
        new[f"b_{name}"] = xr.DataArray(b.reshape(shape), dims=dims, coords=coords)
        new[f"z_{name}"] = xr.DataArray(z.reshape(shape), dims=dims, coords=coords)
    idata.posterior = post.assign(new)
    want = log_likelihood if log_likelihood is not None else S * spec.n <= MAX_LOGLIK_ENTRIES
    if log_likelihood is None and not want:
        warnings.warn(f"the pointwise log-likelihood ({S} draws × {spec.n} rows) is not stored; "
                      "pass log_likelihood=True for LOO / WAIC", RuntimeWarning, stacklevel=3)
    groups = {"observed_data": xr.Dataset({"y": xr.DataArray(spec.y, dims="obs",
                                                             coords={"obs": np.arange(spec.n)})})}
    if want:
        ll = pointwise_loglik(spec, beta, b_terms, sigma).reshape(n_chain, n_draw, spec.n)
        groups["log_likelihood"] = xr.Dataset({"y": xr.DataArray(
            ll, dims=("chain", "draw", "obs"), coords={"obs": np.arange(spec.n)})})
    for name, ds in groups.items():
        if name in idata.groups():
            delattr(idata, name)
    idata.add_groups(groups)
    return idata


def sample_model(model, spec, priors: dict, draws: int = 1000, tune: int = 1000,
                 chains: int = 4, random_seed=1, progressbar: bool = True,
                 sampler: str | None = None, marginalized: bool = False,
                 log_likelihood: bool | None = None, **pm_kwargs) -> BayesResult:
    """Sample ``model`` (a ``pm.Model`` of ``spec``) with NUTS.

    Parameters
    ----------
    model : pymc.Model
    spec : ModelSpec
    priors : dict
        The priors the model was built with (shown by ``BayesResult.summary()``).
    draws, tune, chains : int
        Posterior draws and tuning steps per chain, number of chains.
    random_seed : int, optional
    progressbar : bool
    sampler : {"nutpie", "pymc", "numpyro", "blackjax"}, optional
        Default: nutpie when installed (``pip install mixedppl[bayes]``), else PyMC's.
    marginalized : bool
        ``model`` is a marginalised LMM (:func:`~mixedppl.bayes.marginal.lmm_marginal_to_pymc`):
        the random effects are drawn afterwards (module docstring).
    log_likelihood : bool, optional
        Store the pointwise log-likelihood (default: yes, unless a marginalised LMM's would
        exceed :data:`MAX_LOGLIK_ENTRIES`).
    **pm_kwargs
        ``cores``, ``target_accept`` (default 0.9); for ``sampler="pymc"`` (and the JAX
        samplers) anything else ``pm.sample`` takes.

    Returns
    -------
    BayesResult

    Examples
    --------
    >>> import mixedppl as mp
    >>> from mixedppl.bayes.priors import resolve_priors
    >>> from mixedppl.bayes.pymc import lmm_to_pymc
    >>> spec = mp.Model("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff")).spec
    >>> post = sample_model(lmm_to_pymc(spec), spec, resolve_priors(spec, None), draws=100,
    ...                     tune=200, chains=1, cores=1, progressbar=False)
    >>> list(post.fe_params.index)
    ['(Intercept)']
    """
    if "nuts_sampler" in pm_kwargs:  # PyMC's own name for the choice (pm.sample(nuts_sampler=))
        named = pm_kwargs.pop("nuts_sampler")
        if sampler is not None and sampler != named:
            raise TypeError(f"sampler={sampler!r} and nuts_sampler={named!r} disagree; pass one")
        sampler = named
    sampler = check_sampler(sampler or default_sampler())
    target_accept = pm_kwargs.pop("target_accept", DEFAULT_TARGET_ACCEPT)
    if marginalized and sampler in ("numpyro", "blackjax"):
        raise NotImplementedError(
            f"sampler={sampler!r} needs every Op in JAX; the marginalised LMM's blocked Cholesky "
            "has none: use marginalize=False, or sampler='nutpie' / 'pymc'")
    start = time.perf_counter()
    with blas_threads_for(0.0):  # one BLAS thread per chain (see _draw)
        idata = _draw(model, sampler, draws, tune, chains, random_seed, progressbar,
                      target_accept, marginalized, log_likelihood, pm_kwargs)
        if marginalized:
            seed = None if random_seed is None else np.random.SeedSequence(random_seed).spawn(1)[0]
            add_random_effects(idata, spec, seed, log_likelihood)
    timing = {"sample": time.perf_counter() - start}
    return BayesResult(idata=idata, model=model, spec=spec, priors=priors, timing=timing,
                       sampler=sampler, marginalized=marginalized)


def _draw(model, sampler: str, draws: int, tune: int, chains: int, random_seed,
          progressbar: bool, target_accept: float, marginalized: bool,
          log_likelihood: bool | None, pm_kwargs: dict):
    """The sampler's InferenceData (:func:`sample_model`'s arguments).

    Runs under one BLAS thread (the caller's :func:`~mixedppl.core.threads.blas_threads_for`):
    nutpie's chains run in threads and each BLAS call's worker threads would compete with them;
    on a loaded 2-core machine a 28 × 28 ``potri`` took 110 ms with the default threads and 4 µs
    with one (InstEval's partially marginalised logp + gradient: 70 ms against 2.6 ms)."""
    if sampler == "nutpie":
        unknown = set(pm_kwargs) - {"cores"}
        if unknown:
            raise TypeError(f"sampler='nutpie' does not take {sorted(unknown)}; use "
                            "sampler='pymc' for pm.sample's options")
        idata, _ = sample_nutpie(model, draws, tune, chains, random_seed, progressbar,
                                 target_accept, cores=pm_kwargs.get("cores"))
        if not marginalized:
            _add_pymc_loglik(idata, model, log_likelihood)
    else:
        import pymc as pm
        want_ll = (log_likelihood is not False) and not marginalized
        idata_kwargs = {"log_likelihood": want_ll, **pm_kwargs.pop("idata_kwargs", {})}
        with model:
            idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                              progressbar=progressbar, idata_kwargs=idata_kwargs,
                              nuts_sampler=sampler, target_accept=target_accept, **pm_kwargs)
    return idata


def _add_pymc_loglik(idata, model, log_likelihood: bool | None) -> None:
    """The pointwise log-likelihood and observed data of an explicit model sampled by nutpie."""
    import pymc as pm
    import xarray as xr

    obs = {v.name: model.rvs_to_values[v] for v in model.observed_RVs}
    idata.add_groups({"observed_data": xr.Dataset(
        {k: xr.DataArray(np.asarray(v.data), dims=model.named_vars_to_dims.get(k))
         for k, v in obs.items()}, coords={"obs": list(model.coords.get("obs", []))})})
    if log_likelihood is not False:
        pm.compute_log_likelihood(idata, model=model, progressbar=False)
