"""The writer's ``int8[]`` binary dumper against a real PostgreSQL.

It replaces psycopg's per-element list dumper on the book COPY, so the server must read
back exactly the values that went in: empty arrays (a book side with no levels), the int8
extremes, any length, and out-of-range values refused rather than truncated.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import Format

from tickguard.errors import StorageError
from tickguard.models import KST, Batch, BookSnapshot, Broker
from tickguard.store.migrate import libpq_url
from tickguard.store.writer import INT8_ARRAY_OID, Int8ArrayBinaryDumper, PostgresWriter

INT8 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def conn(db_url: str) -> Iterator[Conn]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as connection:
        connection.adapters.register_dumper(None, Int8ArrayBinaryDumper)
        connection.execute("CREATE TABLE arrays (n int PRIMARY KEY, v int8[] NOT NULL)")
        yield connection


def copy_back(conn: Conn, values: Sequence[Sequence[int]]) -> list[tuple[object, ...]]:
    """COPY ``values`` in binary as ``int8[]``, then read them back with their shape."""
    conn.execute("TRUNCATE arrays")
    with conn.cursor() as cur, cur.copy("COPY arrays (n, v) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "int8[]"])
        for n, value in enumerate(values):
            copy.write_row((n, value))
    return conn.execute(
        "SELECT v, cardinality(v), coalesce(array_ndims(v), 0), coalesce(array_lower(v, 1), 1) "
        "FROM arrays ORDER BY n"
    ).fetchall()


def test_server_reads_back_every_shape(conn: Conn) -> None:
    values = [[], [0], [71_100, 71_200], [-(2**63), 2**63 - 1], list(range(10)), (5, 6)]
    back = copy_back(conn, values)
    assert [row[0] for row in back] == [list(v) for v in values]
    assert [row[1:] for row in back] == [(len(v), 1 if v else 0, 1) for v in values]
    assert conn.execute("SELECT v = '{}' FROM arrays WHERE n = 0").fetchone() == (True,)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(INT8, max_size=30), min_size=1, max_size=5))
def test_any_int8_list_round_trips(conn: Conn, values: list[list[int]]) -> None:
    assert [row[0] for row in copy_back(conn, values)] == values


@given(st.lists(INT8, min_size=1, max_size=30))
def test_bytes_match_psycopg_own_dumper(value: list[int]) -> None:
    """Same bytes as psycopg's list dumper, which this one stands in for."""
    theirs = Transformer()
    theirs.set_dumper_types([INT8_ARRAY_OID], Format.BINARY)
    (expected,) = theirs.dump_sequence([value], [PyFormat.BINARY])
    assert expected is not None
    assert Int8ArrayBinaryDumper(list).dump(value) == bytes(expected)


@pytest.mark.parametrize("bad", [[2**63], [-(2**63) - 1], [1, None], [1.5]])
def test_what_int8_cannot_hold_is_refused(conn: Conn, bad: list[object]) -> None:
    """struct.error is among the writer's REFUSED errors: the batch is refused, not cut."""
    with pytest.raises(struct.error):
        copy_back(conn, [bad])  # type: ignore[list-item]
    assert conn.execute("SELECT count(*) FROM arrays").fetchone() == (0,)


def test_writer_stores_empty_sides_and_refuses_overflow(db_url: str) -> None:
    writer = PostgresWriter.connect(db_url)
    try:
        day = datetime.now(KST).date()
        at = datetime(day.year, day.month, day.day, 9, 0, tzinfo=KST)
        one_sided = BookSnapshot(Broker.KIS, "005930", day, at, (), ((71_000, 5),), 0, 5, at)
        empty = BookSnapshot(Broker.KIS, "005930", day, at + timedelta(seconds=1), (), (), 0, 0, at)
        assert writer.write(Batch(books=[one_sided, empty])).books_inserted == 2
        rows = writer.conn.execute(
            "SELECT ask_prices, ask_qtys, bid_prices, bid_qtys FROM book_snapshots ORDER BY ts"
        ).fetchall()
        assert rows == [([], [], [71_000], [5]), ([], [], [], [])]
        huge = BookSnapshot(
            Broker.KIS, "005930", day, at + timedelta(seconds=2), ((2**63, 1),), (), 1, 0, at
        )
        with pytest.raises(StorageError):
            writer.write(Batch(books=[huge]))
        # Python lists in ordinary queries still go through psycopg's own adaptation.
        assert writer.conn.execute("SELECT %s::int8[]", [[1, None]]).fetchone() == ([1, None],)
    finally:
        writer.close()
