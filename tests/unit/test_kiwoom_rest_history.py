"""Kiwoom ka10079/ka10080 parsers: sign-prefixed prices, KST times, malformed rows."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tickguard.brokers.kiwoom.rest import chart_body, parse_minute_chart, parse_tick_chart
from tickguard.errors import DecodeError
from tickguard.models import KST


def test_tick_chart_rows() -> None:
    body = {"stk_tic_chart_qry": [
        {"cur_prc": "-78800", "trde_qty": "12", "cntr_tm": "20260119090101"},
        {"cur_prc": "+79000", "trde_qty": "3", "cntr_tm": "20260119090100"},
    ]}  # fmt: skip
    rows = parse_tick_chart(body)
    assert [(r.price, r.qty) for r in rows] == [(78800, 12), (79000, 3)]
    assert rows[1].ts == datetime(2026, 1, 19, 9, 1, tzinfo=KST)


def test_minute_chart_rows() -> None:
    row = {"cur_prc": "-100", "trde_qty": "7", "cntr_tm": "20260119090200", "open_pric": "+101",
           "high_pric": "+102", "low_pric": "-99", "acc_trde_qty": "1007"}  # fmt: skip
    (bar,) = parse_minute_chart({"stk_min_pole_chart_qry": [row]})
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.cum_volume) == (
        101, 102, 99, 100, 7, 1007)  # fmt: skip


@pytest.mark.parametrize("bad", [{"cntr_tm": "2026011909"}, {"trde_qty": "x"}])
def test_malformed_rows_raise(bad: dict[str, str]) -> None:
    row = {"cur_prc": "1", "trde_qty": "1", "cntr_tm": "20260119090100", **bad}
    with pytest.raises(DecodeError):
        parse_tick_chart({"stk_tic_chart_qry": [row]})


def test_chart_body() -> None:
    assert chart_body("005930") == {"stk_cd": "005930", "tic_scope": "1", "upd_stkpc_tp": "0"}
    assert chart_body("005930", 1, date(2026, 1, 19))["base_dt"] == "20260119"
