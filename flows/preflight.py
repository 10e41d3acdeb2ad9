"""Prefect entrypoint of the ``preflight`` deployment (wiring only)."""

from tickguard.preflight.flow import preflight

__all__ = ["preflight"]
