"""The gap ledger as metrics: gaps by broker, kind and status, counted in PostgreSQL.

Why from the ledger and not only the collector's memory: gaps are also opened by the
completeness checks and closed by the backfill, in other processes; "every gap ends as
filled, no_trades or unrecoverable — never as nothing" is a statement about the table. One
indexed ``GROUP BY`` per scrape, bounded by short timeouts; a database that does not answer
yields no series (the PersistNotCommitting alert covers it) rather than a stuck scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import psycopg
from prometheus_client.core import GaugeMetricFamily, Metric

from tickguard.store.migrate import libpq_url

log = logging.getLogger(__name__)

QUERY = "SELECT broker, kind, status, count(*) FROM gaps GROUP BY broker, kind, status"
TIMEOUT_S = 2


class LedgerSource:
    """``tickguard_gaps{broker,kind,status}`` read from the ``gaps`` table at scrape time."""

    def __init__(self, database_url: str) -> None:
        self._url = libpq_url(database_url)

    def collect(self) -> Iterable[Metric]:
        try:
            with psycopg.connect(
                self._url,
                connect_timeout=TIMEOUT_S,
                options=f"-c statement_timeout={TIMEOUT_S * 1000}",
            ) as conn:
                rows = conn.execute(QUERY).fetchall()
        except psycopg.Error as exc:
            log.debug("gap ledger not read for metrics: %s", type(exc).__name__)
            return []
        family = GaugeMetricFamily(
            "tickguard_gaps", "Gaps in the ledger by status", labels=["broker", "kind", "status"]
        )
        for broker, kind, status, count in rows:
            family.add_metric([str(broker), str(kind), str(status)], float(count))
        return [family]
