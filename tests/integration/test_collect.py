"""run_collector against the KIS simulator: every trade sent is received, plans are refused
before connecting, recordings replay to the same events, and the CLI refuses bad input."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from tickguard.brokers.registry import REGISTRY
from tickguard.cli import app
from tickguard.collector import run_collector
from tickguard.errors import PlanError
from tickguard.models import Batch, Broker
from tickguard.settings import AppCredential, KisSettings, Settings
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.market import MarketConfig
from tickguard.sim.truth import TruthReader
from tickguard.sim.universe import default_symbols, profiles_for
from tickguard.stream.recorder import recordings
from tickguard.stream.replay import replay

DAY = date(2026, 11, 26)


async def eventually(pred: Callable[[], bool], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


class ListSink:
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def put(self, batch: Batch) -> None:
        self.batches.append(batch)

    @property
    def trade_keys(self) -> list[tuple[str, int]]:
        return [(t.symbol, t.cum_volume) for b in self.batches for t in b.trades]


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[KisSimulator]:
    market = MarketConfig(day=DAY, symbols=profiles_for(default_symbols(6)), seed=3)
    config = KisSimConfig(market=market, speed=20.0, truth_dir=tmp_path / "truth", slot_hold_s=0.0)
    async with KisSimulator(config) as simulator:
        yield simulator


def settings_for(sim: KisSimulator, keys: int = 1) -> Settings:
    apps = [
        AppCredential(name=f"k{i}", app_key=SecretStr(f"app{i}"), app_secret=SecretStr("s"))
        for i in range(keys)
    ]
    return Settings(kis=KisSettings(rest_url=sim.rest_url, ws_url=sim.ws_url, apps=apps))


async def test_collector_receives_every_trade_sent_and_records_raw_frames(
    sim: KisSimulator, tmp_path: Path
) -> None:
    settings = settings_for(sim)
    sink, stop = ListSink(), asyncio.Event()
    task = asyncio.create_task(
        run_collector(
            settings, Broker.KIS, default_symbols(6), sink=sink, stop_event=stop,
            record_dir=tmp_path / "raw", trading_day=DAY,
        )
    )  # fmt: skip
    await eventually(lambda: len(sink.trade_keys) > 300)
    stop.set()
    report = await asyncio.wait_for(task, 10)
    await eventually(lambda: not sim.sessions.conns)  # the simulator saw the close
    sim.flush_truth()
    sent = {(s, k) for s, _d, k in TruthReader(sim.truth_dir).sent_trade_keys()}
    got = sink.trade_keys
    assert len(got) == len(set(got))  # no duplicates within one clean run
    assert set(got) == sent  # every trade sent reached the sink: nothing lost at shutdown
    assert report.totals["trades"] == len(got) and report.totals["subscriptions"] == 12
    assert report.totals["acks_ok"] == 12 and report.totals["drops"] == 0
    # The recording replays through the codec to the same trades.
    files = recordings(tmp_path / "raw")
    assert files and report.recorders[0].frames > 0
    replayed = await replay(files, REGISTRY[Broker.KIS], settings, trading_day=DAY)
    assert replayed.trades == len(got)
    assert replayed.frames_sent == 12  # our subscribe requests, marked as sent


async def test_a_plan_that_cannot_fit_is_refused_before_connecting(sim: KisSimulator) -> None:
    settings = settings_for(sim, keys=1)
    with pytest.raises(PlanError, match="need 2 app keys"):
        await run_collector(
            settings, Broker.KIS, default_symbols(21), sink=ListSink(), stop_event=asyncio.Event()
        )
    assert sim.counters.connections == 0


async def test_two_keys_shard_the_plan_into_two_sessions(sim: KisSimulator) -> None:
    settings = settings_for(sim, keys=2)
    sink, stop = ListSink(), asyncio.Event()
    symbols = default_symbols(6) + [f"{900_000 + i:06d}" for i in range(17)]
    task = asyncio.create_task(
        run_collector(settings, Broker.KIS, symbols, sink=sink, stop_event=stop)
    )
    await eventually(lambda: sim.counters.sessions_bound == 2)
    stop.set()
    report = await asyncio.wait_for(task, 10)
    assert [s.subscriptions for s in report.sessions] == [23, 23]
    assert sim.counters.session_conflicts == 0


def test_collect_cli_refuses_bad_arguments_with_usage() -> None:
    runner = CliRunner()
    bad_broker = runner.invoke(app, ["collect", "nasdaq", "--symbols", "005930"])
    assert bad_broker.exit_code == 2 and "unknown broker" in bad_broker.output
    bad_symbols = runner.invoke(app, ["collect", "kis", "--symbols", "0059 30,;"])
    assert bad_symbols.exit_code == 2 and "symbol codes" in bad_symbols.output
    no_symbols = runner.invoke(app, ["collect", "kis"])
    assert no_symbols.exit_code == 2 and "--symbols" in no_symbols.output


def test_replay_cli_counts_a_recording(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from tickguard.stream.recorder import RawRecorder

    lines = (Path(__file__).parents[1] / "data" / "kis" / "session.txt").read_text().splitlines()
    rec = RawRecorder(tmp_path, Settings().stream)
    for line in lines:
        rec.record(False, datetime(2023, 6, 12, 1, tzinfo=UTC), line)
    rec.close()
    result = CliRunner().invoke(app, ["replay", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert f'"frames_received": {len(lines)}' in result.output
    missing = CliRunner().invoke(app, ["replay", str(tmp_path / "nope")])
    assert missing.exit_code == 2


async def test_collect_cli_runs_into_redis_until_ctrl_c(
    sim: KisSimulator, settings_env: Path, redis_url: str, stream_prefix: str
) -> None:
    import json
    import os
    import signal
    import sys

    import redis.asyncio as aioredis

    env = {
        **os.environ,
        "TICKGUARD_KIS__REST_URL": sim.rest_url,
        "TICKGUARD_KIS__WS_URL": sim.ws_url,
        "TICKGUARD_KIS__APPS": json.dumps([{"name": "a", "app_key": "k", "app_secret": "s"}]),
    }
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "tickguard"), "collect", "kis",
        "--symbols", ",".join(default_symbols(3)), "--json",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    client = aioredis.Redis.from_url(redis_url)
    try:
        stream = f"{stream_prefix}:events"
        deadline = time.monotonic() + 30
        while not (await client.exists(stream) and await client.xlen(stream) >= 3):
            assert time.monotonic() < deadline, "no batches reached Redis"
            assert proc.returncode is None
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        await client.aclose()
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["totals"]["trades"] > 0 and report["totals"]["subscriptions"] == 6
    assert b"the-real" not in err and b'"k"' not in out  # no secrets printed
    assert list((settings_env / "raw").glob("*.tgraw.zst"))  # raw frames were recorded


def test_replay_cli_to_stream_feeds_the_redis_stream(
    tmp_path: Path, settings_env: Path, redis_url: str, stream_prefix: str
) -> None:
    import json
    from datetime import UTC, datetime

    import redis

    from tickguard.stream.recorder import RawRecorder

    lines = (Path(__file__).parents[1] / "data" / "kis" / "session.txt").read_text().splitlines()
    rec = RawRecorder(tmp_path / "rec", Settings().stream)
    for line in lines:
        rec.record(False, datetime(2023, 6, 12, 1, tzinfo=UTC), line)
    rec.close()
    result = CliRunner().invoke(app, ["replay", str(tmp_path / "rec"), "--to-stream", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output.strip().splitlines()[-1])
    assert counts["batches"] >= 1 and counts["trades"] > 0
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.xlen(f"{stream_prefix}:events") == counts["batches"]
    finally:
        client.close()


async def test_the_same_collector_runs_kiwoom_through_login_and_flaps(tmp_path: Path) -> None:
    """Broker-neutral: Kiwoom's LOGIN handshake and symbol-less REG acks, same supervisor."""
    from tickguard.settings import KiwoomSettings
    from tickguard.sim.faults import FaultSchedule
    from tickguard.sim.kiwoom import KiwoomSimConfig, KiwoomSimulator

    symbols = default_symbols(4)
    market = MarketConfig(day=DAY, symbols=profiles_for(symbols), seed=5)
    config = KiwoomSimConfig(
        market=market, speed=10.0, truth_dir=tmp_path / "truth",
        faults=FaultSchedule.parse(["flap:1.5-2"], seed=5),
    )  # fmt: skip
    async with KiwoomSimulator(config) as kiwoom:
        apps = [AppCredential(name="w", app_key=SecretStr("kw"), app_secret=SecretStr("s"))]
        settings = Settings(
            kiwoom=KiwoomSettings(rest_url=kiwoom.rest_url, ws_url=kiwoom.ws_url, apps=apps)
        )
        sink, stop = ListSink(), asyncio.Event()
        task = asyncio.create_task(
            run_collector(settings, Broker.KIWOOM, symbols, sink=sink, stop_event=stop)
        )
        await eventually(lambda: kiwoom.counters.drops >= 2, limit=15)
        # A third connection: the collector has seen the second drop too (the simulator
        # counts a drop when it aborts, the collector when it next reads).
        await eventually(lambda: kiwoom.counters.connections >= 3, limit=15)
        await eventually(lambda: len(sink.trade_keys) > 200)
        stop.set()
        report = await asyncio.wait_for(task, 10)
        await eventually(lambda: not kiwoom.sessions.conns)
        kiwoom.flush_truth()
        sent = {(s, k) for s, _d, k in TruthReader(kiwoom.truth_dir).sent_trade_keys()}
    assert set(sink.trade_keys) == sent
    assert report.totals["drops"] >= 2 and report.totals["reconnects"] >= 1
    gaps = [g for b in sink.batches for g in b.gaps]
    assert gaps and all(g.broker is Broker.KIWOOM for g in gaps)
