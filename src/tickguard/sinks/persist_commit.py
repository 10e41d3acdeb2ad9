"""The commit side of persist: write one prepared read, commit, THEN acknowledge it.

Several threads may commit different reads at once, each on a PostgreSQL connection of
its own (thread-local): the ``INSERT … ON CONFLICT`` work happens in the server, so two
writers keep two server processes busy while the reader decodes the next read. Reads may
commit out of order; that is harmless because every write is idempotent by natural key
and acknowledgement is per entry. A thread whose write fails drops its connection and
retries with capped backoff until it succeeds or persist stops (entries stay pending).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import redis

from tickguard.errors import StorageError
from tickguard.models import Batch
from tickguard.sinks.persist_write import Entry, PersistCounters, write_entries
from tickguard.store.writer import PostgresWriter

log = logging.getLogger(__name__)

Prepared = tuple[list[Entry], list[tuple[Entry, Batch]], list[tuple[Entry, str]]]
"""One read: every entry (for XACK), the decoded ones, the undecodable ones with why."""
RETRYABLE_DB = (psycopg.Error, StorageError)
"""What escapes write_entries: connection lost/refused, schema missing — worth a retry."""


class Committer:
    """Writes prepared reads and acknowledges them; callable from several threads."""

    def __init__(
        self,
        client: redis.Redis,
        connect: Callable[[], PostgresWriter],
        *,
        stream: str,
        group: str,
        counters: PersistCounters,
        stop_event: threading.Event,
        retry_redis: Callable[[Callable[[], object]], None],
        backoff_cap_s: float = 10.0,
        kill_after_commit: int | None = None,
    ) -> None:
        self.client, self.connect = client, connect
        self.stream, self.group = stream, group
        self.counters, self.stop_event = counters, stop_event
        self.retry_redis = retry_redis
        self.backoff_cap_s = backoff_cap_s
        self.kill_after_commit = kill_after_commit
        self._lock = threading.Lock()
        self._local = threading.local()
        self._open: set[PostgresWriter] = set()

    def commit(self, prepared: Prepared) -> bool:
        """Write, commit, XACK. False when persist stopped before the commit happened."""
        entries, decoded, bad = prepared
        if not entries:
            return True
        if not self._write_retrying(decoded, bad):
            return False
        with self._lock:
            self.counters.commits += 1
            commits = self.counters.commits
            self.counters.last_commit_at = datetime.now(UTC)
        if self.kill_after_commit is not None and commits >= self.kill_after_commit:
            log.warning("fault injection: SIGKILL after commit %d, before XACK", commits)
            os.kill(os.getpid(), signal.SIGKILL)
        ids = [entry_id for entry_id, _ in entries]
        self.retry_redis(lambda: self.client.xack(self.stream, self.group, *ids))
        with self._lock:
            self.counters.entries_acked += len(ids)
        return True

    def _write_retrying(
        self, decoded: list[tuple[Entry, Batch]], bad: list[tuple[Entry, str]]
    ) -> bool:
        delay = 0.1
        while True:  # at least one attempt, even when stopping: the read is ours already
            try:
                outcome = write_entries(self._writer(), decoded, bad)
            except RETRYABLE_DB as exc:
                self._drop_writer()
                if self.stop_event.is_set():
                    return False
                with self._lock:
                    self.counters.db_retries += 1
                log.warning(
                    "PostgreSQL write failed (%s); retrying in %.1fs, entries stay pending",
                    type(exc).__name__,
                    delay,
                )
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.backoff_cap_s)
                continue
            with self._lock:
                self.counters.add(outcome.result, quarantined=len(bad) + outcome.unwritable)
            return True

    def _writer(self) -> PostgresWriter:
        writer: PostgresWriter | None = getattr(self._local, "writer", None)
        if writer is None:
            writer = self.connect()
            self._local.writer = writer
            with self._lock:
                self._open.add(writer)
        return writer

    def _drop_writer(self) -> None:
        writer: PostgresWriter | None = getattr(self._local, "writer", None)
        self._local.writer = None
        if writer is not None:
            with self._lock:
                self._open.discard(writer)
            _close_quietly(writer)

    def close(self) -> None:
        """Close every thread's connection (call once no commit is running)."""
        with self._lock:
            writers, self._open = list(self._open), set()
        for writer in writers:
            _close_quietly(writer)


def _close_quietly(writer: PostgresWriter) -> None:
    try:
        writer.close()
    except psycopg.Error:
        log.debug("closing a broken PostgreSQL connection failed", exc_info=True)
