"""Import PyTensor without importing ``scipy.signal`` (and, through it, ``scipy.stats``).

PyTensor 2.x imports ``scipy.signal`` at start-up for one name, ``convolve`` (the Python
implementation of its ``Convolve1d`` Op, ``pytensor/tensor/signal/conv.py``), and
``scipy.signal`` imports ``scipy.stats``, ``scipy.spatial`` and ``scipy.interpolate``: about
0.4 s of the 1.3 s that ``import mixedppl`` took in a new process (2-core machine, warm file
cache; ``python -X importtime``), none of it needed to fit a model. statsmodels' whole
``MixedLM`` process takes 1.1 s, so this is a third of the time a new user's first result may
cost (issue 12).

:func:`import_pytensor` imports PyTensor while ``sys.modules["scipy.signal"]`` is a stand-in
whose only attribute is a ``convolve`` that imports the real ``scipy.signal`` on its first call,
then removes the stand-in: a later ``import scipy.signal`` (by the user or by PyTensor) gets the
real module, and PyTensor's ``Convolve1d`` runs scipy's ``convolve`` as before. Nothing happens
when PyTensor or ``scipy.signal`` is already imported.

While PyTensor imports, NumPy's lazily imported submodules that nothing here uses
(``numpy.f2py``, ``numpy.testing``, ``numpy.ma``, …; :data:`_UNUSED_NUMPY`) are also hidden from
``from numpy import *`` and ``dir(numpy)``: PyTensor imports ``scipy.special``, whose vendored
``array_api_compat.numpy`` clones NumPy's namespace by both, which imported every one of them
(``numpy.f2py`` alone 110 ms, ~0.15 s in all). NumPy's ``__all__`` and ``__dir__`` are
restored afterwards, and the submodules import as usual when used (``numpy.ma`` by pandas'
masked arrays, ``numpy.testing`` by a test).

mixedppl itself uses ``scipy.stats`` only where a function needs a distribution it does not get
from ``scipy.special`` (``scipy.stats`` is then imported on that call, through scipy's lazy
submodule access ``scipy.stats``).
"""

from __future__ import annotations

import importlib
import sys
import threading
import types

__all__ = ["import_pytensor"]

_LOCK = threading.Lock()
#: NumPy submodules hidden while PyTensor (and scipy.special) import; see the module docstring.
_UNUSED_NUMPY = frozenset({"f2py", "testing", "ma", "polynomial", "ctypeslib", "rec", "char",
                           "core", "strings"})


class _HiddenNumpySubmodules:
    """``numpy.__all__`` and ``dir(numpy)`` without :data:`_UNUSED_NUMPY`, restored on exit."""

    def __enter__(self):
        import numpy
        self.numpy = numpy
        self.saved = {k: numpy.__dict__[k] for k in ("__all__", "__dir__") if k in numpy.__dict__}
        if "__all__" in self.saved:
            numpy.__all__ = [n for n in self.saved["__all__"] if n not in _UNUSED_NUMPY]
        if "__dir__" in self.saved:
            listing = self.saved["__dir__"]
            numpy.__dir__ = lambda: [n for n in listing() if n not in _UNUSED_NUMPY]
        return self

    def __exit__(self, *exc) -> None:
        self.numpy.__dict__.update(self.saved)


def _convolve(*args, **kwargs):
    """``scipy.signal.convolve``, imported on the first call."""
    return importlib.import_module("scipy.signal").convolve(*args, **kwargs)


def import_pytensor() -> types.ModuleType:
    """Import and return ``pytensor`` (with ``pytensor.tensor``), without ``scipy.signal``.

    Examples
    --------
    >>> pytensor = import_pytensor()
    >>> import scipy.signal  # the real module, whatever came first
    >>> scipy.signal.convolve([1.0, 2.0], [1.0, 1.0]).tolist()
    [1.0, 3.0, 2.0]
    """
    with _LOCK:
        if "pytensor.tensor" in sys.modules or "scipy.signal" in sys.modules:
            importlib.import_module("pytensor.tensor")
            return sys.modules["pytensor"]
        stand_in = types.ModuleType("scipy.signal", "stand-in while PyTensor is imported "
                                    "(mixedppl.core.lean_import)")
        stand_in.convolve = _convolve
        sys.modules["scipy.signal"] = stand_in
        try:
            with _HiddenNumpySubmodules():
                importlib.import_module("pytensor.tensor")
        finally:
            if sys.modules.get("scipy.signal") is stand_in:
                del sys.modules["scipy.signal"]
            scipy = sys.modules.get("scipy")
            if scipy is not None and scipy.__dict__.get("signal") is stand_in:
                del scipy.__dict__["signal"]  # scipy's lazy __getattr__ imports the real one
        return sys.modules["pytensor"]
