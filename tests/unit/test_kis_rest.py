"""KIS REST auth over an injected httpx client (MockTransport seam): bodies, parsing, errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, datetime

import httpx
import pytest
from pydantic import SecretStr

from tickguard.brokers.kis.codec import KisSession
from tickguard.brokers.kis.rest import KisRestClient
from tickguard.brokers.registry import REGISTRY
from tickguard.errors import AuthError, RateLimitedError
from tickguard.models import KST, Broker
from tickguard.settings import AppCredential, KisSettings, Settings

APP = AppCredential(name="main", app_key=SecretStr("APPKEY-1"), app_secret=SecretStr("SECRET-1"))
BASE = "http://kis.test:9443"
Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_issue_token_sends_credentials_and_parses_kst_expiry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "access_token": "TOKEN-XYZ",
                "token_type": "Bearer",
                "expires_in": 86400,
                "access_token_token_expired": "2023-06-13 09:30:00",
            },
        )

    caplog.set_level(logging.DEBUG, logger="tickguard")
    async with _client(handler) as http:
        token = await KisRestClient(http, KisSettings(rest_url=BASE + "/")).issue_token(APP)
    (request,) = seen
    assert request.method == "POST" and str(request.url) == BASE + "/oauth2/tokenP"
    assert json.loads(request.content) == {
        "grant_type": "client_credentials",
        "appkey": "APPKEY-1",
        "appsecret": "SECRET-1",
    }
    assert token.access_token.get_secret_value() == "TOKEN-XYZ"
    assert token.expires_at == datetime(2023, 6, 13, 9, 30, tzinfo=KST)
    assert "TOKEN-XYZ" not in repr(token)
    for secret in ("TOKEN-XYZ", "APPKEY-1", "SECRET-1"):
        assert secret not in caplog.text


async def test_approval_key_uses_secretkey_field() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/oauth2/Approval"
        body = json.loads(request.content)
        assert body == {
            "grant_type": "client_credentials",
            "appkey": "APPKEY-1",
            "secretkey": "SECRET-1",
        }
        return httpx.Response(200, json={"approval_key": "APPROVAL-1"})

    async with _client(handler) as http:
        key = await KisRestClient(http, KisSettings(rest_url=BASE)).issue_approval_key(APP)
    assert key.get_secret_value() == "APPROVAL-1"


async def test_traits_authorize_and_build_a_session() -> None:
    traits = REGISTRY[Broker.KIS]
    settings = Settings(kis=KisSettings(rest_url=BASE, apps=[APP], max_registrations=41))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"approval_key": "APPROVAL-2"})

    async with _client(handler) as http:
        authorization = await traits.authorize(http, settings, APP)
    assert authorization == "APPROVAL-2"
    assert traits.broker is Broker.KIS
    assert traits.max_registrations(settings) == 41
    assert traits.credentials(settings) == [APP]
    assert traits.ws_url(settings) == settings.kis.ws_url
    session = traits.new_session(authorization, date(2023, 6, 12), settings)
    assert isinstance(session, KisSession)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            403,
            {
                "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
                "error_code": "EGW00133",
            },
        ),
        (500, {"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당 거래건수를 초과하였습니다."}),
        (200, {"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당 거래건수를 초과하였습니다."}),
    ],
)
async def test_rate_limit_codes_raise_rate_limited(status: int, body: dict[str, str]) -> None:
    async with _client(lambda _: httpx.Response(status, json=body)) as http:
        with pytest.raises(RateLimitedError, match=body.get("msg_cd") or body.get("error_code")):
            await KisRestClient(http, KisSettings(rest_url=BASE)).issue_token(APP)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(
            401, json={"error_code": "EGW00103", "error_description": "유효하지 않은 AppKey"}
        ),
        httpx.Response(500, text="<html>gateway</html>"),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json=["a list"]),
        httpx.Response(200, json={"rt_cd": "1", "msg_cd": "EGW00121", "msg1": "invalid"}),
        httpx.Response(200, json={"token_type": "Bearer"}),
        httpx.Response(200, json={"access_token": "T", "access_token_token_expired": "tomorrow"}),
    ],
)
async def test_bad_token_responses_raise_auth_error(response: httpx.Response) -> None:
    async with _client(lambda _: response) as http:
        with pytest.raises(AuthError) as info:
            await KisRestClient(http, KisSettings(rest_url=BASE)).issue_token(APP)
    assert "SECRET-1" not in str(info.value) and "APPKEY-1" not in str(info.value)


async def test_transport_failure_is_translated_with_cause() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with _client(handler) as http:
        with pytest.raises(AuthError) as info:
            await KisRestClient(http, KisSettings(rest_url=BASE)).issue_approval_key(APP)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_missing_approval_key_is_an_auth_error() -> None:
    async with _client(lambda _: httpx.Response(200, json={})) as http:
        with pytest.raises(AuthError, match="approval_key"):
            await KisRestClient(http, KisSettings(rest_url=BASE)).issue_approval_key(APP)


async def test_against_the_simulators_rest_server_on_loopback() -> None:
    """The real HTTP path: uvicorn on an ephemeral port, KIS's token rules, our client."""
    from tickguard.sim.kis_rest import KisAuthority, RestServer, TokenRules, rest_app

    clock = [1_700_000_000.0]
    authority = KisAuthority(
        {"APPKEY-1": SecretStr("SECRET-1")}, TokenRules(), now=lambda: clock[0]
    )
    server = RestServer(rest_app(authority), "127.0.0.1", 0)
    await server.start()
    try:
        settings = KisSettings(rest_url=f"http://127.0.0.1:{server.port}")
        async with httpx.AsyncClient(timeout=5.0) as http:
            client = KisRestClient(http, settings)
            first = await client.issue_token(APP)
            assert first.expires_at.utcoffset() is not None
            assert first.expires_at.timestamp() == clock[0] + 86_400
            with pytest.raises(RateLimitedError, match="EGW00133"):
                await client.issue_token(APP)  # again within a minute
            clock[0] += 120
            again = await client.issue_token(APP)  # within 6 h: the same token
            assert again.access_token.get_secret_value() == first.access_token.get_secret_value()
            approval = await client.issue_approval_key(APP)
            assert authority.app_key_for(approval.get_secret_value()) == "APPKEY-1"
            wrong = AppCredential(
                name="x", app_key=SecretStr("APPKEY-1"), app_secret=SecretStr("no")
            )
            with pytest.raises(AuthError, match="EGW00103"):
                await client.issue_approval_key(wrong)
    finally:
        await server.stop()
