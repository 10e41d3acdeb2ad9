"""The data side of the Kiwoom simulator: market events → REAL ``0B``/``0D`` messages.

The pump walks the shared market tape on the sim clock. Every due event is written to the
ground truth and, when logged-in sessions hold a registration for its (type, item), encoded
once as a JSON entry and queued on each of them. A flush then sends every queue as REAL
messages of at most ``max_entries`` entries — several items and types in one message, as
Kiwoom's ``data`` list allows (§2.6) — so bursts and sweeps travel together.

Data faults of the shared menu are applied here: ``silent`` (no data, PINGs go on),
``malformed`` (a broken message before a data message, or a data message mangled in place:
its entries are lost) and ``grow:0B|0D`` (entries carry an extra FID the codec must pass
over — Kiwoom adding a field).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator

from websockets.exceptions import ConnectionClosed

from tickguard.sim.clock import SimClock
from tickguard.sim.faults import FaultSchedule, Grow
from tickguard.sim.kis_session import Conn, SessionTable, SimCounters
from tickguard.sim.kiwoom_frames import book_entry, dumps, trade_entry
from tickguard.sim.market import GenEvent, GenTrade
from tickguard.sim.truth import TruthWriter

MAX_EVENTS_PER_ROUND = 20_000
TYPE_TRADE, TYPE_BOOK = "0B", "0D"
GROWN_FID = "9999"
Queued = tuple[str, str, str, int]
"""(type, item, entry JSON, truth key) waiting in a connection's outbox."""


def _frame(entries: list[str]) -> str:
    return '{"trnm":"REAL","data":[' + ",".join(entries) + "]}"


def _malformed(rng: random.Random, entry: str) -> tuple[str, str]:
    """A broken message and its variant name; it carries no trade of its own."""
    variant = rng.choice(("truncated", "not_json", "bad_values"))
    if variant == "truncated":
        return _frame([entry])[: rng.randrange(5, 40)], variant
    if variant == "not_json":
        return "REAL 0B " + entry[:30], variant
    broken = json.loads(entry)
    broken["values"] = {"20": "9X9X9X", "10": "abc"}
    return _frame([dumps(broken)]), variant


class KiwoomFeed:
    def __init__(self, *, sessions: SessionTable, truth: TruthWriter, clock: SimClock,
                 counters: SimCounters, faults: FaultSchedule, max_entries: int,
                 interval_s: float) -> None:  # fmt: skip
        self._sessions, self._truth, self._clock = sessions, truth, clock
        self._counters, self._faults = counters, faults
        self._max_entries, self._interval = max_entries, interval_s
        self._rng = random.Random(faults.seed ^ 0x4B57)
        self._outbox: dict[int, list[Queued]] = {}
        self._grown: dict[Grow, int] = {}
        self.silenced = False

    async def pump(self, events: Iterator[GenEvent]) -> None:
        """Send the tape on the sim clock until the day ends."""
        nxt = next(events, None)
        while nxt is not None:
            now_t, n = self._clock.session_t(), 0
            while nxt is not None and nxt.t <= now_t and n < MAX_EVENTS_PER_ROUND:
                self._dispatch(nxt)
                n, nxt = n + 1, next(events, None)
            await self._flush()
            if nxt is None:
                break
            delay = self._clock.wall_delay(nxt.t)
            if delay < 0:
                self._counters.lag_max_s = max(self._counters.lag_max_s, -delay)
            await asyncio.sleep(0 if delay <= 0 else max(min(delay, 1.0), self._interval))

    def _dispatch(self, ev: GenEvent) -> None:
        rtype = TYPE_TRADE if isinstance(ev, GenTrade) else TYPE_BOOK
        live = self._sessions.live((rtype, ev.symbol))
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
        if not live or self.silenced:
            return
        entry = trade_entry(ev) if isinstance(ev, GenTrade) else book_entry(ev)
        if self._grow_now(rtype):
            entry["values"][GROWN_FID] = "1"
        text = dumps(entry)
        for conn in live:
            self._outbox.setdefault(conn.id, []).append((rtype, ev.symbol, text, key))

    def _grow_now(self, rtype: str) -> bool:
        for spec in self._faults.grows():
            done = self._grown.get(spec, 0)
            if spec.tr_id != rtype or self._clock.elapsed() < spec.after_s:
                continue
            if spec.frames is not None and done >= spec.frames:
                continue
            self._grown[spec] = done + 1
            return True
        return False

    async def _flush(self) -> None:
        boxes, self._outbox = self._outbox, {}
        for conn_id, queued in boxes.items():
            conn = self._sessions.conns.get(conn_id)
            for start in range(0, len(queued), self._max_entries):
                if conn is None or conn.dying:
                    break
                # A REMOVE acked while this flush waited on the socket: its data stops here.
                part = [q for q in queued[start : start + self._max_entries] if q[:2] in conn.subs]
                if part:
                    await self._send(conn, part)

    async def _send(self, conn: Conn, part: list[Queued]) -> None:
        frame, kind = _frame([q[2] for q in part]), "data"
        spec = self._faults.malformed()
        if spec is not None and self._rng.random() < spec.rate:
            if spec.mode == "corrupt":
                cut = self._rng.randrange(10, max(11, len(frame) - 1))
                frame, kind = frame[:cut] + "\x00" + frame[cut + 1 :], "malformed"
            elif not await self._inject_malformed(conn, part[0][2]):
                return
        try:
            await conn.ws.send(frame)
        except ConnectionClosed:
            return
        self._record(conn, part, kind)

    def _record(self, conn: Conn, part: list[Queued], kind: str) -> None:
        trades = [(item, key) for rtype, item, _, key in part if rtype == TYPE_TRADE]
        books = [(item, key) for rtype, item, _, key in part if rtype == TYPE_BOOK]
        self._truth.frame(conn.id, self._clock.session_t(), "REAL", kind, trades, books)
        c = self._counters
        c.frames_sent += 1
        c.grown_frames += any(GROWN_FID in q[2] for q in part)
        if kind == "malformed":
            c.malformed_sent += 1
            self._truth.fault("malformed", conn.id, time.time(), time.time(), variant="corrupt")
        else:
            c.trade_records_sent += len(trades)
            c.book_records_sent += len(books)

    async def _inject_malformed(self, conn: Conn, entry: str) -> bool:
        bad, variant = _malformed(self._rng, entry)
        try:
            await conn.ws.send(bad)
        except ConnectionClosed:
            return False
        now = time.time()
        self._truth.frame(conn.id, self._clock.session_t(), "REAL", "malformed", [], [])
        self._truth.fault("malformed", conn.id, now, now, variant=variant)
        self._counters.frames_sent += 1
        self._counters.malformed_sent += 1
        return True

    def close(self) -> None:
        """Record grow faults (one row per spec, with how many entries grew)."""
        for spec, n in self._grown.items():
            self._truth.fault("grow", None, time.time(), time.time(), tr_id=spec.tr_id, entries=n)
