"""Prefect entrypoint of the ``completeness`` deployment (wiring only)."""

from tickguard.quality.flow import completeness

__all__ = ["completeness"]
