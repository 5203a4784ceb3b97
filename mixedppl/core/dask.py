"""Dask plumbing shared by every layer: recognising a Dask collection and a tree reduction.

Dask is optional (``pip install mixedppl[dask]``): nothing here imports it at module scope, so
``import mixedppl`` never imports dask; :func:`require_dask` imports it when a Dask object has been
passed, with an error that says how to install it.

:func:`tree_reduce` is the one map-reduce over the partitions of a Dask DataFrame: each partition
is mapped to a small value (a cross-product block, a level set) on the workers, and the values are
combined pairwise in a tree of fan-in ``split_every`` (as ``dask.array.reduction``), so only the
small values travel and the client receives one. With ``progress=<description>`` a pass shows
:func:`~mixedppl.core.progress.progress_bar` over its partitions, advanced as each partition's
task finishes (on a ``distributed.Client`` from the partitions' futures; with the local
schedulers from a dask callback).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from .exceptions import ModelSpecError
from .progress import progress_bar

__all__ = ["is_dask_collection", "require_dask", "tree_reduce", "reduce_delayed"]


def is_dask_collection(obj: Any) -> bool:
    """Whether ``obj`` is a Dask collection (DataFrame, Series, Array), without importing dask.

    Examples
    --------
    >>> import pandas as pd
    >>> is_dask_collection(pd.DataFrame({"a": [1]}))
    False
    """
    return type(obj).__module__.split(".")[0] in ("dask", "dask_expr") and \
        hasattr(obj, "__dask_graph__")


def require_dask():
    """Import and return ``dask`` (with ``dask.dataframe``), or raise a clear ImportError.

    Examples
    --------
    >>> require_dask().__name__
    'dask'
    """
    try:
        import dask
        import dask.dataframe  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("a Dask DataFrame was passed but dask is not installed: "
                          "pip install 'mixedppl[dask]'") from exc
    return dask


def tree_reduce(ddf, map_fn: Callable, combine: Callable, split_every: int = 8,
                compute: bool = True, progress: str | None = None):
    """``combine`` over ``map_fn(partition, i)`` of every partition, as a tree of fan-in
    ``split_every``; computed with the active scheduler (a ``distributed.Client`` if one is
    running).

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
    map_fn : callable ``(pandas.DataFrame, int) -> value``
        Runs on the workers; ``int`` is the partition number.
    combine : callable ``(list of values) -> value``
        Associative: the tree groups neighbouring partitions.
    split_every : int
        Fan-in of the tree.
    compute : bool
        Return the value (default) or the lazy ``Delayed``.
    progress : str, optional
        Show a bar over the partitions with this description (only when ``compute``).

    Examples
    --------
    >>> import pandas as pd, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"a": range(10)}), npartitions=3)
    >>> tree_reduce(ddf, lambda part, i: int(part["a"].sum()), sum, split_every=2)
    45
    """
    return reduce_delayed(ddf.to_delayed(), map_fn, combine, split_every, compute,
                          with_index=True, progress=progress)


def reduce_delayed(parts: list, map_fn: Callable, combine: Callable, split_every: int = 8,
                   compute: bool = True, with_index: bool = False, *, shared=None,
                   progress: str | None = None):
    """:func:`tree_reduce` over a list of Delayed values (e.g. rows persisted on the workers):
    ``combine`` over ``map_fn(part)`` (or ``map_fn(part, i)`` with ``with_index``; with
    ``shared``, ``map_fn(part, shared)``: one value every task reads, e.g. a large matrix, which
    travels to each worker once instead of once per task); with ``progress`` (a description)
    a bar over the partitions.

    Examples
    --------
    >>> import dask
    >>> parts = [dask.delayed(list)(range(k)) for k in range(5)]
    >>> reduce_delayed(parts, len, sum, split_every=2)
    10
    >>> reduce_delayed(parts, len, sum, progress="levels")   # a bar on stderr while it runs
    10
    """
    dask = require_dask()
    if split_every < 2:
        raise ModelSpecError(f"split_every must be at least 2, got {split_every}")
    # explicit keys: dask would otherwise tokenize map_fn (and the spec it carries) per task
    name = f"mixedppl-{getattr(map_fn, '__name__', 'map')}-{uuid.uuid4().hex}"
    mapped, combined = dask.delayed(map_fn, pure=False), dask.delayed(combine, pure=False)
    extra = () if shared is None else (dask.delayed(shared, name=f"{name}-shared"),)
    level = [mapped(part, i, dask_key_name=(name, i)) if with_index else
             mapped(part, *extra, dask_key_name=(name, i)) for i, part in enumerate(parts)]
    if progress is not None and compute:
        return _reduce_with_bar(level, combine, split_every, name, progress)
    depth = 0
    while len(level) > 1:
        depth += 1
        level = [combined(level[i:i + split_every], dask_key_name=(f"{name}-sum{depth}", i))
                 for i in range(0, len(level), split_every)]
    return level[0].compute() if compute else level[0]


def _client():
    """The running ``distributed.Client`` that dask computes on, or None (local schedulers)."""
    try:
        from distributed import get_client
        return get_client()
    except (ImportError, ValueError):
        return None


def _reduce_with_bar(mapped: list, combine: Callable, split_every: int, name: str, desc: str):
    """The tree of :func:`reduce_delayed`, with a bar advanced as each mapped task finishes."""
    dask = require_dask()
    bar = progress_bar(len(mapped), desc)
    try:
        client = _client()
        if client is not None:
            from distributed import as_completed
            level = client.compute(mapped)
            for _ in as_completed(level):
                bar.update(1)
            depth = 0
            while len(level) > 1:
                depth += 1
                level = [client.submit(combine, level[i:i + split_every], pure=False,
                                       key=f"{name}-sum{depth}-{i}")
                         for i in range(0, len(level), split_every)]
            return level[0].result()
        from dask.callbacks import Callback

        class _Count(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):
                if isinstance(key, tuple) and key[0] == name:
                    bar.update(1)

        combined = dask.delayed(combine, pure=False)
        level, depth = mapped, 0
        while len(level) > 1:
            depth += 1
            level = [combined(level[i:i + split_every], dask_key_name=(f"{name}-sum{depth}", i))
                     for i in range(0, len(level), split_every)]
        with _Count():
            return level[0].compute()
    finally:
        bar.close()
