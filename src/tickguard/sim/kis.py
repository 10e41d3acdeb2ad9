"""A protocol-faithful KIS Open API simulator on loopback (protocol reference §1.11).

    async with KisSimulator(KisSimConfig(market=...)) as sim:
        sim.rest_url, sim.ws_url, sim.truth_dir, sim.counters

REST: ``/oauth2/tokenP`` and ``/oauth2/Approval`` (:mod:`tickguard.sim.kis_rest`). Websocket
(any path, ``/tryitout`` included): one session per app key (``OPSP8996``), subscribe and
unsubscribe with ``tr_type`` "1"/"2" and KIS-shaped acks with iv/key, ``OPSP0002``/``0003``/
``0008``, application-level ``PINGPONG`` every ``pingpong_interval_s`` (RFC pings are off:
KIS does not send them) with the session closed when no echo arrives in time — a text echo
counts, and so does a PONG control frame carrying it. Data frames come from
:mod:`tickguard.sim.kis_feed`; faults from the :class:`FaultSchedule`; everything generated,
sent and injected lands in the ground truth (:mod:`tickguard.sim.truth`). Requests and acks
are handled by :mod:`tickguard.sim.kis_control`.

KIS's PINGPONG interval (≈110 s per a third party), its close behaviour and the slot hold
time are UNCONFIRMED; they are settings here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import random
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time as dtime
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import SecretStr
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tickguard.models import KST
from tickguard.sim.clock import SimClock
from tickguard.sim.faults import FaultSchedule, Flap, Silence
from tickguard.sim.kis_control import KisControl, is_pingpong
from tickguard.sim.kis_feed import Feed
from tickguard.sim.kis_rest import KisAuthority, RestServer, TokenRules, rest_app
from tickguard.sim.kis_session import Conn, SessionTable, SimCounters
from tickguard.sim.kis_wire import pingpong
from tickguard.sim.market import Market, MarketConfig, seconds_of
from tickguard.sim.truth import TruthWriter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KisSimConfig:
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
    slot_hold_s: float = 1.0
    pingpong_interval_s: float = 10.0
    pingpong_timeout_s: float = 10.0
    token_rules: TokenRules = field(default_factory=TokenRules)
    max_records_per_frame: int = 30
    pump_interval_s: float = 0.01
    max_pending_frames: int = 20_000
    """Frames queued for one connection beyond which it is dropped as a slow consumer."""


class _KisConnection(ServerConnection):
    """Reports PONG control frames: KIS's official sample answers PINGPONG with ``ws.pong``."""

    on_pong: Any = None

    def acknowledge_pings(self, data: bytes) -> None:
        if self.on_pong is not None:
            self.on_pong(data)
        super().acknowledge_pings(data)


class KisSimulator:
    """REST + websocket KIS on loopback ephemeral ports, one event loop, one process.

    ``counters`` are live (``SimCounters``); ``truth_dir`` holds the ground truth, complete
    once the context exits (``flush_truth()`` makes it readable mid-run).
    """

    def __init__(self, config: KisSimConfig) -> None:
        self.config = config
        self.counters = SimCounters()
        self.truth_dir = config.truth_dir or Path(tempfile.mkdtemp(prefix="tickguard-sim-"))
        halts = config.market.halts + config.faults.halts()
        self.market = Market(dataclasses.replace(config.market, halts=halts))
        self.sessions = SessionTable(config.slot_hold_s)
        self.authority = KisAuthority(config.apps, config.token_rules)
        self._rng = random.Random(config.faults.seed)
        self._tasks: list[asyncio.Task[None]] = []
        self._ws_server: Server | None = None
        self._exit = contextlib.AsyncExitStack()
        """What started, to be stopped in reverse order (also after a partial start)."""
        self.ws_url = self.rest_url = ""

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> KisSimulator:
        try:
            await self.start()
        except BaseException:
            await self.stop()  # whatever did start (a REST server, a port) is released
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _start_t(self) -> float:
        if self.config.start_at is not None:
            return seconds_of(self.config.start_at)
        from datetime import datetime

        return seconds_of(datetime.now(KST).time())

    async def start(self) -> None:
        cfg = self.config
        start_t = self._start_t()
        self.truth = TruthWriter(self.truth_dir, self._meta(start_t))
        self._exit.callback(self._close_truth)
        # Prime the merged tape before the clock runs: building it can take a moment and
        # should not count as lag.
        events = self.market.events(start_t)
        first = next(events, None)
        rest = RestServer(rest_app(self.authority), cfg.host, cfg.rest_port)
        self._exit.push_async_callback(rest.stop)
        await rest.start()
        self._ws_server = await serve(
            self._handle,
            cfg.host,
            cfg.ws_port,
            ping_interval=None,
            compression=None,
            max_size=1 << 20,
            create_connection=_KisConnection,
        )
        self._exit.push_async_callback(self._close_ws)
        ws_port = self._ws_server.sockets[0].getsockname()[1] if self._ws_server.sockets else 0
        self.rest_url = f"http://{cfg.host}:{rest.port}"
        self.ws_url = f"ws://{cfg.host}:{ws_port}/tryitout"
        self.clock = SimClock(start_t, cfg.speed)
        self.feed = Feed(
            sessions=self.sessions,
            truth=self.truth,
            clock=self.clock,
            counters=self.counters,
            faults=cfg.faults,
            max_records=cfg.max_records_per_frame,
            interval_s=cfg.pump_interval_s,
            max_pending=cfg.max_pending_frames,
        )
        self._exit.callback(self.feed.close)
        self.control = KisControl(
            authority=self.authority,
            sessions=self.sessions,
            counters=self.counters,
            truth=self.truth,
            max_registrations=cfg.max_registrations,
            rng=self._rng,
        )
        self._exit.push_async_callback(self._cancel_tasks)
        self._record_halts()
        self._spawn(self.feed.pump(itertools.chain([] if first is None else [first], events)))
        self._spawn(self._flush_truth())
        for spec in cfg.faults.silences():
            self._spawn(self._silence(spec))
        logger.info(
            "KIS simulator up: REST %s, WS %s, truth %s", self.rest_url, self.ws_url, self.truth_dir
        )

    def _spawn(self, coro: Any) -> None:
        self._tasks.append(asyncio.create_task(coro))

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
        logger.info("KIS simulator stopped: %d frames sent", self.counters.frames_sent)

    def summary(self) -> dict[str, Any]:
        return {
            **self.counters.as_dict(),
            "tokens_issued": self.authority.tokens_issued,
            "token_refusals": self.authority.token_refusals,
            "approvals_issued": self.authority.approvals_issued,
        }

    def _meta(self, start_t: float) -> dict[str, Any]:
        m = self.market.config
        return {
            "broker": "kis",
            "day": m.day.isoformat(),
            "seed": m.seed,
            "speed": self.config.speed,
            "start_t": start_t,
            "symbols": [p.symbol for p in m.symbols],
            "faults": [repr(f) for f in self.config.faults.faults],
        }

    def _record_halts(self) -> None:
        for h in self.market.config.halts:
            s, e = seconds_of(h.start), seconds_of(h.end)
            self.truth.fault(
                "halt",
                None,
                self.clock.epoch_at(s),
                self.clock.epoch_at(e),
                symbol=h.symbol,
                sim_start=s,
                sim_end=e,
            )

    async def _flush_truth(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.truth.flush()

    def flush_truth(self) -> None:
        """Make everything so far readable by a :class:`~tickguard.sim.truth.TruthReader`."""
        self.truth.flush()

    # -- connections ---------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        conn = self.sessions.open(ws)
        self.counters.connections += 1
        path = ws.request.path if ws.request is not None else ""
        self.truth.session_event(conn.id, "open", path=path)
        if isinstance(ws, _KisConnection):
            ws.on_pong = lambda data: conn.pong.set() if is_pingpong(data) else None
        helpers = [
            asyncio.create_task(self._pingpong(conn)),
            asyncio.create_task(self.feed.writer(conn)),
        ]
        flap = self.config.faults.flap()
        if flap is not None:
            helpers.append(asyncio.create_task(self._flap(conn, flap)))
        reason = "closed by client"
        try:
            async for message in ws:
                if isinstance(message, str):
                    await self.control.on_text(conn, message)
        except ConnectionClosed as exc:
            reason = str(exc)
        finally:
            for task in helpers:
                task.cancel()
            self.sessions.release(conn)
            self.truth.session_event(conn.id, "closed", reason=conn.close_reason or reason)

    # -- keep-alive and connection faults -------------------------------------------------

    async def _pingpong(self, conn: Conn) -> None:
        cfg = self.config
        while True:
            await asyncio.sleep(cfg.pingpong_interval_s)
            conn.pong.clear()
            stamp = self.clock.session_datetime(self.market.config.day).strftime("%Y%m%d%H%M%S")
            await conn.ws.send(pingpong(stamp))
            self.counters.pingpongs_sent += 1
            try:
                await asyncio.wait_for(conn.pong.wait(), cfg.pingpong_timeout_s)
            except TimeoutError:
                self.counters.pingpong_timeouts += 1
                conn.close_reason = "PINGPONG not answered"
                await conn.ws.close()
                return

    async def _flap(self, conn: Conn, flap: Flap) -> None:
        """Drop the connection the way the incident saw it: no close frame, just EOF."""
        await asyncio.sleep(self._rng.uniform(flap.min_s, flap.max_s))
        conn.dying = True
        start = time.time()
        transport = conn.ws.transport
        # Frames already handed to the transport reach the peer, so "sent" in the truth holds
        # (bounded: at most 1 s for a peer that does not read).
        for _ in range(500):
            if transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.002)
        conn.close_reason = "flap: transport aborted without close frame"
        transport.abort()
        self.counters.drops += 1
        self.truth.fault(
            "flap", conn.id, start, time.time(), app_key_bound=conn.app_key is not None
        )

    async def _silence(self, spec: Silence) -> None:
        """The connections open when a silence starts go stale for its duration: socket open,
        PINGPONG still flowing, no data. A connection opened meanwhile (a client that noticed
        and reconnected) gets data at once, as after a real stale socket."""
        await asyncio.sleep(spec.after_s)
        while True:
            start, stale = time.time(), list(self.sessions.conns.values())
            for conn in stale:
                conn.silenced = True
            await asyncio.sleep(spec.duration_s)
            for conn in stale:
                conn.silenced = False
            self.counters.silences += 1
            ids = [c.id for c in stale]
            self.truth.fault("silent", None, start, time.time(), sessions=ids)
            if spec.every_s is None:
                return
            await asyncio.sleep(spec.every_s - spec.duration_s)
