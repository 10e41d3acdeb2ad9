"""A protocol-faithful Kiwoom REST/WebSocket simulator on loopback (protocol reference §2.9).

    async with KiwoomSimulator(KiwoomSimConfig(market=...)) as sim:
        sim.rest_url, sim.ws_url, sim.truth_dir, sim.counters

REST (:mod:`tickguard.sim.kiwoom_rest`): ``POST /oauth2/token`` and ``POST /api/dostk/chart``
(ka10079/ka10080, paging, 1700). Websocket ``/api/dostk/websocket``: the first message must
be ``LOGIN`` with a token this simulator issued (else ``SYSTEM R10004`` and close); a LOGIN
with the app key of a live session kicks that session (``SYSTEM R10001``); ``PING`` every
``ping_interval_s`` and, after ``missed_pings`` unanswered in a row, ``SYSTEM R10002`` and
close; ``REG``/``REMOVE`` with ``grp_no``/``refresh`` answered by symbol-less acks; REAL
``0B``/``0D`` encoded by :mod:`tickguard.sim.kiwoom_feed`. The market, feed, fault menu,
ground truth and lifecycle are the neutral core the KIS simulator uses
(:mod:`tickguard.sim.server`).

Kiwoom's PING interval, its registration cap and the LOGIN deadline are UNCONFIRMED
(reference §4.7); they are settings here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from websockets.exceptions import ConnectionClosed

from tickguard.sim.kiwoom_feed import KiwoomWire
from tickguard.sim.kiwoom_frames import dumps
from tickguard.sim.kiwoom_registrations import Registrations
from tickguard.sim.kiwoom_rest import (
    ChartService,
    KiwoomAuthority,
    KiwoomRestRules,
    RateLimiter,
    rest_app,
)
from tickguard.sim.server import SimConfig, SimServer
from tickguard.sim.sessions import Conn

WS_PATH = "/api/dostk/websocket"
PING = dumps({"trnm": "PING"})
SYSTEM_TEXT = {
    "R10001": "동일한 App key로 접속이 되었습니다. 기존 세션은 종료가 됩니다",
    "R10002": "사용자 프로그램으로부터 Heartbeat(연결유지) 메시지가 오지않아서 접속을 종료합니다",
    "R10004": "접속허용요청이 들어오지 않았습니다",
}


@dataclass(frozen=True)
class KiwoomSimConfig(SimConfig):
    max_registrations: int = 100
    ping_interval_s: float = 10.0
    missed_pings: int = 5
    login_timeout_s: float = 10.0
    rest: KiwoomRestRules = field(default_factory=KiwoomRestRules)
    max_entries_per_message: int = 30


@dataclass(slots=True)
class _Login:
    """Per-connection Kiwoom state beside the shared :class:`Conn`."""

    regs: Registrations
    unanswered: int = 0


class KiwoomSimulator(SimServer[KiwoomSimConfig]):
    """Kiwoom's REST routes, control protocol and messages on the neutral simulator core."""

    broker = "kiwoom"
    ws_path = WS_PATH

    def __init__(self, config: KiwoomSimConfig) -> None:
        # Kiwoom kicks the old session instead of holding the app key's slot.
        super().__init__(config, KiwoomWire(), frame_cap=config.max_entries_per_message,
                         slot_hold_s=0.0)  # fmt: skip
        self.authority = KiwoomAuthority(config.apps, config.rest.token_ttl_s)
        self.limiter = RateLimiter(config.rest.max_requests, config.rest.window_s)
        self.charts = ChartService(self.trades_so_far, config.rest)
        self._state: dict[int, _Login] = {}

    def rest_app(self) -> Starlette:
        return rest_app(self.authority, self.charts, self.limiter)

    def summary_extra(self) -> dict[str, Any]:
        return {
            "tokens_issued": self.authority.tokens_issued,
            "chart_requests": self.charts.requests,
            "chart_pages": self.charts.pages,
            "rate_limited": self.limiter.refused,
        }

    def on_closed(self, conn: Conn) -> None:
        self._state.pop(conn.id, None)

    async def serve(self, conn: Conn) -> None:
        state = self._state[conn.id] = _Login(Registrations(self.config.max_registrations))
        if await self._await_login(conn):
            async for message in conn.ws:
                await self._on_message(conn, state, message)

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
        self.spawn_for(conn, self._ping(conn))
        return True

    async def _kick_holders(self, app_key: str, newcomer: Conn) -> None:
        """A second LOGIN with the same app key ends the first session (R10001)."""
        for old in self.sessions.holders(app_key):
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


def _parse(message: str | bytes) -> dict[str, Any]:
    try:
        msg = json.loads(message)
    except (ValueError, UnicodeDecodeError):
        return {}
    return msg if isinstance(msg, dict) else {}
