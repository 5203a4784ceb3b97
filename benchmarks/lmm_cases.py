"""The benchmark cases, and the data and design pieces each tool needs (no mixedppl import here).

Every case is one REML linear mixed model. The peers get the same data that
``mixedppl.datasets.load`` reads (the package's bundled CSVs, factors as strings) or the
synthetic CSV copied into ``benchmarks/data/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
BUNDLED = HERE.parent / "mixedppl" / "datasets" / "data"


@dataclass(frozen=True)
class Case:
    """One benchmark model.

    ``random`` lists ``(grouping factor, slope columns)``; a grouping factor ``"a:b"`` is the
    interaction of the columns ``a`` and ``b``. ``fixed`` lists the fixed-effect columns after
    the intercept (a factor column gets treatment contrasts against its first level).
    """

    name: str
    formula: str
    dataset: str | None  # name for mixedppl.datasets.load, or None for ``csv``
    csv: Path
    response: str
    fixed: tuple[str, ...]
    random: tuple[tuple[str, tuple[str, ...]], ...]
    factors: tuple[str, ...] = field(default=())


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case("sleepstudy", "Reaction ~ Days + (Days | Subject)", "sleepstudy",
             BUNDLED / "sleepstudy.csv", "Reaction", ("Days",), (("Subject", ("Days",)),),
             ("Subject",)),
        Case("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin",
             BUNDLED / "penicillin.csv", "diameter", (), (("plate", ()), ("sample", ())),
             ("plate", "sample")),
        Case("insteval", "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)", "insteval",
             BUNDLED / "insteval.csv", "y", ("service",),
             (("s", ()), ("d", ()), ("dept:service", ())), ("s", "d", "dept", "service")),
        Case("synth100k", "y ~ 1 + x + (1 + x | subject) + (1 | item)", None,
             HERE / "data" / "synth_crossed_100k.csv", "y", ("x",),
             (("subject", ("x",)), ("item", ())), ("subject", "item")),
    )
}


def load(case: Case) -> pd.DataFrame:
    """The case's data, factor columns as strings (level order is irrelevant to the fit)."""
    return pd.read_csv(case.csv, dtype={f: str for f in case.factors})


def group_labels(df: pd.DataFrame, group: str) -> np.ndarray:
    """Labels of a grouping factor; ``"a:b"`` gives ``"<a>:<b>"`` as lme4's interaction does."""
    cols = group.split(":")
    labels = df[cols[0]].astype(str)
    for c in cols[1:]:
        labels = labels + ":" + df[c].astype(str)
    return labels.to_numpy()


def fixed_matrix(case: Case, df: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Fixed-effects design matrix (intercept first, treatment contrasts) and column names."""
    columns, names = [np.ones(len(df))], ["(Intercept)"]
    for col in case.fixed:
        if col in case.factors:
            levels = sorted(df[col].unique())
            for lev in levels[1:]:
                columns.append((df[col] == lev).to_numpy(float))
                names.append(f"{col}{lev}")
        else:
            columns.append(df[col].to_numpy(float))
            names.append(col)
    return np.column_stack(columns), names


def plain_name(group: str) -> str:
    """A column name for a grouping factor, for tools that do not parse ``a:b``."""
    return group.replace(":", "_")
