"""Receive journal: what a collector read survives its SIGKILL and is replayed once by the
next process on that app key, with a gap per subscription from the last frame read."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tickguard.brokers.base import Channel, Subscription
from tickguard.brokers.registry import REGISTRY
from tickguard.models import Batch, Broker, GapKind, Trade
from tickguard.settings import Settings
from tickguard.stream.gaps import GapTracker
from tickguard.stream.journal import (
    RESTART_CAUSE,
    FrameJournal,
    JournaledSink,
    read_journal,
    recover,
    segments,
)

SESSION = Path(__file__).parents[1] / "data" / "kis" / "session.txt"
T0 = datetime(2023, 6, 12, 0, 33, 54, 123456, tzinfo=UTC)
DAY = date(2023, 6, 12)

KILLED = """
import os, signal, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tickguard.stream.journal import FrameJournal
j = FrameJournal(Path(sys.argv[1]), "kis-k0")
lines = Path(sys.argv[2]).read_text(encoding="utf-8").splitlines()
t0 = datetime(2023, 6, 12, 0, 33, 54, 123456, tzinfo=UTC)
for i, line in enumerate(lines):
    j.record(False, t0 + timedelta(milliseconds=i), line)
    j.record(True, t0, "sent frames are never journaled")
os.kill(os.getpid(), signal.SIGKILL)
"""


class Collect:
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def put(self, batch: Batch) -> None:
        self.batches.append(batch)


def _killed_writer(directory: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", KILLED, str(directory), str(SESSION)], check=False, timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    return SESSION.read_text(encoding="utf-8").splitlines()


def test_every_frame_read_before_a_sigkill_is_in_the_journal(tmp_path: Path) -> None:
    lines = _killed_writer(tmp_path)
    frames = [f for p in segments(tmp_path) for f in read_journal(p)]
    assert [f.raw for f in frames] == lines
    assert [f.at for f in frames] == [T0 + timedelta(milliseconds=i) for i in range(len(lines))]


async def test_the_next_process_replays_the_leftovers_once_and_opens_restart_gaps(
    tmp_path: Path,
) -> None:
    _killed_writer(tmp_path)
    subs = [Subscription("005930", Channel.TRADES), Subscription("005930", Channel.BOOK)]
    gaps = GapTracker(Broker.KIS, subs)
    sink = Collect()
    journal = FrameJournal(tmp_path, "kis-k0")
    replayed = await recover(journal, gaps, sink, REGISTRY[Broker.KIS], Settings(), DAY)
    assert replayed == len(SESSION.read_text(encoding="utf-8").splitlines())
    trades = [t for b in sink.batches for t in b.trades]
    opened = [g for b in sink.batches for g in b.gaps]
    assert len(trades) >= 3 and {t.symbol for t in trades} == {"005930"}
    assert {(g.symbol, g.kind) for g in opened} == {("005930", GapKind.TRADES),
                                                    ("005930", GapKind.BOOK)}  # fmt: skip
    last = T0 + timedelta(milliseconds=replayed - 1)
    assert all(g.start == last and g.end is None and g.cause == RESTART_CAUSE for g in opened)
    assert set(gaps.open) == set(subs)  # the first data of the new session closes them
    assert segments(tmp_path) == []  # released: a second start replays nothing
    assert await recover(journal, gaps, Collect(), REGISTRY[Broker.KIS], Settings(), DAY) == 0


async def test_segments_go_once_the_sink_holds_what_they_carried(tmp_path: Path) -> None:
    journal = FrameJournal(tmp_path, "kis-k0", rotate_s=0.0)
    sink = JournaledSink(Collect(), [journal])
    for i in range(3):
        journal.record(False, T0 + timedelta(seconds=i), f"frame {i}")
    assert len(segments(tmp_path)) == 3
    session = REGISTRY[Broker.KIS].new_session("t", DAY, Settings())
    lines = SESSION.read_text(encoding="utf-8").splitlines()
    trade = next(
        e for line in lines for e in session.receive(line, T0).events if isinstance(e, Trade)
    )
    # a batch received 11 s after the first segment: the first two segments (closed by the
    # rotations) are released, the open one stays
    later = dataclasses.replace(trade, received_at=T0 + timedelta(seconds=11))
    await sink.put(Batch(trades=[later]))
    assert len(segments(tmp_path)) == 1
    journal.close(clean=True)
    assert segments(tmp_path) == []


def test_leftovers_skip_segments_of_a_live_writer(tmp_path: Path) -> None:
    live = tmp_path / f"kis-k0-20260101T000000000000-{os.getppid()}-000001.tgjnl"
    dead = tmp_path / "kis-k0-20260101T000000000000-999999999-000001.tgjnl"
    live.touch()
    dead.touch()
    assert FrameJournal(tmp_path, "kis-k0").leftovers() == [dead]
