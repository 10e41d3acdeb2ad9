"""Kiwoom backfill: ka10079 carries no cumulative volume, so it is derived from the day's tick
list and checked against stored rows before anything is written (real simulator, DB, Redis)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import psycopg
from pydantic import SecretStr

from tickguard.backfill.run import run_backfill
from tickguard.models import KST, Batch, Broker, Gap, GapKind, Source, Trade
from tickguard.settings import AppCredential, KiwoomSettings, Settings, SinkSettings
from tickguard.sim.kiwoom import KiwoomSimConfig, KiwoomSimulator
from tickguard.sim.kiwoom_rest import KiwoomRestRules
from tickguard.sim.market import GenTrade, MarketConfig, exchange_ts
from tickguard.sim.universe import default_universe
from tickguard.store.migrate import libpq_url
from tickguard.store.writer import PostgresWriter

UNTIL_T = 9 * 3600 + 4 * 60


def _trade(g: GenTrade, price: int | None = None) -> Trade:
    ts = exchange_ts(g.day, g.t)
    return Trade(Broker.KIWOOM, g.symbol, g.day, ts, price or g.price, g.qty, g.side,
                 g.cum_volume, ts, Source.WS)  # fmt: skip


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


async def test_kiwoom_derives_cum_volume_and_refuses_a_disagreeing_day(
    tmp_path: Path, db_url: str, redis_url: str, stream_prefix: str
) -> None:
    day = datetime.now(KST).date()
    market = MarketConfig(day=day, symbols=default_universe(2), seed=5)
    rules = KiwoomRestRules(page_size=200, max_requests=5, window_s=1.0)
    config = KiwoomSimConfig(market=market, truth_dir=tmp_path / "truth", speed=30.0,
                             start_at=dtime(9, 0), rest=rules)  # fmt: skip
    async with KiwoomSimulator(config) as sim:
        deadline = time.monotonic() + 60
        while sim.clock.session_t() < UNTIL_T + 5:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        good, bad = sim.market.symbols
        truth = {
            s: [e for e in sim.market.symbol_tape(s) if isinstance(e, GenTrade) and e.t < UNTIL_T]
            for s in (good, bad)
        }
        lost = (9 * 3600 + 60, 9 * 3600 + 120)
        kept = [_trade(g) for g in truth[good] if not lost[0] <= g.t < lost[1]]
        # bad: a stored row whose price disagrees with the broker's tick list
        kept += [_trade(g, g.price + 1 if i == 3 else None)
                 for i, g in enumerate(truth[bad]) if not lost[0] <= g.t < lost[1]]  # fmt: skip
        start, end = exchange_ts(day, lost[0]), exchange_ts(day, lost[1])
        gaps = [Gap(Broker.KIWOOM, s, GapKind.TRADES, start, end, "flap") for s in (good, bad)]
        writer = PostgresWriter.connect(db_url)
        writer.write(Batch(trades=kept, gaps=gaps))
        writer.close()

        app = AppCredential(name="kw", app_key=SecretStr("kw-key"), app_secret=SecretStr("kw-s"))
        settings = Settings(
            kiwoom=KiwoomSettings(rest_url=sim.rest_url, apps=[app], rest_rate_per_s=4.0),
            sink=SinkSettings(stream_prefix=stream_prefix),
        )
        report = await run_backfill(
            settings, day=day, symbols=[good, bad], broker=Broker.KIWOOM,
            database_url=db_url, redis_url=redis_url, until=exchange_ts(day, UNTIL_T),
        )  # fmt: skip

    by_symbol = {r.symbol: r for r in report.symbols}
    expected = {(g.cum_volume, g.price, g.qty, exchange_ts(day, g.t)) for g in truth[good]}
    stored = _rows(db_url, f"SELECT cum_volume, price, qty, ts FROM trades WHERE symbol = '{good}'")
    assert {r for r in stored if r[3] < exchange_ts(day, UNTIL_T)} == expected
    assert by_symbol[good].trades_filled > 0 and not by_symbol[good].error
    assert by_symbol[bad].trades_filled == 0 and by_symbol[bad].conflicts == 1
    statuses = dict(_rows(db_url, "SELECT symbol, status FROM gaps WHERE kind = 'trades' "
                                  "AND cause = 'flap'"))  # fmt: skip
    assert statuses == {good: "filled", bad: "unrecoverable"}
    assert report.stats.rate_limit_errors_max_per_min <= 1
