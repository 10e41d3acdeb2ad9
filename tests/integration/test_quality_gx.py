"""The GX suites of expectations/ on a real PostgreSQL window: they load whole, catch what
they claim to catch, and write Data Docs."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from quality_rows import Tape, book, kst, minutes, store

from tickguard.calendar import Phase, TradingCalendar
from tickguard.quality.check import run_check
from tickguard.quality.gx_runner import validate_window
from tickguard.quality.suites import SuiteError, build_suite, load_specs, read_spec
from tickguard.quality.window import CheckWindow
from tickguard.settings import QualitySettings


def _window(hhmm: str) -> CheckWindow:
    start = kst(hhmm, second=0)
    return CheckWindow.of(start, start + timedelta(minutes=1))


def test_every_suite_loads_whole() -> None:
    specs = load_specs()
    assert {s.name for s in specs} == {"trades_window", "books_window"}
    for spec in specs:
        assert len(build_suite(spec, spec.expectations).expectations) == len(spec.expectations)


def test_an_invalid_expectation_fails_loading_loudly(tmp_path: Path) -> None:
    good = json.loads(load_specs()[0].path.read_text("utf-8"))
    good["expectations"].append({"type": "expect_nothing_of_the_sort", "kwargs": {}})
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(good), "utf-8")
    spec = read_spec(path)
    with pytest.raises(SuiteError, match="GX built"):
        build_suite(spec, spec.expectations)


def test_auction_phase_drops_the_uncrossed_book_expectation() -> None:
    books = next(s for s in load_specs() if s.table == "book_snapshots")
    assert len(books.for_phase(Phase.OPENING_AUCTION)) == len(books.expectations) - 1
    assert len(books.for_phase(Phase.CONTINUOUS)) == len(books.expectations)


def test_suites_catch_breaks_crossed_books_and_limit_prices(db_url: str, tmp_path: Path) -> None:
    yesterday = Tape("005930", day=kst("09:00").date() - timedelta(days=1))
    store(db_url, trades=yesterday.trades(minutes("15:00", "15:10", day=yesterday.day)))
    tape = Tape("005930")
    store(db_url, trades=tape.trades(minutes("10:00", "10:00")))
    tape.price = 95_000  # above +30 % of yesterday's 70,000
    store(
        db_url,
        trades=tape.trades([kst("10:01", second=5)], skip=7)
        + tape.trades([kst("10:01", second=40)]),
        books=[book("005930", kst("10:01")), book("005930", kst("10:01", second=20), crossed=True)],
    )
    docs = tmp_path / "docs"
    report = validate_window(
        db_url, _window("10:01"), "kis", ["005930"], Phase.CONTINUOUS, load_specs(), docs
    )
    failed = {(o.suite, o.check): o.unexpected for o in report.outcomes if not o.success}
    assert failed == {
        ("trades_window", "continuity"): 1,
        ("trades_window", "price_limits"): 2,
        ("books_window", "uncrossed"): 1,
    }
    assert report.docs_index is not None and report.docs_index.is_file()
    assert "trades_window" in report.docs_index.read_text("utf-8")
    clean = validate_window(
        db_url, _window("10:00"), "kis", ["005930"], Phase.CONTINUOUS, load_specs(), None
    )
    assert clean.success and len(clean.outcomes) == 9


def test_run_check_with_suites_reports_gx_in_json(db_url: str, tmp_path: Path) -> None:
    tape = Tape("005930")
    store(db_url, trades=tape.trades(minutes("09:00", "09:30")))
    report = run_check(
        db_url,
        _window("09:30"),
        "kis",
        ["005930"],
        calendar=TradingCalendar(),
        settings=QualitySettings(),
        specs=load_specs(),
        docs_dir=tmp_path / "docs",
    )
    data = report.as_json()
    assert data["ok"] is True and data["gx"]["success"] is True
    assert data["gx"]["expectations"] == 9 and data["gx"]["data_docs"].endswith("index.html")
    json.dumps(data)
