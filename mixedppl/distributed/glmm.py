r"""Fit a binomial (logit) or Poisson (log) GLMM to a Dask DataFrame by lme4's Laplace deviance.

Every inner step is one map-reduce over the partitions, whose rows stay persisted on the workers
(:func:`~mixedppl.spec.dask_spec.partition_spec`, computed once): at the current
:math:`\eta = X\beta + Z\Lambda_\theta u + o` each partition returns
:math:`\sum_i \log p(y_i \mid \eta_i)` and the weighted cross-products
:math:`Z^\top W Z` (blocked as the LMM's, :mod:`mixedppl.graph.crossprod`) and
:math:`Z^\top s` with :math:`s_i = \partial \log p / \partial \eta_i`,
:math:`W_i = -\partial^2 \log p / \partial\eta_i^2` (the canonical links', where the observed and
expected weights agree). On the client, Newton's method with step halving minimises
:math:`g(u) = -2\sum_i \log p(y_i \mid \eta_i) + \|u\|^2`:

.. math:: u \leftarrow u - A^{-1}(u - \Lambda^\top Z^\top s), \qquad
          A = \Lambda^\top Z^\top W Z \Lambda + I,

and the Laplace deviance is :math:`D(\theta, \beta) = g(\hat u) + \log|A(\hat u)|` — the in-memory
fit's (:class:`~mixedppl.fit.laplace.LaplaceObjective`). The outer problem over (θ, β) is the
same L-BFGS-B with lme4's boundary rule (:func:`~mixedppl.fit.optimize.minimize_bounded`), on
the exact gradient of D (:meth:`DaskLaplace.gradient`: the implicit-function derivative through
û, one more map-reduce after the mode); the Hessian for the SEs, ``vcov(β) = [2 H⁻¹]_ββ``, by
central differences of that gradient (step 10⁻⁴·max(|x|, 1)), as the in-memory fit's. For
structured terms (Λ not linear in θ) the gradient is central differences of D (step
10⁻⁴·max(|x|, 0.1)) and the Hessian second differences of D (step 10⁻³·max(|x|, 0.1)).

A is formed densely on the client (q × q): this path is for q up to a few thousand random
effects; the LMM path (:mod:`.lmm`) has no such limit.

References
----------
Bates et al. (2015), J. Stat. Softw. 67(1), section 3.6 (PIRLS) and lme4's ``glmer``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial

import numpy as np
import scipy.sparse as sp
from scipy import linalg, special

from ..core.dask import reduce_delayed, require_dask
from ..core.exceptions import ModelSpecError
from ..core.progress import progress_bar
from ..fit.laplace import conditional_effects, fit_checks
from ..fit.lmm_fit import check_boundary
from ..fit.optimize import difference_hessian, minimize_bounded
from ..fit.records import LaplaceFit
from ..graph.crossprod import crossproducts
from ..spec.dask_spec import for_workers, partition_spec
from ..spec.model_spec import ModelSpec
from ..spec.reterm import relative_factors

__all__ = ["DaskLaplace", "fit_glmm_dask", "SUPPORTED"]

#: (family, link) pairs this path fits.
SUPPORTED = {("binomial", "logit"), ("binomial", "probit"), ("binomial", "cloglog"),
             ("poisson", "log")}
_CANONICAL = {("binomial", "logit"), ("poisson", "log")}


def _inverse_link(link: str, eta: np.ndarray):
    """(log μ, log(1 − μ), μ', μ'') of a binomial link: μ' = dμ/dη, μ'' = d²μ/dη²."""
    if link == "logit":
        log_mu, log_1m = -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta)
        mu = np.exp(log_mu)
        d1 = mu * (1.0 - mu)
        return log_mu, log_1m, d1, d1 * (1.0 - 2.0 * mu)
    if link == "probit":
        d1 = np.exp(-0.5 * eta * eta) / np.sqrt(2.0 * np.pi)
        return special.log_ndtr(eta), special.log_ndtr(-eta), d1, -eta * d1
    e = np.exp(eta)                                    # cloglog: μ = 1 − exp(−e^η)
    d1 = e * np.exp(-e)
    return np.log(-np.expm1(-e)), -e, d1, d1 * (1.0 - e)


def _row_terms(kind: tuple[str, str], y: np.ndarray, n: np.ndarray, eta: np.ndarray):
    """(Σ log p, s = ∂log p/∂η, W_F, W_O) of the rows: the score, the Fisher weights
    n μ'²/V(μ) (lme4's, which log|A| uses) and the observed −∂²log p/∂η² (the Hessian of the
    mode's problem; equal to W_F for the canonical links)."""
    family, link = kind
    if family == "binomial":
        log_mu, log_1m, d1, d2 = _inverse_link(link, eta)
        mu, one_m = np.exp(log_mu), np.exp(log_1m)
        V = mu * one_m
        ll = (special.gammaln(n + 1.0) - special.gammaln(y + 1.0) - special.gammaln(n - y + 1.0)
              + np.where(y > 0, y * log_mu, 0.0) + np.where(n - y > 0, (n - y) * log_1m, 0.0))
        resid = y - n * mu
        s = resid * d1 / V
        wF = n * d1 * d1 / V
        if link == "logit":
            return float(ll.sum()), s, wF, wF
        # −∂s/∂η = W_F − (y − nμ)·d/dη[μ'/V]
        dratio = d2 / V - d1 * d1 * (one_m - mu) / V ** 2
        return float(ll.sum()), s, wF, wF - resid * dratio
    mu = np.exp(eta)
    ll = n * (np.where(y > 0, y * eta, 0.0) - mu - special.gammaln(y + 1.0))
    return float(ll.sum()), n * (y - mu), n * mu, n * mu


def _w_prime(kind: tuple[str, str], n: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """∂W_F/∂η of the rows: for the binomial n[2μ'μ''/V − μ'³(1 − 2μ)/V²] (logit:
    n μ(1 − μ)(1 − 2μ)), for the Poisson log link n μ."""
    family, link = kind
    if family == "binomial":
        log_mu, log_1m, d1, d2 = _inverse_link(link, eta)
        mu, one_m = np.exp(log_mu), np.exp(log_1m)
        V = mu * one_m
        return n * (2.0 * d1 * d2 / V - d1 ** 3 * (one_m - mu) / V ** 2)
    return n * np.exp(eta)


def _eta(rows: ModelSpec, beta: np.ndarray, b: list) -> np.ndarray:
    eta = rows.X @ beta + rows.offset
    for t, bk in zip(rows.terms, b):
        eta = eta + np.einsum("ij,ij->i", t.z, bk[t.codes])
    return eta


def _z_columns(rows: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Z's non-zeros by row: column indices and values, (n, Σℓ_k) each (u's layout: term-major,
    level-major)."""
    cols, vals, start = [], [], 0
    for t in rows.terms:
        cols.append(start + t.codes[:, None] * t.n_cols + np.arange(t.n_cols)[None, :])
        vals.append(t.z)
        start += t.q
    return np.hstack(cols), np.hstack(vals)


def _gradient_stats(rows: ModelSpec | None, At: np.ndarray, beta: np.ndarray, b: list,
                    kind: str):
    """One partition's (Xᵀr, Zᵀr), r_i = W'_i h_i with h_i = z_iᵀ Λ A⁻¹ Λᵀ z_i (``At``): the
    derivative of log|A| through η (see :meth:`DaskLaplace.gradient`)."""
    if rows is None:
        return None
    eta = _eta(rows, beta, b)
    _, n = rows.counts()
    J, V = _z_columns(rows)
    h = np.zeros(rows.n)
    for a in range(J.shape[1]):
        for c in range(J.shape[1]):
            h += V[:, a] * V[:, c] * At[J[:, a], J[:, c]]
    r = _w_prime(kind, n, eta) * h
    Ztr = np.bincount(J.ravel(), weights=(V * r[:, None]).ravel(), minlength=At.shape[0])
    return rows.X.T @ r, Ztr


def _step_stats(rows: ModelSpec | None, beta: np.ndarray, b: list, kind: str):
    """One partition's (Σ log p, blocks of Z'WZ and Z's) at η = Xβ + Zb + o."""
    if rows is None:
        return None
    eta = _eta(rows, beta, b)
    y, n = rows.counts()
    ll, s, w, w_obs = _row_terms(kind, y, n, eta)
    working = np.where(w > 0, s / np.where(w > 0, w, 1.0), 0.0)
    rows0 = replace(rows, offset=np.zeros(rows.n))
    cp = crossproducts(rows0, y=working, weights=w)
    if kind in _CANONICAL:
        return ll, cp
    # Z'W_O Z, Z'W_O X for the gradient's du/dx (the working column unused)
    return ll, cp, crossproducts(rows0, y=np.zeros(rows.n), weights=w_obs)


def _sum(parts: list):
    out = None
    for v in parts:
        if v is not None:
            out = v if out is None else tuple(a + b for a, b in zip(out, v))
    return out


def _dense_ZWZ(cp, q1: int) -> np.ndarray:
    """Z'WZ (q × q) from the blocks (term 1 first, level-major, then the other terms)."""
    G, ell, _ = cp.A11.shape
    qR = 0 if cp.ARR is None else cp.ARR.shape[0]
    M = np.zeros((q1 + qR, q1 + qR))
    idx = np.arange(q1).reshape(G, ell)
    M[idx[:, :, None], idx[:, None, :]] = cp.A11
    if qR:
        M[q1:, q1:] = cp.ARR
        AR1 = cp.AR1.toarray()
        M[q1:, :q1], M[:q1, q1:] = AR1, AR1.T
    return M


def _dense_lambda(spec: ModelSpec, theta: np.ndarray) -> np.ndarray:
    return linalg.block_diag(*[np.kron(np.eye(t.n_levels), T)
                               for t, T in zip(spec.terms, relative_factors(spec.terms, theta))])


class DaskLaplace:
    """lme4's Laplace deviance D(θ, β) of a template spec of a Dask DataFrame.

    ``obj(x) -> (D, ∇D)`` with x = (θ, β), the gradient exact (:meth:`gradient`); one
    map-reduce per inner Newton step over the partitions' persisted rows, and one for the
    gradient.

    Examples
    --------
    >>> import numpy as np, mixedppl as mp, dask.dataframe as dd
    >>> from mixedppl.spec.dask_spec import build_dask_spec
    >>> cbpp = mp.datasets.load("cbpp")
    >>> f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    >>> obj = DaskLaplace(build_dask_spec(f, dd.from_pandas(cbpp, npartitions=3), "binomial"))
    >>> round(obj.deviance(np.array([0.642261, -1.398532, -0.992333, -1.128672, -1.580314])), 3)
    184.053
    """

    def __init__(self, spec: ModelSpec, split_every: int = 8, exact_gradient: bool = True):
        dask = require_dask()
        key = (spec.family.name, spec.link.name)
        if key not in SUPPORTED:
            raise NotImplementedError(
                f"glmer on a Dask DataFrame fits {', '.join(f'{a} ({b})' for a, b in SUPPORTED)}"
                f"; this model is {key[0]} ({key[1]}): fit ddf.compute() (pandas) instead")
        self.spec, self.split_every, self.kind = spec, split_every, key
        ws = for_workers(spec)
        parts = [dask.delayed(partition_spec, pure=False)(ws, p)
                 for p in spec.source.ddf.to_delayed()]
        self.parts = list(dask.persist(*parts))
        self.n_theta, self.p, self.q = spec.n_theta, spec.p, spec.q
        self.q1 = spec.terms[0].q
        self.u = np.zeros(self.q)
        self.n_reduce = 0
        self.bar = None   # a progress bar counting the passes (set by fit_glmm_dask)
        self.exact_gradient = bool(exact_gradient)

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.asarray(x, float)
        return x[:self.n_theta], x[self.n_theta:self.n_theta + self.p], np.zeros(0)

    def _b(self, theta: np.ndarray, u: np.ndarray) -> list:
        b, start = [], 0
        for t, T in zip(self.spec.terms, relative_factors(self.spec.terms, theta)):
            b.append(u[start:start + t.q].reshape(t.n_levels, t.n_cols) @ T.T)
            start += t.q
        return b

    def _count_pass(self) -> None:
        """One more map-reduce over the partitions (and a step of the progress bar)."""
        self.n_reduce += 1
        if self.bar is not None:
            self.bar.update(1)

    def stats(self, theta: np.ndarray, beta: np.ndarray, u: np.ndarray):
        """(Σ log p, summed blocks) at (θ, β, u): one map-reduce."""
        b = self._b(theta, u)
        self._count_pass()
        return reduce_delayed(self.parts, partial(_step_stats, beta=np.asarray(beta, float),
                                                  b=b, kind=self.kind),
                              _sum, self.split_every)

    def _system(self, theta, u, st):
        self._last_stats = st
        ll, cp = st[:2]
        Lam = _dense_lambda(self.spec, theta)
        A = Lam.T @ _dense_ZWZ(cp, self.q1) @ Lam + np.eye(self.q)
        # Newton's matrix: the observed information where it differs (non-canonical links) and
        # is positive definite — quadratic convergence to û, which D's log|A| term and the
        # exact gradient need to rounding; else the Fisher one (lme4's PIRLS)
        self._A_step = A
        if len(st) > 2:
            AO = Lam.T @ _dense_ZWZ(st[2], self.q1) @ Lam + np.eye(self.q)
            try:
                linalg.cholesky(AO, lower=True)
                self._A_step = AO
            except linalg.LinAlgError:
                pass
        r = np.concatenate([cp.A1F[:, :, -1].ravel()] +
                           ([cp.ARF[:, -1]] if cp.ARF is not None else []))
        return A, u - Lam.T @ r, -2.0 * ll + float(u @ u)

    def mode(self, theta: np.ndarray, beta: np.ndarray, tol: float = 1e-14, maxit: int = 50):
        """û(θ, β) by Newton's method with step halving; returns (û, g(û), A(û)) and keeps
        the summed blocks at û in ``mode_stats``."""
        u = self.u.copy()
        st = self.stats(theta, beta, u)
        A, half_grad, g = self._system(theta, u, st)
        As, st_u = self._A_step, self._last_stats
        if not np.isfinite(g):
            u = np.zeros(self.q)
            A, half_grad, g = self._system(theta, u, self.stats(theta, beta, u))
            As, st_u = self._A_step, self._last_stats
        polish = 0
        for _ in range(maxit):
            step = linalg.solve(As, half_grad, assume_a="pos")
            dec = float(half_grad @ step)
            if dec < tol * max(1.0, abs(g)):
                # one more full step: D's log|A| term is first order in the error of û, and the
                # outer differences need D to rounding (Newton squares the error)
                polish += 1
                if polish > 1 or dec == 0.0:
                    break
                un = u - step
                An, hn, gn = self._system(theta, un, self.stats(theta, beta, un))
                if np.isfinite(gn) and gn <= g + 1e-13 * abs(g):
                    u, A, half_grad, g, st_u = un, An, hn, gn, self._last_stats
                break
            t = 1.0
            while t > 1e-10:
                un = u - t * step
                An, hn, gn = self._system(theta, un, self.stats(theta, beta, un))
                if np.isfinite(gn) and gn <= g + 1e-14 * abs(g):
                    break
                t /= 2
            else:
                break
            u, A, half_grad, g, As, st_u = un, An, hn, gn, self._A_step, self._last_stats
        self.u, self.mode_stats = u, st_u     # the blocks at û (the exact gradient's)
        return u, g, A

    def deviance(self, x: np.ndarray) -> float:
        """D(θ, β) = g(û) + log|A(û)|."""
        theta, beta, _ = self.split(x)
        try:
            _, g, A = self.mode(theta, beta)
            c = linalg.cholesky(A, lower=True)
        except (linalg.LinAlgError, ValueError):
            self.u = np.zeros(self.q)
            return np.inf
        return float(g + 2.0 * np.log(np.diag(c)).sum())

    def _steps(self, x: np.ndarray, rel: float) -> np.ndarray:
        return rel * np.maximum(np.abs(x), 0.1)

    def _lambda_derivatives(self, theta: np.ndarray) -> list[sp.csr_matrix]:
        """∂Λ/∂θ_k (sparse q × q): Λ is linear in θ for unstructured terms, so the difference
        Λ(θ + e_k) − Λ(θ) is the derivative."""
        base = relative_factors(self.spec.terms, theta)
        out = []
        for k in range(len(theta)):
            e = np.zeros(len(theta))
            e[k] = 1.0
            dT = [T1 - T0 for T1, T0 in zip(relative_factors(self.spec.terms, theta + e), base)]
            out.append(sp.block_diag([sp.kron(sp.identity(t.n_levels), sp.csr_matrix(D))
                                      for t, D in zip(self.spec.terms, dT)], format="csr"))
        return out

    def gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        r"""(D, ∇D) at x = (θ, β), the gradient exact: one more map-reduce after the mode.

        At the mode :math:`\hat u = \Lambda^	op Z^	op s` (:math:`\partial g/\partial u = 0`),
        so :math:`dD/dx = \partial_x g + \partial_x \log|A| + c^	op du/dx` with
        :math:`c = \partial_u \log|A| = \Lambda^	op Z^	op r`, :math:`r_i = W'_i h_i`,
        :math:`h_i = z_i^	op \Lambda A^{-1} \Lambda^	op z_i` (:math:`\delta\log|A| =
        \mathrm{tr}(A^{-1}\delta A)` and :math:`\delta W = W'\delta\eta`), and
        :math:`du/dx = -A^{-1}\,\partial_x(\partial_u g)/2` (implicit function). With
        :math:`M = Z^	op W Z` and :math:`\Lambda_k = \partial\Lambda/\partial	heta_k`:

        .. math::

            \partial D/\partialeta = -2X^	op s + X^	op r - X^	op W Z \Lambda A^{-1} c,

            \partial D/\partial	heta_k = (Z^	op r - 2 Z^	op s)^	op \Lambda_k \hat u
              + 2\,\mathrm{tr}(A^{-1}\Lambda^	op M \Lambda_k)
              + (A^{-1}c)^	op(\Lambda_k^	op Z^	op s - \Lambda^	op M \Lambda_k \hat u).

        The per-row part (:math:`X^	op r, Z^	op r`) is summed over the partitions with
        :math:`\Lambda A^{-1}\Lambda^	op` sent once to each worker; everything else comes from
        the blocks of the mode's last step.
        """
        x = np.asarray(x, float)
        theta, beta, _ = self.split(x)
        try:
            u, g, A = self.mode(theta, beta)
            cho = linalg.cho_factor(A, lower=True)
        except (linalg.LinAlgError, ValueError):
            self.u = np.zeros(self.q)
            return np.inf, np.zeros(len(x))
        f = float(g + 2.0 * np.log(np.diag(cho[0])).sum())
        ll, cp = self.mode_stats[:2]
        cpO = self.mode_stats[2] if len(self.mode_stats) > 2 else cp
        p, q = self.p, self.q
        Lam = _dense_lambda(self.spec, theta)
        M, MO = _dense_ZWZ(cp, self.q1), _dense_ZWZ(cpO, self.q1)
        Ainv = linalg.cho_solve(cho, np.eye(q))
        AO = Ainv if cpO is cp else linalg.inv(Lam.T @ MO @ Lam + np.eye(q))
        At = Lam @ Ainv @ Lam.T
        self._count_pass()
        Xtr, Ztr = reduce_delayed(self.parts, partial(_gradient_stats, beta=beta,
                                                      b=self._b(theta, u), kind=self.kind),
                                  _sum, self.split_every, shared=At)
        Zs = np.concatenate([cp.A1F[:, :, -1].ravel()] +
                            ([cp.ARF[:, -1]] if cp.ARF is not None else []))
        ZWX = np.concatenate([cpO.A1F[:, :, :p].reshape(-1, p)] +
                             ([cpO.ARF[:, :p]] if cpO.ARF is not None else []))
        Xs = cp.AFF[:p, p]
        c = Lam.T @ Ztr
        Ac = AO.T @ c                                   # (A_O⁻¹)ᵀ c
        g_beta = -2.0 * Xs + Xtr - ZWX.T @ (Lam @ Ac)
        N, NO = Lam.T @ M, Lam.T @ MO                   # Λᵀ M_F, Λᵀ M_O
        g_theta = np.empty(self.n_theta)
        for k, Lk in enumerate(self._lambda_derivatives(theta)):
            NLk = (Lk.T @ N.T).T                        # Λᵀ M_F Λ_k
            NOLk = NLk if cpO is cp else (Lk.T @ NO.T).T
            Lku = Lk @ u
            g_theta[k] = ((Ztr - 2.0 * Zs) @ Lku + 2.0 * np.sum(Ainv * NLk.T)
                          + Ac @ (Lk.T @ Zs - NOLk @ u))
        return f, np.concatenate([g_theta, g_beta])

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """(D, ∇D) at x: the exact gradient (:meth:`gradient`), or central differences of D
        for structured terms (θ not linear in Λ) or with ``exact_gradient=False``."""
        if self.exact_gradient and not self.spec.structured:
            u0 = self.u.copy()
            f, g = self.gradient(x)
            if not np.isfinite(f):
                self.u = u0 if np.all(np.isfinite(u0)) else np.zeros(self.q)
            return f, g
        return self.difference_gradient(x)

    def difference_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """(D, ∇D) at x, the gradient by central differences (step 10⁻⁴·max(|x|, 0.1))."""
        x = np.asarray(x, float)
        u0 = self.u.copy()
        f = self.deviance(x)
        if not np.isfinite(f):
            return np.inf, np.zeros(len(x))
        u_hat, grad = self.u.copy(), np.zeros(len(x))
        for j, h in enumerate(self._steps(x, 1e-4)):
            e = np.zeros(len(x))
            e[j] = h
            self.u = u_hat
            up = self.deviance(x + e)
            self.u = u_hat
            down = self.deviance(x - e)
            grad[j] = (up - down) / (2 * h)
        self.u = u_hat if np.all(np.isfinite(u_hat)) else u0
        return f, grad

    def hessian(self, x: np.ndarray, rel: float = 1e-3) -> np.ndarray:
        """Central second differences of D at x."""
        x = np.asarray(x, float)
        k, h = len(x), self._steps(x, rel)
        u_hat = self.u.copy()

        def at(v):
            self.u = u_hat
            return self.deviance(v)
        f0 = at(x)
        H = np.zeros((k, k))
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            H[i, i] = (at(x + ei) - 2 * f0 + at(x - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(k)
                ej[j] = h[j]
                H[i, j] = H[j, i] = (at(x + ei + ej) - at(x + ei - ej) - at(x - ei + ej)
                                     + at(x - ei - ej)) / (4 * h[i] * h[j])
        self.u = u_hat
        return H


def _glm_start(obj: DaskLaplace) -> np.ndarray:
    """β of the GLM without random effects (IRLS by map-reduce at θ = 0), lme4's start."""
    theta0, beta = np.zeros(obj.n_theta), np.zeros(obj.p)
    u0 = np.zeros(obj.q)
    for _ in range(50):
        ll, cp = obj.stats(theta0, beta, u0)[:2]
        p = obj.p
        XtWX, XtS = cp.AFF[:p, :p], cp.AFF[:p, p]
        step = linalg.solve(XtWX, XtS, assume_a="pos")
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10 * max(1.0, np.max(np.abs(beta))):
            break
    return beta


def fit_glmm_dask(spec: ModelSpec, control: dict | None = None, split_every: int = 8
                  ) -> LaplaceFit:
    """Laplace fit (nAGQ = 1) of a binomial-logit or Poisson-log template spec.

    Returns a :class:`~mixedppl.fit.records.LaplaceFit` without per-row arrays (``counts``,
    ``mu``, ``eta`` have length 0; the result's per-row outputs are lazy). Unless
    ``spec.source.progress`` is False a bar counts the passes over the partitions (one per
    inner Newton step; how many is not known in advance).
    """
    control = dict(control or {})
    t0 = time.perf_counter()
    obj = DaskLaplace(spec, split_every)
    obj.bar = progress_bar(None, "Dask: passes over the partitions", spec.source.progress)
    try:
        return _fit(obj, spec, control, t0)
    finally:
        obj.bar.close()
        obj.bar = None


def _fit(obj: DaskLaplace, spec: ModelSpec, control: dict, t0: float) -> LaplaceFit:
    beta0 = _glm_start(obj)
    x0 = np.concatenate([np.asarray(control.get("start_theta", spec.theta_start()), float),
                         beta0])
    lower = np.concatenate([spec.theta_lower(), np.full(spec.p, -np.inf)])
    t1 = time.perf_counter()
    opt = minimize_bounded(obj, x0, lower, mirror=spec.theta_mirror(),
                           ftol=control.get("ftol", 1e-15), gtol=control.get("gtol", 1e-6),
                           maxiter=control.get("maxiter", 2000))
    x, _ = check_boundary(obj, opt.x, opt.fun, lower, control.get("boundary_tol", 1e-5))
    t2 = time.perf_counter()
    D = obj.deviance(x)
    theta, beta, phi = obj.split(x)
    u, _, A = obj.mode(theta, beta)
    if obj.exact_gradient and not spec.structured:
        # the in-memory fit's Hessian: central differences of the exact gradient
        H = difference_hessian(lambda v: obj(v)[1], x, rel=1e-4)
    else:
        H = obj.hessian(x)
    try:
        vcov = 2 * linalg.inv(H)[-spec.p:, -spec.p:]
    except linalg.LinAlgError:
        vcov = np.full((spec.p, spec.p), np.nan)
    b, condvar = conditional_effects(spec, theta, u, A)
    converged, singular = fit_checks(spec, opt, theta, "glmer", H)
    if not np.isfinite(D):
        raise ModelSpecError("glmer: the Laplace deviance is not finite at the estimates")
    return LaplaceFit(spec=spec, family=spec.family, link=spec.link, counts=np.zeros(0),
                      trials=np.zeros(0), theta=theta, beta=beta, phi=phi, vcov_beta=vcov,
                      vcov_beta_phi=vcov, alpha=np.zeros(0), vcov_alpha_beta=None,
                      b=tuple(b), condvar=tuple(condvar), deviance_laplace=float(D),
                      mu=np.zeros(0), eta=np.zeros(0), opt=opt, hessian=H, nAGQ=1,
                      converged=converged, is_singular=singular,
                      timing={"compile": 0.0, "optimize": t2 - t1,
                              "total": time.perf_counter() - t0, "start": t1 - t0,
                              "map_reduces": obj.n_reduce})
