"""persist metrics: rows stored, duplicates, commits, quarantined entries and the lag of
its consumer group — read from :class:`~tickguard.sinks.persist_write.PersistCounters`."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tickguard.sinks.persist_write import PersistCounters

COUNTERS = {
    "persist_rows_inserted": ("rows_inserted", "Rows newly stored"),
    "persist_rows_duplicate": ("rows_duplicates", "Rows already stored (redeliveries)"),
    "persist_trades_inserted": ("trades_inserted", "Trades newly stored"),
    "persist_commits": ("commits", "Transactions committed"),
    "persist_entries_acked": ("entries_acked", "Stream entries acknowledged after commit"),
    "persist_quarantined_entries": ("quarantined_entries", "Entries stored raw as unreadable"),
    "persist_db_retries": ("db_retries", "PostgreSQL retries (server away)"),
    "persist_redis_retries": ("redis_retries", "Redis retries (server away)"),
}


class PersistSource:
    """One persist consumer as metric families."""

    def __init__(self, counters: PersistCounters, *, group: str, consumer: str) -> None:
        self.counters, self.group, self.consumer = counters, group, consumer

    def collect(self) -> Iterable[Metric]:
        labels = [self.group, self.consumer]
        c = self.counters
        for name, (attr, doc) in COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=["group", "consumer"])
            family.add_metric(labels, getattr(c, attr))
            yield family
        for name, doc, value in (
            ("persist_lag_entries", "Entries not yet delivered to the group", c.lag or 0),
            ("persist_pending_entries", "Entries delivered but not acknowledged", c.pending),
            (
                "persist_last_commit_timestamp_seconds",
                "Unix time of the last commit",
                c.last_commit_at.timestamp() if c.last_commit_at else 0.0,
            ),
        ):
            gauge = GaugeMetricFamily(name, doc, labels=["group", "consumer"])
            gauge.add_metric(labels, value)
            yield gauge
