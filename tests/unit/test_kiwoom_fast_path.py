"""Kiwoom's fast 0B/0D parsers decode and refuse exactly as the FID-by-FID references do.

``parse_trade``/``parse_book`` take an entry whose numbers are all plain in-range integer
strings in one go and hand any other entry to ``parse_trade_checked``/``parse_book_checked``
(the parsers as they were): blank levels, non-string values, signs, out-of-range numbers.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.brokers import MAX_NUMBER
from tickguard.brokers.kiwoom import wire
from tickguard.errors import DecodeError
from tickguard.models import BookSnapshot, Side, Trade

DATA = Path(__file__).parents[1] / "data" / "kiwoom"
DAY = date(2026, 3, 19)
NOW = datetime(2026, 3, 19, 7, 52, 9, tzinfo=UTC)
BOOK_FIDS = [
    *wire.ASK_PRICE_FIDS,
    *wire.BID_PRICE_FIDS,
    *wire.ASK_QTY_FIDS,
    *wire.BID_QTY_FIDS,
    wire.FID_TOTAL_ASK,
    wire.FID_TOTAL_BID,
]
TRADE_FIDS = [wire.FID_TRADE_VOLUME, wire.FID_CUM_VOLUME, wire.FID_PRICE, wire.FID_TRADE_TIME]


def _values(name: str) -> dict[str, object]:
    values = json.loads((DATA / name).read_text(encoding="utf-8"))["data"][0]["values"]
    assert isinstance(values, dict)
    return values


TRADE = _values("real_0b_example.json")
BOOK = _values("real_0d_multi.json")


def _outcome(parse: object, values: dict[str, object]) -> Trade | BookSnapshot | tuple[str, str]:
    assert callable(parse)
    try:
        event = parse("005930", values, wire.TimeCache(DAY), NOW)
    except DecodeError as exc:
        return (exc.reason, exc.detail)
    assert isinstance(event, Trade | BookSnapshot)
    return event


def test_the_examples_decode_alike() -> None:
    trade = _outcome(wire.parse_trade, TRADE)
    assert isinstance(trade, Trade) and trade.side is Side.BUY and trade.price == 20800
    assert trade == _outcome(wire.parse_trade_checked, TRADE)
    book = _outcome(wire.parse_book, BOOK)
    assert isinstance(book, BookSnapshot) and len(book.asks) == len(book.bids) == 10
    assert book == _outcome(wire.parse_book_checked, BOOK)


@pytest.mark.parametrize(
    ("volume", "side"), [("+5", Side.BUY), ("-5", Side.SELL), ("5", None), (" -5", None)]
)
def test_trade_side_comes_from_the_volume_sign(volume: str, side: Side | None) -> None:
    trade = _outcome(wire.parse_trade, {**TRADE, wire.FID_TRADE_VOLUME: volume})
    assert isinstance(trade, Trade) and trade.side is side and trade.qty == 5


@pytest.mark.parametrize("fid", BOOK_FIDS)
@pytest.mark.parametrize(
    "value", ["", "0", "-0", "-3", "+3", str(MAX_NUMBER + 1), "x", None, 3, 3.5, True]
)
def test_any_book_fid_value_gives_the_reference_outcome(fid: str, value: object) -> None:
    values = {**BOOK, fid: value}
    if value is None:
        del values[fid]
    assert _outcome(wire.parse_book, values) == _outcome(wire.parse_book_checked, values)


def test_blank_and_zero_levels_are_left_out_on_both_sides() -> None:
    values = {**BOOK, "41": "0", "50": "", "51": "-0", "60": "0", "70": "junk", "80": ""}
    book = _outcome(wire.parse_book, values)
    assert isinstance(book, BookSnapshot) and len(book.asks) == 8 and len(book.bids) == 8
    assert book == _outcome(wire.parse_book_checked, values)


_text = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.integers(min_value=-(10**6), max_value=10**6).map(lambda n: f"+{n}"),
    st.sampled_from(
        ["", "0", "-0", " 7", "1_0", "x", str(MAX_NUMBER), str(-MAX_NUMBER - 1), "093001", "2561"]
    ),
)
_value = st.one_of(_text, st.none(), st.integers(), st.floats(allow_nan=False), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(TRADE_FIDS), _value, max_size=4))
def test_trade_fast_path_agrees_with_the_reference(changes: dict[str, object]) -> None:
    values = {**TRADE, **changes}
    assert _outcome(wire.parse_trade, values) == _outcome(wire.parse_trade_checked, values)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*BOOK_FIDS, wire.FID_BOOK_TIME]), _value, max_size=8))
def test_book_fast_path_agrees_with_the_reference(changes: dict[str, object]) -> None:
    values = {**BOOK, **changes}
    assert _outcome(wire.parse_book, values) == _outcome(wire.parse_book_checked, values)
