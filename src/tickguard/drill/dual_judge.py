"""Judge a dual-feed drill: both simulators' truths against the one store they fed.

Keys of the combined report (per-broker keys come from :func:`tickguard.drill.compare.judge`):

* ``tapes_identical`` — both simulators generated the same trades (symbol, cum volume,
  price, qty, side, time) over the span both ran: one market, two wires.
* ``trades_missing`` — trades generated while data flowed for their symbol (from the first
  to the last trade any feed sent of it) that are in no feed's store row. With one healthy
  feed this must be 0: the other feed's drops cost nothing.
* ``trades_lost_after_receipt`` — keys some feed sent that are not stored. Must be 0.
* ``trades_stored_by`` — stored keys per broker (the first feed to deliver a key writes it).
* ``gaps_*`` — the faulted feed's trades gaps by outcome: ``filled`` by the other feed,
  ``no_trades`` (nothing happened in the window), ``left_open`` (a closed window with
  trades stored on both sides, yet not proven covered: a real hole — must be 0),
  ``unanchored`` (no trade of the symbol stored before the window, or none after it yet:
  nothing to chain from — an illiquid symbol whose opening trades came before the
  collectors subscribed, or whose next trade comes after the run; the backfill decides
  these),
  ``window_open`` (the collector stopped while disconnected) and its book gaps (books have
  no continuity to prove; the backfill marks them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import date
from typing import Any

import psycopg

from tickguard.sim.truth import TruthReader
from tickguard.store.coverage import DEFAULT_SKEW
from tickguard.store.migrate import libpq_url

_GAPS = """
SELECT g.kind, g.status, g."end" IS NULL, g.detail -> 'coverage' -> 'covered_by',
    EXISTS (SELECT 1 FROM trades t WHERE t.symbol = g.symbol AND t.trading_day = %(day)s
            AND t.received_at <= g.start - %(skew)s)
    AND EXISTS (SELECT 1 FROM trades t WHERE t.symbol = g.symbol AND t.trading_day = %(day)s
                AND t.received_at >= g."end" + %(skew)s) AS anchored
FROM gaps g WHERE g.broker = %(broker)s
"""


def tapes_identical(a: TruthReader, b: TruthReader) -> tuple[bool, int]:
    """Whether two truths generated the same trades up to the earlier one's last trade."""
    ta = [(t.symbol, t.cum_volume, t.price, t.qty, t.side, t.t) for t in a.generated_trades()]
    tb = [(t.symbol, t.cum_volume, t.price, t.qty, t.side, t.t) for t in b.generated_trades()]
    horizon = min(ta[-1][5] if ta else 0.0, tb[-1][5] if tb else 0.0)
    sa = {x for x in ta if x[5] <= horizon}
    sb = {x for x in tb if x[5] <= horizon}
    return sa == sb and bool(sa), len(sa)


def _stored(conn: psycopg.Connection[Any], day: date) -> dict[tuple[str, int], str]:
    rows = conn.execute(
        "SELECT symbol, cum_volume, broker FROM trades WHERE trading_day = %s", (day,)
    )
    return {(str(s), int(v)): str(b) for s, v, b in rows}


def _missing(
    truths: list[TruthReader], sent: set[tuple[str, int]], stored: Collection[tuple[str, int]]
) -> int:
    """Generated trades inside their symbol's sent span that no feed stored."""
    when = {(t.symbol, t.cum_volume): t.t for t in truths[0].generated_trades()}
    span: dict[str, list[float]] = {}
    for key in sent:
        t = when.get(key)
        if t is not None:
            lo_hi = span.setdefault(key[0], [t, t])
            lo_hi[0], lo_hi[1] = min(lo_hi[0], t), max(lo_hi[1], t)
    return sum(
        1
        for (symbol, cum), t in when.items()
        if symbol in span and span[symbol][0] <= t <= span[symbol][1]
        and (symbol, cum) not in stored
    )  # fmt: skip


def gap_outcomes(conn: psycopg.Connection[Any], broker: str, day: date) -> dict[str, Any]:
    """The faulted feed's gaps by outcome (see the module docstring)."""
    out: dict[str, Any] = defaultdict(int)
    covered_by: set[str] = set()
    for kind, status, open_ended, feeds, anchored in conn.execute(
        _GAPS, {"day": day, "skew": DEFAULT_SKEW, "broker": broker}
    ):
        if kind != "trades":
            out["book_gaps"] += 1
        elif open_ended:
            out["gaps_window_open"] += 1
        elif status == "open":
            out["gaps_left_open" if anchored else "gaps_unanchored"] += 1
        else:
            out[f"gaps_{status}"] += 1
            covered_by.update(feeds or [])
    resolved_or_not = ("gaps_filled", "gaps_no_trades", "gaps_left_open", "gaps_unanchored")
    closed = sum(out[k] for k in resolved_or_not)
    keys = (*resolved_or_not, "gaps_window_open", "book_gaps")
    return {"trades_gaps_closed": closed, **{k: out[k] for k in keys},
            "gaps_covered_by": sorted(covered_by)}  # fmt: skip


def judge_dual(
    truths: dict[str, TruthReader], database_url: str, faulty: str, day: date
) -> dict[str, Any]:
    """The combined half of the dual drill report."""
    readers = list(truths.values())
    identical, compared = tapes_identical(readers[0], readers[1])
    sent = {(s, k) for r in readers for s, _day, k in r.sent_trade_keys()}
    with psycopg.connect(libpq_url(database_url)) as conn:
        stored = _stored(conn, day)
        dup_row = conn.execute(
            "SELECT count(*) - count(DISTINCT (symbol, trading_day, cum_volume)) FROM trades"
        ).fetchone()
        gaps = gap_outcomes(conn, faulty, day)
    by_broker: dict[str, int] = defaultdict(int)
    for broker in stored.values():
        by_broker[broker] += 1
    return {
        "tapes_identical": identical,
        "tape_trades_compared": compared,
        "trades_sent": len(sent),
        "trades_stored": len(stored),
        "trades_stored_by": dict(sorted(by_broker.items())),
        "trades_lost_after_receipt": len(sent - stored.keys()),
        "trades_missing": _missing(readers, sent, stored.keys()),
        "trades_duplicated": int(dup_row[0]) if dup_row else 0,
        **gaps,
    }
