"""Halts and volatility interruptions as the feed reports them: the grid's "not expected".

The feed side: the codecs turn the brokers' flags into :class:`~tickguard.models.HaltSignal`
(KIS ``TRHT_YN`` = ``Y`` or an ``HOUR_CLS_CODE`` of ``C`` — VI / single-price period — on
H0STCNT0/H0STASP0; Kiwoom's REAL ``1h`` VI발동/해제 entries, and a trade after a halt),
the collector queues them with the data, and persist applies them with
:func:`apply_signals` in the same transaction as the rows they travelled with, so a halt is
as lossless as a trade. :func:`report_halt` / :func:`end_halt` remain for a halt known some
other way (by hand, an exchange notice). All writes are idempotent: (broker, symbol, start)
is the row's key, a halt signal while the symbol already has an open halt changes nothing
(a reconnect re-reads the flag), and a resume ends only open halts that began before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from tickguard.models import HaltSignal

_REPORT = """
INSERT INTO halts (broker, symbol, start, "end", reason) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (broker, symbol, start) DO UPDATE SET "end" = COALESCE(EXCLUDED."end", halts."end")
"""
_END = """
UPDATE halts SET "end" = %s
WHERE broker = %s AND symbol = %s AND "end" IS NULL AND start <= %s
"""
_OPEN_IF_NONE = """
INSERT INTO halts (broker, symbol, start, "end", reason)
SELECT %(broker)s, %(symbol)s, %(at)s, NULL, %(reason)s
WHERE NOT EXISTS (
    SELECT 1 FROM halts WHERE broker = %(broker)s AND symbol = %(symbol)s AND "end" IS NULL
)
ON CONFLICT (broker, symbol, start) DO NOTHING
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


def apply_signals(conn: psycopg.Connection[Any], signals: Sequence[HaltSignal]) -> int:
    """Apply the feed's halt signals in order; the rows opened or ended."""
    changed = 0
    with conn.cursor() as cur:
        for sig in signals:
            if sig.halted:
                cur.execute(
                    _OPEN_IF_NONE,
                    {"broker": sig.broker.value, "symbol": sig.symbol, "at": sig.at,
                     "reason": sig.reason or "halt"},
                )  # fmt: skip
            else:
                cur.execute(_END, (sig.at, sig.broker.value, sig.symbol, sig.at))
            changed += max(cur.rowcount, 0)
    return changed
