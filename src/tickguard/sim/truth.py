"""Ground truth of a simulator run, written to a directory as it happens (broker-neutral).

A drill compares what tickguard stored with what the simulator generated and sent, so the
truth must be complete and must not live in RAM. Layout of ``truth_dir``:

* ``meta.json`` — day, seed, speed, symbols, start (written at start).
* ``generated.msgpack.zst`` — every trade ``["T", symbol, cum_volume, price, qty, side, t,
  live]`` and book ``["B", symbol, seq, t, live]`` generated; ``live`` = sessions subscribed
  and live when it was generated (0 → missed while disconnected).
* ``frames.msgpack.zst`` — every frame sent: ``[session, wall_ts, sim_t, tr_id, kind,
  trade_keys, book_keys]``; ``kind`` is "data", "grown" or "malformed"; keys are
  ``[symbol, cum_volume]`` / ``[symbol, seq]`` (a corrupted frame keeps the keys it would
  have carried; they do not count as sent).
* ``faults.jsonl`` — every fault injected: kind, session, start, end (wall epoch s), detail.
* ``sessions.jsonl`` — connection lifecycle (open, bound, closed + reason).
* ``summary.json`` — the simulator's counters (written on close).

Records are msgpack in zstd frames; the writer ends a zstd frame on every :meth:`flush`
(periodically and on close), so a reader sees everything up to the last flush even while
the simulator is still running. Trade keys are (symbol, trading_day, cum_volume) like the
store's natural key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

import msgpack
import zstandard

GENERATED = "generated.msgpack.zst"
FRAMES = "frames.msgpack.zst"
FAULTS = "faults.jsonl"
SESSIONS = "sessions.jsonl"
META = "meta.json"
SUMMARY = "summary.json"

TradeKey = tuple[str, date, int]


class _ZstdLog:
    """Append-only msgpack records in zstd frames; one frame per flush."""

    def __init__(self, path: Path, flush_every: int = 20_000) -> None:
        self._fh: IO[bytes] = path.open("wb")
        self._cctx = zstandard.ZstdCompressor(level=1)
        self._packer = msgpack.Packer()
        self._buf: list[bytes] = []
        self._flush_every = flush_every

    def write(self, record: list[Any]) -> None:
        self._buf.append(self._packer.pack(record))
        if len(self._buf) >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self._fh.write(self._cctx.compress(b"".join(self._buf)))
            self._buf.clear()
        self._fh.flush()

    def close(self) -> None:
        self.flush()
        self._fh.close()


class TruthWriter:
    """Writes the ground truth; bounded memory (at most ``flush_every`` records buffered)."""

    def __init__(self, directory: Path, meta: dict[str, Any]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        (directory / META).write_text(json.dumps(meta, indent=2, default=str))
        self._generated = _ZstdLog(directory / GENERATED)
        self._frames = _ZstdLog(directory / FRAMES)
        self._faults = (directory / FAULTS).open("w", encoding="utf-8")
        self._sessions = (directory / SESSIONS).open("w", encoding="utf-8")

    def trade(
        self,
        symbol: str,
        cum_volume: int,
        price: int,
        qty: int,
        side: str | None,
        t: float,
        live: int,
    ) -> None:
        self._generated.write(["T", symbol, cum_volume, price, qty, side, t, live])

    def book(self, symbol: str, seq: int, t: float, live: int) -> None:
        self._generated.write(["B", symbol, seq, t, live])

    def frame(
        self,
        session: int,
        sim_t: float,
        tr_id: str,
        kind: str,
        trade_keys: list[tuple[str, int]],
        book_keys: list[tuple[str, int]],
    ) -> None:
        self._frames.write([session, time.time(), sim_t, tr_id, kind, trade_keys, book_keys])

    def fault(
        self, kind: str, session: int | None, start: float, end: float, **detail: Any
    ) -> None:
        row = {"kind": kind, "session": session, "start": start, "end": end, "detail": detail}
        self._faults.write(json.dumps(row) + "\n")
        self._faults.flush()

    def session_event(self, session: int, event: str, **detail: Any) -> None:
        row = {"session": session, "event": event, "wall": time.time(), **detail}
        self._sessions.write(json.dumps(row) + "\n")
        self._sessions.flush()

    def flush(self) -> None:
        self._generated.flush()
        self._frames.flush()

    def close(self, summary: dict[str, Any]) -> None:
        self._generated.close()
        self._frames.close()
        self._faults.close()
        self._sessions.close()
        (self.directory / SUMMARY).write_text(json.dumps(summary, indent=2))


@dataclass(frozen=True, slots=True)
class TruthTrade:
    symbol: str
    cum_volume: int
    price: int
    qty: int
    side: str | None
    t: float
    live: int


@dataclass(frozen=True, slots=True)
class SentFrame:
    session: int
    wall_ts: float
    sim_t: float
    tr_id: str
    kind: str
    trade_keys: list[tuple[str, int]]
    book_keys: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class TruthCounts:
    trades_generated: int
    trades_sent: int
    """Distinct trade keys that went out on a live subscribed session."""
    trades_missed: int
    """Generated but never sent (no live subscribed session, silenced, or dropped first)."""
    trades_missed_while_disconnected: int
    """Generated while no live session was subscribed to the symbol."""
    books_generated: int
    books_sent: int
    frames_sent: int
    frames_malformed: int
    faults: dict[str, int]


def _records(path: Path) -> Iterator[list[Any]]:
    """Every complete record of a zstd/msgpack log, also while it is still being written."""
    if not path.exists():
        return
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, use_list=True)
    with path.open("rb") as fh:
        reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
        while chunk := _read(reader):
            unpacker.feed(chunk)
            yield from unpacker


def _read(reader: Any) -> bytes:
    try:
        data: bytes = reader.read(1 << 20)
    except zstandard.ZstdError:
        return b""  # a frame cut short by a crash: everything before it was returned
    return data


class TruthReader:
    """Reads a truth directory (during or after a run) for drills and tests."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.meta: dict[str, Any] = json.loads((directory / META).read_text())
        self.day = date.fromisoformat(str(self.meta["day"]))

    def generated_trades(self) -> Iterator[TruthTrade]:
        for r in _records(self.directory / GENERATED):
            if r[0] == "T":
                yield TruthTrade(r[1], r[2], r[3], r[4], r[5], r[6], r[7])

    def generated_books(self) -> Iterator[tuple[str, int, float, int]]:
        """(symbol, seq, t, live) of every book generated."""
        for r in _records(self.directory / GENERATED):
            if r[0] == "B":
                yield (r[1], r[2], r[3], r[4])

    def frames(self) -> Iterator[SentFrame]:
        for r in _records(self.directory / FRAMES):
            tk = [(s, k) for s, k in r[5]]
            bk = [(s, k) for s, k in r[6]]
            yield SentFrame(r[0], r[1], r[2], r[3], r[4], tk, bk)

    def sent_trade_keys(self) -> set[TradeKey]:
        """Distinct keys of trades that went out readable on a live subscribed session.

        Records inside a frame the simulator corrupted on purpose do not count as sent: no
        client can read them, so they are missed like any other lost trade.
        """
        return {
            (s, self.day, k)
            for f in self.frames()
            if f.kind != "malformed"
            for s, k in f.trade_keys
        }

    def faults(self) -> list[dict[str, Any]]:
        return _jsonl(self.directory / FAULTS)

    def sessions(self) -> list[dict[str, Any]]:
        return _jsonl(self.directory / SESSIONS)

    def summary(self) -> dict[str, Any]:
        path = self.directory / SUMMARY
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def counts(self) -> TruthCounts:
        sent = self.sent_trade_keys()
        books_sent: set[tuple[str, int]] = set()
        frames = malformed = 0
        for f in self.frames():
            frames += 1
            malformed += f.kind == "malformed"
            if f.kind != "malformed":
                books_sent.update(f.book_keys)
        gen = missed = disconnected = books = 0
        for r in _records(self.directory / GENERATED):
            if r[0] == "T":
                gen += 1
                missed += (r[1], self.day, r[2]) not in sent
                disconnected += r[7] == 0
            else:
                books += 1
        kinds: dict[str, int] = {}
        for fault in self.faults():
            kinds[fault["kind"]] = kinds.get(fault["kind"], 0) + 1
        return TruthCounts(
            gen, len(sent), missed, disconnected, books, len(books_sent), frames, malformed, kinds
        )


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
