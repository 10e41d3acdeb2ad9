"""The contract between a broker and the rest of tickguard.

A broker is a folder under ``tickguard/brokers/`` that provides:

* a sans-I/O :class:`BrokerSession` (``codec.py``): text/bytes in, typed results out, and
  the frames to send. No sockets, clocks or awaits. One session object per websocket
  connection; it keeps only protocol state (encryption keys, login state).
* a :class:`BrokerTraits` object: the broker's name, limits, channels, how to authorize a
  websocket session (REST, through an injected ``httpx.AsyncClient``) and how to build a
  session. The supervisor in ``tickguard.stream`` knows nothing else about a broker.

``tickguard.brokers.registry.REGISTRY`` maps :class:`~tickguard.models.Broker` to its traits;
there is no ``if broker == ...`` anywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

import httpx

from tickguard.models import BookSnapshot, Broker, HaltSignal, Trade
from tickguard.settings import AppCredential, Settings


class Channel(StrEnum):
    """What a subscription carries."""

    TRADES = "trades"
    BOOK = "book"


@dataclass(frozen=True, slots=True)
class Subscription:
    symbol: str
    channel: Channel


@dataclass(frozen=True, slots=True)
class Ack:
    """The broker's answer to one subscribe/unsubscribe request."""

    subscription: Subscription | None
    """None when the broker's ack does not say which subscription it answers (Kiwoom REG)."""
    ok: bool
    code: str
    message: str
    unsubscribe: bool = False


class ControlKind(StrEnum):
    LOGIN_OK = "login_ok"
    LOGIN_FAILED = "login_failed"
    SESSION_CONFLICT = "session_conflict"
    """The app key already holds a session (KIS OPSP8996) or this one was kicked (Kiwoom R10001)."""
    SERVER_CLOSING = "server_closing"
    """The server will close the session (Kiwoom R10002 heartbeat missing, R10004 no login)."""
    HEARTBEAT = "heartbeat"
    """A keep-alive from the server (KIS PINGPONG, Kiwoom PING); the echo is in ``replies``."""
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Control:
    kind: ControlKind
    code: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Quarantine:
    """A frame (or one record of it) that could not be decoded: kept raw, with the reason."""

    raw: str
    reason: str
    detail: str = ""


@dataclass(slots=True, init=False)
class Decoded:
    """Everything one received frame produced.

    One is built per frame, so ``__init__`` is written out: list displays instead of the
    generated ``default_factory`` call per field (~230 ns instead of ~360 a frame).
    """

    events: list[Trade | BookSnapshot]
    replies: list[str]
    """Frames to send back at once, as text (PINGPONG/PING echoes)."""
    acks: list[Ack]
    controls: list[Control]
    quarantined: list[Quarantine]
    halts: list[HaltSignal]
    """Halt/resume flags the frame carried (a change per symbol, see the codecs)."""

    def __init__(
        self,
        events: list[Trade | BookSnapshot] | None = None,
        replies: list[str] | None = None,
        acks: list[Ack] | None = None,
        controls: list[Control] | None = None,
        quarantined: list[Quarantine] | None = None,
        halts: list[HaltSignal] | None = None,
    ) -> None:
        self.events = [] if events is None else events
        self.replies = [] if replies is None else replies
        self.acks = [] if acks is None else acks
        self.controls = [] if controls is None else controls
        self.quarantined = [] if quarantined is None else quarantined
        self.halts = [] if halts is None else halts


class BrokerSession(Protocol):
    """Sans-I/O protocol state of one websocket connection."""

    def handshake(self) -> list[str]:
        """Frames to send right after the socket opens (Kiwoom LOGIN; nothing for KIS)."""
        ...

    def subscribe(self, subs: Sequence[Subscription]) -> list[str]:
        """Frames that register ``subs``."""
        ...

    def unsubscribe(self, subs: Sequence[Subscription]) -> list[str]:
        """Frames that remove ``subs``."""
        ...

    def receive(self, raw: str | bytes, received_at: datetime) -> Decoded:
        """Decode one received frame. Never raises: what cannot be decoded is quarantined."""
        ...


class BrokerTraits(Protocol):
    """What the supervisor needs to know about a broker."""

    broker: Broker

    def max_registrations(self, settings: Settings) -> int:
        """Registrations one session may hold (KIS: 41 over all TRs)."""
        ...

    def ws_url(self, settings: Settings) -> str: ...

    def credentials(self, settings: Settings) -> list[AppCredential]: ...

    async def authorize(
        self, http: httpx.AsyncClient, settings: Settings, credential: AppCredential
    ) -> str:
        """Obtain what a websocket session needs (KIS approval key, Kiwoom access token)."""
        ...

    def new_session(
        self, authorization: str, trading_day: date, settings: Settings
    ) -> BrokerSession:
        """A fresh protocol object for one connection."""
        ...
