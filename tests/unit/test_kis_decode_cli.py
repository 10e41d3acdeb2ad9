"""``tickguard decode --broker kis``: stdout JSON contract, stderr line numbers, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tickguard.cli import app

DATA = Path(__file__).resolve().parents[1] / "data" / "kis"
SESSION = DATA / "session.txt"
runner = CliRunner()

TRADE_KEYS = ["kind", "broker", "symbol", "ts", "price", "qty", "side", "cum_volume"]
BOOK_KEYS = ["kind", "broker", "symbol", "ts", "asks", "bids", "total_ask_qty", "total_bid_qty"]


def _run(*args: str, stdin: str | None = None) -> tuple[int, list[dict[str, object]], str]:
    result = runner.invoke(app, ["decode", "--broker", "kis", *args], input=stdin)
    events = [json.loads(line) for line in result.stdout.splitlines() if line]
    return result.exit_code, events, result.stderr


def test_session_file_decodes_to_the_json_contract() -> None:
    code, events, _ = _run("--day", "2023-06-12", str(SESSION))
    assert code == 0
    assert [e["kind"] for e in events] == ["trade"] * 4 + ["book"] * 2
    assert events[0] == {
        "kind": "trade",
        "broker": "kis",
        "symbol": "005930",
        "ts": "2023-06-12T09:33:54+09:00",
        "price": 71900,
        "qty": 1,
        "side": "buy",
        "cum_volume": 3052507,
    }
    assert [e["side"] for e in events[:4]] == ["buy", "sell", "buy", None]
    assert all(list(e) == TRADE_KEYS for e in events[:4])
    book = events[4]
    assert list(book) == BOOK_KEYS
    assert book["ts"] == "2023-06-12T09:37:30+09:00"
    assert book["asks"][0] == [71900, 91918] and book["bids"][0] == [71800, 95221]  # type: ignore[index]
    assert (book["total_ask_qty"], book["total_bid_qty"]) == (1159362, 2095167)
    assert events[5]["ts"] == "2023-06-12T09:37:31+09:00"  # the grown 62-field record


def test_undecodable_lines_go_to_stderr_with_numbers_and_a_summary() -> None:
    code, _, err = _run("--day", "2023-06-12", str(SESSION))
    assert code == 0
    lines = err.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:4]] == ["line 8", "line 9", "line 10", "line 11"]
    assert "bad_width" in lines[0] and "unknown_tr" in lines[1]
    assert "bad_number" in lines[2] and "bad_json" in lines[3]
    assert lines[-1].startswith("decoded 11 lines: 4 trades, 2 books, 3 control, 4 quarantined")


def test_day_applies_to_time_only_frames_and_stdin_works() -> None:
    book_line = (DATA / "h0stasp0_example.txt").read_text()
    code, events, _ = _run("--day", "2026-11-26", stdin=book_line.replace("\n", "\r\n"))
    assert code == 0
    assert [e["ts"] for e in events] == ["2026-11-26T09:37:30+09:00"]


def test_control_messages_print_nothing() -> None:
    stdin = (DATA / "ack_subscribe_example.json").read_text() + (DATA / "pingpong.json").read_text()
    code, events, err = _run("-", stdin=stdin)
    assert code == 0 and events == []
    assert "2 control, 0 quarantined" in err


def test_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    code, events, err = _run(str(tmp_path / "missing.txt"))
    assert code == 2 and events == []
    assert "Usage" in err and "cannot read" in err
    code, _, err = _run(str(tmp_path))  # a directory cannot be read as frames either
    assert code == 2 and "cannot read" in err


def test_bad_arguments_are_usage_errors() -> None:
    assert _run("--day", "12/06/2023", str(SESSION))[0] == 2
    result = runner.invoke(app, ["decode", str(SESSION)])
    assert result.exit_code == 2 and "--broker" in result.stderr
    result = runner.invoke(app, ["decode", "--broker", "nasdaq", str(SESSION)])
    assert result.exit_code == 2
