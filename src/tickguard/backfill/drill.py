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
import logging
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from tickguard.backfill.run import run_backfill
from tickguard.collector import DEFAULT_CHANNELS, run_collector
from tickguard.drill.compare import judge
from tickguard.drill.rigs import RIGS, sim_config
from tickguard.drill.runner import DrillError, DrillOptions, PersistThread, _settings
from tickguard.drill.scratch import scratch
from tickguard.models import KST
from tickguard.settings import Settings
from tickguard.sim.market import exchange_ts
from tickguard.sim.truth import TruthReader
from tickguard.sim.universe import default_symbols
from tickguard.sinks.redis_stream import RedisStreamSink, redis_client
from tickguard.store.migrate import libpq_url

log = logging.getLogger(__name__)
OPEN_T = 9 * 3600.0


def _session_ts(sim: Any, wall: datetime) -> datetime:
    """The collector stamps gaps with the wall clock; the simulated exchange runs its own."""
    t = (
        sim.clock.start_t
        + (wall.timestamp() - sim.clock.epoch_at(sim.clock.start_t)) * sim.clock.speed
    )
    return exchange_ts(sim.market.config.day, 0) + timedelta(seconds=t)


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
) -> int:
    """Run the collector in each span (waiting on the simulator's clock); returns runs made."""
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
                    channels=DEFAULT_CHANNELS, lock_redis=lock, trading_day=sim.market.config.day,
                    stop_at=stop_at,
                )  # fmt: skip
                runs += 1
            if not await sink.drain(30.0):
                log.error("incident drill: the sink's spool did not drain within 30 s")
    finally:
        await lock.aclose()
    return runs


def score(truth: TruthReader, database_url: str, until: datetime) -> dict[str, int]:
    """Store vs ground truth after the backfill, for trades before ``until``."""
    expected = {
        (t.symbol, t.cum_volume): (t.price, t.qty, exchange_ts(truth.day, t.t))
        for t in truth.generated_trades()
        if exchange_ts(truth.day, t.t) < until
    }
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(
            "SELECT symbol, cum_volume, price, qty, ts FROM trades "
            "WHERE trading_day = %s AND ts < %s",
            (truth.day, until),
        ).fetchall()
        dup = conn.execute(
            "SELECT count(*) - count(DISTINCT (symbol, trading_day, cum_volume)) FROM trades"
        ).fetchone()
        books: dict[str, int] = dict(conn.execute(
            "SELECT status, count(*) FROM gaps WHERE kind = 'book' GROUP BY status"
        ).fetchall())  # fmt: skip
        trade_gaps: dict[str, int] = dict(conn.execute(
            "SELECT status, count(*) FROM gaps WHERE kind = 'trades' GROUP BY status"
        ).fetchall())  # fmt: skip
    stored = {(s, int(c)): (int(p), int(q), ts) for s, c, p, q, ts in rows}
    return {
        "trades_expected": len(expected),
        "trades_missing_final": len(set(expected) - set(stored)),
        "trades_unexpected_final": len(set(stored) - set(expected)),
        "trades_mismatched_final": sum(
            1 for k, v in stored.items() if k in expected and expected[k] != v
        ),
        "trades_duplicated_final": int(dup[0]) if dup else 0,
        "books_unrecoverable": int(books.get("unrecoverable", 0)),
        **{f"trade_gaps_{st}": int(n) for st, n in sorted(trade_gaps.items())},
        "book_gaps_not_unrecoverable": sum(
            int(n) for st, n in books.items() if st != "unrecoverable"
        ),
    }


async def run_incident_drill(
    base: Settings, opts: DrillOptions, *, admin_url: str, redis_url: str
) -> dict[str, Any]:
    """The session with the incident's faults, then the backfill; one flat report."""
    rig = RIGS.get(opts.broker)
    if rig is None:
        raise DrillError(f"no simulator for {opts.broker.value} drills")
    started = time.monotonic()
    spans = segments(opts.scenario.extra, opts.minutes)
    with (
        scratch(admin_url, redis_url) as res,
        tempfile.TemporaryDirectory(prefix="tickguard-incident-") as tmp,
    ):
        truth_dir = Path(tmp) / "truth"
        config = sim_config(
            rig, day=datetime.now(KST).date(), symbols=opts.symbols, seed=opts.seed,
            speed=opts.speed, faults=opts.scenario.faults, truth_dir=truth_dir,
            overrides=opts.scenario.sim, slot_hold_s=opts.slot_hold_s,
        )  # fmt: skip
        async with rig.simulator(config) as sim:
            settings = _settings(base, rig, sim, res, redis_url, opts, Path(tmp) / "data")
            persist = PersistThread(settings, redis_url, res.database_url, "incident")
            try:
                runs = await _run_segments(settings, opts, sim, spans)
            finally:
                caught_up = await persist.finish()
            sim.flush_truth()
            end_t = OPEN_T + opts.minutes * 60
            until = exchange_ts(sim.market.config.day, end_t - end_t % 60)
            subs = {(s, c.value) for s in default_symbols(opts.symbols) for c in DEFAULT_CHANNELS}
            live = await asyncio.to_thread(
                judge,
                TruthReader(truth_dir),
                res.database_url,
                opts.broker.value,
                subs,
                sim.clock.epoch_at(end_t),
            )
            backfill_started = time.monotonic()
            report = await run_backfill(
                settings, day=sim.market.config.day, symbols=default_symbols(opts.symbols),
                broker=opts.broker, database_url=res.database_url, redis_url=redis_url, until=until,
                to_exchange=partial(_session_ts, sim),
            )  # fmt: skip
            backfill_s = time.monotonic() - backfill_started
        final = await asyncio.to_thread(score, TruthReader(truth_dir), res.database_url, until)
    totals = report.totals()
    return {
        "scenario": opts.scenario.name, "broker": opts.broker.value, "symbols": opts.symbols,
        "minutes": opts.minutes, "speed": opts.speed, "collector_runs": runs,
        "collector_down_min": round((opts.minutes * 60 - sum(b - a for a, b in spans)) / 60, 1),
        "persist_caught_up": caught_up,
        "trades_stored_before_backfill": live["trades_stored"],
        "trades_lost_after_receipt": live["trades_lost_after_receipt"],
        "drops": live["drops"], "gaps_opened": live["gaps_opened"],
        "trades_filled": totals["trades_filled"], **final,
        "trades_duplicated": final["trades_duplicated_final"],
        "gaps_filled": totals["gaps_filled"], "gaps_unrecoverable": totals["gaps_unrecoverable"],
        "gaps_no_trades": totals["gaps_no_trades"],
        "gaps_outside_span": totals["gaps_outside_span"],
        "silent_losses": totals["silent_losses"],
        "minutes_unrecoverable": totals["minutes_unrecoverable"],
        "backfill_requests": totals["backfill_requests"],
        "rate_limit_errors": totals["rate_limit_errors"],
        "rate_limit_errors_max_per_min": totals["rate_limit_errors_max_per_min"],
        "budget_rate_per_s": totals["budget_rate_per_s"], "budget_used": totals["budget_used"],
        "backfill_s": round(backfill_s, 1), "wall_s": round(time.monotonic() - started, 1),
    }  # fmt: skip
