"""Stream-entry encoding: exact round trip, versioning, garbage rejected with DecodeError."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.errors import DecodeError
from tickguard.models import (
    KST,
    Batch,
    BookSnapshot,
    Broker,
    Gap,
    GapKind,
    GapStatus,
    QuarantineRecord,
    Side,
    Source,
    Trade,
)
from tickguard.sinks.encoding import VERSION, decode_batch, encode_batch

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Seoul had DST until 1988; Python never calls a time in a DST gap/fold equal to one in
# another zone (PEP 495), so KST values start after it.
aware = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(KST)
)
days = st.dates()
levels = st.lists(st.tuples(I64, I64), max_size=10).map(tuple)
json_like = st.recursive(
    st.none() | st.booleans() | I64 | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)

trades = st.builds(
    Trade,
    broker=st.sampled_from(Broker),
    symbol=st.text(max_size=12),
    trading_day=days,
    ts=aware,
    price=I64,
    qty=I64,
    side=st.none() | st.sampled_from(Side),
    cum_volume=I64,
    received_at=aware,
    source=st.sampled_from(Source),
)
books = st.builds(
    BookSnapshot,
    broker=st.sampled_from(Broker),
    symbol=st.text(max_size=12),
    trading_day=days,
    ts=aware,
    asks=levels,
    bids=levels,
    total_ask_qty=I64,
    total_bid_qty=I64,
    received_at=aware,
)
gaps = st.builds(
    Gap,
    broker=st.sampled_from(Broker),
    symbol=st.text(max_size=12),
    kind=st.sampled_from(GapKind),
    start=aware,
    end=st.none() | aware,
    cause=st.text(max_size=30),
    status=st.sampled_from(GapStatus),
    detected_at=st.none() | aware,
    resolved_at=st.none() | aware,
    rows_filled=I64,
    id=st.none() | I64,
    detail=st.dictionaries(st.text(max_size=8), json_like, max_size=4),
)
quarantined = st.builds(
    QuarantineRecord,
    broker=st.sampled_from(Broker),
    received_at=aware,
    reason=st.text(max_size=20),
    raw=st.text(max_size=200),
    detail=st.text(max_size=20),
)
batches = st.builds(
    Batch,
    trades=st.lists(trades, max_size=20),
    books=st.lists(books, max_size=5),
    gaps=st.lists(gaps, max_size=3),
    quarantined=st.lists(quarantined, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(batches)
def test_round_trip_is_exact(batch: Batch) -> None:
    decoded = decode_batch(encode_batch(batch))
    assert decoded == batch
    stamps = [t.ts for t in decoded.trades] + [b.received_at for b in decoded.books]
    assert all(ts.tzinfo is UTC for ts in stamps)


def test_same_instant_comes_back_in_utc() -> None:
    ts = datetime(2026, 3, 3, 9, 0, 0, 123456, tzinfo=KST)
    trade = Trade(Broker.KIS, "005930", ts.date(), ts, 70_000, 3, Side.BUY, 10, ts, Source.WS)
    out = decode_batch(encode_batch(Batch(trades=[trade]))).trades[0]
    assert out.ts == ts
    assert out.ts.utcoffset() == timedelta(0)
    assert out.ts.hour == 0 and out.ts.microsecond == 123456


def test_columnar_is_compact() -> None:
    ts = datetime(2026, 3, 3, 9, 0, tzinfo=KST)
    rows = [
        Trade(
            Broker.KIS,
            f"{i % 40:06d}",
            ts.date(),
            ts + timedelta(microseconds=i),
            70_000 + i,
            i % 50 + 1,
            Side.SELL,
            1_000 + i,
            ts,
            Source.WS,
        )
        for i in range(2000)
    ]
    size = len(encode_batch(Batch(trades=rows)))
    assert size < 2000 * 56  # ~51 bytes a trade; a row-wise dict encoding takes ~200


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\xc1",  # never-used msgpack byte
        b"not msgpack at all \xff\xfe",
        msgpack.packb({"v": 1}),
        msgpack.packb([VERSION + 1, [], [], [], []]),
        msgpack.packb([VERSION, [["kis"]], [], [], []]),  # wrong column count
        msgpack.packb([VERSION, [["kis"]] * 10, [], [], []]),  # bad column values
        msgpack.packb(
            [VERSION, [["nyse"], ["A"], [1], [0], [1], [1], [None], [1], [0], ["ws"]], [], [], []]
        ),
        msgpack.packb([VERSION, [[], [], [], [], [], [], [], [], [], []], [], [], [1]]),
    ],
)
def test_garbage_raises_decode_error(garbage: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_batch(garbage)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_escape_as_other_errors(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_batch(data)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.integers(min_value=-(2**52) + 1, max_value=2**52 - 1), min_size=1, max_size=5))
def test_fast_timestamp_path_is_exact(micros: list[int]) -> None:
    from tickguard.sinks.encoding import _dts

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert _dts(micros) == [epoch + timedelta(microseconds=us) for us in micros]
