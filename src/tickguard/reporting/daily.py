"""The day's numbers per broker and symbol, counted by PostgreSQL.

Trades (split by ``ws``/``rest`` source, so a day rescued by backfill shows as such) and
books come from one GROUP BY over the day's partitions (``trading_day`` prunes them);
gaps and incidents come from :func:`tickguard.quality.digest.summary`, the same numbers
the Slack digest tells, so the artifact and the message never disagree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from tickguard.models import KST
from tickguard.quality.digest import summary

_PER_SYMBOL = """
WITH t AS (
    SELECT broker, symbol, count(*) FILTER (WHERE source = 'ws') AS ws,
           count(*) FILTER (WHERE source = 'rest') AS rest, min(ts) AS first, max(ts) AS last
    FROM trades WHERE trading_day = %(day)s GROUP BY broker, symbol
), b AS (
    SELECT broker, symbol, count(*) AS books
    FROM book_snapshots WHERE trading_day = %(day)s GROUP BY broker, symbol
)
SELECT broker, symbol, COALESCE(t.ws, 0), COALESCE(t.rest, 0), COALESCE(b.books, 0),
       t.first, t.last
FROM t FULL OUTER JOIN b USING (broker, symbol) ORDER BY broker, symbol
"""
_QUARANTINED = """
SELECT broker, count(*) FROM quarantine WHERE received_at >= %s AND received_at < %s
GROUP BY broker ORDER BY broker
"""


@dataclass(frozen=True, slots=True)
class SymbolDay:
    """One broker's stored rows of one symbol on the day."""

    broker: str
    symbol: str
    trades_ws: int
    trades_rest: int
    books: int
    first_trade: datetime | None
    last_trade: datetime | None


@dataclass(frozen=True, slots=True)
class DailyReport:
    """What :func:`markdown` renders and ``tickguard report --json`` prints."""

    day: date
    per_symbol: list[SymbolDay] = field(default_factory=list)
    quarantined: dict[str, int] = field(default_factory=dict)
    digest: dict[str, Any] = field(default_factory=dict)
    """:func:`tickguard.quality.digest.summary`: incidents, gaps per broker and status."""

    def as_json(self) -> dict[str, Any]:
        """Plain JSON types; times as ISO strings in Seoul time."""

        def iso(value: datetime | None) -> str | None:
            return value.astimezone(KST).isoformat() if value else None

        rows = [
            {**asdict(s), "first_trade": iso(s.first_trade), "last_trade": iso(s.last_trade)}
            for s in self.per_symbol
        ]
        return {"day": self.day.isoformat(), "per_symbol": rows,
                "quarantined": self.quarantined, **self.digest}  # fmt: skip


def daily_report(conn: psycopg.Connection[Any], day: date) -> DailyReport:
    """Count the day in two GROUP BY queries plus the digest's summary."""
    rows = [
        SymbolDay(broker, symbol, int(ws), int(rest), int(books), first, last)
        for broker, symbol, ws, rest, books, first, last in conn.execute(_PER_SYMBOL, {"day": day})
    ]
    start = datetime.combine(day, datetime.min.time(), KST)
    quarantined = {
        broker: int(n)
        for broker, n in conn.execute(_QUARANTINED, (start, start + timedelta(days=1)))
    }
    return DailyReport(day, rows, quarantined, summary(conn, day))


def _hms(value: datetime | None) -> str:
    return value.astimezone(KST).strftime("%H:%M:%S") if value else "–"


def markdown(report: DailyReport) -> str:
    """The Prefect artifact: a per-symbol table, then gaps, incidents and quarantine."""
    lines = [
        f"# Daily report {report.day.isoformat()}",
        "",
        "| broker | symbol | trades (ws) | trades (rest) | books | first trade | last trade |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    lines += [
        f"| {s.broker} | {s.symbol} | {s.trades_ws} | {s.trades_rest} | {s.books}"
        f" | {_hms(s.first_trade)} | {_hms(s.last_trade)} |"
        for s in report.per_symbol
    ] or ["| – | – | 0 | 0 | 0 | – | – |"]
    gaps = report.digest.get("gaps", {})
    gap_text = "; ".join(
        f"{broker}: " + ", ".join(f"{n} {status}" for status, n in counts.items())
        for broker, counts in gaps.items()
    )
    quarantined = ", ".join(f"{b}: {n}" for b, n in report.quarantined.items())
    lines += [
        "",
        f"**Gaps:** {gap_text or 'none'}",
        f"**Incidents:** {report.digest.get('incidents', 0)}"
        f" ({report.digest.get('resolved', 0)} resolved)",
        f"**Quarantined frames:** {quarantined or 'none'}",
    ]
    return "\n".join(lines) + "\n"
