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
is profiled analytically.

Computation. One compiled graph per model structure (:func:`_profile_fn`, built from the same
blocked factorisation as the fit's objective) returns both deviances and their exact reverse-mode
gradients in (θ, σ); the gradient in ψ follows by the chain rule through
:math:`\theta(\psi)` (:func:`psi_to_theta_jacobian`, the Cholesky-factor derivative). Each inner
minimisation is a projected quasi-Newton method
(:func:`~mixedppl.fit.optimize.quasi_newton_box`) warm-started along the
profile: the start is the linear inter-/extrapolation of the two nearest optima already found and
the Hessian approximation is the nearest point's (at the first point, the Hessian at the optimum,
from differences of the exact gradient), so an inner fit typically takes 2–4 evaluations. The
ends are located by inverse-quadratic interpolation of ζ on a scale where it is nearly linear
(log for SDs and σ, atanh for correlations, identity for β; :func:`_end`), starting from the Wald
end on that scale: 3–5 profile points per end. Every point reuses compiled functions (nothing is
recompiled for a new fit of the same structure).

References
----------
Bates, D. et al. (2015). Fitting linear mixed-effects models using lme4. J. Stat. Softw. 67(1),
section 5.1 (profiling).
Murray, I. (2016). Differentiation of the Cholesky decomposition. arXiv:1602.07527.
Nocedal, J. & Wright, S. J. (2006). Numerical Optimization, 2nd ed., chapters 6 (BFGS) and 16.7
(projected methods for bound constraints).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor.tensor as pt
from scipy import special

from ..core.progress import progress_bar
from ..core.compile import compiled
from ..core.control import LmerControl
from ..core.threads import blas_threads_for
from ..fit.lmm_fit import refit_lmm
from ..fit.optimize import difference_hessian, lbfgsb_box, quasi_newton_box
from ..fit.records import LMMFit
from ..graph.lmm import ProfiledLMM
from ..spec.reterm import relative_factors

__all__ = ["profile_confint", "varpar_names", "varpar_bounds"]


def varpar_names(spec) -> list[str]:
    """lme4's ``oldNames=FALSE`` names of the variance parameters (``sd_…|g``, ``cor_…|g``,
    ``sigma``); a structured term's are its own parameters
    (:meth:`~mixedppl.spec.covstruct.Covariance.psi_names`: ``sd_ar1|g``, ``cor_ar1|g``, …)."""
    names = []
    for t in spec.terms:
        cn = t.column_names
        if t.structured:
            names += t.covariance.psi_names(t.group, cn)
            continue
        for i, j in t.theta_pairs():
            names.append(f"sd_{cn[i]}|{t.group}" if i == j else f"cor_{cn[i]}.{cn[j]}|{t.group}")
    return names + ["sigma"]


def varpar_bounds(spec) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of the variance parameters of :func:`varpar_names` but σ: SDs in
    [0, ∞), correlations in [−1, 1] (``cs``'s ρ in [−1/(ℓ − 1), 1]).

    Examples
    --------
    >>> import mixedppl as mp
    >>> spec = mp.Model("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy")).spec
    >>> varpar_bounds(spec)[0].tolist()
    [0.0, -1.0, 0.0]
    """
    lower, upper = [], []
    for t in spec.terms:
        if t.structured:
            lo, hi = t.covariance.psi_bounds()
            lower += list(lo)
            upper += list(hi)
            continue
        for i, j in t.theta_pairs():
            lower.append(0.0 if i == j else -1.0)
            upper.append(np.inf if i == j else 1.0)
    return np.array(lower, float), np.array(upper, float)


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
    out, start = [], 0
    for t, T in zip(spec.terms, relative_factors(spec.terms, theta)):
        start += t.n_theta
        if t.structured:
            out += list(t.covariance.to_psi(theta[start - t.n_theta:start], sigma))
            continue
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
        if t.structured:
            out.extend(t.covariance.from_psi(vals, sigma)[0])
            continue
        sd, R = np.zeros(t.n_cols), np.eye(t.n_cols)
        for (i, j), v in zip(t.theta_pairs(), vals):
            if i == j:
                sd[i] = v
            else:
                R[i, j] = R[j, i] = v
        L = _chol_psd(np.outer(sd, sd) * R) / sigma
        out.extend(L[i, j] for i, j in t.theta_pairs())
    return np.array(out)


def _term_sd_cor(t, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One term's SDs and correlation matrix from its slice of ψ."""
    sd, R = np.zeros(t.n_cols), np.eye(t.n_cols)
    for (i, j), v in zip(t.theta_pairs(), vals):
        if i == j:
            sd[i] = v
        else:
            R[i, j] = R[j, i] = v
    return sd, R


def psi_to_theta_jacobian(spec, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""θ(ψ) and its Jacobian :math:`\partial\theta/\partial\psi` (n_θ × (n_θ + 1), σ last).

    Per term, :math:`\Sigma = D R D` (SDs on the diagonal of D, correlations in R),
    :math:`L = \operatorname{chol}\Sigma` and :math:`T = L/\sigma`. The derivative of the Cholesky
    factor in the direction :math:`\dot\Sigma` is
    :math:`\dot L = L\,\Phi(L^{-1}\dot\Sigma L^{-\top})`, Φ taking the lower triangle with the
    diagonal halved (Murray 2016); :math:`\partial\theta/\partial\sigma = -\theta/\sigma`. A term
    whose Σ is singular (an SD at 0 or a correlation at ±1 in a term of ≥ 2 columns) falls back to
    central differences of :func:`psi_to_theta`.
    """
    psi = np.asarray(psi, float)
    sigma, n_theta = psi[-1], len(psi) - 1
    theta = np.empty(n_theta)
    J = np.zeros((n_theta, len(psi)))
    start = 0
    d_sigma = None
    for t in spec.terms:
        m, ell = t.n_theta, t.n_cols
        if t.structured:         # the structure's own parameters: a diagonal map per entry
            sl = slice(start, start + m)
            theta[sl], J[sl, sl], ds = t.covariance.from_psi(psi[sl], sigma)
            d_sigma = {} if d_sigma is None else d_sigma
            d_sigma[start] = ds
            start += m
            continue
        if ell == 1:
            theta[start] = psi[start] / sigma
            J[start, start] = 1.0 / sigma
            start += 1
            continue
        pairs = t.theta_pairs()
        sl = slice(start, start + m)
        sd, R = _term_sd_cor(t, psi[sl])
        L = _chol_psd(np.outer(sd, sd) * R)
        theta[sl] = [L[a, b] / sigma for a, b in pairs]
        if np.all(np.diag(L) > 1e-8 * max(sd.max(), 1e-300)):
            Linv = np.linalg.inv(L)
            for c, (i, j) in enumerate(pairs):
                dS = np.zeros((ell, ell))
                if i == j:
                    dS[i, :] += sd * R[i, :]
                    dS[:, i] += sd * R[:, i]
                else:
                    dS[i, j] = dS[j, i] = sd[i] * sd[j]
                Phi = np.tril(Linv @ dS @ Linv.T)
                Phi[np.diag_indices(ell)] *= 0.5
                dL = L @ Phi
                J[sl, start + c] = [dL[a, b] / sigma for a, b in pairs]
        else:
            for c, (i, j) in enumerate(pairs):
                v = psi[start + c]
                lo, hi = (0.0, np.inf) if i == j else (-1.0, 1.0)
                h = 1e-7 * max(abs(v), 1e-3)
                up, dn = psi.copy(), psi.copy()
                up[start + c], dn[start + c] = min(v + h, hi), max(v - h, lo)
                J[sl, start + c] = ((psi_to_theta(spec, up) - psi_to_theta(spec, dn))[sl]
                                    / (up[start + c] - dn[start + c]))
        start += m
    J[:, -1] = -theta / sigma
    for at, ds in (d_sigma or {}).items():
        J[at:at + len(ds), -1] = ds
    return theta, J


def _profile_fn(structure):
    r"""Compiled (θ, inputs…, σ, b, e_j, mode) → (d, ∂d/∂θ, ∂d/∂σ) for the profiles.

    ``mode = 0``: the ML deviance with σ given, :math:`d(\theta,\sigma) = \log|L_\theta|^2 +
    r^2(\theta)/\sigma^2 + n\log(2\pi\sigma^2) - \sum\log w_i`. ``mode = 1``: the ML deviance with
    :math:`\beta_j = b` (selected by the unit vector :math:`e_j`) and σ profiled,
    :math:`\log|L_\theta|^2 + n[1 + \log(2\pi r_b^2/n)] - \sum\log w_i` with
    :math:`r_b^2 = r^2 + (b - \hat\beta_j)^2 / C_{jj}`, where, from the fixed-effects block
    :math:`F = \begin{pmatrix} A & a \\ a^\top & \cdot\end{pmatrix}` of the Schur complement
    (:math:`A = R_X^\top R_X`), :math:`v = A^{-1}e_j`, :math:`\hat\beta_j = v^\top a` and
    :math:`C_{jj} = v^\top e_j`. The gradient is PyTensor's reverse mode through the same blocked
    factorisation as the fit's objective.
    """
    def build():
        g = ProfiledLMM(structure)
        sigma, b, mode = pt.dscalar("sigma"), pt.dscalar("b"), pt.dscalar("mode")
        e_j = pt.dvector("e_j")
        p = g.p
        FF = g.FF if hasattr(g, "FF") else pt.dot(g.LF, g.LF.T)
        v = pt.linalg.solve(FF[:p, :p], e_j, assume_a="pos")
        # (1 - mode) keeps r_b² finite in mode 0, where e_j = 0 (and p may be 0)
        r2_b = g.pwrss + (b - pt.dot(v, FF[:p, p])) ** 2 / (pt.dot(v, e_j) + (1.0 - mode))
        dev_sigma = g.ldL2 + g.pwrss / sigma**2 + g.n * pt.log(2 * np.pi * sigma**2)
        dev_beta = g.ldL2 + g.n * (1.0 + pt.log(2 * np.pi * r2_b / g.n))
        dev = (1.0 - mode) * dev_sigma + mode * dev_beta - g.ldW
        g_theta, g_sigma = pt.grad(dev, [g.theta, sigma])
        return [*g.inputs, sigma, b, e_j, mode], [dev, g_theta, g_sigma]

    fn = compiled(("lmm_profile", structure.graph_key), build, kind="fast_compile")
    fn.trust_input = True
    return fn


class _Profiler:
    """ML deviance of one model as a function of ψ (β profiled), and its one-parameter profiles."""

    def __init__(self, ml_fit: LMMFit):
        self.fit, self.spec = ml_fit, ml_fit.spec
        obj = ml_fit.objective
        self._fn = _profile_fn(obj.structure)
        self._graph_theta = self.spec.graph_theta   # a structured term's θ → lme4's layout
        self._args = obj.graph_inputs
        self._scalar = {v: np.array(v, dtype=np.float64) for v in (0.0, 1.0)}
        self.n_evals = 0
        self.nv = self.spec.n_theta + 1
        self.p = len(ml_fit.beta)
        self._e = np.eye(self.p)
        self._e0 = np.zeros(self.p)
        self.psi_hat = theta_to_psi(self.spec, ml_fit.theta, ml_fit.sigma)
        self.beta_hat = np.asarray(ml_fit.beta, float)
        self.d_min = self.dev_psi(self.psi_hat)[0]
        lower, upper = varpar_bounds(self.spec)
        self.lower = np.append(lower, 1e-8 * ml_fit.sigma)
        self.upper = np.append(upper, np.inf)
        self.scale = np.where(self.upper == 1.0, 1.0, np.maximum(np.abs(self.psi_hat), 1e-3))
        self.theta_scale = np.maximum(np.abs(ml_fit.theta), 1e-2)
        self.hess_psi = self._hessian_psi()

    def _eval(self, theta, sigma: float, mode: float, b: float,
              e: np.ndarray) -> tuple[float, np.ndarray, float]:
        self.n_evals += 1
        theta_g, Jg = self._graph_theta(theta)
        f, g_theta, g_sigma = self._fn(theta_g, *self._args,
                                       np.array(sigma, dtype=np.float64),
                                       np.array(b, dtype=np.float64), e, self._scalar[mode])
        g_theta = np.asarray(g_theta) if Jg is None else Jg.T @ np.asarray(g_theta)
        return float(f), g_theta, float(g_sigma)

    def dev_psi(self, psi: np.ndarray) -> tuple[float, np.ndarray]:
        """ML deviance at ψ = (sd/cor…, σ) with β profiled, and its gradient in ψ (chain rule)."""
        theta, J = psi_to_theta_jacobian(self.spec, psi)
        f, g_theta, g_sigma = self._eval(theta, psi[-1], 0.0, 0.0, self._e0)
        g = J.T @ g_theta
        g[-1] += g_sigma
        return f, g

    def dev_beta(self, theta: np.ndarray, j: int, b: float) -> tuple[float, np.ndarray]:
        """ML deviance at θ with β_j = b and σ, β_{-j} profiled, and its gradient in θ."""
        f, g_theta, _ = self._eval(theta, 1.0, 1.0, b, self._e[j])
        return f, g_theta

    def _hessian_psi(self) -> np.ndarray | None:
        """Hessian of the ψ deviance at ψ̂ in the scaled coordinates ψ / ``scale``."""
        sc = self.scale
        return difference_hessian(lambda u: self.dev_psi(u * sc)[1] * sc, self.psi_hat / sc,
                                  lower=self.lower / sc, upper=self.upper / sc,
                                  positive_definite=True)

    @property
    def wald_psi(self) -> np.ndarray | None:
        """Wald covariance 2·H⁻¹ of ψ̂ (None when H is not positive definite, e.g. on a bound)."""
        if self.hess_psi is None:
            return None
        return 2 * np.linalg.inv(self.hess_psi) * np.outer(self.scale, self.scale)

    def profiled(self, k: int, x: float, start: np.ndarray, B0) -> tuple[float, np.ndarray, object]:
        """min over the other parameters with parameter k (ψ index, or nv + j for β_j) at x.

        Returns the minimum, the minimiser and the final Hessian approximation (scaled)."""
        if k < self.nv:
            free = np.arange(self.nv) != k
            lo, hi, sc = self.lower[free], self.upper[free], self.scale[free]

            def fg(u):
                psi = np.empty(self.nv)
                psi[k], psi[free] = x, u * sc
                f, g = self.dev_psi(psi)
                return f, g[free] * sc
        else:
            lo, hi = self.spec.theta_lower(), np.full(self.spec.n_theta, np.inf)
            sc, j = self.theta_scale, k - self.nv

            def fg(u):
                f, g = self.dev_beta(u * sc, j, x)
                return f, g * sc
        if B0 is None:
            f, u = lbfgsb_box(fg, start / sc, lo / sc, hi / sc)
            B = None
        else:
            f, u, B = quasi_newton_box(fg, start / sc, lo / sc, hi / sc, B0)
        return f, np.clip(u * sc, lo, hi), B

    def zeta_fn(self, k: int):
        """x → ζ(x) for parameter k.

        Each inner fit starts from the optima of the two nearest points already done (linear
        inter- or extrapolation; at the first point, the Wald regression of the other parameters on
        ψ_k) and from the nearest point's final Hessian approximation (at the first point, the
        Hessian at the optimum)."""
        if k < self.nv:
            hat, first = self.psi_hat[k], np.delete(self.psi_hat, k)
            free = np.arange(self.nv) != k
            H = self.hess_psi
            B0 = None if H is None else H[np.ix_(free, free)]
            V = self.wald_psi
            slope = None if V is None else np.delete(V[:, k], k) / V[k, k]
        else:
            j = k - self.nv
            hat, first, slope = self.beta_hat[j], self.fit.theta.copy(), None
            sc = self.theta_scale
            B0 = difference_hessian(lambda u: self.dev_beta(u * sc, j, hat)[1] * sc, first / sc,
                                    lower=self.spec.theta_lower() / sc, positive_definite=True)
        seen = {hat: (first, B0)}

        def start_at(x):
            near = sorted(seen, key=lambda v: abs(v - x))[:2]
            B = seen[near[0]][1]
            if len(near) == 1:
                return first + (slope * (x - hat) if slope is not None else 0.0), B
            x0, x1 = near
            w = (x - x0) / (x1 - x0)
            return seen[x0][0] + w * (seen[x1][0] - seen[x0][0]), B

        def zeta(x: float) -> float:
            d, opt, B = self.profiled(k, x, *start_at(x))
            seen[x] = (opt, B if B is not None else B0)
            rise = max(d - self.d_min, 0.0)
            return float(np.sign(x - hat) * np.sqrt(rise))
        return zeta, hat

_SCALES = {
    "id": (lambda x: x, lambda t: t),
    "log": (np.log, np.exp),
    "atanh": (np.arctanh, np.tanh),
}


def _end(zeta, hat: float, target: float, first: float, edge: float, scale: str = "id",
         tol: float = 1e-6) -> float:
    """Root of ζ(x) = target beyond the estimate; ``edge`` if ζ never reaches the target.

    ζ is close to linear in t = log x for SDs and σ, in atanh x for correlations and in x for fixed
    effects, so the next point is the inverse-quadratic (at first secant) interpolation of the
    last points in t at ζ = target: from a Wald first guess this takes 3–4 profile points. Steps
    outside the bracket found so far are replaced by bisection; a step that would land close to the
    parameter's bound (SD 0, correlation ±1) evaluates the bound itself.
    """
    d = np.sign(target)
    if (edge - hat) * d <= 0:
        return float(edge)
    fwd, inv = _SCALES[scale]
    pts = [(hat, 0.0)]                       # (x, ζ), the newest last
    inside, outside = hat, None
    x = first
    for _ in range(100):
        if (x - edge) * d >= 0 or abs(x - edge) < 0.05 * abs(inside - edge):
            x = edge
        z = zeta(x)
        if abs(z - target) < tol:
            return float(x)
        if (z - target) * d > 0:
            outside = x
        elif x == edge:
            return float(edge)
        else:
            inside = x
        pts.append((x, z))
        if outside is not None and abs(outside - inside) <= 1e-12 * max(abs(inside), abs(outside)):
            return float(x)
        # interpolate t(ζ) through the last (up to 3) points with finite t, at ζ = target
        use = [(fwd(px), pz) for px, pz in pts if px != edge][-3:]
        with np.errstate(all="ignore"):
            if len(use) == 3 and len({pz for _, pz in use}) == 3:
                (t0, z0), (t1, z1), (t2, z2) = use
                t_new = (t0 * (target - z1) * (target - z2) / ((z0 - z1) * (z0 - z2))
                         + t1 * (target - z0) * (target - z2) / ((z1 - z0) * (z1 - z2))
                         + t2 * (target - z0) * (target - z1) / ((z2 - z0) * (z2 - z1)))
            else:
                (t0, z0), (t1, z1) = use[-2:]
                t_new = t1 + (target - z1) * (t1 - t0) / (z1 - z0) if z1 != z0 else np.nan
            x_new = float(inv(t_new))
        if outside is None:
            # no bracket yet: go beyond the inner point, at most 4× its distance from x̂ in t
            t_in, t_hat = fwd(inside), fwd(hat)
            reach = 4 * max(abs(t_in - t_hat), abs(fwd(first) - t_hat))
            if not np.isfinite(x_new) or (x_new - inside) * d <= 0:
                x_new = float(inv(t_in + d * reach))
            elif abs(fwd(x_new) - t_in) > reach:
                x_new = float(inv(t_in + d * reach))
        else:
            a, b = sorted((inside, outside))
            if not (np.isfinite(x_new) and a < x_new < b):
                x_new = 0.5 * (a + b)
        x = x_new
    raise RuntimeError("profile did not reach the interval end")


def _ml_fit(record: LMMFit) -> LMMFit:
    """The ML refit that lme4's profile works on (the fit itself when it is ML)."""
    if not record.reml:
        return record
    quiet = LmerControl(check_conv="ignore", check_singular="ignore")  # the fit already warned
    return refit_lmm(record, reml=False, control=quiet, start=record.theta)


def _first_guess(prof: _Profiler, k: int, name: str, z: float) -> tuple[float, float, str]:
    """(x̂, first profile point beyond it at ζ ≈ z under the Wald approximation, scale)."""
    if k >= prof.nv:
        se = float(np.sqrt(prof.fit.vcov_beta[k - prof.nv, k - prof.nv]))
        hat = prof.beta_hat[k - prof.nv]
        return hat, hat + z * se, "id"
    hat, lo, hi = prof.psi_hat[k], prof.lower[k], prof.upper[k]
    scale = "atanh" if name.startswith("cor_") else "log"
    if not (lo + 1e-6 * prof.scale[k] < hat < hi - 1e-6):
        scale = "id"                            # on a bound: no log / atanh scale around it
    if prof.wald_psi is None:
        step = 0.25 * (max(1 - abs(hat), 1e-2) if name.startswith("cor_") else max(abs(hat), 1e-2))
        return hat, hat + np.sign(z) * step, scale
    se = float(np.sqrt(prof.wald_psi[k, k]))
    if scale == "log":
        return hat, hat * np.exp(z * se / hat), scale
    if scale == "atanh":
        return hat, float(np.tanh(np.arctanh(hat) + z * se / (1 - hat**2))), scale
    return hat, hat + z * se, scale


def profile_confint(record: LMMFit, level: float = 0.95, progress: bool = True) -> pd.DataFrame:
    """Profile-likelihood intervals (see the module docstring); rows as lme4's ``oldNames=FALSE``.
    ``progress`` shows a bar over the parameters (:func:`~mixedppl.core.progress.progress_bar`).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Yield ~ 1 + (1 | Batch)", mp.datasets.load("dyestuff"))
    >>> profile_confint(fit.record).round(2)
                            2.5 %   97.5 %
    sd_(Intercept)|Batch    12.20    84.06
    sigma                   38.23    67.66
    (Intercept)           1486.45  1568.55
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    ml = _ml_fit(record)
    z = float(special.ndtri(0.5 + level / 2))
    names = varpar_names(record.spec) + list(record.spec.fe_names)
    rows = []
    with blas_threads_for(ml.objective):
        prof = _Profiler(ml)
        bar = progress_bar(len(names), "profile", progress)
        for k, name in enumerate(names):
            bar.update(1)
            zeta, hat = prof.zeta_fn(k)
            if k < prof.nv:
                lo_edge, hi_edge = prof.lower[k], prof.upper[k]
            else:
                lo_edge, hi_edge = -np.inf, np.inf
            _, first_lo, scale = _first_guess(prof, k, name, -z)
            _, first_hi, _ = _first_guess(prof, k, name, z)
            rows.append((_end(zeta, hat, -z, first_lo, lo_edge, scale),
                         _end(zeta, hat, z, first_hi, hi_edge, scale)))
        bar.close()
    pct = [f"{100 * (1 - level) / 2:.3g} %", f"{100 * (1 + level) / 2:.3g} %"]
    return pd.DataFrame(rows, index=names, columns=pct)
