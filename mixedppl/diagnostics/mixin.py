"""Diagnostic methods of fitted models (ICC, R², influence, leverage)."""

from __future__ import annotations

__all__ = ["DiagnosticsMixin"]


class DiagnosticsMixin:
    """Methods added to the result classes."""
