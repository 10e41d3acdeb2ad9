"""Secrets audit: a short session with distinctive fake secrets, then a search of everything
tickguard wrote, sent or logged for them. None may appear.

The run: both simulators accept only our distinctive app keys and secrets; the KIS and
Kiwoom collectors run a few seconds (raw recorder and receive journal on, a few malformed
frames so quarantine rows exist) into Redis, persist moves them into PostgreSQL (through a
URL that carries a password), then the ``backfill`` flow runs on a real Prefect server and
posts its Slack digest through a webhook, ``tickguard report`` reads the run back as a process,
and one alert goes out through the webhook and one through the Web API with a bot token
(local fake Slack). On a weekend or holiday the backfill ends "closed" (no token, no digest)
and the rest of the audit still holds.

The secrets: app keys and secrets of both brokers, the webhook URL's secret part, the bot
token, the database password, and every access token and approval key the simulators issued
(``issued_secrets()``). The search: every log record (root at DEBUG), the subprocess's stdout
and stderr, the Prefect server's log, flow-run parameters, run logs and artifacts (Prefect
API), what the fake Slack received, the raw recordings (decompressed), every file under the
data dir, every Redis key of the run (the stream's entries included; the documented token
cache is the one exception, ``backfill/tokens.py``) and every row of every table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from pydantic import SecretStr

from fakes.prefect_server import PrefectApi
from fakes.slack import FakeSlack
from tickguard.alerting.slack import SlackPoster
from tickguard.collector import DEFAULT_CHANNELS, run_collector
from tickguard.drill.runner import PersistThread
from tickguard.models import KST, Broker
from tickguard.settings import Settings, SlackSettings, get_settings
from tickguard.sim.faults import FaultSchedule
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.kis_history import KisRestRules
from tickguard.sim.kiwoom import KiwoomSimConfig, KiwoomSimulator
from tickguard.sim.market import MarketConfig
from tickguard.sim.universe import default_universe
from tickguard.sinks.redis_stream import RedisStreamSink, redis_client
from tickguard.store.migrate import libpq_url
from tickguard.stream.recorder import read_recording, recordings

KIS_KEY, KIS_SECRET = "PSkisKEYq7Vw3Lx9", "kisSECRETz4Nq8Rt2Yb6Hm1Jc5Wd"
KW_KEY, KW_SECRET = "kwKEYj3Xp8Lm2Qs", "kwSECRETf9Tg4Vb7Kn2Hd6Zr1"
HOOK_SECRET = "hookSECRETw6Ye3Pa9Uc"
BOT_TOKEN = "xoxb-botTOKENr5Gm8Ks2Lf"
DB_PASSWORD = "dbPASSWORDn7Cq4Xv1"
COLLECT_S = 3.0
UNTIL = "09:01"


class Capture(logging.Handler):
    """Every record, formatted with its arguments and traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def captured_logs() -> Iterator[Capture]:
    capture, root = Capture(), logging.getLogger()
    loggers = [root, logging.getLogger("tickguard"), logging.getLogger("prefect")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(capture)
        lg.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(capture)
            lg.setLevel(level)


def _market() -> MarketConfig:
    return MarketConfig(day=datetime.now(KST).date(), symbols=default_universe(2), seed=4)


def _sims(tmp: Path) -> tuple[KisSimulator, KiwoomSimulator]:
    faults = FaultSchedule.parse(("malformed:0.05",), seed=2)
    common: dict[str, Any] = {"speed": 20.0, "start_at": dtime(9, 0), "faults": faults}
    kis = KisSimConfig(market=_market(), truth_dir=tmp / "kis-truth", slot_hold_s=0.0,
                       apps={KIS_KEY: SecretStr(KIS_SECRET)}, rest=KisRestRules(rate_per_s=500),
                       **common)  # fmt: skip
    kiwoom = KiwoomSimConfig(market=_market(), truth_dir=tmp / "kw-truth",
                             apps={KW_KEY: SecretStr(KW_SECRET)}, **common)  # fmt: skip
    return KisSimulator(kis), KiwoomSimulator(kiwoom)


def _apps(key: str, secret: str) -> str:
    return json.dumps([{"name": "audit", "app_key": key, "app_secret": secret}])


def _env(kis: KisSimulator, kw: KiwoomSimulator, slack: FakeSlack, db_url: str) -> dict[str, str]:
    user, _, rest = db_url.partition("@")
    return {
        "TICKGUARD_DATABASE_URL": f"{user}:{DB_PASSWORD}@{rest}",
        "TICKGUARD_LOG_LEVEL": "DEBUG",
        "TICKGUARD_KIS__REST_URL": kis.rest_url, "TICKGUARD_KIS__WS_URL": kis.ws_url,
        "TICKGUARD_KIS__APPS": _apps(KIS_KEY, KIS_SECRET),
        "TICKGUARD_KIS__REST_RATE_PER_S": "400",  # the audit is not about pacing: be quick
        "TICKGUARD_KIWOOM__REST_URL": kw.rest_url, "TICKGUARD_KIWOOM__WS_URL": kw.ws_url,
        "TICKGUARD_KIWOOM__APPS": _apps(KW_KEY, KW_SECRET),
        "TICKGUARD_SLACK__WEBHOOK_URL": f"{slack.base_url}services/T0AUDIT/B0AUDIT/{HOOK_SECRET}",
        "TICKGUARD_SLACK__BOT_TOKEN": BOT_TOKEN,
        "TICKGUARD_METRICS__ENABLED": "false",
    }  # fmt: skip


async def _collect(settings: Settings, broker: Broker, symbols: list[str], data: Path) -> None:
    url = settings.redis_url.get_secret_value() if settings.redis_url else ""
    lock = redis_client(url, 2.0)
    stop_at = datetime.now(UTC) + timedelta(seconds=COLLECT_S)
    try:
        async with RedisStreamSink.from_settings(settings, url, name=broker.value) as sink:
            await run_collector(
                settings, broker, symbols, sink=sink, stop_event=asyncio.Event(),
                channels=DEFAULT_CHANNELS, lock_redis=lock, record_dir=data / "raw",
                journal_dir=data / "journal", trading_day=datetime.now(KST).date(),
                stop_at=stop_at,
            )  # fmt: skip
            assert await sink.drain(10.0)
    finally:
        await lock.aclose()


async def _cli(env: dict[str, str]) -> str:
    """``tickguard report --json`` as a process: settings from the environment, the database
    through the password-bearing URL, DEBUG logging; returns stdout and stderr."""
    exe = str(Path(sys.executable).parent / "tickguard")
    proc = await asyncio.create_subprocess_exec(
        exe, "report", "--json", env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert json.loads(out)["quarantined"], out  # it read the run's rows
    return out.decode() + err.decode()


async def _prefect(api: PrefectApi, since: datetime) -> list[str]:
    """Parameters of every flow run since ``since``, their logs and artifacts, as text."""
    found: list[str] = []
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        runs = (await client.post("/flow_runs/filter", json={
            "flow_runs": {"start_time": {"after_": since.isoformat()}}, "limit": 200,
        })).json()  # fmt: skip
        ids = [r["id"] for r in runs]
        assert ids, "the backfill flow run is on the server"
        found += [json.dumps(r.get("parameters")) for r in runs]
        for offset in range(0, 2000, 200):
            logs = (await client.post("/logs/filter", json={
                "logs": {"flow_run_id": {"any_": ids}}, "limit": 200, "offset": offset,
            })).json()  # fmt: skip
            found += [json.dumps(log) for log in logs]
            if len(logs) < 200:
                break
        arts = (await client.post("/artifacts/filter", json={
            "artifacts": {"flow_run_id": {"any_": ids}}, "limit": 200,
        })).json()  # fmt: skip
        assert arts, "the backfill artifact is on the server"
        found += [json.dumps(a) for a in arts]
    return found


def _files(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``root``; raw recordings decompressed frame by frame."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield str(path), path.read_bytes()
    for path in recordings(root / "raw"):
        for frame in read_recording(path):
            raw = frame.raw if isinstance(frame.raw, bytes) else frame.raw.encode()
            yield f"{path}#{'sent' if frame.sent else 'received'}", raw


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else repr(value).encode()


def _redis(url: str, prefix: str) -> Iterator[tuple[str, bytes]]:
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            name = _bytes(key).decode()
            if ":token:" in name and not name.endswith(":issued"):
                continue  # the documented token cache (backfill/tokens.py): held in clear
            kind = _bytes(client.type(key)).decode()
            value: Any
            if kind == "stream":
                entries: list[Any] = client.xrange(key) or []
                value = [b"".join(_bytes(k) + _bytes(v) for k, v in f.items()) for _, f in entries]
            elif kind == "string":
                value = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            else:
                value = client.lrange(key, 0, -1) if kind == "list" else client.smembers(key)
            yield name, b"".join(map(_bytes, value)) if kind == "stream" else _bytes(value)
    finally:
        client.close()


async def _session_past(sim: KisSimulator, session_t: float, within_s: float = 30.0) -> None:
    """Poll the simulator's clock until it passes ``session_t`` (deadline)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while sim.clock.session_t() < session_t:
        assert asyncio.get_running_loop().time() < deadline, "the simulator clock stalled"
        await asyncio.sleep(0.1)


def _database(url: str) -> Iterator[tuple[str, bytes]]:
    with psycopg.connect(libpq_url(url)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]  # fmt: skip
        for table in tables:
            for (row,) in conn.execute(f'SELECT t::text FROM "{table}" t'):
                yield table, str(row).encode()


def _needles(secrets: list[str]) -> list[str]:
    """Each secret, and for the long ones their first and last 12 characters too (loggers
    that truncate a value still print a recognisable half of it)."""
    out = []
    for secret in secrets:
        out += [secret, secret[:12], secret[-12:]] if len(secret) >= 24 else [secret]
    return out


def _leaks(secrets: list[str], places: Iterator[tuple[str, bytes]]) -> list[str]:
    needles = [(s, s.encode()) for s in _needles(secrets)]
    return [f"{where}: {s[:6]}…" for where, blob in places for s, b in needles if b in blob]


@pytest.mark.timeout(180)
async def test_no_secret_reaches_a_log_artifact_payload_file_stream_or_row(
    prefect_api: PrefectApi, settings_env: Path, tmp_path: Path, db_url: str, redis_url: str,
    stream_prefix: str, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tickguard.backfill.flow import backfill

    since = datetime.now(UTC) - timedelta(seconds=1)
    kis_sim, kw_sim = _sims(tmp_path)
    data = settings_env
    async with kis_sim, kw_sim:
        with FakeSlack() as slack, captured_logs() as logs:
            env = _env(kis_sim, kw_sim, slack, db_url)
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            get_settings.cache_clear()
            settings = get_settings()
            database_url = settings.database_url.get_secret_value() if settings.database_url else ""
            persist = PersistThread(settings, redis_url, database_url, "audit")
            try:
                await asyncio.gather(
                    _collect(settings, Broker.KIS, list(kis_sim.market.symbols), data),
                    _collect(settings, Broker.KIWOOM, list(kw_sim.market.symbols), data),
                )
            finally:
                assert await persist.finish()
            await _session_past(kis_sim, 9 * 3600 + 62)  # past UNTIL: the backfill has it all
            result = await backfill(symbols=list(kis_sim.market.symbols), broker="kis", until=UNTIL)
            assert result["status"] in ("done", "closed"), result  # closed: a weekend/holiday
            hook = SlackPoster(settings.slack)  # the webhook path, whatever the calendar says
            assert hook.post("secrets audit", [{"type": "section", "text": {
                "type": "mrkdwn", "text": "one alert through the webhook"}}])  # fmt: skip
            process_output = await _cli(env)
            bot = SlackPoster(SlackSettings(bot_token=SecretStr(BOT_TOKEN), base_url=slack.api_url))
            assert bot.post("secrets audit", [{"type": "section", "text": {
                "type": "mrkdwn", "text": "one alert through the Web API"}}])  # fmt: skip
            posts = slack.wait_for(2, 10)
        issued = kis_sim.authority.issued_secrets() + kw_sim.authority.issued_secrets()
    secrets = [KIS_KEY, KIS_SECRET, KW_KEY, KW_SECRET, HOOK_SECRET, BOT_TOKEN, DB_PASSWORD,
               *issued]  # fmt: skip
    assert len(issued) >= 2 + (result["status"] == "done")  # approval key, Kiwoom + KIS tokens

    with psycopg.connect(libpq_url(database_url)) as conn:
        stored = conn.execute("SELECT (SELECT count(*) FROM trades), "
                              "(SELECT count(*) FROM quarantine)").fetchone()  # fmt: skip
    assert stored is not None and stored[0] > 0 and stored[1] > 0, stored
    assert any(f.sent for p in recordings(data / "raw") for f in read_recording(p))
    places: list[tuple[str, bytes]] = [
        *(("log", line.encode()) for line in logs.lines),
        ("subprocess", process_output.encode()),
        ("prefect server log", prefect_api.log_path.read_bytes()),
        *(("prefect api", text.encode()) for text in await _prefect(prefect_api, since)),
        *(("slack payload", json.dumps(p["payload"]).encode()) for p in posts),
        *_files(data),
        *_redis(redis_url, stream_prefix),
        *_database(database_url),
    ]
    assert len(logs.lines) > 50 and len(posts) >= 2
    assert _leaks(secrets, iter(places)) == []
