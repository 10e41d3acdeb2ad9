"""A protocol-faithful KIS Open API simulator on loopback (protocol reference §1.11).

    async with KisSimulator(KisSimConfig(market=...)) as sim:
        sim.rest_url, sim.ws_url, sim.truth_dir, sim.counters

REST: ``/oauth2/tokenP`` and ``/oauth2/Approval`` (:mod:`tickguard.sim.kis_rest`). Websocket
(any path, ``/tryitout`` included): one session per app key (``OPSP8996``), subscribe and
unsubscribe with ``tr_type`` "1"/"2" and KIS-shaped acks with iv/key, ``OPSP0002``/``0003``/
``0008``, application-level ``PINGPONG`` every ``pingpong_interval_s`` (RFC pings are off:
KIS does not send them) with the session closed when no echo arrives in time — a text echo
counts, and so does a PONG control frame carrying it. Requests and acks are handled by
:mod:`tickguard.sim.kis_control`, data frames are encoded by :mod:`tickguard.sim.kis_feed`;
the market, feed, faults, ground truth and lifecycle are the neutral core
(:mod:`tickguard.sim.server`).

KIS's PINGPONG interval (≈110 s per a third party), its close behaviour and the slot hold
time are UNCONFIRMED; they are settings here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette

from tickguard.sim.kis_control import KisControl, is_pingpong
from tickguard.sim.kis_feed import KisWire
from tickguard.sim.kis_history import KisHistoryService, KisRestRules, market_history
from tickguard.sim.kis_rest import KisAuthority, TokenRules, rest_app
from tickguard.sim.kis_wire import pingpong
from tickguard.sim.server import SimConfig, SimServer
from tickguard.sim.sessions import Conn, FeedConnection


@dataclass(frozen=True)
class KisSimConfig(SimConfig):
    slot_hold_s: float = 1.0
    pingpong_interval_s: float = 10.0
    pingpong_timeout_s: float = 10.0
    token_rules: TokenRules = field(default_factory=TokenRules)
    max_records_per_frame: int = 30
    rest: KisRestRules = field(default_factory=KisRestRules)
    """Quotation TRs (backfill): per-app-key rate (EGW00201 past it), rows per call."""


class _KisConnection(FeedConnection):
    """Reports PONG control frames: KIS's official sample answers PINGPONG with ``ws.pong``."""

    on_pong: Any = None

    def acknowledge_pings(self, data: bytes) -> None:
        if self.on_pong is not None:
            self.on_pong(data)
        super().acknowledge_pings(data)


class KisSimulator(SimServer[KisSimConfig]):
    """KIS's REST routes, control protocol and frames on the neutral simulator core."""

    broker = "kis"
    ws_path = "/tryitout"
    connection_class = _KisConnection

    def __init__(self, config: KisSimConfig) -> None:
        super().__init__(config, KisWire(), frame_cap=config.max_records_per_frame,
                         slot_hold_s=config.slot_hold_s)  # fmt: skip
        self.authority = KisAuthority(config.apps, config.token_rules)
        self.history = KisHistoryService(
            market_history(self.market, self._session_t),
            self.authority.app_key_for_token,
            config.rest,
        )

    def _session_t(self) -> float:
        """Session time now: REST history is the tape up to here (backfill, issue 7)."""
        return self.clock.session_t()

    def rest_app(self) -> Starlette:
        return rest_app(self.authority, self.history)

    def on_started(self) -> None:
        self.control = KisControl(
            authority=self.authority,
            sessions=self.sessions,
            counters=self.counters,
            truth=self.truth,
            max_registrations=self.config.max_registrations,
            rng=self.rng,
        )

    def summary_extra(self) -> dict[str, Any]:
        return {
            "tokens_issued": self.authority.tokens_issued,
            "token_refusals": self.authority.token_refusals,
            "approvals_issued": self.authority.approvals_issued,
            "rest_requests": self.history.requests,
            "rest_rate_limited": self.history.rate_limited,
        }

    async def serve(self, conn: Conn) -> None:
        if isinstance(conn.ws, _KisConnection):
            conn.ws.on_pong = lambda data: conn.pong.set() if is_pingpong(data) else None
        self.spawn_for(conn, self._pingpong(conn))
        async for message in conn.ws:
            if isinstance(message, str):
                await self.control.on_text(conn, message)

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
