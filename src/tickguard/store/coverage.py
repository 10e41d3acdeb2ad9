"""Gaps that another feed covered: prove it from the stored tape and resolve them.

Contract of :func:`resolve_covered_gaps` (callers: the dual-feed drill, the completeness flow,
the post-close backfill — each may call it at any time, as often as it likes):

* **Which gaps.** Rows of ``gaps`` with ``kind = 'trades'``, ``status = 'open'`` and a
  closed window (``"end"`` set), whose ``start`` falls on ``trading_day`` in Asia/Seoul, of
  any broker (or only ``broker``). A gap still open-ended, a book gap (books carry no
  continuity) and a resolved gap are never touched.
* **The proof.** Trades carry the day's cumulative volume, and the natural key (symbol,
  trading_day, cum_volume) stores each trade once whichever feed delivered it. A window
  ``[start, end]`` (receive times of the gap's own feed) lost nothing when the stored chain
  of cumulative volumes runs unbroken across it: with ``A`` the highest ``cum_volume``
  received at or before ``start − skew`` (0 when none: the day's first trade) and ``B`` the
  lowest received at or after ``end + skew``, the stored quantities in ``(A, B]`` add up to
  exactly ``B − A``. ``skew`` (default 1 s) absorbs the receive-time difference between two
  feeds and between the broker's send and our receipt; windows are widened, never narrowed.
  Without a trade after ``end + skew`` nothing is proven yet and the gap stays open (a later
  call, or the REST backfill, decides it).
* **The verdict.** A proven gap becomes ``filled`` when rows of other brokers were received
  inside it (after ``start``, before ``end + skew``): ``cause`` gains "covered by the
  <brokers> feed …", ``rows_filled`` is that row count, and ``detail.coverage`` names the
  feeds (``covered_by``), the anchors (``cum_from``, ``cum_to``) and ``skew_s``. A proven
  gap with no such row had no trade to miss: it becomes ``no_trades`` with the same detail.
  ``resolved_at`` is ``now``.
* **Idempotent, transactional, never in persist's way.** One ``UPDATE … WHERE status =
  'open'`` statement in the caller's transaction (this function does not commit); running it
  again resolves nothing twice, and the collector's own later upserts of a gap never reopen
  it (the store's gap upsert keeps a resolved status). Gap rows another transaction holds (a
  persist commit upserting them) are skipped, not waited for (``FOR UPDATE SKIP LOCKED``):
  the resolver cannot deadlock with persist, and the next call takes them. Returns how many
  gaps it resolved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import psycopg

from tickguard.models import KST

log = logging.getLogger(__name__)

DEFAULT_SKEW = timedelta(seconds=1)

_RESOLVE = """
WITH candidates AS (
    SELECT g.id, g.broker, g.symbol, g.start, g."end"
    FROM gaps g
    WHERE g.status = 'open' AND g.kind = 'trades' AND g."end" IS NOT NULL
      AND g.start >= %(day_start)s AND g.start < %(day_end)s
      AND (%(broker)s::text IS NULL OR g.broker = %(broker)s::text)
    FOR UPDATE SKIP LOCKED
),
anchored AS (
    SELECT c.*,
        COALESCE((SELECT max(t.cum_volume) FROM trades t
                  WHERE t.symbol = c.symbol AND t.trading_day = %(day)s
                    AND t.received_at <= c.start - %(skew)s), 0) AS cum_from,
        (SELECT min(t.cum_volume) FROM trades t
         WHERE t.symbol = c.symbol AND t.trading_day = %(day)s
           AND t.received_at >= c."end" + %(skew)s) AS cum_to
    FROM candidates c
),
proven AS (
    SELECT a.id, a.cum_from, a.cum_to, s.other_rows, COALESCE(s.others, '{}') AS others
    FROM anchored a
    CROSS JOIN LATERAL (
        SELECT COALESCE(sum(t.qty), 0) AS qty_sum,
            count(*) FILTER (WHERE t.broker <> a.broker AND t.received_at > a.start
                             AND t.received_at < a."end" + %(skew)s) AS other_rows,
            array_agg(DISTINCT t.broker::text ORDER BY t.broker::text)
                FILTER (WHERE t.broker <> a.broker AND t.received_at > a.start
                        AND t.received_at < a."end" + %(skew)s) AS others
        FROM trades t
        WHERE t.symbol = a.symbol AND t.trading_day = %(day)s
          AND t.cum_volume > a.cum_from AND t.cum_volume <= a.cum_to
    ) s
    WHERE a.cum_to > a.cum_from AND s.qty_sum = a.cum_to - a.cum_from
),
verdict AS (
    SELECT p.*,
        CASE WHEN p.other_rows > 0 THEN 'filled' ELSE 'no_trades' END AS status,
        CASE WHEN p.other_rows > 0
            THEN 'covered by the ' || array_to_string(p.others, '+')
                 || ' feed (cum volume continuous over the window)'
            ELSE 'no trade in the window (cum volume continuous over it)' END AS note
    FROM proven p
)
UPDATE gaps g SET
    status = v.status,
    resolved_at = %(now)s,
    rows_filled = GREATEST(g.rows_filled, v.other_rows),
    cause = CASE WHEN g.cause = '' THEN v.note ELSE g.cause || '; ' || v.note END,
    detail = g.detail || jsonb_build_object('coverage', jsonb_build_object(
        'covered_by', to_jsonb(v.others), 'cum_from', v.cum_from, 'cum_to', v.cum_to,
        'rows_from_other_feeds', v.other_rows, 'skew_s', %(skew_s)s::float8))
FROM verdict v
WHERE g.id = v.id AND g.status = 'open'
RETURNING g.id, g.broker, g.symbol, g.status, v.others
"""


@dataclass(frozen=True, slots=True)
class Resolved:
    """One gap :func:`resolve_gaps` closed."""

    id: int
    broker: str
    symbol: str
    status: str
    covered_by: tuple[str, ...]


def day_bounds(trading_day: date) -> tuple[datetime, datetime]:
    """Midnight to midnight of ``trading_day`` in Asia/Seoul (tz-aware)."""
    start = datetime.combine(trading_day, time(0), tzinfo=KST)
    return start, start + timedelta(days=1)


def resolve_gaps(
    conn: psycopg.Connection[Any],
    trading_day: date,
    *,
    now: datetime,
    broker: str | None = None,
    skew: timedelta = DEFAULT_SKEW,
    ledger_bounds: tuple[datetime, datetime] | None = None,
) -> list[Resolved]:
    """Resolve every covered gap of ``trading_day`` (see the module docstring); the list.

    ``ledger_bounds``: the span of gap starts to consider instead of the day's midnights
    (a drill whose collector stamps the wall clock while its market plays another day)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    day_start, day_end = ledger_bounds or day_bounds(trading_day)
    params = {
        "day": trading_day,
        "day_start": day_start,
        "day_end": day_end,
        "broker": broker,
        "skew": skew,
        "skew_s": skew.total_seconds(),
        "now": now,
    }
    rows = conn.execute(_RESOLVE, params).fetchall()
    resolved = [
        Resolved(int(i), str(b), str(s), str(st), tuple(o or ())) for i, b, s, st, o in rows
    ]
    if resolved:
        filled = sum(r.status == "filled" for r in resolved)
        log.info(
            "coverage: %d gaps of %s resolved from the stored tape (%d filled by another feed)",
            len(resolved),
            trading_day,
            filled,
        )
    return resolved


def resolve_covered_gaps(
    conn: psycopg.Connection[Any],
    trading_day: date,
    *,
    now: datetime,
    broker: str | None = None,
    skew: timedelta = DEFAULT_SKEW,
    ledger_bounds: tuple[datetime, datetime] | None = None,
) -> int:
    """How many open trades gaps of ``trading_day`` the stored tape proves covered, now
    resolved (``filled`` / ``no_trades``). Runs in the caller's transaction."""
    return len(
        resolve_gaps(
            conn, trading_day, now=now, broker=broker, skew=skew, ledger_bounds=ledger_bounds
        )
    )
