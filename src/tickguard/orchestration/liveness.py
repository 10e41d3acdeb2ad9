"""The data-plane liveness signal: is this collector writing, not merely alive?

Prefect's heartbeat proves the process runs; it says nothing about data. Every
``liveness_interval_s`` the collector emits ``tickguard.collector.liveness`` about its flow
run with frames/s, trades/s and the exchange time of the last trade written; when it wrote
trades or books since the last signal (or the market is in no phase that trades), it also
emits ``tickguard.collector.progress``. A proactive automation
(``deployments/automations/collector-stalled.yaml``) expects progress after liveness and
marks the run Failed when it does not come — the restart automation then reruns it.

Self-fencing: the same loop reads the run's own state; when Prefect holds it in a terminal
state (an automation marked it Crashed or Failed) the collector stops, releasing its app key
to the replacement instead of fighting it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tickguard.models import Batch
from tickguard.stream.batcher import Sink

log = logging.getLogger(__name__)

LIVENESS = "tickguard.collector.liveness"
PROGRESS = "tickguard.collector.progress"


class WatchedSink:
    """A sink wrapper that remembers what passed through (counts, last trade time)."""

    def __init__(self, inner: Sink) -> None:
        self._inner = inner
        self.trades = 0
        self.books = 0
        self.last_trade_at: datetime | None = None

    async def put(self, batch: Batch) -> None:
        await self._inner.put(batch)
        self.trades += len(batch.trades)
        self.books += len(batch.books)
        if batch.trades:
            newest = max(t.ts for t in batch.trades)
            if self.last_trade_at is None or newest > self.last_trade_at:
                self.last_trade_at = newest


@dataclass(slots=True)
class Sample:
    frames_per_s: float
    trades_per_s: float
    books_per_s: float
    wrote: bool


class Rates:
    """Per-interval rates from cumulative counters."""

    def __init__(self) -> None:
        self._at = time.monotonic()
        self._last = (0, 0, 0)

    def sample(self, frames: int, trades: int, books: int) -> Sample:
        now = time.monotonic()
        span = max(now - self._at, 1e-6)
        df, dt, db = frames - self._last[0], trades - self._last[1], books - self._last[2]
        self._at, self._last = now, (frames, trades, books)
        return Sample(round(df / span, 2), round(dt / span, 2), round(db / span, 2), dt + db > 0)


Emit = Callable[[str, dict[str, Any]], None]
"""(event name, payload) → sends it (Prefect's emit_event bound to this run's resource)."""


async def liveness_loop(
    interval_s: float,
    frames: Callable[[], int],
    sink: WatchedSink,
    emit: Emit,
    *,
    quiet_ok: Callable[[], bool],
    fenced: Callable[[], Awaitable[str | None]],
    stop: asyncio.Event,
) -> str | None:
    """Emit liveness (and progress) every ``interval_s`` until ``stop``; fence on verdict.

    ``quiet_ok()`` is True when silence is expected (outside the trading phases);
    ``fenced()`` is awaited each round and returns a reason when Prefect ended this run;
    that reason is returned (None when stopped normally).
    """
    rates = Rates()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
            return None
        except TimeoutError:
            pass
        sample = rates.sample(frames(), sink.trades, sink.books)
        payload = {
            "frames_per_s": sample.frames_per_s,
            "trades_per_s": sample.trades_per_s,
            "books_per_s": sample.books_per_s,
            "trades_total": sink.trades,
            "last_trade_at": sink.last_trade_at.isoformat() if sink.last_trade_at else None,
        }
        emit(LIVENESS, payload)
        if sample.wrote or quiet_ok():
            emit(PROGRESS, payload)
        reason = await fenced()
        if reason:
            log.error("collector fenced by the orchestrator (%s): stopping", reason)
            stop.set()
            return reason
    return None
