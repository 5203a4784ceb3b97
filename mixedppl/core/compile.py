"""Compile PyTensor graphs once per model structure and keep them in an in-process cache.

Data are graph inputs, so one compiled function serves every dataset and refit with the same
structure. The linker is a setting (``mixedppl.config.linker`` / env ``MIXEDPPL_LINKER``):

- ``"cvm"`` (default): PyTensor's C virtual machine, with compiled C code only for the
  elementwise loops and reductions (:class:`_SelectiveCVM`); every other node runs its NumPy
  ``perform``. Each C module costs ~1 s of C compiler on the first run on a machine (cached on
  disk in PyTensor's compiledir): sleepstudy's first fit on an empty compile dir took 149 s
  (128 modules) with C for every node and takes 30 s (12 modules) this way;
  ``MIXEDPPL_C_THUNKS=all`` gives C for every node (small models evaluate ~3x faster,
  sleepstudy 0.2 ms instead of 0.6 ms; large ones the same);
- ``"numba"``: little C compile but a long first JIT in every new process;
- one-off functions (estimates at the optimum, Satterthwaite pieces) skip most graph rewrites
  (``optimizer="fast_compile"``) with the same linker.

Compiled functions are also kept on disk (pickled after PyTensor's graph rewrites, in
``mixedppl.config.cache_dir``, by default ``<pytensor compiledir>/mixedppl/``; env
``MIXEDPPL_CACHE_DIR``), so a new process skips building the gradient graph and rewriting it and
only links the thunks: sleepstudy's first fit in a new process took 2.9 s of CPU compiling, and
0.3 s loading (see :func:`compiled`). ``MIXEDPPL_DISK_CACHE=0`` turns it off.

Unpickling runs code, so an entry is only read when it can only have been written by this user:
the folder must be owned by the current user and not writable by group or others (otherwise
functions are compiled in memory only, with one warning). Each entry carries its key and a
SHA-256 of its payload, checked before anything is unpickled: an entry stored under another
key's name (swapped), truncated or foreign is rebuilt and overwritten, never used.

PyTensor's "could not link to a BLAS installation" warning is avoided by telling PyTensor to use
NumPy's own BLAS (``blas__ldflags=""``) unless the user configured BLAS flags themselves.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
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
from pytensor.link.vm import VMLinker
from pytensor.scalar.basic import Composite
from pytensor.tensor.elemwise import CAReduce, Elemwise

__all__ = ["config", "compiled", "clear_cache", "configure_pytensor", "cache_stats"]


class _Config:
    """Package settings.

    ``linker`` picks the PyTensor linker for fitting functions; ``c_thunks`` (``"loops"`` or
    ``"all"``) which nodes of a ``cvm`` function get compiled C code (see :class:`_SelectiveCVM`);
    ``disk_cache`` whether compiled functions are kept on disk, in ``cache_dir``.
    """

    def __init__(self):
        self.linker = os.environ.get("MIXEDPPL_LINKER", "cvm")
        self.c_thunks = os.environ.get("MIXEDPPL_C_THUNKS", "loops")
        self.disk_cache = os.environ.get("MIXEDPPL_DISK_CACHE", "1") != "0"
        self._cache_dir: Path | None = (Path(os.environ["MIXEDPPL_CACHE_DIR"])
                                        if os.environ.get("MIXEDPPL_CACHE_DIR") else None)

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
cache_stats = {"compiled": 0, "disk": 0, "disk_errors": 0, "untrusted": 0}
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


def _load(path: Path | None, key: str | None = None):
    """The function stored at ``path`` for ``key``; None when absent, or (counted in
    ``cache_stats["disk_errors"]``) when the entry is unreadable, truncated, of another key, or
    not a private file of this user's — the caller then rebuilds and overwrites it."""
    if path is None or key is None or not path.exists():
        return None
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if (hasattr(os, "getuid") and st.st_uid != os.getuid()) or \
                    st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                fn = None
            else:
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
            if (f.suffix == ".pkl" and age > _MAX_AGE_S) or (f.suffix == ".tmp" and age > 3600):
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


def _wants_c(node) -> bool:
    """Whether ``node`` gets a C thunk (a compiled module) rather than its Python ``perform``.

    Only loops that NumPy cannot run as one call: fused elementwise ``Composite`` loops, and
    elementwise ops without a NumPy ufunc of their arity (a 3-input ``Mul``: PyTensor's Python
    fallback is ``np.frompyfunc``, ~9 s on InstEval's 1,156² matrices) — plus the reductions,
    whose few modules are shared by every model. Everything else (views, indexing, BLAS calls,
    the package's own Ops) runs through NumPy at the same speed on large inputs.
    """
    op = node.op
    if config.c_thunks == "all":
        return True
    if isinstance(op, CAReduce):
        return True
    if not isinstance(op, Elemwise):
        return False
    if isinstance(op.scalar_op, Composite):
        return True
    spec = op.nfunc_spec
    return spec is None or not hasattr(np, spec[0]) or len(node.inputs) != spec[1]


def _py_thunk(op, node, storage_map, compute_map, no_recycling, impl=None):
    return type(op).make_thunk(op, node, storage_map, compute_map, no_recycling, impl="py")


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

    def make_all(self, *args, **kwargs):
        # ``make_all`` calls ``node.op.make_thunk(...)`` for every node: the ops that should stay
        # in Python get a bound override for the duration of the call (removed afterwards).
        # The choice is per Op instance, and one instance (``pt.mul``) can serve nodes of
        # different arity: an op keeps C when any of its nodes wants it.
        c_ops = {id(node.op) for node in self.fgraph.apply_nodes if _wants_c(node)}
        patched = []
        for node in self.fgraph.apply_nodes:
            op = node.op
            if id(op) not in c_ops and "make_thunk" not in vars(op):
                op.make_thunk = partial(_py_thunk, op)
                patched.append(op)
        try:
            return super().make_all(*args, **kwargs)
        finally:
            for op in patched:
                vars(op).pop("make_thunk", None)


def _mode(kind: str) -> Mode:
    """Compile mode for ``kind`` ("fast_run": the configured linker; "fast_compile": one-offs)."""
    if kind == "fast_compile":
        return Mode(linker=_SelectiveCVM(use_cloop=True),
                    optimizer="fast_compile").excluding(*_EXCLUDED)
    linker = config.linker
    if kind == "fast_run_c" and linker == "cvm":
        # small graphs evaluated hundreds of times per fit (GLMM / CLMM inner and outer
        # functions): C thunks everywhere. wine's CLMM fit: 0.06 s warm, against 0.26 s with
        # Python thunks (~64 per call at ~15 µs each); the price is more C modules when cold.
        return Mode(linker="cvm", optimizer="fast_run").excluding(*_EXCLUDED)
    if linker == "numba":
        return pytensor.compile.mode.get_mode("NUMBA").excluding(*_EXCLUDED)
    if linker == "cvm":
        linker = _SelectiveCVM(use_cloop=True)
    return Mode(linker=linker, optimizer="fast_run").excluding(*_EXCLUDED)


def compiled(key: Hashable, build: Callable[[], tuple[list, list]], kind: str = "fast_run",
             **kwargs) -> Callable:
    """Return the compiled function for ``key``, building it with ``build()`` on first use.

    ``build`` returns ``(inputs, outputs)``; ``kind`` is ``"fast_run"`` (the configured linker) or
    ``"fast_compile"`` (few graph rewrites, for one-off evaluations).

    Looked up in this process's cache, then on disk (a function pickled after its graph rewrites,
    keyed by ``key``, ``kind``, the linker settings and :func:`_source_hash`, in
    ``config.cache_dir`` when that folder is private to this user; the key stored in the entry
    must match); built, rewritten and saved there otherwise. Unpickling only re-links the thunks (C modules come from PyTensor's own
    cache), which is what makes a new process's first fit fast.
    """
    full_key = (key, kind, config.linker, config.c_thunks, tuple(sorted(kwargs.items())))
    with _LOCK:
        fn = _CACHE.get(full_key)
    if fn is None:
        configure_pytensor()
        path = _disk_path(full_key)
        text = _key_text(full_key) if path is not None else None
        fn = _load(path, text)
        if fn is None:
            inputs, outputs = build()
            fn = pytensor.function(inputs, outputs, mode=_mode(kind), on_unused_input="ignore",
                                   **kwargs)
            cache_stats["compiled"] += 1
            _save(path, fn, text)
        with _LOCK:
            _CACHE[full_key] = fn
    return fn


def clear_cache() -> None:
    """Forget all compiled functions (they are rebuilt on demand)."""
    with _LOCK:
        _CACHE.clear()
