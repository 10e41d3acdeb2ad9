"""The H0STASP0 fast path decodes and refuses exactly as the field-by-field reference does.

``parse_h0stasp0_record`` converts a book's 42 numbers at once and hands any record it does
not take whole to ``parse_h0stasp0_record_checked`` (the decoder as it was, field by field):
thin books, zero-price levels with junk quantities, out-of-range values at every position.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from tickguard.brokers import MAX_NUMBER
from tickguard.brokers.kis import wire
from tickguard.brokers.kis.codec import KisSession
from tickguard.brokers.kis.records import (
    KstTimes,
    parse_h0stasp0_record,
    parse_h0stasp0_record_checked,
)
from tickguard.errors import DecodeError
from tickguard.models import BookSnapshot

DATA = Path(__file__).resolve().parents[1] / "data" / "kis"
RECEIVED = datetime(2023, 6, 12, 0, 34, 0, 123456, tzinfo=UTC)
DAY = date(2023, 6, 12)
COLUMNS = wire.H0STASP0_COLUMNS
LEVELS = range(1, 11)
NUMERIC = [
    *(f"ASKP{n}" for n in LEVELS),
    *(f"BIDP{n}" for n in LEVELS),
    *(f"ASKP_RSQN{n}" for n in LEVELS),
    *(f"BIDP_RSQN{n}" for n in LEVELS),
    "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN",
]


def _example() -> list[str]:
    return (DATA / "h0stasp0_example.txt").read_text().strip().split("|", 3)[3].split("^")


def _with(fields: list[str], **changes: str) -> list[str]:
    out = list(fields)
    for name, value in changes.items():
        out[COLUMNS.index(name)] = value
    return out


def _outcome(parse: object, fields: list[str]) -> BookSnapshot | tuple[str, str]:
    assert callable(parse)
    try:
        book = parse(KstTimes(), DAY, fields, 0, RECEIVED)
    except DecodeError as exc:
        return (exc.reason, exc.detail)
    assert isinstance(book, BookSnapshot)
    return book


def _decode(fields: list[str]) -> BookSnapshot | str:
    session = KisSession(SecretStr("approval"), DAY)
    out = session.receive("0|H0STASP0|001|" + "^".join(fields), RECEIVED)
    if out.quarantined:
        (q,) = out.quarantined
        return q.reason
    (book,) = out.events
    assert isinstance(book, BookSnapshot)
    return book


def test_a_full_book_is_ten_levels_a_side_best_first() -> None:
    book = _decode(_example())
    assert isinstance(book, BookSnapshot)
    assert book.asks[0] == (71900, 91918) and len(book.asks) == len(book.bids) == 10
    assert _outcome(parse_h0stasp0_record, _example()) == _outcome(
        parse_h0stasp0_record_checked, _example()
    )


@pytest.mark.parametrize(
    "empty",
    [(10,), (9, 10), (1,), (3, 7), tuple(LEVELS)],
    ids=["last", "tail", "best", "middle", "all"],
)
def test_thin_book_leaves_zero_price_levels_out_wherever_they_are(empty: tuple[int, ...]) -> None:
    changes = {f"ASKP{n}": "0" for n in empty} | {f"BIDP{n}": "0" for n in empty}
    fields = _with(_example(), **changes)
    book = _decode(fields)
    assert isinstance(book, BookSnapshot)
    full = _decode(_example())
    assert isinstance(full, BookSnapshot)
    kept = [n - 1 for n in LEVELS if n not in empty]
    assert book.asks == tuple(full.asks[i] for i in kept)
    assert book.bids == tuple(full.bids[i] for i in kept)
    assert _outcome(parse_h0stasp0_record, fields) == _outcome(
        parse_h0stasp0_record_checked, fields
    )


@pytest.mark.parametrize("junk", ["N/A", "-1", str(MAX_NUMBER + 1), ""])
def test_a_zero_price_levels_quantity_is_ignored_as_before(junk: str) -> None:
    fields = _with(_example(), ASKP10="0", ASKP_RSQN10=junk, BIDP1="0", BIDP_RSQN1=junk)
    book = _decode(fields)
    assert isinstance(book, BookSnapshot)
    assert len(book.asks) == 9 and len(book.bids) == 9


@pytest.mark.parametrize("column", NUMERIC)
@pytest.mark.parametrize("value", ["-1", str(MAX_NUMBER + 1), "12a"])
def test_a_bad_number_at_any_position_is_refused_with_the_reference_reason(
    column: str, value: str
) -> None:
    fields = _with(_example(), **{column: value})
    expected = _outcome(parse_h0stasp0_record_checked, fields)
    assert _outcome(parse_h0stasp0_record, fields) == expected
    price = column.startswith(("ASKP", "BIDP")) and "RSQN" not in column
    reason = "bad_price" if price and value != "12a" else "bad_number"
    assert isinstance(expected, tuple) and expected[0] == reason
    assert _decode(fields) == reason


def test_the_largest_numbers_pass_and_minus_zero_is_zero() -> None:
    fields = _with(_example(), ASKP_RSQN1=str(MAX_NUMBER), TOTAL_BIDP_RSQN=str(MAX_NUMBER))
    book = _decode(fields)
    assert isinstance(book, BookSnapshot)
    assert book.asks[0][1] == MAX_NUMBER and book.total_bid_qty == MAX_NUMBER
    minus_zero = _with(_example(), ASKP_RSQN2="-0", BIDP10="-0")
    book = _decode(minus_zero)
    assert isinstance(book, BookSnapshot)
    assert book.asks[1][1] == 0 and len(book.bids) == 9


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("MKSC_SHRN_ISCD", "", "bad_symbol"),
        ("MKSC_SHRN_ISCD", "00593O-", "bad_symbol"),
        ("MKSC_SHRN_ISCD", "0" * 13, "bad_symbol"),
        ("BSOP_HOUR", "2561", "bad_time"),
        ("BSOP_HOUR", "256100", "bad_time"),
    ],
)
def test_symbol_and_time_are_still_checked(column: str, value: str, reason: str) -> None:
    fields = _with(_example(), **{column: value})
    assert _outcome(parse_h0stasp0_record, fields) == _outcome(
        parse_h0stasp0_record_checked, fields
    )
    assert _decode(fields) == reason


_number = st.one_of(
    st.integers(min_value=0, max_value=999_999).map(str),
    st.sampled_from(
        ["0", "-0", "-1", " 7", "1_0", "+5", "", "N/A", "0.5", str(MAX_NUMBER), str(MAX_NUMBER + 1)]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(NUMERIC), _number, max_size=8),
    st.sampled_from(["005930", "", "a b"]),
    st.sampled_from(["093354", "2561xx"]),
)
def test_fast_path_agrees_with_the_reference_on_any_record(
    changes: dict[str, str], symbol: str, hour: str
) -> None:
    fields = _with(_example(), MKSC_SHRN_ISCD=symbol, BSOP_HOUR=hour, **changes)
    assert _outcome(parse_h0stasp0_record, fields) == _outcome(
        parse_h0stasp0_record_checked, fields
    )
