"""Shared tokens and throttling against real Redis and the KIS simulator: one token issue for
many workers, EGW00201 past the simulator's rate, and a pacer that rides it out."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from tickguard.backfill.fetch import FetchStats, Pacer
from tickguard.backfill.tokens import SharedToken
from tickguard.brokers.kis.rest import KisQuotations, KisRestClient
from tickguard.errors import AuthError, RateLimitedError
from tickguard.ratelimit import RedisRateLimiter
from tickguard.settings import AppCredential, KisSettings
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.kis_history import KisRestRules
from tickguard.sim.market import MarketConfig
from tickguard.sim.universe import default_universe

CRED = AppCredential(name="p", app_key=SecretStr("p-key"), app_secret=SecretStr("p-s"))


async def test_many_workers_one_issue_and_no_reissue_within_a_minute(
    redis_url: str, stream_prefix: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    issued: list[int] = []

    async def issue() -> tuple[SecretStr, datetime]:
        issued.append(1)
        await asyncio.sleep(0.2)  # a slow broker: the others must wait, not issue
        return SecretStr(f"tok{len(issued)}"), datetime.now(UTC) + timedelta(hours=24)

    key = f"{stream_prefix}:token:kis:p"
    workers = [SharedToken(client, key, issue, wait_s=5) for _ in range(5)]
    tokens = await asyncio.gather(*(w.get() for w in workers))
    assert {t.get_secret_value() for t in tokens} == {"tok1"} and len(issued) == 1
    await workers[0].invalidate()  # rejected by the broker, but issued seconds ago:
    with pytest.raises(AuthError, match="issued within the last minute"):
        await SharedToken(client, key, issue, wait_s=0.5).get()
    assert len(issued) == 1
    await client.aclose()


async def test_egw00201_past_the_rate_and_the_pacer_rides_it_out(
    tmp_path: Path, redis_url: str, stream_prefix: str
) -> None:
    market = MarketConfig(day=date.today(), symbols=default_universe(1), seed=1)
    config = KisSimConfig(market=market, truth_dir=tmp_path / "t", rest=KisRestRules(rate_per_s=5))
    client = aioredis.Redis.from_url(redis_url)
    async with KisSimulator(config) as sim, httpx.AsyncClient(timeout=10) as http:
        settings = KisSettings(rest_url=sim.rest_url)
        api, symbol = KisQuotations(http, settings), sim.market.symbols[0]
        token = (await KisRestClient(http, settings).issue_token(CRED)).access_token
        answers = await asyncio.gather(
            *(api.today_bars(token, CRED, symbol, "090000") for _ in range(8)),
            return_exceptions=True,
        )
        refused = [a for a in answers if isinstance(a, RateLimitedError)]
        assert refused and all("EGW00201" in str(a) for a in refused)

        async def issue() -> tuple[SecretStr, datetime]:
            return token, datetime.now(UTC) + timedelta(hours=24)

        stats = FetchStats(rate_per_s=50.0)  # deliberately above the simulator's 5/s
        limiter = RedisRateLimiter(client, f"{stream_prefix}:rl", rate_per_s=50.0)
        shared = SharedToken(client, f"{stream_prefix}:tok", issue)
        pacer = Pacer(limiter, shared, stats, pause_s=0.3)
        await asyncio.sleep(1.1)  # let the simulator's window empty
        for _ in range(12):
            await pacer.call(lambda tok: api.today_bars(tok, CRED, symbol, "090000"))
    await client.aclose()
    assert stats.rate_limit_errors > 0  # met, paused, retried: every call answered
    assert stats.requests == 12 + stats.rate_limit_errors


async def test_a_failing_symbol_is_reported_and_the_others_carry_on(
    tmp_path: Path, db_url: str, redis_url: str, stream_prefix: str
) -> None:
    from datetime import time as dtime

    from tickguard.backfill.run import run_backfill
    from tickguard.models import KST, Broker
    from tickguard.settings import Settings, SinkSettings
    from tickguard.sim.market import exchange_ts

    day = datetime.now(KST).date()
    market = MarketConfig(day=day, symbols=default_universe(1), seed=1)
    config = KisSimConfig(market=market, truth_dir=tmp_path / "t", speed=30.0, start_at=dtime(9))
    async with KisSimulator(config) as sim:
        await asyncio.sleep(max(0.0, sim.clock.wall_delay(9 * 3600 + 62)))
        settings = Settings(kis=KisSettings(rest_url=sim.rest_url, apps=[CRED]),
                            sink=SinkSettings(stream_prefix=stream_prefix))  # fmt: skip
        report = await run_backfill(
            settings, day=day, symbols=[sim.market.symbols[0], "999999"], broker=Broker.KIS,
            database_url=db_url, redis_url=redis_url, until=exchange_ts(day, 9 * 3600 + 60),
        )  # fmt: skip
    good, bad = report.symbols
    assert not good.error and good.stored_volume == good.expected_volume > 0
    assert bad.symbol == "999999" and "ProtocolError" in bad.error
