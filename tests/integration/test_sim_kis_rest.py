"""KIS simulator REST: tokenP and Approval over real HTTP (httpx) on loopback."""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr

from tickguard.models import KST
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.kis_rest import TokenRules
from tickguard.sim.market import MarketConfig
from tickguard.sim.universe import default_universe

DAY = date(2026, 11, 26)


def _config(tmp_path: Path, **kw: object) -> KisSimConfig:
    market = MarketConfig(day=DAY, symbols=default_universe(2), seed=1)
    return KisSimConfig(market=market, truth_dir=tmp_path / "truth", **kw)  # type: ignore[arg-type]


def _token_body(key: str = "APPKEY1", secret: str = "SECRET1") -> dict[str, str]:
    return {"grant_type": "client_credentials", "appkey": key, "appsecret": secret}


async def test_token_then_egw00133_within_a_minute(tmp_path: Path) -> None:
    async with (
        KisSimulator(_config(tmp_path)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url) as http,
    ):
        first = await http.post("/oauth2/tokenP", json=_token_body())
        assert first.status_code == 200
        body = first.json()
        assert set(body) == {
            "access_token",
            "access_token_token_expired",
            "token_type",
            "expires_in",
        }
        assert body["token_type"] == "Bearer" and body["expires_in"] == 86_400
        expired = datetime.strptime(body["access_token_token_expired"], "%Y-%m-%d %H:%M:%S")
        in_a_day = datetime.now(KST).replace(tzinfo=None) + timedelta(days=1)
        assert abs((expired - in_a_day).total_seconds()) < 60, "expiry is KST wall time"

        again = await http.post("/oauth2/tokenP", json=_token_body())
        assert again.status_code == 403
        assert again.json()["error_code"] == "EGW00133"
        other_key = await http.post("/oauth2/tokenP", json=_token_body("APPKEY2"))
        assert other_key.status_code == 200, "the limit is per app key"


async def test_same_token_within_six_hours(tmp_path: Path) -> None:
    rules = TokenRules(min_interval_s=0.2, reuse_s=6 * 3600)
    async with (
        KisSimulator(_config(tmp_path, token_rules=rules)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url) as http,
    ):
        first = (await http.post("/oauth2/tokenP", json=_token_body())).json()
        deadline = time.monotonic() + 5
        while True:
            again = await http.post("/oauth2/tokenP", json=_token_body())
            if again.status_code == 200 or time.monotonic() > deadline:
                break
            assert again.json()["error_code"] == "EGW00133"
            await asyncio.sleep(0.05)
        assert again.status_code == 200
        assert again.json()["access_token"] == first["access_token"]
        assert again.json()["access_token_token_expired"] == first["access_token_token_expired"]
        assert sim.authority.tokens_issued == 1


async def test_new_token_after_the_reuse_window(tmp_path: Path) -> None:
    rules = TokenRules(min_interval_s=0.0, reuse_s=0.0)
    async with (
        KisSimulator(_config(tmp_path, token_rules=rules)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url) as http,
    ):
        a = (await http.post("/oauth2/tokenP", json=_token_body())).json()["access_token"]
        b = (await http.post("/oauth2/tokenP", json=_token_body())).json()["access_token"]
        assert a != b


async def test_approval_uses_secretkey_and_ties_the_key_to_the_app(tmp_path: Path) -> None:
    apps = {"APPKEY1": SecretStr("SECRET1")}
    async with (
        KisSimulator(_config(tmp_path, apps=apps)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url) as http,
    ):
        good = {"grant_type": "client_credentials", "appkey": "APPKEY1", "secretkey": "SECRET1"}
        resp = await http.post("/oauth2/Approval", json=good)
        assert resp.status_code == 200
        key = resp.json()["approval_key"]
        assert len(key) == 36 and sim.authority.app_key_for(key) == "APPKEY1"

        wrong_field = {
            "grant_type": "client_credentials",
            "appkey": "APPKEY1",
            "appsecret": "SECRET1",
        }
        assert (await http.post("/oauth2/Approval", json=wrong_field)).status_code == 403
        wrong_secret = {**good, "secretkey": "nope"}
        assert (await http.post("/oauth2/Approval", json=wrong_secret)).status_code == 403
        bad_token = await http.post("/oauth2/tokenP", json=_token_body(secret="nope"))
        assert bad_token.status_code == 403 and bad_token.json()["error_code"] == "EGW00103"
        garbage = await http.post("/oauth2/tokenP", content=b"{not json")
        assert garbage.status_code == 403


async def test_a_busy_port_fails_start_and_releases_what_started(tmp_path: Path) -> None:
    import socket

    import pytest

    busy = socket.create_server(("127.0.0.1", 0))
    try:
        port = busy.getsockname()[1]
        sim = KisSimulator(_config(tmp_path, ws_port=port))
        with pytest.raises(OSError):
            async with sim:
                pass
        # the partial start was unwound (truth closed with its summary); a new one starts fine
        again = KisSimulator(_config(tmp_path / "again"))
        async with again, httpx.AsyncClient(base_url=again.rest_url) as http:
            resp = await http.post("/oauth2/Approval", json={"appkey": "A", "secretkey": "B"})
            assert resp.status_code == 403
        assert (tmp_path / "truth" / "summary.json").exists()
    finally:
        busy.close()
