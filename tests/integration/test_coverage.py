"""store.coverage on a real PostgreSQL: a gap the other feed covered ends filled, never open.

Trades are written through the production writer (first writer of a natural key wins), gaps
through its upsert, exactly as persist stores them; the resolver then reads the tape.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tickguard.models import KST, Batch, Broker, Gap, GapKind, GapStatus, Side, Source, Trade
from tickguard.store.coverage import resolve_covered_gaps, resolve_gaps
from tickguard.store.migrate import libpq_url
from tickguard.store.writer import PostgresWriter

DAY = datetime.now(KST).date()
T0 = datetime(DAY.year, DAY.month, DAY.day, 10, 0, tzinfo=KST)
QTY = 10
NOW = datetime.now(UTC)


def trade(n: int, broker: Broker, symbol: str = "005930", received_s: float | None = None) -> Trade:
    """The n-th trade of the day (cum volume 10·n), received n seconds after T0 by default."""
    at = T0 + timedelta(seconds=n if received_s is None else received_s)
    return Trade(broker=broker, symbol=symbol, trading_day=DAY, ts=at, price=70_000 + n,
                 qty=QTY, side=Side.BUY, cum_volume=QTY * n, received_at=at,
                 source=Source.WS)  # fmt: skip


def gap(
    start_s: float,
    end_s: float | None,
    *,
    broker: Broker = Broker.KIS,
    kind: GapKind = GapKind.TRADES,
    symbol: str = "005930",
    day_shift: int = 0,
) -> Gap:
    base = T0 + timedelta(days=day_shift)
    end = None if end_s is None else base + timedelta(seconds=end_s)
    return Gap(broker=broker, symbol=symbol, kind=kind, start=base + timedelta(seconds=start_s),
               end=end, cause="flap: no close frame", detected_at=NOW)  # fmt: skip


@pytest.fixture
def writer(db_url: str) -> Iterator[PostgresWriter]:
    w = PostgresWriter.connect(db_url)
    yield w
    w.close()


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as connection:
        yield connection


def rows(conn: psycopg.Connection[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT symbol, kind, status, cause, rows_filled, detail, resolved_at FROM gaps ORDER BY id"
    ).fetchall()


def dual_tape(writer: PostgresWriter, hole: frozenset[int] = frozenset()) -> None:
    """KIS delivers 1–9 and 16–30; Kiwoom delivers 1–30 except ``hole`` (a second late)."""
    kis = [trade(n, Broker.KIS) for n in [*range(1, 10), *range(16, 31)]]
    writer.write(Batch(trades=kis))
    kiwoom = [trade(n, Broker.KIWOOM, received_s=n + 0.2) for n in range(1, 31) if n not in hole]
    writer.write(Batch(trades=kiwoom))


def test_a_gap_the_other_feed_covered_ends_filled_naming_it(
    writer: PostgresWriter, conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    dual_tape(writer)
    writer.write(Batch(gaps=[gap(9, 16)]))
    resolved = resolve_gaps(conn, DAY, now=NOW)
    assert [(r.broker, r.symbol, r.status, r.covered_by) for r in resolved] == [
        ("kis", "005930", "filled", ("kiwoom",))
    ]
    ((_, _, status, cause, filled, detail, resolved_at),) = rows(conn)
    assert status == "filled" and resolved_at == NOW
    note = "covered by the kiwoom feed (cum volume continuous over the window)"
    assert cause == f"flap: no close frame; {note}"
    assert filled == 6  # trades 10–15 reached the store only through Kiwoom
    cov = detail["coverage"]
    assert cov["covered_by"] == ["kiwoom"] and cov["rows_from_other_feeds"] == 6
    assert cov["cum_to"] > cov["cum_from"] and cov["skew_s"] == 1.0
    assert resolve_covered_gaps(conn, DAY, now=NOW) == 0, "nothing is resolved twice"


def test_a_hole_keeps_the_gap_open_until_the_missing_trade_is_stored(
    writer: PostgresWriter, conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    dual_tape(writer, hole=frozenset({12}))
    writer.write(Batch(gaps=[gap(9, 16)]))
    assert resolve_covered_gaps(conn, DAY, now=NOW) == 0
    assert rows(conn)[0][2] == "open"
    backfilled = trade(12, Broker.KIWOOM, received_s=3600)  # e.g. the REST backfill, later
    writer.write(Batch(trades=[backfilled]))
    assert resolve_covered_gaps(conn, DAY, now=NOW) == 1
    assert rows(conn)[0][2] == "filled"


def test_nothing_is_proven_before_a_trade_arrives_after_the_window(
    writer: PostgresWriter, conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    writer.write(Batch(trades=[trade(n, Broker.KIWOOM) for n in range(1, 16)]))
    writer.write(Batch(gaps=[gap(9, 15)]))
    assert resolve_covered_gaps(conn, DAY, now=NOW) == 0  # 15 is inside end + skew
    writer.write(Batch(trades=[trade(16, Broker.KIS)]))
    assert resolve_covered_gaps(conn, DAY, now=NOW) == 1


def test_a_window_without_trades_ends_no_trades(
    writer: PostgresWriter, conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    quiet = [trade(1, Broker.KIS, received_s=1), trade(2, Broker.KIS, received_s=60)]
    writer.write(Batch(trades=quiet, gaps=[gap(10, 30)]))
    (resolved,) = resolve_gaps(conn, DAY, now=NOW)
    assert (resolved.status, resolved.covered_by) == ("no_trades", ())
    _, _, status, cause, filled, detail, _ = rows(conn)[0]
    assert status == "no_trades" and filled == 0 and "no trade in the window" in cause
    assert detail["coverage"]["covered_by"] == []


def test_the_days_first_trades_chain_from_zero(
    writer: PostgresWriter, conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    writer.write(Batch(trades=[trade(n, Broker.KIWOOM) for n in range(1, 8)], gaps=[gap(-5, 4)]))
    assert [r.status for r in resolve_gaps(conn, DAY, now=NOW)] == ["filled"]


def test_open_ended_book_resolved_and_other_day_gaps_are_left_alone(
    writer: PostgresWriter, conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    dual_tape(writer)
    done = gap(9, 16, symbol="000660")
    done.status, done.resolved_at = GapStatus.UNRECOVERABLE, NOW
    writer.write(Batch(gaps=[gap(9, None), gap(9, 16, kind=GapKind.BOOK), done,
                             gap(9, 16, day_shift=-1)]))  # fmt: skip
    assert resolve_covered_gaps(conn, DAY, now=NOW) == 0
    assert [r[2] for r in rows(conn)] == ["open", "open", "unrecoverable", "open"]


def test_broker_filter_and_a_later_report_of_the_gap_does_not_reopen_it(
    writer: PostgresWriter, conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    dual_tape(writer)
    writer.write(Batch(gaps=[gap(9, 16)]))
    assert resolve_covered_gaps(conn, DAY, now=NOW, broker="kiwoom") == 0
    assert resolve_covered_gaps(conn, DAY, now=NOW, broker="kis") == 1
    writer.write(Batch(gaps=[gap(9, 16)]))  # persist redelivers the collector's report
    assert rows(conn)[0][2] == "filled"


def test_a_slower_other_feed_inside_the_skew_still_proves_the_window(
    writer: PostgresWriter, conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    kis = [trade(n, Broker.KIS) for n in [*range(1, 10), *range(16, 31)]]
    kiwoom = [trade(n, Broker.KIWOOM, received_s=n + 0.9) for n in range(10, 16)]
    writer.write(Batch(trades=kis + kiwoom, gaps=[gap(9, 16)]))
    assert [r.covered_by for r in resolve_gaps(conn, DAY, now=NOW)] == [("kiwoom",)]


def test_now_must_be_aware(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        resolve_covered_gaps(conn, DAY, now=datetime(2026, 1, 1))


def test_a_gap_row_another_transaction_holds_is_skipped_not_waited_for(
    writer: PostgresWriter, conn: psycopg.Connection[tuple[Any, ...]], db_url: str
) -> None:
    dual_tape(writer)
    writer.write(Batch(gaps=[gap(9, 16)]))
    with psycopg.connect(libpq_url(db_url)) as holder:  # e.g. persist upserting this gap
        holder.execute("SELECT id FROM gaps FOR UPDATE")
        conn.execute("SET lock_timeout = '2s'")  # waiting would fail the call, not hang it
        assert resolve_covered_gaps(conn, DAY, now=NOW) == 0
    assert resolve_covered_gaps(conn, DAY, now=NOW) == 1
