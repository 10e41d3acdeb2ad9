"""Metrics parts without a drill: per-symbol counting and lag, port choice, a taken port."""

from __future__ import annotations

import socket
import urllib.request
from datetime import UTC, date, datetime, timedelta

from tickguard.metrics import collector_port, serving
from tickguard.metrics.collector import CountingSink
from tickguard.metrics.persist import PersistSource
from tickguard.models import Batch, Broker, Trade
from tickguard.settings import MetricsSettings
from tickguard.sinks.persist_write import PersistCounters


class ListSink:
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def put(self, batch: Batch) -> None:
        self.batches.append(batch)


def trade(symbol: str, cum: int, lag_s: float) -> Trade:
    ts = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    return Trade(Broker.KIS, symbol, date(2026, 11, 26), ts, 100, 1, None, cum,
                 ts + timedelta(seconds=lag_s))  # fmt: skip


async def test_counting_sink_counts_per_symbol_after_handing_on() -> None:
    inner = ListSink()
    sink = CountingSink(inner)
    await sink.put(Batch(trades=[trade("A", 1, 0.1), trade("B", 1, 0.2), trade("A", 2, 0.35)]))
    await sink.put(Batch())
    assert len(inner.batches) == 2
    assert sink.by_symbol == {"A": 2, "B": 1}
    assert abs(sink.lag_s - 0.35) < 1e-9
    assert sink.last_put > 0


def test_each_broker_process_has_its_own_port() -> None:
    m = MetricsSettings()
    assert collector_port(m, Broker.KIS) == 9401
    assert collector_port(m, Broker.KIWOOM) == 9403
    assert m.persist_port == 9402 and m.host == "127.0.0.1"


def test_a_taken_port_is_skipped_and_a_free_one_serves() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        source = PersistSource(PersistCounters(rows_inserted=7), group="g", consumer="c")
        with serving("127.0.0.1", port, source) as bound:
            assert bound is None  # logged, not raised: metrics never stop a process
    with serving("127.0.0.1", 0, source) as bound:
        assert bound
        body = urllib.request.urlopen(f"http://127.0.0.1:{bound}/metrics").read().decode()
        assert 'persist_rows_inserted_total{consumer="c",group="g"} 7.0' in body
