r"""Hat-matrix diagonals of a linear mixed model (lme4's ``hatvalues`` and its fixed / random split).

With :math:`A = [Z\Lambda_\theta,\ X]`, prior weights W and
:math:`M = A^\top W A + \operatorname{diag}(I_q, 0_p)`, the fitted values are
:math:`X\hat\beta + Z\hat b = H y` with :math:`H = A M^{-1} A^\top W`, so
:math:`h_i = w_i\, a_i^\top M^{-1} a_i` (``"total"``, lme4's ``hatvalues``). The marginal (fixed) part is
:math:`H_F = X (X^\top V^{-1} X)^{-1} X^\top V^{-1}` with
:math:`V \propto Z\Lambda\Lambda^\top Z^\top + W^{-1}` (Woodbury:
:math:`V^{-1} \propto W - WZ\Lambda K^{-1}\Lambda^\top Z^\top W`, :math:`K = \Lambda^\top Z^\top W Z\Lambda + I`);
``"random"`` is the difference, the diagonal of :math:`Z G Z^\top V^{-1}(I - H_F)`.

For a GLMM / CLMM record (:class:`~mixedppl.fit.records.LaplaceFit`) W is the IRLS weights
at the conditional mode, :math:`W_i = n_i (d\mu_i/d\eta_i)^2 / V(\hat\mu_i)` (the family's
variance function, dispersion included), so H is the hat matrix of the penalised weighted
least-squares problem PIRLS solves at the optimum: :math:`0 \le h_i \le 1`,
:math:`\sum_i h_i \le q + p`. lme4's ``hatvalues`` for a ``glmerMod`` forms the same
:math:`a_i^\top M^{-1} a_i` but multiplies it by the *prior* weight instead of :math:`W_i` (it
warns that "the hat matrix may not make sense for GLMMs"): lme4's value is
:math:`h_i \cdot w^{\text{prior}}_i / W_i` (tested against lme4 on cbpp).

A CLMM record (ordinal's ``clmm``, :math:`P(Y_i \le j) = F(\alpha_j - \eta_i)`) has one
linear predictor per row and K − 1 thresholds. Its weights are the Fisher information of
:math:`\eta_i` (:func:`clmm_fisher_weights`),

.. math:: W_i = n_i \sum_{j=1}^{K} \frac{[f(\alpha_j - \eta_i) - f(\alpha_{j-1} - \eta_i)]^2}
          {F(\alpha_j - \eta_i) - F(\alpha_{j-1} - \eta_i)}

(f = F', :math:`\alpha_0 = -\infty`, :math:`\alpha_K = \infty`), and the common shift of the
thresholds, which acts on every row as an intercept does (:math:`\alpha_j - \eta_i`: adding c to
every α is subtracting c from every η), enters A as a column of −1: :math:`A = [Z\Lambda_\theta,
-\mathbf 1, X]`. The threshold spacings are held at the fit's values. Then
:math:`0 \le h_i \le 1` and :math:`\sum_i h_i \le q + p + 1`.

References
----------
Nobre, J. S. & Singer, J. M. (2007). Residual analysis for linear mixed models. Biom. J. 49, 863–875.
Bates, D. et al. (2015). J. Stat. Softw. 67(1), section 3 (the penalised least squares system).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..spec.reterm import relative_factors

__all__ = ["hat_diagonal", "glmm_hat_diagonal", "irls_weights", "clmm_fisher_weights"]


def _z_lambda(spec, theta: np.ndarray) -> sp.csr_matrix:
    """Sparse ZΛ_θ (n × q), columns level-major within each term as lme4's Zt."""
    blocks = []
    for t, T in zip(spec.terms, relative_factors(spec.terms, theta)):
        zt = t.z @ T
        ell = t.n_cols
        cols = (t.codes[:, None] * ell + np.arange(ell)[None, :]).ravel()
        rows = np.repeat(np.arange(spec.n), ell)
        blocks.append(sp.csr_matrix((zt.ravel(), (rows, cols)), shape=(spec.n, t.q)))
    return sp.hstack(blocks, format="csr")


def _rowwise_quad(A, Minv_factor, w: np.ndarray, chunk: int = 20000) -> np.ndarray:
    """w_i a_iᵀ M⁻¹ a_i for every row of A, given M's Cholesky factor (chunked over rows)."""
    out = np.empty(A.shape[0])
    for s in range(0, A.shape[0], chunk):
        block = A[s:s + chunk]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        sol = sla.cho_solve(Minv_factor, block.T)
        out[s:s + chunk] = np.einsum("ij,ji->i", block, sol)
    return w * out


def irls_weights(record) -> np.ndarray:
    """W_i = n_i (dE(y)/dη)² / V(μ̂_i) at the mode of a GLMM record (the derivative by central
    differences, relative error ~1e-10). E(y) is the family's response mean: μ, or for a
    zero-truncated row μ/(1 − p₀) (:meth:`~mixedppl.families.glm.GLMFamily.response_mean`), times
    1 − π with a zero-inflation part, and V the variance of y (π and φ per row)."""
    eta = np.asarray(record.eta, float)
    link, family = record.link, record.family
    row = getattr(family, "row_dispersion", None)   # φ with a Tweedie / t shape parameter
    disp = (None if not len(record.phi) else float(np.exp(record.phi[0])) if row is None
            else row(record.phi, {}))
    extra = ()
    aux = record.spec.aux_designs
    if aux:   # zero-inflation / dispersion formulas: π and φ per row
        disp = family.row_dispersion(record.phi, aux)
        zprob = family.zero_prob(record.phi, aux)
        extra = () if zprob is None else (zprob,)

    def mean(e):
        return family.response_mean(link.linkinv_np(e), disp, *extra)

    h = 1e-6 * np.maximum(1.0, np.abs(eta))
    mu_eta = (mean(eta + h) - mean(eta - h)) / (2 * h)
    n = np.asarray(record.trials, float)
    mu = link.linkinv_np(eta)
    var = record.family.variance(mu, np.where(n > 0, n, 1.0), disp, *extra)
    return np.where(n > 0, mu_eta ** 2 / var, 0.0)


def clmm_fisher_weights(record) -> np.ndarray:
    """W_i, the Fisher information of η_i of a cumulative link model at the mode (module
    docstring; the density f by central differences of the link's CDF, relative error ~1e-10).

    Examples
    --------
    >>> import mixedppl as mp
    >>> o = mp.clmm("rating ~ temp + contact + (1 | judge)", mp.datasets.load("wine"))
    >>> bool((clmm_fisher_weights(o.record) > 0).all())
    True
    """
    eta = np.asarray(record.eta, float)
    alpha = np.asarray(record.alpha, float)
    x = alpha[None, :] - eta[:, None]
    h = 1e-5 * np.maximum(1.0, np.abs(x))
    cdf = record.link.linkinv_np
    dens = (cdf(x + h) - cdf(x - h)) / (2 * h)
    n = len(eta)
    F = np.hstack([np.zeros((n, 1)), cdf(x), np.ones((n, 1))])
    f = np.hstack([np.zeros((n, 1)), dens, np.zeros((n, 1))])
    prob, slope = np.diff(F, axis=1), np.diff(f, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        info = np.where(prob > 0, slope ** 2 / prob, 0.0).sum(axis=1)
    return np.asarray(record.trials, float) * info


def glmm_hat_diagonal(record) -> np.ndarray:
    """Diagonal of the PWLS hat matrix of a GLMM or CLMM at its mode (module docstring).

    Examples
    --------
    >>> import mixedppl as mp
    >>> g = mp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mp.datasets.load("cbpp"))
    >>> h = glmm_hat_diagonal(g.record)
    >>> bool((h >= 0).all() and (h <= 1).all()), bool(h.sum() <= 15 + 4)
    (True, True)
    """
    theta = np.asarray(record.theta, float)
    if len(getattr(record, "alpha", ())):
        spec = record.spec
        X = np.hstack([-np.ones((spec.n, 1)), np.asarray(spec.X, float)])
        return _hat(spec, theta, clmm_fisher_weights(record), "total", X)
    return _hat(record.spec, theta, irls_weights(record), "total")


def hat_diagonal(record, part: str = "total") -> np.ndarray:
    """Diagonal of the total, fixed (marginal) or random part of the hat matrix (module docstring).

    ``record`` is an :class:`~mixedppl.fit.records.LMMFit` (only its spec and θ are used).

    Examples
    --------
    >>> import mixedppl as mp
    >>> fit = mp.lmer("Reaction ~ Days + (Days | Subject)", mp.datasets.load("sleepstudy"))
    >>> hat_diagonal(fit.record)[:3].round(4).tolist()
    [0.2293, 0.1697, 0.1268]
    """
    if part not in ("total", "fixed", "random"):
        raise ValueError(f"part must be 'total', 'fixed' or 'random', got {part!r}")
    spec = record.spec
    return _hat(spec, np.asarray(record.theta, float), np.asarray(spec.weights, float), part)


def _hat(spec, theta: np.ndarray, w: np.ndarray, part: str,
         X: np.ndarray | None = None) -> np.ndarray:
    """The total / fixed / random hat diagonal with weights w (see the module docstring);
    X defaults to the spec's fixed-effects design."""
    ZL = _z_lambda(spec, theta)
    X = np.asarray(spec.X if X is None else X, float)
    q = ZL.shape[1]
    if part in ("total", "random"):
        A = sp.hstack([ZL, sp.csr_matrix(X)], format="csr")
        M = (A.T @ sp.diags(w) @ A).toarray()
        M[np.arange(q), np.arange(q)] += 1.0
        total = _rowwise_quad(A, sla.cho_factor(M, lower=True), w)
        if part == "total":
            return total
    K = (ZL.T @ sp.diags(w) @ ZL).toarray() + np.eye(q)
    WX = w[:, None] * X
    VinvX = WX - sp.diags(w) @ ZL @ sla.cho_solve(sla.cho_factor(K, lower=True), ZL.T @ WX)
    XtVX = X.T @ VinvX
    fixed = np.einsum("ij,ji->i", X, np.linalg.solve(XtVX, VinvX.T))
    return fixed if part == "fixed" else total - fixed
