"""The ``daily-report`` flow on a real Prefect server against a real database: the markdown
artifact, one Slack digest (a rerun posts nothing new), the holiday path that never opens
the database, and ``tickguard report --json`` as a process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from quality_rows import DAY, Tape, book, kst, minutes

from fakes.prefect_server import PrefectApi
from fakes.slack import FakeSlack
from tickguard.models import Batch, Broker, Gap, GapKind, GapStatus, QuarantineRecord, Source
from tickguard.store.writer import PostgresWriter


def _seed(db_url: str) -> None:
    """005930: 3 ws + 1 rest trades and 2 books; 000660: 2 books only; 2 gaps, 1 quarantined."""
    tape = Tape("005930")
    trades = tape.trades(minutes("09:00", "09:02"))
    rest = tape.trades([kst("09:05")])[0]
    gaps = [
        Gap(Broker.KIS, "005930", GapKind.TRADES, kst("09:03", second=0),
            kst("09:05", second=0), "silent", GapStatus.FILLED),
        Gap(Broker.KIS, "000660", GapKind.BOOK, kst("10:00", second=0), None, "stalled"),
    ]  # fmt: skip
    writer = PostgresWriter.connect(db_url)
    try:
        writer.write(Batch(
            trades=[*trades, replace(rest, source=Source.REST)],
            books=[book("005930", kst("09:00")), book("005930", kst("09:01")),
                   book("000660", kst("09:00")), book("000660", kst("09:00", second=20))],
            gaps=gaps,
            quarantined=[QuarantineRecord(Broker.KIS, kst("09:01"), "bad frame", "0|H0STCNT0|x")],
        ))  # fmt: skip
    finally:
        writer.close()


async def _artifacts(api: PrefectApi, run_id: object) -> list[dict[str, object]]:
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(
            f"{api.url}/artifacts/filter",
            json={"artifacts": {"key": {"any_": ["daily-report"]},
                                "flow_run_id": {"any_": [str(run_id)]}}},
        )  # fmt: skip
    reply.raise_for_status()
    return list(reply.json())


async def test_flow_publishes_the_artifact_and_posts_the_digest_once(
    prefect_api: PrefectApi, settings_env: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tickguard.reporting.flow import daily_report
    from tickguard.settings import get_settings

    _seed(db_url)
    with FakeSlack() as slack:
        monkeypatch.setenv("TICKGUARD_SLACK__WEBHOOK_URL", slack.webhook_url)
        get_settings.cache_clear()
        state = await daily_report(day=DAY.isoformat(), return_state=True)
        (post,) = slack.wait_for(1, 10)
        rerun = await daily_report(day=DAY.isoformat())
        assert rerun["digest_posted"] == 0
        assert len(slack.posts) == 1
    result = await state.aresult()
    assert result["digest_posted"] == 1
    assert f"Completeness digest {DAY.isoformat()}" in post["payload"]["text"]
    rows = {(r["broker"], r["symbol"]): r for r in result["per_symbol"]}
    samsung, hynix = rows[("kis", "005930")], rows[("kis", "000660")]
    assert (samsung["trades_ws"], samsung["trades_rest"], samsung["books"]) == (3, 1, 2)
    assert samsung["first_trade"] == kst("09:00").isoformat()
    assert samsung["last_trade"] == kst("09:05").isoformat()
    assert (hynix["trades_ws"], hynix["books"], hynix["last_trade"]) == (0, 2, None)
    assert result["gaps"] == {"kis": {"filled": 1, "open": 1}}
    assert result["quarantined"] == {"kis": 1}
    (artifact,) = await _artifacts(prefect_api, state.state_details.flow_run_id)
    assert artifact["type"] == "markdown"
    text = str(artifact["data"])
    assert f"# Daily report {DAY.isoformat()}" in text
    assert "| kis | 005930 | 3 | 1 | 2 | 09:00:10 | 09:05:10 |" in text
    assert "kis: 1 filled, 1 open" in text and "**Quarantined frames:** kis: 1" in text


async def test_holiday_ends_market_closed_without_the_database(
    prefect_api: PrefectApi, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fakes.prefect_server import free_port
    from tickguard.reporting.flow import daily_report
    from tickguard.settings import get_settings

    # Nothing listens there: any connection attempt would fail the run.
    monkeypatch.setenv("TICKGUARD_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    get_settings.cache_clear()
    state = await daily_report(day="2026-12-31", return_state=True)
    assert state.is_completed()
    assert state.message == "market closed: 2026-12-31 is not an XKRX trading day"
    assert await _artifacts(prefect_api, state.state_details.flow_run_id) == []
    forced = await daily_report(day="2026-12-31", force=True, return_state=True)
    assert forced.is_failed()  # force does reach the (unreachable) database


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "tickguard"), "report", *args, env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_json_and_usage_error(settings_env: Path, db_url: str) -> None:
    _seed(db_url)
    code, out, err = await _cli("--day", DAY.isoformat(), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["day"] == DAY.isoformat() and report["quarantined"] == {"kis": 1}
    assert [(r["symbol"], r["trades_ws"] + r["trades_rest"]) for r in report["per_symbol"]] == [
        ("000660", 0),
        ("005930", 4),
    ]
    code, out, _ = await _cli("--day", (DAY + timedelta(days=1)).isoformat(), "--json")
    assert code == 0 and json.loads(out)["per_symbol"] == []
    code, _, err = await _cli("--day", "2026-13-01")
    assert code == 2 and "--day" in err
