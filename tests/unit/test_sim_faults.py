"""The fault menu parses from the CLI grammar into data, and refuses nonsense clearly."""

from __future__ import annotations

import contextlib
from datetime import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickguard.sim.faults import (
    FaultSchedule,
    FaultSpecError,
    Flap,
    Grow,
    Halt,
    Malformed,
    Silence,
    parse_fault,
)
from tickguard.sim.market import HaltWindow


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("flap:3-5", Flap(3.0, 5.0)),
        ("flap:4", Flap(4.0, 4.0)),
        ("flap:0.2-0.4", Flap(0.2, 0.4)),
        ("silent:8", Silence(8.0, 5.0, None)),
        ("silent:8@20/60", Silence(8.0, 20.0, 60.0)),
        ("malformed:0.01", Malformed(0.01, "inject")),
        ("malformed:0.5,corrupt", Malformed(0.5, "corrupt")),
        ("grow:H0STASP0", Grow("H0STASP0", 0.0, None)),
        ("grow:H0STCNT0@10x5", Grow("H0STCNT0", 10.0, 5)),
        ("halt:005930@10:00-10:30", Halt("005930", time(10, 0), time(10, 30))),
    ],
)
def test_specs_parse_into_data(spec: str, fault: object) -> None:
    assert parse_fault(spec) == fault


@pytest.mark.parametrize(
    "spec",
    [
        "flap",
        "flap:",
        "flap:5-3",
        "flap:0",
        "silent:8@2/5",
        "malformed:2",
        "malformed:0",
        "grow:",
        "halt:005930@10:30-10:00",
        "halt:005930@25:00-26:00",
        "explode:1",
    ],
)
def test_bad_specs_fail_with_the_grammar(spec: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_fault(spec)
    assert spec in str(info.value) or "must" in str(info.value) or "not a time" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_schedule_answers_per_kind() -> None:
    schedule = FaultSchedule.parse(
        ["flap:3-5", "silent:4@1", "malformed:0.1", "grow:H0STASP0", "halt:000660@09:10-09:20"]
    )
    assert schedule.flap() == Flap(3, 5)
    assert schedule.silences() == [Silence(4, 1, None)]
    assert schedule.malformed() == Malformed(0.1)
    assert schedule.grows() == [Grow("H0STASP0")]
    assert schedule.halts() == (HaltWindow("000660", time(9, 10), time(9, 20)),)
    empty = FaultSchedule()
    assert empty.flap() is None and empty.malformed() is None and empty.halts() == ()


_NEAR_GRAMMAR = st.from_regex(
    r"(flap|silent|malformed|grow|halt):[0-9A-Z.@/x,:\-]{0,24}", fullmatch=True
)


@given(st.one_of(st.text(max_size=40), _NEAR_GRAMMAR))
def test_no_input_makes_the_parser_raise_anything_else(spec: str) -> None:
    with contextlib.suppress(FaultSpecError):
        assert parse_fault(spec) is not None
