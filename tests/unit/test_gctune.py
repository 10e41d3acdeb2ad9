"""The hot loops' GC settings apply while any runs and are given back afterwards."""

from __future__ import annotations

import gc

from tickguard.gctune import THRESHOLDS, hot_path_gc


def test_thresholds_and_freeze_last_while_any_hot_loop_runs() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with hot_path_gc():
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() > frozen_before
        with hot_path_gc():  # a second loop in the same process (drills)
            assert gc.get_threshold() == THRESHOLDS
        assert gc.get_threshold() == THRESHOLDS
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_settings_come_back_after_an_error() -> None:
    before = gc.get_threshold()
    try:
        with hot_path_gc():
            raise RuntimeError("writer failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
