"""The ``completeness`` Prefect flow: wiring around :func:`run_completeness`.

Scheduled every minute of the session (``prefect.yaml``), it checks the minute that closed
before its *scheduled* start (``prefect.runtime.flow_run.scheduled_start_time``), never
``now()``: late runs executed in a burst still check their own minutes. Explicit parameters
(``trading_day``; ``start``/``end``; ``symbols``; ``broker``) serve manual reruns from the UI
or CLI. A holiday or an instant outside the session ends at once as "market closed", before
Great Expectations is imported. Each run leaves a table artifact linking the Data Docs.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime
from typing import Any

from prefect import flow
from prefect.states import Completed

from tickguard.calendar import TradingCalendar
from tickguard.errors import TickguardError
from tickguard.models import Broker
from tickguard.orchestration import gate, runtime
from tickguard.quality.completeness import CompletenessResult, run_completeness
from tickguard.quality.follow import follow_session
from tickguard.quality.window import CheckWindow
from tickguard.settings import Settings, load_settings
from tickguard.stack import resolve_database_url
from tickguard.store import migrate

log = logging.getLogger(__name__)


def resolve_window(
    calendar: TradingCalendar,
    scheduled: datetime | None,
    trading_day: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> CheckWindow | str:
    """The window to check, or why there is none (a closed market)."""
    if start or end:
        if not (start and end):
            raise ValueError("give both start and end (ISO, naive = KST), or neither")
        return CheckWindow.of(gate.parse_instant(start), gate.parse_instant(end))
    if trading_day:
        session = calendar.session(date.fromisoformat(trading_day))
        if session is None:
            return f"market closed: {trading_day} is not an XKRX trading day"
        return CheckWindow.of(session.opening_auction_start, session.close)
    return CheckWindow.last_closed_minute(scheduled or datetime.now(UTC))


def _scheduled_start() -> datetime | None:
    from prefect.runtime import flow_run

    value = flow_run.scheduled_start_time
    return value if isinstance(value, datetime) else None


def _run_url(base: str, run: Any) -> str:
    """Link to this run in the Prefect UI (settings' base URL, else PREFECT_UI_URL)."""
    if run is None:
        return ""
    if base:
        return f"{base.rstrip('/')}/runs/flow-run/{run.id}"
    return runtime.run_link(run.id) or ""


async def _artifact(result: CompletenessResult) -> None:
    if runtime.current_run() is None:
        return
    from prefect.artifacts import acreate_table_artifact

    docs = next((r.gx.docs_index for r in result.reports if r.gx and r.gx.docs_index), None)
    link = f" · [Data Docs]({docs.as_uri()})" if docs else ""
    opened = sum(len(r.changes.opened) for r in result.reports)
    await acreate_table_artifact(
        table=result.table() or [{"window": result.window.label(), "status": "market closed"}],
        key="completeness",
        description=f"completeness {result.window.label()}: {opened} gap(s) opened{link}",
    )


async def _follow(
    settings: Settings,
    db_url: str,
    first: CheckWindow,
    brokers: list[str],
    symbols: list[str],
    calendar: TradingCalendar,
    run_url: str,
) -> Any:
    if calendar.session(first.trading_day) is None:
        reason = f"market closed: {first.trading_day.isoformat()} is not an XKRX trading day"
        log.info("completeness: %s", reason)
        return Completed(message=reason)
    summary = await follow_session(
        settings, db_url, first, brokers, symbols, calendar=calendar, run_url=run_url
    )
    if runtime.current_run() is not None:
        from prefect.artifacts import acreate_table_artifact

        rows = [{k: str(v) for k, v in gap.items()} for gap in summary.opened]
        await acreate_table_artifact(
            table=rows or [{"minutes_checked": summary.minutes, "gaps_opened": 0}],
            key="completeness-session",
            description=f"completeness: {summary.minutes} minute(s) checked,"
            f" {summary.gaps_opened} gap(s) opened, {summary.slack_messages} Slack message(s)",
        )
    return {"minutes": summary.minutes, "gaps_opened": summary.gaps_opened,
            "slack_messages": summary.slack_messages}  # fmt: skip


@flow(name="completeness", persist_result=False, log_prints=False)
async def completeness(
    trading_day: str | None = None,
    start: str | None = None,
    end: str | None = None,
    symbols: list[str] | None = None,
    broker: str | None = None,
    run_suites: bool = True,
    follow: bool = False,
) -> Any:
    """Check the last closed minute (or the given window), update gaps, tell Slack.

    ``follow`` (the daily schedule): keep checking each following minute as it closes,
    until the session's close, in this one process (see ``tickguard.quality.follow``)."""
    settings = load_settings()
    runtime.package_logging(settings.log_level)
    calendar = TradingCalendar()
    window = resolve_window(calendar, _scheduled_start(), trading_day, start, end)
    if isinstance(window, str):
        log.info("completeness: %s", window)
        return Completed(message=window)
    brokers = [Broker(broker).value] if broker else [b.value for b in Broker]
    db_url = await asyncio.to_thread(resolve_database_url, settings)
    if not await asyncio.to_thread(migrate.is_current, db_url):
        raise TickguardError("database schema is not current: run `tickguard db upgrade`")
    run = runtime.current_run()
    run_url = _run_url(settings.quality.prefect_ui_url, run)
    if follow:
        return await _follow(settings, db_url, window, brokers, symbols or [], calendar, run_url)
    result = await asyncio.to_thread(
        run_completeness,
        settings,
        db_url,
        window,
        brokers,
        symbols or [],
        calendar=calendar,
        run_url=run_url,
        validate=run_suites,
    )
    await _artifact(result)
    return result.as_json()
