"""The kill drills: SIGKILL the collector (``kill-collector``) or persist (``kill-persist``)
mid-session and let PREFECT restart it, then the backfill, then judge.

Everything runs as in production (:mod:`tickguard.drill.prefect_rig`): a private Prefect
server with the project's deployments and automations, one process worker, the simulator
for ``opts.broker``; persist and the broker's collector are flow runs of their
deployments. The drill SIGKILLs the target's flow-run process ``kills`` times, each after
``kill_after_s`` of data on the current run, and measures kill → a new run of the
deployment Running (``restart_s_max``) and kill → data stored again (``resume_s_max``: a
trade *received* after the kill stored, for the collector; a trade *stored* after the kill,
for persist). The first persist kill is the precise one — ``kill-after-commit`` through the
run's job variables, so it dies between a commit and its XACK; the reruns Prefect starts get
the deployment's own variables, and any further kills are plain SIGKILLs at random moments.

After the session (``session_s`` wall seconds, the collectors' session-end override) persist
catches up and is cancelled, the backfill runs against the simulator's REST side, and the
store is judged against the simulator's ground truth. Every kill must be covered by a gap
row of every subscription (the restarted collector opens them from its journal: see
:mod:`tickguard.stream.journal`).

"Received" is honest here: ``trades_lost_after_receipt`` counts trades the collectors READ
(decoded from their receive journals, which the drill keeps) that are not stored.
``trades_sent_unread`` are trades the simulator sent that no collector read — frames the
kernel still held for a process that was SIGKILLed; only the backfill can bring those
(``trades_missing_final``). ``trades_sent_not_stored`` is the simulator-side figure of the
other drills (both together). ``gaps_injected`` counts collector kills (a persist kill
opens no gap in the feed: there, every gap row is a false alarm).

Knobs (``opts.scenario.extra``): ``kills`` (2), ``kill_after_s`` (20), ``session_s`` (240),
``restart_room_s`` (75: no kill later than this before the session's end),
``worker_poll_s`` (2; Prefect's default is 10), ``restart_delay_base_s`` (the restart gate's
base delay; production 5), ``restart_max`` (the budget; production 3 — a shared server's
other failures of the deployment count too), ``prefect_api`` (an existing server's API URL
instead of a private server: the tests' shared one).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import psutil
import psycopg

from tickguard.brokers.registry import REGISTRY
from tickguard.collector import DEFAULT_CHANNELS
from tickguard.drill.compare import Drop, drops_without_gap, false_alarms, judge, store_figures
from tickguard.drill.prefect_rig import (
    PrefectRig,
    cancel_live_runs,
    pid_of,
    prefect_rig,
    project_dir,
    runs_of,
)
from tickguard.drill.rigs import RIGS, sim_config
from tickguard.drill.runner import (
    DrillError,
    DrillOptions,
    backfill_then_judge,
    drill_settings,
    pin_trading_day,
    wait_persisted,
)
from tickguard.drill.scratch import scratch
from tickguard.models import Broker
from tickguard.orchestration.deploy import pool_job_env
from tickguard.orchestration.up import COLLECTORS, PERSIST, deployment_symbols
from tickguard.settings import Settings
from tickguard.sim.truth import TruthReader
from tickguard.sinks.persist import FAULT_ENV as PERSIST_FAULT_ENV
from tickguard.store.migrate import libpq_url
from tickguard.stream import journal

log = logging.getLogger(__name__)

MAX_SPEED = 60.0
"""Sim seconds per wall second at most: a 390-minute session then lasts 6.5 min of wall time,
enough for the Prefect rig's start (~40 s), the default ``session_s`` (240) and a margin."""
T = TypeVar("T")
Key = tuple[str, int]

TARGETS = {"kill-collector": "collector", "kill-persist": "persist"}
START_TIMEOUT_S = 240.0
RESTART_TIMEOUT_S = 240.0


@dataclass(frozen=True, slots=True)
class Knobs:
    kills: int = 2
    kill_after_s: float = 20.0
    session_s: float = 240.0
    restart_room_s: float = 75.0
    worker_poll_s: float = 2.0
    restart_delay_base_s: float = 5.0
    restart_max: int = 3

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> Knobs:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in extra.items() if k in names})


@dataclass(slots=True)
class Kill:
    at: float
    """Wall epoch seconds of the SIGKILL (or of the self-kill seen)."""
    run_id: str
    restart_s: float | None = None
    resume_s: float | None = None


@dataclass(slots=True)
class ProcessRss:
    """Peak RSS of any flow-run process of the drill's worker, sampled twice a second."""

    peak_mb: float = 0.0

    async def run(self, rig: PrefectRig) -> None:
        while True:
            for proc in rig.flow_processes():
                with contextlib.suppress(psutil.Error):
                    self.peak_mb = max(self.peak_mb, proc.memory_info().rss / 2**20)
            await asyncio.sleep(0.5)


async def until(fn: Callable[[], Awaitable[T | None]], within: float, what: str) -> T:
    """Poll ``fn`` until it returns something truthy (deadline → DrillError)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await fn()
        if value:
            return value
        await asyncio.sleep(0.25)
    raise DrillError(f"kill drill: timed out after {within:.0f} s waiting for {what}")


def _latest(database_url: str, column: str) -> datetime | None:
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute(f"SELECT max({column}) FROM trades").fetchone()
    return row[0] if row else None


async def _stored_after(database_url: str, column: str, after: float) -> bool:
    latest = await asyncio.to_thread(_latest, database_url, column)
    return latest is not None and latest.timestamp() > after


async def run_kill_drill(
    settings: Settings, opts: DrillOptions, *, admin_url: str, redis_url: str
) -> dict[str, Any]:
    """SIGKILL the collector or persist under Prefect, backfill, judge; one flat report."""
    target = TARGETS.get(opts.scenario.name)
    rig = RIGS.get(opts.broker)
    if target is None or rig is None:
        raise DrillError(f"no kill drill {opts.scenario.name!r} for {opts.broker.value}")
    knobs = Knobs.from_extra(opts.scenario.extra)
    # The market must stay open for the whole Prefect session: at drill --all's speed 240 a
    # 390-minute day lasts 98 s of wall time and closed ~20 s after the first kill, so the
    # restarted collector found no data to store.
    opts = dataclasses.replace(opts, speed=min(opts.speed, MAX_SPEED))
    started, since = time.monotonic(), time.time()
    symbols = deployment_symbols(project_dir())
    opts, day = pin_trading_day(dataclasses.replace(opts, symbols=len(symbols)))
    with (
        scratch(admin_url, redis_url) as res,
        tempfile.TemporaryDirectory(prefix="tickguard-kill-") as tmp,
    ):
        work = Path(tmp)
        truth_dir = work / "truth"
        config = sim_config(
            rig, day=day, symbols=len(symbols), seed=opts.seed,
            speed=opts.speed, faults=opts.scenario.faults, truth_dir=truth_dir,
            overrides=opts.scenario.sim, slot_hold_s=opts.slot_hold_s,
        )  # fmt: skip
        async with rig.simulator(config) as sim:
            drill = drill_settings(settings, rig, sim, res, redis_url, opts, work / "data")
            session: dict[str, Any] = {}
            env = partial(_worker_env, drill, opts.broker, redis_url, knobs, work, session)
            api = opts.scenario.extra.get("prefect_api")
            async with prefect_rig(drill, admin_url, work, env, api) as prefect:
                outcome = await _session(prefect, drill, opts, knobs, target, res.database_url,
                                         redis_url, session["end"])  # fmt: skip
            end: datetime = session["end"]
            clock = sim.clock
            end_t = clock.start_t + (end.timestamp() - clock.epoch_at(clock.start_t)) * clock.speed
            sim.flush_truth()
            subs = {(s, c.value) for s in symbols for c in DEFAULT_CHANNELS}
            live = await asyncio.to_thread(
                judge, TruthReader(truth_dir), res.database_url, opts.broker.value, subs,
                end.timestamp(),
            )  # fmt: skip
            gaps = await asyncio.to_thread(store_figures, res.database_url, opts.broker.value, day)
            sent = {(s, k) for s, _d, k in TruthReader(truth_dir).sent_trade_keys()}
            read = await asyncio.to_thread(read_keys, work / "data" / "journal", drill, opts, day)
            final = await backfill_then_judge(
                drill, broker=opts.broker, sim=sim, truth_dir=truth_dir, symbols=symbols,
                database_url=res.database_url, redis_url=redis_url, end_t=end_t,
                ledger_since=since,
            )  # fmt: skip
            sim_counters = sim.counters.as_dict()
    kills: list[Kill] = outcome["kills"]
    drops = [Drop(k.at, "kill") for k in kills] if target == "collector" else []
    uncovered = drops_without_gap(drops, gaps["gaps"], subs)
    return {
        "scenario": opts.scenario.name, "broker": opts.broker.value, "symbols": len(symbols),
        "speed": opts.speed, "session_s": knobs.session_s, "worker_poll_s": knobs.worker_poll_s,
        "restart_delay_base_s": knobs.restart_delay_base_s,
        **final,
        "trades_lost_after_receipt": len(read - gaps["keys"]),
        "trades_read": len(read),
        "trades_sent_not_stored": live["trades_lost_after_receipt"],
        "trades_sent_unread": len(sent - read - gaps["keys"]),
        "gaps_injected": len(drops), "gaps_detected": len(drops) - uncovered,
        "false_alarms": false_alarms(drops, gaps["gaps"]),
        "session_conflicts": int(sim_counters.get("session_conflicts", 0)),
        "peak_rss_mb": round(outcome["peak_rss_mb"], 1),
        "kills": len(kills),
        "kills_without_resume": sum(1 for k in kills if k.resume_s is None),
        "restart_s_max": _max(k.restart_s for k in kills),
        "resume_s_max": _max(k.resume_s for k in kills),
        "restart_s": [k.restart_s for k in kills], "resume_s": [k.resume_s for k in kills],
        "target_runs": outcome["runs"], "persist_caught_up": outcome["caught_up"],
        "trades_sent": live["trades_sent"], "trades_stored_before_backfill": live["trades_stored"],
        "trades_unexpected": live["trades_unexpected"], "gaps_opened": live["gaps_opened"],
        "gaps_open_at_end": live["gaps_open_at_end"],
        "prefect_server_healthy_s": round(outcome["server_healthy_s"], 1),
        "wall_s": round(time.monotonic() - started, 1),
    }  # fmt: skip


def read_keys(directory: Path, settings: Settings, opts: DrillOptions, day: date) -> set[Key]:
    """Trade keys the collectors READ: every journal segment (kept by the drill), decoded."""
    frames = [f for path in journal.segments(directory) for f in journal.read_journal(path)]
    batch = journal.decode(frames, REGISTRY[opts.broker], settings, day)
    return {(t.symbol, t.cum_volume) for t in batch.trades}


def _max(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return round(max(present), 1) if present else None


def _worker_env(
    settings: Settings, broker: Broker, redis_url: str, knobs: Knobs, work: Path,
    session: dict[str, Any],
) -> dict[str, str]:  # fmt: skip
    """The worker's environment, computed when it starts: the session ends ``session_s``
    from now (the collectors' and persist's session-end override)."""
    end = datetime.now(UTC) + timedelta(seconds=knobs.session_s)
    session["end"] = end
    section = getattr(settings, broker.value)
    apps = [
        {"name": a.name, "app_key": a.app_key.get_secret_value(),
         "app_secret": a.app_secret.get_secret_value()}
        for a in section.apps
    ]  # fmt: skip
    prefix = f"TICKGUARD_{broker.value.upper()}__"
    database_url = settings.database_url.get_secret_value() if settings.database_url else ""
    return {
        "PREFECT_WORKER_QUERY_SECONDS": str(knobs.worker_poll_s),
        "TICKGUARD_DATABASE_URL": database_url,
        "TICKGUARD_REDIS_URL": redis_url,
        "TICKGUARD_DATA_DIR": str(work / "data"),
        "TICKGUARD_SINK__STREAM_PREFIX": settings.sink.stream_prefix,
        "TICKGUARD_ORCHESTRATION__SESSION_END_OVERRIDE": end.isoformat(),
        "TICKGUARD_ORCHESTRATION__RESTART_DELAY_BASE_S": str(knobs.restart_delay_base_s),
        "TICKGUARD_ORCHESTRATION__RESTART_MAX": str(knobs.restart_max),
        journal.KEEP_ENV: "1",
        "TICKGUARD_METRICS__COLLECTOR_PORT": "0",
        "TICKGUARD_METRICS__KIWOOM_COLLECTOR_PORT": "0",
        "TICKGUARD_METRICS__PERSIST_PORT": "0",
        f"{prefix}WS_URL": section.ws_url,
        f"{prefix}REST_URL": section.rest_url,
        f"{prefix}APPS": json.dumps(apps),
    }


async def _session(
    prefect: PrefectRig, settings: Settings, opts: DrillOptions, knobs: Knobs, target: str,
    database_url: str, redis_url: str, end: datetime,
) -> dict[str, Any]:  # fmt: skip
    from prefect.client.orchestration import get_client
    from prefect.deployments.flow_runs import arun_deployment

    collector = COLLECTORS[opts.broker.value]
    name = collector if target == "collector" else PERSIST
    rss = ProcessRss()
    sampler = asyncio.create_task(rss.run(prefect))
    kills: list[Kill] = []
    try:
        async with get_client() as client:
            fault = {"env": {**pool_job_env(settings), PERSIST_FAULT_ENV: "kill-after-commit:5"}}
            persist = await arun_deployment(
                PERSIST, timeout=0, as_subflow=False,
                job_variables=fault if target == "persist" else None,
            )  # fmt: skip
            first = await arun_deployment(collector, timeout=0, as_subflow=False)
            # The run this drill started, once it has a process (a self-killing persist may
            # be Crashed again before a poll would see it Running).
            mine = first.id if target == "collector" else persist.id
            run = await until(lambda: _started(client, mine), START_TIMEOUT_S, name)
            await until(lambda: _stored_after(database_url, "stored_at", 0), START_TIMEOUT_S,
                        "the first trades stored")  # fmt: skip
            seen = {str(run.id)}
            for i in range(knobs.kills):
                precise = target == "persist" and i == 0
                if not precise:
                    await asyncio.sleep(knobs.kill_after_s)
                if time.time() + knobs.restart_room_s > end.timestamp():
                    # A kill whose restart could not collect before the close proves nothing.
                    log.warning("kill drill: no time left in the session for kill %d", i + 1)
                    break
                kill = await _kill(client, run, precise)
                kills.append(kill)
                column = "received_at" if target == "collector" else "stored_at"
                run = await until(lambda: _running(client, name, seen), RESTART_TIMEOUT_S,
                                  f"{name} to run again after kill {i + 1}")  # fmt: skip
                kill.restart_s = time.time() - kill.at
                seen.add(str(run.id))
                try:
                    stored = partial(_stored_after, database_url, column, kill.at)
                    await until(stored, RESTART_TIMEOUT_S, f"data stored again after kill {i + 1}")
                except DrillError as exc:  # reported (resume_s None), not hidden
                    log.error("%s", exc)
                    break
                kill.resume_s = time.time() - kill.at
                log.info("kill %d: Running again after %.1f s, data after %.1f s",
                         i + 1, kill.restart_s, kill.resume_s)  # fmt: skip
            await until(lambda: _collector_done(client, collector, end), end.timestamp()
                        - time.time() + 120, "the collector to end with the session")  # fmt: skip
            caught_up = await asyncio.to_thread(wait_persisted, redis_url, settings)
            runs = len(await runs_of(client, name))
            if await cancel_live_runs(client, [PERSIST, collector]):
                log.warning("kill drill: some runs did not finish cancelling")
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    return {"kills": kills, "caught_up": caught_up, "runs": runs, "peak_rss_mb": rss.peak_mb,
            "server_healthy_s": prefect.server_healthy_s}  # fmt: skip


async def _started(client: Any, run_id: Any) -> Any:
    """The run, once a worker has started its process."""
    run = await client.read_flow_run(run_id)
    return run if pid_of(run) else None


async def _running(client: Any, deployment: str, seen: set[str]) -> Any:
    """A Running run of ``deployment`` with a process, not one of ``seen``."""
    for run in await runs_of(client, deployment):
        if str(run.id) not in seen and run.state.type.value == "RUNNING" and pid_of(run):
            return run
    return None


async def _kill(client: Any, run: Any, precise: bool) -> Kill:
    """SIGKILL the run's process; ``precise``: it kills itself after a commit — wait for it."""
    pid = pid_of(run)
    assert pid is not None
    if precise:
        await until(lambda: _gone(pid), RESTART_TIMEOUT_S, "persist to kill itself after commit")
        return Kill(await _crashed_at(client, run), str(run.id))
    at = time.time()
    os.kill(pid, signal.SIGKILL)
    log.warning("kill drill: SIGKILL %s (pid %d)", run.name, pid)
    return Kill(at, str(run.id))


async def _crashed_at(client: Any, run: Any) -> float:
    """When the worker saw the self-killed run end (its Crashed state), else now: the drill
    notices the death only when it looks, possibly later."""
    seen = time.time()
    for _ in range(40):
        state = (await client.read_flow_run(run.id)).state
        if state is not None and state.is_final():
            return min(seen, float(state.timestamp.timestamp()))
        await asyncio.sleep(0.25)
    return seen


async def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _collector_done(client: Any, deployment: str, end: datetime) -> bool:
    if time.time() < end.timestamp():
        return False
    return not any(
        r.state.type.value in ("RUNNING", "PENDING") for r in await runs_of(client, deployment)
    )
