"""Slack incidents from the gap ledger, posted by the real slack-sdk to a local fake Slack:
one message per incident, escalation once, resolution once, quiet outside the session, one
digest, and nothing re-announced by a restarted desk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr
from quality_rows import DAY, kst

from fakes.slack import FakeSlack
from tickguard.alerting.incidents import IncidentDesk, Moment
from tickguard.alerting.slack import SlackPoster
from tickguard.settings import SlackSettings
from tickguard.store.migrate import libpq_url

RUN = "http://127.0.0.1:4200/runs/flow-run/abc"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as connection:
        yield connection


def desk(conn: psycopg.Connection[Any], slack: FakeSlack) -> IncidentDesk:
    poster = SlackPoster(SlackSettings(webhook_url=SecretStr(slack.webhook_url)))
    return IncidentDesk(conn, poster, "kis", timedelta(minutes=15))


def at(hhmm: str, *, in_session: bool = True, after_close: bool = False) -> Moment:
    return Moment(kst(hhmm, second=0), DAY, in_session, after_close, RUN, kst("08:30", second=0))


def add_gap(conn: psycopg.Connection[Any], symbol: str, start: datetime, cause: str) -> None:
    conn.execute(
        "INSERT INTO gaps (broker, symbol, kind, start, cause)"
        " VALUES ('kis', %s, 'trades', %s, %s)",
        (symbol, start, cause),
    )


def texts(slack: FakeSlack) -> list[str]:
    return [p["payload"]["text"] for p in slack.posts]


def fields(post: dict[str, Any]) -> dict[str, str]:
    out = {}
    for block in post["payload"]["blocks"]:
        for item in block.get("fields", []):
            key, _, value = item["text"].partition("\n")
            out[key.strip("*")] = value
    return out


def test_one_message_per_incident_then_escalation_then_resolution(
    conn: psycopg.Connection[Any], slack: FakeSlack
) -> None:
    for i, symbol in enumerate(("005930", "000660", "035420")):
        add_gap(conn, symbol, kst("10:00", second=5 + i), "disconnect: no close frame")
    first = desk(conn, slack).sync(at("10:01"))
    assert (first.created, first.announced) == (1, 1)
    (post,) = slack.wait_for(1, 5)
    assert post["payload"]["text"] == "Data gap: kis disconnect (3 symbol(s))"
    got = fields(post)
    assert got["Broker"] == "kis" and got["Symbols"] == "000660, 005930, 035420"
    assert got["Cause"] == "disconnect: no close frame"
    assert got["Window"] == "2026-11-25 10:00 – ongoing KST"
    assert f"<{RUN}|Prefect run>" in str(post["payload"]["blocks"][-1])
    # a restarted flow (new desk, new poster) and later minutes: nothing re-announced
    assert desk(conn, slack).sync(at("10:02")).messages == 0
    assert desk(conn, slack).sync(at("10:14")).messages == 0
    assert desk(conn, slack).sync(at("10:15")).escalated == 1
    assert desk(conn, slack).sync(at("10:20")).messages == 0
    conn.execute("""UPDATE gaps SET "end" = %s""", (kst("10:21", second=3),))
    assert desk(conn, slack).sync(at("10:22")).resolved == 1
    assert desk(conn, slack).sync(at("10:23")).messages == 0
    assert texts(slack) == [
        "Data gap: kis disconnect (3 symbol(s))",
        "Still open after 15 min: kis disconnect",
        "Resolved: kis disconnect gap, data flowing since 10:21:03 KST",
    ]


def test_causes_and_minutes_make_separate_incidents(
    conn: psycopg.Connection[Any], slack: FakeSlack
) -> None:
    add_gap(conn, "005930", kst("10:00"), "disconnect: reset")
    add_gap(conn, "000660", kst("10:00"), "completeness: 5 expected minutes empty")
    add_gap(conn, "035420", kst("10:07"), "disconnect: reset")
    assert desk(conn, slack).sync(at("10:08")).announced == 3


def test_quiet_outside_the_session_then_one_digest(
    conn: psycopg.Connection[Any], slack: FakeSlack
) -> None:
    add_gap(conn, "005930", kst("15:40"), "disconnect: reset")
    evening = desk(conn, slack).sync(at("15:41", in_session=False, after_close=True))
    assert (evening.created, evening.announced, evening.digests) == (1, 0, 1)
    assert desk(conn, slack).sync(at("15:42", in_session=False, after_close=True)).messages == 0
    (post,) = slack.wait_for(1, 5)
    assert post["payload"]["text"] == "Completeness digest 2026-11-25"
    got = fields(post)
    assert got["Incidents"] == "1 (0 resolved, 1 outside the session)"
    assert got["Gaps"] == "kis: 1 open" and got["Symbols"] == "005930"


def test_a_refused_post_is_retried_by_the_next_run(
    conn: psycopg.Connection[Any], slack: FakeSlack
) -> None:
    add_gap(conn, "005930", kst("10:00"), "disconnect: reset")
    slack.fail_with(500)
    assert desk(conn, slack).sync(at("10:01")).announced == 0
    slack.fail_with(0)
    assert desk(conn, slack).sync(at("10:02")).announced == 1
    assert texts(slack) == ["Data gap: kis disconnect (1 symbol(s))"] * 2  # refused, then sent


def test_a_quiet_incident_still_open_at_the_session_is_announced(
    conn: psycopg.Connection[Any], slack: FakeSlack
) -> None:
    add_gap(conn, "005930", kst("08:10"), "disconnect: reset")  # before the opening auction
    add_gap(conn, "000660", kst("08:12"), "disconnect: reset")
    conn.execute("""UPDATE gaps SET "end" = %s WHERE symbol = '000660'""", (kst("08:14"),))
    early = desk(conn, slack).sync(at("08:15", in_session=False))
    assert (early.created, early.messages) == (2, 0)
    opening = desk(conn, slack).sync(at("08:31"))
    assert opening.announced == 1  # the one still open; the healed one stays quiet
    assert desk(conn, slack).sync(at("08:44")).escalated == 0
    assert desk(conn, slack).sync(at("08:45")).escalated == 1  # 15 min open in session
    assert texts(slack) == [
        "Data gap: kis disconnect (1 symbol(s))",
        "Still open after 35 min: kis disconnect",
    ]
