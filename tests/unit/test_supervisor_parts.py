"""The supervisor's small parts on their own: classifier, ack tracker, gap tracker, batcher."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidStatus, InvalidURI
from websockets.frames import Close
from websockets.http11 import Response

from tickguard.brokers.base import Ack, Channel, Subscription
from tickguard.errors import AuthError, PlanError, SessionConflictError
from tickguard.models import Batch, Broker, GapKind, Trade
from tickguard.settings import StreamSettings
from tickguard.stream.acks import AckTracker
from tickguard.stream.batcher import Batcher, EventQueue
from tickguard.stream.classify import KeyLostError, StaleFeedError, classify
from tickguard.stream.gaps import GapTracker

T0 = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
A = Subscription("005930", Channel.TRADES)
B = Subscription("005930", Channel.BOOK)


def _status(code: int) -> InvalidStatus:
    return InvalidStatus(Response(code, "x", Headers()))


@pytest.mark.parametrize(
    ("exc", "retry", "cause"),
    [
        (ConnectionClosedError(None, None), True, "disconnect: no close frame received or sent"),
        (
            ConnectionClosedError(Close(1011, "boom"), None),
            True,
            "disconnect: server closed (1011 boom)",
        ),
        (StaleFeedError("no data for 5.1s"), True, "stale: no data for 5.1s"),
        (SessionConflictError("OPSP8996"), True, "SessionConflictError: OPSP8996"),
        (AuthError("token"), True, "AuthError: token"),
        (ConnectionRefusedError(111, "Connection refused"), True, "network: Connection refused"),
        (httpx.ConnectError("x"), True, "REST transport: ConnectError"),
        (TimeoutError(), True, "timeout"),
        (_status(503), True, "handshake refused: HTTP 503"),
        (_status(403), False, "handshake refused: HTTP 403"),
        (InvalidURI("nope", "bad"), False, "invalid websocket URL"),
        (PlanError("too many"), False, "PlanError: too many"),
        (KeyLostError("taken"), False, "key lost: taken"),
        (ZeroDivisionError("bug"), False, "unexpected ZeroDivisionError: bug"),
    ],
)
def test_classifier_retries_what_time_can_fix_and_gives_up_on_the_rest(
    exc: BaseException, retry: bool, cause: str
) -> None:
    verdict = classify(exc)
    assert (verdict.retry, verdict.cause) == (retry, cause)


def test_ack_tracker_matches_refuses_and_expires() -> None:
    acks = AckTracker([A, B])
    assert acks.on_ack(Ack(A, True, "OPSP0000", "SUBSCRIBE SUCCESS")) == [A]
    assert acks.on_ack(Ack(A, True, "OPSP0000", "dup")) == []  # not pending any more
    assert not acks.complete
    assert acks.expire() == [B] and acks.complete
    anon = AckTracker([A, B])
    assert anon.on_ack(Ack(None, False, "1", "등록 종목수 초과")) == []
    assert set(anon.refused) == {A, B}


def test_gap_tracker_opens_once_per_outage_and_closes_accepted_only() -> None:
    gaps = GapTracker(Broker.KIS, [A, B])
    first = gaps.on_disconnect(T0, "disconnect: x", T0)
    assert [(g.kind, g.start, g.end) for g in first] == [
        (GapKind.TRADES, T0, None),
        (GapKind.BOOK, T0, None),
    ]
    assert gaps.on_disconnect(T0 + timedelta(seconds=1), "again", T0) == []  # same outage
    closed = gaps.on_data(T0 + timedelta(seconds=2), [A])
    assert [(g.kind, g.start, g.end) for g in closed] == [
        (GapKind.TRADES, T0, T0 + timedelta(seconds=2))
    ]
    assert list(gaps.open) == [B]
    assert first[0].end is None  # the emitted open gap is a copy, not mutated later


def _trade(n: int) -> Trade:
    return Trade(Broker.KIS, "005930", date(2026, 11, 26), T0, 100, 1, None, n, T0)


async def test_batcher_bounds_batches_and_flushes_everything_before_end() -> None:
    got: list[Batch] = []

    class Sink:
        async def put(self, batch: Batch) -> None:
            got.append(batch)

    queue = EventQueue(1000)
    batcher = Batcher(queue, Sink(), StreamSettings(batch_max_events=7, batch_max_delay_s=0.01))
    task = asyncio.create_task(batcher.run())
    await queue.put_many([_trade(i) for i in range(50)])
    await batcher.close()
    await asyncio.wait_for(task, 5)
    assert [t.cum_volume for b in got for t in b.trades] == list(range(50))
    assert all(1 <= len(b) <= 7 for b in got)
    assert batcher.stats.trades == 50 and batcher.stats.batches == len(got)


async def test_batcher_keeps_quarantined_frames_out_of_event_batches() -> None:
    from tickguard.models import QuarantineRecord

    got: list[Batch] = []

    class Sink:
        async def put(self, batch: Batch) -> None:
            got.append(batch)

    queue = EventQueue(1000)
    batcher = Batcher(queue, Sink(), StreamSettings(batch_max_events=100))
    task = asyncio.create_task(batcher.run())
    poison = QuarantineRecord(Broker.KIS, T0, "bad_frame", "0|\x00\x01")
    await queue.put_many([_trade(1), poison, _trade(2)])
    await batcher.close()
    await asyncio.wait_for(task, 5)
    assert [(len(b.trades), len(b.quarantined)) for b in got] == [(2, 0), (0, 1)]
