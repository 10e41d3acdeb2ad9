"""Slack incidents: one story per incident, told once, durable across restarts.

Gaps are grouped into incidents by (broker, cause family, start minute): a dropped
connection opens a gap per subscription, and they are one incident, not twenty. Then:

- **announce** an incident once, in session only (quiet outside: those go to the digest);
- **resolve**: when every gap of it has ended, post one follow-up (if it was announced);
- **escalate** once when it is still open ``escalate_after_min`` after its start, in session;
- **digest** once per trading day after the close.

Every post is *claimed* in the ``incidents`` / ``quality_digests`` tables (committed) before
it is sent, so a restarted, rerun or concurrent completeness flow never posts it twice; a
post Slack refused is unclaimed and retried by the next run. A session-level advisory lock
per broker serialises concurrent runs (late runs arrive in bursts).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from tickguard.alerting.slack import SlackPoster, alert_blocks
from tickguard.models import KST

log = logging.getLogger(__name__)

_LOCK = "SELECT pg_advisory_lock(hashtext('tickguard.incidents.' || %s))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext('tickguard.incidents.' || %s))"
_UNASSIGNED = """
SELECT g.id, g.symbol, g.start, g.cause FROM gaps g
WHERE g.broker = %s AND g.start >= %s AND g.start < %s AND g.status = 'open'
  AND NOT EXISTS (SELECT 1 FROM incidents i WHERE g.id = ANY(i.gap_ids))
ORDER BY g.start, g.id
"""
_UPSERT = """
INSERT INTO incidents (key, broker, trading_day, family, start, cause, symbols, gap_ids,
                       quiet, run_url)
VALUES (%(key)s, %(broker)s, %(day)s, %(family)s, %(start)s, %(cause)s, %(symbols)s,
        %(gap_ids)s, %(quiet)s, %(run_url)s)
ON CONFLICT (key) DO UPDATE SET
    symbols = ARRAY(SELECT DISTINCT unnest(incidents.symbols || EXCLUDED.symbols) ORDER BY 1),
    gap_ids = incidents.gap_ids || EXCLUDED.gap_ids,
    status = 'open', resolved_at = NULL
"""
_INCIDENTS = """
SELECT i.id, i.family, i.start, i.cause, i.symbols, i.status, i.quiet, i.run_url,
       i.announced_at IS NOT NULL, i.escalated_at IS NOT NULL,
       bool_and(g."end" IS NOT NULL OR g.status <> 'open'), max(g."end"), count(g.id)
FROM incidents i LEFT JOIN gaps g ON g.id = ANY(i.gap_ids)
WHERE i.broker = %s AND i.trading_day = %s
GROUP BY i.id ORDER BY i.start, i.id
"""
_CLAIM = "UPDATE incidents SET {col} = now() WHERE id = %s AND {col} IS NULL RETURNING id"
_UNCLAIM = "UPDATE incidents SET {col} = NULL WHERE id = %s"
_RESOLVE = (
    "UPDATE incidents SET status = 'resolved', resolved_at = %s WHERE id = %s AND status = 'open'"
)


@dataclass(frozen=True, slots=True)
class Moment:
    """When a sync runs, as the calendar sees the checked window (never the wall clock)."""

    now: datetime
    day: date
    in_session: bool
    after_close: bool
    run_url: str = ""
    session_start: datetime | None = None
    """Start of the day's session (opening auction): escalation counts open time from here."""


@dataclass(slots=True)
class Incident:
    id: int
    family: str
    start: datetime
    cause: str
    symbols: list[str]
    status: str
    quiet: bool
    run_url: str
    announced: bool
    escalated: bool
    ended: bool
    end: datetime | None
    gaps: int


@dataclass(slots=True)
class SyncResult:
    created: int = 0
    announced: int = 0
    resolved: int = 0
    escalated: int = 0
    digests: int = 0

    @property
    def messages(self) -> int:
        return self.announced + self.resolved + self.escalated + self.digests


def family_of(cause: str) -> str:
    """``disconnect: no close frame`` → ``disconnect``; the grouping part of a cause."""
    head = cause.split(":", 1)[0].strip().lower()
    return head or "gap"


def _kst(ts: datetime | None) -> str:
    return "ongoing" if ts is None else f"{ts.astimezone(KST):%H:%M:%S}"


class IncidentDesk:
    """Turns the gap ledger of one broker into Slack incidents."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        poster: SlackPoster,
        broker: str,
        escalate_after: timedelta,
    ) -> None:
        if not conn.autocommit:
            raise ValueError("IncidentDesk needs an autocommit connection (claims must commit)")
        self.conn, self.poster, self.broker = conn, poster, broker
        self.escalate_after = escalate_after

    def sync(self, moment: Moment) -> SyncResult:
        result = SyncResult()
        self.conn.execute(_LOCK, (self.broker,))
        try:
            result.created = self._group(moment)
            for incident in self._incidents(moment.day):
                self._advance(incident, moment, result)
            if moment.after_close:
                result.digests = self._digest(moment)
        finally:
            self.conn.execute(_UNLOCK, (self.broker,))
        return result

    def _group(self, moment: Moment) -> int:
        day_start = datetime.combine(moment.day, datetime.min.time(), KST)
        rows = self.conn.execute(
            _UNASSIGNED, (self.broker, day_start, day_start + timedelta(days=1))
        ).fetchall()
        groups: dict[tuple[str, datetime], list[tuple[int, str, str]]] = defaultdict(list)
        for gap_id, symbol, start, cause in rows:
            minute = start.replace(second=0, microsecond=0)
            groups[(family_of(cause), minute)].append((gap_id, symbol, cause))
        for (family, minute), items in groups.items():
            self.conn.execute(
                _UPSERT,
                {
                    "key": f"{self.broker}|{family}|{minute.isoformat()}",
                    "broker": self.broker,
                    "day": moment.day,
                    "family": family,
                    "start": minute,
                    "cause": items[0][2],
                    "symbols": sorted({s for _, s, _ in items}),
                    "gap_ids": [g for g, _, _ in items],
                    "quiet": not moment.in_session,
                    "run_url": moment.run_url,
                },
            )
        if groups:
            log.info("%d incident(s) updated from %d new gap(s)", len(groups), len(rows))
        return len(groups)

    def _incidents(self, day: date) -> list[Incident]:
        rows = self.conn.execute(_INCIDENTS, (self.broker, day)).fetchall()
        return [Incident(*row) for row in rows]

    def _advance(self, inc: Incident, moment: Moment, result: SyncResult) -> None:
        """Announce, resolve, escalate: each at most once, in that order."""
        # quiet: found outside the session; still open once the session runs, it is told
        still_open = inc.status == "open" and not inc.ended
        announce = not inc.announced and moment.in_session and (not inc.quiet or still_open)
        if announce and self._post_claimed(inc.id, "announced_at", *self._announcement(inc)):
            inc.announced = True
            result.announced += 1
        if inc.status == "open" and inc.ended:
            self.conn.execute(_RESOLVE, (inc.end, inc.id))
            inc.status = "resolved"
        follow_up = inc.status == "resolved" and inc.announced
        if follow_up and self._post_claimed(inc.id, "resolution_posted_at", *self._resolution(inc)):
            result.resolved += 1
        since = max(inc.start, moment.session_start or inc.start)
        overdue = moment.now - since >= self.escalate_after  # open this long *in session*
        escalate = inc.status == "open" and inc.announced and not inc.escalated
        if (
            escalate
            and overdue
            and moment.in_session
            and self._post_claimed(inc.id, "escalated_at", *self._escalation(inc, moment.now))
        ):
            result.escalated += 1

    def _post_claimed(
        self, incident_id: int, column: str, text: str, blocks: list[dict[str, Any]]
    ) -> bool:
        claimed = self.conn.execute(_CLAIM.format(col=column), (incident_id,)).fetchone()
        if claimed is None:
            return False  # another run posted it already
        if self.poster.post(text, blocks):
            return True
        self.conn.execute(_UNCLAIM.format(col=column), (incident_id,))
        return False

    def _fields(self, inc: Incident) -> dict[str, str]:
        symbols = ", ".join(inc.symbols[:20]) + (
            f" (+{len(inc.symbols) - 20})" if len(inc.symbols) > 20 else ""
        )
        return {
            "Broker": self.broker,
            "Symbols": symbols,
            "Window": f"{inc.start.astimezone(KST):%Y-%m-%d %H:%M} – {_kst(inc.end)} KST",
            "Cause": inc.cause,
            "Gaps": str(inc.gaps),
        }

    def _link(self, inc: Incident) -> tuple[str, str] | None:
        return ("Prefect run", inc.run_url) if inc.run_url else None

    def _announcement(self, inc: Incident) -> tuple[str, list[dict[str, Any]]]:
        title = f"Data gap: {self.broker} {inc.family} ({len(inc.symbols)} symbol(s))"
        return title, alert_blocks(f"🔴 {title}", self._fields(inc), link=self._link(inc))

    def _resolution(self, inc: Incident) -> tuple[str, list[dict[str, Any]]]:
        title = f"Resolved: {self.broker} {inc.family} gap, data flowing since {_kst(inc.end)} KST"
        text = "Missing rows are refilled from the brokers' REST APIs after the close."
        return title, alert_blocks(
            f"✅ {title}", self._fields(inc), text=text, link=self._link(inc)
        )

    def _escalation(self, inc: Incident, now: datetime) -> tuple[str, list[dict[str, Any]]]:
        minutes = int((now - inc.start).total_seconds() // 60)
        title = f"Still open after {minutes} min: {self.broker} {inc.family}"
        return title, alert_blocks(f"🚨 {title}", self._fields(inc), link=self._link(inc))

    def _digest(self, moment: Moment) -> int:
        from tickguard.quality.digest import post_digest

        return post_digest(self.conn, self.poster, moment.day, moment.run_url)
