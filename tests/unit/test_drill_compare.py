"""The drill judge's reading of the ground truth (hand-written truth, no services)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tickguard.drill.compare import drops_of, drops_without_gap, false_alarms
from tickguard.sim.truth import TruthReader, TruthWriter

T0 = 1_790_000_000.0


def _at(s: float) -> datetime:
    return datetime.fromtimestamp(T0 + s, UTC)


def test_a_silence_with_no_connection_open_drops_nothing(tmp_path: Path) -> None:
    truth = TruthWriter(tmp_path, {"day": "2026-11-26"})
    # The collector was still connecting when the first silence came; it had opened
    # session 1 by the second.
    truth.fault("silent", None, T0 + 10, T0 + 22, sessions=[])
    truth.session_event(1, "open")
    truth.fault("silent", None, T0 + 50, T0 + 62, sessions=[1])
    truth.close({})
    reader = TruthReader(tmp_path)

    drops = [d for d in drops_of(reader) if d.kind == "silent"]

    assert [d.at for d in drops] == [T0 + 50]
    # The collector's watchdog gap for the second silence (last data just before it, data
    # again on the next connection) covers it, and nothing is missed or a false alarm.
    gaps: list[tuple[str, str, datetime, datetime | None]] = [
        ("005930", k, _at(49.8), _at(56.0)) for k in ("trades", "book")
    ]
    subs = {("005930", "trades"), ("005930", "book")}
    assert drops_without_gap(drops, gaps, subs) == 0
    assert false_alarms(drops, gaps) == 0
