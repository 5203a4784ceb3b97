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
from scipy import special

from types import SimpleNamespace

from ..graph.linear_predictor import random_contribution
from .summary import coef_block, groups_line, random_effects_table
from .varcorr import varcorr_frame

__all__ = ["part_estimates", "part_table", "row_parts", "part_blocks", "part_tidy_rows",
           "zi_random_part", "zi_varcorr", "zi_random_effects", "zi_random_blocks"]


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
                         "z value": z.to_numpy(), "Pr(>|z|)": 2 * special.ndtr(-np.abs(z))},
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


def zi_random_part(fit, newdata: pd.DataFrame | None = None) -> np.ndarray | None:
    r""":math:`Z_{zi} b_{zi}` of the ziformula's random terms on the fitted rows or ``newdata``
    (levels unseen in the fit contribute 0, as for the conditional terms); None without them.

    Examples
    --------
    >>> import mixedppl as mp
    >>> sal = mp.datasets.load("salamanders")
    >>> fit = mp.glmer("count ~ mined + (1 | site)", sal, family="poisson",
    ...                ziformula="~ mined + (1 | site)")
    >>> zi_random_part(fit, sal.head(2)).round(4).tolist()     # ranef(fit)$zi: VF-1, VF-2
    [-0.2031, -1.291]
    """
    spec, rec = fit.spec, fit.record
    if not getattr(spec, "zi_terms", ()):
        return None
    n = spec.n if newdata is None else len(newdata)
    out = np.zeros(n)
    for t, b in zip(spec.zi_terms, rec.zi_b):
        out += (np.einsum("ij,ij->i", t.z, b[t.codes]) if newdata is None
                else random_contribution(t, b, newdata))
    return out


def zi_varcorr(fit) -> pd.DataFrame | None:
    """glmmTMB's ``VarCorr(fit)$zi`` in lme4's ``as.data.frame(VarCorr())`` layout (None
    without random terms in the ziformula).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.glmer("count ~ mined + (1 | site)", mp.datasets.load("salamanders"),
    ...                family="poisson", ziformula="~ mined + (1 | site)")
    >>> zi_varcorr(fit)["sdcor"].round(4).tolist()        # glmmTMB: 0.6477
    [0.6477]
    """
    if not getattr(fit.spec, "zi_terms", ()):
        return None
    return varcorr_frame(fit.spec.zi_terms, fit.record.zi_covs, None)


def zi_random_effects(fit, se: bool = False) -> dict[str, pd.DataFrame]:
    """glmmTMB's ``ranef(fit)$zi`` (``se=True``: their conditional SDs), levels × columns per
    grouping factor; {} without random terms in the ziformula."""
    rec, out = fit.record, {}
    for t, b, v in zip(getattr(fit.spec, "zi_terms", ()), rec.zi_b, rec.zi_condvar):
        vals = np.sqrt(np.clip(np.einsum("gii->gi", v), 0, None)) if se else b
        frame = pd.DataFrame(vals, index=pd.Index(t.levels, name=t.group), columns=t.column_names)
        out[t.group] = frame if t.group not in out else pd.concat([out[t.group], frame], axis=1)
    return out


def zi_random_blocks(fit) -> list[str]:
    """The summary's zero-inflation random-effects block, as glmmTMB prints it under "Random
    effects:" (empty without random terms in the ziformula)."""
    terms = getattr(fit.spec, "zi_terms", ())
    if not terms:
        return []
    view = SimpleNamespace(spec=SimpleNamespace(terms=terms), covs=fit.record.zi_covs)
    return ["", "Zero-inflation model:", random_effects_table(view, residual=False),
            groups_line({t.group: t.n_levels for t in terms}, fit.nobs)]


def row_parts(fit, newdata: pd.DataFrame | None = None, include_random: bool = True):
    """(π, φ) per row on the fitted rows or ``newdata``: the structural-zero probability (None
    without a zero part; with the ziformula's random terms unless ``include_random=False``)
    and the dispersion on the family's natural scale (a number for a family without a
    dispersion formula, None without dispersion).

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
    if include_random:
        aux["zi_re"] = zi_random_part(fit, newdata)
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
    q = special.ndtri(0.5 + conf_level / 2)
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
