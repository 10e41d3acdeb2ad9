"""Run one drill: simulator + collector + Redis stream + persist + PostgreSQL, then judge.

Everything runs in this process (persist in a thread, as it is synchronous), against the
configured PostgreSQL/Redis but in a scratch database and under a scratch key prefix. The
collector is exactly :func:`~tickguard.collector.run_collector` with the production sink;
only its settings point at the simulator. RSS is sampled twice a second for the whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import redis
from pydantic import SecretStr

from tickguard.collector import DEFAULT_CHANNELS, CollectorReport, run_collector
from tickguard.drill.compare import judge
from tickguard.drill.rigs import RIGS, Rig, broker_settings, sim_config
from tickguard.drill.scenarios import Scenario
from tickguard.drill.scratch import Scratch, scratch
from tickguard.errors import TickguardError
from tickguard.models import KST, Broker
from tickguard.settings import Settings, SinkSettings, StreamSettings
from tickguard.sim.truth import TruthReader
from tickguard.sim.universe import default_symbols
from tickguard.sinks import stream_admin
from tickguard.sinks.persist import Persist
from tickguard.sinks.redis_stream import RedisStreamSink, redis_client, stream_key
from tickguard.stream.supervisor import Supervisor

log = logging.getLogger(__name__)

PERSIST_CATCH_UP_S = 120.0


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


def _settings(
    base: Settings, rig: Rig, sim: Any, res: Scratch, redis_url: str, opts: DrillOptions, data: Path
) -> Settings:
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
    started = time.monotonic()
    with (
        scratch(admin_url, redis_url) as res,
        tempfile.TemporaryDirectory(prefix="tickguard-drill-") as tmp,
    ):
        truth_dir = Path(tmp) / "truth"
        config = sim_config(
            rig, day=datetime.now(KST).date(), symbols=opts.symbols, seed=opts.seed,
            speed=opts.speed, faults=opts.scenario.faults, truth_dir=truth_dir,
            overrides=opts.scenario.sim, slot_hold_s=opts.slot_hold_s,
        )  # fmt: skip
        async with rig.simulator(config) as sim:
            settings = _settings(base, rig, sim, res, redis_url, opts, Path(tmp) / "data")
            persist = PersistThread(settings, redis_url, res.database_url, "drill")
            try:
                stop_at = time.time() + opts.minutes * 60 / opts.speed
                collector, rss = await _collect(settings, opts, stop_at)
            finally:
                sim_counters = sim.counters.as_dict()
        caught_up = await persist.finish()
        symbols = default_symbols(opts.symbols)
        subs = {(s, c.value) for s in symbols for c in DEFAULT_CHANNELS}
        judged = await asyncio.to_thread(
            judge, TruthReader(truth_dir), res.database_url, opts.broker.value, subs, stop_at
        )
    return _report(
        opts,
        judged,
        collector,
        sim_counters,
        rss,
        persist.persist,
        caught_up,
        time.monotonic() - started,
    )


async def _collect(
    settings: Settings, opts: DrillOptions, stop_epoch: float
) -> tuple[CollectorReport, RssSampler]:
    rss = RssSampler()
    rss.sample()
    sampler: list[asyncio.Task[None]] = []

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
                trading_day=datetime.now(KST).date(), stop_at=stop_at, on_started=started,
            )  # fmt: skip
            if not await sink.drain(30.0):
                log.error("drill: the sink's spool did not drain within 30 s")
    finally:
        rss.sample()
        for task in sampler:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await lock.aclose()
    return report, rss


def _wait_persisted(redis_url: str, settings: Settings) -> bool:
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
            return await asyncio.to_thread(_wait_persisted, self.redis_url, self.settings)
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
        "symbols": opts.symbols,
        "minutes": opts.minutes,
        "speed": opts.speed,
        **judged,
        "frames_quarantined": int(totals.get("quarantined", 0)),
        "reconnects": int(totals.get("reconnects", 0)),
        "session_conflicts": int(sim.get("session_conflicts", 0)),
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
