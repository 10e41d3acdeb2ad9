"""Run one drill: simulator + collector + Redis stream + persist + PostgreSQL, then the
backfill, then judge.

Everything runs in this process (persist in a thread, as it is synchronous), against the
configured PostgreSQL/Redis but in a scratch database and under a scratch key prefix. The
collector is exactly :func:`~tickguard.collector.run_collector` with the production sink;
only its settings point at the simulator. RSS is sampled twice a second for the whole run.

One trading day per drill: :func:`pin_trading_day` picks it once (the calendar's current or
next trading day unless the options name one) and the simulator, the collector, the
backfill and the judge all use it, so a drill that crosses midnight KST stays on one day.
The ledger keeps the collector's wall-clock stamps; the backfill reads the gaps stamped
while the drill ran (``ledger_bounds``) and maps them onto the simulated exchange's clock
(:func:`session_ts`).

After the session every scenario runs :func:`backfill_then_judge` (the simulator still
serving its REST side): the post-close backfill, then the store against the ground truth.
A scenario with an ``environment`` gets its servers from it (:mod:`~tickguard.drill.env_api`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import redis
from pydantic import SecretStr

from tickguard.backfill.run import run_backfill
from tickguard.calendar import TradingCalendar
from tickguard.collector import DEFAULT_CHANNELS, CollectorReport, run_collector
from tickguard.drill.compare import final_score, judge
from tickguard.drill.env_api import Disruption, resolve
from tickguard.drill.rigs import RIGS, Rig, broker_settings, sim_config
from tickguard.drill.scenarios import Scenario
from tickguard.drill.scratch import Scratch, scratch
from tickguard.errors import TickguardError
from tickguard.models import KST, Broker
from tickguard.settings import Settings, SinkSettings, StreamSettings
from tickguard.sim.market import exchange_ts
from tickguard.sim.truth import TruthReader
from tickguard.sim.universe import default_symbols
from tickguard.sinks import stream_admin
from tickguard.sinks.persist import Persist
from tickguard.sinks.redis_stream import RedisStreamSink, redis_client, stream_key
from tickguard.stream.supervisor import Supervisor

log = logging.getLogger(__name__)

PERSIST_CATCH_UP_S = 120.0
OPEN_T = 9 * 3600.0
"""Session seconds (since midnight KST) at which every drill's market starts: 09:00."""
LEDGER_MARGIN = timedelta(hours=1)


class DrillError(TickguardError):
    """A drill could not be run (not: a drill that found losses — that is its report)."""


@dataclass(frozen=True, slots=True)
class DrillOptions:
    scenario: Scenario
    broker: Broker = Broker.KIS
    symbols: int = 20
    minutes: float = 10.0
    speed: float = 1.0
    seed: int = 0
    slot_hold_s: float | None = None
    trading_day: date | None = None
    """The market's day; None: the calendar's current-or-next trading day, picked once."""


def current_or_next_trading_day(
    today: date | None = None, calendar: TradingCalendar | None = None
) -> date:
    """``today`` (Asia/Seoul) when the exchange trades on it, else the next trading day."""
    cal = calendar or TradingCalendar()
    day = today or datetime.now(KST).date()
    return day if cal.is_trading_day(day) else cal.next_trading_day(day)


def pin_trading_day(opts: DrillOptions) -> tuple[DrillOptions, date]:
    """The options with their trading day fixed (computed now when unset), and that day."""
    day = opts.trading_day or current_or_next_trading_day()
    return dataclasses.replace(opts, trading_day=day), day


def session_ts(sim: Any, wall: datetime) -> datetime:
    """A wall-clock stamp (the collector's, the ledger's) on the simulated exchange's clock."""
    clock = sim.clock
    t = clock.start_t + (wall.timestamp() - clock.epoch_at(clock.start_t)) * clock.speed
    return exchange_ts(sim.market.config.day, 0) + timedelta(seconds=t)


def ledger_bounds(since_epoch: float) -> tuple[datetime, datetime]:
    """The wall-clock span of gap stamps a drill (started at ``since_epoch``) wrote."""
    start = datetime.fromtimestamp(since_epoch, UTC) - LEDGER_MARGIN
    return start, datetime.now(UTC) + LEDGER_MARGIN


class RssSampler:
    """Peak, start (first data) and end RSS of this process, in MB."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.peak = self.start = self.end = 0.0

    def sample(self) -> float:
        value = self._proc.memory_info().rss / 2**20
        self.peak = max(self.peak, value)
        self.end = value
        return value

    async def run(self, supervisors: list[Supervisor]) -> None:
        while True:
            value = self.sample()
            if not self.start and any(s.stats.data_frames for s in supervisors):
                self.start = value
            await asyncio.sleep(0.5)


def drill_settings(
    base: Settings, rig: Rig, sim: Any, res: Scratch, redis_url: str, opts: DrillOptions, data: Path
) -> Settings:
    """``base`` pointed at the simulator, the scratch database/prefix and ``redis_url``."""
    stream = StreamSettings(**{**base.stream.model_dump(), **opts.scenario.stream})
    sink = SinkSettings(**{**base.sink.model_dump(), "stream_prefix": res.stream_prefix})
    update: dict[str, Any] = {
        **broker_settings(rig, base, sim, opts.symbols, len(DEFAULT_CHANNELS)),
        "stream": stream, "sink": sink, "data_dir": data,
        "database_url": SecretStr(res.database_url), "redis_url": SecretStr(redis_url),
    }  # fmt: skip
    return base.model_copy(update=update)


async def run_drill(
    base: Settings, opts: DrillOptions, *, admin_url: str, redis_url: str
) -> dict[str, Any]:
    """Run the drill and return its report (one flat JSON-able dict)."""
    rig = RIGS.get(opts.broker)
    if rig is None:
        raise DrillError(f"no simulator for {opts.broker.value} drills")
    opts, day = pin_trading_day(opts)
    started, since = time.monotonic(), time.time()
    async with contextlib.AsyncExitStack() as stack:
        env: Disruption | None = None
        if opts.scenario.environment:
            make = resolve(opts.scenario.environment)
            entered: Disruption = await stack.enter_async_context(make(admin_url, redis_url, opts))
            env, admin_url, redis_url = entered, entered.admin_url, entered.redis_url
        res = stack.enter_context(scratch(admin_url, redis_url))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tickguard-drill-")))
        truth_dir = tmp / "truth"
        config = sim_config(
            rig, day=day, symbols=opts.symbols, seed=opts.seed, speed=opts.speed,
            faults=opts.scenario.fault_specs(opts.minutes, opts.speed), truth_dir=truth_dir,
            overrides=opts.scenario.sim, slot_hold_s=opts.slot_hold_s,
        )  # fmt: skip
        symbols = default_symbols(opts.symbols)
        async with rig.simulator(config) as sim:
            settings = drill_settings(base, rig, sim, res, redis_url, opts, tmp / "data")
            persist = PersistThread(settings, redis_url, res.database_url, "drill")
            end_t = OPEN_T + opts.minutes * 60
            stop_at = sim.clock.epoch_at(end_t)
            try:
                collector, rss = await _collect(settings, opts, stop_at, env, sim)
            finally:
                caught_up = await persist.finish()
            sim_counters = sim.counters.as_dict()
            sim.flush_truth()
            subs = {(s, c.value) for s in symbols for c in DEFAULT_CHANNELS}
            judged = await asyncio.to_thread(
                judge, TruthReader(truth_dir), res.database_url, opts.broker.value, subs, stop_at
            )
            final = await backfill_then_judge(
                settings, broker=opts.broker, sim=sim, truth_dir=truth_dir, symbols=symbols,
                database_url=res.database_url, redis_url=redis_url, end_t=end_t,
                ledger_since=since,
            )  # fmt: skip
        elapsed = time.monotonic() - started
    report = _report(
        opts, judged, collector, sim_counters, rss, persist.persist, caught_up, elapsed
    )
    return {**report, **final, **(env.report() if env is not None else {}),
            "wall_s": round(time.monotonic() - started, 1)}  # fmt: skip


async def refill(
    settings: Settings,
    *,
    broker: Broker,
    sim: Any,
    symbols: Sequence[str],
    database_url: str,
    redis_url: str,
    end_t: float,
    ledger_since: float | None,
) -> dict[str, Any]:
    """The post-close backfill of one broker's drill against its simulator's REST side, up
    to the last whole minute before session second ``end_t``; its figures. ``ledger_since``
    None: the ledger is on the exchange's clock already (the gaps drill maps it for its
    checks), read as production reads it: the day's gaps, no mapping."""
    day = sim.market.config.day
    until = exchange_ts(day, end_t - end_t % 60)
    started = time.monotonic()
    on_wall = ledger_since is not None
    report = await run_backfill(
        settings, day=day, symbols=symbols, broker=broker, database_url=database_url,
        redis_url=redis_url, until=until,
        to_exchange=partial(session_ts, sim) if on_wall else None,
        ledger_bounds=ledger_bounds(ledger_since) if ledger_since is not None else None,
    )  # fmt: skip
    totals = report.totals()
    keys = ("trades_filled", "gaps_filled", "gaps_unrecoverable", "gaps_no_trades",
            "gaps_outside_span", "silent_losses", "minutes_unrecoverable", "errors",
            "backfill_requests", "rate_limit_errors", "rate_limit_errors_max_per_min",
            "budget_rate_per_s", "budget_used")  # fmt: skip
    out: dict[str, Any] = {k: totals[k] for k in keys}
    out["backfill_errors"] = out.pop("errors")
    out["backfill_s"] = round(time.monotonic() - started, 1)
    return out


async def backfill_then_judge(
    settings: Settings,
    *,
    broker: Broker,
    sim: Any,
    truth_dir: Path,
    symbols: Sequence[str],
    database_url: str,
    redis_url: str,
    end_t: float,
    ledger_since: float | None,
) -> dict[str, Any]:
    """After the session, the simulator still up: :func:`refill`, then the store judged
    against the ground truth once more (:func:`~tickguard.drill.compare.final_score`).

    ``end_t``: session seconds at which collection ended; ``ledger_since``: wall epoch at
    which the drill began (gap stamps before it are not this drill's), or None when the
    ledger is on the exchange's clock already (see :func:`refill`). Returns the backfill
    figures and ``trades_missing_final`` & co; ``trades_duplicated`` is the final count.
    """
    sim.flush_truth()
    figures = await refill(
        settings, broker=broker, sim=sim, symbols=symbols, database_url=database_url,
        redis_url=redis_url, end_t=end_t, ledger_since=ledger_since,
    )  # fmt: skip
    until = exchange_ts(sim.market.config.day, end_t - end_t % 60)
    final = await asyncio.to_thread(final_score, TruthReader(truth_dir), database_url, until)
    return {**figures, **final, "trades_duplicated": final["trades_duplicated_final"]}


async def _collect(
    settings: Settings, opts: DrillOptions, stop_epoch: float, env: Disruption | None, sim: Any
) -> tuple[CollectorReport, RssSampler]:
    rss = RssSampler()
    rss.sample()
    sampler: list[asyncio.Task[None]] = []
    if env is not None:
        session_start = sim.clock.epoch_at(sim.clock.start_t)
        sampler.append(asyncio.create_task(env.during(session_start, stop_epoch)))

    def started(supervisors: list[Supervisor]) -> None:
        sampler.append(asyncio.create_task(rss.run(supervisors)))

    url = settings.redis_url.get_secret_value() if settings.redis_url else ""
    lock = redis_client(url, 2.0)
    stop_at = datetime.fromtimestamp(stop_epoch, UTC)
    try:
        async with RedisStreamSink.from_settings(settings, url, name="drill") as sink:
            report = await run_collector(
                settings, opts.broker, default_symbols(opts.symbols), sink=sink,
                stop_event=asyncio.Event(), channels=DEFAULT_CHANNELS, lock_redis=lock,
                trading_day=opts.trading_day, stop_at=stop_at, on_started=started,
            )  # fmt: skip
            if not await sink.drain(30.0):
                log.error("drill: the sink's spool did not drain within 30 s")
    finally:
        rss.sample()
        failures = [t.exception() for t in sampler if t.done() and not t.cancelled()]
        for task in sampler:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await lock.aclose()
    failed = [f for f in failures if f is not None]
    if failed:
        raise DrillError(f"the scenario's environment failed: {failed[0]!r}") from failed[0]
    return report, rss


def wait_persisted(redis_url: str, settings: Settings) -> bool:
    """Poll the consumer group until nothing is pending or undelivered (deadline)."""
    client = redis.Redis.from_url(redis_url)
    stream = stream_key(settings.sink.stream_prefix)
    deadline = time.monotonic() + PERSIST_CATCH_UP_S
    try:
        while time.monotonic() < deadline:
            states = [
                g
                for g in stream_admin.groups(client, stream)
                if g.name == settings.sink.consumer_group
            ]
            if states and states[0].pending == 0 and states[0].lag == 0:
                return True
            time.sleep(0.2)
        return False
    finally:
        client.close()


class PersistThread:
    """Persist on a thread of the drill's own (it is synchronous), started at once.

    :meth:`finish` waits until the consumer group has stored everything (with a deadline),
    then stops the thread; it returns whether persist caught up.
    """

    def __init__(self, settings: Settings, redis_url: str, database_url: str, name: str) -> None:
        self.settings, self.redis_url = settings, redis_url
        self.persist = Persist.from_settings(
            settings, redis_url=redis_url, database_url=database_url, consumer=name
        )
        self.thread = threading.Thread(target=self.persist.run, name=f"{name}-persist", daemon=True)
        self.thread.start()

    async def finish(self) -> bool:
        try:
            return await asyncio.to_thread(wait_persisted, self.redis_url, self.settings)
        finally:
            self.persist.stop_event.set()
            await asyncio.to_thread(self.thread.join, 30.0)


def _report(
    opts: DrillOptions,
    judged: dict[str, Any],
    collector: CollectorReport,
    sim: dict[str, float],
    rss: RssSampler,
    persist: Persist,
    caught_up: bool,
    elapsed: float,
) -> dict[str, Any]:
    totals = collector.totals
    return {
        "scenario": opts.scenario.name,
        "broker": opts.broker.value,
        "trading_day": opts.trading_day.isoformat() if opts.trading_day else None,
        "symbols": opts.symbols,
        "minutes": opts.minutes,
        "speed": opts.speed,
        **judged,
        "frames_quarantined": int(totals.get("quarantined", 0)),
        "reconnects": int(totals.get("reconnects", 0)),
        "session_conflicts": int(sim.get("session_conflicts", 0)),
        "grown_frames": int(sim.get("grown_frames", 0)),
        "stale_reconnects": int(totals.get("stale", 0)),
        "breaker_trips": int(totals.get("breaker_trips", 0)),
        "acks_refused": int(totals.get("acks_refused", 0)),
        "pingpongs_sent": int(sim.get("pingpongs_sent", 0)),
        "pingpong_timeouts": int(sim.get("pingpong_timeouts", 0)),
        "collector_recover_s_max": round(float(totals.get("recover_s_max", 0.0)), 3),
        "duplicate_deliveries": persist.counters.trades_duplicates,
        "persist_caught_up": caught_up,
        "queue_high_water": collector.queue_high_water,
        "peak_rss_mb": round(rss.peak, 1),
        "rss_start_mb": round(rss.start, 1),
        "rss_end_mb": round(rss.end, 1),
        "wall_s": round(elapsed, 1),
    }
