"""The write half of persist: one read's entries → one PostgreSQL transaction.

Kept apart from the loop in :mod:`tickguard.sinks.persist` so the rule "a poison entry
never blocks the stream" is small enough to read in one sitting:

* all entries decoded → one ``write_many`` transaction (the fast path);
* some entries undecodable → the same transaction also inserts them into ``quarantine``
  (reason ``undecodable_stream_entry``), so they are acknowledged with the rest;
* PostgreSQL rejects the rows as data (the writer's StorageError, e.g. a check
  constraint or an out-of-range value) → the entries are retried one per transaction;
  of one that still fails, each kind (trades, books, gaps, quarantined frames) is tried
  on its own so the good kinds are stored, and the entry is quarantined (reason
  ``unwritable_stream_entry``) instead of being retried for ever.

A quarantined entry keeps its bytes (base64) and stream id; its ``received_at`` is the
entry id's time, so a redelivered entry lands on the same quarantine key and adds nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tickguard.errors import StorageError
from tickguard.models import Batch
from tickguard.store.rows import raw_digest
from tickguard.store.writer import PostgresWriter, WriteResult

UNDECODABLE = "undecodable_stream_entry"
UNWRITABLE = "unwritable_stream_entry"
QUARANTINE_BROKER = "unknown"
_DATA_ERRORS = (StorageError, psycopg.DataError, psycopg.IntegrityError)
"""The writer raises StorageError for a batch PostgreSQL refuses for its content."""
_INSERT = (
    "INSERT INTO quarantine (broker, received_at, reason, detail, raw, raw_digest) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)

Entry = tuple[bytes, dict[bytes, bytes] | None]
"""One stream entry as redis-py returns it: (id, fields); fields is None once deleted."""


@dataclass(slots=True)
class PersistCounters:
    """What persist has done; read by the metrics layer and logged at shutdown."""

    entries_read: int = 0
    entries_acked: int = 0
    commits: int = 0
    rows_inserted: int = 0
    rows_duplicates: int = 0
    trades_inserted: int = 0
    trades_duplicates: int = 0
    quarantined_entries: int = 0
    reclaimed: int = 0
    trimmed: int = 0
    db_retries: int = 0
    redis_retries: int = 0
    pending: int = 0
    lag: int | None = None
    last_commit_at: datetime | None = field(default=None)

    def add(self, result: WriteResult, *, quarantined: int) -> None:
        self.rows_inserted += result.inserted
        self.rows_duplicates += result.duplicates
        self.trades_inserted += result.trades_inserted
        self.trades_duplicates += result.trades_duplicates
        self.quarantined_entries += quarantined


@dataclass(slots=True)
class Outcome:
    result: WriteResult
    unwritable: int = 0


def write_entries(
    writer: PostgresWriter,
    decoded: Sequence[tuple[Entry, Batch]],
    bad: Sequence[tuple[Entry, str]],
) -> Outcome:
    """Store one read; raises only errors worth retrying (connection, schema)."""
    batches = [batch for _, batch in decoded]
    try:
        if not bad:
            return Outcome(writer.write_many(batches))
        return Outcome(_write_with_quarantine(writer, batches, bad, UNDECODABLE))
    except _DATA_ERRORS:
        return _one_by_one(writer, decoded, bad)


def _write_with_quarantine(
    writer: PostgresWriter, batches: list[Batch], bad: Sequence[tuple[Entry, str]], reason: str
) -> WriteResult:
    with writer.conn.transaction():
        result = writer.write_many(batches)
        quarantine_entries(writer.conn, bad, reason)
    return result


def _one_by_one(
    writer: PostgresWriter,
    decoded: Sequence[tuple[Entry, Batch]],
    bad: Sequence[tuple[Entry, str]],
) -> Outcome:
    """Find the entries PostgreSQL refuses: each in its own transaction."""
    total = WriteResult()
    refused: list[tuple[Entry, str]] = []
    for entry, batch in decoded:
        try:
            total += writer.write_many((batch,))
        except _DATA_ERRORS:
            stored, errors = _by_kind(writer, batch)
            total += stored
            refused.append((entry, "; ".join(errors)))
    with writer.conn.transaction():
        quarantine_entries(writer.conn, bad, UNDECODABLE)
        quarantine_entries(writer.conn, refused, UNWRITABLE)
    return Outcome(total, unwritable=len(refused))


def _by_kind(writer: PostgresWriter, batch: Batch) -> tuple[WriteResult, list[str]]:
    """Store what PostgreSQL accepts of a refused batch, one kind at a time.

    A bad quarantined frame (say, a NUL byte in its text) must not keep the trades that
    travelled with it out of ``trades``; the whole entry still goes to quarantine (base64),
    with the refused kinds named in its detail.
    """
    parts = {
        "trades": Batch(trades=batch.trades),
        "books": Batch(books=batch.books),
        "gaps": Batch(gaps=batch.gaps),
        "quarantined": Batch(quarantined=batch.quarantined),
        "halts": Batch(halts=batch.halts),
    }
    stored = WriteResult()
    errors: list[str] = []
    for kind, part in parts.items():
        if not len(part):
            continue
        try:
            stored += writer.write_many((part,))
        except _DATA_ERRORS as exc:
            errors.append(f"{kind} refused: {type(exc).__name__}: {exc}")
    return stored, errors or ["refused as a whole only"]


def quarantine_entries(
    conn: psycopg.Connection[Any], items: Sequence[tuple[Entry, str]], reason: str
) -> None:
    """Insert stream entries into ``quarantine`` (idempotent per entry id and bytes)."""
    if not items:
        return
    with conn.cursor() as cur:
        cur.executemany(_INSERT, [_quarantine_row(entry, error, reason) for entry, error in items])


def _quarantine_row(entry: Entry, error: str, reason: str) -> tuple[Any, ...]:
    entry_id, fields = entry
    sid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    payload = None if fields is None else fields.get(b"b")
    raw = base64.b64encode(payload).decode() if payload is not None else repr(fields)[:10_000]
    ms = int(sid.partition("-")[0])
    received_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    detail = f"stream entry {sid}: {error}"[:2_000]
    return (QUARANTINE_BROKER, received_at, reason, detail, raw, raw_digest(raw))
