"""KIS JSON control messages: subscribe/unsubscribe acks, OPSP codes and PINGPONG.

:func:`parse_control_frame` reads the JSON into :class:`KisControlFrame` (KIS's field names,
nothing interpreted); :func:`interpret` turns it into the broker-neutral :class:`Ack` and
:class:`Control` the supervisor understands. Every OPSP code of reference §1.6 has a place:

* OPSP0000/0001 success; OPSP0002 (already subscribed) and OPSP0003 (unsubscribe: not found)
  are acks with ``ok=True`` because the state the client asked for holds — the code says why.
* OPSP8996 (app key already in use) is a session conflict, not an ack.
* OPSP0010/0011 (invalid app key / approval key) refuse the ack and also report a failed
  login, so the supervisor fetches a new approval key instead of retrying the subscription.
* every other code, and any ``rt_cd`` other than ``"0"``, is a refused ack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tickguard.brokers.base import Ack, Control, ControlKind, Subscription
from tickguard.brokers.kis import wire
from tickguard.errors import DecodeError

_OK_EVEN_IF_ODD = frozenset({wire.OPSP_ALREADY_SUBSCRIBED, wire.OPSP_UNSUBSCRIBE_NOT_FOUND})
_UNSUBSCRIBE_CODES = frozenset({wire.OPSP_UNSUBSCRIBED, wire.OPSP_UNSUBSCRIBE_NOT_FOUND})
_AUTH_CODES = frozenset({wire.OPSP_INVALID_APPKEY, wire.OPSP_INVALID_APPROVAL})
_SUCCESS_CODES = frozenset({wire.OPSP_SUBSCRIBED, wire.OPSP_UNSUBSCRIBED})
_ERROR_CODES = frozenset(wire.OPSP_MESSAGES) - _OK_EVEN_IF_ODD - _SUCCESS_CODES


@dataclass(frozen=True, slots=True)
class KisControlFrame:
    """A JSON control message as KIS sends it (``header`` and optional ``body``)."""

    tr_id: str
    tr_key: str = ""
    encrypt: str = ""
    datetime: str = ""
    has_body: bool = False
    rt_cd: str = ""
    msg_cd: str = ""
    msg1: str = ""
    iv: str = ""
    key: str = ""


def _text(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if isinstance(value, str | int):
        return str(value)
    raise DecodeError("bad_control", f"{name} is {type(value).__name__}")


def _object(obj: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DecodeError("bad_control", f"{name} is {type(value).__name__}")
    return value


def parse_control_frame(text: str) -> KisControlFrame:
    """JSON text → :class:`KisControlFrame`; raises :class:`DecodeError` when it is not one."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DecodeError("bad_json", type(exc).__name__) from exc
    if not isinstance(doc, dict):
        raise DecodeError("bad_control", f"top level is {type(doc).__name__}")
    header = _object(doc, "header")
    if header is None or not _text(header, "tr_id"):
        raise DecodeError("bad_control", "no header.tr_id")
    body = _object(doc, "body")
    output = (_object(body, "output") if body is not None else None) or {}
    return KisControlFrame(
        tr_id=_text(header, "tr_id"),
        tr_key=_text(header, "tr_key"),
        encrypt=_text(header, "encrypt"),
        datetime=_text(header, "datetime"),
        has_body=body is not None,
        rt_cd=_text(body, "rt_cd") if body is not None else "",
        msg_cd=_text(body, "msg_cd") if body is not None else "",
        msg1=_text(body, "msg1") if body is not None else "",
        iv=_text(output, "iv"),
        key=_text(output, "key"),
    )


def subscription_of(frame: KisControlFrame) -> Subscription | None:
    """The subscription an ack answers, when its TR is one we subscribe to."""
    channel = wire.CHANNEL_BY_TR.get(frame.tr_id)
    if channel is None or not frame.tr_key:
        return None
    return Subscription(frame.tr_key, channel)


def interpret(
    frame: KisControlFrame, requested_unsubscribe: bool | None
) -> tuple[list[Ack], list[Control]]:
    """Acks and controls of one non-PINGPONG control frame.

    ``requested_unsubscribe`` is what the session last asked for this (tr_id, tr_key), so a
    refused unsubscribe is reported as one even when KIS's message does not say so.
    """
    code, message = frame.msg_cd, frame.msg1
    if not frame.has_body:
        return [], [Control(ControlKind.INFO, frame.tr_id, message)]
    if code == wire.OPSP_ALREADY_IN_USE:
        return [], [Control(ControlKind.SESSION_CONFLICT, code, message)]
    unsubscribe = (
        code in _UNSUBSCRIBE_CODES
        or message.upper().startswith("UNSUB")
        or bool(requested_unsubscribe)
    )
    ok = code in _OK_EVEN_IF_ODD or (frame.rt_cd == "0" and not _is_known_error(code))
    ack = Ack(subscription_of(frame), ok, code, message, unsubscribe=unsubscribe)
    controls = [Control(ControlKind.LOGIN_FAILED, code, message)] if code in _AUTH_CODES else []
    return [ack], controls


def _is_known_error(code: str) -> bool:
    return code in _ERROR_CODES or code.startswith(wire.OPSP_JSON_PREFIX)
