"""Datasets bundled with mixedppl, exported from R (lme4, ordinal) with R's factor level order.

Examples
--------
>>> import mixedppl as mp
>>> df = mp.datasets.load("sleepstudy")
>>> df.shape
(180, 3)
>>> sorted(mp.datasets.names())[:3]
['cake', 'cbpp', 'dyestuff']
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import pandas as pd

__all__ = ["load", "names"]

_ALIASES = {"instEval": "insteval", "InstEval": "insteval", "Dyestuff": "dyestuff",
            "Dyestuff2": "dyestuff2", "Penicillin": "penicillin", "Pastes": "pastes"}


def _data_dir():
    return resources.files(__name__).joinpath("data")


@lru_cache(maxsize=1)
def _factor_levels() -> dict:
    return json.loads(_data_dir().joinpath("factor_levels.json").read_text())


def names() -> list[str]:
    """Names of the bundled datasets (each loadable with :func:`load`)."""
    return sorted(p.name[:-4] for p in _data_dir().iterdir() if p.name.endswith(".csv"))


def load(name: str) -> pd.DataFrame:
    """Load a bundled dataset as a fresh DataFrame.

    Factors are pandas Categoricals with R's level order (``ordered=True`` where R's factor is
    ordered, e.g. ``cake.temperature`` and ``wine.rating``), so formulas give the same columns,
    contrasts and level labels as in R.

    Parameters
    ----------
    name : str
        Dataset name, case-insensitive: one of :func:`names` (``"sleepstudy"``, ``"dyestuff"``,
        ``"dyestuff2"``, ``"penicillin"``, ``"pastes"``, ``"cake"``, ``"insteval"``, ``"cbpp"``,
        ``"grouseticks"``, ``"wine"``; glmmTMB's ``"salamanders"`` and ``"owls"``; survival's ``"kidney"`` and ``"rats"``).

    Returns
    -------
    pandas.DataFrame
    """
    key = _ALIASES.get(name, name).lower()
    available = names()
    if key not in available:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available)}")
    levels = _factor_levels().get(key, {})
    dtypes = {col: str for col in levels}
    with _data_dir().joinpath(f"{key}.csv").open("r") as fh:
        df = pd.read_csv(fh, dtype=dtypes)
    for col, info in levels.items():
        if col in df.columns:
            df[col] = pd.Categorical(df[col], categories=info["levels"], ordered=info["ordered"])
    return df
