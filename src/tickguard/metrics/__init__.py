"""Prometheus metrics of the long-running processes (collector, persist).

Each process serves ``/metrics`` on ``settings.metrics.host`` (loopback by default) at its
port; :data:`EXPORTED` lists every metric name tickguard serves (the Grafana dashboard and
the alert rules are tested against it). ``process_*`` come from prometheus-client's
ProcessCollector (RSS: ``process_resident_memory_bytes``).
"""

from __future__ import annotations

from tickguard.metrics.collector import CollectorSource, CountingSink, collector_port
from tickguard.metrics.exporter import serving
from tickguard.metrics.ledger import LedgerSource
from tickguard.metrics.persist import PersistSource

EXPORTED: frozenset[str] = frozenset(
    {
        "collector_connection_status",
        "collector_messages_received_total",
        "collector_reconnect_total",
        "collector_error_total",
        "collector_frames_total",
        "collector_quarantined_frames_total",
        "collector_gaps_opened_total",
        "collector_gaps_open",
        "collector_exchange_lag_seconds",
        "collector_last_message_timestamp_seconds",
        "collector_queue_depth",
        "collector_queue_capacity",
        "collector_spool_bytes",
        "collector_spool_overflow_events_total",
        "collector_sink_send_failures_total",
        "persist_rows_inserted_total",
        "persist_rows_duplicate_total",
        "persist_trades_inserted_total",
        "persist_commits_total",
        "persist_entries_acked_total",
        "persist_quarantined_entries_total",
        "persist_db_retries_total",
        "persist_redis_retries_total",
        "persist_lag_entries",
        "persist_pending_entries",
        "persist_last_commit_timestamp_seconds",
        "tickguard_gaps",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
        "process_max_fds",
        "process_virtual_memory_bytes",
        "up",
    }
)
"""Every series name a scrape of tickguard (plus Prometheus' own ``up``) can return."""

__all__ = [
    "EXPORTED",
    "CollectorSource",
    "CountingSink",
    "LedgerSource",
    "PersistSource",
    "collector_port",
    "serving",
]
