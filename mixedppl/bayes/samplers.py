"""The NUTS implementations behind ``fit.sample(sampler=...)``: PyMC's, nutpie's, NumPyro's,
BlackJAX's.

- ``"nutpie"`` (the default when installed: ``pip install mixedppl[bayes]``): nutpie's Rust NUTS
  on the model's PyMC log-density and gradient, compiled by PyTensor (its C / NumPy backends, not
  numba: the blocked-Cholesky Ops of the marginalised LMM have no numba implementation, and
  numba's first JIT of a model costs more than the C compiler), handed to nutpie as a Python
  callable (``nutpie.from_pyfunc``). Same posterior variables, coords and ``sample_stats``
  (``diverging``, ``n_steps``, ``step_size``) as PyMC's sampler.
  Measured on sleepstudy's marginalised ``(Days | Subject)`` (CPU time, loaded 2-core machine):
  ``nutpie.compile_pymc_model(backend="numba")`` on the closed-form one-factor graph compiles
  entirely in numba but costs 66 s of CPU to JIT (then 1.4 s to sample 4 × 2000 iterations),
  against ~2.5 s of compile and ~7.5 s of sampling here (65 µs per logp + gradient, the rest
  nutpie's Python callback): the whole call is cheaper this way. ``jax`` is not installed here.
- ``"pymc"``: ``pm.sample`` (PyMC's Python NUTS loop).
- ``"numpyro"``, ``"blackjax"``: ``pm.sample(nuts_sampler=...)`` through JAX; they need
  ``jax`` and ``numpyro`` / ``blackjax``, and a model whose every Op has a JAX implementation
  (the explicit models, ``marginalize=False``).
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np

__all__ = ["SAMPLERS", "default_sampler", "check_sampler", "sample_nutpie"]

#: sampler name → the packages it needs
SAMPLERS = {"pymc": (), "nutpie": ("nutpie",), "numpyro": ("jax", "numpyro"),
            "blackjax": ("jax", "blackjax")}


def default_sampler() -> str:
    """``"nutpie"`` when it is importable, else ``"pymc"``.

    Examples
    --------
    >>> default_sampler() in ("nutpie", "pymc")
    True
    """
    return "nutpie" if importlib.util.find_spec("nutpie") is not None else "pymc"


def check_sampler(sampler: str) -> str:
    """``sampler`` if it is known and its packages are importable; otherwise a ``ValueError``
    (unknown name) or an ``ImportError`` naming what to install.

    Examples
    --------
    >>> check_sampler("pymc")
    'pymc'
    >>> check_sampler("stan")
    Traceback (most recent call last):
    ...
    ValueError: unknown sampler 'stan'; use one of ['pymc', 'nutpie', 'numpyro', 'blackjax']
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; use one of {list(SAMPLERS)}")
    missing = [p for p in SAMPLERS[sampler] if importlib.util.find_spec(p) is None]
    if missing:
        extra = "pip install mixedppl[bayes]" if sampler == "nutpie" else \
            f"pip install {' '.join(SAMPLERS[sampler])}"
        raise ImportError(f"sampler={sampler!r} needs {', '.join(missing)}, which is not "
                          f"installed: {extra} (or use sampler='pymc')")
    return sampler


def _flat_layout(model):
    """(value vars, their shapes, slices into the flat unconstrained vector)."""
    ip = model.initial_point()
    vv = list(model.value_vars)
    shapes = [np.shape(ip[v.name]) for v in vv]
    sizes = [int(np.prod(s)) for s in shapes]
    stops = np.cumsum(sizes)
    slices = [slice(int(b - n), int(b)) for b, n in zip(stops, sizes)]
    return vv, shapes, slices, ip


def _functions(model, mode):
    """Compiled flat logp + gradient and the flat point → constrained variables map."""
    import pytensor
    import pytensor.tensor as pt

    vv, shapes, slices, ip = _flat_layout(model)
    x = pt.dvector("x")
    pieces = {v: x[s].reshape(sh) for v, s, sh in zip(vv, slices, shapes)}
    logp = model.logp()
    grads = pytensor.grad(logp, vv)
    grad = pt.concatenate([pt.as_tensor_variable(g).ravel() for g in grads])
    logp, grad = pytensor.clone_replace([logp, grad], pieces)
    f_logp = pytensor.function([x], [logp, grad], mode=mode, on_unused_input="ignore")
    names = [rv.name for rv in model.free_RVs] + [d.name for d in model.deterministics]
    outs = model.replace_rvs_by_values([*model.free_RVs, *model.deterministics])
    outs = pytensor.clone_replace(outs, pieces)
    f_expand = pytensor.function([x], outs, mode=mode, on_unused_input="ignore")
    x0 = np.concatenate([np.ravel(ip[v.name]) for v in vv]).astype(float)
    return f_logp, f_expand, names, x0


def sample_nutpie(model, draws: int, tune: int, chains: int, random_seed, progressbar: bool,
                  target_accept: float, cores: int | None = None, mode=None):
    """Sample ``model`` with nutpie's NUTS; returns (InferenceData, seconds of sampling).

    The posterior holds the model's free variables (constrained) and deterministics with their
    dims; ``sample_stats`` nutpie's (``diverging``, ``n_steps``, ``step_size``, ...).

    Examples
    --------
    >>> import pymc as pm
    >>> with pm.Model() as m:
    ...     _ = pm.HalfNormal("s", 1.0)
    >>> idata, _ = sample_nutpie(m, 100, 100, 1, 1, False, 0.8)  # doctest: +SKIP
    """
    import nutpie
    from nutpie.compiled_pyfunc import from_pyfunc

    f_logp, f_expand, names, x0 = _functions(model, mode)
    ip = model.initial_point()
    free = {rv.name for rv in model.free_RVs}
    shapes = [tuple(np.shape(ip[model.rvs_to_values[model[n]].name])) if n in free
              else tuple(int(d) for d in model[n].shape.eval()) for n in names]
    dims = {n: tuple(model.named_vars_to_dims[n]) for n in names if n in model.named_vars_to_dims}
    used = {d for ds in dims.values() for d in ds}
    coords = {k: [str(c) for c in v] for k, v in model.coords.items() if k in used}

    # nutpie runs its chains in threads: each gets its own copy of the compiled functions (a
    # PyTensor function's storage is not shared safely)
    def make_logp_fn():
        fn = f_logp.copy()
        fn.trust_input = True  # nutpie passes a float64 vector of the right length

        def logp(x, **_):
            lp, g = fn(np.asarray(x, dtype=np.float64))
            return float(lp), np.array(g, dtype=np.float64)
        return logp

    def make_expand_fn(seed1, seed2, chain):
        fn = f_expand.copy()

        def expand(x, **_):
            return {n: np.asarray(v, dtype=np.float64).reshape(s)
                    for n, v, s in zip(names, fn(x), shapes)}
        return expand

    rng = np.random.default_rng(random_seed)

    def initial_point(seed):
        r = np.random.default_rng(seed)
        return x0 + r.uniform(-1, 1, size=x0.shape)  # PyMC's jitter+adapt_diag start

    compiled_model = from_pyfunc(
        ndim=len(x0), make_logp_fn=make_logp_fn, make_expand_fn=make_expand_fn,
        expanded_dtypes=[np.dtype("float64")] * len(names), expanded_shapes=shapes,
        expanded_names=names, coords=coords, dims=dims, make_initial_point_fn=initial_point)
    start = time.perf_counter()
    idata = nutpie.sample(compiled_model, draws=draws, tune=tune, chains=chains,
                          cores=cores or chains, seed=int(rng.integers(2 ** 31)),
                          progress_bar=progressbar, save_warmup=False,
                          target_accept=target_accept)
    seconds = time.perf_counter() - start
    idata.posterior = idata.posterior.assign_coords(
        {k: list(model.coords[k]) for k in coords})  # nutpie takes string coords only
    return idata, seconds
