"""The KIS simulator's control protocol: subscribe/unsubscribe requests and their acks (§1.5,
§1.6), the one-session-per-app-key rule (OPSP8996) and the 41-registration cap (OPSP0008).

Error ``msg_cd`` values of the OPSP999x family follow a third-party table (T-ERR); which
number means which missing part is a simulator choice. Error acks use ``rt_cd`` "1".
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from tickguard.sim.kis_rest import KisAuthority
from tickguard.sim.kis_wire import DATA_TRS, ack, aes_material
from tickguard.sim.sessions import Conn, SessionTable, SimCounters
from tickguard.sim.truth import TruthWriter

_TR_KEY = re.compile(r"^Q?\d{6}$")


def is_pingpong(text: str | bytes) -> bool:
    try:
        msg = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return False
    return (
        isinstance(msg, dict)
        and isinstance(msg.get("header"), dict)
        and (msg["header"].get("tr_id") == "PINGPONG")
    )


class KisControl:
    def __init__(
        self,
        *,
        authority: KisAuthority,
        sessions: SessionTable,
        counters: SimCounters,
        truth: TruthWriter,
        max_registrations: int,
        rng: random.Random,
    ) -> None:
        self._authority = authority
        self._sessions = sessions
        self._counters = counters
        self._truth = truth
        self._max_registrations = max_registrations
        self._rng = rng

    async def on_text(self, conn: Conn, text: str) -> None:
        """Answer one text frame from a client: a PINGPONG echo or a (un)subscribe request."""
        if is_pingpong(text):
            conn.pong.set()
            self._counters.pongs_received += 1
            return
        try:
            msg = json.loads(text)
        except ValueError:
            await self._error(conn, "", "", "OPSP9999", "JSON PARSING ERROR : invalid json format")
            return
        header = msg.get("header") if isinstance(msg, dict) else None
        body = msg.get("body") if isinstance(msg, dict) else None
        inp = body.get("input") if isinstance(body, dict) else None
        if not isinstance(header, dict):
            await self._error(conn, "", "", "OPSP9998", "JSON PARSING ERROR : header not found")
        elif not isinstance(body, dict):
            await self._error(conn, "", "", "OPSP9997", "JSON PARSING ERROR : body not found")
        elif not isinstance(inp, dict):
            await self._error(conn, "", "", "OPSP9996", "JSON PARSING ERROR : input not found")
        else:
            await self._on_request(
                conn, header, str(inp.get("tr_id", "")), str(inp.get("tr_key", ""))
            )

    def _problem(
        self, conn: Conn, header: dict[str, Any], app_key: str | None, tr_id: str, tr_key: str
    ) -> tuple[str, str] | None:
        """The error a request earns, checked in the order KIS's server parses it."""
        if header.get("tr_type") not in ("1", "2"):
            return "OPSP8997", "JSON PARSING ERROR : invalid tr_type"
        if header.get("custtype") not in ("P", "B"):
            return "OPSP8998", "JSON PARSING ERROR : invalid custtype"
        if app_key is None or conn.app_key not in (None, app_key):
            return "OPSP0011", "invalid approval : NOT FOUND"
        if tr_id not in DATA_TRS:
            return "OPSP8991", "SUBSCRIBE ERROR : invalid tr_id"
        if not _TR_KEY.match(tr_key):
            return "OPSP8992", "SUBSCRIBE ERROR : invalid tr_key"
        return None

    async def _on_request(
        self, conn: Conn, header: dict[str, Any], tr_id: str, tr_key: str
    ) -> None:
        app_key = self._authority.app_key_for(str(header.get("approval_key", "")))
        problem = self._problem(conn, header, app_key, tr_id, tr_key)
        if problem is not None or app_key is None:
            await self._error(conn, tr_id, tr_key, *(problem or ("OPSP0011", "")))
            return
        if conn.app_key is None and not await self._bind(conn, app_key, tr_id, tr_key):
            return
        if header.get("tr_type") == "1":
            await self._subscribe(conn, tr_id, tr_key)
        else:
            await self._unsubscribe(conn, tr_id, tr_key)

    async def _bind(self, conn: Conn, app_key: str, tr_id: str, tr_key: str) -> bool:
        if self._sessions.claim(conn, app_key):
            self._counters.sessions_bound += 1
            self._truth.session_event(conn.id, "bound")
            return True
        self._counters.session_conflicts += 1
        conn.close_reason = "OPSP8996 ALREADY IN USE appkey"
        await self._error(conn, tr_id, tr_key, "OPSP8996", "ALREADY IN USE appkey")
        await conn.ws.close()
        return False

    async def _subscribe(self, conn: Conn, tr_id: str, tr_key: str) -> None:
        key = (tr_id, tr_key)
        if key in conn.subs:
            await self._error(conn, tr_id, tr_key, "OPSP0002", "ALREADY IN SUBSCRIBE")
        elif len(conn.subs) >= self._max_registrations:
            await self._error(conn, tr_id, tr_key, "OPSP0008", "MAX SUBSCRIBE OVER")
        else:
            answer = ack(
                tr_id,
                tr_key,
                "OPSP0000",
                "SUBSCRIBE SUCCESS",
                ok=True,
                iv_key=aes_material(self._rng),
            )
            await conn.ws.send(answer)
            self._sessions.add(conn, key)  # after the ack: no data frame precedes it
            self._counters.subscribed += 1

    async def _unsubscribe(self, conn: Conn, tr_id: str, tr_key: str) -> None:
        key = (tr_id, tr_key)
        if key not in conn.subs:
            await self._error(conn, tr_id, tr_key, "OPSP0003", "UNSUBSCRIBE ERROR(not found!)")
            return
        self._sessions.remove(conn, key)
        answer = ack(
            tr_id,
            tr_key,
            "OPSP0001",
            "UNSUBSCRIBE SUCCESS",
            ok=True,
            iv_key=aes_material(self._rng),
        )
        await conn.ws.send(answer)
        self._counters.unsubscribed += 1

    async def _error(self, conn: Conn, tr_id: str, tr_key: str, code: str, text: str) -> None:
        self._counters.subscribe_errors += 1
        await conn.ws.send(ack(tr_id, tr_key, code, text, ok=False))
