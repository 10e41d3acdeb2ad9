"""Every REST parser and client against the recorded REST corpus, mutated: KIS tokenP /
Approval, FHPST01060000 / FHKST03010200 / FHKST03010230 pages; Kiwoom au10001, ka10079 /
ka10080 pages with their ``cont-yn``/``next-key`` headers; every recorded error body.

Properties: the pure parsers raise nothing but :class:`DecodeError` (the expiry parsers:
:class:`AuthError`) and every row they return is tz-aware with numbers PostgreSQL's BIGINT
holds; the clients, fed the mutated bodies through an ``httpx.MockTransport`` with any status
and paging headers, raise nothing outside their documented errors, and no error message
carries the app secret or the token; a recorded page parses to the same rows however it is
re-serialised.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any

import httpx
import pytest
from fuzz_support import FUZZ, INT64_MAX, mutate, rest_bodies
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from tickguard.brokers.kis import rest as kis
from tickguard.brokers.kiwoom import rest as kw
from tickguard.errors import (
    AuthError,
    DecodeError,
    ProtocolError,
    RateLimitedError,
    TickguardError,
)
from tickguard.settings import AppCredential, KisSettings

DAY = date(2026, 11, 26)
KIS = rest_bodies("kis")
KIWOOM = rest_bodies("kiwoom")
SECRET, TOKEN = "FUZZ-APP-SECRET-7f3a", "FUZZ-BEARER-TOKEN-91c2"
CREDENTIAL = AppCredential(name="fuzz", app_key=SecretStr("FUZZ-APP-KEY"),
                           app_secret=SecretStr(SECRET))  # fmt: skip
REJECTED: Counter[str] = Counter()
"""Rejections by error type and reason over the run (printed with ``-s``)."""


def _bodies(corpus: list[dict[str, Any]], *names: str) -> list[str]:
    return [r["body"] for r in corpus if any(r["name"].startswith(n) for n in names)]


def _doc(raw: str | bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _check_rows(rows: list[Any]) -> None:
    for row in rows:
        stamp = getattr(row, "ts", None) or row.minute
        assert stamp.utcoffset() is not None
        for name in ("price", "qty", "cum_volume", "open", "high", "low", "close", "volume"):
            value = getattr(row, name, 0)
            assert isinstance(value, int) and 0 <= value <= INT64_MAX, (name, value)


PARSERS: dict[str, tuple[list[str], Callable[[dict[str, Any]], list[Any]]]] = {
    "kis_ticks": (_bodies(KIS, "ticks"), lambda d: kis.parse_tick_rows(d, DAY)),
    "kis_bars": (_bodies(KIS, "today_bars", "daily_bars", "ticks_"), kis.parse_bar_rows),
    "kw_ticks": (_bodies(KIWOOM, "ka10079"), kw.parse_tick_chart),
    "kw_bars": (_bodies(KIWOOM, "ka10080", "ka10079_bad"), kw.parse_minute_chart),
}


@FUZZ
@given(data=st.data(), parser=st.sampled_from(sorted(PARSERS)))
def test_parsers_raise_only_decode_error_and_pass_on_only_storable_rows(
    data: st.DataObject, parser: str
) -> None:
    corpus, parse = PARSERS[parser]
    doc = _doc(mutate(data, corpus))
    if doc is None:
        return  # the clients refuse a body that is not a JSON object (next test)
    try:
        rows = parse(doc)
    except DecodeError as exc:
        REJECTED[f"{parser}:{exc.reason}"] += 1
        assert exc.reason
        return
    _check_rows(rows)


@FUZZ
@given(raw=st.one_of(st.none(), st.integers(), st.text(max_size=20),
                     st.sampled_from(["2026-11-27 09:00:00", "20261127090000", "٢٠٢٦١١٢٧٠٩٠٠٠٠",
                                      "2026-02-30 09:00:00", "20261327090000"])))  # fmt: skip
def test_expiry_parsers_raise_only_auth_error(raw: object) -> None:
    for parse in (kis.parse_expiry, kw.parse_expires_dt):
        try:
            assert parse(raw).utcoffset() is not None
        except AuthError:
            REJECTED[f"expiry:{parse.__name__}"] += 1


def _transport(body: str | bytes, status: int, headers: dict[str, str]) -> httpx.MockTransport:
    content = body.encode("utf-8") if isinstance(body, str) else body

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers=headers)

    return httpx.MockTransport(answer)


Call = Callable[[httpx.AsyncClient], Coroutine[Any, Any, Any]]
_KIS_SETTINGS = KisSettings(rest_url="http://kis.test")
_TOKEN = SecretStr(TOKEN)
CALLS: dict[str, tuple[list[dict[str, Any]], Call, tuple[type[Exception], ...]]] = {
    "kis_token": (KIS, lambda h: kis.KisRestClient(h, _KIS_SETTINGS).issue_token(CREDENTIAL),
                  (AuthError, RateLimitedError)),
    "kis_approval": (KIS, lambda h: kis.KisRestClient(h, _KIS_SETTINGS).issue_approval_key(
        CREDENTIAL), (AuthError, RateLimitedError)),
    "kis_ticks": (KIS, lambda h: kis.KisQuotations(h, _KIS_SETTINGS).ticks(
        _TOKEN, CREDENTIAL, "005930", DAY, "090100"),
        (ProtocolError, AuthError, RateLimitedError, DecodeError)),
    "kis_daily_bars": (KIS, lambda h: kis.KisQuotations(h, _KIS_SETTINGS).daily_bars(
        _TOKEN, CREDENTIAL, "005930", DAY, "090100"),
        (ProtocolError, AuthError, RateLimitedError, DecodeError)),
    "kw_token": (KIWOOM, lambda h: kw.KiwoomRest(h, "http://kw.test").issue_token(CREDENTIAL),
                 (AuthError, RateLimitedError)),
    "kw_ticks": (KIWOOM, lambda h: _kw_all_pages(h, kw.TICK_CHART, kw.parse_tick_chart),
                 (ProtocolError, AuthError, RateLimitedError, DecodeError)),
    "kw_bars": (KIWOOM, lambda h: _kw_all_pages(h, kw.MINUTE_CHART, kw.parse_minute_chart),
                (ProtocolError, AuthError, RateLimitedError, DecodeError)),
}  # fmt: skip


async def _kw_all_pages(http: httpx.AsyncClient, api_id: str, parse: Any) -> list[Any]:
    """Follow pages as the backfill does (bounded: a server that never stops is an error)."""
    client, rows = kw.KiwoomRest(http, "http://kw.test"), []
    async for page in client.pages(kw.CHART_PATH, api_id, kw.chart_body("005930"), _TOKEN, 5):
        rows.extend(parse(page.body))
    return rows


_HEADERS = st.fixed_dictionaries({}, optional={
    "cont-yn": st.sampled_from(["Y", "N", "y", "", "YES"]),
    "next-key": st.sampled_from(["", "abc:40", "\x7f", "x" * 300]),
})  # fmt: skip


@FUZZ
@given(data=st.data(), call=st.sampled_from(sorted(CALLS)))
def test_clients_raise_only_their_documented_errors(data: st.DataObject, call: str) -> None:
    corpus, run, allowed = CALLS[call]
    record = data.draw(st.sampled_from(corpus), label="record")
    body = mutate(data, [record["body"]]) if data.draw(st.booleans()) else record["body"]
    status = data.draw(st.sampled_from([record["status"], 200, 401, 403, 429, 500]))
    headers = {**record["headers"], **data.draw(_HEADERS, label="headers")}

    async def go() -> Any:
        async with httpx.AsyncClient(transport=_transport(body, status, headers)) as http:
            return await run(http)

    try:
        result = asyncio.run(go())
    except TickguardError as exc:
        assert isinstance(exc, allowed), (call, type(exc), exc)
        assert SECRET not in str(exc) and TOKEN not in str(exc)
        REJECTED[f"{call}:{type(exc).__name__}"] += 1
        return
    if isinstance(result, list):
        _check_rows(result)


@pytest.mark.parametrize("name", ["ticks_page", "today_bars_page", "daily_bars_page"])
def test_recorded_kis_pages_round_trip_to_the_same_rows(name: str) -> None:
    pages = [json.loads(b) for b in _bodies(KIS, name)]
    assert pages
    parse: Callable[[dict[str, Any]], list[Any]] = kis.parse_bar_rows
    if name == "ticks_page":
        parse = lambda d: kis.parse_tick_rows(d, DAY)  # noqa: E731
    for doc in pages:
        rows = parse(doc)
        assert len(rows) == len(doc.get("output2") or [])
        assert parse(json.loads(json.dumps(doc, indent=2, ensure_ascii=True))) == rows
        singles = [r for row in doc["output2"] for r in parse({**doc, "output2": [row]})]
        assert singles == rows
        _check_rows(rows)
        if name == "ticks_page":  # newest first: each trade's volume is the step of the sum
            ticks = [r for r in rows if isinstance(r, kis.KisTickRow)]
            for newer, older in itertools.pairwise(ticks):
                assert newer.cum_volume - newer.qty == older.cum_volume


@pytest.mark.parametrize("api_id", [kw.TICK_CHART, kw.MINUTE_CHART])
def test_recorded_kiwoom_pages_round_trip_to_the_same_rows(api_id: str) -> None:
    parse = kw.parse_tick_chart if api_id == kw.TICK_CHART else kw.parse_minute_chart
    list_name = "stk_tic_chart_qry" if api_id == kw.TICK_CHART else "stk_min_pole_chart_qry"
    pages = [json.loads(b) for b in _bodies(KIWOOM, f"{api_id}_page")]
    assert pages
    for doc in pages:
        rows = parse(doc)
        assert rows and len(rows) == len(doc[list_name])
        assert parse(json.loads(json.dumps(doc, indent=1, ensure_ascii=True))) == rows
        _check_rows(rows)


def test_every_recorded_answer_goes_through_its_client() -> None:
    """Unmutated, each recorded answer is either a result or one documented error."""
    outcomes: Counter[str] = Counter()
    for call, (corpus, run, allowed) in CALLS.items():
        for record in corpus:
            transport = _transport(record["body"], record["status"], record["headers"])

            async def go(t: httpx.MockTransport = transport, r: Call = run) -> Any:
                async with httpx.AsyncClient(transport=t) as http:
                    return await r(http)

            try:
                asyncio.run(go())
                outcomes[f"{call}:ok"] += 1
            except allowed as exc:
                outcomes[f"{call}:{type(exc).__name__}"] += 1
    assert {"kis_token:ok", "kis_token:RateLimitedError", "kis_token:AuthError",
            "kis_approval:ok", "kis_ticks:ok", "kis_ticks:AuthError",
            "kis_ticks:RateLimitedError", "kis_ticks:ProtocolError", "kw_token:ok",
            "kw_token:AuthError", "kw_ticks:ok", "kw_ticks:RateLimitedError",
            "kw_ticks:AuthError", "kw_bars:ok"} <= set(outcomes), outcomes  # fmt: skip


def test_rest_numbers_past_bigint_are_decode_errors() -> None:
    """Regression (fuzz): a history row with a number past BIGINT parsed into a row the
    writer then failed on (the symbol's whole backfill with it); now the page is refused."""
    tick_page = json.loads(_bodies(KIS, "ticks_page")[0])
    bar_page = json.loads(_bodies(KIS, "today_bars_page")[0])
    kw_page = json.loads(_bodies(KIWOOM, "ka10080_page")[0])
    huge = str(2**63)
    tick_page["output2"][0]["acml_vol"] = huge
    bar_page["output2"][0]["stck_prpr"] = "-" + huge
    kw_page["stk_min_pole_chart_qry"][0]["acc_trde_qty"] = huge
    for parse, doc in (
        (lambda d: kis.parse_tick_rows(d, DAY), tick_page),
        (kis.parse_bar_rows, bar_page),
        (kw.parse_minute_chart, kw_page),
    ):
        with pytest.raises(DecodeError, match="out of range"):
            parse(doc)
