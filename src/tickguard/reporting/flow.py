"""The ``daily-report`` Prefect flow: the evening artifact and the day's Slack digest.

Scheduled at 18:00 KST on weekdays (``prefect.yaml``), after backfill has labelled the
gaps. The calendar decides first: on a holiday the run ends at once, Completed with
"market closed", before any database connection (``force`` reports anyway). The digest
goes through :func:`tickguard.quality.digest.post_digest`, claimed once per day, so a
rerun refreshes the artifact and posts nothing new.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime
from typing import Any

import psycopg
from prefect import flow
from prefect.states import Completed

from tickguard.alerting.slack import SlackPoster
from tickguard.calendar import TradingCalendar
from tickguard.models import KST
from tickguard.orchestration import runtime
from tickguard.quality.digest import post_digest
from tickguard.reporting import daily
from tickguard.reporting.daily import DailyReport, markdown
from tickguard.settings import Settings, load_settings
from tickguard.stack import resolve_database_url
from tickguard.store.migrate import libpq_url

log = logging.getLogger(__name__)


def _report_and_digest(settings: Settings, day: date, run_url: str) -> tuple[DailyReport, int]:
    """Blocking part (run in a thread): count the day, then claim and post its digest."""
    url = libpq_url(resolve_database_url(settings))
    with psycopg.connect(url, autocommit=True) as conn:
        report = daily.daily_report(conn, day)
        posted = post_digest(conn, SlackPoster(settings.slack), day, run_url)
    return report, posted


@flow(name="daily-report", persist_result=False, log_prints=False)
async def daily_report(day: str | None = None, force: bool = False) -> Any:
    """Report ``day`` (default: today in Seoul) as a markdown artifact and a Slack digest."""
    settings = load_settings()
    runtime.package_logging(settings.log_level)
    the_day = date.fromisoformat(day) if day else datetime.now(KST).date()
    if not force and TradingCalendar().session(the_day) is None:
        reason = f"market closed: {the_day.isoformat()} is not an XKRX trading day"
        log.info("daily-report: %s", reason)
        return Completed(message=reason)
    run = runtime.current_run()
    run_url = (runtime.run_link(run.id) or "") if run is not None else ""
    report, posted = await asyncio.to_thread(_report_and_digest, settings, the_day, run_url)
    if run is not None:
        from prefect.artifacts import acreate_markdown_artifact

        await acreate_markdown_artifact(
            key="daily-report", markdown=markdown(report), description=f"daily report {the_day}"
        )
    log.info("daily-report %s: %d symbol row(s), digest posted %d", the_day, len(report.per_symbol),
             posted)  # fmt: skip
    return {**report.as_json(), "digest_posted": posted}
