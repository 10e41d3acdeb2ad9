"""Shared pieces of the corpus fuzz tests (``test_fuzz_*.py``): the recorded corpus, the
mutations applied to it, the hypothesis profile, and the checks every decoded event must pass.

The corpus is ``tests/data/corpus/`` (recorded by ``python -m tickguard.sim.corpus``). A
mutation takes one recorded input and breaks it the way wires and brokers break things:
cut short, a bit flipped, a field inserted or deleted, a wrong count, bad UTF-8, a huge or
non-ASCII number, an empty frame, a NUL. ``TICKGUARD_FUZZ_EXAMPLES`` sets how many examples
each property runs (CI default below; raise it to fuzz deeper locally); runs are
derandomized and keep no example database, so CI is repeatable.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tickguard.models import Batch, BookSnapshot, Trade
from tickguard.sinks.encoding import decode_batch, encode_batch

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
NOW = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)
INT64_MAX = 2**63 - 1
EXAMPLES = int(os.environ.get("TICKGUARD_FUZZ_EXAMPLES", "200"))

FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def ws_frames(broker: str) -> list[str]:
    lines = (CORPUS / broker / "ws.jsonl").read_text(encoding="utf-8").splitlines()
    return [str(json.loads(line)["frame"]) for line in lines if line]


def rest_bodies(broker: str) -> list[dict[str, Any]]:
    lines = (CORPUS / broker / "rest.jsonl").read_text(encoding="utf-8").splitlines()
    return [dict(json.loads(line)) for line in lines if line]


# -- mutations -------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?\d+")
HUGE = ("9" * 19, "9223372036854775808", "-9223372036854775809", "1" + "0" * 40, "9" * 5000)
ODD_NUMBERS = ("١٢٣", "１２３", "1_000", " 12", "12 ", "+0", "-0", "0x1F", "1e3", "²", "", "NaN")
ODD_TEXT = ("\x00", "\ufffd", "\u2028", "^", "|", '"', "\\", "{", "}", "[", "]", ",", ":", "null")
BAD_UTF8 = (b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80")

Mutation = Callable[[st.DataObject, str], "str | bytes"]


def _at(data: st.DataObject, text: str) -> int:
    return data.draw(st.integers(0, len(text)), label="at")


def truncate(data: st.DataObject, text: str) -> str:
    return text[: _at(data, text)]


def bit_flip(data: st.DataObject, text: str) -> bytes:
    raw = bytearray(text.encode("utf-8", "surrogateescape"))
    if not raw:
        return b"\x80"
    for _ in range(data.draw(st.integers(1, 3), label="flips")):
        i = data.draw(st.integers(0, len(raw) - 1), label="byte")
        raw[i] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    return bytes(raw)


def bad_utf8(data: st.DataObject, text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    i = data.draw(st.integers(0, len(raw)), label="at")
    return raw[:i] + data.draw(st.sampled_from(BAD_UTF8), label="bytes") + raw[i:]


def insert_text(data: st.DataObject, text: str) -> str:
    i = _at(data, text)
    piece = data.draw(st.sampled_from(ODD_TEXT) | st.text(max_size=6), label="piece")
    return text[:i] + piece + text[i:]


def _split_fields(text: str) -> tuple[str, list[str]] | None:
    """(separator, fields) of a KIS data payload or a JSON text's comma-separated parts."""
    sep = "^" if "^" in text else "," if "," in text else "|" if "|" in text else None
    return None if sep is None else (sep, text.split(sep))


def field_delete(data: st.DataObject, text: str) -> str:
    split = _split_fields(text)
    if split is None:
        return truncate(data, text)
    sep, fields = split
    del fields[data.draw(st.integers(0, len(fields) - 1), label="field")]
    return sep.join(fields)


def field_insert(data: st.DataObject, text: str) -> str:
    split = _split_fields(text)
    if split is None:
        return insert_text(data, text)
    sep, fields = split
    i = data.draw(st.integers(0, len(fields)), label="field")
    fields.insert(i, data.draw(st.sampled_from((*ODD_NUMBERS, *ODD_TEXT, "0", "x")), label="v"))
    return sep.join(fields)


def wrong_count(data: st.DataObject, text: str) -> str:
    """KIS: replace the record count; JSON: duplicate or drop a ``data`` entry."""
    parts = text.split("|", 3)
    if len(parts) == 4:
        parts[2] = data.draw(st.sampled_from(("000", "002", "999", "-01", "", "1e3", "٣")))
        return "|".join(parts)
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if isinstance(doc, dict) and isinstance(doc.get("data"), list) and doc["data"]:
        doc["data"] = doc["data"] * 2 if data.draw(st.booleans()) else doc["data"][1:]
    return json.dumps(doc, ensure_ascii=False)


def number_swap(data: st.DataObject, text: str) -> str:
    """One number in the text replaced by a huge, negative or non-ASCII one."""
    spans = [m.span() for m in _NUMBER.finditer(text) if text[m.end() : m.end() + 2] != '":']
    if not spans:
        return insert_text(data, text)
    start, end = data.draw(st.sampled_from(spans), label="number")
    odd = st.sampled_from((*ODD_NUMBERS, "0", "-1"))
    value = data.draw(st.sampled_from(HUGE) | odd, label="value")  # huge half the time
    return text[:start] + value + text[end:]


def json_value_swap(data: st.DataObject, text: str) -> str:
    """One value somewhere in a JSON document replaced by another type or an odd string."""
    try:
        doc = json.loads(text)
    except ValueError:
        return number_swap(data, text)
    slots = list(_slots(doc))
    if not slots:
        return text
    parent, key = data.draw(st.sampled_from(slots), label="slot")
    values: list[Any] = [None, True, 0, -1, 1.5, 2**70, [], {}, "", *HUGE[:4], *ODD_NUMBERS]
    choice = st.sampled_from([*values, *ODD_TEXT])
    if data.draw(st.booleans(), label="delete") and isinstance(parent, dict):
        del parent[key]
    else:
        parent[key] = data.draw(choice, label="new")
    return json.dumps(doc, ensure_ascii=data.draw(st.booleans(), label="ascii"))


def _slots(doc: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield doc, key
            yield from _slots(value)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield doc, i
            yield from _slots(value)


def emptied(data: st.DataObject, text: str) -> str | bytes:
    empties: list[str | bytes] = ["", b"", " ", "\x00", "0", "1", "{}", "[]", "null"]
    return data.draw(st.sampled_from(empties))


MUTATIONS: tuple[Mutation, ...] = (
    truncate, bit_flip, bad_utf8, insert_text, field_delete, field_insert, wrong_count,
    number_swap, number_swap, json_value_swap, json_value_swap, emptied,
)  # fmt: skip
"""Number and value swaps twice: they are what reaches the parsers past the framing."""


def mutate(data: st.DataObject, corpus: list[str]) -> str | bytes:
    """A recorded input with one to three mutations applied (bytes stay bytes)."""
    out: str | bytes = data.draw(st.sampled_from(corpus), label="seed")
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        mutation = data.draw(st.sampled_from(MUTATIONS), label="mutation")
        text = out if isinstance(out, str) else out.decode("utf-8", "surrogateescape")
        out = mutation(data, text)
        if isinstance(out, str):
            try:
                out.encode("utf-8")
            except UnicodeEncodeError:  # surrogates from a byte mutation: send the bytes
                out = out.encode("utf-8", "surrogateescape")
    return out


# -- what every decoded event must be -----------------------------------------------------------


def _int64(value: int) -> bool:
    return 0 <= value <= INT64_MAX


def check_events(events: list[Trade | BookSnapshot]) -> None:
    """Every event is one the rest of the pipeline can carry: the stream encoding round-trips
    it unchanged and PostgreSQL's BIGINT columns hold every number."""
    for event in events:
        assert event.ts.utcoffset() is not None
        assert event.symbol.isascii() and 0 < len(event.symbol) <= 12, event.symbol
        if isinstance(event, Trade):
            assert 0 < event.price <= INT64_MAX, event
            assert _int64(event.qty) and _int64(event.cum_volume), event
        else:
            levels = event.asks + event.bids
            assert all(0 < p <= INT64_MAX and _int64(q) for p, q in levels), event
            assert _int64(event.total_ask_qty) and _int64(event.total_bid_qty), event
    trades = [e for e in events if isinstance(e, Trade)]
    books = [e for e in events if isinstance(e, BookSnapshot)]
    back = decode_batch(encode_batch(Batch(trades=trades, books=books)))
    assert back.trades == trades and back.books == books


def restore(raw: str) -> bytes:
    """The bytes a quarantined ``raw`` text stands for (undecodable bytes are kept as
    ``\\xNN`` escapes by the codecs)."""
    return re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw.encode("utf-8"))
