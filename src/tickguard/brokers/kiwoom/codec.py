"""Kiwoom websocket protocol as a sans-I/O session object.

One :class:`KiwoomSession` per connection: ``handshake()`` yields the LOGIN frame,
``subscribe``/``unsubscribe`` yield REG/REMOVE frames, and ``receive`` turns one received
message into typed results. No sockets, clocks or awaits: the supervisor owns all I/O.

``receive`` never raises. A message that cannot be decoded is quarantined with a stable
reason; inside a REAL message each ``data`` entry is decoded on its own, so one bad entry
costs that entry only. Unknown FIDs are ignored, unknown REAL types are counted in
:attr:`KiwoomSession.ignored_types` (they are valid Kiwoom data we did not ask to store).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime

from tickguard.brokers.base import (
    Ack,
    Channel,
    Control,
    ControlKind,
    Decoded,
    Quarantine,
    Subscription,
)
from tickguard.brokers.kiwoom import wire
from tickguard.errors import DecodeError
from tickguard.models import BookSnapshot, Broker, HaltSignal, Trade

CHANNEL_TYPES: dict[Channel, str] = {Channel.TRADES: wire.TYPE_TRADE, Channel.BOOK: wire.TYPE_BOOK}
_SYSTEM_KINDS = {
    wire.SYS_KICKED: ControlKind.SESSION_CONFLICT,
    wire.SYS_NO_HEARTBEAT: ControlKind.SERVER_CLOSING,
    wire.SYS_NO_LOGIN: ControlKind.SERVER_CLOSING,
}
_MAX_KNOWN_ITEMS = 10_000
_MAX_IGNORED_KEYS = 64
"""Distinct unknown REAL types remembered by name; the rest are counted under ``"*"``."""

_Parser = Callable[[str, Mapping[str, object], wire.TimeCache, datetime], Trade | BookSnapshot]
_PARSERS: dict[str, _Parser] = {wire.TYPE_TRADE: wire.parse_trade, wire.TYPE_BOOK: wire.parse_book}


def _text_of(raw: str | bytes) -> str:
    """The received text; undecodable bytes stay as ``\\xNN`` escapes (kept, not replaced)."""
    return raw if isinstance(raw, str) else raw.decode("utf-8", errors="backslashreplace")


def _return_code(message: Mapping[str, object]) -> str:
    code = message.get("return_code")
    if isinstance(code, bool) or not isinstance(code, int | str):
        raise DecodeError("bad_ack", f"return_code missing or malformed: {code!r}")
    return str(code)


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class KiwoomSession:
    """Protocol state of one Kiwoom websocket connection (implements ``BrokerSession``)."""

    __slots__ = (
        "_day", "_grp_no", "_halted", "_items", "_times", "_token", "_vi_type", "ignored_types",
        "logged_in",
    )  # fmt: skip

    def __init__(
        self, token: str, trading_day: date, grp_no: str = "1", vi_type: str | None = wire.TYPE_VI
    ) -> None:
        self._token = token
        self._day = trading_day
        self._grp_no = grp_no
        self._times = wire.TimeCache(trading_day)
        self.logged_in = False
        self.ignored_types: dict[str, int] = {}
        self._items: set[str] = set()
        """Item codes already validated (bounded by ``_MAX_KNOWN_ITEMS``)."""
        self._vi_type = vi_type
        """REAL type read as VI발동/해제 (UNCONFIRMED semantics, see wire); None: ignored."""
        self._halted: dict[str, bool] = {}
        """symbol → halted as last seen on this connection (a change emits a HaltSignal)."""

    def __repr__(self) -> str:  # never show the token
        return f"KiwoomSession(trading_day={self._day.isoformat()}, logged_in={self.logged_in})"

    # --- frames to send ------------------------------------------------------------------
    def handshake(self) -> list[str]:
        """LOGIN must be the first message, or the server closes with SYSTEM R10004."""
        return [wire.login_message(self._token)]

    def subscribe(self, subs: Sequence[Subscription]) -> list[str]:
        """One REG for all of ``subs`` (``refresh=1`` keeps earlier registrations).

        Kiwoom's REG ack names no symbol, so one request ↔ one ack is the only pairing the
        supervisor can check; the request holds one ``data`` entry per type and 100 codes.
        """
        return self._registrations(wire.REG, subs)

    def unsubscribe(self, subs: Sequence[Subscription]) -> list[str]:
        return self._registrations(wire.REMOVE, subs)

    def _registrations(self, trnm: str, subs: Sequence[Subscription]) -> list[str]:
        data: list[tuple[str, Sequence[str]]] = []
        for channel, rtype in CHANNEL_TYPES.items():
            items = list(dict.fromkeys(s.symbol for s in subs if s.channel is channel))
            data.extend((rtype, chunk) for chunk in _chunks(items, wire.ITEMS_PER_REG))
        return [wire.registration_message(trnm, self._grp_no, data)] if data else []

    # --- frames received -----------------------------------------------------------------
    def receive(self, raw: str | bytes, received_at: datetime) -> Decoded:
        out = Decoded()
        try:
            self._receive(raw, received_at, out)
        except DecodeError as exc:
            out.quarantined.append(Quarantine(_text_of(raw), exc.reason, exc.detail))
        except Exception as exc:  # receive must never raise: keep the frame, say why
            out.quarantined.append(Quarantine(_text_of(raw), "internal_error", repr(exc)))
        return out

    def _receive(self, raw: str | bytes, received_at: datetime, out: Decoded) -> None:
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DecodeError("bad_encoding", str(exc)) from None
        if len(raw) < 16 and raw.strip() == wire.PING:  # the official client echoes a bare PING too
            self._ping(raw, out)
            return
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise DecodeError("bad_json", str(exc)[:200]) from None
        if not isinstance(message, dict):
            raise DecodeError("not_an_object", type(message).__name__)
        trnm = message.get("trnm")
        if trnm == wire.REAL:
            self._real(message, received_at, out)
        elif trnm == wire.PING:
            self._ping(raw, out)
        elif trnm in (wire.REG, wire.REMOVE):
            ok_code = _return_code(message)
            text = str(message.get("return_msg", ""))
            unsub = trnm == wire.REMOVE
            out.acks.append(Ack(None, ok_code == "0", ok_code, text, unsubscribe=unsub))
        elif trnm == wire.LOGIN:
            self._login(message, out)
        elif trnm == wire.SYSTEM:
            self._system(message, out)
        else:
            raise DecodeError("unknown_message", f"trnm={trnm!r}")

    @staticmethod
    def _ping(raw: str, out: Decoded) -> None:
        """Echo the PING exactly as received; Kiwoom closes after 5 missed echoes (R10002)."""
        out.controls.append(Control(ControlKind.HEARTBEAT, wire.PING))
        out.replies.append(raw)

    def _login(self, message: Mapping[str, object], out: Decoded) -> None:
        code = _return_code(message)
        self.logged_in = code == "0"
        kind = ControlKind.LOGIN_OK if self.logged_in else ControlKind.LOGIN_FAILED
        out.controls.append(Control(kind, code, str(message.get("return_msg", ""))))

    @staticmethod
    def _system(message: Mapping[str, object], out: Decoded) -> None:
        code = str(message.get("code", ""))
        kind = _SYSTEM_KINDS.get(code, ControlKind.INFO)
        out.controls.append(Control(kind, code, str(message.get("message", ""))))

    def _real(self, message: Mapping[str, object], received_at: datetime, out: Decoded) -> None:
        data = message.get("data")
        if not isinstance(data, list):
            raise DecodeError("bad_real", "REAL without a data list")
        for entry in data:
            try:
                if isinstance(entry, dict) and entry.get("type") == self._vi_type:
                    self._vi(entry, out)
                    continue
                event = self._entry(entry, received_at)
            except DecodeError as exc:
                out.quarantined.append(Quarantine(_entry_text(entry), exc.reason, exc.detail))
                continue
            if event is not None:
                out.events.append(event)
                if isinstance(event, Trade) and self._halted.get(event.symbol) is not False:
                    # A trade proves trading: it ends a VI (also one that began while
                    # disconnected, hence on first sight too).
                    self._halted[event.symbol] = False
                    out.halts.append(
                        HaltSignal(Broker.KIWOOM, event.symbol, event.ts, False, "trading")
                    )

    def _vi(self, entry: Mapping[str, object], out: Decoded) -> None:
        values = entry.get("values")
        if not isinstance(values, dict):
            raise DecodeError("bad_entry", "values missing or not an object")
        symbol, at, halted = wire.parse_vi(self._known(entry.get("item")), values, self._times)
        if self._halted.get(symbol) is not halted:
            self._halted[symbol] = halted
            reason = "1h VI발동" if halted else "1h VI해제"
            out.halts.append(HaltSignal(Broker.KIWOOM, symbol, at, halted, reason))

    def _entry(self, entry: object, received_at: datetime) -> Trade | BookSnapshot | None:
        if not isinstance(entry, dict):
            raise DecodeError("bad_entry", f"REAL entry is {type(entry).__name__}")
        rtype = entry.get("type")
        parser = _PARSERS.get(rtype) if isinstance(rtype, str) else None
        if parser is None:
            self._ignore(rtype)
            return None
        item, values = entry.get("item"), entry.get("values")
        if item.__class__ is not str or item not in self._items:
            item = self._known(item)
        if not isinstance(values, dict):
            raise DecodeError("bad_entry", "values missing or not an object")
        return parser(item, values, self._times, received_at)

    def _known(self, item: object) -> str:
        """Validate an item code once per session; the set stops growing at its cap."""
        code = wire.check_item(item)
        if len(self._items) < _MAX_KNOWN_ITEMS:
            self._items.add(code)
        return code

    def _ignore(self, rtype: object) -> None:
        key = rtype if isinstance(rtype, str) else repr(rtype)
        if key not in self.ignored_types and len(self.ignored_types) >= _MAX_IGNORED_KEYS:
            key = "*"
        self.ignored_types[key] = self.ignored_types.get(key, 0) + 1


def _entry_text(entry: object) -> str:
    try:
        return wire.dumps(entry) if isinstance(entry, dict) else json.dumps(entry)
    except (TypeError, ValueError):
        return repr(entry)
