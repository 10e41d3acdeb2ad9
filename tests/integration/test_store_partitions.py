"""Daily partitions on a real PostgreSQL: the window exists, the default partition catches
any other day, creating that day's partition moves its rows out, and the indexes serve the
completeness queries (checked with EXPLAIN on a loaded day)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from tickguard.cli import app
from tickguard.models import KST, Batch, BookSnapshot, Broker, Side, Trade
from tickguard.store import partitions as parts
from tickguard.store.migrate import libpq_url
from tickguard.store.writer import PostgresWriter

TODAY = datetime.now(KST).date()
OPEN = datetime(TODAY.year, TODAY.month, TODAY.day, 9, 0, tzinfo=KST)


def trade(n: int, day: date = TODAY) -> Trade:
    at = OPEN + timedelta(seconds=n)
    return Trade(Broker.KIS, "005930", day, at, 70_000, 1, Side.BUY, n + 1, at)


def book(n: int, day: date = TODAY) -> BookSnapshot:
    at = OPEN + timedelta(seconds=n)
    levels = tuple((70_000 + i, 5) for i in range(10))
    return BookSnapshot(Broker.KIS, "005930", day, at, levels, levels, 50, 50, at)


Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def conn(db_url: str) -> Iterator[Conn]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as connection:
        yield connection


def test_window_around_today_and_default_exist(conn: Conn) -> None:
    for table in ("trades", "book_snapshots"):
        assert parts.is_partitioned(conn, table)
        present = parts.existing_partitions(conn, table)
        assert parts.default_name(table) in present
        # The template was migrated when the session started: a run that crossed midnight
        # KST anchored its window on the day before the one this test sees.
        today = datetime.now(KST).date()
        anchors = (today, today - timedelta(days=1))
        assert any(
            all(
                parts.partition_name(table, anchor + timedelta(days=offset)) in present
                for offset in range(-parts.DAYS_BEHIND, parts.DAYS_AHEAD + 1)
            )
            for anchor in anchors
        ), sorted(present)
        assert len(present) == parts.DAYS_BEHIND + parts.DAYS_AHEAD + 2
    assert not parts.is_partitioned(conn, "gaps")


def test_default_catches_a_day_and_its_partition_takes_the_rows(db_url: str, conn: Conn) -> None:
    far = TODAY + timedelta(days=40)
    own = psycopg.connect(libpq_url(db_url))
    own.execute("SELECT 1")  # inside a caller's transaction the writer creates no partition
    writer = PostgresWriter(own)
    batch = Batch(
        trades=[trade(n, far) for n in range(50)] + [trade(1)],
        books=[book(n, far) for n in range(3)],
    )
    assert writer.write(batch).trades_inserted == 51
    own.commit()
    assert parts.default_rows(conn, "trades") == {far: 50}
    assert parts.default_rows(conn, "book_snapshots") == {far: 3}

    created = parts.ensure_partitions(conn, far, 0)
    assert created == [
        parts.partition_name("trades", far),
        parts.partition_name("book_snapshots", far),
    ]
    assert parts.default_rows(conn, "trades") == {}
    assert parts.default_rows(conn, "book_snapshots") == {}
    moved = conn.execute(f"SELECT count(*) FROM {parts.partition_name('trades', far)}").fetchone()
    assert moved == (50,)
    indexes = conn.execute(
        "SELECT count(*) FROM pg_indexes WHERE tablename = %s",
        (parts.partition_name("trades", far),),
    ).fetchone()
    assert indexes == (3,)  # primary key, (symbol, ts), (ts) came with the attach
    again = writer.write(Batch(trades=[trade(n, far) for n in range(45, 55)]))
    assert (again.trades_inserted, again.trades_duplicates) == (5, 5)
    own.commit()
    assert parts.ensure_partitions(conn, far, 0) == []
    writer.close()


def test_days_ahead_are_created_once(conn: Conn) -> None:
    start = TODAY + timedelta(days=100)
    created = parts.ensure_partitions(conn, start, 2, tables=("trades",))
    assert created == [parts.partition_name("trades", start + timedelta(days=d)) for d in range(3)]
    assert parts.ensure_partitions(conn, start, 2, tables=("trades",)) == []
    with pytest.raises(ValueError, match="days_ahead"):
        parts.ensure_partitions(conn, start, -1)


def test_cli_partitions_and_bad_day(settings_env: object) -> None:
    runner = CliRunner()
    anchor = (TODAY + timedelta(days=200)).isoformat()
    result = runner.invoke(
        app, ["db", "partitions", "--today", anchor, "--behind", "0", "--ahead", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "created 4 partitions" in result.output
    bad = runner.invoke(app, ["db", "partitions", "--today", "tomorrow"])
    assert bad.exit_code == 2
    assert "YYYY-MM-DD" in bad.output


LOAD = """
INSERT INTO trades (broker, symbol, trading_day, ts, price, qty, side, cum_volume, source,
                    received_at)
SELECT 'kis', 'S' || lpad((i %% 100)::text, 3, '0'), %(day)s,
       %(open)s + i * interval '100 milliseconds', 70000 + i %% 13, 1, 'buy', i, 'ws',
       %(open)s + i * interval '100 milliseconds'
FROM generate_series(1, 200000) AS i
"""


def _plan(conn: Conn, query: str, params: dict[str, object]) -> str:
    rows = conn.execute("EXPLAIN " + query, params).fetchall()  # type: ignore[operator]
    return "\n".join(str(row[0]) for row in rows)


def test_explain_uses_the_indexes_on_a_loaded_day(conn: Conn) -> None:
    start = datetime(TODAY.year, TODAY.month, TODAY.day, 9, 0, tzinfo=KST)
    conn.execute(LOAD, {"day": TODAY, "open": start})  # type: ignore[arg-type]
    conn.execute("ANALYZE trades")
    part = parts.partition_name("trades", TODAY)
    minute = {
        "m0": start + timedelta(minutes=30),
        "m1": start + timedelta(minutes=31),
        "day": TODAY,
    }
    symbol_minute = "SELECT * FROM trades WHERE symbol = 'S042' AND ts >= %(m0)s AND ts < %(m1)s"
    per_symbol = (
        "SELECT symbol, count(*) FROM trades WHERE ts >= %(m0)s AND ts < %(m1)s{} GROUP BY 1"
    )
    one_day = " AND trading_day = %(day)s"
    cases = [
        ("symbol_ts", symbol_minute, False),
        ("symbol_ts", symbol_minute + one_day, True),
        ("ts", per_symbol.format(""), False),
        ("ts", per_symbol.format(one_day), True),
    ]
    for index, query, pruned in cases:
        text = _plan(conn, query, minute)
        assert f"Seq Scan on {part}" not in text, text
        used = rf"(Index (Only )?Scan using|Bitmap Index Scan on) {part}_{index}_idx\b"
        assert re.search(used, text), text
        if pruned:
            assert parts.partition_name("trades", TODAY + timedelta(days=1)) not in text, text


def test_concurrent_callers_create_each_partition_once(db_url: str) -> None:
    start = TODAY + timedelta(days=300)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(libpq_url(db_url), autocommit=True) as own:
                results.append(parts.ensure_partitions(own, start, 4))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    created = sorted(name for names in results for name in names)
    expected = sorted(
        parts.partition_name(table, start + timedelta(days=d))
        for table in ("trades", "book_snapshots")
        for d in range(5)
    )
    assert created == expected


BOOK_LOAD = """
INSERT INTO book_snapshots (broker, symbol, trading_day, ts, received_at, ask_prices, ask_qtys,
                            bid_prices, bid_qtys, total_ask_qty, total_bid_qty, digest)
SELECT 'kis', 'S' || lpad((i %% 100)::text, 3, '0'), %(day)s,
       %(open)s + i * interval '200 milliseconds', %(open)s + i * interval '200 milliseconds',
       ARRAY[70100, 70200]::bigint[], ARRAY[1, 2]::bigint[], ARRAY[70000, 69900]::bigint[],
       ARRAY[3, 4]::bigint[], 3, 7, i
FROM generate_series(1, 100000) AS i
"""


def test_explain_book_rows_of_a_symbol_in_a_minute(conn: Conn) -> None:
    start = datetime(TODAY.year, TODAY.month, TODAY.day, 9, 0, tzinfo=KST)
    conn.execute(BOOK_LOAD, {"day": TODAY, "open": start})  # type: ignore[arg-type]
    conn.execute("ANALYZE book_snapshots")
    part = parts.partition_name("book_snapshots", TODAY)
    minute = {
        "m0": start + timedelta(minutes=30),
        "m1": start + timedelta(minutes=31),
        "day": TODAY,
    }
    text = _plan(
        conn,
        "SELECT * FROM book_snapshots WHERE symbol = 'S042' AND ts >= %(m0)s AND ts < %(m1)s"
        " AND trading_day = %(day)s",
        minute,
    )
    assert f"Seq Scan on {part}" not in text, text
    assert re.search(
        rf"(Index (Only )?Scan using|Bitmap Index Scan on) {part}_symbol_ts_idx\b", text
    ), text
