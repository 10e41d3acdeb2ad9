"""Prefect entrypoint of the ``persist`` deployment (wiring only)."""

from tickguard.orchestration.persist_flow import persist

__all__ = ["persist"]
