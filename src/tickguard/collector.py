"""A collector: plan → one supervised session per app key → bounded queue → batches → sink.

This is the plain function the Prefect deployment (a later issue) and ``tickguard collect``
call with explicit arguments; nothing here knows Prefect. It refuses a plan that cannot fit
before any socket opens, runs until ``stop_event`` is set (or ``stop_at`` passes), and then
shuts down in order — readers stop, the batcher flushes what is queued into the sink, the
recorders close their files — so a deliberate stop loses nothing that was received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from tickguard.brokers.base import Channel
from tickguard.brokers.registry import REGISTRY
from tickguard.gctune import hot_path_gc
from tickguard.metrics import CollectorSource, CountingSink, collector_port, serving
from tickguard.models import KST, Broker
from tickguard.settings import Settings
from tickguard.stream.backoff import Backoff
from tickguard.stream.batcher import Batcher, BatcherStats, EventQueue, Sink
from tickguard.stream.connection import FrameRecorder
from tickguard.stream.journal import FrameJournal, JournaledSink, Tee, recover
from tickguard.stream.keylock import KeyGuard
from tickguard.stream.planner import SessionPlan, plan_subscriptions
from tickguard.stream.recorder import RawRecorder, RecorderStats
from tickguard.stream.stats import SessionStats, merge
from tickguard.stream.supervisor import Supervisor

log = logging.getLogger(__name__)

DEFAULT_CHANNELS = (Channel.TRADES, Channel.BOOK)


@dataclass(slots=True)
class CollectorReport:
    broker: str
    started_at: datetime
    ended_at: datetime | None = None
    sessions: list[SessionStats] = field(default_factory=list)
    batcher: BatcherStats = field(default_factory=BatcherStats)
    recorders: list[RecorderStats] = field(default_factory=list)
    queue_high_water: int = 0
    queue_waits: int = 0

    @property
    def totals(self) -> dict[str, Any]:
        return merge(self.sessions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "totals": self.totals,
            "sessions": [s.as_dict() for s in self.sessions],
            "batcher": asdict(self.batcher),
            "recorders": [asdict(r) for r in self.recorders],
            "queue_high_water": self.queue_high_water,
            "queue_waits": self.queue_waits,
        }


def make_plan(
    settings: Settings, broker: Broker, symbols: Sequence[str], channels: Sequence[Channel]
) -> list[SessionPlan]:
    """The subscription plan for ``broker``; PlanError when it cannot fit (nothing connects)."""
    traits = REGISTRY[broker]
    return plan_subscriptions(
        symbols, channels, traits.credentials(settings), traits.max_registrations(settings)
    )


async def run_collector(
    settings: Settings,
    broker: Broker,
    symbols: Sequence[str],
    *,
    sink: Sink,
    stop_event: asyncio.Event,
    channels: Sequence[Channel] = DEFAULT_CHANNELS,
    lock_redis: aioredis.Redis | None = None,
    record_dir: Path | None = None,
    journal_dir: Path | None = None,
    in_session: Callable[[], bool] | None = None,
    trading_day: date | None = None,
    stop_at: datetime | None = None,
    http: httpx.AsyncClient | None = None,
    rng: random.Random | None = None,
    on_started: Callable[[list[Supervisor]], None] | None = None,
) -> CollectorReport:
    """Collect ``symbols`` from ``broker`` into ``sink`` until stopped; return the figures.

    ``lock_redis`` guards app keys across processes (None: this process only);
    ``record_dir`` enables the raw recorder; ``journal_dir`` the receive journal (what was
    read survives a SIGKILL and is replayed by the next run: :mod:`tickguard.stream.journal`);
    ``on_started`` receives the supervisors (the drill and the metrics layer read their live
    stats).
    """
    plans = make_plan(settings, broker, symbols, channels)
    report = CollectorReport(broker=broker.value, started_at=datetime.now(UTC))
    queue = EventQueue(settings.stream.queue_max_events)
    journals = [
        FrameJournal(journal_dir, f"{broker.value}-{p.key_name}") for p in plans if journal_dir
    ]
    # per-batch counts for the metrics endpoint; the journals learn what the sink holds
    counting = CountingSink(JournaledSink(sink, journals) if journals else sink)
    batcher = Batcher(queue, counting, settings.stream)
    guard = KeyGuard(lock_redis, settings.sink.stream_prefix)
    recorders = [_recorder(record_dir, settings, broker, p) for p in plans]
    taps = [_tap(rec, journals[i] if journals else None) for i, rec in enumerate(recorders)]
    own_http = http is None
    client = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0))
    supervisors = [
        Supervisor(
            REGISTRY[broker], settings, plan, http=client, queue=queue, key_guard=guard,
            recorder=tap, in_session=in_session, trading_day=trading_day,
            backoff=Backoff.from_settings(settings.stream, rng),
        )
        for plan, tap in zip(plans, taps, strict=True)
    ]  # fmt: skip
    log.info("collector %s: %d symbols in %d sessions", broker.value, len(set(symbols)), len(plans))
    if on_started is not None:
        on_started(supervisors)
    metrics = settings.metrics
    source = CollectorSource(broker, supervisors, queue, counting)
    clean = False
    try:
        day = trading_day or datetime.now(KST).date()
        for journal, supervisor in zip(journals, supervisors, strict=False):
            # an earlier process on this app key died with frames it had read: replay them
            await recover(journal, supervisor.gaps, sink, REGISTRY[broker], settings, day)
        with (
            serving(metrics.host, collector_port(metrics, broker), source, enabled=metrics.enabled),
            hot_path_gc(),
        ):
            await _run(supervisors, batcher, stop_event, stop_at)
        clean = True
    finally:
        for journal in journals:
            journal.close(clean=clean)
        for rec in recorders:
            if rec is not None:
                rec.close()
        if own_http:
            await client.aclose()
        report.ended_at = datetime.now(UTC)
        report.sessions = [s.stats for s in supervisors]
        report.batcher = batcher.stats
        report.recorders = [r.stats for r in recorders if r is not None]
        report.queue_high_water, report.queue_waits = queue.high_water, queue.waits
    log.info("collector %s stopped: %s", broker.value, _summary(report))
    return report


def _recorder(
    record_dir: Path | None, settings: Settings, broker: Broker, plan: SessionPlan
) -> RawRecorder | None:
    if record_dir is None:
        return None
    return RawRecorder(record_dir, settings.stream, label=f"{broker.value}-{plan.key_name}")


def _tap(recorder: RawRecorder | None, journal: FrameJournal | None) -> FrameRecorder | None:
    """What the connection hands every frame to: recorder, journal, both or nothing."""
    if recorder is not None and journal is not None:
        return Tee(recorder, journal)
    return recorder or journal


async def _run(
    supervisors: list[Supervisor],
    batcher: Batcher,
    stop_event: asyncio.Event,
    stop_at: datetime | None,
) -> None:
    """Run readers and the batcher; stop readers first, then let the batcher flush."""
    batch_task = asyncio.create_task(batcher.run(), name="batcher")
    tasks = [
        asyncio.create_task(s.run(stop_event), name=f"session-{s.plan.key_name}")
        for s in supervisors
    ]
    timer = asyncio.create_task(_stop_at(stop_event, stop_at)) if stop_at else None
    try:
        pending: set[asyncio.Task[Any]] = {*tasks, batch_task}
        while pending - {batch_task}:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if batch_task in done:
                # The sink failed: readers would block on a full queue forever. Stop them.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                batch_task.result()
                return
        for task in tasks:
            task.result()
        await batcher.close()
        await batch_task
    finally:
        if timer is not None:
            timer.cancel()
        leftovers: list[asyncio.Task[Any]] = [*tasks, batch_task]
        for leftover in leftovers:
            if not leftover.done():
                leftover.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, batch_task, return_exceptions=True)


async def _stop_at(stop_event: asyncio.Event, when: datetime) -> None:
    delay = (when - datetime.now(UTC)).total_seconds()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop_event.wait(), max(0.0, delay))
    stop_event.set()


def _summary(report: CollectorReport) -> str:
    t = report.totals
    return (
        f"{t.get('trades', 0)} trades, {t.get('books', 0)} books, {t.get('drops', 0)} drops, "
        f"{t.get('gaps_opened', 0)} gaps opened, {t.get('quarantined', 0)} quarantined"
    )
