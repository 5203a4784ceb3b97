r"""Link functions: the inverse link :math:`\mu = g^{-1}(\eta)` in PyTensor, and NumPy twins.

A :class:`Link` holds ``linkinv`` (a PyTensor expression, used by every graph), ``linkinv_np``
and ``link_np`` (NumPy, for start values and prediction). The links of a cumulative model are the
same objects: there :math:`g^{-1}` is the CDF :math:`F` of the latent variable.

=========  ==============================================  =====================================
link       :math:`g^{-1}(\eta)`                            latent distribution
=========  ==============================================  =====================================
logit      :math:`1/(1 + e^{-\eta})`                       logistic
probit     :math:`\Phi(\eta)`                              standard normal
cloglog    :math:`1 - \exp(-e^{\eta})`                     Gumbel (minimum)
loglog     :math:`\exp(-e^{-\eta})`                        Gumbel (maximum)
cauchit    :math:`1/2 + \arctan(\eta)/\pi`                 Cauchy
log        :math:`e^{\eta}`                                —
identity   :math:`\eta`                                     — (the Gaussian)
sqrt       :math:`\eta^2`                                   — (R's ``poisson(link = "sqrt")``)
inverse    :math:`1/\eta`                                   — (canonical for the Gamma)
=========  ==============================================  =====================================

Links are module-level functions, not lambdas, so that a Link, a family and every result holding
them pickle (by reference to these names).

References
----------
McCullagh, P. & Nelder, J. A. (1989). *Generalized Linear Models*, 2nd ed., §2.2.2 and §4.3.

Examples
--------
>>> float(LINKS["probit"].linkinv_np(0.0)), LINKS["logit"].unit_interval
(0.5, True)
>>> float(LINKS["sqrt"].linkinv_np(3.0)), float(LINKS["inverse"].link_np(4.0))
(9.0, 0.25)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from scipy import special

__all__ = ["Link", "LINKS"]


@dataclass(frozen=True)
class Link:
    """A link function.

    Attributes
    ----------
    name : str
    linkinv : callable
        :math:`\\eta \\mapsto \\mu` on PyTensor tensors.
    linkinv_np, link_np : callable
        :math:`\\eta \\mapsto \\mu` and :math:`\\mu \\mapsto \\eta` on NumPy arrays.
    unit_interval : bool
        Whether :math:`\\mu` lies in (0, 1) (a CDF); else in (0, ∞).
    log_linkinv, log1m_linkinv : callable or None
        :math:`\\eta \\mapsto \\log\\mu` and :math:`\\eta \\mapsto \\log(1 - \\mu)` written in η
        (logit: :math:`-\\operatorname{softplus}(\\mp\\eta)`), for the families that use them
        (:attr:`~.glm.GLMFamily.logp_logs`): their η-derivatives are then finite where μ
        rounds to 0 or 1; through μ they are 0/0 there (the binomial's dℓ/dη at η > 37).
    """

    name: str
    linkinv: Callable
    linkinv_np: Callable
    link_np: Callable
    unit_interval: bool = False
    log_linkinv: Callable | None = None
    log1m_linkinv: Callable | None = None


def _identity(x):
    return x


def _probit_inv(e):
    return 0.5 * pt.erfc(-e / np.sqrt(2.0))


def _cloglog_inv(e):
    return -pt.expm1(-pt.exp(e))


def _cloglog_inv_np(e):
    return -np.expm1(-np.exp(e))


def _cloglog_np(m):
    return np.log(-np.log1p(-m))


def _loglog_inv(e):
    return pt.exp(-pt.exp(-e))


def _loglog_inv_np(e):
    return np.exp(-np.exp(-e))


def _loglog_np(m):
    return -np.log(-np.log(m))


def _square(e):
    return e * e


def _inverse(e):
    return 1.0 / e


def _cauchit_inv(e):
    return 0.5 + pt.arctan(e) / np.pi


def _cauchit_inv_np(e):
    return 0.5 + np.arctan(e) / np.pi


def _log_expit(e):
    """log σ(η) = −softplus(−η)."""
    return -pt.softplus(-e)


def _log1m_expit(e):
    """log(1 − σ(η)) = −softplus(η)."""
    return -pt.softplus(e)


def _cauchit_np(m):
    return np.tan(np.pi * (m - 0.5))


LINKS: dict[str, Link] = {
    "logit": Link("logit", pt.sigmoid, special.expit, special.logit, True,
                  log_linkinv=_log_expit, log1m_linkinv=_log1m_expit),
    "probit": Link("probit", _probit_inv, special.ndtr, special.ndtri, True),
    "cloglog": Link("cloglog", _cloglog_inv, _cloglog_inv_np, _cloglog_np, True),
    "log": Link("log", pt.exp, np.exp, np.log),
    "identity": Link("identity", _identity, _identity, _identity),
    "loglog": Link("loglog", _loglog_inv, _loglog_inv_np, _loglog_np, True),
    "cauchit": Link("cauchit", _cauchit_inv, _cauchit_inv_np, _cauchit_np, True),
    "sqrt": Link("sqrt", _square, _square, np.sqrt),
    "inverse": Link("inverse", _inverse, _inverse, _inverse),
}
