"""Halts and volatility interruptions as the feed reports them: the grid's "not expected".

The seam for the feed side: a codec or collector that sees a halt flag (KIS ``TRHT_YN`` =
``Y``, an ``HOUR_CLS_CODE`` of a VI single-price period; Kiwoom's status fields) calls
:func:`report_halt` when it starts and :func:`end_halt` when trading resumes. Both are
idempotent: (broker, symbol, start) is the row's key, so a repeated report changes nothing.
The codecs do not emit halt events yet; until they do, halts can be recorded by hand
(``INSERT INTO halts``) and the grid honours them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

_REPORT = """
INSERT INTO halts (broker, symbol, start, "end", reason) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (broker, symbol, start) DO UPDATE SET "end" = COALESCE(EXCLUDED."end", halts."end")
"""
_END = """
UPDATE halts SET "end" = %s
WHERE broker = %s AND symbol = %s AND "end" IS NULL AND start <= %s
"""


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")


def report_halt(
    conn: psycopg.Connection[Any],
    broker: str,
    symbol: str,
    start: datetime,
    end: datetime | None = None,
    reason: str = "halt",
) -> None:
    """Record that ``symbol`` stopped trading at ``start`` (until ``end`` when known)."""
    _aware("start", start)
    _aware("end", end)
    conn.execute(_REPORT, (broker, symbol, start, end, reason))


def end_halt(conn: psycopg.Connection[Any], broker: str, symbol: str, at: datetime) -> int:
    """Close the symbol's open halts at ``at``; the number closed."""
    _aware("at", at)
    return conn.execute(_END, (at, broker, symbol, at)).rowcount
