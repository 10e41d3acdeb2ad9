"""Connection and session bookkeeping of the KIS simulator.

KIS allows one websocket session per app key (§1.4): the app key is learnt from the approval
key of the first subscribe message; a second connection that tries to use the same app key is
answered ``OPSP8996`` and closed, and after a disconnect the slot stays taken for
``slot_hold_s``. KIS's real hold time is UNCONFIRMED (a third-party probe only says "a
while"); the simulator makes it a setting with a small default.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import asdict, dataclass, field

from websockets.asyncio.server import ServerConnection

SubKey = tuple[str, str]
"""(tr_id, tr_key) — one registration."""


@dataclass(eq=False, slots=True)
class Conn:
    """One websocket connection (a session once bound to an app key)."""

    id: int
    ws: ServerConnection
    app_key: str | None = None
    subs: dict[SubKey, None] = field(default_factory=dict)
    """Registrations in order (a dict used as an ordered set)."""
    silenced: bool = False
    """A silence fault holds this connection's data back (the socket stays open)."""
    dying: bool = False
    """Set when a fault is about to drop the connection: no more data is queued for it."""
    pong: asyncio.Event = field(default_factory=asyncio.Event)
    outbox: dict[SubKey, tuple[list[str], list[int]]] = field(default_factory=dict)
    """Per (tr_id, symbol): records and their keys waiting for the next flush."""
    frames: deque[tuple[str, str, list[str], list[int]]] = field(default_factory=deque)
    """Frames (tr_id, symbol, records, keys) waiting for this connection's writer."""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    close_reason: str = ""


@dataclass(slots=True)
class SimCounters:
    connections: int = 0
    sessions_bound: int = 0
    session_conflicts: int = 0
    subscribed: int = 0
    unsubscribed: int = 0
    subscribe_errors: int = 0
    frames_sent: int = 0
    trade_records_sent: int = 0
    book_records_sent: int = 0
    malformed_sent: int = 0
    grown_frames: int = 0
    trades_generated: int = 0
    books_generated: int = 0
    trades_missed_while_disconnected: int = 0
    drops: int = 0
    silences: int = 0
    pingpongs_sent: int = 0
    pongs_received: int = 0
    pingpong_timeouts: int = 0
    slow_consumers_dropped: int = 0
    lag_max_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class SessionTable:
    """Live connections, the (tr_id, symbol) → connections index and the app-key slots."""

    def __init__(self, slot_hold_s: float) -> None:
        self.conns: dict[int, Conn] = {}
        self.index: dict[SubKey, set[Conn]] = {}
        self._owner: dict[str, Conn] = {}
        self._free_at: dict[str, float] = {}
        self._hold = slot_hold_s
        self._next_id = 0

    def open(self, ws: ServerConnection) -> Conn:
        self._next_id += 1
        conn = Conn(self._next_id, ws)
        self.conns[conn.id] = conn
        return conn

    def claim(self, conn: Conn, app_key: str) -> bool:
        """Bind ``conn`` to ``app_key`` unless another session holds (or recently held) it."""
        owner = self._owner.get(app_key)
        if owner is not None and owner is not conn:
            return False
        if time.monotonic() < self._free_at.get(app_key, 0.0):
            return False
        self._owner[app_key] = conn
        conn.app_key = app_key
        return True

    def add(self, conn: Conn, key: SubKey) -> None:
        conn.subs[key] = None
        self.index.setdefault(key, set()).add(conn)

    def remove(self, conn: Conn, key: SubKey) -> None:
        """Drop a registration and whatever was queued for it: nothing follows the UNSUB ack."""
        conn.subs.pop(key, None)
        conn.outbox.pop(key, None)
        holders = self.index.get(key)
        if holders is not None:
            holders.discard(conn)
            if not holders:
                del self.index[key]

    def release(self, conn: Conn) -> None:
        """Forget a closed connection; its app key stays held for ``slot_hold_s``."""
        self.conns.pop(conn.id, None)
        for key in list(conn.subs):
            self.remove(conn, key)
        conn.outbox.clear()
        conn.frames.clear()
        if conn.app_key is not None and self._owner.get(conn.app_key) is conn:
            del self._owner[conn.app_key]
            self._free_at[conn.app_key] = time.monotonic() + self._hold

    def live(self, key: SubKey) -> list[Conn]:
        """Connections subscribed to ``key`` that are not being dropped."""
        holders = self.index.get(key)
        if not holders:
            return []
        return [c for c in holders if not c.dying]
