"""Preflight against real services: the KIS and Kiwoom simulators as brokers, the shared
PostgreSQL/Redis, a private redis-server that is stopped, a local fake Slack. Each incident
failure must be named with the hint that says what to do; a healthy stack must be a go."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
from pydantic import SecretStr

from fakes.slack import FakeSlack
from tickguard.drill.rigs import RIGS, broker_settings, sim_config
from tickguard.models import Broker
from tickguard.preflight import PreflightReport, Status, Verdict, post_verdict, run_preflight
from tickguard.settings import Settings, SinkSettings, SlackSettings
from tickguard.sinks import stream_admin
from tickguard.sinks.redis_stream import stream_key
from tickguard.stream.keylock import lock_name

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["005930", "000660"]
NOW = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)  # a Thursday, 09:00 KST: a trading day


@pytest.fixture
async def sims() -> AsyncIterator[dict[Broker, Any]]:
    """Both brokers' simulators on ephemeral loopback ports."""
    running: dict[Broker, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for broker, rig in RIGS.items():
            config = sim_config(
                rig, day=NOW.date(), symbols=2, seed=1, speed=1.0, faults=(),
                truth_dir=Path(tmp) / broker.value, overrides={}, slot_hold_s=0.0,
            )  # fmt: skip
            running[broker] = await rig.simulator(config).__aenter__()
        try:
            yield running
        finally:
            for sim in running.values():
                await sim.__aexit__(None, None, None)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def make_settings(
    sims: dict[Broker, Any], db_url: str, redis_url: str, prefix: str, slack: FakeSlack, tmp: Path
) -> Settings:
    base = Settings(
        data_dir=tmp / "data",
        database_url=SecretStr(db_url),
        redis_url=SecretStr(redis_url),
        sink=SinkSettings(stream_prefix=prefix),
        slack=SlackSettings(bot_token=SecretStr("xoxb-fake"), base_url=slack.api_url),
    )
    update: dict[str, Any] = {}
    for broker, sim in sims.items():
        update |= broker_settings(RIGS[broker], base, sim, len(SYMBOLS), 2)
    # The machine is shared with other engineers' tests: load is not what is under test here.
    # Its speed is measured by `tickguard preflight` itself, not asserted here (timed tests
    # on a busy machine fail for the wrong reason): generous deadlines.
    update["preflight"] = base.preflight.model_copy(
        update={
            "cpu_load_warn": 1000.0,
            "timeout_s": 30.0,
            "import_timeout_s": 90.0,
            # The simulators' uvicorn refreshes Date once a second from an event loop this
            # test keeps busy; the skew logic itself is unit-tested.
            "clock_skew_warn_s": 6.0,
            "clock_skew_fail_s": 30.0,
        }
    )
    return base.model_copy(update=update)


@pytest.fixture
def settings(
    sims: dict[Broker, Any], db_url: str, redis_url: str, stream_prefix: str, slack: FakeSlack,
    tmp_path: Path,
) -> Settings:  # fmt: skip
    s = make_settings(sims, db_url, redis_url, stream_prefix, slack, tmp_path)
    client = redis_sync.Redis.from_url(redis_url)
    stream_admin.ensure_group(client, stream_key(stream_prefix), s.sink.consumer_group)
    client.close()
    return s


def by_name(report: PreflightReport) -> dict[str, Any]:
    return {c.name: c for c in report.checks}


async def preflight(settings: Settings, project: Path = ROOT) -> PreflightReport:
    return await run_preflight(project, settings=settings, symbols=SYMBOLS, now=NOW)


async def test_healthy_stack_is_a_go_and_slack_hears_it(
    settings: Settings, slack: FakeSlack
) -> None:
    report = await preflight(settings)
    checks = by_name(report)
    assert report.verdict is Verdict.GO, [c.as_dict() for c in report.problems()]
    for name in ("entrypoint collectors/kis.py:collect_kis", "dependencies", "calendar",
                 "postgres", "redis", "persist group", "disk", "memory", "cpu", "slack",
                 "kis plan", "kis rest", "kis clock", "kis key drill0",
                 "kiwoom plan", "kiwoom rest", "kiwoom clock", "kiwoom key drill0"):  # fmt: skip
        assert name in checks, name
    assert "subscription acknowledged" in checks["kis key drill0"].value
    assert "LOGIN accepted" in checks["kiwoom key drill0"].value
    assert post_verdict(settings.slack, report)
    posted = slack.wait_for(2, timeout=10)  # auth.test from the check, then the verdict
    assert "preflight: GO" in posted[-1]["payload"]["text"]
    assert "xoxb-fake" not in str(posted[-1]["payload"])


async def test_broken_entrypoint_and_missing_dependency_are_named(
    settings: Settings, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "broken.py").write_text("import tickguard.no_such_module\n")
    (project / "flows" / "fine.py").write_text("def ok():\n    return 1\n")
    (project / "prefect.yaml").write_text(
        "deployments:\n"
        "  - name: broken\n    entrypoint: flows/broken.py:run\n"
        "  - name: fine\n    entrypoint: flows/fine.py:ok\n"
    )
    (project / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "0"\n'
        'dependencies = ["httpx>=0.28", "tickguard-no-such-dist>=1.0"]\n'
    )
    report = await preflight(settings, project)
    checks = by_name(report)
    broken = checks["entrypoint flows/broken.py:run"]
    assert broken.status is Status.FAIL
    assert "ModuleNotFoundError" in broken.value and "no_such_module" in broken.value
    assert "crash-loop" in broken.hint and "flows/broken.py" in broken.hint
    assert checks["entrypoint flows/fine.py:ok"].status is Status.PASS
    deps = checks["dependencies"]
    assert deps.status is Status.FAIL
    assert "tickguard-no-such-dist (not installed)" in deps.value and "httpx" not in deps.value
    assert "uv sync --frozen" in deps.hint
    assert report.verdict is Verdict.NO_GO


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_broker_is_named(settings: Settings) -> None:
    port = _closed_port()
    kis = settings.kis.model_copy(
        update={"rest_url": f"http://127.0.0.1:{port}", "ws_url": f"ws://127.0.0.1:{port}/x"}
    )
    report = await preflight(settings.model_copy(update={"kis": kis}))
    checks = by_name(report)
    rest = checks["kis rest"]
    assert rest.status is Status.FAIL and "unreachable: ConnectError" in rest.value
    assert "TICKGUARD_KIS__REST_URL" in rest.hint
    assert checks["kis key drill0"].status is Status.FAIL
    assert "authorization refused" in checks["kis key drill0"].value
    assert checks["kiwoom rest"].status is Status.PASS  # the other broker is unaffected
    assert report.verdict is Verdict.NO_GO


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, on a free port, that the test may stop."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is required (installed with Redis 7)")
    port = _closed_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis_sync.Redis.from_url(url).ping():
                break
        except redis_sync.ConnectionError:
            time.sleep(0.05)
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


async def test_redis_down_is_named_and_no_key_is_probed(
    settings: Settings, private_redis: tuple[str, subprocess.Popen[bytes]], sims: dict[Broker, Any]
) -> None:
    url, proc = private_redis
    live = settings.model_copy(update={"redis_url": SecretStr(url)})
    assert by_name(await preflight(live))["redis"].status is Status.PASS
    proc.terminate()
    proc.wait(10)
    connects_before = sims[Broker.KIWOOM].counters.as_dict().get("connections", 0)
    report = await preflight(live)
    checks = by_name(report)
    assert checks["redis"].status is Status.FAIL
    assert "unreachable" in checks["redis"].value and "TICKGUARD_REDIS_URL" in checks["redis"].hint
    key = checks["kiwoom key drill0"]
    assert key.status is Status.WARN and "key lock unknown" in key.value
    assert sims[Broker.KIWOOM].counters.as_dict().get("connections", 0) == connects_before
    assert report.verdict is Verdict.NO_GO


async def test_disk_below_threshold_is_named(settings: Settings) -> None:
    tight = settings.preflight.model_copy(update={"disk_min_free_bytes": 2**62})
    report = await preflight(settings.model_copy(update={"preflight": tight}))
    disk = by_name(report)["disk"]
    assert disk.status is Status.FAIL
    assert "TICKGUARD_PREFLIGHT__DISK_MIN_FREE_BYTES" in disk.hint
    assert report.verdict is Verdict.NO_GO


async def test_live_collector_key_is_reported_not_probed(
    settings: Settings, redis_url: str
) -> None:
    cred = settings.kis.apps[0]
    client = redis_sync.Redis.from_url(redis_url)
    client.set(lock_name(settings.sink.stream_prefix, Broker.KIS, cred), b"other", px=20_000)
    client.close()
    report = await preflight(settings)
    key = by_name(report)["kis key drill0"]
    assert key.status is Status.PASS and "held by a live collector" in key.value


async def test_authorization_is_not_asked_twice_within_the_minimum(settings: Settings) -> None:
    assert by_name(await preflight(settings))["kis key drill0"].status is Status.PASS
    again = by_name(await preflight(settings))["kis key drill0"]
    assert again.status is Status.WARN and "rerun in a minute" in again.hint
