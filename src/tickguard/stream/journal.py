"""The collector's receive journal: what the process has READ survives a SIGKILL.

Between the websocket and the Redis stream, decoded events wait in the bounded queue and the
batcher for up to ``batch_max_delay_s`` (plus the XADD): a SIGKILL there loses frames the
collector had already read. The journal closes that window: every received frame is
appended with a plain ``os.write`` as it is read — once ``write`` returns the bytes belong
to the kernel, so a killed process loses nothing it journaled (no fsync: a power cut is a
different failure, as for the spool). Sent frames are never journaled (a KIS subscription
carries the approval key).

Segments rotate every :data:`ROTATE_S`; a closed segment is released once the sink has
accepted a batch received :data:`MARGIN_S` after the segment's last frame (one event loop,
one FIFO queue: events reach the sink in receive order, up to readers interleaving while
they wait for room; the margin covers that). A clean stop releases everything. Segments
left behind are an unclean exit: the next collector on that app key replays them through
the codec into the sink before it connects (the natural key makes the replay idempotent)
and opens a gap per subscription from the last journaled frame, which its first data closes.

"Received" in the kill drills means "in the journal": ``TICKGUARD_JOURNAL_KEEP=1`` (tests and
drills only) renames released segments to ``.done`` instead of deleting them.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgpack

from tickguard.brokers.base import BrokerTraits
from tickguard.models import Batch, Trade
from tickguard.settings import Settings
from tickguard.stream.batcher import Sink
from tickguard.stream.connection import FrameRecorder
from tickguard.stream.gaps import GapTracker

log = logging.getLogger(__name__)

SUFFIX = ".tgjnl"
DONE_SUFFIX = ".tgjnl-done"
KEEP_ENV = "TICKGUARD_JOURNAL_KEEP"
ROTATE_S = 5.0
MARGIN_S = 10.0
RESTART_CAUSE = "collector restarted after an unclean exit"
_HEADER = struct.Struct("<I")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class JournalStats:
    frames: int = 0
    write_errors: int = 0
    segments_released: int = 0
    frames_replayed: int = 0


@dataclass(frozen=True, slots=True)
class JournaledFrame:
    at: datetime
    raw: str | bytes


class FrameJournal:
    """Received frames of one app key's sessions under ``directory/<label>-*.tgjnl``."""

    def __init__(
        self, directory: Path, label: str, *, rotate_s: float = ROTATE_S, keep: bool | None = None
    ) -> None:
        self.directory, self.label, self.rotate_s = directory, label, rotate_s
        self.keep = os.environ.get(KEEP_ENV) == "1" if keep is None else keep
        self.stats = JournalStats()
        self._fd: int | None = None
        self._path: Path | None = None
        self._opened_mono = 0.0
        self._last_at: datetime | None = None
        self._closed: list[tuple[datetime, Path]] = []
        self._failed = False
        self._packer = msgpack.Packer(use_bin_type=True)
        self._seq = 0

    def leftovers(self) -> list[Path]:
        """Segments of this label left by processes that are gone (call before recording)."""
        found = sorted(self.directory.glob(f"{self.label}-*{SUFFIX}"), key=lambda p: p.name)
        return [p for p in found if not _writer_alive(p)]

    def record(self, sent: bool, at: datetime, raw: str | bytes) -> None:
        """Append one received frame (``sent`` frames are skipped); never raises."""
        if sent:
            return
        payload = self._packer.pack([_epoch_ns(at), raw])
        try:
            if self._fd is None or time.monotonic() - self._opened_mono >= self.rotate_s:
                self._rotate()
            assert self._fd is not None
            os.write(self._fd, _HEADER.pack(len(payload)) + payload)
        except OSError as exc:
            self.stats.write_errors += 1
            if not self._failed:
                self._failed = True
                log.error("receive journal write failed (%s); frames are still processed", exc)
            return
        self._last_at = at
        self.stats.frames += 1

    def delivered(self, through: datetime) -> None:
        """The sink holds every event received up to ``through``: release older segments."""
        horizon = through - timedelta(seconds=MARGIN_S)
        while self._closed and self._closed[0][0] <= horizon:
            self.release([self._closed.pop(0)[1]])

    def close(self, *, clean: bool) -> None:
        """Close the current segment; ``clean`` (everything reached the sink): release all."""
        self._close_segment()
        if clean:
            self.release([p for _at, p in self._closed])
            self._closed.clear()

    def release(self, paths: Iterable[Path]) -> None:
        for path in paths:
            try:
                if self.keep:
                    path.rename(path.with_name(path.name.removesuffix(SUFFIX) + DONE_SUFFIX))
                else:
                    path.unlink(missing_ok=True)
                self.stats.segments_released += 1
            except OSError as exc:
                log.warning("journal segment %s not released: %s", path.name, exc)

    def _rotate(self) -> None:
        self._close_segment()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{self.label}-{stamp}-{os.getpid()}-{self._seq:06d}{SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._path, self._opened_mono, self._failed = path, time.monotonic(), False

    def _close_segment(self) -> None:
        if self._fd is None or self._path is None:
            return
        try:
            os.close(self._fd)
        except OSError as exc:
            log.warning("journal segment %s close failed: %s", self._path.name, exc)
        self._closed.append((self._last_at or datetime.now(UTC), self._path))
        self._fd = self._path = None


def read_journal(path: Path) -> Iterator[JournaledFrame]:
    """Frames of one segment in order; a tail torn by the kill ends it quietly."""
    data = path.read_bytes()
    pos = 0
    while pos + _HEADER.size <= len(data):
        (size,) = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + size
        if end > len(data):
            break
        try:
            ns, raw = msgpack.unpackb(data[pos + _HEADER.size : end], raw=False)
        except (ValueError, msgpack.UnpackException):
            log.warning("journal %s: unreadable record at byte %d; the rest is skipped", path, pos)
            break
        yield JournaledFrame(EPOCH + timedelta(microseconds=int(ns) // 1000), raw)
        pos = end


def decode(
    frames: Iterable[JournaledFrame], traits: BrokerTraits, settings: Settings, day: date
) -> Batch:
    """Trades and books of ``frames`` through one fresh codec session (as
    :mod:`tickguard.stream.replay` does); quarantine and halts were handled live."""
    session = traits.new_session("journal", day, settings)
    batch = Batch()
    for frame in frames:
        for event in session.receive(frame.raw, frame.at).events:
            if isinstance(event, Trade):
                batch.trades.append(event)
            else:
                batch.books.append(event)
    return batch


def segments(directory: Path, *, done: bool = True) -> list[Path]:
    """Every journal segment under ``directory`` (``done``: released ones kept too)."""
    found = list(directory.glob(f"*{SUFFIX}"))
    if done:
        found += directory.glob(f"*{DONE_SUFFIX}")
    return sorted(found, key=lambda p: p.name)


class Tee:
    """One FrameRecorder that hands every frame to several (raw recorder and journal)."""

    def __init__(self, *recorders: FrameRecorder) -> None:
        self.recorders = recorders

    def record(self, sent: bool, at: datetime, raw: str | bytes) -> None:
        for recorder in self.recorders:
            recorder.record(sent, at, raw)


class JournaledSink:
    """Hands batches on; once the sink has one, tells the journals what it holds."""

    def __init__(self, inner: Sink, journals: Sequence[FrameJournal]) -> None:
        self.inner, self.journals = inner, journals

    async def put(self, batch: Batch) -> None:
        await self.inner.put(batch)
        stamps = [items[-1].received_at for items in (batch.trades, batch.books) if items]
        if stamps:
            through = max(stamps)
            for journal in self.journals:
                journal.delivered(through)


async def recover(
    journal: FrameJournal, gaps: GapTracker, sink: Sink, traits: BrokerTraits,
    settings: Settings, day: date,
) -> int:  # fmt: skip
    """Replay what an earlier process on this app key journaled but may not have handed on,
    and open the restart gap of every subscription; the frames replayed."""
    paths = journal.leftovers()
    if not paths:
        return 0
    frames = [f for p in paths for f in read_journal(p)]
    batch = decode(frames, traits, settings, day)
    last = frames[-1].at if frames else datetime.fromtimestamp(
        max(p.stat().st_mtime for p in paths), UTC
    )  # fmt: skip
    opened = gaps.on_disconnect(last, RESTART_CAUSE, datetime.now(UTC))
    size = settings.stream.batch_max_events
    for i in range(0, len(batch.trades), size):
        await sink.put(Batch(trades=batch.trades[i : i + size]))
    for i in range(0, len(batch.books), size):
        await sink.put(Batch(books=batch.books[i : i + size]))
    if opened:
        await sink.put(Batch(gaps=opened))
    journal.release(paths)
    journal.stats.frames_replayed += len(frames)
    log.warning(
        "%s: %d journaled frames of an earlier process replayed (%d trades, %d books); "
        "gaps opened from %s", journal.label, len(frames), len(batch.trades), len(batch.books),
        last.isoformat(),
    )  # fmt: skip
    return len(frames)


def _writer_alive(path: Path) -> bool:
    """The segment's writer (pid in its name) is a live process other than this one."""
    parts = path.name.removesuffix(SUFFIX).rsplit("-", 2)
    pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _epoch_ns(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000
