"""KIS backfill endpoints: pure parsers and the error mapping of KisQuotations (MockTransport)."""

from __future__ import annotations

from datetime import date, datetime

import httpx
import pytest
from pydantic import SecretStr

from tickguard.brokers.kis.rest import (
    TICKS_PATH,
    KisQuotations,
    parse_bar_rows,
    parse_tick_rows,
)
from tickguard.errors import AuthError, DecodeError, ProtocolError, RateLimitedError
from tickguard.models import KST
from tickguard.settings import AppCredential, KisSettings

DAY = date(2026, 1, 19)
CRED = AppCredential(name="a", app_key=SecretStr("k"), app_secret=SecretStr("s"))


def test_tick_rows_accept_either_price_field_and_keep_order() -> None:
    doc = {"output2": [
        {"stck_cntg_hour": "090102", "stck_pbpr": "70100", "cnqn": "5", "acml_vol": "1005"},
        {"stck_cntg_hour": "090101", "stck_prpr": "-70000", "cnqn": "3", "acml_vol": "1000"},
    ]}  # fmt: skip
    rows = parse_tick_rows(doc, DAY)
    assert [(r.price, r.qty, r.cum_volume) for r in rows] == [(70100, 5, 1005), (70000, 3, 1000)]
    assert rows[0].ts == datetime(2026, 1, 19, 9, 1, 2, tzinfo=KST)


def test_bar_rows_and_malformed_rows() -> None:
    row = {"stck_bsop_date": "20260119", "stck_cntg_hour": "090100", "stck_prpr": "10",
           "stck_oprc": "9", "stck_hgpr": "11", "stck_lwpr": "8", "cntg_vol": "77"}  # fmt: skip
    (bar,) = parse_bar_rows({"output2": [row]})
    assert (bar.minute, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        datetime(2026, 1, 19, 9, 1, tzinfo=KST), 9, 11, 8, 10, 77)  # fmt: skip
    with pytest.raises(DecodeError):
        parse_bar_rows({"output2": [{**row, "cntg_vol": "many"}]})
    with pytest.raises(DecodeError):
        parse_tick_rows({"output2": "nope"}, DAY)
    assert parse_tick_rows({"rt_cd": "0"}, DAY) == []


def _client(status: int, body: dict[str, object]) -> tuple[KisQuotations, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return KisQuotations(http, KisSettings(rest_url="http://kis.test")), seen


async def test_headers_and_time_cursor() -> None:
    api, seen = _client(200, {"rt_cd": "0", "output2": []})
    assert await api.ticks(SecretStr("tok"), CRED, "005930", DAY, "153000") == []
    (req,) = seen
    assert req.url.path == TICKS_PATH
    assert req.url.params["FID_INPUT_HOUR_1"] == "153000"
    assert req.headers["tr_id"] == "FHPST01060000"
    assert req.headers["authorization"] == "Bearer tok"


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(500, "EGW00201", RateLimitedError), (200, "EGW00201", RateLimitedError),
     (500, "EGW00123", AuthError), (500, "OPCODE", ProtocolError)],
)  # fmt: skip
async def test_error_mapping(status: int, code: str, error: type[Exception]) -> None:
    api, _ = _client(status, {"rt_cd": "1", "msg_cd": code, "msg1": "x"})
    with pytest.raises(error):
        await api.today_bars(SecretStr("tok"), CRED, "005930", "153000")
