"""Disk spool: order, rotation, deletion only after delivery, cursor, torn records, cap."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.stream.spool import HEADER, Spool, SpoolBusyError


def _spool(path: Path, *, segment: int = 1024, cap: int = 1 << 20) -> Spool:
    return Spool(path, segment_bytes=segment, max_bytes=cap)


def _payload(i: int, size: int = 100) -> bytes:
    return (f"{i:08d}".encode() * (size // 8 + 1))[:size]


def _drain(spool: Spool) -> list[bytes]:
    out = []
    while (record := spool.peek()) is not None:
        out.append(record.payload)
        spool.ack(record)
    return out


def _segments(path: Path) -> list[Path]:
    return sorted(path.glob("*.seg"))


def test_replays_in_order_across_rotated_segments(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    for i in range(30):
        assert spool.append(_payload(i), events=i)
    assert len(_segments(tmp_path)) == 30 * (100 + HEADER.size) // 1024 + 1
    assert all(p.stat().st_size <= 1024 for p in _segments(tmp_path))
    assert not spool.empty
    assert _drain(spool) == [_payload(i) for i in range(30)]
    assert spool.empty and _segments(tmp_path) == []
    assert spool.stats.events_replayed == sum(range(30)) == spool.stats.events_written
    assert spool.stats.bytes == 0


def test_segment_deleted_only_after_its_last_record_is_acked(tmp_path: Path) -> None:
    spool = _spool(tmp_path, segment=250)  # two 112-byte records per segment
    for i in range(4):
        spool.append(_payload(i))
    first = _segments(tmp_path)[0]
    record = spool.peek()
    assert record is not None
    spool.ack(record)
    assert first.exists()
    record = spool.peek()
    assert record is not None and record.payload == _payload(1)
    assert first.exists()  # peeked, not delivered
    spool.ack(record)
    assert not first.exists()


def test_cursor_survives_restart_without_resending_acked(tmp_path: Path) -> None:
    spool = _spool(tmp_path, segment=4096)
    for i in range(10):
        spool.append(_payload(i))
    for _ in range(4):
        record = spool.peek()
        assert record is not None
        spool.ack(record)
    spool.close()  # simulated crash: nothing else flushed

    again = _spool(tmp_path, segment=4096)
    again.append(_payload(10))
    assert _drain(again) == [_payload(i) for i in range(4, 11)]


def test_torn_last_record_is_counted_and_skipped(tmp_path: Path) -> None:
    spool = _spool(tmp_path, segment=1 << 16)
    for i in range(5):
        spool.append(_payload(i))
    spool.close()
    segment = _segments(tmp_path)[0]
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 37])  # crash in the middle of the 5th record

    again = _spool(tmp_path, segment=1 << 16)
    again.append(_payload(99))  # goes to a fresh segment, never after the torn tail
    assert len(_segments(tmp_path)) == 2
    assert _drain(again) == [_payload(i) for i in range(4)] + [_payload(99)]
    assert again.stats.torn_records == 1
    assert _segments(tmp_path) == []


def test_corrupt_payload_detected_by_crc(tmp_path: Path) -> None:
    spool = _spool(tmp_path, segment=1 << 16)
    for i in range(3):
        spool.append(_payload(i))
    spool.close()
    segment = _segments(tmp_path)[0]
    data = bytearray(segment.read_bytes())
    data[2 * (100 + HEADER.size) + HEADER.size + 5] ^= 0xFF  # flip a byte of record 3
    segment.write_bytes(bytes(data))
    again = _spool(tmp_path, segment=1 << 16)
    assert _drain(again) == [_payload(0), _payload(1)]
    assert again.stats.torn_records == 1


def test_cap_overflow_is_counted_not_stored(tmp_path: Path) -> None:
    record = 100 + HEADER.size
    spool = _spool(tmp_path, segment=4 * record, cap=10 * record)
    accepted = [spool.append(_payload(i), events=7) for i in range(25)]
    assert accepted == [True] * 10 + [False] * 15
    assert spool.stats.overflow_batches == 15
    assert spool.stats.overflow_events == 15 * 7
    assert sum(p.stat().st_size for p in _segments(tmp_path)) == 10 * record
    assert _drain(spool) == [_payload(i) for i in range(10)]
    assert spool.append(_payload(50))  # room again once delivered
    assert _drain(spool) == [_payload(50)]


def test_stray_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "notes.seg").write_text("x")
    (tmp_path / "cursor").write_text("garbage")
    spool = _spool(tmp_path)
    assert spool.empty and spool.peek() is None
    spool.append(b"abc")
    assert _drain(spool) == [b"abc"]


def test_second_owner_of_a_spool_directory_is_refused(tmp_path: Path) -> None:
    first = _spool(tmp_path)
    with pytest.raises(SpoolBusyError):
        _spool(tmp_path)
    first.close()
    second = _spool(tmp_path)  # free again once the owner closed it
    second.close()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(0, 300)),
            st.tuples(st.just("deliver"), st.integers(1, 5)),
            st.tuples(st.just("reopen"), st.just(0)),
        ),
        max_size=60,
    )
)
def test_any_sequence_delivers_everything_in_order_exactly_once(ops: list[tuple[str, int]]) -> None:
    """Model check: appends, partial replays and restarts never lose, reorder or repeat."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        spool = _spool(path, segment=512, cap=1 << 20)
        expected: list[bytes] = []
        delivered: list[bytes] = []
        for i, (op, arg) in enumerate(ops):
            if op == "append":
                payload = _payload(i, arg)
                assert spool.append(payload)
                expected.append(payload)
            elif op == "deliver":
                for _ in range(arg):
                    record = spool.peek()
                    if record is None:
                        break
                    delivered.append(record.payload)
                    spool.ack(record)
            else:
                spool.close()
                spool = _spool(path, segment=512, cap=1 << 20)
        delivered += _drain(spool)
        spool.close()
        assert delivered == expected
        assert list(path.glob("*.seg")) == []
