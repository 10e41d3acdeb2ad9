"""The ``preflight`` deployment's flow: 08:30 KST on trading days → Slack + Prefect artifact.

Wiring only: :func:`~tickguard.preflight.run_preflight` does the work. A no-go ends the run
Failed (red in the UI, findable by automations); degraded ends Completed with the problems in
its message. On a market holiday the run ends at once without a Slack message.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import Completed, Failed

from tickguard.calendar import TradingCalendar
from tickguard.errors import SettingsError
from tickguard.models import KST
from tickguard.preflight.model import PreflightReport, Verdict
from tickguard.preflight.notify import post_verdict
from tickguard.preflight.runner import run_preflight
from tickguard.settings import load_settings

log = logging.getLogger(__name__)

PROJECT_ENV = "TICKGUARD_PROJECT_DIR"


async def _artifact(report: PreflightReport) -> None:
    from prefect.artifacts import acreate_table_artifact

    await acreate_table_artifact(
        table=[c.as_dict() for c in report.checks],
        key="preflight",
        description=f"**preflight: {report.verdict.value}** in {report.elapsed_s:.1f} s",
    )


@flow(name="preflight", persist_result=False, log_prints=False)
async def preflight(
    symbols: list[str] | None = None, force: bool = False, day: str | None = None
) -> Any:
    """Look for every failure of the incident before the open; post the verdict.

    ``day`` (YYYY-MM-DD, default today in Asia/Seoul) is the trading day the verdict is for;
    on a market holiday the run ends at once as "market closed" unless ``force`` (a manual
    rerun before a special session).
    """
    logging.getLogger("tickguard").setLevel(logging.INFO)
    the_day = date.fromisoformat(day) if day else datetime.now(UTC).astimezone(KST).date()
    if not force and not TradingCalendar().is_trading_day(the_day):
        return Completed(message=f"market closed: {the_day} is not a trading day")
    project_dir = Path(os.environ.get(PROJECT_ENV) or Path.cwd())
    report = await run_preflight(project_dir, symbols=symbols)
    try:
        post_verdict(load_settings().slack, report)
    except SettingsError as exc:  # already a failed check; Slack settings unreadable
        log.error("preflight verdict not posted: %s", exc)
    await _artifact(report)
    summary = "; ".join(f"{c.name}: {c.value}" for c in report.problems())[:1000]
    if report.verdict is Verdict.NO_GO:
        return Failed(message=f"no-go: {summary}")
    return Completed(message=f"{report.verdict.value}: {summary or 'all checks passed'}")
