"""Local disk spool: where batches wait while Redis is unreachable.

Why a spool and not a bigger queue: the incident's collector was OOM-killed by an
unbounded in-memory buffer. Here nothing waits in RAM; it waits on disk, bounded.

Layout: a directory of append-only segment files ``<seq>.seg`` (seq grows forever) and a
``cursor`` file. A record is ``>III`` (payload length, crc32 of payload, event count)
followed by the payload. Writes go to the newest segment and roll to a new one once it
reaches ``segment_bytes``; past ``max_bytes`` in total a record is refused and counted as
overflow (``overflow_batches`` / ``overflow_events``), never held in memory.

Replay is oldest first: :meth:`Spool.peek` returns the next undelivered record,
:meth:`Spool.ack` marks it delivered and saves the cursor (atomic rename), and a segment is
deleted only once every record in it was acked. A crash mid-replay therefore re-sends at
most the records after the last saved cursor (downstream writes are idempotent; losses are
not acceptable, duplicates are). After a restart, writes start a fresh segment, so a torn
last record of a crashed writer is never appended to; when replay reaches it the crc (or a
short read) exposes it, it is counted in ``torn_records`` and the rest of that segment is
skipped.

Not thread-safe: one owner (the sink's event loop) calls every method, and one process
owns a spool directory at a time (an exclusive ``flock`` on ``lock``; a second opener gets
:class:`SpoolBusyError`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from tickguard.errors import StorageError

log = logging.getLogger(__name__)

HEADER: Final = struct.Struct(">III")
SUFFIX: Final = ".seg"
CURSOR: Final = "cursor"
LOCK: Final = "lock"


class SpoolBusyError(StorageError):
    """Another process holds this spool directory (give each sink its own ``name``)."""


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One undelivered record and where it sits (passed back to :meth:`Spool.ack`)."""

    segment: int
    offset: int
    end: int
    payload: bytes
    events: int


@dataclass(slots=True)
class SpoolStats:
    """Counters the metrics layer reads; ``bytes``/``segments`` are current totals on disk."""

    bytes: int = 0
    segments: int = 0
    records_written: int = 0
    events_written: int = 0
    records_replayed: int = 0
    events_replayed: int = 0
    overflow_batches: int = 0
    overflow_events: int = 0
    torn_records: int = 0


class Spool:
    """Size-capped, crash-safe, ordered disk queue of byte records."""

    def __init__(
        self, directory: Path, *, segment_bytes: int, max_bytes: int, fsync: bool = False
    ) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.stats = SpoolStats()
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_directory(directory)
        found = {
            int(p.stem): p.stat().st_size for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit()
        }
        self._sizes: dict[int, int] = dict(sorted(found.items()))
        self._writer: BinaryIO | None = None
        self._write_seq: int | None = None
        self._reader: BinaryIO | None = None
        self._read_seq: int | None = None
        self._cursor = self._load_cursor()
        self._overflowing = False
        self._refresh_totals()
        if self._sizes:
            log.info(
                "spool %s: %d segment(s), %d bytes to replay",
                directory,
                len(self._sizes),
                self.stats.bytes,
            )

    # -- writing ---------------------------------------------------------------------------

    def append(self, payload: bytes, events: int = 0) -> bool:
        """Store one record; False (and counted as overflow) when the cap would be exceeded."""
        size = HEADER.size + len(payload)
        if self.stats.bytes + size > self.max_bytes:
            self._overflow(events)
            return False
        if self._overflowing:
            self._overflowing = False
            log.warning(
                "spool %s accepting again after %d overflowed batch(es)",
                self.directory,
                self.stats.overflow_batches,
            )
        seq, writer = self._writer_for(size)
        writer.write(HEADER.pack(len(payload), zlib.crc32(payload), events))
        writer.write(payload)
        writer.flush()
        if self.fsync:
            os.fsync(writer.fileno())
        self._sizes[seq] += size
        self.stats.bytes += size
        self.stats.records_written += 1
        self.stats.events_written += events
        return True

    def _overflow(self, events: int) -> None:
        self.stats.overflow_batches += 1
        self.stats.overflow_events += events
        if not self._overflowing:
            self._overflowing = True
            log.error(
                "spool %s full (%d of %d bytes): new batches are dropped and counted",
                self.directory,
                self.stats.bytes,
                self.max_bytes,
            )

    def _writer_for(self, size: int) -> tuple[int, BinaryIO]:
        """The open segment to write to, rolling to a new one when this record would not fit."""
        if self._writer is not None and self._write_seq is not None:
            used = self._sizes[self._write_seq]
            if used == 0 or used + size <= self.segment_bytes:
                return self._write_seq, self._writer
            self._writer.close()
        seq = max(self._sizes, default=0) + 1
        self._writer = (self.directory / f"{seq:012d}{SUFFIX}").open("ab")
        self._write_seq = seq
        self._sizes[seq] = 0
        self.stats.segments = len(self._sizes)
        return seq, self._writer

    # -- replay ----------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        """True when every record written was delivered (or skipped as torn)."""
        if not self._sizes:
            return True
        if len(self._sizes) > 1 or self._cursor is None:
            return False
        seq, offset = self._cursor
        return self._sizes.get(seq, -1) <= offset

    def peek(self) -> SpoolRecord | None:
        """The oldest undelivered record, or None when there is none."""
        while self._sizes:
            if self._cursor is None or self._cursor[0] not in self._sizes:
                self._cursor = (next(iter(self._sizes)), 0)
            seq, offset = self._cursor
            if offset >= self._sizes[seq]:
                if seq == self._write_seq:
                    return None
                self._drop(seq)
                continue
            record = self._read(seq, offset)
            if record is not None:
                return record
            self._cursor = (seq, self._sizes[seq])
        return None

    def ack(self, record: SpoolRecord) -> None:
        """Mark ``record`` delivered; delete its segment once all of it was delivered."""
        self.stats.records_replayed += 1
        self.stats.events_replayed += record.events
        self._cursor = (record.segment, record.end)
        if record.end >= self._sizes.get(record.segment, 0):
            if record.segment == self._write_seq and self._writer is not None:
                self._writer.close()
                self._writer, self._write_seq = None, None
            self._drop(record.segment)
        self._save_cursor()

    def _read(self, seq: int, offset: int) -> SpoolRecord | None:
        """Read the record at ``offset``; None (and counted) when it is torn or corrupt."""
        if self._read_seq != seq or self._reader is None:
            self._close_reader()
            self._reader = self._path(seq).open("rb")
            self._read_seq = seq
        self._reader.seek(offset)
        head = self._reader.read(HEADER.size)
        if len(head) == HEADER.size:
            length, crc, events = HEADER.unpack(head)
            payload = self._reader.read(length)
            if len(payload) == length and zlib.crc32(payload) == crc:
                end = offset + HEADER.size + length
                return SpoolRecord(seq, offset, end, payload, events)
        self.stats.torn_records += 1
        log.warning(
            "spool segment %d: torn or corrupt record at byte %d; skipping the rest "
            "of the segment (%d bytes)",
            seq,
            offset,
            self._sizes[seq] - offset,
        )
        return None

    def _drop(self, seq: int) -> None:
        if self._read_seq == seq:
            self._close_reader()
        self._path(seq).unlink(missing_ok=True)
        del self._sizes[seq]
        self._cursor = (next(iter(self._sizes)), 0) if self._sizes else None
        self._refresh_totals()

    # -- bookkeeping -----------------------------------------------------------------------

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:012d}{SUFFIX}"

    def _refresh_totals(self) -> None:
        self.stats.bytes = sum(self._sizes.values())
        self.stats.segments = len(self._sizes)

    def _load_cursor(self) -> tuple[int, int] | None:
        try:
            seq, offset = (self.directory / CURSOR).read_text().split()
            return int(seq), int(offset)
        except (OSError, ValueError):
            return None

    def _save_cursor(self) -> None:
        tmp = self.directory / f"{CURSOR}.tmp"
        if self._cursor is None:
            (self.directory / CURSOR).unlink(missing_ok=True)
            return
        tmp.write_text(f"{self._cursor[0]} {self._cursor[1]}\n")
        os.replace(tmp, self.directory / CURSOR)

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._reader, self._read_seq = None, None

    def close(self) -> None:
        """Close open files; everything written stays on disk for the next start."""
        self._close_reader()
        if self._writer is not None:
            self._writer.close()
        self._writer, self._write_seq = None, None
        if not self._lock.closed:
            self._lock.close()  # releases the flock


def _lock_directory(directory: Path) -> BinaryIO:
    """Hold an exclusive lock on the spool: two writers would interleave and lose records."""
    handle = (directory / LOCK).open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SpoolBusyError(f"spool {directory} is in use by another process") from None
    return handle
