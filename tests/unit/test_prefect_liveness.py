"""The liveness loop without Prefect: liveness always, progress only when writing (or when
silence is expected), fencing on the orchestrator's verdict."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

from tickguard.models import Batch, Broker, Trade
from tickguard.orchestration.liveness import LIVENESS, PROGRESS, WatchedSink, liveness_loop


class ListSink:
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def put(self, batch: Batch) -> None:
        self.batches.append(batch)


def trade(second: int, cum: int) -> Trade:
    ts = datetime(2026, 11, 26, 0, 0, second, tzinfo=UTC)
    return Trade(Broker.KIS, "005930", date(2026, 11, 26), ts, 71_900, 1, None, cum, ts)


async def run_loop(
    sink: WatchedSink, *, quiet_ok: bool, rounds: int, fence_at: int | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    events: list[tuple[str, dict[str, Any]]] = []
    stop = asyncio.Event()
    calls = 0

    def emit(name: str, payload: dict[str, Any]) -> None:
        events.append((name, payload))
        if sum(1 for n, _ in events if n == LIVENESS) >= rounds:
            stop.set()

    async def fenced() -> str | None:
        nonlocal calls
        calls += 1
        return "run is Failed" if fence_at is not None and calls >= fence_at else None

    reason = await asyncio.wait_for(
        liveness_loop(0.01, lambda: 10, sink, emit, quiet_ok=lambda: quiet_ok, fenced=fenced,
                      stop=stop),
        10,
    )  # fmt: skip
    return events, reason


async def test_watched_sink_forwards_and_remembers_the_last_trade() -> None:
    inner = ListSink()
    sink = WatchedSink(inner)
    await sink.put(Batch(trades=[trade(5, 10), trade(3, 9)]))
    assert len(inner.batches) == 1
    assert sink.trades == 2 and sink.last_trade_at == trade(5, 10).ts


async def test_progress_only_while_writing() -> None:
    sink = WatchedSink(ListSink())
    await sink.put(Batch(trades=[trade(1, 1)]))
    events, reason = await run_loop(sink, quiet_ok=False, rounds=3)
    names = [n for n, _ in events]
    assert reason is None
    assert names.count(LIVENESS) == 3
    assert names.count(PROGRESS) == 1  # only the first interval saw a trade
    first = events[0][1]
    assert first["last_trade_at"] == trade(1, 1).ts.isoformat()
    assert first["frames_per_s"] > 0


async def test_quiet_market_is_progress_and_fence_stops_the_loop() -> None:
    sink = WatchedSink(ListSink())
    events, _ = await run_loop(sink, quiet_ok=True, rounds=2)
    assert [n for n, _ in events].count(PROGRESS) == 2
    _, reason = await run_loop(sink, quiet_ok=False, rounds=100, fence_at=2)
    assert reason == "run is Failed"
