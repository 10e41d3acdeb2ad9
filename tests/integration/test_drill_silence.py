"""The simulator's silence is in the ground truth while it lasts (a drill is judged when the
collector stops, possibly mid-silence)."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path

from tickguard.sim.faults import FaultSchedule
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.market import MarketConfig
from tickguard.sim.truth import TruthReader
from tickguard.sim.universe import default_universe


async def test_a_silence_in_progress_is_already_in_the_truth(tmp_path: Path) -> None:
    cfg = KisSimConfig(
        market=MarketConfig(day=date(2026, 11, 26), symbols=default_universe(1), seed=1),
        truth_dir=tmp_path / "truth",
        faults=FaultSchedule.parse(("silent:30@0.2",), seed=1),
        speed=30.0,
    )
    async with KisSimulator(cfg):
        started = time.time()
        deadline = time.monotonic() + 5.0
        while not (faults := TruthReader(tmp_path / "truth").faults()):
            assert time.monotonic() < deadline, "the silence is not in the truth while it lasts"
            await asyncio.sleep(0.05)
        assert time.time() - started < 5.0
    (fault,) = faults
    assert fault["kind"] == "silent" and fault["detail"]["sessions"] == []
    assert fault["end"] - fault["start"] == 30.0
