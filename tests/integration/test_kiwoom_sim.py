"""The Kiwoom simulator on loopback, spoken to by tickguard's own Kiwoom codec and REST client.

Time is scaled (PING every 0.1 s, market at 5x) and every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tickguard.brokers.base import Channel, ControlKind, Decoded, Subscription
from tickguard.brokers.kiwoom.codec import KiwoomSession
from tickguard.brokers.kiwoom.rest import CHART_PATH, KiwoomRest
from tickguard.errors import AuthError, RateLimitedError
from tickguard.models import BookSnapshot, Side, Trade
from tickguard.settings import AppCredential
from tickguard.sim.faults import FaultSchedule
from tickguard.sim.kiwoom import KiwoomSimConfig, KiwoomSimulator
from tickguard.sim.kiwoom_rest import KiwoomRestRules
from tickguard.sim.market import MarketConfig
from tickguard.sim.truth import TruthReader
from tickguard.sim.universe import profiles_for

DAY = date(2026, 3, 19)
SYMBOLS = ["005930", "122630"]
APP = AppCredential(name="kw1", app_key=SecretStr("kw-app"), app_secret=SecretStr("kw-secret"))


def config(tmp_path: Path, **overrides: Any) -> KiwoomSimConfig:
    base: dict[str, Any] = {
        "market": MarketConfig(DAY, profiles_for(SYMBOLS), seed=7),
        "speed": 5.0,
        "start_at": dtime(9, 0),
        "truth_dir": tmp_path / "truth",
        "apps": {"kw-app": SecretStr("kw-secret")},
        "ping_interval_s": 0.1,
        "login_timeout_s": 0.5,
    }
    return KiwoomSimConfig(**{**base, **overrides})


async def eventually(pred: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.01)


async def token_for(sim: KiwoomSimulator, cred: AppCredential = APP) -> str:
    async with httpx.AsyncClient() as http:
        token = await KiwoomRest(http, sim.rest_url).issue_token(cred)
    return token.token.get_secret_value()


class Client:
    """A Kiwoom websocket client made of tickguard's codec; echoes PINGs unless told not to."""

    def __init__(self, ws: ClientConnection, session: KiwoomSession, echo: bool = True) -> None:
        self.ws, self.session, self.echo = ws, session, echo
        self.received: list[Decoded] = []
        self.pings = 0
        self.closed = False
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                decoded = self.session.receive(raw, datetime.now(UTC))
                self.received.append(decoded)
                self.pings += len(decoded.replies)
                if self.echo:
                    for reply in decoded.replies:
                        await self.ws.send(reply)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True

    def controls(self) -> list[tuple[ControlKind, str]]:
        return [(c.kind, c.code) for d in self.received for c in d.controls if c.code != "PING"]

    def events(self) -> list[Trade | BookSnapshot]:
        return [e for d in self.received for e in d.events]

    def quarantined(self) -> int:
        return sum(len(d.quarantined) for d in self.received)

    def acks(self) -> list[tuple[bool, bool]]:
        return [(a.ok, a.unsubscribe) for d in self.received for a in d.acks]


@asynccontextmanager
async def client(sim: KiwoomSimulator, token: str, echo: bool = True) -> AsyncIterator[Client]:
    async with connect(sim.ws_url, ping_interval=None) as ws:
        session = KiwoomSession(token, DAY)
        for frame in session.handshake():
            await ws.send(frame)
        c = Client(ws, session, echo)
        try:
            yield c
        finally:
            c._reader.cancel()


async def test_login_required_first(tmp_path: Path) -> None:
    async with KiwoomSimulator(config(tmp_path)) as sim:
        async with connect(sim.ws_url, ping_interval=None) as ws:
            session = KiwoomSession("unused", DAY)
            await ws.send(session.subscribe([Subscription("005930", Channel.TRADES)])[0])
            decoded = session.receive(await ws.recv(), datetime.now(UTC))
            assert [(c.kind, c.code) for c in decoded.controls] == [
                (ControlKind.SERVER_CLOSING, "R10004")
            ]
            await ws.wait_closed()
        async with connect(sim.ws_url, ping_interval=None) as ws:  # says nothing at all
            decoded = KiwoomSession("unused", DAY).receive(await ws.recv(), datetime.now(UTC))
            assert decoded.controls[0].code == "R10004"
        async with client(sim, "not-a-token") as c:
            await eventually(lambda: c.closed, what="close after a bad token")
            assert c.controls() == [(ControlKind.LOGIN_FAILED, "8005")]


async def test_real_flow_decodes_and_matches_truth(tmp_path: Path) -> None:
    async with KiwoomSimulator(config(tmp_path)) as sim:
        token = await token_for(sim)
        async with client(sim, token) as c:
            await eventually(lambda: (ControlKind.LOGIN_OK, "0") in c.controls(), what="login")
            subs = [Subscription(s, ch) for s in SYMBOLS for ch in Channel]
            for frame in c.session.subscribe(subs):
                await c.ws.send(frame)
            await eventually(lambda: c.acks() == [(True, False)], what="REG ack")

            def enough() -> bool:
                seen = {(type(e).__name__, e.symbol) for e in c.events()}
                return len(seen) == 4 and len(c.events()) > 200

            await eventually(enough, what="trades and books of both symbols")
        sim.flush_truth()
        assert c.quarantined() == 0
        truth = {(t.symbol, t.cum_volume): t for t in TruthReader(sim.truth_dir).generated_trades()}
    trades = [e for e in c.events() if isinstance(e, Trade)]
    for trade in trades:
        expected = truth[(trade.symbol, trade.cum_volume)]
        assert (trade.price, trade.qty) == (expected.price, expected.qty)
        assert (trade.side.value if trade.side else None) == expected.side
        assert trade.ts.date() == DAY and trade.ts.hour == 9
    assert any(t.side is Side.BUY for t in trades) and any(t.side is Side.SELL for t in trades)
    for symbol in SYMBOLS:  # nothing lost inside a healthy connection
        mine = [t for t in trades if t.symbol == symbol]
        assert all(b.cum_volume - a.cum_volume == b.qty for a, b in itertools.pairwise(mine))
    books = [e for e in c.events() if isinstance(e, BookSnapshot)]
    assert all(b.asks[0][0] > b.bids[0][0] and len(b.asks) == 10 for b in books)


async def test_ping_echo_keeps_session_and_silence_ends_it(tmp_path: Path) -> None:
    async with KiwoomSimulator(config(tmp_path)) as sim:
        token = await token_for(sim)
        async with client(sim, token) as live:
            await eventually(lambda: live.pings >= 8, what="8 PINGs echoed")
            assert not live.closed and sim.counters.pingpong_timeouts == 0
        async with client(sim, token, echo=False) as mute:
            await eventually(lambda: mute.closed, what="R10002 close")
            assert mute.pings == 5
            assert mute.controls()[-1] == (ControlKind.SERVER_CLOSING, "R10002")
        assert sim.counters.pingpong_timeouts == 1


async def test_second_login_kicks_the_first(tmp_path: Path) -> None:
    async with KiwoomSimulator(config(tmp_path)) as sim:
        first_token, second_token = await token_for(sim), await token_for(sim)
        async with client(sim, first_token) as first:
            await eventually(lambda: bool(first.controls()), what="first login")
            async with client(sim, second_token) as second:
                await eventually(lambda: first.closed, what="first kicked")
                assert first.controls() == [
                    (ControlKind.LOGIN_OK, "0"),
                    (ControlKind.SESSION_CONFLICT, "R10001"),
                ]
                await eventually(lambda: bool(second.controls()), what="second login")
                assert second.controls() == [(ControlKind.LOGIN_OK, "0")] and not second.closed
        assert sim.counters.session_conflicts == 1


async def test_remove_stops_data(tmp_path: Path) -> None:
    async with KiwoomSimulator(config(tmp_path)) as sim, client(sim, await token_for(sim)) as c:
        await eventually(lambda: bool(c.controls()), what="login")
        sub = [Subscription("005930", Channel.TRADES)]
        await c.ws.send(c.session.subscribe(sub)[0])
        await eventually(lambda: len(c.events()) > 5, what="trades")
        await c.ws.send(c.session.unsubscribe(sub)[0])
        await eventually(lambda: c.acks() == [(True, False), (True, True)], what="REMOVE ack")
        after_ack = len(c.events())
        pings = c.pings
        await eventually(lambda: c.pings >= pings + 3, what="time passing")
        assert len(c.events()) == after_ack


async def test_bad_app_secret_is_auth_error(tmp_path: Path) -> None:
    async with KiwoomSimulator(config(tmp_path)) as sim:
        wrong = AppCredential(name="x", app_key=SecretStr("kw-app"), app_secret=SecretStr("no"))
        with pytest.raises(AuthError, match="8001"):
            await token_for(sim, wrong)


async def chart_pages(sim: KiwoomSimulator, api_id: str, scope: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        rest = KiwoomRest(http, sim.rest_url)
        token = (await rest.issue_token(APP)).token
        body = {"stk_cd": "122630", "tic_scope": scope, "upd_stkpc_tp": "1"}
        return [p.body async for p in rest.pages(CHART_PATH, api_id, body, token)]


async def test_ka10079_ticks_page_newest_first_and_match_truth(tmp_path: Path) -> None:
    cfg = config(tmp_path, speed=30.0, rest=KiwoomRestRules(page_size=40, max_requests=1000))
    async with KiwoomSimulator(cfg) as sim:
        await eventually(lambda: sim.clock.session_t() > 9 * 3600 + 60, what="a minute of market")
        pages = await chart_pages(sim, "ka10079", "1")
        sim.flush_truth()
        truth = [t for t in TruthReader(sim.truth_dir).generated_trades() if t.symbol == "122630"]
    rows = [row for page in pages for row in page["stk_tic_chart_qry"]]
    assert len(pages) > 2 and all(len(p["stk_tic_chart_qry"]) == 40 for p in pages[:-1])
    assert "acc_trde_qty" not in rows[0]
    stamps = [row["cntr_tm"] for row in rows]
    assert stamps == sorted(stamps, reverse=True) and stamps[-1].startswith("20260319")
    cum, by_cum = 0, {t.cum_volume: t for t in truth}
    for row in reversed(rows):  # oldest first: the running sum is the cumulative volume
        cum += int(row["trde_qty"])
        assert by_cum[cum].price == int(row["cur_prc"])


async def test_ka10080_minute_bars_sign_prefixed(tmp_path: Path) -> None:
    cfg = config(tmp_path, speed=120.0, rest=KiwoomRestRules(page_size=2, max_requests=1000))
    async with KiwoomSimulator(cfg) as sim:
        await eventually(lambda: sim.clock.session_t() > 9 * 3600 + 300, what="5 minutes")
        pages = await chart_pages(sim, "ka10080", "1")
    rows = [row for page in pages for row in page["stk_min_pole_chart_qry"]]
    assert len(pages) >= 3 and len(rows) >= 5
    assert all(row["cur_prc"][0] in "+-" or row["cur_prc"] == "18450" for row in rows)
    assert [r["cntr_tm"][8:] for r in rows[-2:]] == ["090100", "090000"]
    cum = 0
    for row in reversed(rows):
        cum += int(row["trde_qty"])
        assert int(row["acc_trde_qty"]) == cum
        assert abs(int(row["low_pric"])) <= abs(int(row["cur_prc"])) <= abs(int(row["high_pric"]))


async def test_rate_limit_answers_1700(tmp_path: Path) -> None:
    rules = KiwoomRestRules(max_requests=3, window_s=600)  # a long window: deterministic under load
    cfg = config(tmp_path, rest=rules)
    async with KiwoomSimulator(cfg) as sim, httpx.AsyncClient() as http:
        rest = KiwoomRest(http, sim.rest_url)
        token = (await rest.issue_token(APP)).token
        body = {"stk_cd": "005930", "tic_scope": "1"}
        for _ in range(3):
            await rest.call(CHART_PATH, "ka10080", body, token)
        with pytest.raises(RateLimitedError, match="1700"):
            await rest.call(CHART_PATH, "ka10080", body, token)
        assert sim.limiter.refused == 1


async def test_malformed_fault_is_quarantined_not_fatal(tmp_path: Path) -> None:
    faults = FaultSchedule.parse(["malformed:0.3", "grow:0B"], seed=3)
    async with KiwoomSimulator(config(tmp_path, faults=faults)) as sim:
        token = await token_for(sim)
        async with client(sim, token) as c:
            await eventually(lambda: bool(c.controls()), what="login")
            await c.ws.send(c.session.subscribe([Subscription("005930", Channel.TRADES)])[0])
            await eventually(lambda: c.quarantined() >= 3 and len(c.events()) > 50, what="mix")
            assert not c.closed
    assert sim.counters.malformed_sent >= 3 and sim.counters.grown_frames > 0
    assert json.loads((sim.truth_dir / "summary.json").read_text())["malformed_sent"] >= 3


@pytest.mark.parametrize("stop_signal", ["SIGINT", "SIGTERM"])
async def test_sim_kiwoom_command_serves_until_signalled(tmp_path: Path, stop_signal: str) -> None:
    import signal
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from tickguard.cli import main; main()",
        "sim", "kiwoom", "--symbols", "122630", "--speed", "10", "--ping-s", "0.2",
        "--truth-dir", str(tmp_path / "cli-truth"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        urls = {}
        for _ in range(3):
            label, url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()
            urls[label] = url
        assert urls["WS"].endswith("/api/dostk/websocket")
        async with httpx.AsyncClient() as http:
            token = await KiwoomRest(http, urls["REST"]).issue_token(APP)
        async with connect(urls["WS"], ping_interval=None) as ws:
            session = KiwoomSession(token.token.get_secret_value(), DAY)
            await ws.send(session.handshake()[0])
            login = session.receive(await ws.recv(), datetime.now(UTC))
            assert [c.kind for c in login.controls] == [ControlKind.LOGIN_OK]
    finally:
        proc.send_signal(getattr(signal, stop_signal))
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0
    assert "frames sent" in (await proc.stderr.read()).decode()
    assert (tmp_path / "cli-truth" / "summary.json").exists()


def test_sim_kiwoom_rejects_a_bad_fault() -> None:
    from typer.testing import CliRunner

    from tickguard.cli import app

    result = CliRunner().invoke(app, ["sim", "kiwoom", "--fault", "wobble:3"])
    assert result.exit_code == 2 and "unknown fault" in result.stderr
