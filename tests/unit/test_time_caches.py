"""The codecs' exchange-time caches stay small over a whole session-day.

A cache that kept every distinct second grew each connection by ~31 MB over a day: the
collector's steady soak drift. Time moves forward, so a small cache of recent seconds hits
just as well; these tests drive a day's worth of distinct seconds through each cache and
bound both its size and the memory it holds, and check it still answers correctly.
"""

from __future__ import annotations

import tracemalloc
from datetime import UTC, date, datetime

from pydantic import SecretStr

from tickguard.brokers import TIME_CACHE_ENTRIES
from tickguard.brokers.kis import wire
from tickguard.brokers.kis.codec import KisSession
from tickguard.brokers.kis.records import KstTimes
from tickguard.brokers.kiwoom.wire import TimeCache
from tickguard.models import KST, Trade

DAY = date(2026, 6, 12)
SESSION_SECONDS = range(9 * 3600, 15 * 3600 + 30 * 60)
"""09:00:00 to 15:29:59, one record per second: 23,400 distinct seconds."""


def _hhmmss(s: int) -> str:
    return f"{s // 3600:02d}{s % 3600 // 60:02d}{s % 60:02d}"


def _kept_bytes(drive: object) -> int:
    """Bytes still allocated after ``drive()`` returned (what the caches kept)."""
    assert callable(drive)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        drive()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_kst_times_keeps_only_recent_seconds_over_a_session_day() -> None:
    times = KstTimes()
    day_text = DAY.strftime("%Y%m%d")

    def drive() -> None:
        for s in SESSION_SECONDS:
            text = _hhmmss(s)
            assert times.stamp(day_text, text)[1] == times.at(DAY, text)

    kept = _kept_bytes(drive)
    assert kept < 1_000_000, f"KstTimes kept {kept} B after a session-day"
    assert times.at(DAY, "152959") == datetime(2026, 6, 12, 15, 29, 59, tzinfo=KST)
    assert times.stamp(day_text, "090000") == (DAY, datetime(2026, 6, 12, 9, tzinfo=KST))


def test_kiwoom_time_cache_keeps_only_recent_seconds_over_a_session_day() -> None:
    cache = TimeCache(DAY)

    def drive() -> None:
        for s in SESSION_SECONDS:
            cache.at(_hhmmss(s))

    kept = _kept_bytes(drive)
    assert kept < 500_000, f"TimeCache kept {kept} B after a session-day"
    assert len(cache._cache) <= TIME_CACHE_ENTRIES
    assert cache.at("090001") == datetime(2026, 6, 12, 9, 0, 1, tzinfo=KST)


def test_kis_session_memory_is_flat_across_a_day_of_distinct_seconds() -> None:
    """Through the codec: 23,400 one-trade frames, each at a new second."""
    session = KisSession(SecretStr("approval"), DAY)
    template = ["0"] * len(wire.H0STCNT0_COLUMNS)
    cols = {name: i for i, name in enumerate(wire.H0STCNT0_COLUMNS)}
    template[cols["MKSC_SHRN_ISCD"]] = "005930"
    template[cols["BSOP_DATE"]] = DAY.strftime("%Y%m%d")
    template[cols["STCK_PRPR"]] = "71900"
    template[cols["CCLD_DVSN"]] = "1"
    received = datetime(2026, 6, 12, 0, 0, tzinfo=UTC)
    last: list[Trade] = []

    def drive() -> None:
        for n, s in enumerate(SESSION_SECONDS, start=1):
            fields = list(template)
            fields[cols["STCK_CNTG_HOUR"]] = _hhmmss(s)
            fields[cols["CNTG_VOL"]] = "1"
            fields[cols["ACML_VOL"]] = str(n)
            out = session.receive(f"0|{wire.TR_TRADES}|001|" + "^".join(fields), received)
            assert len(out.events) == 1 and not out.quarantined
            event = out.events[0]
            assert isinstance(event, Trade)
            last[:] = [event]

    kept = _kept_bytes(drive)
    assert kept < 1_000_000, f"a KIS session kept {kept} B after a session-day"
    assert last[0].ts == datetime(2026, 6, 12, 15, 29, 59, tzinfo=KST)
    assert last[0].cum_volume == len(SESSION_SECONDS)
