"""The book hot path (column-wise decode, flat-list digest) keeps the stored contracts.

Values pinned here were computed by the code before the fast path: the stream entry bytes
and the digests of rows already stored must not move, or a redelivered batch would stop
being a duplicate.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import msgpack
import pytest

from tickguard.errors import DecodeError
from tickguard.models import KST, Batch, BookSnapshot, Broker, Side, Source, Trade
from tickguard.sinks.encoding import VERSION, decode_batch, encode_batch
from tickguard.store.rows import book_digest, book_rows

AT = datetime(2026, 3, 5, 9, 0, 1, 123456, tzinfo=KST)
DAY = date(2026, 3, 5)
FULL = BookSnapshot(
    Broker.KIS, "005930", DAY, AT,
    tuple((70_000 + 100 * i, 1_000 + i) for i in range(1, 11)),
    tuple((70_000 - 100 * i, 2_000 + i) for i in range(10)),
    10_045, 20_045, datetime(2026, 3, 5, 0, 0, 1, 130000, tzinfo=UTC),
)  # fmt: skip
ONE_SIDED = BookSnapshot(Broker.KIWOOM, "000660", DAY, AT, (), ((180_000, 5),), 0, 5, AT)
BATCH = Batch(
    trades=[
        Trade(Broker.KIS, "005930", DAY, AT, 70_000, 10, Side.BUY, 12_345, AT, Source.WS),
        Trade(Broker.KIWOOM, "005930", DAY, AT, 70_000, 10, None, 12_346, AT, Source.REST),
    ],
    books=[FULL, ONE_SIDED],
)


def test_digests_match_the_stored_layout() -> None:
    assert book_digest(FULL) == 972637140065609493
    assert book_digest(ONE_SIDED) == 8754013205552908615


def test_entry_bytes_are_unchanged() -> None:
    data = encode_batch(BATCH)
    assert hashlib.sha256(data).hexdigest() == (
        "11639cbeccdaf2edbec010b6095918d5d89bdf38fe5a79dbbec5b6f03142cb50"
    )
    assert decode_batch(data) == BATCH


def test_book_rows_split_sides_and_carry_the_digest() -> None:
    full, one_sided = book_rows(decode_batch(encode_batch(BATCH)).books)
    assert full[5] == [70_000 + 100 * i for i in range(1, 11)]
    assert full[6] == [1_000 + i for i in range(1, 11)]
    assert full[7] == [70_000 - 100 * i for i in range(10)]
    assert full[8] == [2_000 + i for i in range(10)]
    assert full[11] == book_digest(FULL)
    assert one_sided[5:9] == ([], [], [180_000], [5])
    assert one_sided[11] == book_digest(ONE_SIDED)


def test_a_level_that_is_not_a_pair_is_refused() -> None:
    bad = BookSnapshot(Broker.KIS, "005930", DAY, AT, ((1, 2, 3),), (), 0, 0, AT)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pair"):
        book_digest(bad)


def _book_part(asks: list[int]) -> list[list[object]]:
    return [["kis"], ["005930"], [DAY.toordinal()], [0], [asks], [[]], [0], [0], [0]]


def test_odd_level_values_are_a_decode_error() -> None:
    entry = msgpack.packb([VERSION, [], _book_part([70_000, 5, 70_100]), [], []])
    with pytest.raises(DecodeError) as caught:
        decode_batch(entry)
    assert caught.value.reason == "bad_columns"


def test_empty_sides_round_trip() -> None:
    (book,) = decode_batch(msgpack.packb([VERSION, [], _book_part([]), [], []])).books
    assert book.asks == () and book.bids == ()
    assert book.ts == datetime(1970, 1, 1, tzinfo=UTC)
