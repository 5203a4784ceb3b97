"""One progress bar for long work (bootstrap refits, profile intervals, Dask passes, Cox
profiles): tqdm's ``auto`` bar, a text bar in terminals and a widget in notebooks, off with
``progress=False``."""

from __future__ import annotations

import warnings

__all__ = ["progress_bar"]


def progress_bar(total: int | None, desc: str, show: bool = True):
    """A tqdm bar over ``total`` steps (a counter when ``total`` is None; disabled when ``show``
    is False).

    Examples
    --------
    >>> bar = progress_bar(3, "profile")            # drawn on stderr
    >>> for _ in range(3):
    ...     _ = bar.update(1)
    >>> bar.n, bar.disable
    (3, False)
    >>> bar.close()
    >>> progress_bar(3, "profile", show=False).disable
    True
    """
    if not show:   # tqdm.auto is not imported: in a kernel without ipywidgets it warns
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, disable=True, leave=False)
    with warnings.catch_warnings():
        # a kernel without ipywidgets: tqdm.auto warns (TqdmWarning) and draws a text bar
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=False)
