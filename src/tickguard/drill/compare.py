"""Judge a drill: PostgreSQL against the simulator's ground truth.

Everything here reads finished artefacts (truth directory, scratch database) and returns
plain numbers, so the same judgement can run on a drill that crashed half-way.

Definitions (keys of the drill report):

* ``trades_lost_after_receipt`` — trade keys the simulator sent on a live subscribed session
  that are not in ``trades``: the collector/stream/persist path lost them. Must be 0.
* ``trades_duplicated`` — rows sharing a natural key (the schema forbids it; counted anyway).
  Re-deliveries that the natural key absorbed are ``duplicate_deliveries``.
* ``trades_unexpected`` — stored keys the simulator never generated (corruption).
* ``drops_without_gap`` — drops (flap aborts of bound sessions, silence starts) at which some
  subscription had no gap row covering that moment.
* ``gaps_injected`` / ``gaps_detected`` — connection faults (drops) and those of them the
  ledger covers whole: every subscription has a gap row spanning the moment of the drop.
* ``false_alarms`` — gap rows that cover no injected drop (a gap nobody caused).
* ``trades_missing_final`` (after the backfill, :func:`final_score`) — trades the market
  generated before the judged end that are not stored, whoever should have brought them.
* reconnect/recover times are measured on the simulator's side: from the abort (or the
  silence start) to the next websocket open / the next data frame on a new session.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from tickguard.sim.market import exchange_ts
from tickguard.sim.truth import TruthReader
from tickguard.store.migrate import libpq_url

log = logging.getLogger(__name__)


def drops_of(truth: TruthReader) -> list[Drop]:
    out: list[Drop] = []
    for fault in truth.faults():
        if fault["kind"] == "flap" and fault.get("detail", {}).get("app_key_bound", True):
            # A flap of a connection that never bound its key (one being refused with
            # OPSP8996) carried no subscription: nothing was dropped.
            out.append(Drop(float(fault["end"]), "flap"))
        elif fault["kind"] == "silent" and fault.get("detail", {}).get("sessions", [None]):
            # A silence silences the connections open when it starts; with none open (the
            # collector still connecting) it stopped no feed: nothing was dropped.
            out.append(Drop(float(fault["start"]), "silent"))
    opens = sorted(float(e["wall"]) for e in truth.sessions() if e["event"] == "open")
    return sorted(
        (Drop(d.at, d.kind, next((t for t in opens if t > d.at), None)) for d in out),
        key=lambda d: d.at,
    )


def reconnect_times(truth: TruthReader, drops: list[Drop]) -> list[float | None]:
    """Drop → the next websocket open (None when none followed)."""
    opens = sorted(float(e["wall"]) for e in truth.sessions() if e["event"] == "open")
    return [next((t - d.at for t in opens if t > d.at), None) for d in drops]


def recover_times(truth: TruthReader, drops: list[Drop]) -> list[float | None]:
    """Drop → the first data frame sent on a session opened after the drop."""
    opens = sorted(
        (float(e["wall"]), int(e["session"])) for e in truth.sessions() if e["event"] == "open"
    )
    needs = [next((sid for t, sid in opens if t > d.at), None) for d in drops]
    result: list[float | None] = [None] * len(drops)
    pending = deque(i for i, sid in enumerate(needs) if sid is not None)
    for frame in truth.frames():
        if not pending:
            break
        if frame.kind == "malformed":
            continue
        while pending:
            i = pending[0]
            need = needs[i]
            if need is not None and frame.session >= need and frame.wall_ts > drops[i].at:
                result[i] = frame.wall_ts - drops[i].at
                pending.popleft()
            else:
                break
    return result


def _max(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(max(present), 3) if present else None


def store_figures(
    database_url: str, broker: str, day: date, *, any_broker: bool = False
) -> dict[str, Any]:
    """Keys and counts from the scratch database. ``any_broker``: trade keys stored through
    any feed (a dual-feed drill stores each key once, under the broker that came first)."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        keys = {
            (s, int(v))
            for s, v in conn.execute(
                "SELECT symbol, cum_volume FROM trades"
                " WHERE (broker = %s OR %s) AND trading_day = %s",
                (broker, any_broker, day),
            )
        }
        dup_row = conn.execute(
            "SELECT count(*) - count(DISTINCT (symbol, trading_day, cum_volume)) FROM trades"
        ).fetchone()
        books_row = conn.execute(
            "SELECT count(*) FROM book_snapshots WHERE broker = %s", (broker,)
        ).fetchone()
        gaps = conn.execute(
            'SELECT symbol, kind, start, "end" FROM gaps WHERE broker = %s', (broker,)
        ).fetchall()
        q_row = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    return {
        "keys": keys,
        "duplicated": int(dup_row[0]) if dup_row else 0,
        "books": int(books_row[0]) if books_row else 0,
        "gaps": [(str(s), str(k), start, end) for s, k, start, end in gaps],
        "quarantine_rows": int(q_row[0]) if q_row else 0,
    }


RECEIVE_SKEW = timedelta(seconds=1)
"""The collector stamps a frame when it reads it; frames already in its socket buffer when
the simulator aborts are read (and stamped) a moment *after* the abort, so a gap may start
slightly after the simulator's drop time and still cover it."""


@dataclass(frozen=True, slots=True)
class Drop:
    at: float
    """Wall epoch seconds of the drop (abort, or start of the silence)."""
    kind: str
    reopened: float | None = None
    """Wall epoch of the next websocket open after the drop (the reconnection), if any."""


def _latest_start(drop: Drop) -> datetime:
    """The latest stamp a gap of ``drop`` can start at. The collector stamps the last frame
    of the dead connection when it reads it — on a loaded box seconds after the simulator
    sent it — but always before it reconnects: so the reconnection bounds it, whatever the
    load (the receive skew when nothing reconnected)."""
    at = datetime.fromtimestamp(drop.at, UTC) + RECEIVE_SKEW
    if drop.reopened is None:
        return at
    return max(at, datetime.fromtimestamp(drop.reopened, UTC))


def _covers(start: datetime, end: datetime | None, drop: Drop) -> bool:
    at = datetime.fromtimestamp(drop.at, UTC)
    return start <= _latest_start(drop) and (end is None or end >= at)


def drops_without_gap(
    drops: list[Drop],
    gaps: list[tuple[str, str, datetime, datetime | None]],
    subs: set[tuple[str, str]],
) -> int:
    """Drops at which some subscription had no gap covering the moment of the drop."""
    missing = 0
    for drop in drops:
        covered = {(s, k) for s, k, start, end in gaps if _covers(start, end, drop)}
        if not subs <= covered:
            missing += 1
            at = datetime.fromtimestamp(drop.at, UTC)
            log.warning("drop at %s (%s) has no gap for every subscription", at, drop.kind)
    return missing


def false_alarms(drops: list[Drop], gaps: list[tuple[str, str, datetime, datetime | None]]) -> int:
    """Gap rows covering no drop (start before the reconnection that followed the drop —
    see :func:`_latest_start` — and end, if any, at or after the drop)."""
    return sum(1 for _s, _k, start, end in gaps if not any(_covers(start, end, d) for d in drops))


def judge(
    truth: TruthReader,
    database_url: str,
    broker: str,
    subs: set[tuple[str, str]],
    collector_stopped_at: float | None = None,
    *,
    any_broker: bool = False,
) -> dict[str, Any]:
    """The truth-vs-store half of the drill report.

    Drops after ``collector_stopped_at`` (wall epoch) are left out: they hit a collector that
    was already closing on purpose. ``any_broker``: see :func:`store_figures`.
    """
    counts = truth.counts()
    sent = {(s, k) for s, _day, k in truth.sent_trade_keys()}
    generated = {(t.symbol, t.cum_volume) for t in truth.generated_trades()}
    store = store_figures(database_url, broker, truth.day, any_broker=any_broker)
    drops = [
        d for d in drops_of(truth) if collector_stopped_at is None or d.at < collector_stopped_at
    ]
    reconnects = reconnect_times(truth, drops)
    recovers = recover_times(truth, drops)
    silent = [r for r, d in zip(reconnects, drops, strict=True) if d.kind == "silent"]
    gaps = store["gaps"]
    return {
        "frames_sent": counts.frames_sent,
        "trades_generated": counts.trades_generated,
        "trades_sent": counts.trades_sent,
        "trades_stored": len(store["keys"]),
        "trades_missed_while_disconnected": counts.trades_missed_while_disconnected,
        "trades_lost_after_receipt": len(sent - store["keys"]),
        "trades_duplicated": store["duplicated"],
        "trades_unexpected": len(store["keys"] - generated),
        "books_sent": counts.books_sent,
        "books_stored": store["books"],
        "quarantine_rows": store["quarantine_rows"],
        "drops": len(drops),
        "drops_without_gap": (missed := drops_without_gap(drops, gaps, subs)),
        "gaps_injected": len(drops),
        "gaps_detected": len(drops) - missed,
        "false_alarms": false_alarms(drops, gaps),
        "gaps_opened": len(gaps),
        "gaps_open_at_end": sum(1 for g in gaps if g[3] is None),
        "first_reconnect_s": round(reconnects[0], 3)
        if reconnects and reconnects[0] is not None
        else None,
        "reconnect_s_max": _max(reconnects),
        "recover_s_max": _max(recovers),
        "silent_detect_reconnect_s_max": _max(silent),
    }


def final_score(truth: TruthReader, database_url: str, until: datetime) -> dict[str, int]:
    """Store vs ground truth after the backfill, for trades before ``until`` (any broker:
    the natural key stores a trade once whichever feed or the backfill brought it)."""
    expected = {
        (t.symbol, t.cum_volume): (t.price, t.qty, exchange_ts(truth.day, t.t))
        for t in truth.generated_trades()
        if exchange_ts(truth.day, t.t) < until
    }
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(
            "SELECT symbol, cum_volume, price, qty, ts FROM trades "
            "WHERE trading_day = %s AND ts < %s",
            (truth.day, until),
        ).fetchall()
        dup = conn.execute(
            "SELECT count(*) - count(DISTINCT (symbol, trading_day, cum_volume)) FROM trades"
        ).fetchone()
        books: dict[str, int] = dict(conn.execute(
            "SELECT status, count(*) FROM gaps WHERE kind = 'book' GROUP BY status"
        ).fetchall())  # fmt: skip
        trade_gaps: dict[str, int] = dict(conn.execute(
            "SELECT status, count(*) FROM gaps WHERE kind = 'trades' GROUP BY status"
        ).fetchall())  # fmt: skip
    stored = {(s, int(c)): (int(p), int(q), ts) for s, c, p, q, ts in rows}
    return {
        "trades_expected": len(expected),
        "trades_missing_final": len(set(expected) - set(stored)),
        "trades_unexpected_final": len(set(stored) - set(expected)),
        "trades_mismatched_final": sum(
            1 for k, v in stored.items() if k in expected and expected[k] != v
        ),
        "trades_duplicated_final": int(dup[0]) if dup else 0,
        "books_unrecoverable": int(books.get("unrecoverable", 0)),
        **{f"trade_gaps_{st}": int(n) for st, n in sorted(trade_gaps.items())},
        "book_gaps_not_unrecoverable": sum(
            int(n) for st, n in books.items() if st != "unrecoverable"
        ),
    }
