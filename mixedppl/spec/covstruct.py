r"""Structured covariances of one random-effect term: θ_k → its relative factor T_k (NumPy).

A term's random effects at one level are :math:`b_g \sim N(0, s^2 T_k T_k^\top)` (s = σ for an
LMM, 1 otherwise). lme4's ``(x | g)`` (glmmTMB's ``us``) fills T_k column-major from θ_k; glmmTMB's
structures (Brooks et al. 2017; the ``covstruct`` vignette) give T_k fewer parameters:

==========  ================  ============================================================
structure   θ_k (length)      relative covariance :math:`T T^\top = D R D`, D = diag(sd)
==========  ================  ============================================================
``us``      ℓ(ℓ+1)/2          T lower triangular, filled column-major (lme4)
``diag``    ℓ                 sd_i ≥ 0, R = I
``cs``      ℓ + 1             sd_i ≥ 0; :math:`R_{ij} = \rho` (i ≠ j),
                              :math:`\rho = \mathrm{logit}^{-1}(u)(1 + a) - a`, a = 1/(ℓ − 1)
``ar1``     2                 one sd ≥ 0 for every column; :math:`R_{ij} = \rho^{|i-j|}`,
                              :math:`\rho = u/\sqrt{1+u^2}`
``toep``    2ℓ − 1            sd_i ≥ 0; :math:`R_{ij} = r_{|i-j|}`, the autocorrelations of the
                              partial autocorrelations :math:`\pi_k = u_k/\sqrt{1+u_k^2}`
                              (Durbin–Levinson)
==========  ================  ============================================================

The correlation transforms of ``cs`` and ``ar1`` are glmmTMB's (``glmmTMB.cpp``), so their u
equals glmmTMB's ``theta`` entry; the SDs are kept on their own scale (not log) so that a zero SD,
a singular fit, is a point of the parameter space (lme4's rule for θ). ``toep`` differs from
glmmTMB, which maps each r_k by u/√(1+u²) and can leave R indefinite; every π ∈ (−1, 1)ᴸ gives a
positive definite Toeplitz R (Barndorff-Nielsen & Schou 1973), and the fitted R is the same.

Then :math:`T = D\,\mathrm{chol}(R)`: lower triangular, so it fills lme4's θ layout
(:func:`lower_triangle_pairs`) and every graph built for lme4's θ serves every structure. Its
derivatives are exact: :math:`\partial T/\partial sd_i = E_{ii} C` and
:math:`\partial C = C\,\Phi(C^{-1}\,\partial R\,C^{-\top})` (Φ: the lower triangle with half the
diagonal; Murray 2016), with ∂R/∂u by a complex step (R is analytic in u).

References
----------
Brooks, M. E. et al. (2017). glmmTMB balances speed and flexibility among packages for
zero-inflated generalized linear mixed modeling. The R Journal 9(2), 378–400.
Murray, I. (2016). Differentiation of the Cholesky decomposition. arXiv:1602.07527.
Barndorff-Nielsen, O. & Schou, G. (1973). On the parametrization of autoregressive models by
partial autocorrelations. J. Multivariate Anal. 3, 408–419.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Covariance", "STRUCTURES", "GLMMTMB_UNSUPPORTED", "lower_triangle_pairs"]

#: The structures a random term may name (``us`` is lme4's ``(x | g)``).
STRUCTURES = ("us", "diag", "cs", "ar1", "toep")
#: glmmTMB's other structure names (1.1.5 and later), refused with a message naming them.
GLMMTMB_UNSUPPORTED = ("ou", "exp", "gau", "mat", "rr", "homdiag", "propto", "hetar1", "homcs",
                       "homtoep", "equalto")
#: Structures whose columns are ordered times: the term must be ``(times + 0 | g)``.
TIME_STRUCTURES = ("ar1", "toep")

_STEP = 1e-30   # complex step for ∂R/∂u


def lower_triangle_pairs(ell: int) -> list[tuple[int, int]]:
    """(row, col) of each θ in an ℓ×ℓ ``T``: the lower triangle in column-major order, as lme4.

    Examples
    --------
    >>> lower_triangle_pairs(2)
    [(0, 0), (1, 0), (1, 1)]
    """
    return [(i, j) for j in range(ell) for i in range(j, ell)]


def _unit_cor(u):
    """glmmTMB's map of the real line to (−1, 1): u / √(1 + u²)."""
    return u / np.sqrt(1 + u * u)


def _acf_from_pacf(pacf):
    """Autocorrelations r_1 … r_L of the partial autocorrelations π_1 … π_L (Durbin–Levinson)."""
    r, phi = [], []
    for k, p in enumerate(pacf):
        rk = sum(phi[j] * r[k - 1 - j] for j in range(k)) + p * (
            1 - sum(phi[j] * r[j] for j in range(k)))
        phi = [phi[j] - p * phi[k - 1 - j] for j in range(k)] + [p]
        r.append(rk)
    return r


@dataclass(frozen=True)
class Covariance:
    """The covariance structure of one term of ℓ columns (see the module docstring).

    Examples
    --------
    >>> c = Covariance("ar1", 3)
    >>> c.n_theta, c.theta_lower().tolist()
    (2, [0.0, -inf])
    >>> T = c.factor(np.array([2.0, 0.75]))      # sd 2, ρ = 0.75 / 1.25 = 0.6
    >>> np.round(T @ T.T, 6).tolist()
    [[4.0, 2.4, 1.44], [2.4, 4.0, 2.4], [1.44, 2.4, 4.0]]
    """

    name: str
    ell: int

    @property
    def n_theta(self) -> int:
        ell = self.ell
        return {"us": ell * (ell + 1) // 2, "diag": ell, "cs": ell + 1, "ar1": 2,
                "toep": 2 * ell - 1}[self.name]

    @property
    def correlated(self) -> bool:
        """Whether the columns may correlate (all but ``diag``)."""
        return self.name != "diag"

    @property
    def n_sd(self) -> int:
        """How many θ are SDs (the first ones)."""
        return {"us": 0, "ar1": 1}.get(self.name, self.ell)

    def theta_names(self, group: str, columns: list[str]) -> list[str]:
        """``group.column`` for SDs, ``group.<structure>`` / ``group.pacf<k>`` for the
        transformed correlations (lme4's names for ``us``)."""
        if self.name == "us":
            return [f"{group}.{columns[i]}" if i == j else f"{group}.{columns[i]}.{columns[j]}"
                    for i, j in lower_triangle_pairs(self.ell)]
        sds = [f"{group}.sd"] if self.name == "ar1" else [f"{group}.{c}" for c in columns]
        cors = {"diag": [], "cs": [f"{group}.cs"], "ar1": [f"{group}.ar1"],
                "toep": [f"{group}.pacf{k}" for k in range(1, self.ell)]}[self.name]
        return sds + cors

    def theta_lower(self) -> np.ndarray:
        """0 for diagonal entries of T and for SDs, −inf for the rest."""
        if self.name == "us":
            return np.array([0.0 if i == j else -np.inf for i, j in lower_triangle_pairs(self.ell)])
        return np.concatenate([np.zeros(self.n_sd), np.full(self.n_theta - self.n_sd, -np.inf)])

    def theta_start(self) -> np.ndarray:
        """T = I: unit SDs, zero correlations (lme4's start for ``us``)."""
        if self.name == "us":
            return np.array([1.0 if i == j else 0.0 for i, j in lower_triangle_pairs(self.ell)])
        start = np.concatenate([np.ones(self.n_sd), np.zeros(self.n_theta - self.n_sd)])
        if self.name == "cs":
            start[-1] = np.log(1.0 / (self.ell - 1))     # ρ = 0
        return start

    def correlation(self, u) -> np.ndarray:
        """R(u), ℓ×ℓ (real or complex u: the complex step differentiates it)."""
        ell = self.ell
        lag = np.abs(np.subtract.outer(np.arange(ell), np.arange(ell)))
        if self.name == "diag":
            return np.eye(ell)
        if self.name == "cs":
            a = 1.0 / (ell - 1)
            rho = (1 + a) / (1 + np.exp(-u[0])) - a
            return (1 - rho) * np.eye(ell) + rho * np.ones((ell, ell))
        if self.name == "ar1":
            return _unit_cor(u[0]) ** lag
        r = np.array([1.0 + 0j * u[0]] + _acf_from_pacf(list(_unit_cor(np.asarray(u)))))
        return r[lag]

    def _sd(self, theta_k: np.ndarray) -> np.ndarray:
        return np.full(self.ell, theta_k[0]) if self.name == "ar1" else theta_k[:self.ell]

    def factor(self, theta_k: np.ndarray) -> np.ndarray:
        """T_k (ℓ×ℓ lower triangular) from θ_k."""
        theta_k = np.asarray(theta_k, float)
        if self.name == "us":
            out = np.zeros((self.ell, self.ell))
            for (i, j), v in zip(lower_triangle_pairs(self.ell), theta_k):
                out[i, j] = v
            return out
        C = np.linalg.cholesky(self.correlation(theta_k[self.n_sd:]).real)
        return self._sd(theta_k)[:, None] * C

    def factor_jacobian(self, theta_k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """T_k and ∂T_k/∂θ_k, shape (n_θ, ℓ, ℓ)."""
        theta_k = np.asarray(theta_k, float)
        ell, m = self.ell, self.n_theta
        dT = np.zeros((m, ell, ell))
        if self.name == "us":
            for k, (i, j) in enumerate(lower_triangle_pairs(ell)):
                dT[k, i, j] = 1.0
            return self.factor(theta_k), dT
        u = theta_k[self.n_sd:]
        C = np.linalg.cholesky(self.correlation(u).real)
        sd = self._sd(theta_k)
        if self.name == "ar1":
            dT[0] = C
        else:
            for i in range(ell):
                dT[i, i] = C[i]
        Cinv = np.linalg.inv(C)
        for k in range(len(u)):
            du = u.astype(complex)
            du[k] += 1j * _STEP
            dR = self.correlation(du).imag / _STEP
            P = Cinv @ dR @ Cinv.T
            P = np.tril(P) - np.diag(np.diag(P)) / 2
            dT[self.n_sd + k] = sd[:, None] * (C @ P)
        return sd[:, None] * C, dT

    # -- the natural parameters ψ_k (profiles, bootstrap rows, influence) ------------------------
    def psi_names(self, group: str, columns: list[str]) -> list[str]:
        r"""Names of ψ_k, a structured term's parameters on their natural scales (lme4's
        ``oldNames = FALSE`` style): ``sd_<column>|<group>`` per SD (``sd_ar1|<group>`` for
        ``ar1``'s one SD), then ``cor_cs|<group>`` (ρ), ``cor_ar1|<group>`` (ρ, the lag-1
        correlation) or ``cor_pacf<k>|<group>`` (``toep``'s partial autocorrelations, the first
        being the lag-1 correlation).

        Examples
        --------
        >>> Covariance("ar1", 4).psi_names("g", ["t1", "t2", "t3", "t4"])
        ['sd_ar1|g', 'cor_ar1|g']
        >>> Covariance("cs", 2).psi_names("g", ["a", "b"])
        ['sd_a|g', 'sd_b|g', 'cor_cs|g']
        """
        if self.name == "us":
            raise ValueError("an unstructured term's ψ follow lme4's θ layout")
        sds = ([f"sd_ar1|{group}"] if self.name == "ar1"
               else [f"sd_{c}|{group}" for c in columns])
        cors = {"diag": [], "cs": [f"cor_cs|{group}"], "ar1": [f"cor_ar1|{group}"],
                "toep": [f"cor_pacf{k}|{group}" for k in range(1, self.ell)]}[self.name]
        return sds + cors

    def psi_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of ψ_k: SDs in [0, ∞); ρ in [−1/(ℓ − 1), 1] for ``cs``, [−1, 1]
        for ``ar1`` and ``toep``'s partial autocorrelations."""
        k = self.n_theta - self.n_sd
        lo = -1.0 / (self.ell - 1) if self.name == "cs" else -1.0
        return (np.concatenate([np.zeros(self.n_sd), np.full(k, lo)]),
                np.concatenate([np.full(self.n_sd, np.inf), np.ones(k)]))

    def _cor_of_u(self, u: np.ndarray) -> np.ndarray:
        if self.name == "cs":
            a = 1.0 / (self.ell - 1)
            return (1 + a) / (1 + np.exp(-u)) - a
        return _unit_cor(u)

    def to_psi(self, theta_k: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """ψ_k from θ_k: the SDs times ``scale`` (σ for an LMM, whose θ are relative), the
        correlation parameters mapped back from the real line (the module docstring's maps).

        Examples
        --------
        >>> Covariance("ar1", 3).to_psi(np.array([2.0, 0.75]), scale=10.0).tolist()
        [20.0, 0.6]
        """
        theta_k = np.asarray(theta_k, float)
        return np.concatenate([scale * theta_k[:self.n_sd],
                               self._cor_of_u(theta_k[self.n_sd:])])

    def from_psi(self, psi_k: np.ndarray, scale: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""θ_k from ψ_k, with :math:`\partial\theta_k/\partial\psi_k` (diagonal, n_θ × n_θ)
        and :math:`\partial\theta_k/\partial\,\mathrm{scale}`. A correlation on its bound
        (ρ = 1, or −1 / −1/(ℓ − 1)) is moved 1e-10 inside, where u is finite.

        Examples
        --------
        >>> c = Covariance("cs", 3)
        >>> th, J, _ = c.from_psi(np.array([1.0, 2.0, 0.5, 0.3]))
        >>> bool(np.allclose(c.to_psi(th), [1.0, 2.0, 0.5, 0.3]))
        True
        """
        psi_k = np.asarray(psi_k, float)
        m, ns = self.n_theta, self.n_sd
        lo, hi = self.psi_bounds()
        rho = np.clip(psi_k[ns:], lo[ns:] + 1e-10, hi[ns:] - 1e-10)
        if self.name == "cs":
            a = 1.0 / (self.ell - 1)
            e = (rho + a) / (1 + a)
            u = np.log(e / (1 - e))
            du = (1 + a) / ((rho + a) * (1 - rho))
        else:
            u = rho / np.sqrt(1 - rho ** 2)
            du = (1 - rho ** 2) ** -1.5
        theta = np.concatenate([psi_k[:ns] / scale, u])
        J = np.diag(np.concatenate([np.full(ns, 1.0 / scale), du]))
        d_scale = np.concatenate([-psi_k[:ns] / scale ** 2, np.zeros(m - ns)])
        return theta, J, d_scale

    def gamma_covariance(self, gamma_k) -> np.ndarray:
        r"""Σ_k (ℓ×ℓ) as a function of γ_k = (the variances :math:`s_i^2` of the SDs of ψ_k,
        the correlation parameters of ψ_k on their natural scale):
        :math:`\Sigma = D R D`, D = diag(s). Written for complex γ too, so that a complex step
        differentiates it (Kenward–Roger's :math:`\partial V/\partial\gamma`).

        Examples
        --------
        >>> Covariance("ar1", 3).gamma_covariance(np.array([4.0, 0.5])).tolist()
        [[4.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 4.0]]
        """
        if self.name == "us":
            raise ValueError("an unstructured term's Σ is linear in its entries (lme4's layout)")
        gamma_k = np.asarray(gamma_k)
        ns, ell = self.n_sd, self.ell
        sd = np.sqrt(gamma_k[:ns] + 0j)
        sd = np.full(ell, sd[0]) if self.name == "ar1" else sd
        c = gamma_k[ns:]
        lag = np.abs(np.subtract.outer(np.arange(ell), np.arange(ell)))
        if self.name == "diag":
            R = np.eye(ell) + 0j
        elif self.name == "cs":
            R = (1 - c[0]) * np.eye(ell) + c[0] * np.ones((ell, ell))
        elif self.name == "ar1":
            R = (c[0] + 0j) ** lag
        else:
            R = np.array([1.0 + 0j] + _acf_from_pacf(list(c + 0j)))[lag]
        S = sd[:, None] * R * sd[None, :]
        return S if np.iscomplexobj(gamma_k) else S.real

    def lower_triangle(self, theta_k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """T_k in lme4's θ layout and its Jacobian (ℓ(ℓ+1)/2 × n_θ)."""
        T, dT = self.factor_jacobian(theta_k)
        rows, cols = np.array(lower_triangle_pairs(self.ell)).T
        return T[rows, cols], dT[:, rows, cols].T
