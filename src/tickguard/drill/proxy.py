"""A TCP proxy that can slow a link down: latency and bandwidth, switched on and off live.

The ``slow-sink`` drill puts it between persist and PostgreSQL. It runs on an event loop of
its own in a thread, so the drill's loop (simulator, collector) is not the one shuttling
bytes, and a throttle can be changed from any thread while connections stay open (persist
keeps its connections; a slow window must reach them, not only new ones).

Per direction, a reader stamps each chunk with its arrival time and queues it; a writer
sends it no earlier than ``arrival + latency_s`` and, with a bandwidth cap, paces chunks at
``bytes_per_s``. Latency therefore delays every chunk without serialising the delays (a
long link, not a slow server). The queue is bounded: a full one stops the reader, and TCP
back-pressure reaches the sender, so the proxy holds at most a few chunks per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from types import TracebackType

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
QUEUED_CHUNKS = 8
"""Chunks held per direction of one connection (at most ~512 KiB)."""


@dataclass(frozen=True, slots=True)
class Throttle:
    latency_s: float = 0.0
    """Added one-way delay of every chunk."""
    bytes_per_s: float | None = None
    """Bandwidth cap per direction of each connection; None: unlimited."""


FAST = Throttle()


@dataclass(slots=True)
class ProxyCounters:
    connections: int = 0
    bytes_up: int = 0
    """Client → server."""
    bytes_down: int = 0
    """Server → client."""
    slowed_chunks: int = 0


class SlowProxy:
    """Listen on ``127.0.0.1:<port>`` and forward to ``upstream``; see the module doc."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.throttle = FAST
        """Read by the proxy's loop for every chunk; assign a new one to change it."""
        self.counters = ProxyCounters()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def slow(self, throttle: Throttle) -> None:
        self.throttle = throttle
        log.info(
            "proxy %d → %s:%d slowed: +%.0f ms, %s",
            self.port,
            *self.upstream,
            throttle.latency_s * 1000,
            f"{throttle.bytes_per_s / 1024:.0f} KiB/s" if throttle.bytes_per_s else "no cap",
        )

    def fast(self) -> None:
        self.throttle = FAST
        log.info("proxy %d → %s:%d back to full speed", self.port, *self.upstream)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="slow-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0) or self._error is not None:
            raise RuntimeError(f"proxy did not start: {self._error!r}")

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10.0)

    def __enter__(self) -> SlowProxy:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start() or logged
            self._error = exc
            self._ready.set()
            log.exception("proxy on port %d failed", self.port)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # a task of our own, not the server's callback task: cancelling that one at
            # shutdown makes asyncio log the cancellation as an error
            task = asyncio.create_task(self._connection(reader, writer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- one connection ----------------------------------------------------------------

    async def _connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        self.counters.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError as exc:
            log.warning("proxy: upstream %s:%d refused (%s)", *self.upstream, exc)
            client_w.close()
            return
        try:
            await asyncio.gather(
                self._pipe(client_r, server_w, up=True), self._pipe(server_r, client_w, up=False)
            )
        finally:
            for w in (client_w, server_w):
                w.close()
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await w.wait_closed()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        """Copy one direction until EOF (everything queued is still sent), then half-close."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUED_CHUNKS)
        sender = asyncio.create_task(self._send(queue, writer, up=up))
        try:
            while data := await reader.read(CHUNK):
                await queue.put((time.monotonic(), data))
            await queue.put((0.0, b""))
            await sender
        except OSError:
            pass  # a reset peer: the connection is over
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()

    async def _send(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        """Send queued chunks when due; after a write error, discard until the end marker
        (the reader must never block on a queue nobody empties)."""
        broken = False
        while True:
            arrived, data = await queue.get()
            if not data:
                return
            if broken:
                continue
            try:
                await self._due(arrived, len(data))
                writer.write(data)
                await writer.drain()
            except OSError:
                broken = True
                continue
            if up:
                self.counters.bytes_up += len(data)
            else:
                self.counters.bytes_down += len(data)

    async def _due(self, arrived: float, size: int) -> None:
        """Sleep until a chunk that arrived at ``arrived`` may go on under the throttle."""
        throttle = self.throttle
        if throttle == FAST:
            return
        self.counters.slowed_chunks += 1
        wait = arrived + throttle.latency_s - time.monotonic()
        if throttle.bytes_per_s:
            wait = max(wait, 0.0) + size / throttle.bytes_per_s
        if wait > 0:
            await asyncio.sleep(wait)
