"""The Kiwoom websocket codec against the recorded corpus, mutated (REAL 0B/0D with grown
entries, REG/REMOVE acks, LOGIN ok/refused, PING, SYSTEM R10001/R10002/R10004, and the
simulator's malformed messages).

Properties: ``receive`` never raises and never answers ``internal_error``; a message that
yields nothing else is quarantined (counted in ``Decoded.quarantined``, which the collector
adds up) with its reason and its raw text — the message itself (undecodable bytes as
``\\xNN``), or the one REAL entry that failed, which replays to the same reason; every
accepted event can travel the pipeline; a recorded message decodes to the same records
however it is re-serialised, split, grown or typed.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from fuzz_support import FUZZ, NOW, check_events, mutate, restore, ws_frames
from hypothesis import given
from hypothesis import strategies as st

from tickguard.brokers.kiwoom.codec import KiwoomSession
from tickguard.models import BookSnapshot, Trade

DAY = date(2026, 11, 26)
FRAMES = ws_frames("kiwoom")
REAL_PREFIX = '{"trnm":"REAL","data":[{'


def session() -> KiwoomSession:
    return KiwoomSession("t", DAY)


def _real(entries: list[Any], **dump: Any) -> str:
    return json.dumps({"trnm": "REAL", "data": entries}, **dump)


def _clean() -> list[str]:
    s = session()
    return [f for f in FRAMES if f.startswith(REAL_PREFIX) and not s.receive(f, NOW).quarantined]


CLEAN = _clean()


def _kept(q_raw: str, reason: str, raw: str | bytes) -> None:
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
    if q_raw == text:
        if isinstance(raw, bytes) and b"\\" not in raw:
            assert restore(q_raw) == raw
        return
    entry = json.loads(q_raw)  # one REAL entry, kept as JSON
    again = session().receive(_real([entry]), NOW)
    assert [q.reason for q in again.quarantined] == [reason], q_raw[:120]


@FUZZ
@given(data=st.data())
def test_mutated_messages_never_raise_and_every_rejection_is_counted_and_kept(
    data: st.DataObject,
) -> None:
    s = session()
    raw = mutate(data, FRAMES + CLEAN * 2)  # data messages weigh more: they reach the parsers
    ignored_before = sum(s.ignored_types.values())
    out = s.receive(raw, NOW)
    ignored = sum(s.ignored_types.values()) - ignored_before
    assert out.events or out.acks or out.controls or out.quarantined or ignored or _empty(raw)
    for q in out.quarantined:
        assert q.reason and q.reason != "internal_error", (q.reason, q.detail, raw)
        _kept(q.raw, q.reason, raw)
    check_events(out.events)


def _empty(raw: str | bytes) -> bool:
    """A REAL message with an empty data list carries nothing to keep."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("trnm") == "REAL" and doc.get("data") == []


def _records(frame: str) -> list[tuple[str, int, int, int]]:
    """(item, |price|, |qty|, cum) read straight from the FIDs, independently of the codec."""
    rows = []
    for entry in json.loads(frame)["data"]:
        v = entry["values"]
        if entry["type"] == "0B":
            rows.append((entry["item"], abs(int(v["10"])), abs(int(v["15"])), int(v["13"])))
        else:
            price = abs(int(v["41"] or 0))
            rows.append((entry["item"], price, int(v["61"] or 0) if price else 0, 0))
    return rows


def _summary(events: list[Trade | BookSnapshot]) -> list[tuple[str, int, int, int]]:
    rows = []
    for e in events:
        if isinstance(e, Trade):
            rows.append((e.symbol, e.price, e.qty, e.cum_volume))
        else:
            rows.append((e.symbol, *(e.asks[0] if e.asks else (0, 0)), 0))
    return rows


def test_recorded_messages_round_trip_to_the_same_records() -> None:
    assert len(CLEAN) >= 25
    s = session()
    for frame in CLEAN:
        whole = s.receive(frame, NOW)
        assert not whole.quarantined
        check_events(whole.events)
        assert _summary(whole.events) == _records(frame)
        entries = json.loads(frame)["data"]
        split = [e for entry in entries for e in s.receive(_real([entry]), NOW).events]
        assert split == whole.events
        pretty = _real(entries, ensure_ascii=True, indent=1, sort_keys=True)
        assert s.receive(pretty, NOW).events == whole.events
        grown = [{**e, "values": {**e["values"], "9999": "1"}, "extra": [1]} for e in entries]
        assert s.receive(_real(grown), NOW).events == whole.events
        assert s.receive(frame.encode(), NOW).events == whole.events


def test_the_recorded_session_decodes_with_its_malformed_messages_quarantined() -> None:
    s = session()
    outs = [s.receive(f, NOW) for f in FRAMES]
    quarantined = [q for o in outs for q in o.quarantined]
    assert quarantined and all(q.reason != "internal_error" for q in quarantined)
    assert sum(len(o.events) for o in outs) >= len(CLEAN)
    codes = {c.code for o in outs for c in o.controls}
    assert {"R10001", "R10002", "R10004", "8005", "0", "PING"} <= codes
    assert {(a.ok, a.unsubscribe) for o in outs for a in o.acks} >= {
        (True, False), (False, False), (True, True),
    }  # fmt: skip


def test_undecodable_bytes_are_kept_not_replaced() -> None:
    """Regression (fuzz): undecodable bytes were kept as U+FFFD, losing what arrived; they
    are now kept as ``\\xNN`` escapes, like the KIS codec keeps them."""
    raw = CLEAN[0].encode()[:40] + b"\xff\xc3(" + CLEAN[0].encode()[40:]
    (q,) = session().receive(raw, NOW).quarantined
    assert q.reason == "bad_encoding" and restore(q.raw) == raw


def test_numbers_past_bigint_and_signed_quantities_are_quarantined() -> None:
    """Regression (fuzz): FID values past BIGINT passed into events (PostgreSQL then refuses
    the whole stream entry; past 2**64 the stream encoding raises in the batcher), and a
    signed book quantity was stored as a negative one."""
    trade = next(e for f in CLEAN for e in json.loads(f)["data"] if e["type"] == "0B")
    book = next(e for f in CLEAN for e in json.loads(f)["data"] if e["type"] == "0D")
    for entry, fid, value in (
        (trade, "10", "+" + "9" * 19),
        (trade, "15", "-" + str(2**63)),
        (trade, "13", str(2**64)),
        (book, "41", "1" + "0" * 20),
        (book, "61", "-5"),
        (book, "125", str(2**63)),
    ):
        bad = {**entry, "values": {**entry["values"], fid: value}}
        out = session().receive(_real([bad]), NOW)
        assert out.events == [] and [q.reason for q in out.quarantined] == ["bad_field"], value
