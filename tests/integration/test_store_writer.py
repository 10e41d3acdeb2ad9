"""PostgresWriter on a real PostgreSQL: idempotent, counts what it did, never drops a batch."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickguard.errors import StorageError
from tickguard.models import (
    KST,
    Batch,
    BookSnapshot,
    Broker,
    Gap,
    GapKind,
    GapStatus,
    MinuteBar,
    QuarantineRecord,
    Side,
    Source,
    Trade,
)
from tickguard.store.migrate import libpq_url
from tickguard.store.writer import PostgresWriter, WriteResult

DAY = datetime.now(KST).date()
OPEN = datetime(DAY.year, DAY.month, DAY.day, 9, 0, tzinfo=KST)


def trade(n: int, symbol: str = "005930", broker: Broker = Broker.KIS, **kw: object) -> Trade:
    fields: dict[str, object] = {
        "broker": broker,
        "symbol": symbol,
        "trading_day": DAY,
        "ts": OPEN + timedelta(milliseconds=250 * n),
        "price": 71_000 + n % 7 * 100,
        "qty": 10,
        "side": Side.BUY if n % 2 else Side.SELL,
        "cum_volume": 10 * (n + 1),
        "received_at": OPEN + timedelta(milliseconds=250 * n + 3),
        "source": Source.WS,
    }
    fields.update(kw)
    return Trade(**fields)  # type: ignore[arg-type]


def book(n: int, symbol: str = "005930", bump: int = 0) -> BookSnapshot:
    asks = tuple((71_100 + 100 * i, 50 + i + bump) for i in range(10))
    bids = tuple((71_000 - 100 * i, 40 + i) for i in range(10))
    return BookSnapshot(
        broker=Broker.KIS,
        symbol=symbol,
        trading_day=DAY,
        ts=OPEN + timedelta(seconds=n),
        asks=asks,
        bids=bids,
        total_ask_qty=sum(q for _, q in asks),
        total_bid_qty=sum(q for _, q in bids),
        received_at=OPEN + timedelta(seconds=n, milliseconds=5),
    )


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as connection:
        yield connection


@pytest.fixture
def writer(db_url: str) -> Iterator[PostgresWriter]:
    w = PostgresWriter.connect(db_url)
    yield w
    w.close()


def count(conn: psycopg.Connection[tuple[object, ...]], table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def test_same_batch_twice_is_stored_once(writer: PostgresWriter, conn: psycopg.Connection) -> None:
    batch = Batch(
        trades=[trade(n) for n in range(100)],
        books=[book(n) for n in range(20)],
        quarantined=[QuarantineRecord(Broker.KIS, OPEN, "bad_field_count", "0|H0STCNT0|x", "3")],
    )
    first = writer.write(batch)
    assert (first.trades_inserted, first.trades_duplicates) == (100, 0)
    assert (first.books_inserted, first.books_duplicates) == (20, 0)
    assert (first.quarantined_inserted, first.quarantined_duplicates) == (1, 0)
    again = writer.write(batch)
    assert (again.trades_inserted, again.trades_duplicates) == (0, 100)
    assert (again.books_inserted, again.books_duplicates) == (0, 20)
    assert (again.quarantined_inserted, again.quarantined_duplicates) == (0, 1)
    assert again.inserted == 0 and again.duplicates == 121
    assert (count(conn, "trades"), count(conn, "book_snapshots"), count(conn, "quarantine")) == (
        100,
        20,
        1,
    )


def test_one_repeated_row_does_not_cost_the_batch(
    writer: PostgresWriter, conn: psycopg.Connection
) -> None:
    writer.write(Batch(trades=[trade(5)]))
    result = writer.write(Batch(trades=[trade(n) for n in range(10)]))
    assert (result.trades_inserted, result.trades_duplicates) == (9, 1)
    inside = writer.write(Batch(trades=[trade(20), trade(20), trade(21)]))
    assert (inside.trades_inserted, inside.trades_duplicates) == (2, 1)
    assert count(conn, "trades") == 12


def test_rest_backfill_and_second_broker_land_on_the_ws_key(
    writer: PostgresWriter, conn: psycopg.Connection
) -> None:
    writer.write(Batch(trades=[trade(1)]))
    rest = trade(1, source=Source.REST, received_at=OPEN + timedelta(hours=7))
    kiwoom = trade(1, broker=Broker.KIWOOM)
    result = writer.write(Batch(trades=[rest, kiwoom, trade(2, broker=Broker.KIWOOM)]))
    assert (result.trades_inserted, result.trades_duplicates) == (1, 2)
    rows = conn.execute("SELECT broker, source FROM trades ORDER BY cum_volume").fetchall()
    assert rows == [("kis", "ws"), ("kiwoom", "ws")]


def test_values_and_timestamps_round_trip_tz_aware(
    writer: PostgresWriter, conn: psycopg.Connection
) -> None:
    original = trade(3, side=None)
    snap = book(1)
    writer.write(Batch(trades=[original], books=[snap]))
    row = conn.execute(
        "SELECT broker, symbol, trading_day, ts, price, qty, side, cum_volume, source,"
        " received_at, stored_at FROM trades"
    ).fetchone()
    assert row is not None
    assert row[:3] == ("kis", "005930", DAY)
    assert row[4:9] == (original.price, 10, None, original.cum_volume, "ws")
    for value in (row[3], row[9], row[10]):
        assert isinstance(value, datetime) and value.utcoffset() is not None
    assert row[3] == original.ts and row[9] == original.received_at
    assert abs(row[10] - datetime.now(UTC)) < timedelta(minutes=5)
    brow = conn.execute(
        "SELECT ask_prices, ask_qtys, bid_prices, bid_qtys, total_ask_qty, ts FROM book_snapshots"
    ).fetchone()
    assert brow is not None
    assert brow[0] == [p for p, _ in snap.asks] and brow[1] == [q for _, q in snap.asks]
    assert brow[2] == [p for p, _ in snap.bids] and brow[3] == [q for _, q in snap.bids]
    assert brow[4] == snap.total_ask_qty and brow[5] == snap.ts


def test_books_identity_is_their_content(writer: PostgresWriter) -> None:
    result = writer.write(Batch(books=[book(1), book(1, bump=1), book(1)]))
    assert (result.books_inserted, result.books_duplicates) == (2, 1)


def test_gap_reported_open_then_closed_is_one_row(
    writer: PostgresWriter, conn: psycopg.Connection
) -> None:
    start = OPEN + timedelta(minutes=5)
    opened = Gap(Broker.KIS, "005930", GapKind.TRADES, start, None, "ws_closed_1006")
    first = writer.write(Batch(gaps=[opened]))
    assert (first.gaps_inserted, first.gaps_merged) == (1, 0)
    assert opened.id is not None
    end = start + timedelta(seconds=4)
    closed = Gap(Broker.KIS, "005930", GapKind.TRADES, start, end, "reconnected", detail={"n": 2})
    reopened = Gap(Broker.KIS, "005930", GapKind.TRADES, start, None, "ws_closed_1006")
    second = writer.write(Batch(gaps=[closed, reopened]))
    assert (second.gaps_inserted, second.gaps_merged) == (0, 2)
    assert closed.id == opened.id
    row = conn.execute('SELECT "end", cause, status, detail FROM gaps').fetchone()
    assert row == (end, "ws_closed_1006; reconnected", "open", {"n": 2})


def test_resolved_gap_never_falls_back_to_open(
    writer: PostgresWriter, conn: psycopg.Connection
) -> None:
    start = OPEN + timedelta(minutes=9)
    end = start + timedelta(minutes=1)
    filled = Gap(Broker.KIS, "000660", GapKind.BOOK, start, end, "drop", GapStatus.UNRECOVERABLE)
    filled.resolved_at = end + timedelta(hours=7)
    writer.write(Batch(gaps=[filled]))
    writer.write(Batch(gaps=[Gap(Broker.KIS, "000660", GapKind.BOOK, start, None, "drop")]))
    row = conn.execute('SELECT status, resolved_at, "end" FROM gaps').fetchone()
    assert row == ("unrecoverable", filled.resolved_at, end)
    late = Gap(Broker.KIS, "000660", GapKind.TRADES, start, end, "drop", GapStatus.NO_TRADES)
    writer.write(Batch(gaps=[late]))  # resolved without a time: stamped now
    stamped = conn.execute("SELECT resolved_at FROM gaps WHERE kind = 'trades'").fetchone()
    assert stamped is not None and abs(stamped[0] - datetime.now(UTC)) < timedelta(minutes=5)


def test_write_many_is_all_or_nothing(writer: PostgresWriter, conn: psycopg.Connection) -> None:
    good = Batch(trades=[trade(n) for n in range(5)])
    bad = Batch(trades=[trade(9, cum_volume=2**63)])  # does not fit bigint
    with pytest.raises(StorageError, match="refused"):
        writer.write_many([good, bad])
    assert count(conn, "trades") == 0
    result = writer.write_many([good, Batch(trades=[trade(n) for n in range(3, 8)])])
    assert (result.trades_inserted, result.trades_duplicates) == (8, 2)


def test_inside_a_callers_transaction(db_url: str) -> None:
    with psycopg.connect(libpq_url(db_url)) as own:  # not autocommit: caller holds the tx
        writer = PostgresWriter(own)
        own.execute("SELECT 1")  # the caller's transaction is now open
        assert writer.write(Batch(trades=[trade(1), trade(2)])).trades_inserted == 2
        again = writer.write(Batch(trades=[trade(2), trade(3)]))
        assert (again.trades_inserted, again.trades_duplicates) == (1, 1)
        own.rollback()
        assert writer.write(Batch(trades=[trade(1)])).trades_inserted == 1
        own.commit()
        row = own.execute("SELECT count(*) FROM trades").fetchone()
    assert row == (1,)


def test_minute_bars_first_writer_wins(writer: PostgresWriter, conn: psycopg.Connection) -> None:
    bars = [
        MinuteBar(Broker.KIS, "005930", DAY, OPEN + timedelta(minutes=m), 1, 3, 1, 2, 9)
        for m in range(3)
    ]
    assert writer.write_bars(bars) == WriteResult(bars_inserted=3)
    changed = [MinuteBar(Broker.KIS, "005930", DAY, OPEN, 5, 5, 5, 5, 1)]
    assert writer.write_bars(changed) == WriteResult(bars_duplicates=1)
    assert conn.execute("SELECT open FROM minute_bars WHERE minute = %s", (OPEN,)).fetchone() == (
        1,
    )


def test_empty_batch_writes_nothing(writer: PostgresWriter) -> None:
    assert writer.write(Batch()) == WriteResult()


def test_writer_prepares_the_partition_of_a_new_day(
    writer: PostgresWriter, conn: psycopg.Connection
) -> None:
    far = DAY + timedelta(days=60)
    result = writer.write(Batch(trades=[trade(1, trading_day=far)], books=[book(1)]))
    assert (result.trades_inserted, result.books_inserted) == (1, 1)
    assert count(conn, f"trades_p{far:%Y%m%d}") == 1
    assert count(conn, "trades_default") == 0
    corrupt = date(2999, 1, 2)  # beyond the span: kept in the default partition, no new table
    assert writer.write(Batch(trades=[trade(2, trading_day=corrupt)])).trades_inserted == 1
    assert count(conn, "trades_default") == 1
    tomorrow = DAY + timedelta(days=1)
    assert conn.execute(
        "SELECT to_regclass(%s)", (f"book_snapshots_p{tomorrow:%Y%m%d}",)
    ).fetchone() != (None,)


def test_staging_is_emptied_and_truncated_as_rows_pass(writer: PostgresWriter) -> None:
    writer.write(Batch(trades=[trade(0)]))
    per_call = 12_000  # each call repeats trade(0): the staged path does the work
    for call in range(3):
        fresh = [trade(n) for n in range(1 + call * per_call, 1 + (call + 1) * per_call)]
        result = writer.write(Batch(trades=[trade(0), *fresh]))
        assert (result.trades_inserted, result.trades_duplicates) == (per_call, 1)
        staged = writer.conn.execute("SELECT count(*) FROM _tg_stage_trades").fetchone()
        assert staged == (0,)
    again = writer.write(Batch(trades=[trade(n) for n in range(0, 3 * per_call, 7)]))
    assert (again.trades_inserted, again.trades_duplicates) == (0, len(range(0, 3 * per_call, 7)))


def test_fast_path_and_fallback_agree_on_every_count(
    writer: PostgresWriter, conn: psycopg.Connection
) -> None:
    expected_rows = 0
    for call in range(40):  # alternate clean and overlapping batches through rest periods
        base = call * 10
        overlap = [trade(base - 1)] if call % 3 == 0 and call else []
        result = writer.write(Batch(trades=[*overlap, *(trade(base + n) for n in range(10))]))
        assert (result.trades_inserted, result.trades_duplicates) == (10, len(overlap))
        expected_rows += 10
    assert count(conn, "trades") == expected_rows


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    keys=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=120),
    cuts=st.lists(st.integers(min_value=0, max_value=120), max_size=6),
    replay=st.booleans(),
)
def test_any_mix_of_repeats_stores_each_key_once(
    writer: PostgresWriter, conn: psycopg.Connection, keys: list[int], cuts: list[int], replay: bool
) -> None:
    symbol = f"H{uuid.uuid4().hex[:8]}"  # one symbol per example: examples share a database
    written = [trade(k, symbol=symbol) for k in keys]
    bounds = sorted({0, len(written), *(c for c in cuts if c < len(written))})
    batches = [Batch(trades=written[a:b]) for a, b in itertools.pairwise(bounds)]
    if replay:
        batches += batches[: len(batches) // 2 + 1]
    total = WriteResult()
    for batch in batches:
        total += writer.write(batch)
    assert total.trades_inserted == len(set(keys))
    assert total.trades_inserted + total.trades_duplicates == sum(len(b.trades) for b in batches)
    stored = conn.execute("SELECT count(*) FROM trades WHERE symbol = %s", (symbol,)).fetchone()
    assert stored == (len(set(keys)),)


def test_connect_failure_is_a_storage_error_without_the_password() -> None:
    with pytest.raises(StorageError, match="cannot connect to PostgreSQL") as info:
        PostgresWriter.connect("postgresql://u:pw-z@127.0.0.1:1/none")
    assert "pw-z" not in str(info.value)
