"""BayesResult: the posterior of a mixed model sampled with PyMC, with the frequentist accessors.

Every accessor is a posterior summary of the same quantity the frequentist result reports:
``fe_params`` (means and sds of β), ``varcorr`` (lme4's ``as.data.frame(VarCorr())`` layout,
posterior means with sds alongside), ``random_effects`` (posterior means per group, as ``ranef()``).
With random terms in the ziformula, ``zi_varcorr`` / ``zi_random_effects`` summarise
``sd_zi_<g>`` / ``b_zi_<g>`` as the frequentist result's accessors of the same names (glmmTMB's
``VarCorr(fit)$zi``, ``ranef(fit)$zi``), and ``varcorr`` gets the frequentist result's leading
``component`` column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cloudpickle
import numpy as np
import pandas as pd

from ..graph.linear_predictor import fixed_columns
from ..spec.reterm import value_labels
from ..spec.frame import as_pandas
from .pymc import _safe, labelled_terms, lmm_to_pymc

__all__ = ["BayesResult", "compare"]

#: the InferenceData group that ``to_netcdf`` stores the rest of a BayesResult in
STATE_GROUP = "mixedppl_state"

HDI_PROB = 0.94


@dataclass(eq=False)
class BayesResult:
    """The posterior of a mixed model (from a result's ``sample()``, :func:`mixedppl.bayes.sample.sample_model`).

    Attributes
    ----------
    idata : arviz.InferenceData
        posterior (named coords), sample_stats, log_likelihood (pointwise, ``y``), observed_data.
    model : pymc.Model
        The sampled model (``post.model``; extend it and sample again if you like).
    spec : ModelSpec
    priors : dict
        The priors used (:mod:`mixedppl.priors` objects).
    timing : dict
        Seconds spent sampling (``sample``).
    sampler : str
        The NUTS implementation that ran (``"nutpie"``, ``"pymc"``, ...).
    marginalized : bool
        Whether the random effects were integrated out while sampling (a marginalised LMM:
        ``b_<g>`` were then drawn from their conditional, :mod:`mixedppl.bayes.sample`).
    """

    idata: az.InferenceData
    model: object = field(repr=False)
    spec: object = field(repr=False)
    priors: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    sampler: str = "pymc"
    marginalized: bool = False

    # -- pickling --------------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        """Pickle state: the PyMC model goes through cloudpickle, since PyMC binds
        ``functools.partial`` objects as methods of its variables (for their LaTeX repr), which
        the standard pickle cannot save. The model holds graphs, not compiled functions
        (those are rebuilt when it is sampled or evaluated again)."""
        state = {k: v for k, v in self.__dict__.items() if k != "_explicit"}
        state["model"] = None if self.model is None else cloudpickle.dumps(self.model)
        return state

    def __setstate__(self, state: dict) -> None:
        model = state.get("model")
        if isinstance(model, bytes):
            state = {**state, "model": cloudpickle.loads(model)}
        state = {"sampler": "pymc", "marginalized": False, **state}
        self.__dict__.update(state)

    # -- draws -----------------------------------------------------------------------------------
    def _draws(self, var: str) -> np.ndarray:
        """(samples, ...) array of one posterior variable, chains stacked."""
        x = self.idata.posterior[var].values
        return x.reshape((-1,) + x.shape[2:])

    def _terms(self, part: str = "cond"):
        """(R's group label, the posterior variables' suffix, term) of ``part`` ("cond" / "zi")."""
        for label, pymc_label, t in labelled_terms(self.spec, part):
            yield label, _safe(pymc_label), t

    def _sd_corr(self, name: str, t) -> tuple[np.ndarray, np.ndarray]:
        """Draws of the SDs (S, ℓ) and correlation matrices (S, ℓ, ℓ) of one term."""
        sd = self._draws(f"sd_{name}").reshape(-1, t.n_cols)
        if t.n_cols == 1:
            return sd, np.ones((len(sd), 1, 1))
        return sd, self._draws(f"corr_{name}")

    def _vc_draws(self, part: str = "cond") -> list[tuple]:
        """(grp, var1, var2, vcov draws, sdcor draws) in ``varcorr`` row order (the residual
        row with the conditional part's)."""
        rows = []
        for label, name, t in self._terms(part):
            sd, corr = self._sd_corr(name, t)
            names = t.column_names
            rows += [(label, n, None, sd[:, i] ** 2, sd[:, i]) for i, n in enumerate(names)]
            for j in range(len(names)):
                for i in range(j + 1, len(names)):
                    r = corr[:, i, j]
                    rows.append((label, names[j], names[i], r * sd[:, i] * sd[:, j], r))
        if part == "cond" and "sigma" in self.idata.posterior:
            s = self._draws("sigma")
            rows.append(("Residual", None, None, s ** 2, s))
        return rows

    # -- accessors -------------------------------------------------------------------------------
    @property
    def fe_params(self) -> pd.DataFrame:
        """Posterior mean and sd of the fixed effects (index: lme4's names).

        Examples
        --------
        >>> post.fe_params.columns.tolist()  # doctest: +SKIP
        ['mean', 'sd']
        """
        b = self._draws("beta")
        return pd.DataFrame({"mean": b.mean(0), "sd": b.std(0, ddof=1)},
                            index=pd.Index(self.spec.fe_names))

    @property
    def varcorr(self) -> pd.DataFrame:
        """Posterior means in ``as.data.frame(VarCorr(fit))``'s layout, with ``vcov_sd``,
        ``sdcor_sd`` (posterior sds) alongside.

        With random terms in the ziformula, a leading ``component`` column as the frequentist
        result's: the conditional model's rows (``"cond"``), then the zero-inflation model's
        (``"zi"``; alone in :attr:`zi_varcorr`).

        Examples
        --------
        >>> post.varcorr.columns.tolist()  # doctest: +SKIP
        ['grp', 'var1', 'var2', 'vcov', 'sdcor', 'vcov_sd', 'sdcor_sd']
        """
        cond = self._vc_frame("cond")
        if not getattr(self.spec, "zi_terms", ()):
            return cond
        return pd.concat([cond.assign(component="cond"), self.zi_varcorr.assign(component="zi")],
                         ignore_index=True)[["component", *cond.columns]]

    @property
    def zi_varcorr(self) -> pd.DataFrame | None:
        """Posterior means of the ziformula's random-effect SDs / correlations (``sd_zi_<g>``,
        ``corr_zi_<g>``) in :attr:`varcorr`'s layout; None without random terms there.

        Examples
        --------
        >>> post.zi_varcorr["grp"].tolist()  # doctest: +SKIP
        ['site']
        """
        if not getattr(self.spec, "zi_terms", ()):
            return None
        return self._vc_frame("zi")

    def _vc_frame(self, part: str) -> pd.DataFrame:
        rows = [(g, a, b, v.mean(), s.mean(), v.std(ddof=1), s.std(ddof=1))
                for g, a, b, v, s in self._vc_draws(part)]
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor", "vcov_sd",
                                           "sdcor_sd"])

    def _by_group(self, stat, part: str = "cond") -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for _, name, t in self._terms(part):
            frame = pd.DataFrame(stat(self._draws(f"b_{name}")),
                                 index=pd.Index(t.levels, name=t.group), columns=t.column_names)
            out[t.group] = frame if t.group not in out else pd.concat([out[t.group], frame], axis=1)
        return out

    @property
    def random_effects(self) -> dict[str, pd.DataFrame]:
        """Posterior means of the random effects per grouping factor (levels × terms, as ``ranef``).

        Examples
        --------
        >>> post.random_effects["Subject"].shape  # doctest: +SKIP
        (18, 2)
        """
        return self._by_group(lambda b: b.mean(0))

    @property
    def random_effects_sd(self) -> dict[str, pd.DataFrame]:
        """Posterior sds of the random effects, laid out as :attr:`random_effects`.

        Examples
        --------
        >>> post.random_effects_sd["Subject"].shape  # doctest: +SKIP
        (18, 2)
        """
        return self._by_group(lambda b: b.std(0, ddof=1))

    @property
    def zi_random_effects(self) -> dict[str, pd.DataFrame]:
        """Posterior means of the ziformula's random effects (``b_zi_<g>``), laid out as the
        frequentist ``fit.zi_random_effects`` (glmmTMB's ``ranef(fit)$zi``); {} without them.

        Examples
        --------
        >>> post.zi_random_effects["site"].shape  # doctest: +SKIP
        (23, 1)
        """
        return self._by_group(lambda b: b.mean(0), "zi")

    @property
    def zi_random_effects_sd(self) -> dict[str, pd.DataFrame]:
        """Posterior sds of :attr:`zi_random_effects`."""
        return self._by_group(lambda b: b.std(0, ddof=1), "zi")

    # -- summaries -------------------------------------------------------------------------------
    def param_names(self) -> list[str]:
        """Posterior variables of the model parameters (not the random effects themselves).

        Examples
        --------
        >>> post.param_names()  # doctest: +SKIP
        ['beta', 'sd_Subject', 'corr_Subject', 'sigma']
        """
        def sd_corr(part):
            return [v for _, name, t in self._terms(part)
                    for v in [f"sd_{name}"] + ([f"corr_{name}"] if t.n_cols > 1 else [])]

        present = [v for v in ("sigma", "dispersion", "thresholds", "zi")
                   if v in self.idata.posterior]
        disp = ["disp"] if "disp" in self.idata.posterior else []
        return ["beta"] + sd_corr("cond") + present + sd_corr("zi") + disp

    def describe_priors(self) -> str:
        """The priors used, one line per parameter class.

        Examples
        --------
        >>> print(post.describe_priors())  # doctest: +SKIP
        Priors:
          fixed: Normal(mu=[298.5, 0], sigma=[140.8, 49.03])
          ...
        """
        lines = ["Priors:"] + [f"  {k}: {v}" for k, v in self.priors.items()]
        return "\n".join(lines)

    def _drop_redundant_corr(self, table: pd.DataFrame) -> pd.DataFrame:
        drop = []
        for _, name, t in [*self._terms("cond"), *self._terms("zi")]:
            names = t.column_names
            drop += [f"corr_{name}[{names[i]}, {names[j]}]" for i in range(len(names))
                     for j in range(len(names)) if i <= j]
        return table.drop(index=[d for d in drop if d in table.index])

    def summary(self, var_names: list[str] | None = None, verbose: bool = True) -> pd.DataFrame:
        """ArviZ summary (mean, sd, 94% HDI, mcse, ess, r_hat) of the parameters.

        Warns on divergences and on r_hat > 1.01; prints the priors used (``verbose``).

        Examples
        --------
        >>> post.summary().loc["sigma", "r_hat"] <= 1.01  # doctest: +SKIP
        True
        """
        import warnings

        import arviz as az
        with warnings.catch_warnings():  # the correlation matrices' constant diagonals
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            table = az.summary(self.idata, var_names=var_names or self.param_names(),
                               hdi_prob=HDI_PROB)
        table = self._drop_redundant_corr(table)
        n_div = self.n_divergences
        if n_div:
            warnings.warn(f"{n_div} divergent transitions: raise target_accept "
                          "(fit.sample(target_accept=0.95)) or reparametrise", RuntimeWarning,
                          stacklevel=2)
        bad = table.index[table["r_hat"] > 1.01].tolist()
        if bad:
            warnings.warn(f"r_hat > 1.01 for {bad}: sample longer or check the model",
                          RuntimeWarning, stacklevel=2)
        if verbose:
            print(self.describe_priors())
        return table

    @property
    def n_divergences(self) -> int:
        """Number of divergent transitions after tuning.

        Examples
        --------
        >>> post.n_divergences  # doctest: +SKIP
        0
        """
        return int(self.idata.sample_stats["diverging"].sum())

    def compare_with(self, fit) -> pd.DataFrame:
        """Frequentist estimate ± SE beside posterior mean, sd and 94% HDI, one row per parameter.

        Rows: fixed effects, random-effect SDs and correlations, residual SD (``sigma``), the
        family's dispersion or thresholds, and the zero-inflation / dispersion-formula
        coefficients (``zi: <column>`` on the logit scale, ``disp: <column>`` on log φ) and the
        ziformula's random-effect SDs / correlations (``zi sd <g>: <column>``). The
        frequentist SE is given for coefficients only (NaN for variance components).

        Examples
        --------
        >>> post.compare_with(fit).columns.tolist()  # doctest: +SKIP
        ['estimate', 'se', 'mean', 'sd', 'hdi_3%', 'hdi_97%']
        """
        labels = list(self.spec.fe_names)
        est, se = list(fit.fe_params.to_numpy()), list(fit.fe_bse.to_numpy())
        b = self._draws("beta")
        draws = [b[:, k] for k in range(b.shape[1])]
        freq = fit.varcorr
        for g, a, v2, est_sdcor, s in _vc_rows(self._vc_draws("cond"), freq, "cond"):
            labels.append("sigma" if g == "Residual" else
                          f"sd {g}: {a}" if v2 is None else f"corr {g}: {a}, {v2}")
            est.append(est_sdcor)
            se.append(np.nan)
            draws.append(s)
        if "dispersion" in self.idata.posterior and getattr(fit, "dispersion", None) is not None:
            labels.append(f"dispersion ({fit.family.dispersion})")
            est.append(fit.dispersion)
            se.append(fit.dispersion_se)
            draws.append(self._draws("dispersion"))
        if "thresholds" in self.idata.posterior and hasattr(fit, "thresholds"):
            a = self._draws("thresholds")
            for k, name in enumerate(fit.thresholds.index):
                labels.append(f"threshold {name}")
                est.append(fit.thresholds.iloc[k])
                se.append(fit.thresholds_bse.iloc[k])
                draws.append(a[:, k])
        part_est = _part_estimates(fit)
        for var in ("zi", "disp"):
            if var in self.idata.posterior and var in part_est:
                d = self._draws(var)
                for k, (name, e, s) in enumerate(zip(*part_est[var])):
                    labels.append(f"{var}: {name}")
                    est.append(e)
                    se.append(s)
                    draws.append(d[:, k])
            if var == "zi":
                for g, a, v2, est_sdcor, s in _vc_rows(self._vc_draws("zi"), freq, "zi"):
                    labels.append(f"zi sd {g}: {a}" if v2 is None else f"zi corr {g}: {a}, {v2}")
                    est.append(est_sdcor)
                    se.append(np.nan)
                    draws.append(s)
        import arviz as az
        hdi = np.array([az.hdi(d, hdi_prob=HDI_PROB) for d in draws])
        lo, hi = f"hdi_{50 * (1 - HDI_PROB):.3g}%", f"hdi_{100 - 50 * (1 - HDI_PROB):.3g}%"
        return pd.DataFrame({"estimate": est, "se": se, "mean": [d.mean() for d in draws],
                             "sd": [d.std(ddof=1) for d in draws], lo: hdi[:, 0], hi: hdi[:, 1]},
                            index=pd.Index(labels, name="parameter"))

    # -- saving ----------------------------------------------------------------------------------
    def to_netcdf(self, path) -> str:
        """Write the posterior and everything else of this result to one netCDF file.

        The InferenceData groups are written as ArviZ writes them (``az.from_netcdf`` reads the
        file too); the spec, priors, model and timings go, pickled, into one extra group
        (``mixedppl_state``), which :meth:`from_netcdf` reads back. Like any pickle, only load
        files you trust.

        Examples
        --------
        >>> post.to_netcdf("sleep.nc")  # doctest: +SKIP
        'sleep.nc'
        >>> mp.BayesResult.from_netcdf("sleep.nc").fe_params  # doctest: +SKIP
        """
        import warnings

        import xarray as xr
        blob = np.frombuffer(cloudpickle.dumps(self.__getstate__() | {"idata": None}), np.uint8)
        idata = self.idata.copy()
        with warnings.catch_warnings():  # a group outside ArviZ's schema, on purpose
            warnings.simplefilter("ignore", UserWarning)
            idata.add_groups({STATE_GROUP: xr.Dataset({"state": ("byte", blob)})})
        return idata.to_netcdf(str(path))

    @classmethod
    def from_netcdf(cls, path) -> "BayesResult":
        """Read a result written by :meth:`to_netcdf` (accessors, ``ppc``, ``predict`` work).

        Examples
        --------
        >>> post2 = mp.BayesResult.from_netcdf("sleep.nc")  # doctest: +SKIP
        """
        import warnings

        import arviz as az
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            idata = az.from_netcdf(str(path))
        if STATE_GROUP not in idata.groups():
            raise ValueError(f"{path} has no {STATE_GROUP!r} group: it was not written by "
                             "BayesResult.to_netcdf (read it with arviz.from_netcdf)")
        state = cloudpickle.loads(getattr(idata, STATE_GROUP)["state"].values.tobytes())
        groups = {}
        for g in idata.groups():  # read into memory and close the file (it may be rewritten)
            data = getattr(idata, g)
            if g != STATE_GROUP:
                groups[g] = data.load()
            data.close()
        idata = az.InferenceData(**groups)
        out = cls.__new__(cls)
        out.__setstate__({**state, "idata": idata})
        return out

    # -- model comparison ------------------------------------------------------------------------
    def loo(self, pointwise: bool = False, **kwargs):
        """PSIS-LOO of the pointwise log-likelihood (``arviz.loo``; conditional on the random
        effects, see :mod:`mixedppl.bayes.conditional`).

        Examples
        --------
        >>> post.loo().elpd_loo  # doctest: +SKIP
        -875.0
        """
        import arviz as az
        return az.loo(self.idata, pointwise=pointwise, **kwargs)

    def waic(self, pointwise: bool = False, **kwargs):
        """WAIC of the pointwise log-likelihood (``arviz.waic``).

        Examples
        --------
        >>> float(post.waic().iloc[0])  # doctest: +SKIP
        -874.2
        """
        import arviz as az
        return az.waic(self.idata, pointwise=pointwise, **kwargs)

    # -- predictive ------------------------------------------------------------------------------
    @property
    def predictive_model(self):
        """The model whose observed ``y`` the predictive draws come from: the sampled model, or
        for a marginalised LMM the explicit one (:func:`~mixedppl.bayes.pymc.lmm_to_pymc`, whose
        ``z_<g>`` the posterior holds)."""
        if not self.marginalized:
            return self.model
        if getattr(self, "_explicit", None) is None:
            self._explicit = lmm_to_pymc(self.spec, self.priors)
        return self._explicit

    def ppc(self, random_seed=None, progressbar: bool = False) -> az.InferenceData:
        """Posterior predictive draws of ``y``, added to :attr:`idata` (``az.plot_ppc`` works).

        Examples
        --------
        >>> az.plot_ppc(post.ppc())  # doctest: +SKIP
        """
        import pymc as pm
        with self.predictive_model:
            pm.sample_posterior_predictive(self.idata, extend_inferencedata=True,
                                           random_seed=random_seed, progressbar=progressbar)
        return self.idata

    def prior_predictive(self, draws: int = 500, random_seed=None) -> az.InferenceData:
        """Prior and prior predictive draws, added to :attr:`idata` (to check the priors).

        Examples
        --------
        >>> post.prior_predictive(200).prior_predictive["y"].shape  # doctest: +SKIP
        (1, 200, 180)
        """
        import pymc as pm
        with self.predictive_model:
            prior = pm.sample_prior_predictive(draws, random_seed=random_seed)
        self.idata.extend(prior)
        return self.idata

    def predict(self, newdata: pd.DataFrame, include_random: bool = True, random_seed=None,
                return_draws: bool = False) -> np.ndarray:
        """Posterior mean of the linear predictor (the posterior predictive mean) on new rows.

        Levels unseen in the data get, per posterior draw, a new random effect drawn from its prior
        N(0, Σ_k) at that draw's Σ_k (as bambi's ``sample_new_groups``).

        Parameters
        ----------
        newdata : DataFrame
        include_random : bool
            Add the random effects (otherwise Xβ + offset).
        random_seed : int, optional
            For the new levels' random effects.
        return_draws : bool
            Return all draws (samples × rows) instead of their mean.

        Examples
        --------
        >>> new = pd.DataFrame({"Days": [0, 5], "Subject": ["308", "999"]})  # doctest: +SKIP
        >>> post.predict(new).round(0)  # doctest: +SKIP
        array([254., 304.])
        """
        newdata = None if newdata is None else as_pandas(newdata, "newdata")
        X, offset = self.spec.fixed_design.transform(newdata)
        X = fixed_columns(np.asarray(X, float), self.spec)
        eta = self._draws("beta") @ X.T + (0.0 if offset is None else offset)
        if include_random:
            rng = np.random.default_rng(random_seed)
            for _, name, t in self._terms():
                eta = eta + self._re_draws(name, t, newdata, rng)
        return eta if return_draws else eta.mean(0)

    def _re_draws(self, name: str, t, newdata: pd.DataFrame, rng) -> np.ndarray:
        """(S, rows) contribution of one term; unseen levels drawn from N(0, Σ_k) per draw."""
        missing = [v for v in t.group_vars if v not in newdata.columns]
        if missing:
            raise ValueError(f"newdata lacks grouping column(s) {missing} of term '{t.group}'; "
                             "add them or use include_random=False")
        z = np.asarray(t.design.transform(newdata)[0], float)
        labels = [":".join(p) for p in zip(*[value_labels(newdata[v]) for v in t.group_vars])]
        b = self._draws(f"b_{name}")
        lookup = {lev: i for i, lev in enumerate(t.levels)}
        new = sorted({lab for lab in labels if lab not in lookup})
        if new:
            sd, corr = self._sd_corr(name, t)
            L = sd[:, :, None] * np.linalg.cholesky(corr)
            eps = rng.standard_normal((len(b), len(new), t.n_cols))
            b = np.concatenate([b, np.einsum("sgj,sij->sgi", eps, L)], axis=1)
            lookup.update({lab: len(t.levels) + k for k, lab in enumerate(new)})
        idx = np.array([lookup[lab] for lab in labels], dtype=int)
        return np.einsum("rj,srj->sr", z, b[:, idx])

    def __repr__(self) -> str:
        post = self.idata.posterior
        how = f"{self.sampler}, marginalised" if self.marginalized else self.sampler
        return (f"<BayesResult ({how}): {post.sizes['chain']} chains × {post.sizes['draw']} "
                f"draws, {self.n_divergences} divergences>")


def _vc_rows(vc_draws: list[tuple], freq: pd.DataFrame, part: str):
    """(grp, var1, var2, the fit's sdcor, the sdcor draws) of one part, the posterior's
    ``varcorr`` rows beside the frequentist's (whose ``component`` column, where present,
    separates the conditional and zero-inflation rows), matched by (grp, var1, var2). A
    posterior row the fit has no row for (the fixed zero correlations of a ``diag()`` term)
    is left out."""
    if "component" in freq.columns:
        freq = freq[freq["component"] == part]
    elif part != "cond":
        freq = freq.iloc[:0]

    def key(g, a, v2):     # the Residual row's var1 / var2 are None or NaN
        return (str(g), a if isinstance(a, str) else None, v2 if isinstance(v2, str) else None)

    estimates = {key(r["grp"], r["var1"], r["var2"]): r["sdcor"] for _, r in freq.iterrows()}
    for g, a, v2, _, s in vc_draws:
        k = key(g, a, v2)
        if k in estimates:
            yield g, a, v2, estimates[k], s


def _part_estimates(fit) -> dict:
    """``{"zi": (names, γ̂, SEs), "disp": (names, δ̂, SEs)}`` of a zero-inflated / dispersion-
    formula fit, on the PyMC model's scales (logit π; log φ, the family's own, not glmmTMB's
    ``fixef(fit)$disp`` scale); empty for any other fit."""
    fam = getattr(fit, "family", None)
    if not getattr(fam, "aux_designs", ()):
        return {}
    phi = np.asarray(fit.phi, float)
    V = getattr(fit, "vcov_beta_phi", None)
    se_all = (np.full(len(phi), np.nan) if V is None else
              np.sqrt(np.maximum(np.diag(V)[fit.spec.p:], 0.0)))
    n_zi, out = fam.n_zi, {}
    if fam.zi_names:
        out["zi"] = (list(fam.zi_names), phi[:n_zi], se_all[:n_zi])
    if fam.disp_names:
        out["disp"] = (list(fam.disp_names), phi[n_zi:], se_all[n_zi:])
    return out


def compare(*posts, ic: str = "loo", **named) -> pd.DataFrame:
    """Rank posteriors by expected log predictive density (``arviz.compare`` over their
    pointwise log-likelihoods): positional results are named ``model0``, ``model1``, ...

    Examples
    --------
    >>> mp.compare(post1, post2)  # doctest: +SKIP
    >>> mp.compare(correlated=post1, independent=post2, ic="waic")  # doctest: +SKIP
    """
    import arviz as az
    models = {f"model{k}": p for k, p in enumerate(posts)} | named
    if len(models) < 2:
        raise ValueError("compare needs at least two BayesResults")
    return az.compare({k: p.idata for k, p in models.items()}, ic=ic)
