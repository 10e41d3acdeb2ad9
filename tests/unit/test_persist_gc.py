"""persist's collector settings apply while a persist runs and are given back afterwards."""

from __future__ import annotations

import gc

from tickguard.sinks.persist import GC_THRESHOLDS, _batch_gc


def test_thresholds_and_freeze_last_while_any_persist_runs() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with _batch_gc():
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > frozen_before
        with _batch_gc():  # a second persist in the same process (drills)
            assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_settings_come_back_after_an_error() -> None:
    before = gc.get_threshold()
    try:
        with _batch_gc():
            raise RuntimeError("writer failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
