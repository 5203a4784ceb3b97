"""The model frame: which rows and columns a model uses, checked before anything is built.

As R's ``model.frame`` with ``na.action = na.omit``: rows with a missing value in any column the
formula uses are dropped (and the number is reported); the user's DataFrame is never modified.
"""

from __future__ import annotations

import difflib
import numbers
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..core.dask import is_dask_collection
from ..core.exceptions import DataWarning, ModelSpecError

__all__ = ["as_pandas", "check_arguments", "check_columns", "check_finite", "model_frame",
           "numeric_vector", "check_na_action", "missing_rows", "report_missing", "clean_frame"]


def as_pandas(data, argument: str = "data", who: str = "") -> pd.DataFrame:
    """The user's table as a pandas DataFrame: pandas as is, any eager table narwhals reads
    (polars, pyarrow, modin, cuDF …) converted through narwhals.

    Column types carry over as narwhals maps them, strings stay strings and nulls become missing
    values (dropped as R's ``na.omit`` by the model frame). A polars ``Enum`` becomes a factor
    with the Enum's level order; a polars ``Categorical`` or an Arrow dictionary column a factor
    with sorted levels (as R's ``factor()``). Neither is an *ordered* factor: as predictors they
    get treatment contrasts; an ordinal response from them needs ``levels=[...]`` in ``clmm``.

    Parameters
    ----------
    data
        A pandas DataFrame or any eager DataFrame narwhals supports.
    argument : str
        The argument's name, for the error message (``"data"``, ``"newdata"``).
    who : str
        The function called, for the error message.

    Returns
    -------
    DataFrame

    Raises
    ------
    ModelSpecError
        For anything that is not such a table (a dict, an array, a lazy frame).

    Examples
    --------
    >>> import pyarrow as pa
    >>> frame = as_pandas(pa.table({"y": [1.0, 2.0], "g": ["a", "b"]}))
    >>> type(frame).__name__, frame["y"].tolist(), frame["g"].tolist()
    ('DataFrame', [1.0, 2.0], ['a', 'b'])

    References
    ----------
    narwhals: https://narwhals-dev.github.io/narwhals/ (``from_native(..., eager_only=True)``).
    """
    if isinstance(data, pd.DataFrame):
        return data
    where = f"{who}: " if who else ""
    hint = (f"{where}{argument} must be a DataFrame (pandas, polars, pyarrow or another table "
            f"narwhals reads), got a {type(data).__name__}")
    if isinstance(data, (dict, list, tuple, np.ndarray, pd.Series, str)) or data is None:
        raise ModelSpecError(hint + "; e.g. pd.DataFrame(...) of your columns")
    try:
        import narwhals as nw
        frame = nw.from_native(data, eager_only=True)
    except (ImportError, TypeError) as err:
        lazy = " (a lazy frame: call .collect() first)" if "Lazy" in type(data).__name__ else ""
        raise ModelSpecError(f"{hint}{lazy}") from None
    out = frame.to_pandas()
    out.columns = [str(c) for c in out.columns]
    for name, dtype in zip(out.columns, frame.schema.dtypes()):
        if isinstance(dtype, (nw.Enum, nw.Categorical)) and isinstance(
                out[name].dtype, pd.CategoricalDtype):
            # An Enum keeps its declared level order; a Categorical (or an Arrow dictionary)
            # has no meaningful order, so its levels are sorted, as R's factor() sorts strings.
            # Neither is an ordered factor: predictors get treatment contrasts, not contr.poly.
            cats = out[name].cat.categories
            levels = list(cats) if isinstance(dtype, nw.Enum) else sorted(cats)
            out[name] = pd.Categorical(out[name], categories=levels, ordered=False)
    return out


def check_arguments(formula, data, who: str) -> pd.DataFrame:
    """One-line errors for a formula that is not a string or data that is not a table; the data
    as a pandas DataFrame (:func:`as_pandas`: polars and pyarrow tables are read by narwhals).

    The message never prints the data (a swapped call would otherwise show all of it).

    Parameters
    ----------
    formula, data
        The first two arguments the user passed.
    who : str
        The function called (``"lmer"``, ``"glmer"``, ``"clmm"``, ``"Model"``).
    """
    if not isinstance(formula, str) and isinstance(data, str):
        raise ModelSpecError(f"{who}(formula, data): the arguments are swapped — the formula "
                             f"comes first, e.g. mp.{who}({data!r}, data)")
    if not isinstance(formula, str):
        raise ModelSpecError(f"{who}: formula must be a string like 'y ~ x + (1 | g)', got a "
                             f"{type(formula).__name__}")
    if is_dask_collection(data) and hasattr(data, "columns"):
        return data  # a Dask DataFrame: checked partition-wise by spec/dask_spec.py
    return as_pandas(data, "data", who)


def check_columns(data: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    """Raise a ModelSpecError naming each unknown column and suggesting close matches."""
    known = [str(c) for c in data.columns]
    duplicated = set(data.columns[data.columns.duplicated()])
    for col in columns:
        if col in duplicated:
            raise ModelSpecError(
                f"column {col!r} used in {where} appears {known.count(col)} times in the data; "
                "rename or drop the duplicates (e.g. data.loc[:, ~data.columns.duplicated()])")
        if col not in data.columns:
            close = difflib.get_close_matches(col, known, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ModelSpecError(
                f"column {col!r} used in {where} is not in the data.{hint} "
                f"Available columns: {', '.join(known[:20])}{' …' if len(known) > 20 else ''}")


def model_frame(data: pd.DataFrame, columns: list[str], na_action: str = "omit",
                extra_mask: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Select the used columns and drop incomplete rows.

    Parameters
    ----------
    data : DataFrame
        The user's data (not modified).
    columns : list of str
        Columns the model uses (already checked to exist).
    na_action : {"omit", "exclude", "raise"}
        ``"omit"`` drops rows with missing values and warns how many; ``"exclude"`` (R's
        ``na.exclude``) drops them the same way, the results then padding per-row outputs with
        NaN back to the user's rows; ``"raise"`` raises instead.
    extra_mask : ndarray of bool, optional
        Further rows to treat as missing (e.g. missing weights).

    Returns
    -------
    frame : DataFrame
        A copy of the used columns on the kept rows (index reset).
    keep : ndarray of bool
        Which rows of ``data`` were kept.
    """
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise ModelSpecError("the data has no rows")
    check_na_action(na_action)
    cols = list(dict.fromkeys(columns))
    bad, counts = missing_rows(data, cols, extra_mask)
    report_missing(counts, int(bad.sum()), len(data), na_action, stacklevel=5)
    return clean_frame(data, cols, bad), ~bad


def check_na_action(na_action: str) -> None:
    """Raise for an ``na_action`` other than ``"omit"``, ``"exclude"``, ``"raise"``."""
    if na_action not in ("omit", "exclude", "raise"):
        raise ModelSpecError(f"na_action must be 'omit', 'exclude' or 'raise', got {na_action!r}")


def missing_rows(data: pd.DataFrame, cols: list[str], extra_mask: np.ndarray | None = None
                 ) -> tuple[np.ndarray, dict[str, int]]:
    """Rows with a missing value in ``cols`` (or flagged by ``extra_mask``) and the number of
    missing values per column (only columns that have some)."""
    missing = data[cols].isna().to_numpy() if cols else np.zeros((len(data), 0), bool)
    bad = missing.any(axis=1)
    if extra_mask is not None:
        bad = bad | extra_mask
    counts = {c: int(missing[:, i].sum()) for i, c in enumerate(cols) if missing[:, i].any()}
    return bad, counts


def report_missing(counts: dict[str, int], n_bad: int, n_rows: int, na_action: str,
                   stacklevel: int = 4) -> None:
    """The NA policy's message: an error for ``"raise"`` or when every row is missing, else a
    warning with the number of rows dropped (the same text for pandas and Dask input, where
    ``counts`` are summed over the partitions)."""
    if not n_bad:
        return
    detail = ", ".join(f"{c}: {k}" for c, k in counts.items()) or "weights/offset"
    if na_action == "raise":
        raise ModelSpecError(f"missing values in the columns used ({detail}); "
                             "use na_action='omit' or 'exclude' to drop those rows")
    if n_bad >= n_rows:
        raise ModelSpecError(f"every row has a missing value in a used column ({detail})")
    warnings.warn(f"{n_bad} row(s) with missing values dropped ({detail})",
                  DataWarning, stacklevel=stacklevel)


def clean_frame(data: pd.DataFrame, cols: list[str], bad: np.ndarray) -> pd.DataFrame:
    """A copy of ``cols`` on the rows not ``bad`` (index reset), each column checked: dates and
    ±inf refused, object columns of numbers read as floats."""
    frame = data.loc[~bad, cols].reset_index(drop=True).copy()
    for col in cols:
        frame[col] = _column_values(frame[col], col)
    return frame


_TIME_HINT = ("convert it to a number (e.g. days since a date: (d[{c!r}] - d[{c!r}].min()).dt.days) "
              "or to a category (d[{c!r}].astype(str) or .astype('category'))")


def _column_values(col: pd.Series, name: str) -> pd.Series:
    """Refuse dates and ±inf; turn an object column holding only numbers into floats."""
    if (pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col)
            or isinstance(col.dtype, pd.PeriodDtype)):
        raise ModelSpecError(f"column {name!r} holds dates/times (dtype {col.dtype}), which a "
                             f"model cannot use directly: {_TIME_HINT.format(c=name)}")
    if col.dtype == object:
        values = col.dropna()
        if len(values) and all(isinstance(v, (pd.Timestamp, np.datetime64, pd.Timedelta,
                                              np.timedelta64)) or hasattr(v, "isoformat")
                               for v in values):
            raise ModelSpecError(f"column {name!r} holds dates/times (python objects), which a "
                                 f"model cannot use directly: {_TIME_HINT.format(c=name)}")
        if len(values) and all(isinstance(v, numbers.Number) and not isinstance(v, (bool, np.bool_))
                               for v in values):
            warnings.warn(f"column {name!r} has dtype object but holds only numbers: used as "
                          "numeric (float); convert it with pd.to_numeric to silence this, or "
                          "with .astype(str) to use it as a factor", DataWarning, stacklevel=6)
            col = col.astype(float)
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        check_finite(col.to_numpy(dtype=float), f"column {name!r}")
    return col


def check_finite(values: np.ndarray, what: str) -> None:
    """Raise a ModelSpecError naming ``what`` and how many rows are ±inf.

    Parameters
    ----------
    values : ndarray
        Numeric values (NaN is allowed: missing values are handled elsewhere).
    what : str
        How the user knows these values, e.g. ``"column 'Days'"``.
    """
    n_inf = int(np.isinf(values).sum())
    if n_inf:
        raise ModelSpecError(
            f"{what} has {n_inf} infinite value(s) (±inf) in the rows used; a model needs finite "
            "values — fix them, or set them to NaN to drop those rows")


def numeric_vector(values, name: str, n: int) -> np.ndarray:
    """A float vector of length n from a column or array, with a clear error otherwise."""
    if isinstance(values, pd.Series) and not (pd.api.types.is_numeric_dtype(values)
                                              or pd.api.types.is_bool_dtype(values)):
        raise ModelSpecError(f"{name} must be numeric, but column has dtype {values.dtype}; "
                             "convert it (e.g. pd.to_numeric) or use a numeric column")
    arr = np.asarray(values, dtype=float) if not isinstance(values, pd.Series) \
        else values.to_numpy(dtype=float)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ModelSpecError(f"{name} must have one value per row ({n}), got shape {arr.shape}")
    return arr
