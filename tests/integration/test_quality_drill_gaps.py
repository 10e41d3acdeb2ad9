"""The gaps drill's judge on a scripted session: a drop, a silent socket and ticks lost in a
live connection are each detected within 2 minutes with one Slack message plus its
resolution; a halted symbol, a quiet symbol and a holiday raise nothing."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from pydantic import SecretStr
from quality_rows import Tape, book, kst, minutes, store

from fakes.slack import FakeSlack
from tickguard.alerting.slack import SlackPoster
from tickguard.models import BookSnapshot, Trade
from tickguard.quality.drill_gaps import Injected, replay, score
from tickguard.quality.window import CheckWindow
from tickguard.settings import Settings, SlackSettings
from tickguard.store.migrate import libpq_url

A, B, QUIET, HALTED = "005930", "000660", "035420", "373220"
ALL = (A, B, QUIET, HALTED)
FLAP = (kst("10:10", second=0), kst("10:12", second=5))
SILENT = (kst("10:49", second=50), kst("10:53", second=5))
HALT = (kst("10:20", second=0), kst("10:40", second=0))


def _outage(ts: datetime) -> bool:
    return FLAP[0] <= ts < kst("10:12", second=0) or kst("10:50", second=0) <= ts < kst(
        "10:53", second=0
    )


def _session() -> tuple[list[Trade], list[BookSnapshot]]:
    trades: list[Trade] = []
    books: list[BookSnapshot] = []
    for symbol in (A, B, HALTED):
        tape = Tape(symbol)
        for ts in minutes("09:00", "11:00"):
            if symbol == HALTED and HALT[0] <= ts < HALT[1]:
                continue  # halted: nothing trades
            lost = 25 if (symbol == A and ts == kst("10:30")) else 0
            trades += tape.trades([ts], skip=lost)
            books.append(book(symbol, ts))
    trades += Tape(QUIET).trades(minutes("09:00", "11:00", step=10))
    # outages: the market went on, we received nothing (continuity breaks after each)
    return [t for t in trades if not _outage(t.ts)], [b for b in books if not _outage(b.ts)]


class Feed:
    """Stores what had arrived by each instant, and the collector's gap rows as it would."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.trades, self.books = _session()
        self.events: list[tuple[datetime, str, tuple[Any, ...]]] = []
        for (start, end), cause in (
            (FLAP, "disconnect: no close frame"),
            (SILENT, "stale: no data for 5 s"),
        ):
            for symbol in ALL:
                for kind in ("trades", "book"):
                    self.events.append(
                        (start + timedelta(seconds=5), "open", (symbol, kind, start, cause))
                    )
                    self.events.append((end, "end", (end, symbol, kind, start)))
        self.events.append((HALT[0], "halt", (HALTED, *HALT)))

    def __call__(self, until: datetime) -> None:
        store(
            self.db_url,
            trades=[t for t in self.trades if t.ts < until],
            books=[b for b in self.books if b.ts < until],
        )
        self.trades = [t for t in self.trades if t.ts >= until]
        self.books = [b for b in self.books if b.ts >= until]
        due = [e for e in self.events if e[0] < until]
        self.events = [e for e in self.events if e[0] >= until]
        with psycopg.connect(libpq_url(self.db_url), autocommit=True) as conn:
            for _, what, args in due:
                conn.execute(_SQL[what], args)


_SQL = {
    "open": "INSERT INTO gaps (broker, symbol, kind, start, cause) VALUES ('kis', %s, %s, %s, %s)",
    "end": """UPDATE gaps SET "end" = %s WHERE symbol = %s AND kind = %s AND start = %s""",
    "halt": """INSERT INTO halts (broker, symbol, start, "end", reason)
               VALUES ('kis', %s, %s, %s, 'VI')""",
}


def test_gaps_drill_scores_clean(db_url: str) -> None:
    feed = Feed(db_url)
    feed(kst("10:00", second=0))
    window = CheckWindow(kst("10:00", second=0), kst("11:00", second=0))
    with FakeSlack() as slack:
        poster = SlackPoster(SlackSettings(webhook_url=SecretStr(slack.webhook_url)))
        raised = replay(Settings(), db_url, "kis", list(ALL), window, feed=feed, poster=poster)
        holiday = CheckWindow(
            datetime(2026, 6, 3, 10, 0, tzinfo=FLAP[0].tzinfo),
            datetime(2026, 6, 3, 10, 30, tzinfo=FLAP[0].tzinfo),
        )
        raised += replay(
            Settings(), db_url, "kis", list(ALL), holiday, feed=lambda _: None, poster=poster
        )
        messages = len(slack.posts)
    injected = [
        Injected("flap", ALL, FLAP[0], FLAP[1], alarm=True),
        Injected("silent", ALL, SILENT[0], SILENT[1], alarm=True),
        Injected("ticks lost", (A,), kst("10:29"), kst("10:30"), alarm=True),
        Injected("halt", (HALTED,), HALT[0], HALT[1], alarm=False),
        Injected("quiet", (QUIET,), window.start, window.end, alarm=False),
        Injected("holiday", ALL, holiday.start, holiday.end, alarm=False),
    ]
    report = score(injected, raised, messages)
    assert report["gaps_injected"] == report["gaps_detected"] == 3
    assert report["false_alarms"] == 0
    assert 60 <= report["detect_latency_s_max"] <= 120  # the lost ticks: knowable at 10:30:10
    assert report["slack_messages"] == 6  # three incidents, each announced and resolved


def test_score_counts_a_false_alarm_and_a_miss() -> None:
    t0 = kst("10:00", second=0)
    from tickguard.quality.drill_gaps import Raised

    injected = [
        Injected("flap", (A,), t0, t0 + timedelta(minutes=2), alarm=True),
        Injected("halt", (B,), t0, t0 + timedelta(minutes=30), alarm=False),
    ]
    raised = [Raised(1, (B,), t0 + timedelta(minutes=5), t0 + timedelta(minutes=6))]
    assert score(injected, raised, 1) == {
        "gaps_injected": 1,
        "gaps_detected": 0,
        "false_alarms": 1,
        "detect_latency_s_max": 0.0,
        "slack_messages": 1,
    }
    assert date(2026, 6, 3).weekday() == 2  # the holiday above is a Wednesday: closed by override
