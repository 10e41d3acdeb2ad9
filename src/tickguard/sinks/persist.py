"""persist: the consumer-group reader that moves stream entries into PostgreSQL.

Why this order of operations: an entry is acknowledged (XACK) only after the transaction
holding its rows has committed. A crash before the commit leaves the entry pending and it
is written again; a crash between commit and XACK re-writes rows that are already there,
which the writer's natural keys turn into counted duplicates. Nothing is lost, nothing is
stored twice.

Start-up: create the group (MKSTREAM) if missing, re-process this consumer's own pending
entries (XREADGROUP id ``0``), then claim entries left pending by dead consumers
(XAUTOCLAIM, idle ≥ ``persist_claim_idle_ms``). Loop: XREADGROUP ``>``; every entry of one
read goes into ONE ``write_many`` transaction; commit; XACK. Every ``trim_interval_s``:
claim again, trim below what every group acknowledged, refresh the lag.

Bad input never loops: an entry that cannot be decoded, or whose rows PostgreSQL rejects
as data (the writer's StorageError; found by retrying entries one at a time), goes to the
``quarantine`` table as base64 with the reason, and is acknowledged. Anything else
(PostgreSQL or Redis down, schema missing) is retried with capped backoff while the
entries stay pending in Redis.

Fault injection (tests and drills only): ``TICKGUARD_PERSIST_FAULT=kill-after-commit[:N]``
makes the process SIGKILL itself right after its N-th commit (default 1), before XACK.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from tickguard.errors import DecodeError
from tickguard.gctune import hot_path_gc
from tickguard.metrics.exporter import Source, serving
from tickguard.metrics.ledger import LedgerSource
from tickguard.metrics.persist import PersistSource
from tickguard.models import Batch
from tickguard.settings import MetricsSettings, Settings
from tickguard.sinks import stream_admin
from tickguard.sinks.encoding import decode_batch
from tickguard.sinks.persist_commit import Committer, Prepared
from tickguard.sinks.persist_write import Entry, PersistCounters
from tickguard.sinks.redis_stream import FIELD, stream_key
from tickguard.store.writer import PostgresWriter

log = logging.getLogger(__name__)

FAULT_ENV = "TICKGUARD_PERSIST_FAULT"


def sync_redis(url: str, block_ms: int) -> redis.Redis:
    """A client whose read timeout outlasts a blocking XREADGROUP, with no hidden retries."""
    timeout = block_ms / 1000 + 5.0
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=5.0, retry=Retry(NoBackoff(), 0)
    )


def parse_fault(spec: str | None) -> int | None:
    """``kill-after-commit[:N]`` → N (the commit after which to die); None when unset."""
    if not spec:
        return None
    name, _, count = spec.partition(":")
    if name != "kill-after-commit" or (count and not count.isdigit()):
        raise ValueError(f"{FAULT_ENV} must be kill-after-commit[:N], got {spec!r}")
    return int(count or 1)


class Persist:
    """Stream → PostgreSQL mover for one consumer of one group."""

    def __init__(
        self,
        client: redis.Redis,
        connect: Callable[[], PostgresWriter],
        *,
        stream: str,
        group: str,
        consumer: str,
        read_count: int = 16,
        block_ms: int = 500,
        claim_idle_ms: int = 30_000,
        trim_interval_s: float = 10.0,
        backoff_cap_s: float = 10.0,
        writers: int = 1,
        kill_after_commit: int | None = None,
        metrics: MetricsSettings | None = None,
        ledger_url: str | None = None,
    ) -> None:
        self.client = client
        self.stream, self.group, self.consumer = stream, group, consumer
        self.read_count, self.block_ms = read_count, block_ms
        self.claim_idle_ms, self.trim_interval_s = claim_idle_ms, trim_interval_s
        self.backoff_cap_s = backoff_cap_s
        self.writers = writers
        self.metrics = metrics or MetricsSettings(enabled=False)
        """Where :meth:`run` serves its metrics (off unless given, as from_settings does)."""
        self.ledger_url = ledger_url
        """The database whose gap ledger the metrics endpoint reports (None: not reported)."""
        self.counters = PersistCounters()
        self.stop_event = threading.Event()
        self.committer = Committer(
            client,
            connect,
            stream=stream,
            group=group,
            counters=self.counters,
            stop_event=self.stop_event,
            retry_redis=self._retry_redis,
            backoff_cap_s=backoff_cap_s,
            kill_after_commit=kill_after_commit,
        )
        self._failure: BaseException | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, redis_url: str, database_url: str, consumer: str
    ) -> Persist:
        sink = settings.sink
        return cls(
            sync_redis(redis_url, sink.persist_block_ms),
            lambda: PostgresWriter.connect(database_url),
            stream=stream_key(sink.stream_prefix),
            group=sink.consumer_group,
            consumer=consumer,
            read_count=sink.persist_read_count,
            block_ms=sink.persist_block_ms,
            claim_idle_ms=sink.persist_claim_idle_ms,
            trim_interval_s=sink.trim_interval_s,
            writers=sink.persist_writers,
            kill_after_commit=parse_fault(os.environ.get(FAULT_ENV)),
            metrics=settings.metrics,
            ledger_url=database_url,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> None:
        """Run until :attr:`stop_event` is set (SIGTERM/SIGINT via :func:`stop_on_signals`).

        This thread reads and decodes; up to ``writers`` reads are committed at once on
        helper threads, so decoding (Python) and INSERT (the server) overlap. A read is
        pending for this consumer until its own commit, so crash semantics are unchanged.
        Memory: at most ``writers + 1`` reads are held.
        """
        log.info(
            "persist %s/%s starting on %s (%d writer(s))",
            self.group,
            self.consumer,
            self.stream,
            self.writers,
        )
        sources: list[Source] = [
            PersistSource(self.counters, group=self.group, consumer=self.consumer)
        ]
        if self.ledger_url is not None:
            sources.append(LedgerSource(self.ledger_url))
        with (
            serving(
                self.metrics.host,
                self.metrics.persist_port,
                *sources,
                enabled=self.metrics.enabled,
            ),
            hot_path_gc(),
        ):
            self._run()
        self.close()
        if self._failure is not None:
            raise self._failure
        log.info("persist %s/%s stopped: %s", self.group, self.consumer, self.counters)

    def _run(self) -> None:
        self._retry_redis(self.start)
        next_maintenance = time.monotonic() + self.trim_interval_s
        slots = threading.BoundedSemaphore(self.writers)
        with ThreadPoolExecutor(self.writers, thread_name_prefix="persist-write") as pool:
            while not self.stop_event.is_set():
                prepared = self._fetch()
                if prepared[0]:
                    slots.acquire()
                    pool.submit(self._commit_in_slot, prepared, slots)
                if time.monotonic() >= next_maintenance:
                    self._retry_redis(self.maintain)
                    next_maintenance = time.monotonic() + self.trim_interval_s

    def _commit_in_slot(self, prepared: Prepared, slots: threading.BoundedSemaphore) -> None:
        """Commit on a writer thread; an unexpected error stops persist and is re-raised."""
        try:
            self.committer.commit(prepared)
        except BaseException as exc:
            log.exception("persist writer failed; stopping (entries stay pending)")
            self._failure = exc
            self.stop_event.set()
        finally:
            slots.release()

    def start(self) -> None:
        """Create the group if needed, then finish what this or a dead consumer left."""
        stream_admin.ensure_group(self.client, self.stream, self.group)
        self.drain_own_pending()
        self.claim_abandoned()

    def close(self) -> None:
        self.committer.close()
        self.client.close()

    # -- reading ---------------------------------------------------------------------------

    def step(self) -> int:
        """One XREADGROUP ``>`` (blocking up to block_ms) and its write; entries handled."""
        return self._handle(self._read(">", block=self.block_ms))

    def drain_own_pending(self) -> int:
        """Re-process entries delivered to this consumer but never acknowledged."""
        total = 0
        while not self.stop_event.is_set():
            entries = self._read("0", block=None)
            if not entries or not self._handle(entries):
                break
            total += len(entries)
        if total:
            log.info("re-processed %d pending entries of consumer %s", total, self.consumer)
        return total

    def claim_abandoned(self) -> int:
        """XAUTOCLAIM entries idle ≥ claim_idle_ms (their consumer died) and process them."""
        start: bytes | str = "0-0"
        claimed = 0
        while not self.stop_event.is_set():
            reply = self.client.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                self.claim_idle_ms,
                start_id=start,
                count=self.read_count,
            )
            start, entries = reply[0], reply[1]
            if entries and not self._handle(entries):
                break
            claimed += len(entries)
            if stream_admin.parse_id(start) == (0, 0):
                break
        if claimed:
            self.counters.reclaimed += claimed
            log.info("claimed %d entries abandoned by dead consumers", claimed)
        return claimed

    def maintain(self) -> None:
        """Periodic: claim from dead consumers, trim what all groups acked, refresh lag."""
        self.claim_abandoned()
        self.counters.trimmed += stream_admin.trim_acknowledged(self.client, self.stream)
        for state in stream_admin.groups(self.client, self.stream):
            if state.name == self.group:
                self.counters.pending = state.pending
                self.counters.lag = state.lag if state.lag is not None else state.pending

    def _read(self, start: str, block: int | None) -> list[Entry]:
        reply = self.client.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=self.read_count, block=block
        )
        return _entries(reply)

    # -- writing ---------------------------------------------------------------------------

    def _handle(self, entries: Sequence[Entry]) -> bool:
        """Decode, write in one transaction, then XACK. False when stopped before the commit."""
        return self.committer.commit(self._prepare(entries))

    def _fetch(self) -> Prepared:
        """One XREADGROUP ``>``, decoded; empty when Redis is away and we are stopping."""
        prepared: Prepared = ([], [], [])

        def read() -> None:
            nonlocal prepared
            prepared = self._prepare(self._read(">", block=self.block_ms))

        self._retry_redis(read)
        return prepared

    def _prepare(self, entries: Sequence[Entry]) -> Prepared:
        self.counters.entries_read += len(entries)
        decoded: list[tuple[Entry, Batch]] = []
        bad: list[tuple[Entry, str]] = []
        for entry in entries:
            try:
                decoded.append((entry, _decode(entry)))
            except DecodeError as exc:
                bad.append((entry, str(exc)))
        return list(entries), decoded, bad

    def _retry_redis(self, action: Callable[[], object]) -> None:
        """Run ``action`` at least once; while Redis is away, retry until stopped."""
        delay = 0.1
        while True:
            try:
                action()
                return
            except (RedisError, OSError) as exc:
                if self.stop_event.is_set():
                    return
                self.counters.redis_retries += 1
                log.warning("redis unavailable (%s); retrying in %.1fs", type(exc).__name__, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.backoff_cap_s)


def _entries(reply: Any) -> list[Entry]:
    """The entries of a one-stream XREADGROUP reply (RESP2, the client's protocol)."""
    if not reply:
        return []
    return [(entry_id, fields) for entry_id, fields in reply[0][1]]


def _decode(entry: Entry) -> Batch:
    _, fields = entry
    data = None if fields is None else fields.get(FIELD)
    if data is None:
        raise DecodeError("missing_field", "entry has no 'b' field")
    return decode_batch(data)


def stop_on_signals(persist: Persist) -> None:
    """SIGTERM and SIGINT stop the loop after the current read (clean shutdown)."""

    def _stop(signum: int, _frame: object) -> None:
        log.info("persist: %s received, stopping", signal.Signals(signum).name)
        persist.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


__all__ = ["FAULT_ENV", "Persist", "PersistCounters", "stop_on_signals"]
