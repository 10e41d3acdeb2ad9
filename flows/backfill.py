"""Prefect entrypoint of the ``backfill`` deployment (wiring only)."""

from tickguard.backfill.flow import backfill

__all__ = ["backfill"]
