"""Collector metrics: connection status, messages per symbol, reconnects, errors, lag,
queue depth, spool, quarantined frames, open gaps — read from the collector's own objects.

The one thing the collector did not count before is messages per symbol and the
exchange-to-receive lag; :class:`CountingSink` adds them per *batch* (``Counter.update``
over a ``map`` runs in C), wrapped around whatever sink the collector was given.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tickguard.models import Batch, Broker
from tickguard.settings import MetricsSettings
from tickguard.sinks.redis_stream import RedisStreamSink
from tickguard.stream.batcher import EventQueue, Sink
from tickguard.stream.supervisor import Supervisor

_SYMBOL = attrgetter("symbol")

ERROR_TYPES = {
    "drop": "drops",
    "stale": "stale",
    "session_conflict": "session_conflicts",
    "key_conflict": "key_conflicts",
    "ack_refused": "acks_refused",
    "ack_missing": "acks_missing",
    "breaker_trip": "breaker_trips",
}
"""error_type label → SessionStats field."""


class CountingSink:
    """Hands batches on, then counts events per symbol and the newest trade's lag."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.by_symbol: Counter[str] = Counter()
        self.lag_s = float("nan")
        self.last_put = 0.0

    async def put(self, batch: Batch) -> None:
        await self.inner.put(batch)
        if batch.trades:
            self.by_symbol.update(map(_SYMBOL, batch.trades))
            newest = batch.trades[-1]
            self.lag_s = (newest.received_at - newest.ts).total_seconds()
        if batch.books:
            self.by_symbol.update(map(_SYMBOL, batch.books))
        if batch.trades or batch.books:
            self.last_put = time.time()


def collector_port(metrics: MetricsSettings, broker: Broker) -> int:
    """``<broker>_collector_port`` when settings have one (Kiwoom), else ``collector_port``:
    collectors of different brokers run as separate processes on one host."""
    port: int = getattr(metrics, f"{broker.value}_collector_port", metrics.collector_port)
    return port


def stream_sink(sink: Any) -> RedisStreamSink | None:
    """The RedisStreamSink under wrappers (``inner`` / ``_inner``), for its spool figures."""
    for _ in range(4):
        if isinstance(sink, RedisStreamSink):
            return sink
        sink = getattr(sink, "inner", None) or getattr(sink, "_inner", None)
    return None


class CollectorSource:
    """One collector run (one broker) as metric families."""

    def __init__(
        self,
        broker: Broker,
        supervisors: Sequence[Supervisor],
        queue: EventQueue,
        counting: CountingSink,
    ) -> None:
        self.broker = broker.value
        self.supervisors = list(supervisors)
        self.queue = queue
        self.counting = counting
        self.stream = stream_sink(counting.inner)

    def collect(self) -> Iterable[Metric]:
        b = self.broker
        stats = [s.stats for s in self.supervisors]
        status = GaugeMetricFamily(
            "collector_connection_status",
            "1 while the key's websocket is open",
            labels=["broker", "key"],
        )
        for st in stats:
            status.add_metric([b, st.key], 1.0 if st.connects > st.drops else 0.0)
        yield status
        messages = CounterMetricFamily(
            "collector_messages_received",
            "Trades and book snapshots handed on, per symbol",
            labels=["broker", "symbol"],
        )
        for symbol, count in self.counting.by_symbol.copy().items():
            messages.add_metric([b, symbol], count)
        yield messages
        yield self._sum(
            "collector_reconnect", "Reconnects after the first connect", "reconnects", stats
        )
        errors = CounterMetricFamily(
            "collector_error", "Connection-level failures by type", labels=["broker", "error_type"]
        )
        for label, attr in ERROR_TYPES.items():
            errors.add_metric([b, label], sum(getattr(st, attr) for st in stats))
        yield errors
        yield self._sum("collector_frames", "Websocket frames received", "frames", stats)
        yield self._sum(
            "collector_quarantined_frames", "Frames kept raw as undecodable", "quarantined", stats
        )
        yield self._sum("collector_gaps_opened", "Gaps opened by drops", "gaps_opened", stats)
        yield self._gauge(
            "collector_gaps_open",
            "Gaps open now (drop not yet healed)",
            sum(len(s.gaps.open) for s in self.supervisors),
        )
        yield self._gauge(
            "collector_exchange_lag_seconds",
            "Receive time minus exchange time of the newest trade",
            self.counting.lag_s,
        )
        yield self._gauge(
            "collector_last_message_timestamp_seconds",
            "Unix time of the last batch with data",
            self.counting.last_put,
        )
        yield self._gauge(
            "collector_queue_depth", "Events waiting for the sink", self.queue.qsize()
        )
        yield self._gauge("collector_queue_capacity", "Queue cap (settings)", self.queue.max_events)
        yield from self._spool()

    def _spool(self) -> Iterable[Metric]:
        if self.stream is None:
            return
        c = self.stream.counters
        yield self._gauge("collector_spool_bytes", "Bytes waiting in the disk spool", c.spool_bytes)
        yield self._counter(
            "collector_spool_overflow_events", "Events refused by a full spool", c.overflow_events
        )
        yield self._counter(
            "collector_sink_send_failures", "XADDs that failed (Redis away)", c.send_failures
        )

    def _sum(self, name: str, doc: str, attr: str, stats: list[Any]) -> Metric:
        return self._counter(name, doc, sum(getattr(st, attr) for st in stats))

    def _counter(self, name: str, doc: str, value: float) -> Metric:
        family = CounterMetricFamily(name, doc, labels=["broker"])
        family.add_metric([self.broker], value)
        return family

    def _gauge(self, name: str, doc: str, value: float) -> Metric:
        family = GaugeMetricFamily(name, doc, labels=["broker"])
        family.add_metric([self.broker], value)
        return family
