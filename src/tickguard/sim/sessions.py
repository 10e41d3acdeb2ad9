"""Connection and session bookkeeping of the simulators (broker-neutral).

Every broker simulator keeps the same table: live connections, the (channel, symbol) →
connections index the feed dispatches through, and app-key slots. Brokers differ in how a
second session on one app key ends, and that stays in their control protocol: KIS refuses
the newcomer (``OPSP8996``) and holds the slot for ``slot_hold_s`` after a disconnect
(KIS's real hold time is UNCONFIRMED, hence a setting); Kiwoom kicks the old session
(``R10001``) and holds nothing (``slot_hold_s`` 0).
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field

from websockets.asyncio.server import ServerConnection

SubKey = tuple[str, str]
"""(channel, symbol) — one registration: a KIS (tr_id, tr_key), a Kiwoom (type, item)."""
Queued = tuple[str, str, str, int]
"""(channel, symbol, encoded record, truth key) waiting to be framed for one connection."""


_HEAD16 = struct.Struct("!BBH")
_HEAD64 = struct.Struct("!BBQ")


def _text_frame(message: str) -> bytes:
    """An unmasked, final RFC 6455 text frame (FIN + opcode 1, 7/16/64-bit length)."""
    data = message.encode()
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return _HEAD16.pack(0x81, 126, n) + data
    return _HEAD64.pack(0x81, 127, n) + data


class FeedConnection(ServerConnection):
    """A server connection that sends a burst of text frames in one socket write.

    ``send`` costs one ``sock.send`` syscall per frame, the largest single cost of the feed
    at 20k records/s. :meth:`send_texts` queues every message as a text frame on the sans-I/O
    protocol (the bytes ``send`` would write, in order) and hands them to the transport at
    once; ``send_context`` keeps its closing-state handling, ConnectionClosed and drain (the
    writer waits while asyncio's write buffer is above its high mark).
    """

    async def send_texts(self, messages: Sequence[str]) -> None:
        """Send each message as one text frame, in order; raises ConnectionClosed like ``send``.

        Without extensions (the simulators serve with ``compression=None``) a server's text
        frame is a fixed header and the UTF-8 payload, built here at a fraction of
        ``protocol.send_text``'s per-frame cost (a Frame object, checks, a BytesIO);
        ``send_context`` has checked the state is OPEN, and no fragmented message is in
        progress once ``send_in_progress`` is clear. With extensions the protocol frames them.
        """
        while self.send_in_progress is not None:  # a fragmented message goes first
            await asyncio.shield(self.send_in_progress)
        async with self.send_context():
            if self.protocol.extensions:
                send_text = self.protocol.send_text
                for message in messages:
                    send_text(message.encode())
            else:
                self.protocol.writes.append(b"".join(map(_text_frame, messages)))

    def send_data(self) -> None:
        """Everything queued goes out in one transport write; a half-close (an empty chunk
        in the protocol's queue) keeps the stock per-chunk path, which handles it."""
        writes = self.protocol.writes
        if len(writes) > 1 and b"" not in writes:
            self.protocol.writes = [b"".join(writes)]
        super().send_data()


@dataclass(eq=False, slots=True)
class Conn:
    """One websocket connection (a session once bound to an app key)."""

    id: int
    ws: FeedConnection
    app_key: str | None = None
    subs: dict[SubKey, None] = field(default_factory=dict)
    """Registrations in order (a dict used as an ordered set)."""
    silenced: bool = False
    """A silence fault holds this connection's data back (the socket stays open)."""
    dying: bool = False
    """Set when a fault is about to drop the connection: no more data is queued for it."""
    pong: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by the broker's keep-alive when the client answered (KIS: a PINGPONG echo)."""
    outbox: dict[Hashable, list[Queued]] = field(default_factory=dict)
    """Per frame group (the broker wire decides): records waiting for the next flush."""
    frames: deque[tuple[Hashable, list[Queued]]] = field(default_factory=deque)
    """Frames (group, records) waiting for this connection's writer."""
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
    """Live connections, the (channel, symbol) → connections index and the app-key slots."""

    def __init__(self, slot_hold_s: float) -> None:
        self.conns: dict[int, Conn] = {}
        self.index: dict[SubKey, set[Conn]] = {}
        self._owner: dict[str, Conn] = {}
        self._free_at: dict[str, float] = {}
        self._hold = slot_hold_s
        self._next_id = 0

    def open(self, ws: FeedConnection) -> Conn:
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

    def holders(self, app_key: str) -> list[Conn]:
        """Live connections bound to ``app_key``."""
        return [c for c in self.conns.values() if c.app_key == app_key]

    def add(self, conn: Conn, key: SubKey) -> None:
        conn.subs[key] = None
        self.index.setdefault(key, set()).add(conn)

    def remove(self, conn: Conn, key: SubKey) -> None:
        """Drop a registration. Whatever was queued for it is not sent: the feed's writer
        sends only records of registrations the connection still holds."""
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
