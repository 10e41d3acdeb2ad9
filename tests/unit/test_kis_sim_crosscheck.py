"""The codec against the simulator's independent KIS encoder: same events out as went in.

``tickguard.sim.kis_wire`` was written separately from the same protocol reference, so a
seeded morning of simulated trades and books must come back unchanged through the codec,
in frames of one and of many records, and with a grown trailing field.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

from pydantic import SecretStr

from tickguard.brokers.kis.codec import KisSession
from tickguard.models import BookSnapshot, Trade
from tickguard.sim import kis_wire
from tickguard.sim.market import GenBook, GenTrade, Market, MarketConfig
from tickguard.sim.universe import default_universe

DAY = date(2026, 6, 12)
NOW = datetime(2026, 6, 12, 0, 5, tzinfo=UTC)


def _morning(events: int) -> list[GenTrade | GenBook]:
    market = Market(MarketConfig(day=DAY, symbols=default_universe(6), seed=11))
    return list(itertools.islice(market.events(start_t=9 * 3600 - 30), events))


def _frames(events: list[GenTrade | GenBook], per_frame: int, grown: bool) -> list[str]:
    """Consecutive events of one TR batched into frames of up to ``per_frame`` records."""
    frames: list[str] = []
    for is_trade, group in itertools.groupby(events, key=lambda e: isinstance(e, GenTrade)):
        records = [
            kis_wire.trade_record(e) if isinstance(e, GenTrade) else kis_wire.book_record(e)
            for e in group
        ]
        if grown:
            records = [kis_wire.grow(r, "2") for r in records]
        tr_id = kis_wire.TR_TRADE if is_trade else kis_wire.TR_BOOK
        for i in range(0, len(records), per_frame):
            frames.append(kis_wire.data_frame(tr_id, records[i : i + per_frame]))
    return frames


def _expected(event: GenTrade | GenBook) -> tuple[object, ...]:
    if isinstance(event, GenTrade):
        return (
            "trade",
            event.symbol,
            event.ts,
            event.price,
            event.qty,
            event.side,
            event.cum_volume,
        )
    book = event.book
    return (
        "book",
        event.symbol,
        event.ts.replace(microsecond=0),
        tuple(level for level in book.asks if level[0]),
        tuple(level for level in book.bids if level[0]),
        book.total_ask,
        book.total_bid,
    )


def _decoded(event: Trade | BookSnapshot) -> tuple[object, ...]:
    if isinstance(event, Trade):
        return (
            "trade",
            event.symbol,
            event.ts,
            event.price,
            event.qty,
            event.side,
            event.cum_volume,
        )
    return (
        "book",
        event.symbol,
        event.ts,
        event.asks,
        event.bids,
        event.total_ask_qty,
        event.total_bid_qty,
    )


def _roundtrip(per_frame: int, grown: bool) -> None:
    events = _morning(3_000)
    assert any(isinstance(e, GenTrade) for e in events) and any(
        isinstance(e, GenBook) for e in events
    )
    session = KisSession(SecretStr("k"), DAY)
    decoded = [e for f in _frames(events, per_frame, grown) for e in session.receive(f, NOW).events]
    assert not session.counters, session.counters
    assert [_decoded(e) for e in decoded] == [_expected(e) for e in events]


def test_single_record_frames_round_trip() -> None:
    _roundtrip(per_frame=1, grown=False)


def test_multi_record_frames_with_a_grown_field_round_trip() -> None:
    _roundtrip(per_frame=7, grown=True)
