"""The collector deployments' flow: gate → restart budget → collect until the close → report.

``collectors/kis.py`` and ``collectors/kiwoom.py`` only import the flows defined here. The
body calls :func:`tickguard.collector.run_collector` with explicit arguments; everything
Prefect-specific (budget through the API, liveness events, the artifact) sits around it.
Parameters are explicit for manual reruns: symbols, shard (app-key names), day, until.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.states import Cancelled, Completed, Failed

from tickguard.calendar import Phase, TradingCalendar
from tickguard.collector import CollectorReport, run_collector
from tickguard.errors import SettingsError
from tickguard.models import Broker
from tickguard.orchestration import gate, liveness, runtime, supervise
from tickguard.settings import Settings, load_settings
from tickguard.sinks.redis_stream import RedisStreamSink, redis_client
from tickguard.stack import resolve_redis_url
from tickguard.stream.supervisor import Supervisor

log = logging.getLogger(__name__)

DEFAULT_SYMBOLS = [
    "005930", "000660", "069500", "122630", "035420",
    "114800", "005380", "252670", "373220", "233740",
]  # fmt: skip
FAULT_ENV = "TICKGUARD_COLLECTOR_FAULT"
"""``kill-on-start`` makes the process SIGKILL itself after the gate (restart-budget tests)."""


def shard_settings(settings: Settings, broker: Broker, shard: str | None) -> Settings:
    """Settings narrowed to the app keys named in ``shard`` (comma-separated; None = all)."""
    if not shard:
        return settings
    names = {n.strip() for n in shard.split(",") if n.strip()}
    section = getattr(settings, broker.value)
    chosen = [app for app in section.apps if app.name in names]
    missing = names - {app.name for app in chosen}
    if missing:
        raise SettingsError(f"shard names unknown {broker.value} app keys: {sorted(missing)}")
    return settings.model_copy(update={broker.value: section.model_copy(update={"apps": chosen})})


async def collect(
    broker: Broker,
    symbols: list[str],
    shard: str | None,
    day: str | None,
    until: str | None,
) -> State[Any] | dict[str, Any]:
    """The whole run; returns a state for the quick exits, the report totals otherwise."""
    settings = shard_settings(load_settings(), broker, shard)
    runtime.package_logging(settings.log_level)
    calendar = TradingCalendar()
    window = gate.session_window(
        calendar, datetime.now(UTC),
        day=datetime.fromisoformat(day).date() if day else None,
        until=gate.parse_instant(until) if until else None,
        override=settings.orchestration.session_end_override,
    )  # fmt: skip
    if isinstance(window, gate.Closed):
        log.info("%s collector: %s", broker.value, window.reason)
        return Completed(message=window.reason)
    log.info("%s collector: collecting until %s (%s)", broker.value, window.end, window.reason)
    redis = redis_client(resolve_redis_url(settings), 2.0)
    try:
        verdict = await supervise.restart_gate(settings, f"{broker.value} collector", redis)
        if verdict is not None and not verdict.allowed:
            return Cancelled(message=f"restart budget exhausted ({verdict.failures} failures)")
        _fault_hook()
        report, fenced = await _collect(settings, broker, symbols, window, calendar, redis)
    finally:
        await redis.aclose()
    await _artifact(broker, report)
    if fenced:
        # Type FAILED so the restart budget counts it; named "Fenced" so its event
        # (prefect.flow-run.Fenced) does not trigger a second rerun — the automation that
        # ended this run already started the replacement.
        return Failed(name="Fenced", message=f"stopped by the orchestrator: {fenced}")
    return report.totals


def _fault_hook() -> None:
    if os.environ.get(FAULT_ENV) == "kill-on-start":
        log.error("%s=kill-on-start: killing this collector process", FAULT_ENV)
        os.kill(os.getpid(), signal.SIGKILL)


async def _collect(
    settings: Settings,
    broker: Broker,
    symbols: list[str],
    window: gate.Window,
    calendar: TradingCalendar,
    redis: Any,
) -> tuple[CollectorReport, str | None]:
    """Run the collector; the report, and the fence reason when Prefect ended the run."""
    stop = asyncio.Event()
    session = (
        None
        if window.reason.startswith(("explicit", "session override"))
        else (calendar.session(window.day))
    )

    def in_phase() -> bool:
        return session is None or session.phase_at(datetime.now(UTC)) is not Phase.CLOSED

    started: list[asyncio.Task[str | None]] = []
    url = resolve_redis_url(settings)
    async with RedisStreamSink.from_settings(
        settings, url, name=f"{broker.value}-collector"
    ) as raw:
        sink = liveness.WatchedSink(raw)

        def on_started(supervisors: list[Supervisor]) -> None:
            started.append(
                asyncio.create_task(_signal(settings, broker, supervisors, sink, in_phase, stop))
            )

        with runtime.stop_on_sigterm(stop.set):
            try:
                report = await run_collector(
                    settings, broker, symbols, sink=sink, stop_event=stop, lock_redis=redis,
                    record_dir=settings.data_dir / "raw", journal_dir=settings.data_dir / "journal",
                    in_session=in_phase,
                    trading_day=window.day, stop_at=window.end, on_started=on_started,
                )  # fmt: skip
            finally:
                stop.set()
                outcomes = await asyncio.gather(*started, return_exceptions=True)
        await raw.drain(10.0)
    fenced = next((o for o in outcomes if isinstance(o, str)), None)
    return report, fenced


async def _signal(
    settings: Settings,
    broker: Broker,
    supervisors: list[Supervisor],
    sink: liveness.WatchedSink,
    in_phase: Any,
    stop: asyncio.Event,
) -> str | None:
    """The liveness loop bound to this run (no-op outside a flow run)."""
    run = runtime.current_run()
    if run is None:
        return None
    from prefect.client.orchestration import get_client
    from prefect.events import emit_event
    from prefect.events.related import related_resources_from_run_context

    async with get_client() as client:
        related = await related_resources_from_run_context(client)
        resource = {
            "prefect.resource.id": f"prefect.flow-run.{run.id}",
            "prefect.resource.name": run.name,
            "tickguard.broker": broker.value,
        }

        def emit(event: str, payload: dict[str, Any]) -> None:
            emit_event(event, resource=resource, related=related, payload=payload)

        async def fenced() -> str | None:
            return await runtime.own_state_is_final(client, run.id)

        return await liveness.liveness_loop(
            settings.orchestration.liveness_interval_s,
            lambda: sum(s.stats.data_frames for s in supervisors),
            sink, emit, quiet_ok=lambda: not in_phase(), fenced=fenced, stop=stop,
        )  # fmt: skip


async def _artifact(broker: Broker, report: CollectorReport) -> None:
    if runtime.current_run() is None:
        return
    from prefect.artifacts import acreate_table_artifact

    rows = [s.as_dict() for s in report.sessions]
    totals = report.totals
    await acreate_table_artifact(
        table=rows or [{"key": "-", **totals}],
        key=f"{broker.value}-collector-report",
        description=(
            f"**{broker.value} collector** {report.started_at:%Y-%m-%d %H:%M}–"
            f"{report.ended_at or datetime.now(UTC):%H:%M} UTC: {totals.get('trades', 0)} trades, "
            f"{totals.get('books', 0)} books, {totals.get('drops', 0)} drops, "
            f"{totals.get('gaps_opened', 0)} gaps, {totals.get('quarantined', 0)} quarantined"
        ),
    )


@flow(name="kis-collector", persist_result=False, log_prints=False)
async def collect_kis(
    symbols: list[str] = DEFAULT_SYMBOLS,
    shard: str | None = None,
    day: str | None = None,
    until: str | None = None,
) -> Any:
    """Collect KIS trades and books until the session closes (or ``until``, HH:MM KST / ISO)."""
    return await collect(Broker.KIS, symbols, shard, day, until)


@flow(name="kiwoom-collector", persist_result=False, log_prints=False)
async def collect_kiwoom(
    symbols: list[str] = DEFAULT_SYMBOLS,
    shard: str | None = None,
    day: str | None = None,
    until: str | None = None,
) -> Any:
    """Collect Kiwoom trades and books until the session closes (or ``until``)."""
    return await collect(Broker.KIWOOM, symbols, shard, day, until)
