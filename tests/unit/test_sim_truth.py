"""Ground truth: streamed to disk, readable during the run, tolerant of a cut-off tail."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tickguard.sim.truth import FRAMES, GENERATED, TruthReader, TruthWriter

DAY = date(2026, 11, 26)


def _writer(tmp_path: Path) -> TruthWriter:
    return TruthWriter(tmp_path, {"day": DAY.isoformat(), "seed": 1})


def test_round_trip_and_counts(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    for cum in (10, 25, 40):
        w.trade("005930", cum, 71_900, 15, "buy", 32_400.5, live=1 if cum > 10 else 0)
    w.book("005930", 1, 32_400.7, live=1)
    w.frame(1, 32_401.0, "H0STCNT0", "data", [("005930", 25), ("005930", 40)], [])
    w.frame(1, 32_401.0, "H0STASP0", "data", [], [("005930", 1)])
    w.frame(1, 32_401.2, "H0STCNT0", "malformed", [("005930", 10)], [])
    w.fault("flap", 1, 1.0, 1.5, app_key_bound=True)
    w.session_event(1, "open", path="/tryitout")
    w.close({"frames_sent": 3})

    r = TruthReader(tmp_path)
    assert r.day == DAY
    trades = list(r.generated_trades())
    assert [t.cum_volume for t in trades] == [10, 25, 40]
    assert trades[0].side == "buy" and trades[0].live == 0
    assert list(r.generated_books()) == [("005930", 1, 32_400.7, 1)]
    assert r.sent_trade_keys() == {("005930", DAY, 25), ("005930", DAY, 40)}
    c = r.counts()
    assert (c.trades_generated, c.trades_sent, c.trades_missed) == (3, 2, 1)
    assert c.trades_missed_while_disconnected == 1
    assert (c.books_generated, c.books_sent, c.frames_sent, c.frames_malformed) == (1, 1, 3, 1)
    assert c.faults == {"flap": 1}
    assert r.sessions()[0]["path"] == "/tryitout"
    assert r.summary() == {"frames_sent": 3}


def test_readable_while_running_after_a_flush(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    w.trade("000660", 5, 178_000, 5, None, 32_400.0, live=0)
    assert list(TruthReader(tmp_path).generated_trades()) == []
    w.flush()
    assert [t.cum_volume for t in TruthReader(tmp_path).generated_trades()] == [5]
    w.trade("000660", 9, 178_100, 4, "sell", 32_401.0, live=0)
    w.flush()
    assert [t.cum_volume for t in TruthReader(tmp_path).generated_trades()] == [5, 9]
    w.close({})


def test_a_cut_off_tail_loses_only_the_tail(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    w.trade("000660", 5, 178_000, 5, None, 32_400.0, live=0)
    w.flush()
    w.trade("000660", 9, 178_100, 4, "sell", 32_401.0, live=0)
    w.close({})
    path = tmp_path / GENERATED
    data = path.read_bytes()
    first_frame_len = len(data) // 2  # inside the second zstd frame
    path.write_bytes(data[: max(first_frame_len, 1)])
    got = [t.cum_volume for t in TruthReader(tmp_path).generated_trades()]
    assert got in ([5], [])
    assert (tmp_path / FRAMES).exists()


def test_memory_stays_bounded_while_writing(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    for i in range(100_000):
        w.trade("005930", i + 1, 71_900, 1, "buy", 32_400.0 + i / 100, live=1)
        assert len(w._generated._buf) <= 20_000
    w.close({})
    assert sum(1 for _ in TruthReader(tmp_path).generated_trades()) == 100_000
