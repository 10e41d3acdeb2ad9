"""The data side of the KIS simulator: market events → H0STCNT0/H0STASP0 frames.

One pump task walks the merged market tape on the sim clock. Every due event is written to
the ground truth and, when live sessions are subscribed to its (tr_id, symbol), encoded once
and queued on each of them; then every queue is flushed as multi-record frames (one
(tr_id, symbol) per frame, at most ``max_records`` records), so bursts at the open and close
and sweeps that share a timestamp travel together, as KIS pages them (§1.7). Data faults
(silence, malformed frames, grown records) are applied here, from the schedule.

Each connection has its own frame queue and writer task, so a slow client only slows itself;
one that falls more than ``max_pending`` frames behind is dropped (recorded as a
``slow_consumer`` fault). The pump's lag behind the sim clock is reported as ``lag_max_s``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

from websockets.exceptions import ConnectionClosed

from tickguard.sim.clock import SimClock
from tickguard.sim.faults import FaultSchedule, Grow
from tickguard.sim.kis_session import Conn, SessionTable, SimCounters
from tickguard.sim.kis_wire import (
    TR_BOOK,
    TR_TRADE,
    book_record,
    corrupt,
    data_frame,
    grow,
    malformed,
    trade_record,
)
from tickguard.sim.market import GenEvent, GenTrade
from tickguard.sim.truth import TruthWriter

MAX_EVENTS_PER_ROUND = 5_000
"""Events per pump round before frames are flushed and the loop serves control traffic."""


class Feed:
    def __init__(
        self,
        *,
        sessions: SessionTable,
        truth: TruthWriter,
        clock: SimClock,
        counters: SimCounters,
        faults: FaultSchedule,
        max_records: int,
        interval_s: float,
        max_pending: int,
    ) -> None:
        self._sessions = sessions
        self._max_pending = max_pending
        self._truth = truth
        self._clock = clock
        self._counters = counters
        self._faults = faults
        self._max_records = max_records
        self._interval = interval_s
        self._rng = random.Random(faults.seed ^ 0x5EED)
        self._grown: dict[Grow, int] = {}
        self._grow_started: dict[Grow, float] = {}

    async def pump(self, events: Iterator[GenEvent]) -> None:
        """Send the tape on the sim clock until the day ends."""
        nxt = next(events, None)
        while nxt is not None:
            now_t = self._clock.session_t()
            n = 0
            while nxt is not None and nxt.t <= now_t and n < MAX_EVENTS_PER_ROUND:
                self._dispatch(nxt)
                n += 1
                nxt = next(events, None)
            self._flush()
            if nxt is None:
                break
            delay = self._clock.wall_delay(nxt.t)
            if delay < 0:
                self._counters.lag_max_s = max(self._counters.lag_max_s, -delay)
            await asyncio.sleep(0 if delay <= 0 else max(min(delay, 1.0), self._interval))

    def _dispatch(self, ev: GenEvent) -> None:
        trade = isinstance(ev, GenTrade)
        tr_id = TR_TRADE if trade else TR_BOOK
        live = self._sessions.live((tr_id, ev.symbol))
        if isinstance(ev, GenTrade):
            key = ev.cum_volume
            side = ev.side.value if ev.side is not None else None
            self._truth.trade(ev.symbol, key, ev.price, ev.qty, side, ev.t, len(live))
            self._counters.trades_generated += 1
            self._counters.trades_missed_while_disconnected += not live
        else:
            key = ev.seq
            self._truth.book(ev.symbol, key, ev.t, len(live))
            self._counters.books_generated += 1
        if not live:
            return
        record = trade_record(ev) if isinstance(ev, GenTrade) else book_record(ev)
        for conn in live:
            if conn.silenced:
                continue
            records, keys = conn.outbox.setdefault((tr_id, ev.symbol), ([], []))
            records.append(record)
            keys.append(key)

    def _flush(self) -> None:
        """Move queued records into each connection's frame queue (never blocks the pump)."""
        for conn in list(self._sessions.conns.values()):
            if not conn.outbox:
                continue
            box, conn.outbox = conn.outbox, {}
            step = self._max_records
            for (tr_id, symbol), (records, keys) in box.items():
                for i in range(0, len(records), step):
                    conn.frames.append((tr_id, symbol, records[i : i + step], keys[i : i + step]))
            conn.ready.set()
            if len(conn.frames) > self._max_pending:
                self._drop_slow(conn)

    def _drop_slow(self, conn: Conn) -> None:
        """A client that cannot keep up is dropped (as a server would), not waited for."""
        conn.dying = True
        conn.frames.clear()
        conn.close_reason = f"slow consumer: more than {self._max_pending} frames pending"
        now = time.time()
        self._truth.fault("slow_consumer", conn.id, now, now, pending=self._max_pending)
        self._counters.slow_consumers_dropped += 1
        conn.ws.transport.abort()

    async def writer(self, conn: Conn) -> None:
        """Send one connection's frames; only this connection waits when its peer is slow."""
        while True:
            await conn.ready.wait()
            conn.ready.clear()
            while conn.frames:
                tr_id, symbol, records, keys = conn.frames.popleft()
                if conn.dying:
                    conn.frames.clear()
                    return
                if (tr_id, symbol) in conn.subs:  # not after its UNSUBSCRIBE ack
                    await self._send(conn, tr_id, symbol, records, keys)

    def _grow_now(self, tr_id: str) -> bool:
        for g in self._faults.grows():
            done = self._grown.get(g, 0)
            if g.tr_id != tr_id or self._clock.elapsed() < g.after_s:
                continue
            if g.frames is not None and done >= g.frames:
                continue
            self._grown[g] = done + 1
            self._grow_started.setdefault(g, time.time())
            return True
        return False

    async def _send(
        self, conn: Conn, tr_id: str, symbol: str, records: list[str], keys: list[int]
    ) -> None:
        kind = "data"
        if self._grow_now(tr_id):
            records, kind = [grow(r) for r in records], "grown"
        frame = data_frame(tr_id, records)
        spec = self._faults.malformed()
        if spec is not None and self._rng.random() < spec.rate:
            if spec.mode == "corrupt":
                frame, kind = corrupt(self._rng, frame), "malformed"
            elif not await self._inject_malformed(conn, tr_id, records[0]):
                return
        try:
            await conn.ws.send(frame)
        except ConnectionClosed:
            return
        paired = [(symbol, k) for k in keys]
        trade = tr_id == TR_TRADE
        self._truth.frame(
            conn.id,
            self._clock.session_t(),
            tr_id,
            kind,
            paired if trade else [],
            [] if trade else paired,
        )
        c = self._counters
        c.frames_sent += 1
        c.grown_frames += kind == "grown"
        c.malformed_sent += kind == "malformed"
        if kind == "malformed":
            self._truth.fault("malformed", conn.id, time.time(), time.time(), variant="corrupt")
        elif trade:
            c.trade_records_sent += len(records)
        else:
            c.book_records_sent += len(records)

    async def _inject_malformed(self, conn: Conn, tr_id: str, record: str) -> bool:
        bad, variant = malformed(self._rng, tr_id, record)
        try:
            await conn.ws.send(bad)
        except ConnectionClosed:
            return False
        now = time.time()
        self._truth.frame(conn.id, self._clock.session_t(), tr_id, "malformed", [], [])
        self._truth.fault("malformed", conn.id, now, now, variant=variant)
        self._counters.frames_sent += 1
        self._counters.malformed_sent += 1
        return True

    def close(self) -> None:
        """Record grow faults (one row per spec: first grown frame → now)."""
        for g, n in self._grown.items():
            self._truth.fault(
                "grow", None, self._grow_started[g], time.time(), tr_id=g.tr_id, frames=n
            )
