"""A protocol-faithful Kiwoom REST/WebSocket simulator on loopback (protocol reference §2.9).

    async with KiwoomSimulator(KiwoomSimConfig(market=...)) as sim:
        sim.rest_url, sim.ws_url, sim.truth_dir, sim.counters

REST (:mod:`tickguard.sim.kiwoom_rest`): ``POST /oauth2/token`` and ``POST /api/dostk/chart``
(ka10079/ka10080, paging, 1700). Websocket ``/api/dostk/websocket``: the first message must
be ``LOGIN`` with a token this simulator issued (else ``SYSTEM R10004`` and close); a LOGIN
with the app key of a live session kicks that session (``SYSTEM R10001``); ``PING`` every
``ping_interval_s`` and, after ``missed_pings`` unanswered in a row, ``SYSTEM R10002`` and
close; ``REG``/``REMOVE`` with ``grp_no``/``refresh`` answered by symbol-less acks; REAL
``0B``/``0D`` from :mod:`tickguard.sim.kiwoom_feed`. The market, fault menu and ground truth
are the broker-neutral ones the KIS simulator uses.

Kiwoom's PING interval, its registration cap and the LOGIN deadline are UNCONFIRMED
(reference §4.7); they are settings here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import random
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
from tickguard.sim.kis_rest import RestServer
from tickguard.sim.kis_session import Conn, SessionTable, SimCounters
from tickguard.sim.kiwoom_feed import KiwoomFeed
from tickguard.sim.kiwoom_frames import dumps
from tickguard.sim.kiwoom_registrations import Registrations
from tickguard.sim.kiwoom_rest import (
    ChartService,
    KiwoomAuthority,
    KiwoomRestRules,
    RateLimiter,
    rest_app,
)
from tickguard.sim.market import GenTrade, Market, MarketConfig, seconds_of
from tickguard.sim.truth import TruthWriter

logger = logging.getLogger(__name__)

WS_PATH = "/api/dostk/websocket"
PING = dumps({"trnm": "PING"})
SYSTEM_TEXT = {
    "R10001": "동일한 App key로 접속이 되었습니다. 기존 세션은 종료가 됩니다",
    "R10002": "사용자 프로그램으로부터 Heartbeat(연결유지) 메시지가 오지않아서 접속을 종료합니다",
    "R10004": "접속허용요청이 들어오지 않았습니다",
}


@dataclass(frozen=True)
class KiwoomSimConfig:
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
    """Accepted app key → secret key; None accepts any non-empty pair."""
    max_registrations: int = 100
    ping_interval_s: float = 10.0
    missed_pings: int = 5
    login_timeout_s: float = 10.0
    rest: KiwoomRestRules = field(default_factory=KiwoomRestRules)
    max_entries_per_message: int = 30
    pump_interval_s: float = 0.01


@dataclass(slots=True)
class _Login:
    """Per-connection Kiwoom state beside the shared :class:`Conn`."""

    regs: Registrations
    unanswered: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class KiwoomSimulator:
    def __init__(self, config: KiwoomSimConfig) -> None:
        self.config = config
        self.counters = SimCounters()
        self.truth_dir = config.truth_dir or Path(tempfile.mkdtemp(prefix="tickguard-kwsim-"))
        halts = config.market.halts + config.faults.halts()
        self.market = Market(dataclasses.replace(config.market, halts=halts))
        self.sessions = SessionTable(slot_hold_s=0.0)  # Kiwoom kicks the old session instead
        self.authority = KiwoomAuthority(config.apps, config.rest.token_ttl_s)
        self.limiter = RateLimiter(config.rest.max_requests, config.rest.window_s)
        self.charts = ChartService(self._history, config.rest)
        self._rng = random.Random(config.faults.seed)
        self._state: dict[int, _Login] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._ws_server: Server | None = None
        self.ws_url = self.rest_url = ""

    async def __aenter__(self) -> KiwoomSimulator:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        await self.stop()

    def _history(self, symbol: str) -> list[GenTrade] | None:
        """A symbol's trades up to now (regenerated from its own seed, like a broker's DB)."""
        if symbol not in self.market.symbols:
            return None
        now_t = self.clock.session_t()
        tape = itertools.takewhile(lambda e: e.t <= now_t, self.market.symbol_tape(symbol))
        return [e for e in tape if isinstance(e, GenTrade)]

    async def start(self) -> None:
        cfg = self.config
        start_t = seconds_of(cfg.start_at or datetime.now(KST).time())
        self.clock = SimClock(start_t, cfg.speed)
        self.truth = TruthWriter(self.truth_dir, self._meta())
        self.feed = KiwoomFeed(sessions=self.sessions, truth=self.truth, clock=self.clock,
                               counters=self.counters, faults=cfg.faults,
                               max_entries=cfg.max_entries_per_message,
                               interval_s=cfg.pump_interval_s)  # fmt: skip
        self._rest = RestServer(rest_app(self.authority, self.charts, self.limiter),
                                cfg.host, cfg.rest_port)  # fmt: skip
        await self._rest.start()
        self._ws_server = await serve(self._handle, cfg.host, cfg.ws_port, ping_interval=None,
                                      compression=None, max_size=1 << 20)  # fmt: skip
        ws_port = self._ws_server.sockets[0].getsockname()[1] if self._ws_server.sockets else 0
        self.rest_url = f"http://{cfg.host}:{self._rest.port}"
        self.ws_url = f"ws://{cfg.host}:{ws_port}{WS_PATH}"
        self._record_halts()
        self._spawn(self.feed.pump(self.market.events(self.clock.start_t)))
        self._spawn(self._flush_truth())
        for spec in cfg.faults.silences():
            self._spawn(self._silence(spec))
        logger.info("Kiwoom simulator up: REST %s, WS %s, truth %s",
                    self.rest_url, self.ws_url, self.truth_dir)  # fmt: skip

    def _spawn(self, coro: Any) -> None:
        self._tasks.append(asyncio.create_task(coro))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
        await self._rest.stop()
        self.feed.close()
        self.truth.close(self.summary())
        logger.info("Kiwoom simulator stopped: %d frames sent", self.counters.frames_sent)

    def summary(self) -> dict[str, Any]:
        return {
            **self.counters.as_dict(),
            "tokens_issued": self.authority.tokens_issued,
            "chart_requests": self.charts.requests,
            "chart_pages": self.charts.pages,
            "rate_limited": self.limiter.refused,
        }

    def _meta(self) -> dict[str, Any]:
        m = self.market.config
        return {"broker": "kiwoom", "day": m.day.isoformat(), "seed": m.seed,
                "speed": self.config.speed, "start_t": self.clock.start_t,
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

    # -- connections ---------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        conn = self.sessions.open(ws)
        self.counters.connections += 1
        state = self._state[conn.id] = _Login(Registrations(self.config.max_registrations))
        path = ws.request.path if ws.request is not None else ""
        self.truth.session_event(conn.id, "open", path=path)
        flap = self.config.faults.flap()
        if flap is not None:
            state.tasks.append(asyncio.create_task(self._flap(conn, flap)))
        reason = "closed by client"
        try:
            if await self._await_login(conn):
                async for message in ws:
                    await self._on_message(conn, state, message)
        except ConnectionClosed as exc:
            reason = str(exc)
        finally:
            for task in state.tasks:
                task.cancel()
            self.sessions.release(conn)
            self._state.pop(conn.id, None)
            self.truth.session_event(conn.id, "closed", reason=conn.close_reason or reason)

    async def _await_login(self, conn: Conn) -> bool:
        """LOGIN must come first and in time; anything else earns R10004 and a close."""
        try:
            first = await asyncio.wait_for(conn.ws.recv(), self.config.login_timeout_s)
        except TimeoutError:
            first = ""
        msg = _parse(first)
        if msg.get("trnm") != "LOGIN":
            await self._close_with(conn, "R10004")
            return False
        app_key = self.authority.app_key_for(str(msg.get("token", "")))
        if app_key is None:
            conn.close_reason = "LOGIN refused: 8005"
            await conn.ws.send(dumps({"trnm": "LOGIN", "return_code": 8005,
                                      "return_msg": "Token이 유효하지 않습니다"}))  # fmt: skip
            await conn.ws.close()
            return False
        await self._kick_holders(app_key, conn)
        self.sessions.claim(conn, app_key)
        self.counters.sessions_bound += 1
        self.truth.session_event(conn.id, "bound")
        await conn.ws.send(dumps({"trnm": "LOGIN", "return_code": 0, "return_msg": "",
                                  "sor_yn": "Y"}))  # fmt: skip
        self._state[conn.id].tasks.append(asyncio.create_task(self._ping(conn)))
        return True

    async def _kick_holders(self, app_key: str, newcomer: Conn) -> None:
        """A second LOGIN with the same app key ends the first session (R10001)."""
        for old in [c for c in self.sessions.conns.values() if c.app_key == app_key]:
            if old is newcomer:
                continue
            self.counters.session_conflicts += 1
            old.dying = True
            self.sessions.release(old)  # now, so the newcomer can claim the key at once
            with contextlib.suppress(ConnectionClosed):
                await self._close_with(old, "R10001")

    async def _close_with(self, conn: Conn, code: str) -> None:
        conn.close_reason = f"SYSTEM {code}"
        await conn.ws.send(dumps({"trnm": "SYSTEM", "code": code, "message": SYSTEM_TEXT[code]}))
        await conn.ws.close()

    async def _on_message(self, conn: Conn, state: _Login, message: str | bytes) -> None:
        msg = _parse(message)
        trnm = msg.get("trnm")
        if trnm == "PING":
            state.unanswered = 0
            self.counters.pongs_received += 1
        elif trnm in ("REG", "REMOVE"):
            await self._registration(conn, state, msg)
        else:
            self.counters.subscribe_errors += 1  # unknown or malformed: Kiwoom stays silent

    async def _registration(self, conn: Conn, state: _Login, msg: dict[str, Any]) -> None:
        trnm = str(msg["trnm"])
        change = state.regs.apply(msg)
        if not change.ok:
            self.counters.subscribe_errors += 1
        for key in change.removed:  # before the ack: no data follows a REMOVE's ack
            self.sessions.remove(conn, key)
        await conn.ws.send(dumps({"trnm": trnm, "return_code": 0 if change.ok else 1,
                                  "return_msg": change.message}))  # fmt: skip
        for key in change.added:  # after the ack: no data precedes a REG's ack
            self.sessions.add(conn, key)
        self.counters.subscribed += len(change.added)
        self.counters.unsubscribed += len(change.removed)

    # -- keep-alive and connection faults -------------------------------------------------

    async def _ping(self, conn: Conn) -> None:
        cfg, state = self.config, self._state[conn.id]
        while True:
            await asyncio.sleep(cfg.ping_interval_s)
            if state.unanswered >= cfg.missed_pings:
                self.counters.pingpong_timeouts += 1
                await self._close_with(conn, "R10002")
                return
            await conn.ws.send(PING)
            state.unanswered += 1
            self.counters.pingpongs_sent += 1

    async def _flap(self, conn: Conn, flap: Flap) -> None:
        """Drop the connection the way the incident saw it: no close frame, just EOF."""
        await asyncio.sleep(self._rng.uniform(flap.min_s, flap.max_s))
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
        await asyncio.sleep(spec.after_s)
        while True:
            self.feed.silenced = True
            start, ids = time.time(), sorted(self.sessions.conns)
            await asyncio.sleep(spec.duration_s)
            self.feed.silenced = False
            self.counters.silences += 1
            self.truth.fault("silent", None, start, time.time(), sessions=ids)
            if spec.every_s is None:
                return
            await asyncio.sleep(spec.every_s - spec.duration_s)


def _parse(message: str | bytes) -> dict[str, Any]:
    try:
        msg = json.loads(message)
    except (ValueError, UnicodeDecodeError):
        return {}
    return msg if isinstance(msg, dict) else {}
