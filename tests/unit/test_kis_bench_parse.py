"""The parse bench's workload and report (its figures are measured by the command, not here)."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from tickguard.bench.parse import (
    BENCH_DAY,
    python_kis_parser,
    realistic_h0stcnt0_frames,
    run_parse_bench,
)
from tickguard.brokers.kis.codec import KisSession
from tickguard.cli import app
from tickguard.models import Broker, Trade


def test_feed_is_realistic_and_fully_decodable() -> None:
    frames = realistic_h0stcnt0_frames(5_000, seed=3)
    counts = [int(f.split("|")[2]) for f in frames]
    assert sum(counts) == 5_000
    assert counts.count(1) > len(frames) / 2 and max(counts) > 10  # calm frames and bursts
    session = KisSession(SecretStr("k"), BENCH_DAY)
    now = datetime.now(UTC)
    trades = [e for f in frames for e in session.receive(f, now).events]
    assert not session.counters and len(trades) == 5_000
    last: dict[str, int] = defaultdict(int)
    for trade in trades:
        assert isinstance(trade, Trade)
        assert trade.cum_volume == last[trade.symbol] + trade.qty  # no gaps inside the feed
        last[trade.symbol] = trade.cum_volume
    assert realistic_h0stcnt0_frames(5_000, seed=3) == frames  # seeded


def test_python_kis_parses_the_same_frames() -> None:
    frames = realistic_h0stcnt0_frames(500)
    assert python_kis_parser()(frames) == 500


def test_bench_command_prints_one_json_object() -> None:
    result = CliRunner().invoke(
        app, ["bench", "parse", "--broker", "kis", "--records", "2000", "--repeat", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["records"] == 2000 and report["frames"] > 0
    assert report["records_per_s"] > 0 and report["python_kis_records_per_s"] > 0
    assert report["ratio"] > 0


def test_kiwoom_bench_parses_every_record_and_reports_no_baseline() -> None:
    report = run_parse_bench(Broker.KIWOOM, records=2_000, repeat=1).as_json()
    assert report["records"] == 2_000
    assert isinstance(report["records_per_s"], int) and report["records_per_s"] > 0
    assert report["python_kis_records_per_s"] is None and report["ratio"] is None
    assert "kiwoom" in str(report["python_kis_unavailable"])


def test_missing_python_kis_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("pykis", "pykis.api.websocket.price", "pykis.responses.websocket"):
        monkeypatch.setitem(sys.modules, name, None)  # what an absent package looks like
    result = run_parse_bench(Broker.KIS, records=300, repeat=1)
    report = result.as_json()
    assert report["python_kis_records_per_s"] is None and report["ratio"] is None
    assert "pykis" in str(report["python_kis_unavailable"])
    assert report["records"] == 300 and report["records_per_s"] > 0
