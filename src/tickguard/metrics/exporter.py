"""One Prometheus endpoint per port per process, and the sources it reads at scrape time.

Why read at scrape time instead of incrementing in the hot path: the collector and persist
already keep counters (SessionStats, SinkCounters, PersistCounters) for their reports.
A scrape (every 15 s) turns those into metric families; nothing runs per tick. Sources come
and go with the runs they describe (:func:`serving`); the endpoint stays up for the process.

A port that cannot be bound (another process has it) is logged and skipped: metrics must
never stop collection.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class Source(Protocol):
    """Something that can describe itself as metric families right now."""

    def collect(self) -> Iterable[Metric]: ...


class _Sources(Collector):
    """The registry's one custom collector: every live source, merged by metric name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: list[Source] = []

    def add(self, source: Source) -> None:
        with self._lock:
            self._sources.append(source)

    def remove(self, source: Source) -> None:
        with self._lock:
            if source in self._sources:
                self._sources.remove(source)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            sources = list(self._sources)
        merged: dict[str, Metric] = {}
        for source in sources:
            for family in source.collect():
                into = merged.setdefault(family.name, family)
                if into is not family:
                    into.samples.extend(family.samples)
        return list(merged.values())


@dataclass
class Endpoint:
    host: str
    port: int
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=False)
    )
    sources: _Sources = field(default_factory=_Sources)


_ENDPOINTS: dict[tuple[str, int], Endpoint] = {}
_LOCK = threading.Lock()


def endpoint(host: str, port: int) -> Endpoint | None:
    """The endpoint on ``host:port``, started on first use; None when the port is taken."""
    with _LOCK:
        found = _ENDPOINTS.get((host, port))
        if found is not None:
            return found
        ep = Endpoint(host, port)
        ep.registry.register(ep.sources)
        ProcessCollector(registry=ep.registry)
        try:
            server, _thread = start_http_server(port, addr=host, registry=ep.registry)
        except OSError as exc:
            log.warning("metrics endpoint %s:%d not started: %s", host, port, exc)
            return None
        ep.port = int(server.server_address[1])
        _ENDPOINTS[(host, port)] = ep
        log.info("metrics endpoint on http://%s:%d/metrics", host, ep.port)
        return ep


@contextlib.contextmanager
def serving(host: str, port: int, *sources: Source, enabled: bool = True) -> Iterator[int | None]:
    """Expose ``sources`` on ``host:port`` while inside; yields the bound port (None: off)."""
    ep = endpoint(host, port) if enabled else None
    if ep is None:
        yield None
        return
    for source in sources:
        ep.sources.add(source)
    try:
        yield ep.port
    finally:
        for source in sources:
            ep.sources.remove(source)
