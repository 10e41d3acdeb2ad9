"""How much load the KIS simulator pushes from one process (``tickguard sim bench``).

The simulator runs in this process; a plain reading client runs in a child process (so the
two do not share one core's event loop), subscribes every symbol × {H0STCNT0, H0STASP0}
within the 41-registration cap, and counts frames and records for a fixed wall time. The
figure that matters is records/s delivered, next to the simulator's own lag behind its
clock (a simulator that cannot keep up falls behind instead of dropping).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import time
from dataclasses import asdict, dataclass
from datetime import date
from datetime import time as dtime
from pathlib import Path
from typing import Any

import httpx
import psutil

from tickguard.errors import StackError
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.kis_wire import TR_BOOK, TR_TRADE
from tickguard.sim.market import MarketConfig
from tickguard.sim.universe import default_universe


@dataclass(frozen=True, slots=True)
class BenchResult:
    symbols: int
    speed: float
    seconds: float
    frames: int
    records: int
    records_per_s: float
    frames_per_s: float
    sim_cpu_pct: float
    records_per_sim_cpu_s: float
    """Records delivered per CPU-second the simulator used while the client was subscribed:
    its capacity on one free core, whatever else the (shared) machine was doing."""
    load_avg_1m: float
    sim_lag_max_s: float
    sim_peak_rss_mb: float


async def _client(ws_url: str, key: str, symbols: list[str], seconds: float) -> dict[str, int]:
    from websockets.asyncio.client import connect

    frames = records = 0
    async with connect(ws_url, ping_interval=None, max_size=None) as ws:
        for symbol in symbols:
            for tr in (TR_TRADE, TR_BOOK):
                header = {
                    "approval_key": key,
                    "custtype": "P",
                    "tr_type": "1",
                    "content-type": "utf-8",
                }
                body = {"input": {"tr_id": tr, "tr_key": symbol}}
                await ws.send(json.dumps({"header": header, "body": body}))
        # One timeout around the loop: a wait_for per message would cost more than parsing.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async for msg in ws:
                    if isinstance(msg, str) and msg[:1] == "0":
                        frames += 1
                        records += int(msg[11:14])
                    elif isinstance(msg, str) and '"PINGPONG"' in msg:
                        await ws.send(msg)
    return {"frames": frames, "records": records}


def _client_main(ws_url: str, key: str, symbols: list[str], seconds: float, out: Any) -> None:
    out.put(asyncio.run(_client(ws_url, key, symbols, seconds)))


async def run_bench(symbols: int, speed: float, seconds: float, truth_dir: Path) -> BenchResult:
    """Run the simulator against one reading client in a child process; return the figures."""
    universe = default_universe(symbols)
    names = [p.symbol for p in universe][:20]  # 20 × 2 TRs = 40 ≤ 41 registrations
    market = MarketConfig(day=date(2026, 11, 26), symbols=universe, seed=1)
    config = KisSimConfig(market=market, speed=speed, start_at=dtime(9, 0), truth_dir=truth_dir)
    proc = psutil.Process(os.getpid())
    async with KisSimulator(config) as sim:
        async with httpx.AsyncClient(base_url=sim.rest_url) as http:
            body = {"grant_type": "client_credentials", "appkey": "BENCH", "secretkey": "BENCH"}
            key = (await http.post("/oauth2/Approval", json=body)).json()["approval_key"]
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        child = ctx.Process(target=_client_main, args=(sim.ws_url, key, names, seconds, out))
        child.start()
        peak = 0.0
        cpu0 = wall0 = None
        while child.is_alive():
            peak = max(peak, proc.memory_info().rss / 2**20)
            if cpu0 is None and sim.counters.subscribed >= 2 * len(names):
                # CPU is counted from the moment the client is fully subscribed.
                cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(0.05)
        if cpu0 is None or wall0 is None:
            raise StackError("the bench client never subscribed")
        cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
        counts = out.get(timeout=5)
        lag = sim.counters.lag_max_s
    return BenchResult(
        symbols=symbols,
        speed=speed,
        seconds=seconds,
        frames=counts["frames"],
        records=counts["records"],
        records_per_s=round(counts["records"] / seconds, 1),
        frames_per_s=round(counts["frames"] / seconds, 1),
        sim_cpu_pct=round(100 * cpu_s / wall_s, 1),
        records_per_sim_cpu_s=round(counts["records"] / cpu_s, 1) if cpu_s else 0.0,
        load_avg_1m=round(os.getloadavg()[0], 2),
        sim_lag_max_s=round(lag, 3),
        sim_peak_rss_mb=round(peak, 1),
    )


def as_dict(result: BenchResult) -> dict[str, Any]:
    return asdict(result)
