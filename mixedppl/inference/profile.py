r"""Profile-likelihood confidence intervals of a linear mixed model, as lme4's ``confint(method="profile")``.

lme4 profiles the ML deviance, even for REML fits (``profile.merMod`` calls ``refitML``), on the
standard-deviation / correlation scale: the parameter vector is
:math:`\psi = (\sigma_{k,i}, \rho_{k,ij}, \ldots, \sigma, \beta)` (``.sig01``, ``.sig02``, …,
``.sigma``, fixed effects). For one parameter :math:`\psi_j` held at :math:`x`,

.. math:: \tilde d(x) = \min_{\psi_{-j}} d(\psi),\qquad
          \zeta(x) = \operatorname{sign}(x - \hat\psi_j)\sqrt{\tilde d(x) - d(\hat\psi)},

and the interval ends solve :math:`\zeta(x) = \pm\Phi^{-1}((1+\text{level})/2)`, i.e. a deviance rise
of ``qchisq(level, 1)``. Here the ends are found by root-finding on ζ (lme4 interpolates a spline
through a grid). β is always profiled out exactly: with :math:`\hat\beta(\theta)`, the penalised RSS
:math:`r^2(\theta)`, :math:`\log|L_\theta|^2` and :math:`C = (R_X^\top R_X)^{-1}`,

.. math:: d(\theta, \sigma) = \log|L_\theta|^2 + r^2(\theta)/\sigma^2 + n\log(2\pi\sigma^2),

and with :math:`\beta_j = b` fixed the RSS grows by :math:`(b - \hat\beta_j(\theta))^2 / C_{jj}` and σ
is profiled analytically. Every point reuses the model's compiled estimates function (no
recompilation); each inner optimisation starts from its neighbour's optimum.

References
----------
Bates, D. et al. (2015). Fitting linear mixed-effects models using lme4. J. Stat. Softw. 67(1),
section 5.1 (profiling).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, special

from ..control import LmerControl

__all__ = ["profile_confint", "varpar_names"]


def varpar_names(spec) -> list[str]:
    """lme4's ``oldNames=FALSE`` names of the variance parameters (``sd_…|g``, ``cor_…|g``, ``sigma``)."""
    names = []
    for t in spec.terms:
        cn = t.column_names
        for i, j in t.theta_pairs():
            names.append(f"sd_{cn[i]}|{t.group}" if i == j else f"cor_{cn[i]}.{cn[j]}|{t.group}")
    return names + ["sigma"]


def _chol_psd(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix (zero pivots give zero columns)."""
    k = S.shape[0]
    L = np.zeros_like(S)
    for j in range(k):
        d = S[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-300:
            continue
        L[j, j] = np.sqrt(d)
        L[j + 1:, j] = (S[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return L


def theta_to_psi(spec, theta: np.ndarray, sigma: float) -> np.ndarray:
    """(θ, σ) → (sd / cor per θ position, σ)."""
    out = []
    for t, sl in zip(spec.terms, spec.theta_slices()):
        T = t.T(theta[sl])
        S = T @ T.T
        sd = np.sqrt(np.clip(np.diag(S), 0, None))
        for i, j in t.theta_pairs():
            if i == j:
                out.append(sigma * sd[i])
            else:
                out.append(S[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else 0.0)
    return np.array(out + [sigma])


def psi_to_theta(spec, psi: np.ndarray) -> np.ndarray:
    """(sd / cor …, σ) → θ (relative Cholesky factors, lme4's layout)."""
    sigma, out, start = psi[-1], [], 0
    for t in spec.terms:
        vals = psi[start:start + t.n_theta]
        start += t.n_theta
        sd, R = np.zeros(t.n_cols), np.eye(t.n_cols)
        for (i, j), v in zip(t.theta_pairs(), vals):
            if i == j:
                sd[i] = v
            else:
                R[i, j] = R[j, i] = v
        L = _chol_psd(np.outer(sd, sd) * R) / sigma
        out.extend(L[i, j] for i, j in t.theta_pairs())
    return np.array(out)


class _Profiler:
    """ML deviance of one model as a function of ψ (β profiled), and its one-parameter profiles."""

    def __init__(self, ml_fit):
        self.fit, self.spec = ml_fit, ml_fit.spec
        self.obj = ml_fit.objective
        self.n = float(self.obj.cp.n)
        self.nv = self.spec.n_theta + 1
        self.psi_hat = theta_to_psi(self.spec, ml_fit.theta, ml_fit.sigma)
        self.beta_hat = np.asarray(ml_fit.beta, float)
        self.d_min = self._dev_theta_sigma(ml_fit.theta, ml_fit.sigma)
        lower = [0.0 if n.startswith("sd_") else -1.0 for n in varpar_names(self.spec)[:-1]]
        self.lower = np.array(lower + [1e-8 * ml_fit.sigma])
        self.upper = np.array([np.inf if lo == 0 else 1.0 for lo in lower] + [np.inf])
        self.scale = np.where(self.upper == 1.0, 1.0, np.maximum(np.abs(self.psi_hat), 1e-3))

    def _dev_theta_sigma(self, theta, sigma) -> float:
        e = self.obj.estimates(theta)
        return float(e["ldL2"] + e["pwrss"] / sigma**2 + self.n * np.log(2 * np.pi * sigma**2))

    def dev_psi(self, psi: np.ndarray) -> float:
        return self._dev_theta_sigma(psi_to_theta(self.spec, psi), psi[-1])

    def dev_beta(self, theta: np.ndarray, j: int, b: float) -> float:
        e = self.obj.estimates(theta)
        Linv = np.linalg.inv(np.asarray(e["Lxx"]))
        cjj = (Linv.T @ Linv)[j, j]
        r2 = e["pwrss"] + (b - np.asarray(e["beta"])[j]) ** 2 / cjj
        return float(e["ldL2"] + self.n * (1 + np.log(2 * np.pi * r2 / self.n)))

    def profiled(self, k: int, x: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        """min over the other parameters with parameter k (ψ index, or nv + j for β_j) at x."""
        if k < self.nv:
            free = np.array([i != k for i in range(self.nv)])
            lo, hi, sc = self.lower[free], self.upper[free], self.scale[free]

            def f(u):
                psi = np.empty(self.nv)
                psi[k], psi[free] = x, u * sc
                return self.dev_psi(psi)
        else:
            lo, hi = self.spec.theta_lower(), np.full(self.spec.n_theta, np.inf)
            sc = np.maximum(np.abs(self.fit.theta), 1e-2)

            def f(u):
                return self.dev_beta(u * sc, k - self.nv, x)
        u = _minimize_fd(f, np.clip(start, lo, hi) / sc, lo / sc, hi / sc)
        return f(u), u * sc

    def zeta_fn(self, k: int):
        """x → ζ(x) for parameter k, warm-starting each inner fit from the last one."""
        if k < self.nv:
            hat, first = self.psi_hat[k], np.delete(self.psi_hat, k)
        else:
            hat, first = self.beta_hat[k - self.nv], self.fit.theta.copy()
        seen = {hat: first}

        def zeta(x: float) -> float:
            near = min(seen, key=lambda v: abs(v - x))   # warm start from the nearest point done
            d, seen[x] = self.profiled(k, x, seen[near])
            rise = max(d - self.d_min, 0.0)
            return float(np.sign(x - hat) * np.sqrt(rise))
        return zeta, hat


def _minimize_fd(f, u0, lo, hi, h: float = 1e-6) -> np.ndarray:
    """L-BFGS-B with central-difference gradients (the inner problems have ≤ a handful of dims)."""
    def fg(u):
        f0 = f(u)
        g = np.empty_like(u)
        for i in range(len(u)):
            up, dn = u.copy(), u.copy()
            up[i] = min(u[i] + h, hi[i])
            dn[i] = max(u[i] - h, lo[i])
            g[i] = (f(up) - f(dn)) / (up[i] - dn[i])
        return f0, g
    bounds = list(zip(np.where(np.isfinite(lo), lo, None), np.where(np.isfinite(hi), hi, None)))
    res = optimize.minimize(fg, u0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"ftol": 1e-13, "gtol": 1e-7, "maxiter": 500})
    return res.x


def _end(zeta, hat: float, target: float, step: float, edge: float, tol: float = 1e-7) -> float:
    """Root of ζ(x) = target beyond the estimate (safeguarded secant); ``edge`` if never reached.

    ζ is close to linear in x, so secant steps from (x̂, 0) converge in a few profile points; a
    step that leaves the bracket found so far is replaced by bisection.
    """
    d = np.sign(target)
    inside, outside = (hat, 0.0), None
    prev, x = (hat, 0.0), hat + d * step
    for _ in range(100):
        if (x - edge) * d >= 0:
            x = edge
        z = zeta(x)
        if abs(z - target) < tol:
            return x
        if (z - target) * d > 0:
            outside = (x, z)
        else:
            if x == edge:
                return edge
            inside = (x, z)
        slope = (z - prev[1]) / (x - prev[0]) if x != prev[0] else 0.0
        prev = (x, z)
        x_new = x + (target - z) / slope if slope * d > 0 else np.nan
        if outside is None:
            far = inside[0] + 2 * (inside[0] - hat)
            ok = np.isfinite(x_new) and (x_new - inside[0]) * d > 0
            x = min(x_new, far, key=lambda v: v * d) if ok else far
        else:
            a, b = sorted((inside[0], outside[0]))
            if abs(b - a) <= 1e-12 * max(abs(a), abs(b), 1e-300):
                return x
            x = x_new if np.isfinite(x_new) and a < x_new < b else 0.5 * (a + b)
    raise RuntimeError("profile did not reach the interval end")


def _ml_fit(fit):
    """The ML refit that lme4's profile works on (the fit itself when it is ML)."""
    if not fit.reml:
        return fit
    from ..fit.lmm_fit import fit_lmm
    from ..fit.lmm_objective import LMMObjective
    obj = LMMObjective(fit.spec, reml=False, structure=fit.objective.structure)
    quiet = LmerControl(check_conv="ignore", check_singular="ignore")  # the fit already warned
    return fit_lmm(fit.spec, reml=False, control=quiet, start=fit.theta, objective=obj)


def profile_confint(fit, level: float = 0.95) -> pd.DataFrame:
    """Profile-likelihood intervals (see the module docstring); rows as lme4's ``oldNames=FALSE``."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    prof = _Profiler(_ml_fit(fit))
    z = special.ndtri(0.5 + level / 2)
    names = varpar_names(fit.spec) + list(fit.spec.fe_names)
    se = np.sqrt(np.diag(prof.fit.vcov_beta))
    rows = []
    for k, name in enumerate(names):
        zeta, hat = prof.zeta_fn(k)
        step = se[k - prof.nv] if k >= prof.nv else 0.25 * max(abs(hat), 1e-2)
        if k < prof.nv:
            lo_edge, hi_edge = prof.lower[k], prof.upper[k]
        else:
            lo_edge, hi_edge = -np.inf, np.inf
        if name.startswith("cor_"):
            step = 0.25 * max(1 - abs(hat), 1e-2)
        lo = _end(zeta, hat, -z, step, lo_edge)
        zeta, hat = prof.zeta_fn(k)
        hi = _end(zeta, hat, z, step, hi_edge)
        rows.append((lo, hi))
    pct = [f"{100 * (1 - level) / 2:.3g} %", f"{100 * (1 + level) / 2:.3g} %"]
    return pd.DataFrame(rows, index=names, columns=pct)
