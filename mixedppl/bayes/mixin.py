"""The Bayesian switch on a fitted result: ``fit.sample()``."""

from __future__ import annotations

__all__ = ["SampleMixin"]


class SampleMixin:
    """Methods added to the result classes."""
