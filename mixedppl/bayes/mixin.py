"""The Bayesian switch on a fitted result: ``fit.sample()``.

A result class plugs in by providing ``_pymc_model(priors)``, returning ``(pm.Model, priors_used)``
built from its ModelSpec; the LMM's is :func:`mixedppl.bayes.pymc.lmm_to_pymc`. Sampling, the
InferenceData and every posterior accessor (:class:`~mixedppl.bayes.result.BayesResult`) are shared.
"""

from __future__ import annotations

import time

__all__ = ["SampleMixin"]

#: NUTS target acceptance used unless the caller passes one: 0.9 removes the occasional divergence
#: of the non-centred sleepstudy model at PyMC's 0.8 for a small cost in step size.
DEFAULT_TARGET_ACCEPT = 0.9


def _nuts_sampler() -> str:
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return "pymc"
    return "nutpie"


class SampleMixin:
    """Methods added to the result classes."""

    def _pymc_model(self, priors: dict | None = None):
        from .pymc import lmm_to_pymc, resolve_priors
        return lmm_to_pymc(self.spec, priors), resolve_priors(self.spec, priors)

    def sample(self, draws: int = 1000, tune: int = 1000, chains: int = 4, random_seed=1,
               priors: dict | None = None, progressbar: bool = True, **pm_kwargs):
        """Sample the same model with PyMC NUTS (nutpie if installed) and return a BayesResult.

        Parameters
        ----------
        draws, tune, chains : int
            Posterior draws and tuning steps per chain, number of chains.
        random_seed : int, optional
        priors : dict, optional
            Overrides of the default priors: keys ``"fixed"``, ``"sd"``, ``"corr"``, ``"sigma"``,
            values :mod:`mixedppl.priors` objects (defaults: :mod:`mixedppl.bayes.pymc`).
        progressbar : bool
            PyMC's progress bar.
        **pm_kwargs
            Passed to ``pm.sample`` (``cores``, ``target_accept`` (default 0.9),
            ``nuts_sampler``...).

        Returns
        -------
        BayesResult
            ``.idata`` holds posterior, sample_stats, pointwise log_likelihood and observed_data.

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff"))
        >>> post = fit.sample(draws=200, tune=300, chains=2, cores=1, progressbar=False)
        >>> list(post.fe_params.index)
        ['(Intercept)']
        """
        import pymc as pm

        from .result import BayesResult
        model, used = self._pymc_model(priors)
        kw = {"target_accept": DEFAULT_TARGET_ACCEPT, "nuts_sampler": _nuts_sampler(), **pm_kwargs}
        idata_kwargs = {"log_likelihood": True, **kw.pop("idata_kwargs", {})}
        start = time.perf_counter()
        with model:
            idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                              progressbar=progressbar, idata_kwargs=idata_kwargs, **kw)
        return BayesResult(idata=idata, model=model, spec=self.spec, priors=used,
                           timing={"sample": time.perf_counter() - start})
