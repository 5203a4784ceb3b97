"""Test methods of LMM results: Kenward–Roger, type III F tests, refit/update, simulate."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ..core.exceptions import ModelSpecError

__all__ = ["LMMTestsMixin"]


class LMMTestsMixin:
    """Methods added to :class:`~mixedppl.results.lmm.LMMResult`."""

    # -- Kenward–Roger ---------------------------------------------------------------------------
    @cached_property
    def _kr_adjusted(self):
        from .kenward_roger import kr_adjusted
        return kr_adjusted(self)

    @cached_property
    def vcov_beta_kr(self) -> np.ndarray:
        r"""Kenward–Roger adjusted covariance of β̂ (pbkrtest's ``vcovAdj``).

        :math:`\Phi_A = \Phi + 2\Phi\,[\sum_{rs} W_{rs}(Q_{rs} - P_r\Phi P_s)]\,\Phi`; see
        :mod:`mixedppl.inference.kenward_roger` (Kenward & Roger 1997). REML fits with n ≤ 5000.

        Examples
        --------
        >>> import mixedppl as mp
        >>> pen = mp.datasets.load("penicillin")
        >>> fit = mp.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
        >>> round(float(fit.vcov_beta_kr[0, 0]) ** 0.5, 4)
        0.8086
        """
        return self._kr_adjusted.phi_adj

    @cached_property
    def df_kr(self) -> pd.Series:
        """Kenward–Roger denominator df of each coefficient's t test (pbkrtest's ``Lb_ddf``).

        Examples
        --------
        >>> import mixedppl as mp
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", mp.SingularFitWarning)
        ...     fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff2"))
        >>> fit.df_kr.round(3).tolist(), fit.df.round(3).tolist()
        ([5.0], [29.0])
        """
        from .kenward_roger import kr_ddf
        p = self.spec.p
        df = [kr_ddf(self._kr_adjusted, np.eye(p)[j:j + 1], q=1)[0] for j in range(p)]
        return pd.Series(df, index=self.spec.fe_names, name="df")

    # -- F tests ---------------------------------------------------------------------------------
    def anova(self, ddf: str = "Satterthwaite") -> pd.DataFrame:
        r"""lmerTest's type III ANOVA table of the fixed terms.

        One F test per term of :math:`L_T\beta = 0`, :math:`L_T` lmerTest's type III contrasts
        (type I with a single term). ``ddf="Satterthwaite"``: :math:`F = \frac1q\sum_m
        (p_m^\top L\hat\beta)^2/d_m` over the eigenpairs of :math:`LV_\beta L^\top`, df combined
        from the per-row Satterthwaite df. ``ddf="Kenward-Roger"``: pbkrtest's scaled F with
        the adjusted covariance. See :mod:`mixedppl.inference.ftests` (Kuznetsova et al. 2017,
        J. Stat. Softw. 82(13)).

        Parameters
        ----------
        ddf : {"Satterthwaite", "Kenward-Roger"}

        Returns
        -------
        DataFrame
            Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F), one row per term (none for an
            intercept-only model).

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> round(float(fit.anova().loc["Days", "F value"]), 3)
        45.853
        """
        from .ftests import anova_table
        return anova_table(self, ddf)

    # -- refits ----------------------------------------------------------------------------------
    def refit(self, newresp, control=None):
        """The same model fitted to a new response (lme4's ``refit``), reusing the compiled model.

        Parameters
        ----------
        newresp : array-like (n,)
            One finite number per row used in the fit.
        control : LmerControl, optional

        Returns
        -------
        LMMResult

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> fit2 = fit.refit(fit.spec.y * 2)
        >>> round(float(fit2.fe_params["Days"] / fit.fe_params["Days"]), 6)
        2.0
        """
        from ..fit.lmm_fit import fit_lmm
        from ..fit.lmm_objective import LMMObjective
        if isinstance(newresp, (pd.DataFrame, str)) or np.ndim(newresp) != 1:
            raise ModelSpecError("newresp must be a one-dimensional array of numbers "
                                 f"(one per row used in the fit, {self.spec.n})")
        spec = self.spec.with_response(np.asarray(newresp))
        objective = LMMObjective(spec, self.reml, structure=self.objective.structure)
        return fit_lmm(spec, reml=self.reml, control=control, objective=objective)

    def update(self, formula: str, data: pd.DataFrame | None = None, **kwargs):
        """Refit with a formula derived from this one (R's ``update``: ``"~ . - Days"``).

        ``.`` stands for the fitted formula's side; ``. - term``, ``. + term``, ``~ . - (1 | g)``
        and a new response (``log(.) ~ .``) are understood. The data, weights, offset and
        contrasts of the original fit are reused unless given.

        Parameters
        ----------
        formula : str
        data : DataFrame, optional
            Data to refit on (default: the data the model was fitted to).
        **kwargs
            Passed to :func:`mixedppl.lmer` (``reml`` defaults to this fit's).

        Examples
        --------
        >>> import mixedppl as mp
        >>> d = mp.datasets.load("sleepstudy")
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", d)
        >>> fit.update("~ . - Days").spec.formula
        'Reaction ~ (1 + Days | Subject)'
        """
        from ..api import lmer
        from .simulate import update_formula
        if data is None:
            data = self.spec.data
            for key, value in self.spec.build_kwargs.items():
                kwargs.setdefault(key, value)
        if not isinstance(data, pd.DataFrame):
            raise ModelSpecError("update() needs data: pass data=<DataFrame>")
        kwargs.setdefault("reml", self.reml)
        return lmer(update_formula(self.spec, formula), data, **kwargs)

    def simulate(self, nsim: int = 1, seed=None) -> np.ndarray:
        r"""New responses from the fitted model, as lme4's ``simulate`` (``use.u = FALSE``).

        :math:`y^* = X\hat\beta + o + \sum_k Z_k u_k + \varepsilon` with new
        :math:`u_{k,g} \sim N(0,\hat\Sigma_k)` and :math:`\varepsilon_i\sim N(0,\hat\sigma^2/w_i)`.

        Parameters
        ----------
        nsim : int
        seed : int or numpy Generator, optional

        Returns
        -------
        ndarray (n, nsim)

        Examples
        --------
        >>> import mixedppl as mp
        >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
        >>> fit.simulate(nsim=3, seed=1).shape
        (180, 3)
        """
        from .simulate import simulate_responses
        return simulate_responses(self, nsim, seed)
