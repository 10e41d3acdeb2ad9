"""Drill environments where the servers misbehave: ``redis-outage``, ``postgres-outage``,
``slow-sink`` (issue 9).

A scenario names one with ``environment = "tickguard.drill.environments:<factory>"``. The
runner enters ``factory(admin_url, redis_url, opts)`` around the drill and gets a
:class:`~tickguard.drill.env_api.Disruption`: the servers the drill must use instead of the
configured ones, a ``during()`` coroutine run alongside the session (cancelled at its end
if still running), and ``report()`` keys added to the drill's report.

Every environment runs the drill against a Valkey of its own (:mod:`tickguard.drill.private`):
the shared Redis is never stopped, and a private one holds exactly one stream, so the
:class:`~tickguard.drill.watch.StreamWatch` measures this drill's persist lag and nothing
else. The outages stop a private server for a window of session time (wall seconds =
session minutes × 60 / ``speed``) and start it again on the same port with its data; the
slow sink puts a :class:`~tickguard.drill.proxy.SlowProxy` in front of a private
PostgreSQL and slows it while the simulator's open burst is on (activity ×7 at 09:00,
decaying over ten minutes: ``MarketConfig.open_burst``; the drills start at 09:00).

Knobs (``Scenario.extra``; defaults in brackets): ``outage_at_min`` [mid-session],
``outage_min`` [10]; ``slow_at_min`` [0.5], ``slow_min`` [10], ``slow_latency_ms`` [100],
``slow_kib_per_s`` [256].
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from tickguard.drill.private import private_postgres, private_valkey
from tickguard.drill.proxy import SlowProxy, Throttle
from tickguard.drill.watch import StreamWatch
from tickguard.store.migrate import sqlalchemy_url

if TYPE_CHECKING:
    from tickguard.drill.runner import DrillOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of session time, placed on the wall clock by the drill's speed."""

    at_min: float
    length_min: float
    speed: float

    def bounds(self, session_start_epoch: float) -> tuple[float, float]:
        start = session_start_epoch + self.at_min * 60 / self.speed
        return start, start + self.length_min * 60 / self.speed

    def as_report(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}_at_min": self.at_min, f"{prefix}_min": self.length_min}


def _window(opts: DrillOptions, prefix: str, default_at: float | None) -> Window:
    extra: Mapping[str, Any] = opts.scenario.extra
    length = float(extra.get(f"{prefix}_min", 10.0))
    mid = max(0.0, (opts.minutes - length) / 2)
    at = float(extra.get(f"{prefix}_at_min", mid if default_at is None else default_at))
    return Window(at, length, opts.speed)


async def _sleep_until(epoch: float) -> None:
    await asyncio.sleep(max(0.0, epoch - time.time()))


class _Switch:
    """Stops and starts one server, one call at a time (a cancelled drill may ask for a
    start while the stop still runs on its thread)."""

    def __init__(self, stop: Callable[[], object], start: Callable[[], object]) -> None:
        self._stop, self._start = stop, start
        self._lock = threading.Lock()
        self.down = False

    def stop(self) -> float:
        return self._timed(self._stop, down=True)

    def start(self) -> float:
        return self._timed(self._start, down=False)

    def _timed(self, action: Callable[[], object], *, down: bool) -> float:
        with self._lock:
            begun = time.monotonic()
            action()
            self.down = down
            return time.monotonic() - begun


class ServerOutage:
    """One private server stopped for a window of session time, then started again."""

    def __init__(
        self,
        server: str,
        switch: _Switch,
        window: Window,
        watch: StreamWatch,
        *,
        admin_url: str,
        redis_url: str,
    ) -> None:
        self.server, self.switch, self.window, self.watch = server, switch, window, watch
        self.admin_url, self.redis_url = admin_url, redis_url
        self.down_at: float | None = None
        self.up_at: float | None = None
        self.stop_s = self.start_s = 0.0

    async def during(self, session_start_epoch: float, stop_at_epoch: float) -> None:
        start, end = self.window.bounds(session_start_epoch)
        if end > stop_at_epoch:
            log.warning("%s outage ends after the session: the server returns at its end", self)
        await _sleep_until(start)
        log.info("drill: stopping the private %s for %.1f session minutes", self.server,
                 self.window.length_min)  # fmt: skip
        self.down_at = time.time()
        try:
            self.stop_s = await asyncio.to_thread(self.switch.stop)
            await _sleep_until(end)
        finally:  # also when cancelled: the drill finishes against a running server
            self.start_s = await asyncio.to_thread(self.switch.start)
            self.up_at = time.time()
            self.watch.restored(self.up_at)
            log.info("drill: the private %s is back", self.server)

    def report(self) -> dict[str, Any]:
        outage = None if self.down_at is None or self.up_at is None else self.up_at - self.down_at
        return {
            "outage_server": self.server,
            **self.window.as_report("outage"),
            "outage_s": None if outage is None else round(outage, 3),
            "outage_stop_s": round(self.stop_s, 3),
            "outage_restart_s": round(self.start_s, 3),
            **self.watch.report("persist"),
        }

    def __str__(self) -> str:
        return f"{self.server} ({self.window.at_min}+{self.window.length_min} min)"


class SlowSink:
    """PostgreSQL behind a proxy that turns slow for a window of session time."""

    def __init__(
        self,
        proxy: SlowProxy,
        throttle: Throttle,
        window: Window,
        watch: StreamWatch,
        *,
        admin_url: str,
        redis_url: str,
    ) -> None:
        self.proxy, self.throttle, self.window, self.watch = proxy, throttle, window, watch
        self.admin_url, self.redis_url = admin_url, redis_url
        self.slow_from: float | None = None
        self.slow_until: float | None = None

    async def during(self, session_start_epoch: float, stop_at_epoch: float) -> None:
        start, end = self.window.bounds(session_start_epoch)
        await _sleep_until(start)
        self.proxy.slow(self.throttle)
        self.slow_from = time.time()
        try:
            await _sleep_until(min(end, stop_at_epoch))
        finally:
            self.proxy.fast()
            self.slow_until = time.time()
            self.watch.restored(self.slow_until)

    def report(self) -> dict[str, Any]:
        slow = None
        if self.slow_from is not None and self.slow_until is not None:
            slow = round(self.slow_until - self.slow_from, 3)
        counters = self.proxy.counters
        rate = self.throttle.bytes_per_s
        return {
            **self.window.as_report("slow"),
            "slow_s": slow,
            "slow_latency_ms": round(self.throttle.latency_s * 1000, 1),
            "slow_kib_per_s": None if rate is None else round(rate / 1024, 1),
            "proxy_connections": counters.connections,
            "proxy_slowed_chunks": counters.slowed_chunks,
            "proxy_bytes_to_db": counters.bytes_up,
            **self.watch.report("persist"),
        }


@contextlib.contextmanager
def _watching(redis_url: str) -> Iterator[StreamWatch]:
    watch = StreamWatch(redis_url)
    watch.start()
    try:
        yield watch
    finally:
        watch.stop()


@contextlib.asynccontextmanager
async def redis_outage(
    admin_url: str, redis_url: str, opts: DrillOptions
) -> AsyncIterator[ServerOutage]:
    """The drill's Redis (a private Valkey) is down for ``outage_min`` session minutes."""
    window = _window(opts, "outage", None)
    with private_valkey() as valkey, _watching(valkey.url()) as watch:
        switch = _Switch(valkey.down, valkey.up)
        yield ServerOutage(
            "redis", switch, window, watch, admin_url=admin_url, redis_url=valkey.url()
        )


@contextlib.asynccontextmanager
async def postgres_outage(
    admin_url: str, redis_url: str, opts: DrillOptions
) -> AsyncIterator[ServerOutage]:
    """The drill's PostgreSQL (a private cluster) is down for ``outage_min`` session minutes."""
    window = _window(opts, "outage", None)
    with private_postgres() as pg, private_valkey() as valkey, _watching(valkey.url()) as watch:
        switch = _Switch(pg.down, pg.up)
        yield ServerOutage(
            "postgres", switch, window, watch, admin_url=pg.url(), redis_url=valkey.url()
        )


@contextlib.asynccontextmanager
async def slow_sink(admin_url: str, redis_url: str, opts: DrillOptions) -> AsyncIterator[SlowSink]:
    """The drill's PostgreSQL (a private cluster, behind a proxy) slowed to a crawl while
    the feed bursts at the open."""
    window = _window(opts, "slow", 0.5)
    extra = opts.scenario.extra
    kib = extra.get("slow_kib_per_s", 256)
    throttle = Throttle(
        latency_s=float(extra.get("slow_latency_ms", 100)) / 1000,
        bytes_per_s=None if kib is None else float(kib) * 1024,
    )
    with private_postgres() as pg, private_valkey() as valkey, _watching(valkey.url()) as watch:
        url = make_url(sqlalchemy_url(pg.url()))
        with SlowProxy(url.host or "127.0.0.1", int(url.port or 5432)) as proxy:
            proxied = url.set(host="127.0.0.1", port=proxy.port)
            yield SlowSink(
                proxy, throttle, window, watch,
                admin_url=proxied.render_as_string(hide_password=False), redis_url=valkey.url(),
            )  # fmt: skip
