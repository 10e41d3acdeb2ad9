"""Prefect entrypoint of the ``kis-collector`` deployment (wiring only)."""

from tickguard.orchestration.collector_flow import collect_kis

__all__ = ["collect_kis"]
