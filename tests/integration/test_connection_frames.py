"""A connection hands each frame's items to the queue in frame order and counts them.

A real websocket server sends scripted frames; a scripted session decodes them. Data-only
frames take the runner's short path (their events go to the queue as they are), any other
frame the general one: both must queue the same items, in order, with the same counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tickguard.brokers.base import Ack, Channel, Decoded, Quarantine, Subscription
from tickguard.models import BookSnapshot, Broker, Gap, HaltSignal, QuarantineRecord, Trade
from tickguard.settings import StreamSettings
from tickguard.stream.batcher import EventQueue, Item
from tickguard.stream.connection import ConnectionRunner
from tickguard.stream.gaps import GapTracker
from tickguard.stream.stats import SessionStats

T0 = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
SUB = Subscription("005930", Channel.TRADES)
# one letter a record: T trade, B book, Q undecodable, H halt flag, A ack
FRAMES = ["A", "T", "B", "TT", "QT", "BH", "TBT", ""]


def _trade(n: int) -> Trade:
    return Trade(Broker.KIS, "005930", date(2026, 11, 26), T0, 100, 1, None, n, T0)


def _book(n: int) -> BookSnapshot:
    return BookSnapshot(Broker.KIS, "005930", date(2026, 11, 26), T0, ((100 + n, 1),), (), 1, 0, T0)


class ScriptedSession:
    def __init__(self) -> None:
        self.n = 0

    def handshake(self) -> list[str]:
        return []

    def subscribe(self, subs: Sequence[Subscription]) -> list[str]:
        return ["sub"]

    def unsubscribe(self, subs: Sequence[Subscription]) -> list[str]:
        return []

    def receive(self, raw: str | bytes, now: datetime) -> Decoded:
        out = Decoded()
        for letter in str(raw):
            self.n += 1
            if letter == "T":
                out.events.append(_trade(self.n))
            elif letter == "B":
                out.events.append(_book(self.n))
            elif letter == "Q":
                out.quarantined.append(Quarantine(f"bad {self.n}", "bad_frame"))
            elif letter == "H":
                out.halts.append(HaltSignal(Broker.KIS, "005930", T0, True))
            elif letter == "A":
                out.acks.append(Ack(SUB, True, "OPSP0000", "SUBSCRIBE SUCCESS"))
        return out


@asynccontextmanager
async def scripted_server(frames: list[str]) -> AsyncIterator[str]:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # the subscribe frame
        for frame in frames:
            await ws.send(frame)
        await ws.close()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def test_frames_reach_the_queue_in_order_with_their_counts() -> None:
    queue = EventQueue(1000)
    stats = SessionStats(key="a")
    gaps = GapTracker(Broker.KIS, [SUB])
    gaps.on_disconnect(T0, "disconnect: earlier", T0)  # open: the first data closes it
    async with scripted_server(FRAMES) as url:
        runner = ConnectionRunner(
            broker=Broker.KIS, url=url, subscriptions=[SUB], session=ScriptedSession(),
            queue=queue, gaps=gaps, stats=stats, stream=StreamSettings(), stop=asyncio.Event(),
        )  # fmt: skip
        with pytest.raises(ConnectionClosed):  # the server's close ends the read loop
            await asyncio.wait_for(runner.run(), 10)
    items: list[Item] = queue.take_nowait(1000)
    kinds = "".join(
        "G" if isinstance(i, Gap)
        else "T" if isinstance(i, Trade)
        else "B" if isinstance(i, BookSnapshot)
        else "Q" if isinstance(i, QuarantineRecord)
        else "H"
        for i in items
    )  # fmt: skip
    assert kinds == "G" + "T" + "B" + "TT" + "QT" + "BH" + "TBT"
    assert [t.cum_volume for t in items if isinstance(t, Trade)] == [2, 4, 5, 7, 10, 12]
    assert (stats.frames, stats.data_frames) == (len(FRAMES), 6)
    assert (stats.trades, stats.books, stats.quarantined) == (6, 3, 1)
    assert stats.gaps_closed == 1 and not gaps.open
