"""The persist deployment's flow: move the stream into PostgreSQL until after the close.

Persist is synchronous (psycopg, blocking XREADGROUP), so it runs in a worker thread while
the flow waits for the end of the window (the session's close plus
``persist_drain_min``); SIGTERM or the window's end sets its stop event and it finishes the
batch in hand. Scale-out: run more persist deployments or workers with their own
``consumer`` names; the Redis consumer group shares the entries among them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.states import Cancelled, Completed

from tickguard.calendar import TradingCalendar
from tickguard.errors import TickguardError
from tickguard.orchestration import gate, runtime, supervise
from tickguard.settings import load_settings
from tickguard.sinks.persist import Persist
from tickguard.sinks.redis_stream import redis_client
from tickguard.stack import resolve_database_url, resolve_redis_url
from tickguard.store import migrate

log = logging.getLogger(__name__)


async def run_persist(
    consumer: str | None, day: str | None, until: str | None
) -> State[Any] | dict[str, Any]:
    settings = load_settings()
    runtime.package_logging(settings.log_level)
    orch = settings.orchestration
    drain = timedelta(minutes=orch.persist_drain_min)
    override = orch.session_end_override + drain if orch.session_end_override else None
    window = gate.session_window(
        TradingCalendar(), datetime.now(UTC),
        day=datetime.fromisoformat(day).date() if day else None,
        until=gate.parse_instant(until) if until else None, override=override, extra=drain,
    )  # fmt: skip
    if isinstance(window, gate.Closed):
        log.info("persist: %s", window.reason)
        return Completed(message=window.reason)
    db_url, redis_url = resolve_database_url(settings), resolve_redis_url(settings)
    redis = redis_client(redis_url, 2.0)
    try:
        verdict = await supervise.restart_gate(settings, "persist", redis)
    finally:
        await redis.aclose()
    if verdict is not None and not verdict.allowed:
        return Cancelled(message=f"restart budget exhausted ({verdict.failures} failures)")
    if not await asyncio.to_thread(migrate.is_current, db_url):
        raise TickguardError("database schema is not current: run `tickguard db upgrade`")
    name = consumer or socket.gethostname()
    persist = Persist.from_settings(
        settings, redis_url=redis_url, database_url=db_url, consumer=name
    )
    log.info("persist %s: running until %s (%s)", name, window.end, window.reason)
    await _run_until(persist, window.end)
    counters = asdict(persist.counters)
    await _artifact(counters)
    return counters


async def _run_until(persist: Persist, end: datetime) -> None:
    task = asyncio.ensure_future(asyncio.to_thread(persist.run))
    with runtime.stop_on_sigterm(persist.stop_event.set):
        try:
            remaining = (end - datetime.now(UTC)).total_seconds()
            await asyncio.wait({task}, timeout=max(0.0, remaining))
        finally:
            persist.stop_event.set()
            await task


async def _artifact(counters: dict[str, Any]) -> None:
    if runtime.current_run() is None:
        return
    from prefect.artifacts import acreate_table_artifact

    rows = [{"counter": k, "value": str(v)} for k, v in counters.items()]
    await acreate_table_artifact(
        table=rows, key="persist-report", description="persist: stream → PostgreSQL counters"
    )


@flow(name="persist", persist_result=False, log_prints=False)
async def persist(
    consumer: str | None = None, day: str | None = None, until: str | None = None
) -> Any:
    """Store the events stream in PostgreSQL until the session's close plus the drain time."""
    return await run_persist(consumer, day, until)
