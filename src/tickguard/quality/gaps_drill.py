"""``tickguard drill --scenario gaps``: the detection side, drilled on a scripted session.

A scratch database receives, minute by minute, what the collector and persist would have
stored on a recent trading day: trades with continuous cumulative volume and books for
liquid symbols, one quiet symbol (a trade every 10 minutes), one symbol halted for 20
minutes (the halt reported as the feed reports it, in ``halts``); and the faults — a drop
(collector disconnect gaps, 2 min, data lost), a silent socket (the watchdog's stale gaps,
3 min), ticks lost inside a live connection (a cumulative-volume jump) — then a holiday.
:func:`~tickguard.quality.drill_gaps.replay` runs the scheduled flow's function on each
minute with Slack pointed at a local sink, and :func:`~tickguard.quality.drill_gaps.score`
judges it.

Seam: the rows are scripted, not produced by the simulator and collector (the flap/silent
drills cover that path, including the gap rows they write); this drill judges what the
completeness check makes of them.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from pydantic import SecretStr

from tickguard.alerting.slack import SlackPoster
from tickguard.calendar import TradingCalendar
from tickguard.models import KST, Batch, BookSnapshot, Broker, Side, Trade
from tickguard.quality.drill_gaps import Injected, replay, score
from tickguard.quality.window import CheckWindow
from tickguard.settings import Settings, SlackSettings
from tickguard.store.migrate import libpq_url
from tickguard.store.writer import PostgresWriter

HOLIDAY = date(2026, 6, 3)  # local election day: KRX closed
_OPEN = "INSERT INTO gaps (broker, symbol, kind, start, cause) VALUES (%s, %s, %s, %s, %s)"
_END = 'UPDATE gaps SET "end" = %s WHERE broker = %s AND symbol = %s AND kind = %s AND start = %s'
_HALT = 'INSERT INTO halts (broker, symbol, start, "end", reason) VALUES (%s, %s, %s, %s, %s)'


class SlackSink:
    """A local webhook endpoint that counts what Slack would have received."""

    def __init__(self) -> None:
        posts: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                posts.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.posts = posts
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/services/drill"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Script:
    """The scripted session: rows and gap reports, released as market time passes."""

    def __init__(self, database_url: str, day: date, symbols: list[str], minutes: int) -> None:
        self.url, self.day = database_url, day
        self.start = self.at(10, 0)
        self.end = self.start + timedelta(minutes=minutes)
        self.liquid, self.quiet, self.halted = symbols[:-2], symbols[-2], symbols[-1]
        self.flap = (self.at(10, 10), self.at(10, 12, 5))
        self.silent = (self.at(10, 49, 50), self.at(10, 53, 5))
        self.halt = (self.at(10, 20), self.at(10, 40))
        self.lost_at = self.at(10, 30, 10)
        self.trades, self.books = self._rows()
        self.events = self._events(symbols)

    def at(self, hour: int, minute: int, second: int = 0) -> datetime:
        return datetime.combine(self.day, time(hour, minute, second), KST)

    def _outage(self, ts: datetime) -> bool:
        return self.flap[0] <= ts < self.at(10, 12) or self.at(10, 50) <= ts < self.at(10, 53)

    def _rows(self) -> tuple[list[Trade], list[BookSnapshot]]:
        trades, books = [], []
        for symbol in [*self.liquid, self.halted, self.quiet]:
            cum, step = 0, 10 if symbol == self.quiet else 1
            ts = self.at(9, 0, 10)
            while ts < self.end:
                halted = symbol == self.halted and self.halt[0] <= ts < self.halt[1]
                if not halted:
                    cum += 10 + (25 if ts == self.lost_at and symbol == self.liquid[0] else 0)
                    trade = Trade(Broker.KIS, symbol, self.day, ts, 70_000, 10, Side.BUY, cum, ts)
                    trades.append(trade)
                    if step == 1:
                        books.append(_book(symbol, ts))
                ts += timedelta(minutes=step)
        keep = [t for t in trades if not self._outage(t.ts)]
        return keep, [b for b in books if not self._outage(b.ts)]

    def _events(self, symbols: list[str]) -> list[tuple[datetime, str, tuple[Any, ...]]]:
        events: list[tuple[datetime, str, tuple[Any, ...]]] = []
        for (start, end), cause in (
            (self.flap, "disconnect: no close frame"),
            (self.silent, "stale: no data for 5 s"),
        ):
            for symbol in symbols:
                for kind in ("trades", "book"):
                    events.append(
                        (start + timedelta(seconds=5), _OPEN, ("kis", symbol, kind, start, cause))
                    )
                    events.append((end, _END, (end, "kis", symbol, kind, start)))
        events.append((self.halt[0], _HALT, ("kis", self.halted, *self.halt, "VI")))
        return events

    def __call__(self, until: datetime) -> None:
        """Store everything that had arrived by ``until``."""
        due_t = [t for t in self.trades if t.ts < until]
        due_b = [b for b in self.books if b.ts < until]
        self.trades = [t for t in self.trades if t.ts >= until]
        self.books = [b for b in self.books if b.ts >= until]
        writer = PostgresWriter.connect(self.url)
        try:
            writer.write(Batch(trades=due_t, books=due_b))
        finally:
            writer.close()
        due = [e for e in self.events if e[0] < until]
        self.events = [e for e in self.events if e[0] >= until]
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            for _, statement, args in due:
                conn.execute(statement, args)

    def injected(self, holiday: CheckWindow) -> list[Injected]:
        return [
            Injected("flap", (*self.liquid, self.quiet, self.halted), *self.flap, alarm=True),
            Injected("silent", (*self.liquid, self.quiet, self.halted), *self.silent, alarm=True),
            Injected(
                "ticks lost",
                (self.liquid[0],),
                self.lost_at - timedelta(minutes=1),
                self.lost_at,
                alarm=True,
            ),
            Injected("halt", (self.halted,), *self.halt, alarm=False),
            Injected("quiet", (self.quiet,), self.start, self.end, alarm=False),
            Injected(
                "holiday",
                (*self.liquid, self.quiet, self.halted),
                holiday.start,
                holiday.end,
                alarm=False,
            ),
        ]


def _book(symbol: str, ts: datetime) -> BookSnapshot:
    asks = tuple((70_100 + 100 * i, 5) for i in range(10))
    bids = tuple((70_000 - 100 * i, 5) for i in range(10))
    return BookSnapshot(Broker.KIS, symbol, ts.astimezone(KST).date(), ts, asks, bids, 50, 50, ts)


def run_scripted(
    settings: Settings, database_url: str, symbols: list[str], minutes: int
) -> dict[str, Any]:
    """Script a session into ``database_url`` (migrated, empty), replay, score."""
    calendar = TradingCalendar()
    day = calendar.previous_trading_day(datetime.now(KST).date())
    script = Script(database_url, day, symbols, max(minutes, 60))
    script(script.start)
    sink = SlackSink()
    try:
        poster = SlackPoster(SlackSettings(webhook_url=SecretStr(sink.url)))
        window = CheckWindow(script.start, script.end)
        raised = replay(
            settings,
            database_url,
            "kis",
            symbols,
            window,
            feed=script,
            poster=poster,
            calendar=calendar,
        )
        holiday = CheckWindow(
            datetime.combine(HOLIDAY, time(10), KST), datetime.combine(HOLIDAY, time(10, 30), KST)
        )
        raised += replay(
            settings,
            database_url,
            "kis",
            symbols,
            holiday,
            feed=lambda _: None,
            poster=poster,
            calendar=calendar,
        )
        report = score(script.injected(holiday), raised, len(sink.posts))
    finally:
        sink.close()
    return {"trading_day": day.isoformat(), "incidents": len(raised), **report}


async def run_gaps_drill(
    settings: Settings, opts: Any, *, admin_url: str, redis_url: str
) -> dict[str, Any]:
    """The drill CLI's entry: a scratch database, the scripted session, the score."""
    from tickguard.drill.scratch import scratch
    from tickguard.sim.universe import default_symbols

    symbols = list(default_symbols(max(4, opts.symbols)))
    with scratch(admin_url, redis_url) as res:
        report = await asyncio.to_thread(
            run_scripted, settings, res.database_url, symbols, int(opts.minutes)
        )
    return {"scenario": opts.scenario.name, "broker": "kis", "symbols": len(symbols), **report}
