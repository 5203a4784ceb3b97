r"""The zero-inflation and dispersion parts of a GLMM result (glmmTMB's ``fixef(fit)$zi`` and
``$disp``), as functions of the result: coefficient tables, per-row π and φ on the fitted rows
or new data, and the summary blocks in the layout of glmmTMB's ``print(summary(fit))``.

The coefficients are the tail of the fit's family parameters ``phi = (γ, δ)``
(:class:`~mixedppl.families.zi_disp.ZIDispFamily`); their standard errors come from the same
Hessian of the Laplace deviance as β's: :math:`\mathrm{vcov} = 2H^{-1}`. glmmTMB's dispersion
coefficients are ``tmb_disp_scale · δ`` (log σ² for the Gaussian, log shape for the Gamma), so
their SEs are ``|tmb_disp_scale|`` times ours.

References
----------
Brooks, M. E. et al. (2017). *The R Journal* 9(2), 378–400 (glmmTMB).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .summary import coef_block

__all__ = ["part_estimates", "part_table", "row_parts", "part_blocks", "part_tidy_rows"]


def part_estimates(fit, part: str) -> tuple[pd.Series, pd.Series] | None:
    """(estimates, SEs) of ``part`` (``"zi"``: logit scale; ``"disp"``: glmmTMB's scale), or
    None where the model has no such part.

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.glmer("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
    ...                family="poisson", ziformula="~ mined")
    >>> est, se = part_estimates(fit, "zi")
    >>> est.round(4).tolist(), se.round(4).tolist()   # glmmTMB: 1.1393, -1.7361 (0.2351, 0.2620)
    ([1.1393, -1.7361], [0.2351, 0.262])
    >>> part_estimates(fit, "disp") is None
    True
    """
    fam, p = fit.family, fit.spec.p
    n_zi = fam.n_zi
    names = list(fam.zi_names if part == "zi" else fam.disp_names)
    if not names:
        return None
    where = slice(0, n_zi) if part == "zi" else slice(n_zi, n_zi + len(names))
    est = np.asarray(fit.phi, float)[where]
    V = fit.vcov_beta_phi
    se = (np.full(len(names), np.nan) if V is None else
          np.sqrt(np.maximum(np.diag(V)[p:][where], 0.0)))
    if part == "disp":
        scale = fam.tmb_disp_scale
        est, se = scale * est, abs(scale) * se
    return (pd.Series(est, index=names, name=part),
            pd.Series(se, index=names, name=f"{part}_se"))


def part_table(fit, part: str) -> pd.DataFrame | None:
    """Estimate, Std. Error, z value, Pr(>|z|) of a part (glmmTMB's summary tables).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.glmer("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
    ...                family="poisson", ziformula="~ mined")
    >>> list(part_table(fit, "zi").columns)
    ['Estimate', 'Std. Error', 'z value', 'Pr(>|z|)']
    """
    got = part_estimates(fit, part)
    if got is None:
        return None
    est, se = got
    z = est / se
    return pd.DataFrame({"Estimate": est.to_numpy(), "Std. Error": se.to_numpy(),
                         "z value": z.to_numpy(), "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z))},
                        index=est.index)


def _design(spec, key: str, newdata: pd.DataFrame | None) -> np.ndarray | None:
    if key not in spec.aux_designs:
        return None
    if newdata is None:
        return spec.aux_designs[key]
    transform = spec.aux_transforms.get(key)
    if transform is None:            # the constant dispersion of a model without dispformula
        return np.ones((len(newdata), 1))
    return np.asarray(transform.transform(newdata)[0], float)


def row_parts(fit, newdata: pd.DataFrame | None = None):
    """(π, φ) per row on the fitted rows or ``newdata``: the structural-zero probability (None
    without a zero part) and the dispersion on the family's natural scale (a number for a
    family without a dispersion formula, None without dispersion).

    Examples
    --------
    >>> import mixedppl as mp
    >>> sal = mp.datasets.load("salamanders")
    >>> fit = mp.glmer("count ~ mined + (1 | site)", sal, family="poisson", ziformula="~ mined")
    >>> zprob, disp = row_parts(fit, sal.head(4))
    >>> zprob.round(4).tolist(), disp                   # mined: yes, yes, yes, no
    ([0.7576, 0.7576, 0.7576, 0.3551], None)
    """
    spec, fam = fit.spec, fit.family
    if not spec.aux_designs:
        return None, fam.row_dispersion(fit.phi, {})
    aux = {k: _design(spec, k, newdata) for k in spec.aux_designs}
    return fam.zero_prob(fit.phi, aux), fam.row_dispersion(fit.phi, aux)


def part_blocks(fit) -> list[str]:
    """The summary's "Zero-inflation model" and "Dispersion model" blocks (glmmTMB's print).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.glmer("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
    ...                family="poisson", ziformula="~ mined")
    >>> part_blocks(fit)[1]
    'Zero-inflation model:'
    """
    lines = []
    titles = {"zi": "Zero-inflation model:",
              "disp": f"Dispersion model (glmmTMB's scale, {_disp_scale_text(fit.family)}):"}
    for part in ("zi", "disp"):
        table = part_table(fit, part)
        if table is None or (part == "disp" and not fit.spec.aux_designs):
            continue
        lines += ["", titles[part], coef_block(table, "Pr(>|z|)")]
    return lines


def _disp_scale_text(family) -> str:
    scale = family.tmb_disp_scale
    what = family.dispersion
    if scale == 1.0:
        return f"log {what}"
    return f"{scale:g}·log {what}"


def part_tidy_rows(fit, conf_int: bool, conf_level: float) -> pd.DataFrame:
    """broom.mixed's ``tidy(glmmTMB)`` rows of the zi and dispersion parts (``component``
    ``"zi"`` / ``"disp"``, ``effect = "fixed"``).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.glmer("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
    ...                family="poisson", ziformula="~ mined")
    >>> part_tidy_rows(fit, False, 0.95)[["component", "term"]].values.tolist()
    [['zi', '(Intercept)'], ['zi', 'minedno']]
    """
    rows = []
    q = stats.norm.ppf(0.5 + conf_level / 2)
    for part in ("zi", "disp"):
        table = part_table(fit, part)
        if table is None:
            continue
        for term, r in table.iterrows():
            row = {"effect": "fixed", "component": part, "group": None, "term": term,
                   "estimate": r["Estimate"], "std_error": r["Std. Error"],
                   "statistic": r["z value"], "p_value": r["Pr(>|z|)"]}
            if conf_int:
                row["conf_low"] = r["Estimate"] - q * r["Std. Error"]
                row["conf_high"] = r["Estimate"] + q * r["Std. Error"]
            rows.append(row)
    return pd.DataFrame(rows)
