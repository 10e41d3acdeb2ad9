"""What a disrupted drill looks like from the side: persist lag, the spool, trimmed entries.

A :class:`StreamWatch` samples, on a thread of its own, the one events stream in a Redis
that belongs to the drill alone (the environments give every drill a private Valkey, so
there is no guessing which stream is the drill's):

* **persist lag**: the age of the oldest entry persist has not acknowledged (its oldest
  pending entry, else the first entry not yet delivered to the group), and how many
  entries that is (pending + undelivered);
* **unpersisted entries trimmed**: an entry still pending whose id no longer exists in the
  stream (a trim below what persist still needs would lose it) — must stay 0;
* **spool bytes**: the collector's disk spool, found as the spool directory whose ``lock``
  this process holds open (:mod:`tickguard.stream.spool`), summed over its segments.

:meth:`StreamWatch.restored` marks the moment a disruption ended; ``catch_up_s`` is the
time from there to the first sample with the spool empty and the lag under
``CAUGHT_UP_S``, so a session that keeps trading still counts as caught up.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from tickguard.sinks import stream_admin

log = logging.getLogger(__name__)

CAUGHT_UP_S = 1.0
"""Oldest unacknowledged entry younger than this: persist keeps up again."""


class StreamWatch:
    """Samples the drill's stream and spool every ``interval_s`` until stopped."""

    def __init__(self, redis_url: str, *, interval_s: float = 0.25) -> None:
        self.client = redis.Redis.from_url(
            redis_url, socket_timeout=1.0, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        self.interval_s = interval_s
        self.lag_peak_s = 0.0
        self.lag_peak_entries = 0
        self.spool_peak_bytes = 0
        self.trimmed_unpersisted = 0
        self.unreachable_samples = 0
        self.restored_at: float | None = None
        self.caught_up_at: float | None = None
        self.spool_drained_at: float | None = None
        self._stream: str | None = None
        self._seen_trimmed: set[bytes | str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10.0)
        self.client.close()

    def restored(self, at: float) -> None:
        """The disruption ended at ``at`` (epoch s): catch-up is timed from here."""
        self.restored_at = at
        self.caught_up_at = self.spool_drained_at = None

    def report(self, prefix: str) -> dict[str, Any]:
        """Figures as report keys (seconds rounded to ms; None when it never happened)."""

        def since(at: float | None) -> float | None:
            if at is None or self.restored_at is None:
                return None
            return round(at - self.restored_at, 3)

        return {
            f"{prefix}_lag_peak_s": round(self.lag_peak_s, 3),
            f"{prefix}_lag_peak_entries": self.lag_peak_entries,
            f"{prefix}_catch_up_s": since(self.caught_up_at),
            "spool_peak_bytes": self.spool_peak_bytes,
            "spool_drain_s": since(self.spool_drained_at),
            "unpersisted_trimmed": self.trimmed_unpersisted,
        }

    # -- sampling ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            spool = spool_bytes()
            self.spool_peak_bytes = max(self.spool_peak_bytes, spool)
            try:
                age, entries = self._lag()
            except RedisError:
                self.unreachable_samples += 1
                continue
            except Exception:  # a sampler must not end the drill; say why it is blind
                log.exception("drill watch: sampling failed")
                continue
            self.lag_peak_s = max(self.lag_peak_s, age)
            self.lag_peak_entries = max(self.lag_peak_entries, entries)
            self._mark_caught_up(age, spool)

    def _mark_caught_up(self, age: float, spool: int) -> None:
        if self.restored_at is None:
            return
        now = time.time()
        if spool == 0 and self.spool_drained_at is None:
            self.spool_drained_at = now
        if spool == 0 and age <= CAUGHT_UP_S and self.caught_up_at is None:
            self.caught_up_at = now

    def _find_stream(self) -> str | None:
        if self._stream is None:
            for key in self.client.scan_iter(match="*:events", count=100, _type="stream"):
                self._stream = key.decode() if isinstance(key, bytes) else str(key)
                break
        return self._stream

    def _lag(self) -> tuple[float, int]:
        """(age in s of the oldest unacknowledged entry, entries not yet acknowledged)."""
        stream = self._find_stream()
        if stream is None:
            return 0.0, 0
        states = stream_admin.groups(self.client, stream)
        if not states:
            return 0.0, 0
        state = states[0]
        entries = state.pending + (state.lag or 0)
        oldest: bytes | str | None = None
        if state.pending:
            oldest = self.client.xpending(stream, state.name)["min"]
            if oldest is not None:
                self._check_present(stream, state.name, oldest)
        elif state.lag:
            after = "(" + stream_admin.format_id(state.last_delivered)
            first = self.client.xrange(stream, min=after, count=1)
            oldest = first[0][0] if first else None
        if oldest is None:
            return 0.0, entries
        ms, _ = stream_admin.parse_id(oldest)
        return max(0.0, time.time() - ms / 1000), entries

    def _check_present(self, stream: str, group: str, entry_id: bytes | str) -> None:
        """A pending entry must still be in the stream (checked again if it just went:
        acknowledged and trimmed between the two calls is no loss)."""
        if entry_id in self._seen_trimmed:
            return
        if self.client.xrange(stream, min=entry_id, max=entry_id, count=1):
            return
        still = self.client.xpending_range(stream, group, min=entry_id, max=entry_id, count=1)
        if still:
            self._seen_trimmed.add(entry_id)
            self.trimmed_unpersisted += 1
            log.error("drill watch: pending entry %r is gone from %s (trimmed)", entry_id, stream)


def spool_bytes() -> int:
    """Bytes in the segments of every spool directory this process holds open."""
    try:
        files = psutil.Process().open_files()
    except psutil.Error:
        return 0
    total = 0
    for opened in files:
        path = Path(opened.path)
        if path.name == "lock" and path.parent.parent.name == "spool":
            for segment in path.parent.glob("*.seg"):
                try:
                    total += segment.stat().st_size
                except OSError:
                    continue  # acknowledged and deleted between glob and stat
    return total
