"""The supervisor against a real websocket server on an ephemeral loopback port.

The server speaks a toy protocol (``SUB sym ch`` → ``ACK sym ch ok|no``; data ``D sym ch n``;
``PING n`` to be echoed; ``CONFLICT``), and the broker session that decodes it lives here, in
the test: the supervisor must work with any BrokerSession. Time is scaled down through
settings (stale_after_s, backoff) and every wait is a poll with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from http import HTTPStatus
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tickguard.brokers.base import (
    Ack,
    BrokerSession,
    Channel,
    Control,
    ControlKind,
    Decoded,
    Quarantine,
    Subscription,
)
from tickguard.models import Batch, BookSnapshot, Broker, Gap, Trade
from tickguard.settings import AppCredential, Settings, StreamSettings
from tickguard.stream.batcher import Batcher, EventQueue
from tickguard.stream.keylock import KeyGuard
from tickguard.stream.planner import plan_subscriptions
from tickguard.stream.stats import SessionStats
from tickguard.stream.supervisor import Supervisor

SYMBOLS = ["000001", "000002"]
BOTH = [Channel.TRADES, Channel.BOOK]


async def eventually(pred: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.005)


# --- the toy broker: server side ---------------------------------------------------------------


@dataclass
class ToyBroker:
    tick_s: float = 0.01
    connections: int = 0
    subs: list[str] = field(default_factory=list)
    echoes: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    conflicts_left: int = 0
    drop_on_connect: bool = False
    silent: bool = False
    http_status: int | None = None
    live: set[ServerConnection] = field(default_factory=set)
    seq: int = 0
    url: str = ""

    def reject(self, conn: ServerConnection, request: Request) -> Response | None:
        if self.http_status is not None:
            return conn.respond(HTTPStatus(self.http_status), "refused\n")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        if self.drop_on_connect:
            ws.transport.abort()
            return
        if self.conflicts_left:
            self.conflicts_left -= 1
            await ws.send("CONFLICT")
            await ws.wait_closed()
            return
        self.live.add(ws)
        accepted: list[str] = []
        pump = asyncio.create_task(self._pump(ws, accepted))
        try:
            async for msg in ws:  # ends with ConnectionClosed on a drop
                assert isinstance(msg, str)
                if msg.startswith("SUB "):
                    sub = msg[4:]
                    self.subs.append(sub)
                    ok = sub not in self.refuse
                    await ws.send(f"ACK {sub} {'ok' if ok else 'no'}")
                    if ok:
                        accepted.append(sub)
                elif msg.startswith("PING"):
                    self.echoes.append(msg)
        except ConnectionClosed:
            pass
        finally:
            pump.cancel()
            self.live.discard(ws)

    async def _pump(self, ws: ServerConnection, accepted: list[str]) -> None:
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(self.tick_s)
                if not self.silent:
                    for sub in list(accepted):
                        self.seq += 1
                        await ws.send(f"D {sub} {self.seq}")

    def drop(self) -> None:
        """TCP drop without a close frame, like the incident's KIS feed."""
        for ws in list(self.live):
            ws.transport.abort()

    async def send_all(self, frames: Sequence[str]) -> None:
        for ws in list(self.live):
            for frame in frames:
                await ws.send(frame)


@contextlib.asynccontextmanager
async def toy_broker(**kwargs: Any) -> AsyncIterator[ToyBroker]:
    broker = ToyBroker(**kwargs)
    server: Server
    async with serve(broker.handler, "127.0.0.1", 0, process_request=broker.reject) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        broker.url = f"ws://127.0.0.1:{port}/tryitout"
        yield broker


# --- the toy broker: client side (the sans-I/O session and traits under test) -----------------


class ToySession:
    def __init__(self, day: date) -> None:
        self.day = day

    def handshake(self) -> list[str]:
        return []

    def subscribe(self, subs: Sequence[Subscription]) -> list[str]:
        return [f"SUB {s.symbol} {s.channel.value}" for s in subs]

    def unsubscribe(self, subs: Sequence[Subscription]) -> list[str]:
        return []

    def receive(self, raw: str | bytes, received_at: datetime) -> Decoded:
        text = raw if isinstance(raw, str) else raw.decode()
        parts = text.split()
        out = Decoded()
        if parts[0] == "ACK":
            sub = Subscription(parts[1], Channel(parts[2]))
            ok = parts[3] == "ok"
            out.acks.append(Ack(sub, ok, "OK" if ok else "REFUSED", "toy"))
        elif parts[0] == "PING":
            out.replies.append(text)
            out.controls.append(Control(ControlKind.HEARTBEAT))
        elif parts[0] == "CONFLICT":
            out.controls.append(Control(ControlKind.SESSION_CONFLICT, "OPSP8996", "ALREADY IN USE"))
        elif parts[0] == "D" and len(parts) == 4:
            out.events.append(self._event(parts[1], Channel(parts[2]), int(parts[3]), received_at))
        else:
            out.quarantined.append(Quarantine(text, "unknown frame"))
        return out

    def _event(self, symbol: str, channel: Channel, n: int, at: datetime) -> Trade | BookSnapshot:
        if channel is Channel.TRADES:
            return Trade(Broker.KIS, symbol, self.day, at, 1000, 1, None, n, at)
        return BookSnapshot(Broker.KIS, symbol, self.day, at, ((1001, n),), ((999, n),), n, n, at)


@dataclass
class ToyTraits:
    url: str
    broker: Broker = Broker.KIS
    authorizations: int = 0

    def max_registrations(self, settings: Settings) -> int:
        return 41

    def ws_url(self, settings: Settings) -> str:
        return self.url

    def credentials(self, settings: Settings) -> list[AppCredential]:
        return [cred("a")]

    async def authorize(
        self, http: httpx.AsyncClient, settings: Settings, credential: AppCredential
    ) -> str:
        self.authorizations += 1
        return f"approval-{self.authorizations}"

    def new_session(
        self, authorization: str, trading_day: date, settings: Settings
    ) -> BrokerSession:
        return ToySession(trading_day)


def cred(name: str) -> AppCredential:
    return AppCredential(name=name, app_key=SecretStr(f"key-{name}"), app_secret=SecretStr("s"))


@dataclass
class ListSink:
    batches: list[Batch] = field(default_factory=list)
    gate: asyncio.Event | None = None

    async def put(self, batch: Batch) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.batches.append(batch)

    @property
    def trades(self) -> list[Trade]:
        return [t for b in self.batches for t in b.trades]

    @property
    def events(self) -> list[Trade | BookSnapshot]:
        return [e for b in self.batches for e in (*b.trades, *b.books)]

    @property
    def gaps(self) -> list[Gap]:
        return [g for b in self.batches for g in b.gaps]


def make_settings(**stream: Any) -> Settings:
    defaults: dict[str, Any] = {
        "stale_after_s": 5.0,
        "backoff_base_s": 0.02,
        "backoff_cap_s": 0.2,
        "batch_max_delay_s": 0.01,
    }
    defaults.update(stream)
    return Settings(stream=StreamSettings(**defaults))


@dataclass
class Running:
    sup: Supervisor
    sink: ListSink
    queue: EventQueue
    task: asyncio.Task[SessionStats]

    @property
    def stats(self) -> SessionStats:
        return self.sup.stats


@contextlib.asynccontextmanager
async def supervised(
    broker: ToyBroker,
    settings: Settings,
    *,
    sink: ListSink | None = None,
    guard: KeyGuard | None = None,
    credential: AppCredential | None = None,
    in_session: Callable[[], bool] | None = None,
) -> AsyncIterator[Running]:
    sink = sink or ListSink()
    queue = EventQueue(settings.stream.queue_max_events)
    plan = plan_subscriptions(SYMBOLS, BOTH, [credential or cred("a")], 41)[0]
    async with httpx.AsyncClient() as http:
        sup = Supervisor(
            ToyTraits(broker.url),
            settings,
            plan,
            http=http,
            queue=queue,
            key_guard=guard or KeyGuard(None, "t"),
            in_session=in_session,
        )
        batcher = Batcher(queue, sink, settings.stream)
        batch_task = asyncio.create_task(batcher.run())
        stop = asyncio.Event()
        task = asyncio.create_task(sup.run(stop))
        try:
            yield Running(sup, sink, queue, task)
        finally:
            stop.set()
            if sink.gate is not None:
                sink.gate.set()
            await asyncio.wait_for(task, 10)
            await batcher.close()
            await asyncio.wait_for(batch_task, 10)


def data_flowing(run: Running, after: int = 0) -> Callable[[], bool]:
    return lambda: len(run.sink.trades) > after


# --- tests --------------------------------------------------------------------------------------


async def test_subscribes_every_plan_entry_and_checks_every_ack() -> None:
    async with toy_broker() as broker, supervised(broker, make_settings()) as run:
        await eventually(lambda: run.stats.acks_ok == 4, what="4 acks")
        await eventually(data_flowing(run), what="data")
    assert sorted(broker.subs) == sorted(f"{s} {c.value}" for s in SYMBOLS for c in BOTH)
    assert run.stats.gaps_opened == 0 and run.stats.drops == 0
    assert run.task.result() is run.stats


async def test_drop_without_close_frame_resubscribes_at_once_and_records_gaps() -> None:
    async with toy_broker() as broker, supervised(broker, make_settings()) as run:
        await eventually(data_flowing(run), what="data")
        broker.drop()
        await eventually(lambda: len(broker.subs) == 8, what="resubscribe")
        seen = len(run.sink.trades)
        await eventually(data_flowing(run, seen), what="data after reconnect")
        await eventually(lambda: run.stats.gaps_closed == 4, what="gaps closed")
    stats = run.stats
    assert stats.drops == 1 and stats.reconnects == 1 and broker.connections == 2
    assert 0 <= stats.reconnect_s_first < 1.0
    assert stats.recover_s_max < 2.0
    gaps = run.sink.gaps
    opened = [g for g in gaps if g.end is None]
    closed = [g for g in gaps if g.end is not None]
    assert {(g.symbol, g.kind.value) for g in opened} == {
        (s, c.value) for s in SYMBOLS for c in BOTH
    }
    assert all(g.cause == "disconnect: no close frame received or sent" for g in opened)
    assert {(g.symbol, g.kind, g.start) for g in closed} == {
        (g.symbol, g.kind, g.start) for g in opened
    }
    # start = the last frame before the drop; end = the first data frame after the resubscribe.
    seen = [e.received_at for e in run.sink.events]
    start = opened[0].start
    before = [t for t in seen if t <= start]
    after = [t for t in seen if t > start]
    assert before and after
    assert all(g.start == start and g.end == min(after) for g in closed)


async def test_pingpong_is_echoed_as_a_text_frame_at_once() -> None:
    async with toy_broker() as broker, supervised(broker, make_settings()) as run:
        await eventually(data_flowing(run), what="data")
        await broker.send_all(['PING {"header":{"tr_id":"PINGPONG"}}'])
        await eventually(lambda: bool(broker.echoes), timeout=2.0, what="echo")
    assert broker.echoes == ['PING {"header":{"tr_id":"PINGPONG"}}']
    assert run.stats.replies == 1 and run.stats.drops == 0


async def test_watchdog_reconnects_a_silent_connection() -> None:
    settings = make_settings(stale_after_s=0.3)
    async with toy_broker() as broker, supervised(broker, settings) as run:
        await eventually(data_flowing(run), what="data")
        broker.silent = True
        silent_at = time.monotonic()
        await eventually(lambda: broker.connections == 2, timeout=3.0, what="reconnect")
        detected = time.monotonic() - silent_at
        broker.silent = False
        await eventually(lambda: run.stats.gaps_closed == 4, what="gaps closed")
    assert run.stats.stale == 1
    assert 0.3 <= detected < 1.5
    assert all(g.cause.startswith("stale: no data for") for g in run.sink.gaps)


async def test_watchdog_is_quiet_outside_the_trading_session() -> None:
    settings = make_settings(stale_after_s=0.2)
    async with (
        toy_broker(silent=True) as broker,
        supervised(broker, settings, in_session=lambda: False) as run,
    ):
        await eventually(lambda: run.stats.acks_ok == 4, what="acks")
        with pytest.raises(AssertionError):
            await eventually(lambda: broker.connections > 1, timeout=0.8)
    assert run.stats.stale == 0


async def test_breaker_cools_a_flap_loop_down() -> None:
    settings = make_settings(
        breaker_max_reconnects=3, breaker_window_s=30.0, breaker_cooldown_s=30.0, backoff_cap_s=0.05
    )
    async with toy_broker(drop_on_connect=True) as broker, supervised(broker, settings) as run:
        await eventually(lambda: run.stats.breaker_trips == 1, what="breaker trip")
        tripped_at = broker.connections
        with pytest.raises(AssertionError):  # no hammering during the cool-down
            await eventually(lambda: broker.connections > tripped_at, timeout=0.7)
    assert tripped_at == 4  # first try + 3 reconnects, then the 4th reconnect trips it


async def test_session_conflict_backs_off_then_gets_the_key() -> None:
    async with toy_broker(conflicts_left=1) as broker, supervised(broker, make_settings()) as run:
        await eventually(data_flowing(run), what="data after conflict")
    assert run.stats.session_conflicts == 1
    assert broker.connections == 2


async def test_refused_subscription_is_reported_and_its_gap_stays_open() -> None:
    async with (
        toy_broker(refuse={"000002 book"}) as broker,
        supervised(broker, make_settings()) as run,
    ):
        await eventually(lambda: run.stats.acks_refused == 1 and run.stats.acks_ok == 3)
        await eventually(data_flowing(run))
        broker.drop()
        await eventually(lambda: run.stats.gaps_closed == 3, what="3 gaps closed")
    open_gaps = {(g.symbol, g.kind.value) for g in run.sup.gaps.open.values()}
    assert open_gaps == {("000002", "book")}


async def test_handshake_refused_with_403_gives_up() -> None:
    async with toy_broker(http_status=403) as broker, supervised(broker, make_settings()) as run:
        await asyncio.wait_for(run.task, 5)
    assert run.stats.gave_up == "handshake refused: HTTP 403"
    assert broker.connections == 0


async def test_slow_sink_slows_reading_and_nothing_is_lost() -> None:
    settings = make_settings(queue_max_events=100, batch_max_events=50)
    sink = ListSink(gate=asyncio.Event())
    async with toy_broker(tick_s=0.001) as broker, supervised(broker, settings, sink=sink) as run:
        await eventually(lambda: run.queue.waits >= 1, what="back-pressure")
        frames = run.stats.frames
        # The reader is parked on a full queue: it stops reading, RAM stops growing.
        with pytest.raises(AssertionError):
            await eventually(lambda: run.stats.frames > frames + 1, timeout=0.3)
        assert run.queue.qsize() == 100 == run.queue.high_water
        sink.gate.set()
        await eventually(lambda: len(sink.trades) > 500, what="drain")
    received = [t.cum_volume for t in sink.trades]
    assert received == sorted(received)  # in order
    assert all(len(b) <= 50 for b in sink.batches)
    assert run.stats.trades == len(sink.trades)  # every decoded trade reached the sink


async def test_two_holders_of_one_app_key_never_run_two_sessions(
    redis_url: str, stream_prefix: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        async with toy_broker() as broker:
            first_guard, second_guard = (
                KeyGuard(client, stream_prefix),
                KeyGuard(client, stream_prefix),
            )
            async with supervised(broker, make_settings(), guard=first_guard) as first:
                await eventually(data_flowing(first))
                # Same app key under another name, another "process" (its own guard).
                alias = AppCredential(
                    name="alias", app_key=SecretStr("key-a"), app_secret=SecretStr("s")
                )
                async with supervised(
                    broker, make_settings(), guard=second_guard, credential=alias
                ) as second:
                    await eventually(lambda: second.stats.key_conflicts >= 2, what="second waits")
                    assert broker.connections == 1
                    assert second.stats.connects == 0
            assert not [k async for k in client.scan_iter(match=f"{stream_prefix}:keylock:*")]
    finally:
        await client.aclose()


async def test_a_lost_key_lock_ends_the_session_instead_of_fighting(
    redis_url: str, stream_prefix: str
) -> None:
    from tickguard.stream.keylock import lock_name

    client = aioredis.Redis.from_url(redis_url)
    try:
        guard = KeyGuard(client, stream_prefix, ttl_s=1.0)
        async with toy_broker() as broker, supervised(broker, make_settings(), guard=guard) as run:
            await eventually(data_flowing(run))
            await client.set(lock_name(stream_prefix, Broker.KIS, cred("a")), "other", px=10_000)
            await asyncio.wait_for(run.task, 5)
        assert run.stats.gave_up.startswith("key lost")
        assert broker.connections == 1
        assert not broker.live  # our socket is closed
    finally:
        await client.aclose()
