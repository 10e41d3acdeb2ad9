"""``tickguard drill --scenario gaps``: the completeness check, drilled live.

The broker's simulator plays one trading day (taken once, at the start: the previous
trading day, or ``opts.trading_day``) from 08:59:30 session time; the real collector
subscribes every symbol, Redis and persist store what it receives, and the scheduled flow's
function (:func:`~tickguard.quality.drill_gaps.replay`) checks every minute ON THE
SIMULATOR'S CLOCK: once the sim minute has closed and persist has caught up with it. Slack
points at a local sink. Injected (sim time from the open, ``M`` = 25 minutes at least):

- a drop (``flap:…x1``: the first connection aborted without a close frame at +3 min);
- a silent socket (``silent``: data stops with the socket open at +10 min, until the
  watchdog reconnects);
- ticks withheld inside the live connection (``withhold``: the first symbol's trades
  +17:00–17:40 generated but never sent; its books and every other symbol keep flowing);
- a halted symbol (``halt``: the last symbol +15 → +22 min, flagged on the wire as the
  broker flags it, recorded in ``halts`` by the collector and persist);
- a quiet symbol (the second to last trades about once every 4 minutes all session);
- then a holiday (the check on a closed day).

The first three must alarm (within 2 minutes of market time, one Slack message each plus
its resolution); the others must stay silent. :func:`~tickguard.quality.drill_gaps.score`
judges; :func:`~tickguard.drill.compare.judge` adds the usual truth-vs-store keys.

Then, the simulator still up, the post-close backfill as every drill runs it
(:func:`~tickguard.drill.runner.backfill_then_judge`, up to the minute the collector stopped)
and the store judged once more: the drop and the withheld ticks (generated, never sent: the
minute reconciliation finds them) must end refilled, ``trades_missing_final`` 0.

The collector stamps its disconnect gaps with the wall clock (in production that is the
exchange's). Here the exchange runs on the sim clock, so before each minute's check the
drill maps the collector's gaps onto it (``detail.wall_start``/``wall_end`` keep the
originals) — the drills' ``to_exchange`` seam. The truth-vs-store judge's gap keys are left
out of the report for that reason (they read gaps by the day's date); the score judges
detection. By the backfill the whole ledger is on the exchange's clock, so it reads the
ledger as production does (the day's gaps, no mapping) and labels every gap the collector
and the checks opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from datetime import time as dtime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from tickguard.alerting.slack import SlackPoster
from tickguard.calendar import TradingCalendar
from tickguard.collector import DEFAULT_CHANNELS, run_collector
from tickguard.drill.compare import judge
from tickguard.drill.rigs import RIGS, Rig, broker_settings, sim_config
from tickguard.drill.runner import PersistThread, RssSampler, backfill_then_judge, session_ts
from tickguard.drill.scratch import Scratch, scratch
from tickguard.models import KST, Broker
from tickguard.quality.drill_gaps import Injected, Raised, replay, score
from tickguard.quality.ledger import COMPLETENESS, CONTINUITY
from tickguard.quality.window import CheckWindow
from tickguard.settings import Settings, SinkSettings, SlackSettings, StreamSettings
from tickguard.sim.events import exchange_ts
from tickguard.sim.truth import TruthReader
from tickguard.sim.universe import default_symbols
from tickguard.sinks import stream_admin
from tickguard.sinks.redis_stream import RedisStreamSink, redis_client, stream_key
from tickguard.store.migrate import libpq_url
from tickguard.stream.supervisor import Supervisor

HOLIDAY = date(2026, 6, 3)  # local election day: KRX closed
SIM_START = dtime(8, 59, 30)
OPEN = 9 * 3600
MIN_MINUTES = 25
DROP_AT_MIN, SILENT_AT_MIN = 3.0, 10.0
WITHHOLD = (17 * 60, 17 * 60 + 40)
HALT_MIN = (15, 22)
QUIET_ORDERS_PER_MIN = 0.25
CATCH_UP_S = 30.0
MAX_SPEED = 30.0
"""Faster, a loaded box's wall-time lags (a reconnect, the watchdog) become minutes of
market time and the 2-minute bound measures the box; the report says the speed used."""

_COLLECTOR_GAPS = """
SELECT id, broker, symbol, kind, start, "end" FROM gaps
WHERE start >= %s AND NOT (detail ? 'wall_start') AND cause NOT LIKE %s AND cause NOT LIKE %s
ORDER BY id
"""
"""The collector's gaps not mapped yet. The checks' own gaps are on the sim clock already: on
a drill of today's or a later trading day their stamps lie after ``since`` too, and mapping
them again threw the withheld ticks' continuity gap days ahead, out of the backfill's day."""
_MAPPED = """
SELECT id FROM gaps WHERE broker = %s AND symbol = %s AND kind = %s AND start = %s AND id <> %s
"""
_MAP_GAP = 'UPDATE gaps SET start = %s, "end" = %s, detail = detail || %s WHERE id = %s'
_CLOSE_MAPPED = """
UPDATE gaps SET "end" = COALESCE("end", %s), detail = detail || %s WHERE id = %s
"""


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


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """Who plays which part, and the faults in the simulator's grammar."""

    day: date
    symbols: list[str]
    minutes: int
    speed: float
    stale_after_s: float

    @property
    def withheld(self) -> str:
        return self.symbols[0]

    @property
    def quiet(self) -> str:
        return self.symbols[-2]

    @property
    def halted(self) -> str:
        return self.symbols[-1]

    def at(self, seconds_from_open: float) -> datetime:
        return exchange_ts(self.day, OPEN + seconds_from_open)

    def wall_after_start(self, minutes_from_open: float) -> float:
        """Wall seconds from the sim's start (≈ the collector's connection) to that moment."""
        return round((OPEN + minutes_from_open * 60 - _seconds(SIM_START)) / self.speed, 3)

    def faults(self) -> tuple[str, ...]:
        silence = round(self.stale_after_s * 3, 3)

        def hms(seconds: float) -> str:
            return self.at(seconds).strftime("%H:%M:%S")

        return (
            f"flap:{self.wall_after_start(DROP_AT_MIN)}x1",
            f"silent:{silence}@{self.wall_after_start(SILENT_AT_MIN)}",
            f"withhold:{self.withheld}@{hms(WITHHOLD[0])}-{hms(WITHHOLD[1])}",
            f"halt:{self.halted}@{hms(HALT_MIN[0] * 60)[:5]}-{hms(HALT_MIN[1] * 60)[:5]}",
        )

    def window(self) -> CheckWindow:
        return CheckWindow(self.at(60), self.at(self.minutes * 60))


def _seconds(value: dtime) -> float:
    return value.hour * 3600 + value.minute * 60 + value.second


def _plan(opts: Any, calendar: TradingCalendar, base: Settings) -> Plan:
    day = getattr(opts, "trading_day", None)
    if day is None:  # taken once; never again now(KST) in this drill
        day = calendar.previous_trading_day(datetime.now(KST).date())
    speed = min(float(opts.speed), MAX_SPEED)
    stale = min(base.stream.stale_after_s, max(0.5, 30.0 / speed))
    symbols = list(default_symbols(max(5, int(opts.symbols))))
    return Plan(day, symbols, max(MIN_MINUTES, int(opts.minutes)), speed, stale)


def _config(rig: Rig, plan: Plan, opts: Any, truth_dir: Path) -> Any:
    config = sim_config(
        rig, day=plan.day, symbols=len(plan.symbols), seed=int(opts.seed), speed=plan.speed,
        faults=plan.faults(), truth_dir=truth_dir, overrides={}, slot_hold_s=None,
    )  # fmt: skip
    profiles = tuple(
        dataclasses.replace(p, orders_per_min=QUIET_ORDERS_PER_MIN) if p.symbol == plan.quiet
        else p
        for p in config.market.symbols
    )  # fmt: skip
    market = dataclasses.replace(config.market, symbols=profiles)
    return dataclasses.replace(config, market=market, start_at=SIM_START)


def _settings(
    base: Settings, rig: Rig, sim: Any, res: Scratch, redis_url: str, plan: Plan, data: Path
) -> Settings:
    stream = StreamSettings(**{**base.stream.model_dump(), "stale_after_s": plan.stale_after_s})
    sink = SinkSettings(**{**base.sink.model_dump(), "stream_prefix": res.stream_prefix})
    update: dict[str, Any] = {
        **broker_settings(rig, base, sim, len(plan.symbols), len(DEFAULT_CHANNELS)),
        "stream": stream, "sink": sink, "data_dir": data,
        "database_url": SecretStr(res.database_url), "redis_url": SecretStr(redis_url),
    }  # fmt: skip
    return base.model_copy(update=update)


class MinuteGate:
    """``replay``'s feed: wait until the sim minute closed and persist caught up with it,
    then put the collector's closed gaps on the sim clock."""

    def __init__(
        self, sim: Any, settings: Settings, redis_url: str, database_url: str, since: float
    ) -> None:
        self.sim, self.settings, self.database_url = sim, settings, database_url
        self.redis_url = redis_url
        self.since = datetime.fromtimestamp(since, UTC)
        self.settle_s = settings.stream.batch_max_delay_s + 0.3
        self.late = 0

    def __call__(self, until: datetime) -> None:
        t_end = (until - exchange_ts(self.sim.market.config.day, 0)).total_seconds()
        delay = self.sim.clock.wall_delay(t_end)
        time.sleep(max(0.0, delay) + self.settle_s)
        if not self._caught_up():
            self.late += 1
        self._map_gaps()

    def _caught_up(self) -> bool:
        client = redis.Redis.from_url(self.redis_url)
        stream = stream_key(self.settings.sink.stream_prefix)
        group = self.settings.sink.consumer_group
        deadline = time.monotonic() + CATCH_UP_S
        try:
            while time.monotonic() < deadline:
                states = [g for g in stream_admin.groups(client, stream) if g.name == group]
                if states and states[0].pending == 0 and states[0].lag == 0:
                    return True
                time.sleep(0.05)
            return False
        finally:
            client.close()

    def _map_gaps(self) -> None:
        """Collector gaps (wall stamps) onto the sim clock, open ones too (a continuity
        break inside a disconnect must find it). The collector re-reports a gap when it
        closes, keyed by its wall start: that report ends the mapped row and goes."""
        with psycopg.connect(libpq_url(self.database_url), autocommit=True) as conn:
            checks_own = (f"{COMPLETENESS}:%", f"{CONTINUITY}:%")
            rows = conn.execute(_COLLECTOR_GAPS, (self.since, *checks_own)).fetchall()
            for gap_id, broker, symbol, kind, start, end in rows:
                sim_start = session_ts(self.sim, start)
                sim_end = session_ts(self.sim, end) if end is not None else None
                wall = Jsonb({"wall_start": start.isoformat(),
                              "wall_end": end.isoformat() if end else None})  # fmt: skip
                mapped = conn.execute(_MAPPED, (broker, symbol, kind, sim_start, gap_id)).fetchone()
                if mapped is None:
                    conn.execute(_MAP_GAP, (sim_start, sim_end, wall, gap_id))
                else:
                    conn.execute(_CLOSE_MAPPED, (sim_end, wall, mapped[0]))
                    conn.execute("DELETE FROM gaps WHERE id = %s", (gap_id,))


def _left_open(database_url: str) -> list[dict[str, Any]]:
    """Trade gaps the backfill left open (it labels every gap of the day it reads)."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(
            'SELECT symbol, start, "end", cause FROM gaps '
            "WHERE kind = 'trades' AND status = 'open' ORDER BY start"
        ).fetchall()
    return [
        {"symbol": s, "start": a.isoformat(), "end": b.isoformat() if b else None, "cause": c}
        for s, a, b, c in rows
    ]


def _halts(database_url: str) -> list[tuple[str, datetime, datetime | None]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute('SELECT symbol, start, "end" FROM halts ORDER BY start').fetchall()
    return [(str(s), start, end) for s, start, end in rows]


def injected(plan: Plan, truth: TruthReader, sim: Any, holiday: CheckWindow) -> list[Injected]:
    """What the drill injected, on market time (connection faults from the ground truth)."""
    everyone = tuple(plan.symbols)
    out: list[Injected] = []
    for fault in truth.faults():
        kind = fault["kind"]
        if kind in ("flap", "silent"):
            start = session_ts(sim, datetime.fromtimestamp(float(fault["start"]), UTC))
            end = session_ts(sim, datetime.fromtimestamp(float(fault["end"]), UTC))
            out.append(Injected(kind, everyone, start, end, alarm=True))
    out.append(
        Injected("withhold", (plan.withheld,), plan.at(WITHHOLD[0]), plan.at(WITHHOLD[1]), True)
    )
    halt = (plan.at(HALT_MIN[0] * 60), plan.at(HALT_MIN[1] * 60))
    out.append(Injected("halt", (plan.halted,), *halt, alarm=False))
    window = plan.window()
    out.append(Injected("quiet", (plan.quiet,), window.start, window.end, alarm=False))
    out.append(Injected("holiday", everyone, holiday.start, holiday.end, alarm=False))
    return out


async def _collect_and_check(
    settings: Settings,
    broker: Broker,
    plan: Plan,
    gate: MinuteGate,
    check: Callable[[], list[Raised]],
) -> tuple[Any, RssSampler, list[Raised], float]:
    """Run the collector until the last minute's check is done; (report, rss, raised, stop)."""
    rss = RssSampler()
    rss.sample()
    sampler: list[asyncio.Task[None]] = []

    def started(supervisors: list[Supervisor]) -> None:
        sampler.append(asyncio.create_task(rss.run(supervisors)))

    url = settings.redis_url.get_secret_value() if settings.redis_url else ""
    lock = redis_client(url, 2.0)
    stop = asyncio.Event()
    try:
        async with RedisStreamSink.from_settings(settings, url, name="gaps-drill") as sink:
            collector = asyncio.create_task(
                run_collector(
                    settings,
                    broker,
                    plan.symbols,
                    sink=sink,
                    stop_event=stop,
                    channels=DEFAULT_CHANNELS,
                    lock_redis=lock,
                    trading_day=plan.day,
                    on_started=started,
                )
            )
            try:
                raised = await asyncio.to_thread(check)
            finally:
                stopped_at = time.time()
                stop.set()
                report = await collector
            await sink.drain(30.0)
    finally:
        rss.sample()
        for task in sampler:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await lock.aclose()
    return report, rss, raised, stopped_at


async def run_gaps_drill(
    settings: Settings, opts: Any, *, admin_url: str, redis_url: str
) -> dict[str, Any]:
    """The drill CLI's entry: simulator + collector + Redis + persist, checked minute by
    minute on the sim clock, then a holiday; the score and the truth-vs-store keys."""
    broker = Broker(getattr(opts.broker, "value", opts.broker))
    rig = RIGS[broker]
    calendar = TradingCalendar()
    plan = _plan(opts, calendar, settings)
    started = time.monotonic()
    sink = SlackSink()
    poster = SlackPoster(SlackSettings(webhook_url=SecretStr(sink.url)))
    holiday = CheckWindow(
        datetime.combine(HOLIDAY, dtime(10), KST), datetime.combine(HOLIDAY, dtime(10, 10), KST)
    )
    try:
        with (
            scratch(admin_url, redis_url) as res,
            tempfile.TemporaryDirectory(prefix="tickguard-gaps-drill-") as tmp,
        ):
            truth_dir = Path(tmp) / "truth"
            db = res.database_url
            async with rig.simulator(_config(rig, plan, opts, truth_dir)) as sim:
                drill_settings = _settings(settings, rig, sim, res, redis_url, plan, Path(tmp))
                persist = PersistThread(drill_settings, redis_url, db, "gaps-drill")
                gate = MinuteGate(sim, drill_settings, redis_url, db, time.time() - 60)

                def check() -> list[Raised]:
                    return replay(
                        drill_settings, db, broker.value, plan.symbols, plan.window(),
                        feed=gate, poster=poster, calendar=calendar,
                    )  # fmt: skip

                collector, rss, raised, stopped_at = await _collect_and_check(
                    drill_settings, broker, plan, gate, check
                )
                sim_counters = sim.counters.as_dict()
                sim.flush_truth()
                caught_up = await persist.finish()
                await asyncio.to_thread(gate, plan.window().end)  # the last gaps on the clock
                raised += await asyncio.to_thread(
                    replay, drill_settings, db, broker.value, plan.symbols, holiday,
                    feed=lambda _: None, poster=poster, calendar=calendar,
                )  # fmt: skip
                injections = injected(plan, TruthReader(truth_dir), sim, holiday)
                subs = {(s, c.value) for s in plan.symbols for c in DEFAULT_CHANNELS}
                judged = await asyncio.to_thread(
                    judge, TruthReader(truth_dir), db, broker.value, subs, stopped_at
                )  # what the live path lost, before the backfill refills it
                stop = session_ts(sim, datetime.fromtimestamp(stopped_at, UTC))
                final = await backfill_then_judge(
                    drill_settings, broker=broker, sim=sim, truth_dir=truth_dir,
                    symbols=plan.symbols, database_url=db, redis_url=redis_url,
                    end_t=(stop - exchange_ts(plan.day, 0)).total_seconds(), ledger_since=None,
                )  # fmt: skip
            truth = TruthReader(truth_dir)
            halts = await asyncio.to_thread(_halts, db)
            left_open = await asyncio.to_thread(_left_open, db)
            withheld = sum(
                int(f["detail"].get("trades", 0)) for f in truth.faults() if f["kind"] == "withhold"
            )
            scored = score(injections, raised, len(sink.posts))
    finally:
        sink.close()
    totals = collector.totals
    # The truth-vs-store judge's gap coverage reads gaps by the trading day's date, which a
    # past-day drill's wall-clock gap stamps do not share: the score above judges detection.
    skip = {"false_alarms", "drops_without_gap", "gaps_injected", "gaps_detected",
            "gaps_opened", "gaps_open_at_end"}  # fmt: skip
    usual = {k: v for k, v in judged.items() if k not in skip}
    backfilled = {k: v for k, v in final.items() if k not in scored}  # the score stays
    return {
        "scenario": opts.scenario.name,
        "broker": broker.value,
        "symbols": len(plan.symbols),
        "minutes": plan.minutes,
        "speed": plan.speed,
        "speed_requested": float(opts.speed),
        "trading_day": plan.day.isoformat(),
        **scored,
        "incidents": len(raised),
        "injected": [
            {
                "label": i.label,
                "symbols": len(i.symbols),
                "start": i.start.isoformat(),
                "alarm": i.alarm,
            }
            for i in injections
        ],
        "raised": [
            {
                "symbols": len(r.symbols),
                "start": r.start.isoformat(),
                "raised_at": r.raised_at.isoformat(),
            }
            for r in raised
        ],
        "halts_recorded": [
            {"symbol": s, "start": a.isoformat(), "end": b.isoformat() if b else None}
            for s, a, b in halts
        ],
        "trades_withheld": withheld,
        **usual,
        **backfilled,
        "trade_gaps_left_open": left_open,
        "minutes_checked_late": gate.late,
        "reconnects": int(totals.get("reconnects", 0)),
        "stale_reconnects": int(totals.get("stale", 0)),
        "session_conflicts": int(sim_counters.get("session_conflicts", 0)),
        "persist_caught_up": caught_up,
        "peak_rss_mb": round(rss.peak, 1),
        "wall_s": round(time.monotonic() - started, 1),
    }
