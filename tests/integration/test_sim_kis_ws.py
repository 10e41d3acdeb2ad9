"""KIS simulator websocket: a real client (websockets) against the running simulator."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from tickguard.sim.faults import FaultSchedule
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.market import GenTrade, Market, MarketConfig
from tickguard.sim.truth import TruthReader
from tickguard.sim.universe import default_universe

DAY = date(2026, 11, 26)
TRADE, BOOK = "H0STCNT0", "H0STASP0"
WIDTH = {TRADE: 46, BOOK: 59}


def config(tmp_path: Path, *faults: str, **kw: Any) -> KisSimConfig:
    market = MarketConfig(day=DAY, symbols=default_universe(kw.pop("symbols", 4)), seed=11)
    kw.setdefault("speed", 30.0)
    kw.setdefault("pingpong_interval_s", 30.0)
    kw.setdefault("pingpong_timeout_s", 30.0)
    return KisSimConfig(
        market=market,
        truth_dir=tmp_path / "truth",
        faults=FaultSchedule.parse(faults, seed=3),
        **kw,
    )


async def approval_key(sim: KisSimulator, app: str = "APPKEY1") -> str:
    async with httpx.AsyncClient(base_url=sim.rest_url) as http:
        body = {"grant_type": "client_credentials", "appkey": app, "secretkey": "S"}
        resp = await http.post("/oauth2/Approval", json=body)
        return str(resp.json()["approval_key"])


def request(key: str, tr_id: str, tr_key: str, tr_type: str = "1", custtype: str = "P") -> str:
    header = {
        "approval_key": key,
        "custtype": custtype,
        "tr_type": tr_type,
        "content-type": "utf-8",
    }
    return json.dumps({"header": header, "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}})


def parse(frame: str) -> tuple[str, list[list[str]]]:
    """The reference's parsing rules, written here independently of tickguard's codec."""
    flag, tr_id, count, payload = frame.split("|", 3)
    assert flag == "0"
    n = int(count)
    fields = payload.split("^")
    assert len(fields) == n * WIDTH[tr_id], (tr_id, n, len(fields))
    w = WIDTH[tr_id]
    records = [fields[i * w : (i + 1) * w] for i in range(n)]
    numeric = (2, 12, 13) if tr_id == TRADE else (3, 13, 53)
    assert all(r[i].isdigit() for r in records for i in numeric), "prices and volumes are integers"
    return tr_id, records


async def control(ws: ClientConnection, within_s: float = 5.0) -> dict[str, Any]:
    """The next control message, skipping data frames, within a deadline."""
    deadline = time.monotonic() + within_s
    while True:
        msg = await asyncio.wait_for(ws.recv(), max(deadline - time.monotonic(), 0.01))
        assert isinstance(msg, str)
        if msg[0] not in "01":
            return dict(json.loads(msg))


async def subscribe(ws: ClientConnection, key: str, tr_id: str, tr_key: str) -> dict[str, Any]:
    await ws.send(request(key, tr_id, tr_key))
    return await control(ws)


@asynccontextmanager
async def running(cfg: KisSimConfig) -> AsyncIterator[tuple[KisSimulator, str]]:
    async with KisSimulator(cfg) as sim:
        yield sim, await approval_key(sim)


async def collect(
    ws: ClientConnection,
    seconds: float,
    on_control: Callable[[str], Any] | None = None,
    keep_malformed: bool = False,
) -> list[str]:
    """Data frames received for ``seconds`` of wall time (control messages go to the callback;
    with ``keep_malformed`` a message that is neither data nor JSON is kept as a frame)."""
    frames: list[str] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        assert isinstance(msg, str)
        if msg[0] in "01" or (keep_malformed and not _is_json(msg)):
            frames.append(msg)
        elif on_control is not None:
            await on_control(msg)
    return frames


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


async def request_all(
    ws: ClientConnection, key: str, subs: list[tuple[str, str]], tr_type: str
) -> list[str]:
    """(Un)subscribe ``subs`` and keep every non-control message until all acks are in, so no
    data frame is skipped. After the last UNSUB ack the simulator sends nothing more."""
    for tr, s in subs:
        await ws.send(request(key, tr, s, tr_type=tr_type))
    expected = "OPSP0000" if tr_type == "1" else "OPSP0001"
    rest: list[str] = []
    acks = 0
    while acks < len(subs):
        msg = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(msg, str)
        try:
            code = json.loads(msg)["body"]["msg_cd"]
        except (ValueError, KeyError, TypeError):
            rest.append(msg)  # data frames, and malformed ones that are not JSON either
            continue
        assert code == expected, msg
        acks += 1
    return rest


async def unsubscribe_all(ws: ClientConnection, key: str, subs: list[tuple[str, str]]) -> list[str]:
    return await request_all(ws, key, subs, "2") + await collect(ws, 0.3)


async def test_subscribe_acks_and_error_codes(tmp_path: Path) -> None:
    async with running(config(tmp_path)) as (sim, key), connect(sim.ws_url) as ws:
        ok = await subscribe(ws, key, TRADE, "005930")
        assert ok["header"] == {"tr_id": TRADE, "tr_key": "005930", "encrypt": "N"}
        assert (ok["body"]["rt_cd"], ok["body"]["msg_cd"], ok["body"]["msg1"]) == (
            "0",
            "OPSP0000",
            "SUBSCRIBE SUCCESS",
        )
        assert len(ok["body"]["output"]["iv"]) == 16 and len(ok["body"]["output"]["key"]) == 32

        again = await subscribe(ws, key, TRADE, "005930")
        assert (again["body"]["rt_cd"], again["body"]["msg_cd"]) == ("1", "OPSP0002")
        assert again["body"]["msg1"] == "ALREADY IN SUBSCRIBE"

        await ws.send(request(key, BOOK, "005930", tr_type="2"))
        missing = await control(ws)
        assert (missing["body"]["rt_cd"], missing["body"]["msg_cd"]) == ("1", "OPSP0003")

        await ws.send(request(key, TRADE, "005930", tr_type="2"))
        gone = await control(ws)
        assert (gone["body"]["msg_cd"], gone["body"]["msg1"]) == ("OPSP0001", "UNSUBSCRIBE SUCCESS")

        cases = [
            (request(key, TRADE, "005930", tr_type="0"), "OPSP8997"),
            (request(key, TRADE, "005930", custtype="X"), "OPSP8998"),
            (request("not-a-key", TRADE, "005930"), "OPSP0011"),
            (request(key, "H0XXXXX0", "005930"), "OPSP8991"),
            (request(key, TRADE, "5930"), "OPSP8992"),
            ("{not json", "OPSP9999"),
            (json.dumps({"body": {}}), "OPSP9998"),
        ]
        for text, code in cases:
            await ws.send(text)
            answer = await control(ws)
            assert (answer["body"]["rt_cd"], answer["body"]["msg_cd"]) == ("1", code), text
        etn = await subscribe(ws, key, TRADE, "Q500001")
        assert etn["body"]["msg_cd"] == "OPSP0000"


async def test_the_42nd_registration_is_refused(tmp_path: Path) -> None:
    async with running(config(tmp_path)) as (sim, key), connect(sim.ws_url) as ws:
        codes = [f"{100000 + i:06d}" for i in range(21)]
        answers = [await subscribe(ws, key, tr, code) for code in codes for tr in (TRADE, BOOK)]
        assert [a["body"]["msg_cd"] for a in answers[:41]] == ["OPSP0000"] * 41
        assert (answers[41]["body"]["msg_cd"], answers[41]["body"]["msg1"]) == (
            "OPSP0008",
            "MAX SUBSCRIBE OVER",
        )
        await ws.send(request(key, TRADE, codes[0], tr_type="2"))
        assert (await control(ws))["body"]["msg_cd"] == "OPSP0001"
        assert (await subscribe(ws, key, BOOK, codes[20]))["body"]["msg_cd"] == "OPSP0000"


async def test_one_session_per_app_key_and_the_slot_is_held(tmp_path: Path) -> None:
    async with running(config(tmp_path, slot_hold_s=1.5)) as (sim, key):
        other_key = await approval_key(sim)  # same app key, another approval key
        async with connect(sim.ws_url) as first:
            assert (await subscribe(first, key, TRADE, "005930"))["body"]["msg_cd"] == "OPSP0000"
            async with connect(sim.ws_url) as second:
                refused = await subscribe(second, other_key, TRADE, "000660")
                assert (refused["body"]["msg_cd"], refused["body"]["msg1"]) == (
                    "OPSP8996",
                    "ALREADY IN USE appkey",
                )
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(second.recv(), 5)
            other_app = await approval_key(sim, "APPKEY2")
            async with connect(sim.ws_url) as third:
                assert (await subscribe(third, other_app, TRADE, "005930"))["body"][
                    "msg_cd"
                ] == "OPSP0000"
        closed_at = time.monotonic()
        async with connect(sim.ws_url) as again:
            held = await subscribe(again, key, TRADE, "005930")
            assert held["body"]["msg_cd"] == "OPSP8996", "the slot is held right after a disconnect"
        while True:
            async with connect(sim.ws_url) as later:
                answer = await subscribe(later, key, TRADE, "005930")
            if answer["body"]["msg_cd"] == "OPSP0000":
                break
            assert time.monotonic() - closed_at < 5, "the slot must be released"
            await asyncio.sleep(0.05)
        assert time.monotonic() - closed_at >= 1.4
        assert sim.counters.session_conflicts >= 2


async def test_pingpong_not_echoed_closes_the_session(tmp_path: Path) -> None:
    cfg = config(tmp_path, pingpong_interval_s=0.2, pingpong_timeout_s=0.3)
    async with running(cfg) as (sim, key), connect(sim.ws_url, ping_interval=None) as ws:
        await subscribe(ws, key, TRADE, "005930")
        pings = 0
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            while time.monotonic() - started < 5:
                msg = await asyncio.wait_for(ws.recv(), 5)
                pings += '"PINGPONG"' in msg
        assert pings == 1 and time.monotonic() - started < 2
        assert sim.counters.pingpong_timeouts == 1
    reasons = [s.get("reason") for s in TruthReader(tmp_path / "truth").sessions()]
    assert "PINGPONG not answered" in reasons


@pytest.mark.parametrize("how", ["text", "pong-frame"])
async def test_pingpong_echoed_keeps_the_session(tmp_path: Path, how: str) -> None:
    cfg = config(tmp_path, pingpong_interval_s=0.2, pingpong_timeout_s=0.3)
    async with running(cfg) as (sim, key), connect(sim.ws_url, ping_interval=None) as ws:
        await subscribe(ws, key, TRADE, "005930")
        seen: list[dict[str, Any]] = []

        async def echo(msg: str) -> None:
            data = json.loads(msg)
            if data["header"]["tr_id"] == "PINGPONG":
                seen.append(data)
                await (ws.send(msg) if how == "text" else ws.pong(msg))

        frames = await collect(ws, 1.5, echo)
        assert len(seen) >= 4 and frames
        assert set(seen[0]["header"]) == {"tr_id", "datetime"} and "body" not in seen[0]
        assert len(seen[0]["header"]["datetime"]) == 14 and seen[0]["header"][
            "datetime"
        ].startswith("20261126")
        assert sim.counters.pingpong_timeouts == 0


async def test_frames_are_46_and_59_fields_per_record_and_cum_volume_adds_up(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path)
    async with running(cfg) as (sim, key), connect(sim.ws_url) as ws:
        for symbol in ("005930", "000660"):
            for tr in (TRADE, BOOK):
                assert (await subscribe(ws, key, tr, symbol))["body"]["msg_cd"] == "OPSP0000"
        frames = await collect(ws, 2.0)
    trades: dict[str, list[list[str]]] = {}
    counts = {TRADE: 0, BOOK: 0}
    multi = 0
    subscribed = {(tr, s) for s in ("005930", "000660") for tr in (TRADE, BOOK)}
    for frame in frames:
        tr_id, records = parse(frame)
        assert (tr_id, records[0][0]) in subscribed
        counts[tr_id] += len(records)
        multi += len(records) > 1
        assert len({r[0] for r in records}) == 1, "one symbol per frame"
        if tr_id == TRADE:
            trades.setdefault(records[0][0], []).extend(records)
    assert counts[TRADE] > 50 and counts[BOOK] > 50 and multi > 0
    for symbol, records in trades.items():
        cum = [int(r[13]) for r in records]
        assert all(b > a for a, b in itertools.pairwise(cum)), symbol
        assert all(cum[i] - cum[i - 1] == int(records[i][12]) for i in range(1, len(cum)))
        # Same seed, same tape: every record is the regenerated market's trade with that key.
        last = cum[-1]
        events = itertools.takewhile(
            lambda e, last=last: not isinstance(e, GenTrade) or e.cum_volume <= last,
            Market(cfg.market).symbol_tape(symbol),
        )
        tape = {e.cum_volume: e for e in events if isinstance(e, GenTrade)}
        for r in records:
            t = tape[int(r[13])]
            assert (int(r[2]), int(r[12]), r[1]) == (t.price, t.qty, t.ts.strftime("%H%M%S"))


async def test_ground_truth_matches_what_the_client_received(tmp_path: Path) -> None:
    subs = [(tr, s) for s in ("005930", "069500", "122630") for tr in (TRADE, BOOK)]
    async with running(config(tmp_path)) as (sim, key), connect(sim.ws_url) as ws:
        frames = await request_all(ws, key, subs, "1")
        frames += await collect(ws, 1.5)
        frames += await unsubscribe_all(ws, key, subs)
    got_trades = {
        (r[0], int(r[13])) for f in frames if f.split("|")[1] == TRADE for r in parse(f)[1]
    }
    got_books = sum(len(parse(f)[1]) for f in frames if f.split("|")[1] == BOOK)

    truth = TruthReader(tmp_path / "truth")
    sent = list(truth.frames())
    assert len(sent) == len(frames)
    assert {(s, k) for f in sent for s, k in f.trade_keys} == got_trades
    assert sum(len(f.book_keys) for f in sent) == got_books
    counts = truth.counts()
    assert counts.trades_sent == len(got_trades) > 0
    assert counts.trades_generated == counts.trades_sent + counts.trades_missed
    generated = {(t.symbol, t.cum_volume): t.live for t in truth.generated_trades()}
    assert all(generated[k] == 1 for k in got_trades)
    assert (
        counts.trades_missed_while_disconnected == sum(1 for v in generated.values() if v == 0) > 0
    )
    assert truth.summary()["frames_sent"] == len(frames)


async def test_flap_drops_without_a_close_frame_and_loses_nothing_sent(tmp_path: Path) -> None:
    cfg = config(tmp_path, "flap:0.6-0.8", slot_hold_s=0.0)
    async with running(cfg) as (sim, key):
        frames: list[str] = []
        async with connect(sim.ws_url) as ws:
            frames += await request_all(ws, key, [(TRADE, "005930"), (BOOK, "005930")], "1")
            with pytest.raises(ConnectionClosedError) as info:
                while True:
                    msg = await asyncio.wait_for(ws.recv(), 5)
                    if isinstance(msg, str) and msg[0] in "01":
                        frames.append(msg)
        assert info.value.rcvd is None and info.value.sent is None
        assert "no close frame received or sent" in str(info.value)
        async with connect(sim.ws_url) as ws2:
            assert (await subscribe(ws2, key, TRADE, "005930"))["body"]["msg_cd"] == "OPSP0000"
    truth = TruthReader(tmp_path / "truth")
    first_session = min(f.session for f in truth.frames())
    sent = [f for f in truth.frames() if f.session == first_session]
    assert len(sent) == len(frames) > 0, "every frame the truth calls sent reached the client"
    flaps = [f for f in truth.faults() if f["kind"] == "flap"]
    assert flaps and flaps[0]["session"] == first_session
    assert sim.counters.drops >= 1


async def test_silence_keeps_the_socket_open_and_stops_data(tmp_path: Path) -> None:
    cfg = config(tmp_path, "silent:1.0@0.8", pingpong_interval_s=0.3, pingpong_timeout_s=1.0)
    async with running(cfg) as (sim, key), connect(sim.ws_url) as ws:
        await subscribe(ws, key, TRADE, "005930")
        await subscribe(ws, key, BOOK, "005930")
        arrivals: list[float] = []
        pings: list[float] = []
        deadline = time.monotonic() + 3.0
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await asyncio.wait_for(ws.recv(), left)
            except TimeoutError:
                break
            assert isinstance(msg, str)
            if msg[0] in "01":
                arrivals.append(time.monotonic())
            elif "PINGPONG" in msg:
                pings.append(time.monotonic())
                await ws.send(msg)
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        longest = max(gaps)
        start = arrivals[gaps.index(longest)]
        assert 0.8 <= longest < 1.6
        assert any(start < p < start + longest for p in pings), "keep-alive continues while silent"
        assert arrivals[-1] > start + longest - 0.01, "data resumes on the same socket"
    faults = TruthReader(tmp_path / "truth").faults()
    assert [f["kind"] for f in faults] == ["silent"]


async def test_malformed_frames_are_injected_and_counted(tmp_path: Path) -> None:
    async with running(config(tmp_path, "malformed:0.2")) as (sim, key), connect(sim.ws_url) as ws:
        frames = await request_all(ws, key, [(TRADE, "005930")], "1")
        frames += await collect(ws, 1.5, keep_malformed=True)
        frames += await unsubscribe_all(ws, key, [(TRADE, "005930")])
    bad = 0
    for frame in frames:
        try:
            parse(frame)
        except (AssertionError, ValueError, KeyError):
            bad += 1
    truth = TruthReader(tmp_path / "truth").counts()
    assert bad == truth.frames_malformed == truth.faults["malformed"] > 0
    assert truth.trades_sent == sum(len(parse(f)[1]) for f in frames if _ok(f))


def _ok(frame: str) -> bool:
    try:
        parse(frame)
    except (AssertionError, ValueError, KeyError):
        return False
    return True


async def test_grown_records_carry_one_more_field(tmp_path: Path) -> None:
    async with (
        running(config(tmp_path, "grow:H0STASP0x3")) as (sim, key),
        connect(sim.ws_url) as ws,
    ):
        await subscribe(ws, key, BOOK, "005930")
        frames = await collect(ws, 1.0)
    widths = []
    for frame in frames:
        _, _, count, payload = frame.split("|", 3)
        widths.append(len(payload.split("^")) // int(count))
    assert widths[:3] == [60, 60, 60] and set(widths[3:]) == {59}
    assert sim.counters.grown_frames == 3


async def test_a_halted_symbol_sends_nothing_while_others_trade(tmp_path: Path) -> None:
    cfg = config(tmp_path, "halt:005930@09:00-10:00")
    async with running(cfg) as (sim, key), connect(sim.ws_url) as ws:
        for s in ("005930", "000660"):
            await subscribe(ws, key, TRADE, s)
        frames = await collect(ws, 1.0)
    symbols = {parse(f)[1][0][0] for f in frames}
    assert symbols == {"000660"}
    halts = [f for f in TruthReader(tmp_path / "truth").faults() if f["kind"] == "halt"]
    assert halts[0]["detail"]["symbol"] == "005930"


async def _until(condition: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_a_slow_client_is_dropped_without_stalling_the_others(tmp_path: Path) -> None:
    cfg = config(tmp_path, speed=120.0, max_pending_frames=50)
    arrivals: list[float] = []

    async def read(ws: ClientConnection) -> None:
        async for msg in ws:
            if isinstance(msg, str) and msg[0] == "0":
                arrivals.append(time.monotonic())

    async with running(cfg) as (sim, key):
        fast_key = await approval_key(sim, "APPKEY2")
        async with connect(sim.ws_url) as fast:
            await subscribe(fast, fast_key, TRADE, "005930")
            reader = asyncio.create_task(read(fast))
            async with connect(sim.ws_url, max_queue=1) as slow:
                for symbol in ("005930", "000660", "069500", "122630"):
                    for tr in (TRADE, BOOK):
                        await slow.send(request(key, tr, symbol))  # and never read
                await _until(lambda: sim.counters.slow_consumers_dropped > 0, 30, "never dropped")
                dropped_at = time.monotonic()
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(slow.recv(), 10)
            await _until(
                lambda: bool(arrivals) and arrivals[-1] > dropped_at + 0.2, 5, "fast client stalled"
            )
            reader.cancel()
    assert arrivals[0] < dropped_at, "the fast client got data while the slow one lagged"
    faults = TruthReader(tmp_path / "truth").faults()
    assert [(f["kind"], f["session"]) for f in faults] == [("slow_consumer", 2)]


async def test_a_connection_opened_during_a_silence_gets_data(tmp_path: Path) -> None:
    async with running(config(tmp_path, "silent:3@0.5")) as (sim, key):
        other = await approval_key(sim, "APPKEY2")
        async with connect(sim.ws_url) as stale:
            await subscribe(stale, key, TRADE, "005930")
            deadline = time.monotonic() + 5
            while await collect(stale, 0.3):  # data until the silence starts
                assert time.monotonic() < deadline, "the silence never started"
            async with connect(sim.ws_url) as fresh:
                await subscribe(fresh, other, TRADE, "005930")
                assert await collect(fresh, 0.5), "a new connection is not silenced"
            assert not await collect(stale, 0.2), "the stale one stays silent"
            assert await collect(stale, 3.0), "and gets data again after the silence"
    faults = TruthReader(tmp_path / "truth").faults()
    assert faults[0]["kind"] == "silent" and len(faults[0]["detail"]["sessions"]) == 1


@pytest.mark.parametrize("path", ["", "/", "/tryitout/H0STCNT0", "/anything"])
async def test_any_path_is_accepted(tmp_path: Path, path: str) -> None:
    async with running(config(tmp_path)) as (sim, key):
        base = sim.ws_url.removesuffix("/tryitout")
        async with connect(base + path) as ws:
            assert (await subscribe(ws, key, TRADE, "005930"))["body"]["msg_cd"] == "OPSP0000"
