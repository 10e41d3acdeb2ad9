"""``tickguard sim kis``: bad arguments get a usage message; a real run serves until Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner
from websockets.asyncio.client import connect

from tickguard.cli import app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "explode:1"], "unknown fault"),
        (["--fault", "flap:5-3"], "flap interval"),
        (["--symbols", "12ab"], "expected a count or 6-digit codes"),
        (["--symbols", "005930,Qxyz"], "expected a count or 6-digit codes"),
        (["--start", "9am"], "expected HH:MM"),
        (["--day", "2026-13-40"], "expected YYYY-MM-DD"),
        (["--speed", "0"], "speed"),
    ],
)
def test_bad_arguments_get_a_usage_message(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["sim", "kis", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


async def _wait_for_urls(
    proc: asyncio.subprocess.Process, deadline_s: float = 30
) -> dict[str, str]:
    urls: dict[str, str] = {}
    deadline = time.monotonic() + deadline_s
    assert proc.stdout is not None
    while len(urls) < 3:
        left = deadline - time.monotonic()
        assert left > 0, "the simulator did not print its URLs"
        line = (await asyncio.wait_for(proc.stdout.readline(), left)).decode()
        assert line, "the simulator exited early"
        name, _, value = line.strip().partition(" ")
        urls[name] = value.strip()
    return urls


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
async def test_runs_until_signalled_and_serves_kis(tmp_path: Path, stop_signal: int) -> None:
    truth = tmp_path / "truth"
    cmd = ["-c", "from tickguard.cli import main; main()", "--log-level", "WARNING",
           "sim", "kis", "--symbols", "005930,000660", "--speed", "30", "--day", "2026-11-26",
           "--truth-dir", str(truth), "--fault", "halt:000660@09:00-09:10"]  # fmt: skip
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(sys.executable, *cmd, stdout=pipe, stderr=pipe)
    try:
        urls = await _wait_for_urls(proc)
        assert urls["WS"].endswith("/tryitout") and urls["truth"] == str(truth)
        async with httpx.AsyncClient(base_url=urls["REST"]) as http:
            body = {"grant_type": "client_credentials", "appkey": "K", "secretkey": "S"}
            key = (await http.post("/oauth2/Approval", json=body)).json()["approval_key"]
        async with connect(urls["WS"]) as ws:
            header = {"approval_key": key, "custtype": "P", "tr_type": "1", "content-type": "utf-8"}
            body_in = {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}}
            await ws.send(json.dumps({"header": header, "body": body_in}))
            deadline = time.monotonic() + 10
            frame = ""
            while not frame.startswith("0|H0STCNT0|"):
                assert time.monotonic() < deadline
                frame = str(await asyncio.wait_for(ws.recv(), 10))
        proc.send_signal(stop_signal)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        summary = json.loads((truth / "summary.json").read_text())
        assert summary["frames_sent"] >= 1 and summary["sessions_bound"] == 1
        assert key not in (out + err).decode(), "the approval key is never printed"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_bench_reports_what_a_client_in_another_process_received() -> None:
    result = CliRunner().invoke(
        app, ["sim", "bench", "--symbols", "3", "--speed", "30", "--seconds", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["records"] >= figures["frames"] > 0
    assert figures["records_per_s"] == round(figures["records"] / 1.0, 1)
    assert figures["sim_peak_rss_mb"] > 0
