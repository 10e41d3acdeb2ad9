"""Prefect entrypoint of the ``kiwoom-collector`` deployment (wiring only)."""

from tickguard.orchestration.collector_flow import collect_kiwoom

__all__ = ["collect_kiwoom"]
