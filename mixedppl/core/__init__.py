"""The layer every other layer may use; it imports nothing else from mixedppl.

- :mod:`~mixedppl.core.exceptions`: the errors and warnings mixedppl raises;
- :mod:`~mixedppl.core.control`: :class:`~mixedppl.core.control.Control`, the fit controls
  (``LmerControl`` is the same class) and :func:`~mixedppl.core.control.act`;
- :mod:`~mixedppl.core.compile`: :func:`~mixedppl.core.compile.compiled`, ``config``, the linker
  choice and the disk cache of compiled PyTensor functions;
- :mod:`~mixedppl.core.threads`: :func:`~mixedppl.core.threads.blas_threads_for` and the one
  threadpool controller.
"""
