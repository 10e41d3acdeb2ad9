"""The broker-neutral simulator core: lifecycle, market, truth, connections and their faults.

A broker simulator is a :class:`SimServer` subclass that brings only what is the broker's
own: its wire encoding (a :class:`~tickguard.sim.feed.Wire`), its control protocol (what a
connection says and hears: :meth:`SimServer.serve`, keep-alive included) and its REST routes
(:meth:`SimServer.rest_app`). Everything else is here, once:

* start/stop in order through one exit stack (safe after a partial start), REST + websocket
  servers on loopback ports, the sim clock (or one shared with another simulator: two
  simulators on one clock and one market play the same tape in lockstep — the dual feed);
* the market with the fault schedule's halts, the ground truth (written as it happens,
  flushed every 0.5 s, closed with the counters), halts recorded as faults;
* per connection: the session table entry, the feed's writer, the ``flap`` fault (a TCP
  abort without a close frame, as the incident saw it) and, for all, the ``silent`` fault.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import itertools
import logging
import random
import tempfile
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

from pydantic import SecretStr
from starlette.applications import Starlette
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tickguard.models import KST
from tickguard.sim.clock import SimClock
from tickguard.sim.faults import FaultSchedule, Flap, Silence
from tickguard.sim.feed import Feed, Wire
from tickguard.sim.kis_rest import RestServer
from tickguard.sim.market import GenTrade, Market, MarketConfig, seconds_of
from tickguard.sim.sessions import Conn, FeedConnection, SessionTable, SimCounters
from tickguard.sim.tape import PreEncodedWire
from tickguard.sim.truth import TruthWriter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimConfig:
    """Knobs every simulator has; a broker's config adds its protocol's own."""

    market: MarketConfig
    host: str = "127.0.0.1"
    ws_port: int = 0
    rest_port: int = 0
    speed: float = 1.0
    start_at: dtime | None = dtime(9, 0)
    """Session time the clock starts at; None = the current time of day in Asia/Seoul."""
    faults: FaultSchedule = field(default_factory=FaultSchedule)
    truth_dir: Path | None = None
    """Where the ground truth goes; None = a new temporary directory (kept after the run)."""
    apps: Mapping[str, SecretStr] | None = None
    """Accepted app key → secret; None accepts any non-empty pair."""
    max_registrations: int = 41
    pump_interval_s: float = 0.01
    pregenerate_s: float = 0.0
    """Session seconds of tape generated and encoded before the clock starts (benches:
    :mod:`tickguard.sim.tape`); 0 = all live."""
    max_pending_frames: int = 20_000
    """Frames queued for one connection beyond which it is dropped as a slow consumer."""
    clock: SimClock | None = None
    """A clock shared with another simulator (both then play one tape in lockstep); None =
    a clock of this simulator's own, started at ``start_at`` when it starts."""


C = TypeVar("C", bound=SimConfig)


class SimServer(abc.ABC, Generic[C]):
    """REST + websocket simulator on loopback ports, one event loop, one process.

    ``counters`` are live (``SimCounters``); ``truth_dir`` holds the ground truth, complete
    once the context exits (``flush_truth()`` makes it readable mid-run).
    """

    broker: ClassVar[str]
    ws_path: ClassVar[str]
    connection_class: ClassVar[type[FeedConnection]] = FeedConnection
    """The feed writes bursts through :meth:`FeedConnection.send_texts`; a broker's own class
    (KIS: PONG reporting) extends it."""

    def __init__(self, config: C, wire: Wire, *, frame_cap: int, slot_hold_s: float) -> None:
        self.config = config
        self.counters = SimCounters()
        prefix = f"tickguard-{self.broker}-sim-"
        self.truth_dir = config.truth_dir or Path(tempfile.mkdtemp(prefix=prefix))
        halts = config.market.halts + config.faults.halts()
        self.market = Market(dataclasses.replace(config.market, halts=halts))
        self.sessions = SessionTable(slot_hold_s)
        self.rng = random.Random(config.faults.seed)
        self._wire, self._frame_cap = wire, frame_cap
        self._tasks: list[asyncio.Task[None]] = []
        self._conn_tasks: dict[int, list[asyncio.Task[None]]] = {}
        self._ws_server: Server | None = None
        self._exit = contextlib.AsyncExitStack()
        """What started, to be stopped in reverse order (also after a partial start)."""
        self.ws_url = self.rest_url = ""

    # -- what a broker brings ------------------------------------------------------------

    @abc.abstractmethod
    def rest_app(self) -> Starlette:
        """The broker's REST routes."""

    @abc.abstractmethod
    async def serve(self, conn: Conn) -> None:
        """Speak the broker's control protocol on ``conn`` until the client is done."""

    def on_started(self) -> None:
        """Truth, clock and feed exist: build what the control protocol needs."""

    def on_closed(self, conn: Conn) -> None:
        """``conn`` is gone: forget the broker's own state of it."""

    def summary_extra(self) -> dict[str, Any]:
        return {}

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()  # whatever did start (a REST server, a port) is released
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        await self.stop()

    def _start_t(self) -> float:
        cfg = self.config
        if cfg.clock is not None:
            return cfg.clock.start_t
        return seconds_of(cfg.start_at or datetime.now(KST).time())

    async def start(self) -> None:
        cfg = self.config
        start_t = self._start_t()
        self.truth = TruthWriter(self.truth_dir, self._meta(start_t))
        self._exit.callback(self._close_truth)
        # Prime the merged tape before the clock runs: building it can take a moment and
        # should not count as lag.
        events = self.market.events(start_t)
        if cfg.pregenerate_s > 0:
            pre = PreEncodedWire(self._wire)
            events, self._wire = pre.prepare(events, start_t + cfg.pregenerate_s), pre
        first = next(events, None)
        rest = RestServer(self.rest_app(), cfg.host, cfg.rest_port)
        self._exit.push_async_callback(rest.stop)
        await rest.start()
        self._ws_server = await serve(self._handle, cfg.host, cfg.ws_port, ping_interval=None,
                                      compression=None, max_size=1 << 20,
                                      create_connection=self.connection_class)  # fmt: skip
        self._exit.push_async_callback(self._close_ws)
        ws_port = self._ws_server.sockets[0].getsockname()[1] if self._ws_server.sockets else 0
        self.rest_url = f"http://{cfg.host}:{rest.port}"
        self.ws_url = f"ws://{cfg.host}:{ws_port}{self.ws_path}"
        self.clock = cfg.clock or SimClock(start_t, cfg.speed)
        self.feed = Feed(wire=self._wire, sessions=self.sessions, truth=self.truth,
                         clock=self.clock, counters=self.counters, faults=cfg.faults,
                         max_records=self._frame_cap, interval_s=cfg.pump_interval_s,
                         max_pending=cfg.max_pending_frames)  # fmt: skip
        self._exit.callback(self.feed.close)
        self.on_started()
        self._exit.push_async_callback(self._cancel_tasks)
        self._record_halts()
        self._spawn(self.feed.pump(itertools.chain([] if first is None else [first], events)))
        self._spawn(self._flush_truth())
        for spec in cfg.faults.silences():
            self._spawn(self._silence(spec))
        logger.info("%s simulator up: REST %s, WS %s, truth %s",
                    self.broker, self.rest_url, self.ws_url, self.truth_dir)  # fmt: skip

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.create_task(coro))

    def spawn_for(self, conn: Conn, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` for as long as ``conn`` lives (cancelled when it closes)."""
        self._conn_tasks.setdefault(conn.id, []).append(asyncio.create_task(coro))

    async def stop(self) -> None:
        """Stop whatever started, in reverse order; safe after a partial start."""
        await self._exit.aclose()

    async def _cancel_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _close_ws(self) -> None:
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()

    def _close_truth(self) -> None:
        self.truth.close(self.summary())
        logger.info("%s simulator stopped: %d frames sent", self.broker, self.counters.frames_sent)

    def summary(self) -> dict[str, Any]:
        return {**self.counters.as_dict(), **self.summary_extra()}

    def _meta(self, start_t: float) -> dict[str, Any]:
        m = self.market.config
        return {"broker": self.broker, "day": m.day.isoformat(), "seed": m.seed,
                "speed": self.config.speed, "start_t": start_t,
                "symbols": [p.symbol for p in m.symbols],
                "faults": [repr(f) for f in self.config.faults.faults]}  # fmt: skip

    def _record_halts(self) -> None:
        for h in self.market.config.halts:
            s, e = seconds_of(h.start), seconds_of(h.end)
            self.truth.fault("halt", None, self.clock.epoch_at(s), self.clock.epoch_at(e),
                             symbol=h.symbol, sim_start=s, sim_end=e)  # fmt: skip

    async def _flush_truth(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.truth.flush()

    def flush_truth(self) -> None:
        """Make everything so far readable by a :class:`~tickguard.sim.truth.TruthReader`."""
        self.truth.flush()

    def trades_so_far(self, symbol: str) -> list[GenTrade] | None:
        """A symbol's trades up to now (regenerated from its own seed, like a broker's DB);
        None for a code the market does not know. REST history routes serve from this."""
        if symbol not in self.market.symbols:
            return None
        now_t = self.clock.session_t()
        tape = itertools.takewhile(lambda e: e.t <= now_t, self.market.symbol_tape(symbol))
        return [e for e in tape if isinstance(e, GenTrade)]

    # -- connections ---------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert isinstance(ws, FeedConnection)  # serve() builds ``connection_class``
        conn = self.sessions.open(ws)
        self.counters.connections += 1
        path = ws.request.path if ws.request is not None else ""
        self.truth.session_event(conn.id, "open", path=path)
        self.spawn_for(conn, self.feed.writer(conn))
        flap = self.config.faults.flap()
        if flap is not None and (flap.times is None or conn.id <= flap.times):
            self.spawn_for(conn, self._flap(conn, flap))
        reason = "closed by client"
        try:
            await self.serve(conn)
        except ConnectionClosed as exc:
            reason = str(exc)
        finally:
            for task in self._conn_tasks.pop(conn.id, []):
                task.cancel()
            self.on_closed(conn)
            self.sessions.release(conn)
            self.truth.session_event(conn.id, "closed", reason=conn.close_reason or reason)

    async def _flap(self, conn: Conn, flap: Flap) -> None:
        """Drop the connection the way the incident saw it: no close frame, just EOF."""
        await asyncio.sleep(self.rng.uniform(flap.min_s, flap.max_s))
        conn.dying = True
        start, transport = time.time(), conn.ws.transport
        for _ in range(500):  # frames handed to the transport reach the peer (bounded: 1 s)
            if transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.002)
        conn.close_reason = "flap: transport aborted without close frame"
        transport.abort()
        self.counters.drops += 1
        self.truth.fault("flap", conn.id, start, time.time(),
                         app_key_bound=conn.app_key is not None)  # fmt: skip

    async def _silence(self, spec: Silence) -> None:
        """The connections open when a silence starts go stale for its duration: socket open,
        keep-alive still flowing, no data. A connection opened meanwhile (a client that
        noticed and reconnected) gets data at once, as after a real stale socket."""
        await asyncio.sleep(spec.after_s)
        while True:
            start, stale = time.time(), list(self.sessions.conns.values())
            for conn in stale:
                conn.silenced = True
            # Recorded as it starts (its planned end): a drill judged while a silence is
            # still on must see it, or the gap it caused looks like a false alarm.
            self.counters.silences += 1
            self.truth.fault("silent", None, start, start + spec.duration_s,
                             sessions=[c.id for c in stale])  # fmt: skip
            await asyncio.sleep(spec.duration_s)
            for conn in stale:
                conn.silenced = False
            if spec.every_s is None:
                return
            await asyncio.sleep(spec.every_s - spec.duration_s)
