"""The codec driving a real websocket session against the KIS simulator on loopback.

No supervisor here: traits authorize over HTTP, the session object builds every frame we
send and decodes every frame we receive, and the test plays the socket. This pins the codec
to the simulator's independent reading of the protocol: subscribe messages it accepts, acks,
OPSP0002/0008/8996, PINGPONG echoes that keep the session alive, and data frames.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime

import httpx
import pytest
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect

from tickguard.brokers.base import Ack, Channel, ControlKind, Decoded, Subscription
from tickguard.brokers.kis.codec import KisSession
from tickguard.brokers.registry import REGISTRY
from tickguard.models import BookSnapshot, Broker, Trade
from tickguard.settings import AppCredential, KisSettings, Settings
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.market import MarketConfig
from tickguard.sim.universe import default_universe

DAY = date(2026, 6, 12)
APP = AppCredential(name="a", app_key=SecretStr("APP-A"), app_secret=SecretStr("SEC-A"))
UNIVERSE = default_universe(3)


@pytest.fixture
async def sim() -> AsyncIterator[KisSimulator]:
    config = KisSimConfig(
        market=MarketConfig(day=DAY, symbols=UNIVERSE, seed=5),
        speed=20.0,
        max_registrations=4,
        pingpong_interval_s=0.3,
        pingpong_timeout_s=1.0,
        slot_hold_s=0.2,
    )
    async with KisSimulator(config) as simulator:
        yield simulator


async def _session(sim: KisSimulator) -> tuple[KisSession, Settings, str]:
    traits = REGISTRY[Broker.KIS]
    settings = Settings(kis=KisSettings(rest_url=sim.rest_url, ws_url=sim.ws_url, apps=[APP]))
    async with httpx.AsyncClient(timeout=5.0) as http:
        key = await traits.authorize(http, settings, APP)
    session = traits.new_session(key, DAY, settings)
    assert isinstance(session, KisSession)
    return session, settings, key


async def _pump(
    ws: ClientConnection,
    session: KisSession,
    seen: Decoded,
    done: Callable[[], bool],
    within: float,
) -> None:
    """Receive and decode until ``done()``, echoing what the codec says to echo."""
    deadline = time.monotonic() + within
    while not done():
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out: {len(seen.events)} events, acks {seen.acks}"
        raw = await asyncio.wait_for(ws.recv(), remaining)
        out = session.receive(raw, datetime.now(UTC))
        for reply in out.replies:
            await ws.send(reply)
        seen.events += out.events
        seen.acks += out.acks
        seen.controls += out.controls
        seen.replies += out.replies
        seen.quarantined += out.quarantined


async def test_subscribe_ack_decode_and_keep_alive(sim: KisSimulator) -> None:
    session, _, _ = await _session(sim)
    subs = [Subscription(p.symbol, ch) for p in UNIVERSE[:2] for ch in Channel]
    seen = Decoded()
    async with connect(sim.ws_url, ping_interval=None) as ws:
        for frame in session.subscribe(subs):
            await ws.send(frame)

        def enough() -> bool:
            kinds = {type(e) for e in seen.events}
            return len(seen.acks) >= 4 and kinds == {Trade, BookSnapshot} and len(seen.replies) >= 3

        await _pump(ws, session, seen, enough, within=20)
        assert {a.subscription for a in seen.acks} == set(subs) and len(seen.acks) == 4
        assert all(a.ok and a.code == "OPSP0000" for a in seen.acks)
        assert {e.symbol for e in seen.events} <= {p.symbol for p in UNIVERSE[:2]}
        assert seen.quarantined == []
        for frame in session.subscribe(subs[:1]):  # again: already subscribed, still fine
            await ws.send(frame)
        seen.acks.clear()
        await _pump(ws, session, seen, lambda: bool(seen.acks), within=10)
        assert seen.acks[0] == Ack(subs[0], True, "OPSP0002", "ALREADY IN SUBSCRIBE")
        assert sim.counters.pongs_received >= 3  # the echoes kept the session open


async def test_registration_cap_and_second_session_conflict(sim: KisSimulator) -> None:
    session, settings, key = await _session(sim)
    subs = [Subscription(p.symbol, ch) for p in UNIVERSE for ch in Channel]  # 6 > cap of 4
    seen = Decoded()
    async with connect(sim.ws_url, ping_interval=None) as ws:
        for frame in session.subscribe(subs):
            await ws.send(frame)
        await _pump(ws, session, seen, lambda: len(seen.acks) >= 6, within=20)
        refused = [a for a in seen.acks if not a.ok]
        assert [a.code for a in refused] == ["OPSP0008", "OPSP0008"]
        assert sum(a.ok for a in seen.acks) == 4

        other = REGISTRY[Broker.KIS].new_session(key, DAY, settings)  # same key, 2nd socket
        conflict = Decoded()
        async with connect(sim.ws_url, ping_interval=None) as ws2:
            for frame in other.subscribe(subs[:1]):
                await ws2.send(frame)
            await _pump(ws2, other, conflict, lambda: bool(conflict.controls), within=10)
        assert [c.kind for c in conflict.controls] == [ControlKind.SESSION_CONFLICT]
        assert conflict.acks == []
