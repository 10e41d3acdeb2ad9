"""The KIS websocket codec against the recorded corpus, mutated (data frames plain and
AES-encrypted, OPSP acks of every outcome, PINGPONG, the simulator's malformed frames).

Properties: ``receive`` never raises and never answers ``internal_error``; every rejected
input is counted (``session.counters``) and kept (a quarantine record with its reason and
the raw text — the frame itself, or a one-record frame that replays to the same reason);
every accepted event can travel the pipeline (stream encoding, BIGINT); and a recorded
frame decodes to the same records however it is cut, encrypted, grown or typed.
"""

from __future__ import annotations

import json
from datetime import date

from fuzz_support import FUZZ, NOW, check_events, mutate, restore, ws_frames
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from tickguard.brokers.base import Decoded
from tickguard.brokers.kis import wire
from tickguard.brokers.kis.codec import KisSession
from tickguard.brokers.kis.crypto import AesKey, encrypt_payload
from tickguard.models import BookSnapshot, Trade

DAY = date(2026, 11, 26)
FRAMES = ws_frames("kis")
ACKS = [f for f in FRAMES if '"iv"' in f]
KEYS = {
    doc["header"]["tr_id"]: AesKey.from_ack(
        doc["body"]["output"]["key"], doc["body"]["output"]["iv"]
    )
    for doc in map(json.loads, ACKS)
}


def session() -> KisSession:
    """A session that has seen the recorded acks, so it holds both TRs' AES keys."""
    s = KisSession(SecretStr("k"), DAY)
    for ack in ACKS:
        s.receive(ack, NOW)
    return s


def _clean_data_frames() -> list[str]:
    s = session()
    return [f for f in FRAMES if f[:2] == "0|" and not s.receive(f, NOW).quarantined]


CLEAN = _clean_data_frames()


def encrypted(frame: str) -> str:
    _, tr_id, count, payload = frame.split("|", 3)
    return f"1|{tr_id}|{count}|{encrypt_payload(payload, KEYS[tr_id])}"


SEEDS = FRAMES + CLEAN + [encrypted(f) for f in CLEAN[:20]]  # data frames weigh more


def _kept(q_raw: str, reason: str, raw: str | bytes) -> None:
    """A quarantine record keeps what was received: the frame, or one replayable record."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
    if q_raw == text:
        if isinstance(raw, bytes) and b"\\" not in raw:
            assert restore(q_raw) == raw
        return
    assert q_raw.startswith("0|") and q_raw.split("|", 3)[2] == "001", q_raw[:80]
    again = session().receive(q_raw, NOW)
    assert [q.reason for q in again.quarantined] == [reason]


@FUZZ
@given(data=st.data())
def test_mutated_frames_never_raise_and_every_rejection_is_counted_and_kept(
    data: st.DataObject,
) -> None:
    s = session()
    before = s.counters.total()
    raw = mutate(data, SEEDS)
    out = s.receive(raw, NOW)
    assert out.events or out.acks or out.controls or out.quarantined, raw
    assert s.counters.total() - before == len(out.quarantined)
    for q in out.quarantined:
        assert q.reason and q.reason != "internal_error", (q.reason, q.detail, raw)
        _kept(q.raw, q.reason, raw)
    check_events(out.events)


def _records(frame: str) -> list[tuple[str, int, int, int]]:
    """(symbol, price, qty, cum_volume) read by the reference's columns, independently."""
    _, tr_id, count, payload = frame.split("|", 3)
    fields = payload.split("^")
    width = len(fields) // int(count)
    rows = [fields[i : i + width] for i in range(0, len(fields), width)]
    if tr_id != wire.TR_TRADES:
        asks = [(int(r[3]), int(r[23])) if int(r[3]) else (0, 0) for r in rows]  # ASKP1, RSQN1
        return [(r[0], *ask, 0) for r, ask in zip(rows, asks, strict=True)]
    return [(r[0], int(r[2]), int(r[12]), int(r[13])) for r in rows]


def _summary(out: Decoded) -> list[tuple[str, int, int, int]]:
    rows = []
    for e in out.events:
        if isinstance(e, Trade):
            rows.append((e.symbol, e.price, e.qty, e.cum_volume))
        else:
            assert isinstance(e, BookSnapshot)
            rows.append((e.symbol, *(e.asks[0] if e.asks else (0, 0)), 0))
    return rows


def _singles(frame: str) -> list[str]:
    _, tr_id, count, payload = frame.split("|", 3)
    fields = payload.split("^")
    width = len(fields) // int(count)
    return [
        f"0|{tr_id}|001|" + "^".join(fields[i : i + width]) for i in range(0, len(fields), width)
    ]


def _grown(frame: str) -> str:
    _, tr_id, count, _ = frame.split("|", 3)
    singles = [s.split("|", 3)[3] + "^X" for s in _singles(frame)]
    return f"0|{tr_id}|{count}|" + "^".join(singles)


def test_recorded_frames_round_trip_to_the_same_records() -> None:
    assert len(CLEAN) >= 50
    s = session()
    for frame in CLEAN:
        whole = s.receive(frame, NOW)
        assert not whole.quarantined
        check_events(whole.events)
        assert _summary(whole) == _records(frame)
        split = [e for one in _singles(frame) for e in s.receive(one, NOW).events]
        assert split == whole.events
        assert s.receive(encrypted(frame), NOW).events == whole.events
        assert s.receive(_grown(frame), NOW).events == whole.events
        assert s.receive(frame.encode(), NOW).events == whole.events


def test_the_recorded_session_decodes_with_its_malformed_frames_counted() -> None:
    s = KisSession(SecretStr("k"), DAY)
    outs = [s.receive(f, NOW) for f in FRAMES]
    quarantined = [q for o in outs for q in o.quarantined]
    assert sum(len(o.events) for o in outs) >= 3 * len(CLEAN) // 2
    assert quarantined and s.counters.total() == len(quarantined)
    assert all(q.reason != "internal_error" for q in quarantined)
    assert {a.code for o in outs for a in o.acks} >= {
        "OPSP0000", "OPSP0001", "OPSP0002", "OPSP0003", "OPSP0008", "OPSP0011", "OPSP8991",
    }  # fmt: skip
    assert any(c.code == wire.TR_PINGPONG for o in outs for c in o.controls)


def test_numbers_past_bigint_are_quarantined_not_passed_on() -> None:
    """Regression (fuzz): a price of 10**19 decoded into a Trade that PostgreSQL's BIGINT
    refuses (the whole stream entry then fails) and 10**20 made the stream encoding raise
    in the collector's batcher. Such a record is now quarantined on its own."""
    trades = next(f for f in CLEAN if f.split("|")[1] == wire.TR_TRADES)
    books = next(f for f in CLEAN if f.split("|")[1] == wire.TR_BOOK)
    cases = [
        (trades, wire.H0STCNT0_COLUMNS.index("STCK_PRPR"), "9" * 19, "bad_price"),
        (trades, wire.H0STCNT0_COLUMNS.index("ACML_VOL"), str(2**63), "bad_number"),
        (books, wire.H0STASP0_COLUMNS.index("ASKP1"), "1" + "0" * 20, "bad_price"),
        (books, wire.H0STASP0_COLUMNS.index("BIDP_RSQN1"), str(2**64), "bad_number"),
        (books, wire.H0STASP0_COLUMNS.index("TOTAL_BIDP_RSQN"), str(2**63), "bad_number"),
    ]
    for frame, column, value, reason in cases:
        (record, *_) = _singles(frame)
        fields = record.split("|", 3)[3].split("^")
        fields[column] = value
        out = session().receive(record[: record.rindex("|") + 1] + "^".join(fields), NOW)
        assert out.events == [] and [q.reason for q in out.quarantined] == [reason], value
