"""A long-lived completeness run follows the session minute by minute up to the close, then
posts the digest once; windows come from the schedule, the clock only says when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from quality_rows import Tape, kst, minutes, store

from fakes.slack import FakeSlack
from tickguard.calendar import TradingCalendar
from tickguard.quality.follow import follow_session
from tickguard.quality.window import CheckWindow
from tickguard.settings import Settings, SlackSettings


async def test_follow_checks_each_minute_to_the_close_and_posts_one_digest(db_url: str) -> None:
    store(db_url, trades=Tape("005930").trades(minutes("14:00", "15:10")))
    first = CheckWindow(kst("15:24", second=0), kst("15:25", second=0))
    ready = first.end + timedelta(seconds=10)
    with FakeSlack() as slack:
        settings = Settings(slack=SlackSettings(webhook_url=SecretStr(slack.webhook_url)))
        summary = await follow_session(
            settings, db_url, first, ["kis"], ["005930"],
            calendar=TradingCalendar(), clock=lambda: ready.astimezone(UTC) + timedelta(hours=1),
        )  # fmt: skip
        posts = slack.posts
    assert summary.minutes == 7  # 15:24 … 15:30 (the minute after the close)
    assert summary.last is not None and summary.last.window.start == kst("15:30", second=0)
    # the run began at 15:24: it finds the empty run since 15:11 (before the closing
    # auction) at once, escalates it once at 15:26 (15 min open in session), then the digest
    assert summary.gaps_opened == 1
    assert [p["payload"]["text"] for p in posts] == [
        "Data gap: kis completeness (1 symbol(s))",
        "Still open after 15 min: kis completeness",
        "Completeness digest 2026-11-25",
    ]


async def test_follow_waits_for_a_minute_to_be_ready(db_url: str) -> None:
    first = CheckWindow(kst("15:29", second=0), kst("15:30", second=0))
    now = first.end.astimezone(UTC)
    started = datetime.now(UTC)
    summary = await follow_session(
        Settings(), db_url, first, ["kis"], ["005930"], calendar=TradingCalendar(),
        clock=lambda: now + (datetime.now(UTC) - started), settle=timedelta(seconds=-59.7),
    )  # fmt: skip
    waited = (datetime.now(UTC) - started).total_seconds()
    assert summary.minutes == 2 and waited >= 0.25
