"""The KIS websocket protocol, sans-I/O: :class:`KisSession` implements ``BrokerSession``.

Text or bytes in, typed results out, frames to send out; no sockets, clocks or awaits. The
receive time and the trading day are handed in. Dispatch follows KIS's own clients: a frame
starting with ``0``/``1`` is data (``flag|tr_id|count|payload``), anything else is JSON
control.

Data frames are cut by width, not by a hard-coded layout: record width = fields ÷ count and
the known leading columns are read by position, so a record that grows a trailing column
keeps decoding (python-kis broke on exactly that, python-kis#68). What does not fit is
quarantined — the whole frame when its shape is wrong, one record when only that record is
bad — and counted in :attr:`KisSession.counters`. ``receive`` never raises.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime
from functools import partial

from pydantic import SecretStr

from tickguard.brokers.base import Control, ControlKind, Decoded, Quarantine, Subscription
from tickguard.brokers.kis import wire
from tickguard.brokers.kis.control import interpret, parse_control_frame
from tickguard.brokers.kis.crypto import AesKey, decrypt_payload
from tickguard.brokers.kis.records import KstTimes, parse_h0stasp0_record, parse_h0stcnt0_record
from tickguard.brokers.kis.wire import Asp, Cnt
from tickguard.errors import DecodeError
from tickguard.models import BookSnapshot, Broker, HaltSignal, Trade

RecordParser = Callable[[list[str], int, datetime], Trade | BookSnapshot]
_Route = tuple[int, RecordParser, bool, int, str]


class KisSession:
    """Protocol state of one KIS websocket connection (AES keys, requests awaiting an ack)."""

    def __init__(self, approval_key: SecretStr, trading_day: date, custtype: str = "P") -> None:
        self._approval_key = approval_key
        self._custtype = custtype
        self._trading_day = trading_day
        self.frames = 0
        """Frames received."""
        self.events = 0
        """Trades and books decoded."""
        self.counters: Counter[str] = Counter()
        """``quarantined.<reason>`` → frames or records quarantined for that reason."""
        self._times = KstTimes()
        self._keys: dict[str, dict[AesKey, None]] = {}
        """tr_id → the distinct keys its acks carried, newest last (an ordered set)."""
        self._requested: dict[tuple[str, str], bool] = {}
        self._halted: dict[str, bool] = {}
        """symbol → halted as last seen on this connection (a change emits a HaltSignal)."""
        times = self._times
        self._routes: dict[str, _Route] = {
            wire.TR_TRADES: (
                wire.KNOWN_WIDTH[wire.TR_TRADES],
                partial(parse_h0stcnt0_record, times),
                True,
                Cnt.HALTED,
                wire.TRHT_YN_HALTED,
            ),
            wire.TR_BOOK: (
                wire.KNOWN_WIDTH[wire.TR_BOOK],
                partial(parse_h0stasp0_record, times, trading_day),
                False,
                Asp.HOUR_CLS,
                wire.HOUR_CLS_VI,
            ),
        }
        """tr_id → (narrowest width, record parser, trades?, halt flag column, its halted value):
        one lookup per frame."""

    @property
    def trading_day(self) -> date:
        """Day of frames that carry only a time (H0STASP0); fixed for the connection."""
        return self._trading_day

    def __repr__(self) -> str:
        return f"KisSession(trading_day={self.trading_day}, approval_key=<hidden>)"

    # -- frames to send ---------------------------------------------------------------------

    def handshake(self) -> list[str]:
        """KIS needs nothing before the first subscription: the approval key rides in each."""
        return []

    def subscribe(self, subs: Sequence[Subscription]) -> list[str]:
        return [self._request(sub, wire.TR_TYPE_SUBSCRIBE) for sub in subs]

    def unsubscribe(self, subs: Sequence[Subscription]) -> list[str]:
        return [self._request(sub, wire.TR_TYPE_UNSUBSCRIBE) for sub in subs]

    def _request(self, sub: Subscription, tr_type: str) -> str:
        tr_id = wire.TR_BY_CHANNEL[sub.channel]
        self._requested[(tr_id, sub.symbol)] = tr_type == wire.TR_TYPE_UNSUBSCRIBE
        header = {
            "approval_key": self._approval_key.get_secret_value(),
            "custtype": self._custtype,
            "tr_type": tr_type,
            "content-type": "utf-8",
        }
        return json.dumps(
            {"header": header, "body": {"input": {"tr_id": tr_id, "tr_key": sub.symbol}}}
        )

    # -- frames received --------------------------------------------------------------------

    def receive(self, raw: str | bytes, received_at: datetime) -> Decoded:
        out = Decoded()
        self.frames += 1
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._quarantine(
                    out, raw.decode("utf-8", "backslashreplace"), "not_utf8", str(exc.start)
                )
                return out
        else:
            text = raw
        try:
            if text[:1] in ("0", "1"):
                self._data(text, received_at, out)
            else:
                self._control(text, out)
        except DecodeError as exc:
            self._quarantine(out, text, exc.reason, exc.detail)
        except Exception as exc:  # the contract: a frame never stops the stream
            self._quarantine(out, text, "internal_error", type(exc).__name__)
        self.events += len(out.events)
        return out

    def _data(self, text: str, received_at: datetime, out: Decoded) -> None:
        """``flag|tr_id|count|payload`` → events; the shape is checked once per frame."""
        parts = text.split("|", 3)
        if len(parts) != 4:
            raise DecodeError("bad_frame", "expected flag|tr_id|count|payload")
        flag, tr_id, count_text, payload = parts
        route = self._routes.get(tr_id)
        if route is None:
            raise DecodeError("unknown_tr", repr(tr_id[:32]))
        known_width, parse, trades, flag_at, halted_value = route
        if count_text == "001":  # most frames: skip the digit checks
            count = 1
        else:
            digits = count_text.isascii() and count_text.isdigit() and len(count_text) <= 6
            count = int(count_text) if digits else 0  # int() refuses > 4300 digits: no count
            if count < 1:
                raise DecodeError("bad_count", repr(count_text[:16]))
        if flag == "1":
            payload = self._decrypt(tr_id, payload)
        elif flag != "0":
            raise DecodeError("bad_frame", f"flag {flag!r}")
        fields = payload.split("^")
        total = len(fields)
        if total % count:
            raise DecodeError("bad_width", f"{total} fields is not a multiple of count {count}")
        width = total // count
        if width < known_width:
            raise DecodeError("too_narrow", f"{width} fields per {tr_id} record")
        events = out.events
        state = self._halted
        for start in range(0, total, width):
            try:
                event = parse(fields, start, received_at)
            except Exception as exc:  # one bad record must not cost its neighbours
                self._quarantine_record(out, tr_id, fields[start : start + width], exc)
                continue
            events.append(event)
            halted = fields[start + flag_at] == halted_value
            if state.get(event.symbol) is not halted:
                state[event.symbol] = halted
                self._halt(out, event, halted, trades)

    @staticmethod
    def _halt(out: Decoded, event: Trade | BookSnapshot, halted: bool, trades: bool) -> None:
        """A change of the symbol's halt flag (also its first sight on this connection: a
        resume seen after a reconnect ends a halt that began while disconnected)."""
        if not halted:
            reason = "trading"
        elif trades:
            reason = "TRHT_YN=Y (거래정지)"
        else:
            reason = "HOUR_CLS_CODE=C (VI)"
        out.halts.append(HaltSignal(Broker.KIS, event.symbol, event.ts, halted, reason))

    def _quarantine_record(
        self, out: Decoded, tr_id: str, record: list[str], exc: Exception
    ) -> None:
        """Keep one bad record as a replayable one-record frame."""
        reason = exc.reason if isinstance(exc, DecodeError) else "internal_error"
        detail = exc.detail if isinstance(exc, DecodeError) else type(exc).__name__
        self._quarantine(out, f"0|{tr_id}|001|{'^'.join(record)}", reason, detail)

    def _decrypt(self, tr_id: str, payload: str) -> str:
        """An encrypted frame names only its TR, so try that TR's keys, newest first."""
        keys = self._keys.get(tr_id)
        if not keys:
            raise DecodeError("no_key", f"encrypted {tr_id} frame before any ack with iv/key")
        failure = DecodeError("decrypt_failed")
        for aes in reversed(keys):
            try:
                return decrypt_payload(payload, aes)
            except DecodeError as exc:
                failure = exc
        raise failure

    def _remember_key(self, tr_id: str, aes: AesKey) -> None:
        keys = self._keys.setdefault(tr_id, {})
        keys.pop(aes, None)
        keys[aes] = None

    def _control(self, text: str, out: Decoded) -> None:
        frame = parse_control_frame(text)
        if frame.tr_id == wire.TR_PINGPONG and not frame.has_body:
            out.controls.append(Control(ControlKind.HEARTBEAT, wire.TR_PINGPONG, frame.datetime))
            out.replies.append(text)
            return
        if frame.iv and frame.key:
            try:
                self._remember_key(frame.tr_id, AesKey.from_ack(frame.key, frame.iv))
            except DecodeError as exc:  # keep the ack; only the key is unusable
                self._quarantine(out, text, exc.reason, exc.detail)
        requested = self._requested.pop((frame.tr_id, frame.tr_key), None)
        acks, controls = interpret(frame, requested)
        out.acks.extend(acks)
        out.controls.extend(controls)

    def _quarantine(self, out: Decoded, raw: str, reason: str, detail: str) -> None:
        self.counters[f"quarantined.{reason}"] += 1
        out.quarantined.append(Quarantine(raw, reason, detail))
