"""Kiwoom on the shared supervisor, against the Kiwoom simulator with a flapping connection.

Nothing here is Kiwoom-specific except the traits looked up in the registry: token over REST,
LOGIN before REG, one symbol-less REG ack per connection, PINGs echoed, gaps opened on every
drop and closed by the next connection's data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import date
from datetime import time as dtime
from pathlib import Path

import httpx
from pydantic import SecretStr

from tickguard.brokers.base import Channel
from tickguard.brokers.registry import REGISTRY
from tickguard.models import Broker, Gap, QuarantineRecord, Trade
from tickguard.settings import AppCredential, KiwoomSettings, Settings, StreamSettings
from tickguard.sim.faults import FaultSchedule
from tickguard.sim.kiwoom import KiwoomSimConfig, KiwoomSimulator
from tickguard.sim.market import MarketConfig
from tickguard.sim.truth import TruthReader
from tickguard.sim.universe import profiles_for
from tickguard.stream.batcher import EventQueue
from tickguard.stream.keylock import KeyGuard
from tickguard.stream.planner import plan_subscriptions
from tickguard.stream.supervisor import Supervisor

DAY = date(2026, 3, 19)
SYMBOLS = ["122630", "252670"]
APP = AppCredential(name="kw1", app_key=SecretStr("kw-app"), app_secret=SecretStr("kw-secret"))


async def eventually(pred: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.01)


async def test_supervisor_rides_kiwoom_flaps(tmp_path: Path) -> None:
    sim_config = KiwoomSimConfig(
        market=MarketConfig(DAY, profiles_for(SYMBOLS), seed=11),
        speed=5.0,
        start_at=dtime(9, 0),
        truth_dir=tmp_path / "truth",
        ping_interval_s=0.2,
        faults=FaultSchedule.parse(["flap:0.6-0.9"], seed=5),
    )
    async with KiwoomSimulator(sim_config) as sim, httpx.AsyncClient() as http:
        settings = Settings(
            kiwoom=KiwoomSettings(rest_url=sim.rest_url, ws_url=sim.ws_url, apps=[APP]),
            stream=StreamSettings(
                stale_after_s=3.0,
                backoff_base_s=0.02,
                backoff_cap_s=0.1,
                breaker_max_reconnects=1000,
            ),
        )
        traits = REGISTRY[Broker.KIWOOM]
        plan = plan_subscriptions(SYMBOLS, [Channel.TRADES, Channel.BOOK],
                                  traits.credentials(settings),
                                  traits.max_registrations(settings))[0]  # fmt: skip
        queue = EventQueue(1_000_000)
        sup = Supervisor(traits, settings, plan, http=http, queue=queue,
                         key_guard=KeyGuard(None, uuid.uuid4().hex), trading_day=DAY)  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(sup.run(stop))
        try:
            await eventually(lambda: sup.stats.reconnects >= 3 and sup.stats.gaps_closed >= 8,
                             what="three reconnects with data after them")  # fmt: skip
        finally:
            stop.set()
            stats = await asyncio.wait_for(task, 10)
        sim.flush_truth()
        truth = {(t.symbol, t.cum_volume): t for t in TruthReader(sim.truth_dir).generated_trades()}
        tokens = sim.authority.tokens_issued
    items = []
    while queue.qsize():
        items.append(queue.get_nowait())
    trades = [i for i in items if isinstance(i, Trade)]
    assert not [i for i in items if isinstance(i, QuarantineRecord)]
    assert stats.acks_ok == stats.connects and stats.acks_refused == stats.acks_missing == 0
    assert stats.session_conflicts == 0 and stats.gave_up == ""
    assert stats.replies > 0  # PINGs echoed through the shared connection loop
    assert tokens == 1  # one token serves every reconnect of the day
    gaps = [i for i in items if isinstance(i, Gap)]
    assert {g.symbol for g in gaps} == set(SYMBOLS) and all(g.broker is Broker.KIWOOM for g in gaps)
    closed = [g for g in gaps if g.end is not None]
    assert len(closed) >= 8 and all(g.end is not None and g.end >= g.start for g in closed)
    assert all("disconnect" in g.cause for g in gaps)
    for trade in trades:
        expected = truth[(trade.symbol, trade.cum_volume)]
        assert (trade.price, trade.qty) == (expected.price, expected.qty)
