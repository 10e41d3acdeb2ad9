"""The incident drill (``incident-2026-01-19``): the bad morning, replayed, then the backfill.

The session runs through the real simulator, collector, Redis stream and persist, exactly as
in :mod:`tickguard.drill.runner`, with the incident's faults: the simulator flaps every
3–5 s without a close frame and corrupts a share of data frames (ticks lost inside live
connections); the collector is absent for the first minutes of the session (it was
crash-looping on an ImportError: no restart got as far as connecting) and again for a
10-minute outage. Neither absence is reported by anybody — only the minute reconciliation
of the backfill can find them. After the session the backfill runs against the simulator's
REST side, and the store is judged against the ground truth once more.

Timings are session minutes after the open and come from the scenario's ``extra`` knobs
(``crash_loop_min``, ``outage_at_min``, ``outage_min``); the drill's ``--minutes`` and
``--speed`` apply as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tickguard.collector import DEFAULT_CHANNELS, run_collector
from tickguard.drill.compare import judge
from tickguard.drill.rigs import RIGS, sim_config
from tickguard.drill.runner import (
    OPEN_T,
    DrillError,
    DrillOptions,
    PersistThread,
    RssSampler,
    backfill_then_judge,
    drill_settings,
    pin_trading_day,
)
from tickguard.drill.scratch import scratch
from tickguard.settings import Settings
from tickguard.sim.truth import TruthReader
from tickguard.sim.universe import default_symbols
from tickguard.sinks.redis_stream import RedisStreamSink, redis_client

log = logging.getLogger(__name__)


def segments(extra: Mapping[str, Any], minutes: float) -> list[tuple[float, float]]:
    """Session-time spans [start, end) in which the collector runs."""
    end = OPEN_T + minutes * 60
    up = OPEN_T + float(extra.get("crash_loop_min", 2.0)) * 60
    down = OPEN_T + float(extra.get("outage_at_min", 6.0)) * 60
    back = down + float(extra.get("outage_min", 10.0)) * 60
    spans = [(up, min(down, end)), (back, end)]
    return [(a, b) for a, b in spans if b > a]


async def _run_segments(
    settings: Settings, opts: DrillOptions, sim: Any, spans: list[tuple[float, float]]
) -> tuple[int, int]:
    """Run the collector in each span (waiting on the simulator's clock); runs made, and
    the session conflicts the collector met."""
    url = settings.redis_url.get_secret_value() if settings.redis_url else ""
    symbols = default_symbols(opts.symbols)
    lock = redis_client(url, 2.0)
    runs = 0
    try:
        async with RedisStreamSink.from_settings(settings, url, name="incident") as sink:
            for start, end in spans:
                await asyncio.sleep(max(0.0, sim.clock.wall_delay(start)))  # the outage
                stop_at = datetime.fromtimestamp(sim.clock.epoch_at(end), UTC)
                await run_collector(
                    settings, opts.broker, symbols, sink=sink, stop_event=asyncio.Event(),
                    channels=DEFAULT_CHANNELS, lock_redis=lock, trading_day=opts.trading_day,
                    stop_at=stop_at,
                )  # fmt: skip
                runs += 1
            if not await sink.drain(30.0):
                log.error("incident drill: the sink's spool did not drain within 30 s")
    finally:
        await lock.aclose()
    return runs, int(sim.counters.as_dict().get("session_conflicts", 0))


async def _sampled(rss: RssSampler, work: Any) -> Any:
    """``work`` awaited with RSS sampled twice a second beside it."""

    async def sample() -> None:
        while True:
            rss.sample()
            if not rss.start:
                rss.start = rss.peak
            await asyncio.sleep(0.5)

    task = asyncio.create_task(sample())
    try:
        return await work
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        rss.sample()


async def run_incident_drill(
    base: Settings, opts: DrillOptions, *, admin_url: str, redis_url: str
) -> dict[str, Any]:
    """The session with the incident's faults, then the backfill; one flat report."""
    rig = RIGS.get(opts.broker)
    if rig is None:
        raise DrillError(f"no simulator for {opts.broker.value} drills")
    opts, day = pin_trading_day(opts)
    started, since = time.monotonic(), time.time()
    spans = segments(opts.scenario.extra, opts.minutes)
    rss = RssSampler()
    with (
        scratch(admin_url, redis_url) as res,
        tempfile.TemporaryDirectory(prefix="tickguard-incident-") as tmp,
    ):
        truth_dir = Path(tmp) / "truth"
        config = sim_config(
            rig, day=day, symbols=opts.symbols, seed=opts.seed, speed=opts.speed,
            faults=opts.scenario.fault_specs(opts.minutes, opts.speed), truth_dir=truth_dir,
            overrides=opts.scenario.sim, slot_hold_s=opts.slot_hold_s,
        )  # fmt: skip
        symbols = default_symbols(opts.symbols)
        async with rig.simulator(config) as sim:
            settings = drill_settings(base, rig, sim, res, redis_url, opts, Path(tmp) / "data")
            persist = PersistThread(settings, redis_url, res.database_url, "incident")
            try:
                runs, conflicts = await _sampled(rss, _run_segments(settings, opts, sim, spans))
            finally:
                caught_up = await persist.finish()
            sim.flush_truth()
            end_t = OPEN_T + opts.minutes * 60
            subs = {(s, c.value) for s in symbols for c in DEFAULT_CHANNELS}
            live = await asyncio.to_thread(
                judge, TruthReader(truth_dir), res.database_url, opts.broker.value, subs,
                sim.clock.epoch_at(end_t),
            )  # fmt: skip
            final = await backfill_then_judge(
                settings, broker=opts.broker, sim=sim, truth_dir=truth_dir, symbols=symbols,
                database_url=res.database_url, redis_url=redis_url, end_t=end_t,
                ledger_since=since,
            )  # fmt: skip
    return {
        "scenario": opts.scenario.name, "broker": opts.broker.value, "trading_day": day.isoformat(),
        "symbols": opts.symbols, "minutes": opts.minutes, "speed": opts.speed,
        "collector_runs": runs,
        "collector_down_min": round((opts.minutes * 60 - sum(b - a for a, b in spans)) / 60, 1),
        "persist_caught_up": caught_up,
        "trades_stored_before_backfill": live["trades_stored"],
        "trades_lost_after_receipt": live["trades_lost_after_receipt"],
        "drops": live["drops"], "gaps_opened": live["gaps_opened"],
        "gaps_injected": live["gaps_injected"], "gaps_detected": live["gaps_detected"],
        "false_alarms": live["false_alarms"], "session_conflicts": conflicts,
        **final,
        "peak_rss_mb": round(rss.peak, 1), "rss_start_mb": round(rss.start, 1),
        "wall_s": round(time.monotonic() - started, 1),
    }  # fmt: skip
