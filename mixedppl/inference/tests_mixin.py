"""Hypothesis-test methods of LMM results (Kenward–Roger, type III F tests, refit/update, simulate)."""

from __future__ import annotations

__all__ = ["LMMTestsMixin"]


class LMMTestsMixin:
    """Methods added to :class:`~mixedppl.results.lmm.LMMResult`."""
