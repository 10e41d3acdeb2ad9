"""Prefect entrypoint of the ``daily-report`` deployment (wiring only)."""

from tickguard.reporting.flow import daily_report

__all__ = ["daily_report"]
