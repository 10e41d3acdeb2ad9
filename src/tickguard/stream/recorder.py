"""Raw recorder: every frame received (and sent) with its time, in capped zstd files.

Why: when a day's data looks wrong, the only evidence that cannot lie is what came over the
wire. Recordings replay through the same codec (``tickguard replay``), become test fixtures,
and settle "the broker never sent it" versus "we lost it".

Format: a zstd stream of msgpack arrays ``[sent, epoch_ns_utc, frame]`` (``sent`` is True for
frames we sent). Files rotate at ``recorder_max_file_bytes`` (compressed) or hourly; the
oldest files go first when the directory passes ``recorder_max_total_bytes``, and files older
than ``recorder_max_age_s`` are deleted. A write failure (disk full, permissions) is counted
and logged once per file — it never stops the stream. Every second the current zstd frame is
ended, so a crash loses at most about a second of recording and a torn tail spoils nothing
before it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import msgpack
import zstandard

from tickguard.settings import StreamSettings

log = logging.getLogger(__name__)

SUFFIX = ".tgraw.zst"
ROTATE_AFTER_S = 3600.0
FLUSH_EVERY_S = 1.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class RecorderStats:
    frames: int = 0
    write_errors: int = 0
    files_opened: int = 0
    files_deleted: int = 0


class RawRecorder:
    """Append-only, capped recording of one collector's frames under ``directory``."""

    def __init__(self, directory: Path, stream: StreamSettings, label: str = "raw") -> None:
        self.directory = directory
        self.max_file = stream.recorder_max_file_bytes
        self.max_total = stream.recorder_max_total_bytes
        self.max_age_s = stream.recorder_max_age_s
        self.label = label
        self.stats = RecorderStats()
        self._raw: IO[bytes] | None = None
        self._zst: Any = None
        self._opened_mono = 0.0
        self._flushed_mono = 0.0
        self._seq = 0
        self._failed_file = False
        self._packer = msgpack.Packer(use_bin_type=True)

    def record(self, sent: bool, at: datetime, raw: str | bytes) -> None:
        """Append one frame (a sent one without its credentials); never raises."""
        try:
            if sent:
                raw = redact_sent(raw)
            self._write(self._packer.pack([sent, _epoch_ns(at), raw]))
        except (OSError, zstandard.ZstdError, ValueError) as exc:
            self.stats.write_errors += 1
            if not self._failed_file:
                self._failed_file = True
                log.error("raw recorder write failed (%s); frames are still processed", exc)
            self._discard()

    def _write(self, payload: bytes) -> None:
        now = time.monotonic()
        if self._zst is None:
            self._open(now)
        elif self._raw is not None and (
            self._raw.tell() >= self.max_file or now - self._opened_mono >= ROTATE_AFTER_S
        ):
            self.close()
            self._open(now)
        self._zst.write(payload)
        self.stats.frames += 1
        if now - self._flushed_mono >= FLUSH_EVERY_S:
            self._zst.flush(zstandard.FLUSH_FRAME)
            self._flushed_mono = now

    def _open(self, now: float) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._enforce_caps()
        self._seq += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{self.label}-{stamp}-{self._seq:04d}{SUFFIX}"
        self._raw = path.open("xb")
        self._zst = zstandard.ZstdCompressor(level=3).stream_writer(self._raw, closefd=False)
        self._opened_mono = self._flushed_mono = now
        self._failed_file = False
        self.stats.files_opened += 1

    def close(self) -> None:
        """Finish the current file (a complete zstd frame)."""
        try:
            if self._zst is not None:
                self._zst.flush(zstandard.FLUSH_FRAME)
            if self._raw is not None:
                self._raw.close()
        except (OSError, zstandard.ZstdError, ValueError) as exc:
            self.stats.write_errors += 1
            log.error("raw recorder close failed: %s", exc)
        self._zst = self._raw = None

    def _discard(self) -> None:
        try:
            if self._raw is not None:
                self._raw.close()
        except OSError:
            pass
        self._zst = self._raw = None

    def _enforce_caps(self) -> None:
        """Delete files past the age cap, then oldest first until under the size cap."""
        files = sorted(self.directory.glob(f"*{SUFFIX}"), key=lambda p: p.name)
        now = time.time()
        sizes = {p: p.stat().st_size for p in files}
        total = sum(sizes.values())
        for path in files:
            too_old = now - path.stat().st_mtime > self.max_age_s
            # Leave room for the file about to be opened.
            if too_old or total + self.max_file > self.max_total:
                path.unlink(missing_ok=True)
                total -= sizes[path]
                self.stats.files_deleted += 1


SECRET_FIELDS = frozenset({"approval_key", "token", "appkey", "appsecret", "secretkey"})
"""JSON members of a sent frame that hold a credential (KIS subscriptions carry the approval
key in their header, Kiwoom's LOGIN the access token)."""
REDACTED = "<redacted>"


def redact_sent(raw: str | bytes) -> str | bytes:
    """A sent frame with every credential member replaced by :data:`REDACTED`.

    Recordings are evidence people share and turn into fixtures: they keep what was asked
    for, never the key it was asked with. A sent frame that names a credential but is not
    JSON is dropped whole (it may hold anything)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if not any(name in text for name in SECRET_FIELDS):
        return raw
    try:
        doc = json.loads(text)
    except ValueError:
        return REDACTED
    return json.dumps(_scrub(doc), ensure_ascii=False)


def _scrub(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: REDACTED if k in SECRET_FIELDS else _scrub(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_scrub(v) for v in doc]
    return doc


def _epoch_ns(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    sent: bool
    at: datetime
    raw: str | bytes


def read_recording(path: Path, chunk_size: int = 1 << 20) -> Iterator[RecordedFrame]:
    """Frames of one recording, in order; a file cut short by a crash yields what it holds.

    The writer ends a zstd frame at every flush, so decoding frame by frame keeps everything
    up to the last complete flush even when the tail is torn.
    """
    unpacker = msgpack.Unpacker(raw=False, use_list=True)
    try:
        for data in _decompressed(path, chunk_size):
            unpacker.feed(data)
            for sent, ns, raw in unpacker:
                yield RecordedFrame(bool(sent), EPOCH + timedelta(microseconds=ns // 1000), raw)
    except (zstandard.ZstdError, ValueError, TypeError) as exc:
        log.warning("recording %s ends early: %s", path.name, exc)


def _decompressed(path: Path, chunk_size: int) -> Iterator[bytes]:
    """Decompressed bytes of every complete zstd frame (and a partial last one) of ``path``."""
    dctx = zstandard.ZstdDecompressor()
    with path.open("rb") as fh:
        dobj = dctx.decompressobj()
        while chunk := fh.read(chunk_size):
            while chunk:
                yield dobj.decompress(chunk)
                if not dobj.eof:
                    break
                chunk = dobj.unused_data
                dobj = dctx.decompressobj()


def recordings(directory: Path) -> list[Path]:
    """Recording files under ``directory``, oldest first."""
    return sorted(directory.glob(f"*{SUFFIX}"), key=lambda p: p.name)
