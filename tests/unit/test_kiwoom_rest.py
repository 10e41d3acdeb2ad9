"""Kiwoom REST client: request shape and error translation, at the httpx transport seam."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from tickguard.brokers.kiwoom.rest import KiwoomRest, parse_expires_dt
from tickguard.brokers.kiwoom.traits import KiwoomTraits
from tickguard.errors import AuthError, ProtocolError, RateLimitedError
from tickguard.models import KST, Broker
from tickguard.settings import AppCredential, load_settings

DATA = Path(__file__).parents[1] / "data" / "kiwoom"
CRED = AppCredential(name="k1", app_key=SecretStr("AK"), app_secret=SecretStr("SK"))
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def official_token(request: httpx.Request) -> httpx.Response:
    assert request.url.path == "/oauth2/token" and request.headers["api-id"] == "au10001"
    assert json.loads(request.content) == {
        "grant_type": "client_credentials",
        "appkey": "AK",
        "secretkey": "SK",
    }
    return httpx.Response(200, content=(DATA / "token_au10001.json").read_bytes())


async def test_token_from_official_example_expires_in_kst() -> None:
    async with client(official_token) as http:
        token = await KiwoomRest(http, "http://kw.test/").issue_token(CRED)
    assert token.token.get_secret_value() == "WQJCwyqInphKnR3bSRtB9NE1lv"
    assert token.expires_at == datetime(2024, 11, 7, 8, 37, 13, tzinfo=KST)
    assert token.expires_at == datetime(2024, 11, 6, 23, 37, 13, tzinfo=UTC)
    assert "WQJC" not in repr(token)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            200,
            {"return_code": 1700, "return_msg": "허용된 요청 개수를 초과하였습니다"},
            RateLimitedError,
        ),
        (200, {"return_code": 8001, "return_msg": "App Key와 Secret Key 검증에 실패"}, AuthError),
        (200, {"return_code": 0, "return_msg": "ok"}, AuthError),  # no token
        (200, {"return_code": 0, "token": "t", "expires_dt": "2024-11-07"}, AuthError),
        (500, "<html>oops</html>", AuthError),
    ],
)
async def test_token_failures_translate(status: int, body: object, error: type[Exception]) -> None:
    content = json.dumps(body) if isinstance(body, dict) else str(body)
    async with client(lambda _r: httpx.Response(status, content=content)) as http:
        with pytest.raises(error):
            await KiwoomRest(http, "http://kw.test").issue_token(CRED)


async def test_token_transport_failure_is_auth_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with client(refuse) as http:
        with pytest.raises(AuthError) as info:
            await KiwoomRest(http, "http://kw.test").issue_token(CRED)
    assert "SK" not in str(info.value)


async def test_paging_follows_cont_yn_and_next_key() -> None:
    seen: list[tuple[str | None, str | None]] = []

    def chart(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer TOK"
        assert request.headers["api-id"] == "ka10079"
        seen.append((request.headers.get("cont-yn"), request.headers.get("next-key")))
        page = len(seen)
        headers = {"cont-yn": "Y", "next-key": f"k{page}"} if page < 3 else {"cont-yn": "N"}
        return httpx.Response(200, headers=headers, json={"return_code": 0, "n": page})

    async with client(chart) as http:
        rest = KiwoomRest(http, "http://kw.test")
        pages = [p async for p in rest.pages("/api/dostk/chart", "ka10079", {}, SecretStr("TOK"))]
    assert [p.body["n"] for p in pages] == [1, 2, 3]
    assert seen == [(None, None), ("Y", "k1"), ("Y", "k2")]


async def test_call_errors_translate() -> None:
    answers = iter(
        [
            httpx.Response(200, json={"return_code": 1700, "return_msg": "API ID=ka10080"}),
            httpx.Response(
                200, json={"return_code": 8005, "return_msg": "Token이 유효하지 않습니다"}
            ),
            httpx.Response(200, json={"return_code": 1902, "return_msg": "종목 정보가 없습니다"}),
            httpx.Response(429, text="slow down"),
        ]
    )
    async with client(lambda _r: next(answers)) as http:
        rest = KiwoomRest(http, "http://kw.test")
        for error in (RateLimitedError, AuthError, ProtocolError, RateLimitedError):
            with pytest.raises(error):
                await rest.call("/api/dostk/chart", "ka10080", {}, SecretStr("T"))


def test_parse_expires_dt_rejects_garbage() -> None:
    assert parse_expires_dt("20260319153000").utcoffset() is not None
    for raw in ("2026031915300", "20261319153000", None, 20260319153000):
        with pytest.raises(AuthError):
            parse_expires_dt(raw)


async def test_traits_authorize_and_session() -> None:
    settings = load_settings(kiwoom={"rest_url": "http://kw.test", "apps": [CRED]})
    traits = KiwoomTraits()
    assert traits.broker is Broker.KIWOOM
    assert traits.max_registrations(settings) == settings.kiwoom.max_registrations
    assert traits.ws_url(settings) == settings.kiwoom.ws_url
    async with client(official_token) as http:
        (cred,) = traits.credentials(settings)
        token = await traits.authorize(http, settings, cred)
    session = traits.new_session(token, date(2026, 3, 19), settings)
    assert json.loads(session.handshake()[0]) == {"trnm": "LOGIN", "token": token}
