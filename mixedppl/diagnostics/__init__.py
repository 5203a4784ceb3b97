"""Diagnostics of fitted models: ICC, R², influence, leverage, residual plots."""
