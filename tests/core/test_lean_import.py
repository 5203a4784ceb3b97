"""``import mixedppl`` loads neither scipy.stats nor scipy.signal (core/lean_import.py).

Together they were ~0.3–0.6 s of every new process (PyTensor imports scipy.signal for one
function; scipy.stats was imported by results modules for a handful of distribution
functions that scipy.special has). A new import of either at module level brings that back.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from mixedppl.core.lean_import import import_pytensor


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                          "print(' '.join(m for m in sys.modules if m.startswith('scipy.s')))"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return set(out.stdout.split())


def test_import_loads_neither_scipy_stats_nor_signal():
    loaded = _modules_after("import mixedppl")
    assert not {m for m in loaded if m.startswith(("scipy.stats", "scipy.signal"))}, loaded


def test_a_fit_and_its_summary_load_neither():
    loaded = _modules_after(
        "import mixedppl as mp\n"
        "fit = mp.lmer('Reaction ~ Days + (Days | Subject)', mp.datasets.load('sleepstudy'))\n"
        "str(fit.summary())")
    assert not {m for m in loaded if m.startswith(("scipy.stats", "scipy.signal"))}, loaded


def test_pytensor_convolve_still_works_after_the_lean_import():
    import_pytensor()
    import pytensor.tensor as pt
    from pytensor.tensor.signal import convolve1d
    x = pt.dvector("x")
    f = convolve1d(x, pt.as_tensor([1.0, -1.0])).eval({x: np.array([1.0, 3.0, 6.0])})
    np.testing.assert_allclose(f, np.convolve([1.0, 3.0, 6.0], [1.0, -1.0]))


def test_import_leaves_numpys_unused_submodules_and_namespace_alone():
    """``import mixedppl`` does not import numpy.f2py / numpy.testing (scipy.special's
    array-API shim cloned NumPy's whole namespace), and leaves ``numpy.__all__`` and
    ``dir(numpy)`` as they were; the submodules still import when asked for."""
    code = (
        "import sys, numpy\n"
        "before_all, before_dir = list(numpy.__all__), sorted(dir(numpy))\n"
        "import mixedppl\n"
        "assert 'numpy.f2py' not in sys.modules and 'numpy.testing' not in sys.modules\n"
        "assert list(numpy.__all__) == before_all and sorted(dir(numpy)) == before_dir\n"
        "import numpy.testing\n"
        "numpy.testing.assert_allclose(numpy.polynomial.hermite_e.hermegauss(3)[1].sum(),"
        " 2.5066282746310002)\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
