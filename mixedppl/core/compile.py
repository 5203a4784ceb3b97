"""Compile PyTensor graphs once per graph structure and keep them in memory and on disk.

Data are graph inputs, so one compiled function serves every dataset and refit with the same
structure; the LMM graphs are generic in the term widths too (:mod:`mixedppl.graph.lmm`), so
five compiled functions serve every linear mixed model. Measurements and the reasons for this
design: ``docs/compile.md``.

Two tiers (``mixedppl.config.tier`` / env ``MIXEDPPL_TIER``: ``"auto"``, ``"numpy"``, ``"c"``):

- the **NumPy tier** compiles nothing to C: PyTensor's graph rewrites (without elementwise
  fusion), then every node runs its NumPy implementation, elementwise ops as direct ufunc calls
  (:func:`_ufunc_thunk`). Ready in ~1 s, needs no C compiler, never touches PyTensor's module
  cache (so a compile dir holding thousands of modules costs nothing). sleepstudy: 0.3 ms per
  deviance evaluation, as fast as C; small GLMMs ~5–10× slower per evaluation than C. A key's
  NumPy tier may be a Python composition of other keys' functions (``numpy_build``: the Laplace
  functions of :mod:`mixedppl.graph.laplace_split`, whose graphs serve many families and
  structures);
- the **C tier**: C thunks for the elementwise loops and reductions (:class:`_SelectiveCVM`,
  ``config.c_thunks = "loops"``; ``"all"``: every node), or for every node for the small,
  often-called GLMM / CLMM functions (``kind="fast_run_c"``). Each new C module costs ~0.5–1 s
  of C compiler once per machine (cbpp's GLMM: ~25 s of compiler CPU).

With ``"auto"`` (the default, when a C compiler exists) :func:`compiled` returns the C tier when
this process already has it, else the NumPy tier at once, and one background thread loads the
C tier from disk, or — once the structure is looked up a second time — compiles it, for the
next lookup (the next fit, never a fit in progress).
``"numpy"`` never builds C; ``"c"`` builds it at once, as before. One-off functions
(``kind="fast_compile"``: estimates at the optimum, Satterthwaite pieces, profiles) are always
on the NumPy tier with few rewrites. ``linker="numba"`` has one tier (first JIT ~28 s).

Compiled functions are also kept on disk (pickled after PyTensor's graph rewrites, in
``mixedppl.config.cache_dir``, by default ``<pytensor compiledir>/mixedppl/``; env
``MIXEDPPL_CACHE_DIR``), so a new process skips building the gradient graph and rewriting it and
only links the thunks (see :func:`compiled`). ``MIXEDPPL_DISK_CACHE=0`` turns it off.

Unpickling runs code, so an entry is only read when it can only have been written by this user:
the folder must be owned by the current user and not writable by group or others (otherwise
functions are compiled in memory only, with one warning). Each entry carries its key and a
SHA-256 of its payload, checked before anything is unpickled: an entry stored under another
key's name (swapped), truncated or foreign is rebuilt and overwritten, never used.

PyTensor's "could not link to a BLAS installation" warning is avoided by telling PyTensor to use
NumPy's own BLAS (``blas__ldflags=""``) unless the user configured BLAS flags themselves.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import logging
import os
import pickle
import queue
import stat
import struct
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Hashable
from functools import partial
from pathlib import Path

import numpy as np
import pytensor
from pytensor.compile.mode import Mode
from pytensor.link.vm import Loop, Stack, VMLinker
import pytensor.scalar.basic as ps
import pytensor.scalar.math as ps_math
from pytensor.scalar.basic import Composite
from pytensor.tensor.elemwise import CAReduce, Elemwise

from .gc_pause import paused_gc

__all__ = ["config", "compiled", "clear_cache", "configure_pytensor", "cache_stats",
           "wait_for_background", "describe_key", "numpy_tier_mode"]


class _Config:
    """Package settings.

    ``tier`` (``"auto"``, ``"numpy"``, ``"c"``): which compiled tier fits use (module docstring);
    ``linker`` picks the PyTensor linker of the C tier; ``c_thunks`` (``"loops"``, ``"all"`` or
    ``"none"``: no C tier) which nodes of a ``cvm`` function get compiled C code (see
    :class:`_SelectiveCVM`); ``disk_cache`` whether compiled functions are kept on disk, in
    ``cache_dir``; ``compile_notice`` whether a first compile that takes longer than
    ``compile_notice_after`` seconds (2) says on stderr what it is building.
    """

    def __init__(self):
        self.linker = os.environ.get("MIXEDPPL_LINKER", "cvm")
        self.c_thunks = os.environ.get("MIXEDPPL_C_THUNKS", "loops")
        self.disk_cache = os.environ.get("MIXEDPPL_DISK_CACHE", "1") != "0"
        self.tier = os.environ.get("MIXEDPPL_TIER", "auto")
        self._cache_dir: Path | None = (Path(os.environ["MIXEDPPL_CACHE_DIR"])
                                        if os.environ.get("MIXEDPPL_CACHE_DIR") else None)
        #: Say on stderr what is being compiled when a first compile takes longer than
        #: ``compile_notice_after`` seconds (env ``MIXEDPPL_COMPILE_NOTICE=0`` turns it off).
        self.compile_notice = os.environ.get("MIXEDPPL_COMPILE_NOTICE", "1") != "0"
        self.compile_notice_after = 2.0

    @property
    def cache_dir(self) -> Path:
        """Folder of the on-disk cache of compiled functions (a :class:`pathlib.Path`).

        Defaults to ``<pytensor compiledir>/mixedppl``; set it to a path (or ``None`` for the
        default). Entries are only read from a folder owned by the current user and not
        writable by group or others.
        """
        if self._cache_dir is not None:
            return self._cache_dir
        return Path(pytensor.config.compiledir) / "mixedppl"

    @cache_dir.setter
    def cache_dir(self, value) -> None:
        self._cache_dir = None if value is None else Path(value).expanduser()


config = _Config()
_CACHE: dict[Hashable, Callable] = {}
_LOCK = threading.Lock()
#: How the functions of this process were obtained: ``compiled`` (built and rewritten here),
#: ``disk`` (unpickled from the disk cache), ``disk_errors`` (entries rebuilt because they were
#: unreadable, truncated or stored under another key), ``untrusted`` (lookups that skipped the
#: disk because its folder is not private to this user).
cache_stats = {"compiled": 0, "compiled_numpy": 0, "compiled_c": 0, "disk": 0, "disk_errors": 0,
               "untrusted": 0, "background": 0, "background_errors": 0}
_SOURCE_HASH: str | None = None
_WARNED_DIRS: set[str] = set()
#: First bytes of every entry: the format, then the key (length-prefixed), the payload's
#: SHA-256 and the pickled function.
_MAGIC = b"mixedppl-compiled-function-v2\n"


def _source_hash() -> str:
    """Hash of everything a cached function depends on: this package's source files and the
    versions of Python, NumPy and PyTensor (and PyTensor's floatX)."""
    global _SOURCE_HASH
    if _SOURCE_HASH is None:
        h = hashlib.sha256()
        root = Path(__file__).resolve().parents[1]
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
        h.update(f"{sys.version}|{np.__version__}|{pytensor.__version__}|"
                 f"{pytensor.config.floatX}".encode())
        _SOURCE_HASH = h.hexdigest()
    return _SOURCE_HASH


def _key_text(full_key: Hashable) -> str | None:
    """The text identifying ``full_key`` on disk (its repr and :func:`_source_hash`), or None
    when its repr differs between processes (it holds an object address)."""
    text = repr(full_key)
    if " at 0x" in text:
        return None
    return text + "|" + _source_hash()


def _private_dir(folder: Path) -> bool:
    """Whether ``folder`` exists (created mode 0700 if missing), is a directory owned by the
    current user and is writable by nobody else, so that only this user can have put entries
    there. Warns once per folder when it is not."""
    reason = None
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.stat(folder)
        if not stat.S_ISDIR(st.st_mode):
            reason = "it is not a directory"
        elif hasattr(os, "getuid") and st.st_uid != os.getuid():
            reason = f"it is owned by uid {st.st_uid}, not by the current user"
        elif st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            reason = f"it is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
    except OSError as exc:
        reason = f"it cannot be used ({exc})"
    if reason is None:
        return True
    cache_stats["untrusted"] += 1
    if str(folder) not in _WARNED_DIRS:
        _WARNED_DIRS.add(str(folder))
        warnings.warn(f"mixedppl's compile cache {folder} is not used because {reason}; "
                      "compiled functions are kept in memory only (make the folder private, "
                      "e.g. chmod 700, or set mixedppl.config.cache_dir)", UserWarning,
                      stacklevel=4)
    return False


def _disk_path(full_key: Hashable) -> Path | None:
    """Where the function for ``full_key`` is kept on disk, or None when it must not be.

    Only keys whose ``repr`` is the same in every process (strings, numbers, tuples, frozen
    dataclasses) are kept, and only in a folder private to the current user
    (:func:`_private_dir`).
    """
    if not config.disk_cache:
        return None
    text = _key_text(full_key)
    if text is None:
        return None
    folder = config.cache_dir
    if not _private_dir(folder):
        return None
    digest = hashlib.sha256(text.encode()).hexdigest()[:40]
    return folder / f"{digest}.pkl"


def _read_entry(fh, key: str):
    """The function in an open entry, or None unless its format, key and payload hash check
    out (nothing is unpickled before they do)."""
    if fh.read(len(_MAGIC)) != _MAGIC:
        return None
    (n,) = struct.unpack(">Q", fh.read(8) or b"\xff" * 8)
    want = key.encode()
    if n != len(want) or fh.read(n) != want:
        return None
    digest = fh.read(32)
    payload = fh.read()
    if len(digest) != 32 or hashlib.sha256(payload).digest() != digest:
        return None
    return pickle.loads(payload)


def _write_entry(fh, key: str, fn) -> None:
    """Write ``fn`` with its key and payload hash (the format :func:`_read_entry` checks)."""
    payload = pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
    want = key.encode()
    fh.write(_MAGIC + struct.pack(">Q", len(want)) + want + hashlib.sha256(payload).digest())
    fh.write(payload)


def _load(path: Path | None, key: str | None = None, pause_gc: bool = False):
    """The function stored at ``path`` for ``key``; None when absent, or (counted in
    ``cache_stats["disk_errors"]``) when the entry is unreadable, truncated, of another key, or
    not a private file of this user's — the caller then rebuilds and overwrites it.
    ``pause_gc``: unpickle with the cyclic collector paused (:func:`_gc_paused_for`)."""
    if path is None or key is None or not path.exists():
        return None
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if (hasattr(os, "getuid") and st.st_uid != os.getuid()) or \
                    st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                fn = None
            else:
                with paused_gc() if pause_gc else contextlib.nullcontext():
                    fn = _read_entry(fh, key)
    except Exception:  # a partial, stale or foreign entry: rebuild (and overwrite) it
        fn = None
    if fn is None:
        cache_stats["disk_errors"] += 1
        return None
    cache_stats["disk"] += 1
    try:
        os.utime(path)  # marks the entry as in use for _prune
    except OSError:
        pass
    return fn


_PRUNED = False
_MAX_AGE_S = 14 * 86400


def _prune(folder: Path) -> None:
    """Once per process: remove entries unused for 14 days (each edit of the package or upgrade
    of PyTensor changes every key, so old entries are never read again) and stray temp files."""
    global _PRUNED
    if _PRUNED:
        return
    _PRUNED = True
    now = time.time()
    for f in folder.glob("*"):
        try:
            age = now - f.stat().st_mtime
            if (f.suffix == ".pkl" and age > _MAX_AGE_S) or \
                    (f.suffix in (".tmp", ".lock") and age > 3600):
                f.unlink()
        except OSError:
            pass


def _save(path: Path | None, fn, key: str | None = None) -> None:
    """Pickle a freshly compiled ``fn`` (its input storage still empty) with its ``key``,
    atomically, to ``path`` (a private file: mode 0600)."""
    if path is None or key is None:
        return
    fh = None
    try:
        _prune(path.parent)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as fh:
            _write_entry(fh, key, fn)
        os.replace(fh.name, path)
    except Exception:  # not picklable or not writable: the in-process cache still works
        if fh is not None:
            try:
                os.unlink(fh.name)
            except OSError:
                pass


def configure_pytensor() -> None:
    """Use NumPy's BLAS unless the user configured PyTensor's BLAS flags (silences the warning)."""
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "blas__ldflags" in flags or "blas.ldflags" in flags:
        return
    if os.path.exists(os.path.expanduser("~/.pytensorrc")):
        return
    try:
        pytensor.config.blas__ldflags = ""
    except Exception:  # pragma: no cover - read-only in exotic configurations
        pass
    logging.getLogger("pytensor.tensor.blas").setLevel(logging.ERROR)


# Graph rewrites left out of "fast_run". Since ProfiledLMM no longer differentiates through
# PyTensor's Cholesky (whose gradient had made the rewriter duplicate the dense factorisation),
# only ``blockwise_inplace``: it makes ``Solve`` overwrite its right-hand side, and with the
# Python ``perform`` that :class:`_SelectiveCVM` picks for Solve the result was WRONG (the GLMM
# Laplace gradient graph evaluated to 165.79 instead of 163.13 on wine, or raised "assignment
# destination is read-only"; tests/parity/test_clmm.py catches it). The copy it saves is negligible.
_EXCLUDED: tuple[str, ...] = ("blockwise_inplace",)


# Rewrites the NumPy tier also leaves out, because they cost the most rewriting time and buy the
# NumPy tier nothing (measured with ``pytensor.config.profile_optimizer`` on the Laplace outer
# graphs, docs/compile.md). ``local_greedy_distributor`` (canonicalize: a·x + a·y → a·(x + y)) was
# the costliest node rewriter — 2.2 of 13.6 s of node-rewriter time on NB2's outer graph, and each
# of the ~480 nodes it creates pays ShapeFeature's import callback — and the graphs come out
# *smaller* without it (NB2 outer, pairs: 498 → 432 nodes; compile 3.2 → 2.0 s CPU). The C tier
# keeps the full ``fast_run`` set.
_NUMPY_TIER_EXCLUDED: tuple[str, ...] = ("local_greedy_distributor",)


def _wants_c(node, policy: str = "loops") -> bool:
    """Whether ``node`` gets a C thunk (a compiled module) rather than its Python ``perform``.

    Only loops that NumPy cannot run as one call: fused elementwise ``Composite`` loops, and
    elementwise ops without a NumPy ufunc of their arity (a 3-input ``Mul``: PyTensor's Python
    fallback is ``np.frompyfunc``, ~9 s on InstEval's 1,156² matrices) — plus the reductions,
    whose few modules are shared by every model. Everything else (views, indexing, BLAS calls,
    the package's own Ops) runs through NumPy at the same speed on large inputs.
    """
    op = node.op
    if policy == "all":
        return True
    if policy == "none":
        return False
    if isinstance(op, CAReduce):
        return True
    if not isinstance(op, Elemwise):
        return False
    if isinstance(op.scalar_op, Composite):
        return True
    spec = op.nfunc_spec
    return spec is None or not hasattr(np, spec[0]) or len(node.inputs) != spec[1]


def _softplus(x):
    """log(1 + eˣ) elementwise, with PyTensor's ``Softplus`` branches (the same formulas)."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x < -37.0, np.exp(x),
                    np.where(x < 18.0, np.log1p(np.exp(x)),
                             np.where(x < 33.3, x + np.exp(-x), x)))


def _scalar_numpy_function(scalar_op, n_in: int, dtype) -> Callable | None:
    """The NumPy / SciPy function computing ``scalar_op`` elementwise on ``n_in`` arrays, or
    None (see :func:`_numpy_function`)."""
    if isinstance(scalar_op, ps.Cast) and n_in == 1:
        return lambda x: np.asarray(x).astype(dtype)
    if isinstance(scalar_op, ps_math.Softplus) and n_in == 1:
        return _softplus
    if isinstance(scalar_op, Composite):
        return _composite_function(scalar_op)
    spec = getattr(scalar_op, "nfunc_spec", None)
    if spec is None or spec[2] != 1:
        return None
    module, _, name = spec[0].rpartition(".")
    try:
        fn = getattr(importlib.import_module(module) if module else np, name)
    except (ImportError, AttributeError):
        return None
    if n_in == spec[1]:
        return fn
    if spec[1] == 2 and n_in > 2 and isinstance(scalar_op, (ps.Add, ps.Mul)):
        return lambda *xs: functools.reduce(fn, xs)
    return None


def _composite_function(composite: Composite) -> Callable | None:
    """A fused ``Composite`` scalar graph evaluated on whole arrays, one NumPy call per inner
    node (None unless every inner op has a NumPy function and one output).

    The NumPy tier leaves elementwise fusion out, but other rewrites make small composites
    (``x ** 3`` → ``Composite{sqr(i0) * i0}``); PyTensor's Python fallback loops over the
    elements (``np.frompyfunc``: 0.66 ms for 72 rows, half of a CLMM family graph's time).
    """
    fgraph = composite.fgraph
    if len(fgraph.outputs) != 1:
        return None
    steps = []
    for node in fgraph.toposort():
        if len(node.outputs) != 1:
            return None
        fn = _scalar_numpy_function(node.op, len(node.inputs), np.dtype(node.outputs[0].dtype))
        if fn is None:
            return None
        steps.append((fn, node.inputs, node.outputs[0]))
    inputs, output = list(fgraph.inputs), fgraph.outputs[0]
    constants = {v: v.data for v in fgraph.variables if hasattr(v, "data")}

    def run(*xs):
        env = dict(constants)
        env.update(zip(inputs, xs))
        for fn, ins, out in steps:
            env[out] = fn(*(env[v] for v in ins))
        return env[output]

    return run


def _numpy_function(node) -> Callable | None:
    """The NumPy / SciPy function that computes an elementwise ``node`` in one call, or None.

    The function PyTensor's ``Elemwise.perform`` calls (``nfunc_spec``: NumPy or
    ``scipy.special``), a dtype cast for ``Cast``, a vectorised ``Softplus``, a ``Composite``'s
    inner graph node by node (:func:`_composite_function`); n-ary ``Add`` / ``Mul`` fold the
    binary ufunc left to right, as the scalar op does.
    """
    op = node.op
    if not isinstance(op, Elemwise) or len(node.outputs) != 1:
        return None
    return _scalar_numpy_function(op.scalar_op, len(node.inputs),
                                  np.dtype(node.outputs[0].dtype))


def _ufunc_thunk(node, storage_map, compute_map):
    """A Python thunk that calls the NumPy function of an elementwise ``node`` directly
    (:func:`_numpy_function`), or None.

    PyTensor's ``Elemwise.perform`` spends ~10–15 µs per call on checks and, for an op without
    a NumPy function of its arity (an n-ary ``Add`` / ``Mul``, ``Softplus``, ``Cast``), loops
    over the elements in Python (``np.frompyfunc``: ~100 µs for a few hundred elements); here
    the function is called as is, and the output cast to the node's dtype. Floating-point
    warnings are silenced once per function call by :class:`_QuietVM` (as C code never warns),
    not per node: entering ``np.errstate`` costs ~1.5 µs, a fifth of a small GLMM's evaluation.
    """
    fn = _numpy_function(node)
    if fn is None:
        return None
    in_storage = [storage_map[v] for v in node.inputs]
    out_storage = storage_map[node.outputs[0]]
    done = compute_map[node.outputs[0]] if compute_map is not None else [None]
    dtype = np.dtype(node.outputs[0].dtype)

    def thunk():  # NumPy's error state is "ignore" for the whole call (:class:`_QuietVM`)
        res = np.asarray(fn(*[s[0] for s in in_storage]))
        if res.dtype != dtype:
            res = res.astype(dtype)
        elif not res.flags.owndata:  # a view (np.real): the output must own its data
            res = res.copy()
        out_storage[0] = res
        done[0] = True

    thunk.inputs, thunk.outputs, thunk.lazy = in_storage, [out_storage], False
    return thunk


#: Below this many index entries an increment keeps ``np.add.at`` (cheaper than a bincount of
#: the whole output for a few entries).
SCATTER_MIN_ENTRIES = 64


def scatter_add(out: np.ndarray, indices: tuple, y) -> None:
    """``np.add.at(out, indices, y)`` for integer index arrays on the leading axes of a
    C-contiguous float64 ``out``, by ``np.bincount`` on the raveled index (per trailing column
    up to 8 columns, sort + ``np.add.reduceat`` beyond).

    ``np.add.at`` handles the general case element by element: in a Cox frailty evaluation
    (20,000 rows) it took two thirds of the time. The sums are the same up to rounding: the
    increments of one position are summed first, then added.

    Examples
    --------
    >>> out = np.zeros((3, 2)); scatter_add(out, (np.array([0, 2, 0]),), np.ones((3, 2)))
    >>> out.tolist()
    [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]]
    """
    k, shape = len(indices), out.shape
    idx = np.broadcast_arrays(*indices) if k > 1 else [np.asarray(indices[0])]
    if any(i.size and i.min() < 0 for i in idx):
        idx = [np.where(i < 0, i + d, i) for i, d in zip(idx, shape)]
    lin = (idx[0] if k == 1 else np.ravel_multi_index(tuple(idx), shape[:k])).ravel()
    rows, width = int(np.prod(shape[:k])), int(np.prod(shape[k:]))
    yb = np.broadcast_to(y, idx[0].shape + shape[k:]).reshape(lin.size, width)
    flat = out.reshape(rows, width)
    if width <= 8:
        for j in range(width):
            flat[:, j] += np.bincount(lin, weights=yb[:, j], minlength=rows)
        return
    order = np.argsort(lin, kind="stable")
    sorted_lin = lin[order]
    starts = np.flatnonzero(np.r_[True, sorted_lin[1:] != sorted_lin[:-1]])
    flat[sorted_lin[starts]] += np.add.reduceat(yb[order], starts, axis=0)


def _scatter_thunk(node, storage_map, compute_map):
    """A thunk running an advanced increment (``x[idx] += y`` with repeated indices:
    ``AdvancedIncSubtensor1`` / ``AdvancedIncSubtensor`` on integer arrays) by
    :func:`scatter_add`, or None for other nodes (and float32, slices, ``set``)."""
    from pytensor.tensor.subtensor import AdvancedIncSubtensor, AdvancedIncSubtensor1
    from pytensor.tensor.type import TensorType

    op = node.op
    if not isinstance(op, (AdvancedIncSubtensor1, AdvancedIncSubtensor)):
        return None
    if op.set_instead_of_inc or getattr(op, "ignore_duplicates", False):
        return None
    x_var, y_var, *index_vars = node.inputs
    if x_var.dtype != "float64" or not all(
            isinstance(v.type, TensorType) and v.dtype.startswith(("int", "uint"))
            for v in index_vars) or len(index_vars) > x_var.ndim:
        return None
    in_storage = [storage_map[v] for v in node.inputs]
    out_storage = storage_map[node.outputs[0]]
    done = compute_map[node.outputs[0]] if compute_map is not None else [None]
    inplace = op.inplace

    def thunk():
        x, y, *indices = (st[0] for st in in_storage)
        out = x if inplace and x.flags.c_contiguous else np.array(x, order="C")
        if indices[0].size < SCATTER_MIN_ENTRIES:
            np.add.at(out, tuple(indices), y)
        else:
            scatter_add(out, tuple(indices), y)
        out_storage[0] = out
        done[0] = True

    thunk.inputs, thunk.outputs, thunk.lazy = in_storage, [out_storage], False
    return thunk


def _py_thunk(op, node, storage_map, compute_map, no_recycling, impl=None):
    fast = _ufunc_thunk(node, storage_map, compute_map)
    if fast is not None:
        return fast
    fast = _scatter_thunk(node, storage_map, compute_map)
    if fast is not None:
        return fast
    return type(op).make_thunk(op, node, storage_map, compute_map, no_recycling, impl="py")


class _QuietVM:
    """A PyTensor VM whose calls run with NumPy's floating-point warnings off (the state the
    NumPy thunks of :func:`_ufunc_thunk` need: log(0) → −inf without a ``RuntimeWarning``, as in
    C). Every attribute is the wrapped VM's."""

    __slots__ = ("_vm",)

    def __init__(self, vm):
        object.__setattr__(self, "_vm", vm)

    def __call__(self, *args, **kwargs):
        with np.errstate(all="ignore"):
            return self._vm(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._vm, name)

    def __setattr__(self, name, value):
        setattr(self._vm, name, value)


class _SelectiveCVM(VMLinker):
    """PyTensor's C virtual machine (``cvm``), with C thunks only where :func:`_wants_c` says.

    With the default ``cvm`` every distinct Op signature (each Subtensor index pattern, each
    DimShuffle, each unfused elementwise op) is compiled to its own C module, ~1 s of C compiler
    each: sleepstudy's first fit compiled 128 modules (fitting and estimates graphs) and took
    149 s on an empty compile dir. Keeping C for the loops and reductions compiles 12 modules
    there (first fit 30 s wall, 27 s of compiler CPU); evaluations of small models pay the Python
    dispatch (sleepstudy: 0.6 ms per evaluation instead of 0.2 ms), large ones are unchanged
    (their time is in LAPACK and sparse products: InstEval 0.17 s, 100k-row crossed 0.10 s).
    ``MIXEDPPL_C_THUNKS=all`` (or ``config.c_thunks = "all"``) restores C everywhere.

    The Python-only ops get an instance attribute ``make_thunk`` for the duration of
    ``make_all``; a function compiled concurrently in another thread that shares such an op
    instance may then also run it in Python (correct, only slower).
    """

    #: which nodes get C thunks (:func:`_wants_c`); None: ``config.c_thunks``
    c_policy: str | None = None

    def make_all(self, *args, **kwargs):
        # ``make_all`` calls ``node.op.make_thunk(...)`` for every node: the ops that should stay
        # in Python get a bound override while any ``make_all`` that wants them in Python runs
        # (reference-counted: a concurrent compile in another thread never removes it early).
        # The choice is per Op instance, and one instance (``pt.mul``) can serve nodes of
        # different arity: an op keeps C when any of its nodes wants it.
        policy = self.c_policy or config.c_thunks
        c_ops = {id(node.op) for node in self.fgraph.apply_nodes if _wants_c(node, policy)}
        py_ops = {id(node.op): node.op for node in self.fgraph.apply_nodes
                  if id(node.op) not in c_ops}
        mine = []
        with _PATCH_LOCK:
            for key, op in py_ops.items():
                count = _PATCHED.get(key, (op, 0))[1]
                if count == 0 and "make_thunk" in vars(op):
                    continue  # an override that is not ours: leave it alone
                if count == 0:
                    op.make_thunk = partial(_py_thunk, op)
                _PATCHED[key] = (op, count + 1)
                mine.append(key)
        try:
            vm, *rest = super().make_all(*args, **kwargs)
            return (_QuietVM(vm), *rest)
        finally:
            with _PATCH_LOCK:
                for key in mine:
                    entry = _PATCHED[key]
                    op = entry[0]
                    if entry[1] <= 1:
                        del _PATCHED[key]
                        vars(op).pop("make_thunk", None)
                    else:
                        _PATCHED[key] = (op, entry[1] - 1)


class _NumpyVM(_SelectiveCVM):
    """NumPy thunks for every node, run by PyTensor's Python loop: nothing compiled to C (the
    first tier of :func:`compiled`).

    ``VMLinker.make_vm`` imports PyTensor's C lazy linker (``lazylinker_ext``) whatever
    ``use_cloop`` says, and compiles it when the compile dir lacks it (~0.3 s of C compiler
    and ~1 s of wall on a new machine); here the VM is built without it: ``Loop`` (``Stack``
    when a thunk is lazy), as PyTensor itself does on a machine without a C compiler
    (``use_cloop=True`` stays set so that ``make_all`` prepares the storage the same way on
    both). The Python loop costs ~0.1 µs per node beside the ~2–5 µs a NumPy
    thunk takes, so evaluations are not slower than with the C loop (docs/compile.md).
    """

    c_policy = "none"

    def make_vm(self, nodes, thunks, input_storage, output_storage, storage_map,
                post_thunk_clear, computed, compute_map, updated_vars):
        if self.callback is not None or self.callback_input is not None or \
                pytensor.config.profile or pytensor.config.print_global_stats:
            return super().make_vm(nodes, thunks, input_storage, output_storage, storage_map,
                                   post_thunk_clear, computed, compute_map, updated_vars)
        pre_call_clear = [storage_map[v] for v in self.no_recycling]
        lazy = self.lazy if self.lazy is not None else pytensor.config.vm__lazy
        if lazy or (lazy is None and any(th.lazy for th in thunks)):
            return Stack(self.fgraph, nodes, thunks, pre_call_clear, storage_map,
                         input_storage, output_storage, updated_vars, compute_map,
                         self.allow_gc, dependencies=self.compute_gc_dependencies(storage_map))
        return Loop(self.fgraph, nodes, thunks, pre_call_clear, storage_map, input_storage,
                    output_storage, updated_vars, post_thunk_clear if self.allow_gc else None)


_PATCH_LOCK = threading.Lock()
#: id(op) → (op, number of running ``make_all`` calls that want it in Python)
_PATCHED: dict[int, tuple[object, int]] = {}


def _mode(kind: str, tier: str = "c") -> Mode:
    """Compile mode for ``kind`` and ``tier``.

    ``kind``: ``"fast_run"`` (fitting functions), ``"fast_run_c"`` (small graphs evaluated very
    often: C everywhere in the C tier) or ``"fast_compile"`` (one-off evaluations: few graph
    rewrites, NumPy thunks). ``tier``: ``"numpy"`` (nothing compiled to C: every node runs its
    NumPy implementation, elementwise ops as direct ufunc calls (:func:`_ufunc_thunk`), and the
    elementwise fusion rewrite is left out, since a fused ``Composite`` has no NumPy function)
    or ``"c"`` (the configured linker with C thunks as ``config.c_thunks`` says). The NumPy
    tier also leaves out the in-place elementwise rewrite (see below).
    """
    # NumPy tier: no elementwise fusion (a fused Composite has no NumPy function) and no
    # in-place elementwise rewrite: the ufunc thunks (:func:`_ufunc_thunk`) return new arrays
    # whatever the node's destroy map says, so that rewrite (a quarter of the rewriting time
    # of a Laplace outer graph: NB2 2.8 → 2.0 s CPU, evaluation unchanged) bought nothing here.
    numpy_excluded = _EXCLUDED + ("fusion", "inplace_elemwise") + _NUMPY_TIER_EXCLUDED
    if kind == "fast_compile":
        return Mode(linker=_NumpyVM(use_cloop=True),
                    optimizer="fast_compile").excluding(*numpy_excluded)
    if tier == "numpy" or config.c_thunks == "none" or kind == "fast_run_numpy":
        return Mode(linker=_NumpyVM(use_cloop=True),
                    optimizer="fast_run").excluding(*numpy_excluded)
    linker = config.linker
    if kind == "fast_run_c" and linker == "cvm":
        # small graphs evaluated hundreds of times per fit (GLMM / CLMM inner and outer
        # functions): C thunks everywhere. wine's CLMM fit: 0.014 s warm, against 0.06 s with
        # NumPy thunks (~90 nodes per call at ~3 µs each); the price is more C modules.
        return Mode(linker="cvm", optimizer="fast_run").excluding(*_EXCLUDED)
    if linker == "numba":
        return pytensor.compile.mode.get_mode("NUMBA").excluding(*_EXCLUDED)
    if linker == "cvm":
        linker = _SelectiveCVM(use_cloop=True)
    return Mode(linker=linker, optimizer="fast_run").excluding(*_EXCLUDED)


def numpy_tier_mode() -> Mode:
    """The NumPy tier's compile mode (see the module docstring), for graphs compiled outside
    :func:`compiled` and evaluated a few times only (checks of a model's log-density, tests):
    ready in seconds, where C thunks for a marginalised LMM's PyMC log-density cost up to
    ~100 s of C compiler the first time on a machine.

    Examples
    --------
    >>> import pytensor, pytensor.tensor as pt
    >>> x = pt.dvector("x")
    >>> float(pytensor.function([x], (x ** 2).sum(), mode=numpy_tier_mode())([1.0, 2.0]))
    5.0
    """
    return _mode("fast_run", "numpy")


def _has_compiler() -> bool:
    """Whether PyTensor can compile C (``pytensor.config.cxx`` set)."""
    return bool(pytensor.config.cxx)


def _tier_for(kind: str) -> str:
    """``"numpy"``, ``"c"`` or ``"auto"`` (NumPy now, C built in the background) for ``kind``.

    One-off functions (``"fast_compile"``) and, without a C compiler or with
    ``c_thunks = "none"``, every function use the NumPy tier; the other linkers (numba) have
    no NumPy tier.
    """
    if kind == "fast_run_numpy":
        return "numpy"
    if config.linker != "cvm":
        return "c"
    if kind == "fast_compile" or config.c_thunks == "none" or not _has_compiler():
        return "numpy"
    return config.tier if config.tier in ("numpy", "c") else "auto"


def _full_key(key: Hashable, kind: str, tier: str, kwargs: dict) -> tuple:
    policy = "none" if tier == "numpy" or kind in ("fast_compile", "fast_run_numpy") \
        else config.c_thunks
    return (key, kind, config.linker if tier == "c" else "cvm", policy,
            tuple(sorted(kwargs.items())))


_WHAT = {"lmm_deviance": "the LMM's profiled deviance", "lmm_estimates": "the LMM's estimates",
         "lmm_varpar": "the LMM's variance-parameter derivatives", "lmm_profile": "the profile",
         "glmm-laplace": "the Laplace deviance", "glmm-joint": "the joint (β, u) objective",
         "glm-ml": "the GLM start", "coxme": "the Cox frailty objective",
         "coxph": "the Cox partial likelihood"}


def describe_key(key: Hashable) -> str:
    """A short, readable name of what a compile key builds (for the compile notice).

    Examples
    --------
    >>> describe_key(("glmm-laplace", ("glm", "binomial"), "logit", (1,), False, "outer"))
    'the Laplace deviance (binomial, logit, outer)'
    >>> describe_key(("lmm_deviance", 3))
    "the LMM's profiled deviance"
    """
    if not isinstance(key, tuple) or not key:
        return str(key)
    head = _WHAT.get(str(key[0]), str(key[0]))
    words = []
    for k in key[1:]:  # strings, and strings one tuple down (a family's key: ("glm", "binomial"))
        if isinstance(k, str):
            words.append(k)
        elif isinstance(k, tuple) and k and all(isinstance(v, str) for v in k):
            words.append(k[-1])
    return f"{head} ({', '.join(words)})" if words else head


class _CompileNotice:
    """Print one line on stderr when a foreground compile is still running after
    ``config.compile_notice_after`` seconds, and how long it took when it ends."""

    def __init__(self, key: Hashable, tier: str):
        self.key, self.tier, self.timer, self.shown = key, tier, None, False

    def _show(self) -> None:
        self.shown = True
        print(f"mixedppl: compiling {describe_key(self.key)} for this model structure "
              f"({self.tier} tier; once per structure, later fits and processes reuse it) …",
              file=sys.stderr, flush=True)

    def __enter__(self):
        if config.compile_notice and threading.current_thread() is threading.main_thread():
            self.start = time.perf_counter()
            self.timer = threading.Timer(config.compile_notice_after, self._show)
            self.timer.daemon = True
            self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.timer is not None:
            self.timer.cancel()
            if self.shown:
                print(f"mixedppl: compiled in {time.perf_counter() - self.start:.1f} s",
                      file=sys.stderr, flush=True)


_TRACE_LOCK = threading.Lock()
_TRACE_STATE = {"depth": 0, "saved": None}


@contextlib.contextmanager
def _no_traces():
    """PyTensor's ``traceback__limit`` at 0 while a graph is built and compiled.

    Every Variable and Apply PyTensor creates records the user's call stack in ``tag.trace``
    (``traceback__limit``, 8 frames, each read with ``linecache``): ~22,000 stack walks for a
    Laplace model's three functions, a tenth of their build-and-compile time, and the traces
    are pickled into the disk cache with them. These graphs are the package's own, so their
    traces would only point into mixedppl. (PyTensor's rewrites already run with the limit at
    ``traceback__compile_limit``, 0.) The flag is process-wide: the first of concurrent
    compiles (the background C tier) sets it, the last one restores the user's value.
    """
    with _TRACE_LOCK:
        if _TRACE_STATE["depth"] == 0:
            _TRACE_STATE["saved"] = pytensor.config.traceback__limit
            pytensor.config.traceback__limit = 0
        _TRACE_STATE["depth"] += 1
    try:
        yield
    finally:
        with _TRACE_LOCK:
            _TRACE_STATE["depth"] -= 1
            if _TRACE_STATE["depth"] == 0:
                pytensor.config.traceback__limit = _TRACE_STATE["saved"]


def _drop_shape_feature(fn) -> None:
    """Detach the rewrites' ``ShapeFeature`` from a compiled function's graph.

    It holds a shape graph for every variable and is used by graph rewrites only, which are
    done; pickled with the function it made the disk-cache write ~5× slower (a CLMM's outer
    function: 0.17 → 0.03 s CPU) and the read in a new process ~4× slower (0.14 → 0.03 s).
    Linking and copying the function do not use it.
    """
    fgraph = getattr(getattr(fn, "maker", None), "fgraph", None)
    feature = getattr(fgraph, "shape_feature", None)
    if feature is not None:
        fgraph.remove_feature(feature)


#: How long a process waits for another one that is compiling the same key (its lock file)
#: before compiling the key itself; a lock whose process is gone, or older than
#: ``_LOCK_STALE_S``, is not waited for.
_LOCK_WAIT_S = 120.0
_LOCK_STALE_S = 600.0


def _claim(path: Path) -> bool | None:
    """Create ``path``'s lock file (True), or None when another process holds it; False when no
    lock can be made here (the key is then compiled without one)."""
    try:
        fd = os.open(path.with_suffix(".lock"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return None
    except OSError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    return True


def _stale(lock: Path) -> bool:
    """Whether a lock file is not worth waiting for: its process has exited, it is older than
    ``_LOCK_STALE_S``, or it has been unreadable for a few seconds."""
    try:
        age = time.time() - lock.stat().st_mtime
        text = lock.read_text().strip()
    except FileNotFoundError:
        return False                                   # released: the entry is there now
    except OSError:
        return True
    if age > _LOCK_STALE_S:
        return True
    if not text.isdigit():
        return age > 5.0
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return True
    except OSError:                                    # exists, another user's: keep waiting
        pass
    return False


def _gc_paused_for(tier: str) -> bool:
    """Whether building or loading a function of ``tier`` runs with the cyclic collector paused
    (:mod:`mixedppl.core.gc_pause`): the NumPy tier's, which take a second or two at most. A
    C tier may spend tens of seconds in the C compiler, in the background thread, while the
    user's own work goes on: the collector stays on for it."""
    return tier == "numpy"


def _compile(full_key, build, kind: str, tier: str, kwargs: dict):
    gc_block = paused_gc() if _gc_paused_for(tier) else contextlib.nullcontext()
    with _CompileNotice(full_key[0], tier), _no_traces(), gc_block:
        inputs, outputs = build()
        fn = pytensor.function(inputs, outputs, mode=_mode(kind, tier),
                               on_unused_input="ignore", **kwargs)
        _drop_shape_feature(fn)
    cache_stats["compiled"] += 1
    cache_stats["compiled_" + tier] += 1
    return fn


def _build_and_compile(full_key, build, kind: str, tier: str, kwargs: dict):
    """Look ``full_key`` up on disk, else build, compile and save it; keep it in memory.

    Processes sharing a cache folder compile each key once: the first takes the key's lock
    file (``<digest>.lock``, created exclusively) and writes the entry; the others wait for the
    entry (polling, no CPU) and load it — four new structures fitted at once had each compiled
    the shared structure graphs of :mod:`mixedppl.graph.laplace_split`. A lock whose process
    is gone or that is older than 10 minutes is ignored, and nobody waits more than
    ``_LOCK_WAIT_S`` (then it compiles the key itself)."""
    configure_pytensor()
    path = _disk_path(full_key)
    text = _key_text(full_key) if path is not None else None
    pause = _gc_paused_for(tier)
    fn = _load(path, text, pause)
    if fn is None and path is not None:
        deadline, waited = time.monotonic() + _LOCK_WAIT_S, False
        while fn is None:
            claimed = _claim(path)
            if claimed is None and time.monotonic() < deadline:
                if _stale(path.with_suffix(".lock")):  # its process is gone: take it over
                    with contextlib.suppress(OSError):
                        path.with_suffix(".lock").unlink()
                else:
                    time.sleep(0.05)
                fn, waited = _load(path, text, pause), True
                continue
            try:
                if waited:                             # written just before the lock went
                    fn = _load(path, text, pause)
                if fn is None:
                    fn = _compile(full_key, build, kind, tier, kwargs)
                    _save(path, fn, text)
            finally:
                if claimed:
                    with contextlib.suppress(OSError):
                        path.with_suffix(".lock").unlink()
    if fn is None:
        fn = _compile(full_key, build, kind, tier, kwargs)
    with _LOCK:
        _CACHE[full_key] = fn
    return fn


class _Background:
    """One daemon thread that builds C tiers, one at a time, in the order asked for."""

    def __init__(self):
        self._queue: queue.Queue = queue.Queue()
        self._pending: set = set()
        self._thread: threading.Thread | None = None

    def submit(self, full_key, build, kind: str, kwargs: dict) -> None:
        with _LOCK:
            if full_key in self._pending or full_key in _CACHE:
                return
            self._pending.add(full_key)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="mixedppl-c-tier",
                                                daemon=True)
                self._thread.start()
        self._queue.put((full_key, build, kind, kwargs))

    def _run(self) -> None:
        while True:
            full_key, build, kind, kwargs = self._queue.get()
            try:
                _build_and_compile(full_key, build, kind, "c", kwargs)
                cache_stats["background"] += 1
            except Exception:  # e.g. a compile-lock timeout: the NumPy tier stays in use
                cache_stats["background_errors"] += 1
            finally:
                with _LOCK:
                    self._pending.discard(full_key)
                self._queue.task_done()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every C tier asked for is built (True) or ``timeout`` s pass (False)."""
        t_end = None if timeout is None else time.monotonic() + timeout
        while True:
            with _LOCK:
                if not self._pending:
                    return True
            if t_end is not None and time.monotonic() > t_end:
                return False
            time.sleep(0.05)


_BACKGROUND = _Background()
#: lookups of each C-tier key in this process (the C tier is built from the second on)
_LOOKUPS: dict[Hashable, int] = {}


def wait_for_background(timeout: float | None = None) -> bool:
    """Wait until the C tiers being compiled in the background are ready (see :func:`compiled`);
    True when none is left."""
    return _BACKGROUND.wait(timeout)


def compiled(key: Hashable, build: Callable[[], tuple[list, list]], kind: str = "fast_run",
             numpy_build: Callable[[], Callable] | None = None, **kwargs) -> Callable:
    """Return the compiled function for ``key``, building it with ``build()`` on first use.

    ``build`` returns ``(inputs, outputs)``; ``kind`` is ``"fast_run"`` (fitting functions),
    ``"fast_run_c"`` (small functions called very often), ``"fast_compile"`` (one-off
    evaluations, NumPy thunks only) or ``"fast_run_numpy"`` (the NumPy tier's rewrites and
    thunks, never a C tier: the parts of a composed NumPy-tier function).

    ``numpy_build``, when given, returns this key's NumPy tier as a Python callable composed of
    other compiled functions (the Laplace functions of
    :mod:`mixedppl.graph.laplace_split`, whose parts serve many keys); ``build`` is then
    compiled for the C tier only.

    Two tiers (see ``docs/compile.md``): the *NumPy tier* compiles nothing to C and is ready
    after PyTensor's graph rewrites (~1 s); the *C tier* (C loops, or C everywhere for
    ``"fast_run_c"``) evaluates small models 2–5× faster but costs ~0.5–1 s of C compiler per
    new module. A lookup returns the C tier when this process or the disk cache has it;
    otherwise it returns the NumPy tier at once and (a C compiler
    present, ``config.tier = "auto"``) asks one background thread for the C tier — at once
    when the disk cache holds it (loading it only links modules), else from the second lookup
    of the key in this process on (the structure is fitted again: a refit, a bootstrap, the
    next model of a notebook session), so a one-off script never starts the C compiler. Later
    lookups — the next fit, never a fit in progress — then get the C tier.
    ``config.tier = "numpy"`` never builds the C tier, ``"c"`` builds it at once (and waits).
    Without a C compiler only the NumPy tier exists.

    Each tier is looked up in this process's cache, then on disk (a function pickled after its
    graph rewrites, keyed by ``key``, ``kind``, the tier and linker settings and
    :func:`_source_hash`, in ``config.cache_dir`` when that folder is private to this user;
    the key stored in the entry must match); built, rewritten and saved there otherwise.
    """
    tier = _tier_for(kind)
    if tier != "auto":
        full_key = _full_key(key, kind, tier, kwargs)
        with _LOCK:
            fn = _CACHE.get(full_key)
        if fn is not None:
            return fn
        if tier == "numpy" and numpy_build is not None:
            return _compose(full_key, numpy_build)
        return _build_and_compile(full_key, build, kind, tier, kwargs)
    key_c = _full_key(key, kind, "c", kwargs)
    key_np = _full_key(key, kind, "numpy", kwargs)
    with _LOCK:
        fn = _CACHE.get(key_c) or _CACHE.get(key_np)
        _LOOKUPS[key_c] = _LOOKUPS.get(key_c, 0) + 1
        wanted = key_c not in _CACHE and _LOOKUPS[key_c] >= 2
    if fn is None:
        fn = (_compose(key_np, numpy_build) if numpy_build is not None
              else _build_and_compile(key_np, build, kind, "numpy", kwargs))
        path = _disk_path(key_c)
        wanted = wanted or (path is not None and path.exists())
    if wanted:
        _BACKGROUND.submit(key_c, build, kind, kwargs)
    return fn


def _compose(full_key, numpy_build: Callable[[], Callable]) -> Callable:
    """The NumPy tier of ``full_key`` composed by ``numpy_build`` (its parts are compiled, and
    kept on disk, under their own keys), kept in memory."""
    fn = numpy_build()
    with _LOCK:
        _CACHE[full_key] = fn
    return fn


def clear_cache() -> None:
    """Forget all compiled functions (they are rebuilt on demand); waits for the background
    thread's current build first."""
    wait_for_background()
    with _LOCK:
        _CACHE.clear()
        _LOOKUPS.clear()
