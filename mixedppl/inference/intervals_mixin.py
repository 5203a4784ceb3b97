"""Confidence-interval methods beyond Wald (profile likelihood, parametric bootstrap)."""

from __future__ import annotations

__all__ = ["IntervalsMixin"]


class IntervalsMixin:
    """Methods added to the result classes."""
