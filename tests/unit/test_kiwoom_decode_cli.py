"""``tickguard decode --broker kiwoom``: the KIS decoder's output contract, through the registry."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tickguard.brokers.registry import REGISTRY
from tickguard.cli import app
from tickguard.models import Broker

DATA = Path(__file__).resolve().parents[1] / "data" / "kiwoom"
runner = CliRunner()
TRADE_KEYS = ["kind", "broker", "symbol", "ts", "price", "qty", "side", "cum_volume"]
BOOK_KEYS = ["kind", "broker", "symbol", "ts", "asks", "bids", "total_ask_qty", "total_bid_qty"]


def _run(*args: str, stdin: str | None = None) -> tuple[int, list[dict[str, object]], str]:
    result = runner.invoke(app, ["decode", "--broker", "kiwoom", *args], input=stdin)
    events = [json.loads(line) for line in result.stdout.splitlines() if line]
    return result.exit_code, events, result.stderr


def test_kiwoom_is_registered() -> None:
    assert REGISTRY[Broker.KIWOOM].broker is Broker.KIWOOM


def test_session_file_decodes_with_the_day_from_the_command_line() -> None:
    code, events, err = _run("--day", "2026-03-19", str(DATA / "session.jsonl"))
    assert code == 0
    assert [(e["kind"], e["symbol"]) for e in events] == [
        ("trade", "005930"),
        ("book", "005930"),
        ("book", "122630"),
        ("trade", "122630"),
    ]
    assert events[0] == {
        "kind": "trade",
        "broker": "kiwoom",
        "symbol": "005930",
        "ts": "2026-03-19T16:52:08+09:00",
        "price": 20800,
        "qty": 82,
        "side": "buy",
        "cum_volume": 30379732,
    }
    assert list(events[1]) == BOOK_KEYS and list(events[3]) == TRADE_KEYS
    assert events[1]["asks"][0] == [70100, 1001]  # type: ignore[index]
    lines = err.strip().splitlines()
    assert lines[0].startswith("line 7: bad_json") and lines[1].startswith("line 8: bad_time")
    assert lines[-1].startswith("decoded 8 lines: 2 trades, 2 books, 4 control, 2 quarantined")


def test_stdin_and_another_day() -> None:
    frame = json.dumps(json.loads((DATA / "real_0b_example.json").read_text()))
    code, events, _ = _run("--day", "2026-11-26", stdin=frame + "\r\n")
    assert code == 0 and [e["ts"] for e in events] == ["2026-11-26T16:52:08+09:00"]


def test_bad_day_is_a_usage_error() -> None:
    code, events, err = _run("--day", "19-03-2026", str(DATA / "session.jsonl"))
    assert code == 2 and events == [] and "Usage" in err
