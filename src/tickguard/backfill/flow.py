"""The ``backfill`` Prefect flow: thin wiring around :func:`~tickguard.backfill.run.run_backfill`.

Explicit parameters (day, symbols, broker, optional ``until``); the market-closed path comes
from the calendar inside ``run_backfill`` (a holiday or a session not yet closed ends at
once, Completed with the reason). Publishes the per-symbol table as a markdown artifact and
posts the Slack digest. Errors of tickguard's tree fail the run with their message; a
throttled broker never does (the pacer retries).
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from prefect import flow

from tickguard.alerting.slack import SlackPoster
from tickguard.backfill.report import markdown, post_digest
from tickguard.backfill.run import run_backfill
from tickguard.models import KST, Broker
from tickguard.orchestration import runtime
from tickguard.orchestration.gate import parse_instant
from tickguard.settings import load_settings
from tickguard.stack import resolve_database_url, resolve_redis_url

log = logging.getLogger(__name__)


@flow(name="backfill", log_prints=False)
async def backfill(
    day: str | None = None,
    symbols: list[str] | None = None,
    broker: str = "kis",
    until: str | None = None,
) -> dict[str, object]:
    """Refill, prove and label ``day`` (default: today in Seoul) for ``symbols``."""
    from prefect.artifacts import acreate_markdown_artifact

    settings = load_settings()
    runtime.package_logging(settings.log_level)
    the_day = date.fromisoformat(day) if day else datetime.now(KST).date()
    report = await run_backfill(
        settings, day=the_day, symbols=symbols or [], broker=Broker(broker),
        database_url=resolve_database_url(settings), redis_url=resolve_redis_url(settings),
        until=parse_instant(until) if until else None,
    )  # fmt: skip
    await acreate_markdown_artifact(
        key=f"backfill-{broker}", markdown=markdown(report), description="backfill per symbol"
    )
    if report.status == "done":  # a holiday is no news: the artifact says it
        post_digest(report, SlackPoster(settings.slack))
    return report.totals()
