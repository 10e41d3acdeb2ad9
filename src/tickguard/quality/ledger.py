"""The gap ledger: completeness findings become rows of ``gaps``; arriving data ends them.

A gap opens

- after a run of expected-but-empty minutes (:mod:`~tickguard.quality.grid`), unless an open
  gap of the same (broker, symbol, kind) already covers it — a collector that reported a
  disconnect has opened one at once, with its cause;
- at once when cumulative-volume continuity broke: the hole lies between two stored trades,
  so that gap is born with its end.

A gap without an end is ended by the first row stored after its start, whoever opened it (a
collector that crashed never closes its own). A completeness gap whose very first minute
got its data after all (persist was late, not the feed) was never a loss: it is marked
``filled``. Every write is the store's idempotent upsert on (broker, symbol, kind, start).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tickguard.models import GapKind, GapStatus
from tickguard.quality.continuity import ContinuityBreak
from tickguard.quality.grid import EmptyRun
from tickguard.quality.presence import first_data_at
from tickguard.store.kinds import GAP_UPSERT

log = logging.getLogger(__name__)

COMPLETENESS = "completeness"
CONTINUITY = "continuity"

_OPEN_GAPS = """
SELECT id, symbol, kind, start, cause FROM gaps
WHERE broker = %s AND symbol = ANY(%s::text[]) AND status = 'open' AND "end" IS NULL
  AND start < %s
"""
_EXPLAINED = """
SELECT 1 FROM gaps
WHERE broker = %s AND symbol = %s AND kind = 'trades' AND start < %s + interval '1 second'
  AND ("end" IS NULL OR "end" >= %s) AND cause NOT LIKE 'continuity:%%'
LIMIT 1
"""
"""A known gap (a disconnect, a silence) that spans a continuity break explains it. Trade
stamps are whole exchange seconds while a collector's gap starts at a receive instant: a
break whose first trade after shares the gap's second is still inside it."""
_END_GAP = """
UPDATE gaps SET "end" = %s, status = %s,
    resolved_at = CASE WHEN %s = 'open' THEN resolved_at ELSE now() END,
    detail = detail || %s
WHERE id = %s AND "end" IS NULL
"""


@dataclass(slots=True)
class LedgerChanges:
    opened: list[dict[str, Any]] = field(default_factory=list)
    ended: list[dict[str, Any]] = field(default_factory=list)


def _upsert(
    conn: psycopg.Connection[Any],
    broker: str,
    symbol: str,
    kind: GapKind,
    start: datetime,
    end: datetime | None,
    cause: str,
    detail: dict[str, Any],
) -> bool:
    """Store one gap report; True when it is a new row."""
    row = conn.execute(
        GAP_UPSERT,
        (broker, symbol, kind, start, end, cause, GapStatus.OPEN, None, None, 0, Jsonb(detail)),
    ).fetchone()
    return bool(row and row[1])


def _open_keys(
    conn: psycopg.Connection[Any], broker: str, symbols: Sequence[str], until: datetime
) -> set[tuple[str, str]]:
    rows = conn.execute(_OPEN_GAPS, (broker, list(symbols), until)).fetchall()
    return {(symbol, kind) for _, symbol, kind, _, _ in rows}


def record_runs(
    conn: psycopg.Connection[Any],
    broker: str,
    runs: Iterable[EmptyRun],
    until: datetime,
    changes: LedgerChanges,
) -> None:
    """Open a gap for each run long enough to be one and not already covered."""
    runs = [r for r in runs if r.is_gap]
    if not runs:
        return
    covered = _open_keys(conn, broker, sorted({r.symbol for r in runs}), until)
    for run in runs:
        if (run.symbol, run.kind.value) in covered:
            continue
        rate = "n/a" if run.rate is None else f"{run.rate:.0%}"
        cause = f"{COMPLETENESS}: {run.minutes} expected minutes empty (activity {rate})"
        detail = {"empty_minutes": run.minutes, "threshold": run.threshold, "rate": run.rate}
        if _upsert(conn, broker, run.symbol, run.kind, run.start, None, cause, detail):
            log.info("gap opened: %s %s %s from %s", broker, run.symbol, run.kind, run.start)
            changes.opened.append(
                {"symbol": run.symbol, "kind": run.kind.value, "start": run.start, "cause": cause}
            )


def record_breaks(
    conn: psycopg.Connection[Any],
    broker: str,
    breaks: Iterable[ContinuityBreak],
    day_open: datetime,
    changes: LedgerChanges,
) -> None:
    """A continuity break is a gap with both ends known, opened at once — unless a known gap
    of the symbol (the collector's disconnect or silence) spans it: that loss is told already."""
    for brk in breaks:
        start = brk.previous_ts or day_open
        start = min(start, brk.ts)
        if conn.execute(_EXPLAINED, (broker, brk.symbol, brk.ts, start)).fetchone():
            continue
        cause = (
            f"{CONTINUITY}: cum_volume {brk.previous_cum_volume}→{brk.cum_volume},"
            f" qty {brk.qty} ({brk.missing_volume} shares missing)"
        )
        detail = {"missing_volume": brk.missing_volume, "cum_volume": brk.cum_volume}
        if _upsert(conn, broker, brk.symbol, GapKind.TRADES, start, brk.ts, cause, detail):
            log.info("gap opened: %s %s continuity break at %s", broker, brk.symbol, brk.ts)
            changes.opened.append(
                {"symbol": brk.symbol, "kind": "trades", "start": start, "cause": cause}
            )


def end_gaps(
    conn: psycopg.Connection[Any],
    broker: str,
    symbols: Sequence[str],
    until: datetime,
    changes: LedgerChanges,
) -> None:
    """End every open gap whose data arrived after its start (and before ``until``)."""
    for gap_id, symbol, kind, start, cause in conn.execute(
        _OPEN_GAPS, (broker, list(symbols), until)
    ).fetchall():
        first = first_data_at(conn, GapKind(kind), broker, symbol, start, until)
        if first is None:
            continue
        late = str(cause).startswith(COMPLETENESS) and first < start + timedelta(minutes=1)
        status = GapStatus.FILLED if late else GapStatus.OPEN
        detail = Jsonb({"data_resumed_at": first.isoformat(), "late_not_lost": late})
        conn.execute(_END_GAP, (first, status, status, detail, gap_id))
        log.info("gap ended: %s %s %s at %s (%s)", broker, symbol, kind, first, status)
        changes.ended.append(
            {"id": gap_id, "symbol": symbol, "kind": kind, "end": first, "status": status.value}
        )
