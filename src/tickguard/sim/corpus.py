"""Record a fuzz corpus from both simulators: every frame kind and REST body, checked in.

    python -m tickguard.sim.corpus tests/data/corpus

writes ``kis/ws.jsonl``, ``kis/rest.jsonl``, ``kiwoom/ws.jsonl`` and ``kiwoom/rest.jsonl``.
A ``ws`` line is ``{"frame": text}`` exactly as the simulator sent it (data frames, acks of
every outcome, PINGPONG/PING, SYSTEM, LOGIN answers, the malformed frames of the
``malformed`` fault, grown records of the ``grow`` fault). A ``rest`` line is ``{"name",
"tr", "status", "headers", "body"}`` with the body as received (tokens, approval keys,
every error shape, history pages with their paging headers). Tokens and approval keys the
simulator issued are replaced by fixed placeholders, so the corpus holds no random secret
and re-recording changes only the market. Sizes are capped (a few hundred KB in all): the
fuzz tests mutate these, they do not need a whole session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect

from tickguard.brokers.kis import rest as kis_rest
from tickguard.brokers.kiwoom import rest as kw_rest
from tickguard.sim.faults import FaultSchedule
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.kis_history import KisRestRules
from tickguard.sim.kiwoom import KiwoomSimConfig, KiwoomSimulator
from tickguard.sim.kiwoom_rest import KiwoomRestRules
from tickguard.sim.market import MarketConfig
from tickguard.sim.universe import default_universe

APP_KEY, APP_SECRET = "CORPUS-APP-KEY", "CORPUS-APP-SECRET"
KIS_TOKEN, KIS_APPROVAL, KIWOOM_TOKEN = "CORPUS-KIS-TOKEN", "CORPUS-APPROVAL", "CORPUS-KW-TOKEN"
MAX_DATA_FRAMES = {"kis": 60, "kiwoom": 36}
"""Data frames kept per broker (controls and malformed frames are always kept)."""
SPEED = 20.0
DAY = date(2026, 11, 26)
"""A Thursday, an XKRX trading day: the recorded frames carry it."""


@dataclass(slots=True)
class Recording:
    """What one broker's recording collected, with the secrets to scrub from it."""

    max_data: int
    ws: list[str] = field(default_factory=list)
    rest: list[dict[str, Any]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    data_frames: int = 0

    def frame(self, text: str, is_data: bool) -> None:
        if is_data:
            if self.data_frames >= self.max_data:
                return
            self.data_frames += 1
        self.ws.append(text)

    def response(self, name: str, tr: str, resp: httpx.Response) -> httpx.Response:
        headers = {k: resp.headers[k] for k in ("cont-yn", "next-key") if k in resp.headers}
        self.rest.append({"name": name, "tr": tr, "status": resp.status_code,
                          "headers": headers, "body": resp.text})  # fmt: skip
        return resp

    def scrub(self, text: str) -> str:
        for value, placeholder in self.secrets.items():
            text = text.replace(value, placeholder)
        return text

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        ws_lines = (json.dumps({"frame": self.scrub(f)}, ensure_ascii=False) for f in self.ws)
        rest_lines = (
            json.dumps({**r, "body": self.scrub(r["body"])}, ensure_ascii=False) for r in self.rest
        )
        (directory / "ws.jsonl").write_text("\n".join(ws_lines) + "\n", encoding="utf-8")
        (directory / "rest.jsonl").write_text("\n".join(rest_lines) + "\n", encoding="utf-8")


def _market(day: date) -> MarketConfig:
    return MarketConfig(day=day, symbols=default_universe(3), seed=7)


async def _drain(ws: ClientConnection, rec: Recording, seconds: float, echo: bool) -> None:
    """Record what arrives for ``seconds``; echo keep-alives when ``echo``."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await asyncio.wait_for(ws.recv(), left)
        except (TimeoutError, Exception):  # closed by the server is part of the recording
            return
        text = msg if isinstance(msg, str) else msg.decode("utf-8", "backslashreplace")
        is_data = text[:1] in ("0", "1") or text.startswith('{"trnm":"REAL","data":[{')
        rec.frame(text, is_data)
        if echo and ("PINGPONG" in text or text == '{"trnm":"PING"}'):
            await ws.send(text)


# -- KIS ----------------------------------------------------------------------------------------


def _kis_request(key: str, tr_id: str, tr_key: str, tr_type: str = "1", cust: str = "P") -> str:
    header = {"approval_key": key, "custtype": cust, "tr_type": tr_type, "content-type": "utf-8"}
    return json.dumps({"header": header, "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}})


async def _kis_ws(sim: KisSimulator, key: str, rec: Recording, seconds: float) -> None:
    symbols = sim.market.symbols
    async with connect(sim.ws_url) as ws:
        for symbol in symbols:  # 6 requests over a cap of 5: the last earns OPSP0008
            for tr in ("H0STCNT0", "H0STASP0"):
                await ws.send(_kis_request(key, tr, symbol))
        await ws.send(_kis_request(key, "H0STCNT0", symbols[0]))  # OPSP0002
        await ws.send(_kis_request(key, "H0STCNT0", "999999", "2"))  # OPSP0003
        await ws.send(_kis_request(key, "H0STCNI9", symbols[0]))  # invalid tr_id
        await ws.send(_kis_request(key, "H0STCNT0", symbols[0], "7"))  # invalid tr_type
        await ws.send(_kis_request(key, "H0STCNT0", symbols[0], cust="Z"))  # invalid custtype
        await ws.send('{"header": {"approval_key": "' + key + '"}}')  # JSON error
        await ws.send(_kis_request("not-an-approval-key", "H0STCNT0", symbols[0]))
        await _drain(ws, rec, seconds, echo=True)
        await ws.send(_kis_request(key, "H0STASP0", symbols[1], "2"))  # OPSP0001
        async with connect(sim.ws_url) as second:  # same app key: OPSP8996
            await second.send(_kis_request(key, "H0STCNT0", symbols[2]))
            await _drain(second, rec, 0.5, echo=False)
        await _drain(ws, rec, 0.5, echo=True)


async def _kis_rest(sim: KisSimulator, http: httpx.AsyncClient, rec: Recording) -> str:
    """OAuth answers of every kind; returns the approval key."""
    good = {"grant_type": "client_credentials", "appkey": APP_KEY, "appsecret": APP_SECRET}
    token = rec.response("token", "tokenP", await http.post(kis_rest.TOKEN_PATH, json=good))
    rec.secrets[str(token.json()["access_token"])] = KIS_TOKEN
    rec.response("token_too_soon", "tokenP", await http.post(kis_rest.TOKEN_PATH, json=good))
    bad = {**good, "appsecret": "wrong"}
    rec.response("token_bad_secret", "tokenP", await http.post(kis_rest.TOKEN_PATH, json=bad))
    no_grant = {**good, "grant_type": "password"}
    rec.response("token_bad_grant", "tokenP", await http.post(kis_rest.TOKEN_PATH, json=no_grant))
    approve = {"grant_type": "client_credentials", "appkey": APP_KEY, "secretkey": APP_SECRET}
    answer = await http.post(kis_rest.APPROVAL_PATH, json=approve)
    rec.response("approval", "Approval", answer)
    key = str(answer.json()["approval_key"])
    rec.secrets[key] = KIS_APPROVAL
    wrong = {**approve, "secretkey": "wrong"}
    rec.response("approval_bad", "Approval", await http.post(kis_rest.APPROVAL_PATH, json=wrong))
    return key


def _kis_headers(token: str, tr: str, app_key: str = APP_KEY) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "appkey": app_key, "appsecret": APP_SECRET,
            "tr_id": tr, "custtype": "P"}  # fmt: skip


async def _kis_history(sim: KisSimulator, http: httpx.AsyncClient, rec: Recording) -> None:
    token = next(k for k, v in rec.secrets.items() if v == KIS_TOKEN)
    symbol = sim.market.symbols[0]
    hour = sim.clock.session_datetime(sim.market.config.day).strftime("%H%M%S")
    day = sim.market.config.day.strftime("%Y%m%d")
    calls = [
        ("ticks", kis_rest.TICKS_PATH, kis_rest.TICKS_TR, {}),
        ("today_bars", kis_rest.TODAY_BARS_PATH, kis_rest.TODAY_BARS_TR, {}),
        ("daily_bars", kis_rest.DAILY_BARS_PATH, kis_rest.DAILY_BARS_TR,
         {"FID_INPUT_DATE_1": day}),
    ]  # fmt: skip
    for name, path, tr, extra in calls:
        await asyncio.sleep(1.1)  # each TR in a fresh rate-limit second
        cursor = hour
        for page in range(4):  # time-cursor paging, newest first
            params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbol,
                      "FID_INPUT_HOUR_1": cursor, **extra}  # fmt: skip
            resp = await http.get(path, params=params, headers=_kis_headers(token, tr))
            rows = rec.response(f"{name}_page{page}", tr, resp).json().get("output2") or []
            if not rows:
                break
            oldest = min(str(r.get("stck_cntg_hour", "")) for r in rows)
            earlier = _before(oldest)
            if earlier is None:
                break
            cursor = earlier
    await asyncio.sleep(1.1)
    base = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbol, "FID_INPUT_HOUR_1": hour}
    tr, path = kis_rest.TICKS_TR, kis_rest.TICKS_PATH
    for name, params, headers in (
        ("ticks_bad_token", base, _kis_headers("expired", tr)),
        ("ticks_unknown_symbol", {**base, "FID_INPUT_ISCD": "999999"}, _kis_headers(token, tr)),
        ("ticks_bad_hour", {**base, "FID_INPUT_HOUR_1": "9am"}, _kis_headers(token, tr)),
    ):
        rec.response(name, tr, await http.get(path, params=params, headers=headers))
    burst = [http.get(path, params=base, headers=_kis_headers(token, tr)) for _ in range(8)]
    limited = [r for r in await asyncio.gather(*burst) if "EGW00201" in r.text]
    if limited:
        rec.response("ticks_rate_limited", tr, limited[0])


def _before(hhmmss: str) -> str | None:
    """The second before ``hhmmss`` (the next page's cursor), None at midnight or on junk."""
    if len(hhmmss) != 6 or not hhmmss.isdigit():
        return None
    total = int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:]) - 1
    return None if total < 0 else f"{total // 3600:02d}{total % 3600 // 60:02d}{total % 60:02d}"


async def record_kis(day: date, seconds: float) -> Recording:
    rec = Recording(MAX_DATA_FRAMES["kis"])
    config = KisSimConfig(
        market=_market(day), speed=SPEED, apps={APP_KEY: SecretStr(APP_SECRET)},
        faults=FaultSchedule.parse(("malformed:0.08", "grow:H0STCNT0@0x4"), seed=5),
        max_records_per_frame=3, max_registrations=5, pingpong_interval_s=0.6,
        pingpong_timeout_s=30.0, slot_hold_s=5.0, rest=KisRestRules(rate_per_s=4, tick_rows=30),
    )  # fmt: skip
    async with KisSimulator(config) as sim, httpx.AsyncClient(base_url=sim.rest_url) as http:
        key = await _kis_rest(sim, http, rec)
        await _kis_ws(sim, key, rec, seconds)
        await asyncio.sleep(1.1)  # a fresh rate-limit second for the history calls
        await _kis_history(sim, http, rec)
    return rec


# -- Kiwoom -------------------------------------------------------------------------------------


def _kw_json(msg: dict[str, Any]) -> str:
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":"))


def _reg(trnm: str, items: Sequence[str], types: Iterable[str]) -> str:
    data = [{"item": list(items), "type": [t]} for t in types]
    msg: dict[str, Any] = {"trnm": trnm, "grp_no": "1", "refresh": "1", "data": data}
    return _kw_json(msg)


async def _kw_ws(sim: KiwoomSimulator, token: str, rec: Recording, seconds: float) -> None:
    symbols = list(sim.market.symbols)
    async with connect(sim.ws_url) as ws:
        await ws.send(_kw_json({"trnm": "LOGIN", "token": token}))
        await _drain(ws, rec, 0.2, echo=True)
        await ws.send(_reg("REG", symbols, ("0B", "0D")))
        await ws.send(_reg("REG", ["ZZZ!!"], ("0B",)))  # a refused registration
        await _drain(ws, rec, seconds, echo=True)
        await ws.send(_reg("REMOVE", symbols[:1], ("0D",)))
        await _drain(ws, rec, 0.3, echo=True)
        async with connect(sim.ws_url) as second:  # same app key: the first gets R10001
            await second.send(_kw_json({"trnm": "LOGIN", "token": token}))
            await _drain(ws, rec, 0.5, echo=False)
            await _drain(second, rec, 0.2, echo=False)
    async with connect(sim.ws_url) as bad:
        await bad.send(_kw_json({"trnm": "LOGIN", "token": "not-a-token"}))
        await _drain(bad, rec, 0.5, echo=False)
    async with connect(sim.ws_url) as silent:  # no LOGIN in time: R10004
        await _drain(silent, rec, sim.config.login_timeout_s + 0.5, echo=False)
    async with connect(sim.ws_url) as deaf:  # PINGs never answered: R10002
        await deaf.send(_kw_json({"trnm": "LOGIN", "token": token}))
        wait = sim.config.ping_interval_s * (sim.config.missed_pings + 1) + 0.5
        await _drain(deaf, rec, wait, echo=False)


async def _kw_rest(sim: KiwoomSimulator, http: httpx.AsyncClient, rec: Recording) -> str:
    headers = {"Content-Type": kw_rest.JSON_CONTENT, "api-id": kw_rest.TOKEN_API_ID}
    good = {"grant_type": "client_credentials", "appkey": APP_KEY, "secretkey": APP_SECRET}
    for name, body in (
        ("token_bad_secret", {**good, "secretkey": "wrong"}),
        ("token_bad_grant", {**good, "grant_type": "password"}),
        ("token", good),
    ):
        resp = await http.post(kw_rest.TOKEN_PATH, json=body, headers=headers)
        rec.response(name, kw_rest.TOKEN_API_ID, resp)
    token = str(resp.json()["token"])
    rec.secrets[token] = KIWOOM_TOKEN
    return token


async def _kw_charts(sim: KiwoomSimulator, http: httpx.AsyncClient, rec: Recording) -> None:
    token = next(k for k, v in rec.secrets.items() if v == KIWOOM_TOKEN)
    symbol = sim.market.symbols[0]

    def headers(api_id: str, next_key: str = "", bearer: str = token) -> dict[str, str]:
        out = {"Content-Type": kw_rest.JSON_CONTENT, "api-id": api_id,
               "authorization": f"Bearer {bearer}"}  # fmt: skip
        return {**out, "cont-yn": "Y", "next-key": next_key} if next_key else out

    for api_id in (kw_rest.TICK_CHART, kw_rest.MINUTE_CHART):
        next_key = ""
        for page in range(4):
            resp = await http.post(kw_rest.CHART_PATH, json=kw_rest.chart_body(symbol),
                                   headers=headers(api_id, next_key))  # fmt: skip
            rec.response(f"{api_id}_page{page}", api_id, resp)
            if resp.headers.get("cont-yn") != "Y":
                break
            next_key = resp.headers.get("next-key", "")
            await asyncio.sleep(0.25)  # inside the simulator's request budget
    await asyncio.sleep(1.1)
    tick = kw_rest.TICK_CHART
    for name, body, hdrs in (
        ("ka10079_bad_token", kw_rest.chart_body(symbol), headers(tick, bearer="expired")),
        ("ka10079_unknown_symbol", kw_rest.chart_body("999999"), headers(tick)),
        ("ka10079_bad_scope", kw_rest.chart_body(symbol, scope=7), headers(tick)),
        ("ka10079_bad_next_key", kw_rest.chart_body(symbol), headers(tick, "nope:1")),
        ("chart_no_api_id", kw_rest.chart_body(symbol), headers("")),
    ):
        rec.response(name, tick, await http.post(kw_rest.CHART_PATH, json=body, headers=hdrs))
    burst = [http.post(kw_rest.CHART_PATH, json=kw_rest.chart_body(symbol), headers=headers(tick))
             for _ in range(8)]  # fmt: skip
    limited = [r for r in await asyncio.gather(*burst) if r.status_code == 429]
    if limited:
        rec.response("ka10079_rate_limited", tick, limited[0])


async def record_kiwoom(day: date, seconds: float) -> Recording:
    rec = Recording(MAX_DATA_FRAMES["kiwoom"])
    config = KiwoomSimConfig(
        market=_market(day), speed=SPEED, apps={APP_KEY: SecretStr(APP_SECRET)},
        faults=FaultSchedule.parse(("malformed:0.05", "grow:0B@0x4"), seed=5),
        max_entries_per_message=3,
        ping_interval_s=0.3, missed_pings=2, login_timeout_s=0.5,
        rest=KiwoomRestRules(page_size=40, max_requests=5, window_s=1.0),
    )  # fmt: skip
    async with KiwoomSimulator(config) as sim, httpx.AsyncClient(base_url=sim.rest_url) as http:
        token = await _kw_rest(sim, http, rec)
        await _kw_ws(sim, token, rec, seconds)
        await asyncio.sleep(1.1)
        await _kw_charts(sim, http, rec)
    return rec


async def record(out: Path, day: date | None = None, seconds: float = 3.0) -> dict[str, int]:
    """Record both brokers into ``out``; returns lines written per file."""
    day = day or DAY
    counts: dict[str, int] = {}
    for name, recorder in (("kis", record_kis), ("kiwoom", record_kiwoom)):
        rec = await recorder(day, seconds)
        rec.write(out / name)
        counts[f"{name}/ws.jsonl"] = len(rec.ws)
        counts[f"{name}/rest.jsonl"] = len(rec.rest)
    return counts


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tickguard.sim.corpus OUT_DIR", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        counts = asyncio.run(record(Path(argv[0])))
        for path, lines in counts.items():
            print(f"{path}: {lines} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
