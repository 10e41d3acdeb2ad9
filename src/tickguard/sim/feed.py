"""The data side of every simulator: market events → a broker's data frames (broker-neutral).

One pump task walks the merged market tape on the sim clock. Every due event is written to
the ground truth and, when live sessions are subscribed to its (channel, symbol), encoded
once by the broker's :class:`Wire` and queued on each of them; then every queue is flushed
as frames of at most ``max_records`` records, grouped as the wire says (KIS: one
(tr_id, symbol) per frame; Kiwoom: any mix of items and types in one REAL message), so
bursts at the open and close and sweeps that share a timestamp travel together. Data faults
of the shared menu are applied here: silence (per connection), malformed frames (a broken
frame before a data frame, or a data frame mangled in place: its records are lost), grown
records (the broker added a field) and withheld trades (a symbol's trades for a window of
session time generated but never sent, the connection and everything else flowing: ticks
lost inside a live connection; recorded as a ``withhold`` fault with symbols and span).

Each connection has its own frame queue and writer task, so a slow client only slows itself;
one that falls more than ``max_pending`` frames behind is dropped (recorded as a
``slow_consumer`` fault). The pump's lag behind the sim clock is reported as ``lag_max_s``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Hashable, Iterator
from typing import Protocol

from websockets.exceptions import ConnectionClosed

from tickguard.sim.clock import SimClock
from tickguard.sim.faults import FaultSchedule, Grow, Withhold
from tickguard.sim.market import GenEvent, GenTrade, seconds_of
from tickguard.sim.sessions import Conn, Queued, SessionTable, SimCounters
from tickguard.sim.truth import TruthWriter

MAX_EVENTS_PER_ROUND = 5_000
"""Events per pump round before frames are flushed and the loop serves control traffic."""
BURST_BYTES = 256 * 1024
"""Frame text a writer hands the socket in one write; then it drains before the next."""
Sent = tuple[Hashable, list[Queued], str]
"""A frame of a burst: (group, records, kind); no records = an injected malformed frame,
its kind then the variant."""


class Wire(Protocol):
    """A broker's data encoding: all a simulator's feed needs to know about the broker."""

    trade_channel: str
    book_channel: str
    rng_salt: int
    """Mixed into the fault seed, so each broker's malformed frames are its own sequence."""

    def encode(self, ev: GenEvent) -> str:
        """One record (KIS) or entry (Kiwoom) of ``ev``."""

    def group(self, channel: str, symbol: str) -> Hashable:
        """Records of one group may share a frame."""

    def frame(self, group: Hashable, records: list[str]) -> str: ...

    def label(self, group: Hashable) -> str:
        """The truth's name for a frame of ``group`` (KIS: its tr_id; Kiwoom: REAL)."""

    def grow(self, record: str) -> str:
        """``record`` with one more field."""

    def corrupt(self, rng: random.Random, frame: str) -> str:
        """``frame`` mangled in place so no decoder can read its records."""

    def malformed(self, rng: random.Random, channel: str, record: str) -> tuple[str, str]:
        """A broken frame carrying no record of its own, and its variant name."""


class Feed:
    def __init__(self, *, wire: Wire, sessions: SessionTable, truth: TruthWriter,
                 clock: SimClock, counters: SimCounters, faults: FaultSchedule,
                 max_records: int, interval_s: float, max_pending: int) -> None:  # fmt: skip
        self._wire, self._sessions, self._truth, self._clock = wire, sessions, truth, clock
        self._counters, self._faults = counters, faults
        self._max_records, self._interval, self._max_pending = max_records, interval_s, max_pending
        self._rng = random.Random(faults.seed ^ wire.rng_salt)
        self._grown: dict[Grow, int] = {}
        self._grow_started: dict[Grow, float] = {}
        self._withheld: dict[str, list[tuple[float, float, Withhold]]] = {}
        for w in faults.withholds():
            for symbol in w.symbols:
                span = (seconds_of(w.start), seconds_of(w.end), w)
                self._withheld.setdefault(symbol, []).append(span)
        self._withheld_n: dict[Withhold, int] = {}

    async def pump(self, events: Iterator[GenEvent]) -> None:
        """Send the tape on the sim clock until the day ends."""
        nxt = next(events, None)
        while nxt is not None:
            now_t, n = self._clock.session_t(), 0
            while nxt is not None and nxt.t <= now_t and n < MAX_EVENTS_PER_ROUND:
                self._dispatch(nxt)
                n, nxt = n + 1, next(events, None)
            self._flush()
            if nxt is None:
                break
            delay = self._clock.wall_delay(nxt.t)
            if delay < 0:
                self._counters.lag_max_s = max(self._counters.lag_max_s, -delay)
            await asyncio.sleep(0 if delay <= 0 else max(min(delay, 1.0), self._interval))

    def _dispatch(self, ev: GenEvent) -> None:
        trade = isinstance(ev, GenTrade)
        channel = self._wire.trade_channel if trade else self._wire.book_channel
        live = self._sessions.live((channel, ev.symbol))
        if isinstance(ev, GenTrade):
            key = ev.cum_volume
            side = ev.side.value if ev.side is not None else None
            self._truth.trade(ev.symbol, key, ev.price, ev.qty, side, ev.t, len(live))
            self._counters.trades_generated += 1
            self._counters.trades_missed_while_disconnected += not live
            if ev.symbol in self._withheld and self._withhold(ev):
                return
        else:
            key = ev.seq
            self._truth.book(ev.symbol, key, ev.t, len(live))
            self._counters.books_generated += 1
        if not live:
            return
        queued = (channel, ev.symbol, self._wire.encode(ev), key)
        group = self._wire.group(channel, ev.symbol)
        for conn in live:
            if not conn.silenced:
                conn.outbox.setdefault(group, []).append(queued)

    def _withhold(self, ev: GenTrade) -> bool:
        for start, end, spec in self._withheld[ev.symbol]:
            if start <= ev.t < end:
                self._withheld_n[spec] = self._withheld_n.get(spec, 0) + 1
                return True
        return False

    def _flush(self) -> None:
        """Move queued records into each connection's frame queue (never blocks the pump)."""
        step = self._max_records
        for conn in list(self._sessions.conns.values()):
            if not conn.outbox:
                continue
            box, conn.outbox = conn.outbox, {}
            for group, items in box.items():
                for i in range(0, len(items), step):
                    conn.frames.append((group, items[i : i + step]))
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
        """Send one connection's frames; only this connection waits when its peer is slow.

        Each burst (the frames queued by now, up to ``BURST_BYTES``) goes out in one socket
        write; its frames are recorded in the truth once the transport has them, in order.
        The writer awaits the transport's drain after every burst, so a slow peer leaves
        frames in ``conn.frames``, where the pump's ``max_pending`` check drops it.
        """
        while True:
            await conn.ready.wait()
            conn.ready.clear()
            while conn.frames:
                if conn.dying:
                    conn.frames.clear()
                    return
                texts: list[str] = []
                sent: list[Sent] = []
                self._burst(conn, texts, sent)
                if not texts:
                    continue
                try:
                    await conn.ws.send_texts(texts)
                except ConnectionClosed:
                    return
                self._record_burst(conn, sent)

    def _burst(self, conn: Conn, texts: list[str], sent: list[Sent]) -> None:
        """Frame queued records into ``texts`` (and what each is, into ``sent``) until the
        queue is empty or the burst holds ``BURST_BYTES``."""
        frames, subs, size = conn.frames, conn.subs, 0
        malformed = self._faults.malformed()
        while frames and size < BURST_BYTES:
            group, items = frames.popleft()
            # nothing of a registration after its removal's ack
            held = [q for q in items if (q[0], q[1]) in subs]
            if not held:
                continue
            records, kind = self._records(held)
            frame = self._wire.frame(group, records)
            if malformed is not None and self._rng.random() < malformed.rate:
                if malformed.mode == "corrupt":
                    frame, kind = self._wire.corrupt(self._rng, frame), "malformed"
                else:
                    bad, variant = self._wire.malformed(self._rng, held[0][0], held[0][2])
                    texts.append(bad)
                    sent.append((group, [], variant))
            texts.append(frame)
            sent.append((group, held, kind))
            size += len(frame)

    def _record_burst(self, conn: Conn, sent: list[Sent]) -> None:
        sim_t = self._clock.session_t()
        for group, items, kind in sent:
            if items:
                self._record(conn, sim_t, group, items, kind)
            else:
                self._record_injected(conn, sim_t, group, kind)

    def _grow_now(self, channel: str) -> bool:
        for g in self._faults.grows():
            done = self._grown.get(g, 0)
            if g.tr_id != channel or self._clock.elapsed() < g.after_s:
                continue
            if g.frames is not None and done >= g.frames:
                continue
            self._grown[g] = done + 1
            self._grow_started.setdefault(g, time.time())
            return True
        return False

    def _records(self, items: list[Queued]) -> tuple[list[str], str]:
        """The frame's records and its kind: "grown" when a grow fault applies to it."""
        records = [q[2] for q in items]
        if not self._faults.grows():
            return records, "data"
        growing = {ch for ch in dict.fromkeys(q[0] for q in items) if self._grow_now(ch)}
        if not growing:
            return records, "data"
        grow = self._wire.grow
        return [
            grow(r) if q[0] in growing else r for q, r in zip(items, records, strict=True)
        ], "grown"

    def _record(self, conn: Conn, sim_t: float, group: Hashable, items: list[Queued],
                kind: str) -> None:  # fmt: skip
        trade_channel = self._wire.trade_channel
        trades = [(s, k) for ch, s, _, k in items if ch == trade_channel]
        books = [(s, k) for ch, s, _, k in items if ch != trade_channel]
        label = self._wire.label(group)
        self._truth.frame(conn.id, sim_t, label, kind, trades, books)
        c = self._counters
        c.frames_sent += 1
        c.grown_frames += kind == "grown"
        if kind == "malformed":
            c.malformed_sent += 1
            self._truth.fault("malformed", conn.id, time.time(), time.time(), variant="corrupt")
        else:
            c.trade_records_sent += len(trades)
            c.book_records_sent += len(books)

    def _record_injected(self, conn: Conn, sim_t: float, group: Hashable, variant: str) -> None:
        """A broken frame carrying no record of its own (sent before a data frame)."""
        now = time.time()
        self._truth.frame(conn.id, sim_t, self._wire.label(group), "malformed", [], [])
        self._truth.fault("malformed", conn.id, now, now, variant=variant)
        self._counters.frames_sent += 1
        self._counters.malformed_sent += 1

    def close(self) -> None:
        """Record grow faults (one row per spec: first grown frame → now) and withheld
        trades (one row per spec: its span on the sim clock, symbols, trades withheld)."""
        for g, n in self._grown.items():
            self._truth.fault("grow", None, self._grow_started[g], time.time(),
                              tr_id=g.tr_id, frames=n)  # fmt: skip
        for w in self._faults.withholds():
            s, e = seconds_of(w.start), seconds_of(w.end)
            self._truth.fault("withhold", None, self._clock.epoch_at(s), self._clock.epoch_at(e),
                              symbols=list(w.symbols), sim_start=s, sim_end=e,
                              trades=self._withheld_n.get(w, 0))  # fmt: skip
