"""Raw recorder: caps (file size, total size, age), failures never stop the stream, replay."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import zstandard
from pydantic import SecretStr

from tickguard.brokers.kis.codec import KisSession
from tickguard.brokers.registry import REGISTRY
from tickguard.models import Batch, Broker
from tickguard.settings import Settings, StreamSettings
from tickguard.stream.recorder import RawRecorder, read_recording, recordings
from tickguard.stream.replay import replay

SESSION = Path(__file__).parents[1] / "data" / "kis" / "session.txt"
T0 = datetime(2023, 6, 12, 0, 33, 54, 123456, tzinfo=UTC)


def caps(**kw: float) -> StreamSettings:
    base: dict[str, float] = {"recorder_max_file_bytes": 4096, "recorder_max_total_bytes": 1 << 30}
    base.update(kw)
    return StreamSettings(**base)  # type: ignore[arg-type]


def test_round_trip_keeps_order_direction_time_and_bytes(tmp_path: Path) -> None:
    rec = RawRecorder(tmp_path, caps())
    frames = [(False, "0|H0STCNT0|001|x"), (True, '{"echo": 1}'), (False, b"\x00\xffbin")]
    for i, (sent, raw) in enumerate(frames):
        rec.record(sent, T0 + timedelta(microseconds=i), raw)
    rec.close()
    got = [(f.sent, f.raw, f.at) for p in recordings(tmp_path) for f in read_recording(p)]
    assert got == [(s, r, T0 + timedelta(microseconds=i)) for i, (s, r) in enumerate(frames)]
    assert rec.stats.frames == 3 and rec.stats.write_errors == 0


def test_files_rotate_at_the_size_cap_and_oldest_go_first(tmp_path: Path) -> None:
    rec = RawRecorder(tmp_path, caps(recorder_max_total_bytes=20_000))
    for i in range(60):
        rec.record(False, T0, f"{i}|{os.urandom(1500).hex()}")  # hardly compressible
        rec._flushed_mono = 0.0  # flush every frame so tell() sees the bytes
    rec.close()
    files = recordings(tmp_path)
    assert rec.stats.files_opened > 5
    assert rec.stats.files_deleted > 0
    assert sum(p.stat().st_size for p in files) <= 20_000 + 4096 + 8192
    kept = [f.raw for p in files for f in read_recording(p)]
    assert isinstance(kept[-1], str) and kept[-1].startswith("59|")  # newest kept
    assert not any(isinstance(k, str) and k.startswith("0|") for k in kept)  # oldest deleted


def test_files_past_the_age_cap_are_deleted(tmp_path: Path) -> None:
    old = tmp_path / "raw-20200101T000000000000-0001.tgraw.zst"
    old.write_bytes(b"")
    past = time.time() - 3600
    os.utime(old, (past, past))
    rec = RawRecorder(tmp_path, caps(recorder_max_age_s=60))
    rec.record(False, T0, "frame")
    rec.close()
    assert not old.exists()
    assert len(recordings(tmp_path)) == 1


def test_a_write_failure_is_counted_and_never_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    rec = RawRecorder(blocker / "raw", caps())
    for _ in range(5):
        rec.record(False, T0, "frame")  # must not raise
    assert rec.stats.write_errors == 5 and rec.stats.frames == 0


def test_a_file_cut_short_by_a_crash_yields_what_it_holds(tmp_path: Path) -> None:
    rec = RawRecorder(tmp_path, caps())
    for i in range(50):
        rec.record(False, T0, f"frame {i}")
    rec._zst.flush(zstandard.FLUSH_FRAME)  # as the once-a-second flush does
    path = recordings(tmp_path)[0]
    data = path.read_bytes()
    path.write_bytes(data + b"\x01\x02garbage")  # torn tail
    got = [f.raw for f in read_recording(path)]
    assert got == [f"frame {i}" for i in range(50)]


async def test_replay_decodes_a_recording_exactly_like_the_live_codec(tmp_path: Path) -> None:
    lines = SESSION.read_text(encoding="utf-8").splitlines()
    rec = RawRecorder(tmp_path, caps(recorder_max_file_bytes=4096))
    for i, line in enumerate(lines):
        rec.record(False, T0 + timedelta(milliseconds=i), line)
        if i % 10 == 0:
            rec.record(True, T0, '{"header": {"tr_id": "PINGPONG"}}')
    rec.close()

    live = KisSession(SecretStr("k"), date(2023, 6, 12))
    expected_trades = expected_books = expected_q = 0
    for i, line in enumerate(lines):
        out = live.receive(line, T0 + timedelta(milliseconds=i))
        expected_trades += sum(1 for e in out.events if type(e).__name__ == "Trade")
        expected_books += sum(1 for e in out.events if type(e).__name__ == "BookSnapshot")
        expected_q += len(out.quarantined)

    batches: list[Batch] = []

    class Collect:
        async def put(self, batch: Batch) -> None:
            batches.append(batch)

    settings = Settings()
    report = await replay(recordings(tmp_path), REGISTRY[Broker.KIS], settings, sink=Collect())
    assert report.frames_received == len(lines)
    assert report.frames_sent == len(range(0, len(lines), 10))
    assert (report.trades, report.books, report.quarantined) == (
        expected_trades,
        expected_books,
        expected_q,
    )
    assert expected_trades > 0 and expected_books > 0 and expected_q > 0
    assert sum(len(b.trades) for b in batches) == expected_trades
    assert sum(len(b.quarantined) for b in batches) == expected_q
    assert all(t.trading_day == date(2023, 6, 12) for b in batches for t in b.trades)
