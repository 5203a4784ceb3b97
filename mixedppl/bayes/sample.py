"""Sampling a model with PyMC NUTS: the Bayesian switch behind ``fit.sample()``.

A result class builds its ``pm.Model`` from its ModelSpec (the LMM's is
:func:`mixedppl.bayes.pymc.lmm_to_pymc`, the GLMM's / CLMM's :mod:`mixedppl.bayes.glmm_pymc`) and
hands it to :func:`sample_model`; sampling, the InferenceData and every posterior accessor
(:class:`~mixedppl.bayes.result.BayesResult`) are shared.
"""

from __future__ import annotations

import time

from .result import BayesResult

__all__ = ["sample_model", "DEFAULT_TARGET_ACCEPT"]

#: NUTS target acceptance used unless the caller passes one: 0.9 removes the occasional divergence
#: of the non-centred sleepstudy model at PyMC's 0.8 for a small cost in step size.
DEFAULT_TARGET_ACCEPT = 0.9


def _nuts_sampler() -> str:
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return "pymc"
    return "nutpie"


def sample_model(model, spec, priors: dict, draws: int = 1000, tune: int = 1000,
                 chains: int = 4, random_seed=1, progressbar: bool = True,
                 **pm_kwargs) -> BayesResult:
    """Sample ``model`` (a ``pm.Model`` of ``spec``) with NUTS (nutpie if installed).

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
    **pm_kwargs
        Passed to ``pm.sample`` (``cores``, ``target_accept`` (default 0.9),
        ``nuts_sampler``...).

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
    import pymc as pm

    kw = {"target_accept": DEFAULT_TARGET_ACCEPT, "nuts_sampler": _nuts_sampler(), **pm_kwargs}
    idata_kwargs = {"log_likelihood": True, **kw.pop("idata_kwargs", {})}
    start = time.perf_counter()
    with model:
        idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                          progressbar=progressbar, idata_kwargs=idata_kwargs, **kw)
    return BayesResult(idata=idata, model=model, spec=spec, priors=priors,
                       timing={"sample": time.perf_counter() - start})
