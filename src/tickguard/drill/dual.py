"""The dual-feed drill: one market through KIS and Kiwoom at once, faults on one of them.

Both simulators play the same market (same day, seed and symbols) on one shared clock, so
they generate the same trades with the same cumulative volumes; both collectors write into
one sink, one persist, one database. The natural key (symbol, trading_day, cum_volume) stores
each trade once, whichever feed delivered it first, so the healthy feed fills the faulted
feed's windows live — and :func:`tickguard.store.coverage.resolve_covered_gaps`, run every
second as the completeness flow would, turns each of the faulted feed's gaps it can prove
covered into ``filled`` (or ``no_trades``) naming the feed that covered it.

The healthy collector runs ``HEALTHY_GRACE_S`` longer than the faulted one: the faulted
feed's last windows need a trade stored after them before continuity can be proven. Then,
both simulators still up, each broker's backfill runs and the store is judged once more
(``trades_missing_final``): what no feed delivered, the backfill must bring.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg

from tickguard.collector import DEFAULT_CHANNELS, CollectorReport, run_collector
from tickguard.drill.compare import final_score, judge
from tickguard.drill.dual_judge import judge_dual
from tickguard.drill.rigs import RIGS, broker_settings, sim_config
from tickguard.drill.runner import (
    OPEN_T,
    DrillOptions,
    PersistThread,
    RssSampler,
    _report,
    drill_settings,
    ledger_bounds,
    pin_trading_day,
    refill,
)
from tickguard.drill.scratch import scratch
from tickguard.models import Broker
from tickguard.settings import Settings
from tickguard.sim.clock import SimClock
from tickguard.sim.market import exchange_ts
from tickguard.sim.truth import TruthReader
from tickguard.sim.universe import default_symbols
from tickguard.sinks.redis_stream import RedisStreamSink, redis_client
from tickguard.store.coverage import resolve_covered_gaps
from tickguard.store.migrate import libpq_url
from tickguard.stream.supervisor import Supervisor

log = logging.getLogger(__name__)

HEALTHY_GRACE_S = 3.0
RESOLVE_EVERY_S = 1.0
BROKERS = (Broker.KIS, Broker.KIWOOM)


def resolve_now(database_url: str, day: date, since: float) -> int:
    """One pass of the coverage resolver over the gaps stamped since ``since``, committed."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        return resolve_covered_gaps(
            conn, day, now=datetime.now(UTC), ledger_bounds=ledger_bounds(since)
        )


async def run_dual_drill(
    base: Settings, opts: DrillOptions, *, admin_url: str, redis_url: str
) -> dict[str, Any]:
    """Run the dual drill with the scenario's faults on ``opts.broker`` only; its report has
    ``kis``/``kiwoom`` sub-reports and the combined keys of :mod:`~tickguard.drill.dual_judge`."""
    opts, day = pin_trading_day(opts)
    started, since = time.monotonic(), time.time()
    with (
        scratch(admin_url, redis_url) as res,
        tempfile.TemporaryDirectory(prefix="tickguard-dual-drill-") as tmp,
    ):
        truth_dirs = {b: Path(tmp) / f"truth-{b.value}" for b in BROKERS}
        clock = SimClock(OPEN_T, opts.speed)
        async with contextlib.AsyncExitStack() as sims_stack:
            sims: dict[Broker, Any] = {}
            for b in BROKERS:
                config = sim_config(
                    RIGS[b], day=day, symbols=opts.symbols, seed=opts.seed, speed=opts.speed,
                    faults=opts.scenario.fault_specs(opts.minutes, opts.speed)
                    if b is opts.broker
                    else (),
                    truth_dir=truth_dirs[b], overrides={**opts.scenario.sim, "clock": clock},
                    slot_hold_s=opts.slot_hold_s,
                )  # fmt: skip
                sims[b] = await sims_stack.enter_async_context(RIGS[b].simulator(config))
            settings = _dual_settings(base, sims, res, redis_url, opts, Path(tmp) / "data")
            persist = PersistThread(settings, redis_url, res.database_url, "drill")
            end_t = OPEN_T + opts.minutes * 60
            stop_at = clock.epoch_at(end_t)
            try:
                reports, rss, live = await _collect_both(
                    settings, opts, stop_at, res.database_url, since, day
                )
            finally:
                caught_up = await persist.finish()
            counters = {b: s.counters.as_dict() for b, s in sims.items()}
            for sim in sims.values():
                sim.flush_truth()
            final = await asyncio.to_thread(resolve_now, res.database_url, day, since)
            symbols = default_symbols(opts.symbols)
            subs = {(s, c.value) for s in symbols for c in DEFAULT_CHANNELS}
            truths = {b.value: TruthReader(d) for b, d in truth_dirs.items()}
            per_broker, judged = {}, {}
            for b in BROKERS:
                stopped = stop_at + (0.0 if b is opts.broker else HEALTHY_GRACE_S)
                judged[b] = await asyncio.to_thread(
                    judge, truths[b.value], res.database_url, b.value, subs, stopped,
                    any_broker=True,
                )  # fmt: skip
                one = dataclasses.replace(opts, broker=b)
                elapsed = time.monotonic() - started
                per_broker[b.value] = _report(
                    one, judged[b], reports[b], counters[b], rss, persist.persist, caught_up,
                    elapsed,
                )  # fmt: skip
            combined = await asyncio.to_thread(
                judge_dual, truths, res.database_url, opts.broker.value, day
            )
            refills = {}
            for b in BROKERS:
                refills[b] = await refill(
                    settings, broker=b, sim=sims[b], symbols=symbols,
                    database_url=res.database_url, redis_url=redis_url, end_t=end_t,
                    ledger_since=since,
                )  # fmt: skip
            until = exchange_ts(day, end_t - end_t % 60)
            scored = await asyncio.to_thread(
                final_score, truths[opts.broker.value], res.database_url, until
            )
    conflicts = sum(int(c.get("session_conflicts", 0)) for c in counters.values())
    faulty = judged[opts.broker]
    return {
        "scenario": opts.scenario.name, "broker": "both", "faulty": opts.broker.value,
        "trading_day": day.isoformat(), "symbols": opts.symbols, "minutes": opts.minutes,
        "speed": opts.speed, **combined,
        "session_conflicts": conflicts, "gaps_resolved_live": live, "gaps_resolved_final": final,
        "gaps_injected": faulty["gaps_injected"], "gaps_detected": faulty["gaps_detected"],
        "false_alarms": sum(j["false_alarms"] for j in judged.values()),
        **scored, "trades_duplicated": scored["trades_duplicated_final"],
        "trades_filled": sum(r["trades_filled"] for r in refills.values()),
        "backfill_requests": sum(r["backfill_requests"] for r in refills.values()),
        "backfill_errors": sum(r["backfill_errors"] for r in refills.values()),
        "backfill_s": round(sum(r["backfill_s"] for r in refills.values()), 1),
        "persist_caught_up": caught_up, "peak_rss_mb": round(rss.peak, 1),
        "rss_start_mb": round(rss.start, 1),
        "wall_s": round(time.monotonic() - started, 1), **per_broker,
    }  # fmt: skip


def _dual_settings(
    base: Settings, sims: dict[Broker, Any], res: Any, redis_url: str, opts: DrillOptions,
    data: Path,
) -> Settings:  # fmt: skip
    """The drill settings of one broker, with every other broker pointed at its simulator."""
    first, *others = BROKERS
    one = dataclasses.replace(opts, broker=first)
    settings = drill_settings(base, RIGS[first], sims[first], res, redis_url, one, data)
    for b in others:
        update = broker_settings(RIGS[b], settings, sims[b], opts.symbols, len(DEFAULT_CHANNELS))
        settings = settings.model_copy(update=update)
    return settings


async def _collect_both(
    settings: Settings, opts: DrillOptions, stop_epoch: float, database_url: str, since: float,
    day: date,
) -> tuple[dict[Broker, CollectorReport], RssSampler, int]:  # fmt: skip
    """Both collectors into one sink, the coverage resolver beside them; gaps it resolved."""
    rss = RssSampler()
    rss.sample()
    supervisors: list[Supervisor] = []
    sampler: list[asyncio.Task[None]] = []
    url = settings.redis_url.get_secret_value() if settings.redis_url else ""
    lock = redis_client(url, 2.0)
    resolved = [0]

    async def resolver() -> None:
        while True:
            await asyncio.sleep(RESOLVE_EVERY_S)
            try:
                resolved[0] += await asyncio.to_thread(resolve_now, database_url, day, since)
            except psycopg.Error as exc:  # the next round retries; the drill goes on
                log.warning("coverage pass failed: %s", type(exc).__name__)

    def started(sups: list[Supervisor]) -> None:
        supervisors.extend(sups)  # the sampler reads this list as it grows
        if not sampler:
            sampler.append(asyncio.create_task(rss.run(supervisors)))

    helpers = [asyncio.create_task(resolver())]
    try:
        async with RedisStreamSink.from_settings(settings, url, name="drill") as sink:

            async def collect(b: Broker) -> CollectorReport:
                grace = 0.0 if b is opts.broker else HEALTHY_GRACE_S
                return await run_collector(
                    settings, b, default_symbols(opts.symbols), sink=sink,
                    stop_event=asyncio.Event(), channels=DEFAULT_CHANNELS, lock_redis=lock,
                    trading_day=day, stop_at=datetime.fromtimestamp(stop_epoch + grace, UTC),
                    on_started=started,
                )  # fmt: skip

            done = await asyncio.gather(*(collect(b) for b in BROKERS))
            await sink.drain(30.0)
    finally:
        rss.sample()
        for task in [*helpers, *sampler]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await lock.aclose()
    return dict(zip(BROKERS, done, strict=True)), rss, resolved[0]
