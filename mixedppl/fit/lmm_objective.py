"""The compiled profiled deviance d(θ) of one linear mixed model, reusable across refits.

``LMMObjective(spec)`` forms the cross-product blocks once (the only pass over the rows), picks the
graph structure, and evaluates ``d(θ), ∇d(θ)`` with the function compiled for that structure (cached
in-process, so refits with a new response, new weights or fixed parameters compile nothing).

θ is the terms' parameters (:mod:`mixedppl.spec.covstruct`); the graphs take lme4's layout, the
lower triangles of the T_k. For a structured term (``ar1(times + 0 | g)``) the objective maps θ
to that layout (:meth:`~mixedppl.spec.model_spec.ModelSpec.lower_triangle`) and its gradient by
the chain rule, ``∇_θ d = Jᵀ ∇ d``, so one compiled graph serves every structure.

On the NumPy tier (a structure's first fit) a one-term model's deviance and variance-parameter
functions are those of the dense layout with an empty second block (:data:`_ONE_TERM_AS`), so
adding a second scalar term compiles nothing but its estimates (docs/compile.md, sixth pass).
"""

from __future__ import annotations

from functools import cached_property

import time

import numpy as np
import pytensor.tensor as pt

from ..graph.crossprod import CrossProducts, crossproducts
from ..graph.lmm import LMMStructure, ProfiledLMM
from ..graph.lmm_estimates import estimates
from ..graph.lmm_inputs import lmm_inputs, lmm_structure
from ..spec.model_spec import ModelSpec
from ..core.compile import compiled

__all__ = ["LMMObjective"]

_EST_KEYS = ("beta", "Lxx", "b1", "pwrss", "ldL2", "ldRX2", "deviance")


#: The graph key a one-term model's deviance and variance-parameter functions use on the NumPy
#: tier: the dense layout with an empty second block (q_R = 0), so that the first model with a
#: second scalar term — a crossed design, (1 + x | g) + (1 | item) — compiles nothing new.
_ONE_TERM_AS = ("dense", True)


def _pad_one_term(fn, n_after: int = 0):
    """``fn`` of the dense layout called with a one-term model's inputs (and ``n_after`` more
    inputs after the data): A_RR, A_RF, Λ_R's layout and A_R1 empty, their shapes from the first
    term's blocks."""
    empty_int = np.zeros(0, dtype=np.int64)

    def padded(theta, reml, A11, A1F, *rest):
        G1, ell1, m = np.shape(A1F)
        cut = len(rest) - n_after
        return fn(theta, reml, A11, A1F, *rest[:cut], np.zeros((0, 0)), np.zeros((0, m)),
                  *([empty_int] * 5), np.zeros((0, G1, ell1)), *rest[cut:])

    return padded


def _numpy_key(key: tuple) -> tuple:
    """The graph key whose NumPy-tier graphs serve ``key`` (:data:`_ONE_TERM_AS` for one term)."""
    return _ONE_TERM_AS if key[0] == "none" else key


def _deviance_build(key):
    """The deviance and its θ-gradient, the graph for ``key``."""
    def build():
        g = ProfiledLMM(key)
        return g.inputs, [g.deviance, pt.grad(g.deviance, g.theta)]
    return build


def _numpy_deviance(key: tuple):
    """The NumPy tier's deviance for a graph key (a one-term key through the dense layout)."""
    generic = _numpy_key(key)
    fn = compiled(("lmm_deviance", generic), _deviance_build(generic), kind="fast_run_numpy")
    fn.trust_input = True
    return _pad_one_term(fn) if generic != key else fn


def _deviance_fn(structure: LMMStructure):
    key = structure.graph_key
    fn = compiled(("lmm_deviance", key), _deviance_build(key),
                  numpy_build=lambda: _numpy_deviance(key))
    if hasattr(fn, "maker"):                           # a compiled function, not the padding
        fn.trust_input = True
    return fn


def _estimates_fn(structure: LMMStructure):
    def build():
        g = ProfiledLMM(structure)
        est = estimates(g)
        outs = [est[k] for k in _EST_KEYS] + list(est["condvar"])
        if "b_rest" in est:
            outs.append(est["b_rest"])
        return g.inputs, outs
    return compiled(("lmm_estimates", structure.graph_key), build, kind="fast_compile")


def _varpar_fn(structure: LMMStructure):
    """∇ of the (θ, σ) deviance and vec(vcov β) = vec(σ²(RXᵀRX)⁻¹), as functions of (θ, σ).

    The deviance with σ not profiled out is
    ``d(θ, σ) = log|L|² + reml·log|RX|² + r²(θ)/σ² + (n − reml·p)·log(2πσ²) − Σ log w``.
    """
    key = structure.graph_key
    generic = _numpy_key(key)

    def build():
        g = ProfiledLMM(generic)
        sigma = pt.dscalar("sigma")
        nmp = g.n - g.reml * g.p
        dev_vp = (g.ldL2 + g.reml * g.ldRX2 + g.pwrss / sigma**2
                  + nmp * pt.log(2 * np.pi * sigma**2) - g.ldW)
        gt, gs = pt.grad(dev_vp, [g.theta, sigma])
        Lxx = g.LF[:g.p, :g.p]
        vcov = sigma**2 * pt.linalg.inv(pt.dot(Lxx, Lxx.T))
        return [*g.inputs, sigma], [pt.concatenate([gt, gs[None]]), vcov.flatten()]
    fn = compiled(("lmm_varpar", generic), build, kind="fast_compile")
    return _pad_one_term(fn, n_after=1) if generic != key else fn


class LMMObjective:
    """Profiled REML/ML deviance of a model, with its data prepared as graph inputs.

    Parameters
    ----------
    spec : ModelSpec
    reml : bool
    y, weights : ndarray, optional
        Replace the spec's response / weights (refits reuse the compiled function).
    structure : LMMStructure, optional
        The graph structure (default: chosen from the cross-products).
    cp : CrossProducts, optional
        Cross-products formed elsewhere (summed over a Dask DataFrame's partitions,
        :mod:`mixedppl.distributed`); the spec's rows are then not read.
    """

    def __init__(self, spec: ModelSpec, reml: bool = True, y: np.ndarray | None = None,
                 weights: np.ndarray | None = None, structure: LMMStructure | None = None,
                 cp: CrossProducts | None = None):
        self.spec, self.reml = spec, bool(reml)
        self.cp: CrossProducts = cp if cp is not None else crossproducts(spec, y=y,
                                                                          weights=weights)
        self.structure = structure or lmm_structure(spec, self.cp)
        self.data = lmm_inputs(spec, self.cp, self.structure)
        self._reml = np.array(1.0 if reml else 0.0, dtype=np.float64)
        self.compile_seconds = 0.0

    @property
    def graph_inputs(self) -> tuple:
        """The compiled graphs' inputs after θ: the REML flag, then the prepared data (for
        other graphs of the same structure, e.g. the profiles')."""
        return (self._reml, *self.data)

    @property
    def flops_per_eval(self) -> float:
        """Rough dense work per evaluation (Schur complement and, when dense, A_R1 M1 A_1R)."""
        if self.structure.r_mode == "none":
            return float(self.cp.A11.size * 10)
        qR, q1 = self.cp.AR1.shape
        return float(qR) ** 3 + (float(qR) ** 2 * q1 if self.structure.r_mode == "dense" else 0.0)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_fn")}

    @cached_property
    def _fn_dev(self):
        t0 = time.perf_counter()
        fn = _deviance_fn(self.structure)
        self.compile_seconds = time.perf_counter() - t0
        return fn

    def compile(self) -> "LMMObjective":
        """Compile the deviance function now (or fetch it from the cache); returns self."""
        self._fn_dev
        return self

    def layout(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """θ in the graphs' layout (lme4's) and the Jacobian of the map (None: the identity)."""
        return self.spec.graph_theta(theta)

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """d(θ) and ∇d(θ)."""
        full, J = self.layout(theta)
        f, g = self._fn_dev(full, self._reml, *self.data)
        g = np.asarray(g)
        return float(f), g if J is None else J.T @ g

    def deviance(self, theta: np.ndarray) -> float:
        return self(theta)[0]

    def estimates(self, theta: np.ndarray) -> dict:
        """β̂, R_X, b (per term), pwrss, log-determinants and unscaled conditional variances."""
        outs = _estimates_fn(self.structure)(self.layout(theta)[0], self._reml, *self.data)
        res = dict(zip(_EST_KEYS, outs[:len(_EST_KEYS)]))
        k = len(self.spec.terms)
        b_terms = [np.asarray(res.pop("b1"))]
        res["condvar"] = [outs[len(_EST_KEYS)]]
        if k > 1:
            flat_b, flat_cv = outs[len(_EST_KEYS) + 2], outs[len(_EST_KEYS) + 1]
            start = start_cv = 0
            for t in self.spec.terms[1:]:
                b_terms.append(flat_b[start:start + t.q].reshape(t.n_levels, t.n_cols))
                size = t.n_levels * t.n_cols ** 2
                res["condvar"].append(flat_cv[start_cv:start_cv + size].reshape(
                    t.n_levels, t.n_cols, t.n_cols))
                start += t.q
                start_cv += size
        res["b"] = b_terms
        return res

    def satterthwaite_parts(self, theta: np.ndarray, sigma: float,
                            rel_step: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
        """Hessian of the (θ, σ) deviance and Jacobian of vec(vcov β) at (θ, σ).

        Central differences of the graph's exact gradient (and of vcov β): accurate to ~1e-9
        relative, where lmerTest differentiates the deviance twice numerically. A second-order
        autodiff graph of the unrolled blocked Cholesky takes minutes to build and compile.
        """
        fn = _varpar_fn(self.structure)
        x0 = np.append(np.asarray(theta, float), sigma)

        def at(x):
            full, J = self.layout(x[:-1])
            grad, vflat = fn(full, self._reml, *self.data, np.array(x[-1], dtype=np.float64))
            grad = np.asarray(grad)
            if J is not None:
                grad = np.append(J.T @ grad[:-1], grad[-1])
            return grad, np.asarray(vflat)

        cols_h, cols_j = [], []
        for i in range(len(x0)):
            h = rel_step * max(abs(x0[i]), 1e-2)
            up, down = x0.copy(), x0.copy()
            up[i] += h
            down[i] -= h
            (gu, vu), (gd, vd) = at(up), at(down)
            cols_h.append((gu - gd) / (2 * h))
            cols_j.append((vu - vd) / (2 * h))
        hess = np.column_stack(cols_h)
        return (hess + hess.T) / 2, np.column_stack(cols_j)
