"""The after-close digest: one Slack message per trading day, over every broker.

It is where quiet incidents (found outside the session) are told, and where the day's
ledger is summed up: incidents, gaps by status, the symbols touched. Claimed in
``quality_digests`` before it is sent (never twice); unclaimed when Slack refuses it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tickguard.alerting.slack import SlackPoster, alert_blocks
from tickguard.models import KST

_CLAIM = """
INSERT INTO quality_digests (trading_day, detail) VALUES (%s, %s)
ON CONFLICT (trading_day) DO NOTHING RETURNING trading_day
"""
_UNCLAIM = "DELETE FROM quality_digests WHERE trading_day = %s"
_INCIDENTS = """
SELECT count(*), count(*) FILTER (WHERE status = 'resolved'), count(*) FILTER (WHERE quiet),
       COALESCE(array_agg(DISTINCT s) FILTER (WHERE s IS NOT NULL), '{}')
FROM incidents LEFT JOIN LATERAL unnest(symbols) AS s ON true
WHERE trading_day = %s
"""
_GAPS = """
SELECT broker, status, count(*) FROM gaps WHERE start >= %s AND start < %s
GROUP BY broker, status ORDER BY broker, status
"""


def summary(conn: psycopg.Connection[Any], day: date) -> dict[str, Any]:
    """The day's incidents and gaps, as numbers."""
    row = conn.execute(_INCIDENTS, (day,)).fetchone()
    total, resolved, quiet, symbols = row if row else (0, 0, 0, [])
    start = datetime.combine(day, datetime.min.time(), KST)
    gaps: dict[str, dict[str, int]] = {}
    for broker, status, count in conn.execute(_GAPS, (start, start + timedelta(days=1))):
        gaps.setdefault(broker, {})[status] = int(count)
    return {
        "incidents": int(total),
        "resolved": int(resolved),
        "quiet": int(quiet),
        "symbols": sorted(symbols),
        "gaps": gaps,
    }


def post_digest(conn: psycopg.Connection[Any], poster: SlackPoster, day: date, run_url: str) -> int:
    """Post the day's digest unless it was posted already; 1 when posted now."""
    data = summary(conn, day)
    if conn.execute(_CLAIM, (day, Jsonb(data))).fetchone() is None:
        return 0
    gap_lines = [
        f"{broker}: " + ", ".join(f"{n} {status}" for status, n in counts.items())
        for broker, counts in data["gaps"].items()
    ]
    fields = {
        "Incidents": f"{data['incidents']} ({data['resolved']} resolved,"
        f" {data['quiet']} outside the session)",
        "Gaps": "\n".join(gap_lines) or "none",
        "Symbols": ", ".join(data["symbols"][:30]) or "none",
    }
    title = f"Completeness digest {day.isoformat()}"
    link = ("Prefect run", run_url) if run_url else None
    if poster.post(title, alert_blocks(f"📋 {title}", fields, link=link)):
        return 1
    conn.execute(_UNCLAIM, (day,))
    return 0
