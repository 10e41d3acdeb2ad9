"""``tickguard bench stack``: the whole stack at rising rates (issue 9).

simulator → ``tickguard collect kis`` → Redis stream → ``tickguard persist`` → PostgreSQL,
each in its own OS process (:mod:`tickguard.bench.stack_procs`). A *message* is one
market-data record as the broker sends it: one H0STCNT0 trade or one H0STASP0 book update.

Each step runs a fresh simulator and collector at one offered rate (the market is flat, so
the rate is the simulator's speed × the market's events per session second) against the
same persist and database, for ``step_s`` wall seconds after a warm-up, then:

* offered msgs/s — events the simulator's ground truth says were due in the window;
* stored msgs/s — trade and book rows PostgreSQL committed in the window;
* latency — per trade due in the window: PostgreSQL's commit time of its row
  (``track_commit_timestamp``) minus the wall time the sim clock made it due (its exchange
  time at full float resolution, not the wire's HHMMSS); a trade never stored counts as
  infinitely late. Books take the same path; having no key they are counted, not timed;
* backlog — the persist group's undelivered entries at the start and end of the window.

A step is *sustained* when stored ≥ 95 % of offered, the backlog did not grow and p99 < 1 s.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

from tickguard.bench.stack_procs import (
    RssSampler,
    SimChild,
    SimInfo,
    SimPlan,
    admin_query,
    app_env,
    bench_market,
    private_postgres,
    private_redis,
    spawn,
    terminate,
    tickguard_bin,
)
from tickguard.errors import StackError
from tickguard.sim.events import seconds_of
from tickguard.sim.truth import GENERATED, _records
from tickguard.sim.universe import default_symbols
from tickguard.sinks.redis_stream import stream_key
from tickguard.sinks.stream_admin import groups

log = logging.getLogger(__name__)

START_MARGIN_S = 40.0
"""Wall seconds allowed from the simulator listening to the window's warm-up (the
collector starts, fetches approval keys, subscribes and the first rows are stored).
Measured 16–20 s at load 8 on the 2-core box: at 15 s the window's end ran on live
generation and the simulator fell 2–8 s behind its clock."""
SUSTAINED_SHARE = 0.95
P99_TARGET_S = 1.0
GROUP = "persist"


@dataclass(frozen=True, slots=True)
class StepResult:
    target_msgs_per_s: float
    speed: float
    seconds: float
    offered_msgs_per_s: float
    stored_msgs_per_s: float
    rows_stored: int
    """Trade and book rows in PostgreSQL after the step (counted before it is cleared)."""
    trades_timed: int
    trades_lost: int
    p50_latency_s: float
    p99_latency_s: float
    max_latency_s: float
    backlog_start: int
    backlog_end: int
    sim_lag_max_s: float
    sim_records_per_frame: float
    slow_consumers_dropped: int
    sustained: bool
    load_avg_1m: float
    cpu_cores: dict[str, float] = field(default_factory=dict)
    """CPU the window used, in cores (CPU seconds ÷ wall seconds), by process: sim,
    collector, persist, postgres (the server and its backends), redis; ``box`` is every
    process on the machine, so ``box`` minus the rest is what else ran meanwhile."""


@dataclass(slots=True)
class StackResult:
    symbols: int
    sessions: int
    steps: list[StepResult] = field(default_factory=list)
    peak_rss_mb_by_process: dict[str, float] = field(default_factory=dict)
    load_avg_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_avg_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rows_stored: int = 0

    @property
    def best(self) -> StepResult | None:
        ok = [s for s in self.steps if s.sustained]
        return max(ok, key=lambda s: s.stored_msgs_per_s) if ok else None

    def as_json(self) -> dict[str, Any]:
        best = self.best
        rss = self.peak_rss_mb_by_process
        return {
            "message": "one market-data record as the broker sends it (trade or book update)",
            "sustained_msgs_per_s": best.stored_msgs_per_s if best else 0.0,
            "p50_latency_s": best.p50_latency_s if best else None,
            "p99_latency_s": best.p99_latency_s if best else None,
            "peak_rss_mb": max(rss.values()) if rss else 0.0,
            "peak_rss_mb_by_process": rss,
            "symbols": self.symbols,
            "sessions": self.sessions,
            "rows_stored": self.rows_stored,
            "load_avg_start": list(self.load_avg_start),
            "load_avg_end": list(self.load_avg_end),
            "cpus": os.cpu_count(),
            "steps": [asdict(s) for s in self.steps],
        }


def market_rate(symbols: list[str], seed: int, span_s: float = 120.0) -> float:
    """Events per session second of the flat bench market (counted over ``span_s``)."""
    from tickguard.sim.market import Market

    market = Market(bench_market(symbols, seed))
    start = seconds_of(bench_start())
    n = 0
    for ev in market.events(start):
        if ev.t >= start + span_s:
            break
        n += ev.t > start  # the opening auction print is not part of the steady rate
    return n / span_s


def bench_start() -> Any:
    from datetime import time as dtime

    return dtime(9, 0)


class Stack:
    """Private servers and one persist for the whole run; a sim + collector per step."""

    def __init__(self, root: Path, symbols: int, *, seed: int = 1, record: bool = False,
                 rss_interval_s: float = 0.5) -> None:  # fmt: skip
        self.root, self.seed, self.record = root, seed, record
        self.codes = default_symbols(symbols)
        self.prefix = f"tgbench:{uuid.uuid4().hex[:8]}"
        self.sampler = RssSampler(rss_interval_s)
        self.db_url = self.redis_url = ""
        self.pump_interval_s = 0.01
        self.last_cpu_cores: dict[str, float] = {}
        """Cores each part used in the last step's window (see :meth:`cpu_seconds`)."""
        self._step = 0

    @property
    def sessions(self) -> int:
        return -(-len(self.codes) // 20)

    def env(self, sim: SimInfo | None = None) -> dict[str, str]:
        return app_env(database_url=self.db_url, redis_url=self.redis_url, prefix=self.prefix,
                       data_dir=self.root / "data", sim=sim, symbols=len(self.codes))  # fmt: skip

    def stream_backlog(self) -> int:
        client = redis.Redis.from_url(self.redis_url)
        try:
            for g in groups(client, stream_key(self.prefix)):
                if g.name == GROUP:
                    return (g.lag or 0) + g.pending
            return 0
        finally:
            client.close()

    def committed_between(self, w0: float, w1: float) -> int:
        q = (
            "SELECT (SELECT count(*) FROM trades WHERE {c}) + "
            "(SELECT count(*) FROM book_snapshots WHERE {c})"
        ).format(c=f"extract(epoch FROM pg_xact_commit_timestamp(xmin)) BETWEEN {w0} AND {w1}")
        return int(admin_query(self.db_url, q)[0][0])

    def rows(self) -> int:
        q = "SELECT (SELECT count(*) FROM trades) + (SELECT count(*) FROM book_snapshots)"
        return int(admin_query(self.db_url, q)[0][0])

    def wait_drained(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.stream_backlog() == 0:
                return True
            time.sleep(0.2)
        return False

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each part of the stack, and by the whole box."""
        out: dict[str, float] = {}
        for name, pid in self.sampler.pids().items():
            out[name] = _cpu_of([pid])
        postmaster = next(self.root.glob("pg/**/postmaster.pid"), None)
        if postmaster is not None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(postmaster.read_text().split()[0])
                with contextlib.suppress(psutil.Error):
                    kids = [c.pid for c in psutil.Process(pid).children(recursive=True)]
                    out["postgres"] = _cpu_of([pid, *kids])
        servers = [
            c.pid
            for c in psutil.Process().children()
            if c.name().startswith(("redis-server", "valkey-server"))
        ]
        if servers:
            out["redis"] = _cpu_of(servers)
        box = psutil.cpu_times()
        out["box"] = box.user + box.nice + box.system + box.irq + box.softirq
        return out

    def run_step(
        self, speed: float, warmup_s: float, seconds: float, pregenerate: bool = True
    ) -> tuple[SimInfo, Path, float, float, int, int]:
        """One sim + collector at ``speed``; returns (sim, truth, w0, w1, backlog0, backlog1).

        With ``pregenerate`` the simulator prepares the tape up to the end of the window
        (plus ``START_MARGIN_S`` for the collector to start) before its clock runs.
        """
        self._step += 1
        truth = self.root / f"truth-{self._step}"
        ahead = (START_MARGIN_S + warmup_s + seconds) * speed if pregenerate else 0.0
        plan = SimPlan(self.codes, speed, self.seed + self._step, truth, bench_start(), ahead,
                       self.pump_interval_s)  # fmt: skip
        t0 = time.monotonic()
        sim = SimChild(plan)
        log.info("step %d: simulator up in %.1f s (speed %.2f)", self._step, time.monotonic() - t0,
                 speed)  # fmt: skip
        self.sampler.watch("sim", sim.pid)
        argv = [tickguard_bin(), "collect", "kis", "--symbols", ",".join(self.codes)]
        argv += ["--record" if self.record else "--no-record"]
        collector = spawn(argv, self.env(sim.info), self.root / f"collector-{self._step}.log")
        self.sampler.watch("collector", collector.pid)
        try:
            before = self.rows()
            if not _wait(lambda: self.rows() > before, 60.0):
                raise StackError(f"nothing stored within 60 s; see {self.root}")
            log.info("step %d: first rows stored %.1f s after start", self._step,
                     time.monotonic() - t0)  # fmt: skip
            time.sleep(warmup_s)
            w0, b0, cpu0 = time.time(), self.stream_backlog(), self.cpu_seconds()
            time.sleep(seconds)
            w1, b1, cpu1 = time.time(), self.stream_backlog(), self.cpu_seconds()
            self.last_cpu_cores = {
                k: round((cpu1[k] - cpu0[k]) / (w1 - w0), 2) for k in cpu1 if k in cpu0
            }
        finally:
            terminate(collector)
            self.sampler.forget("collector")
            sim.stop()
            self.sampler.forget("sim")
        t1 = time.monotonic()
        drained = self.wait_drained(60.0)
        log.info("step %d: stopped; stream %s after %.1f s", self._step,
                 "drained" if drained else "NOT drained", time.monotonic() - t1)  # fmt: skip
        return sim.info, truth, w0, w1, b0, b1

    def truncate(self) -> None:
        admin_query(self.db_url, "TRUNCATE trades, book_snapshots, quarantine")


def _cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` (those already gone count 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


def _wait(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def offered(truth: Path, sim: SimInfo, w0: float, w1: float) -> int:
    """Events (trades and books) the sim clock made due within [w0, w1]."""
    t0, t1 = _session_t(sim, w0), _session_t(sim, w1)
    return sum(1 for r in _records(truth / GENERATED) if t0 <= r[6 if r[0] == "T" else 3] <= t1)


def _session_t(sim: SimInfo, wall: float) -> float:
    return sim.start_t + (wall - sim.epoch0) * sim.speed


def latencies(db_url: str, truth: Path, sim: SimInfo, w0: float, w1: float,
              symbols: list[str] | None = None) -> tuple[list[float], int]:  # fmt: skip
    """Commit time − due time of each trade due in [w0, w1] (of ``symbols``, default all);
    also how many of them were never stored (they count as infinitely late)."""
    t0, t1 = _session_t(sim, w0), _session_t(sim, w1)
    chosen = None if symbols is None else set(symbols)
    due: dict[tuple[str, int], float] = {}
    for r in _records(truth / GENERATED):
        if r[0] == "T" and t0 <= r[6] <= t1 and (chosen is None or r[1] in chosen):
            due[(r[1], r[2])] = sim.epoch0 + (r[6] - sim.start_t) / sim.speed
    query = (
        "SELECT symbol, cum_volume, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8"
        " FROM trades"
    )
    params: tuple[Any, ...] = ()
    if symbols is not None:
        query, params = query + " WHERE symbol = ANY(%s)", (symbols,)
    out: list[float] = []
    for symbol, cum, committed in admin_query(db_url, query, params):
        at = due.pop((symbol, cum), None)
        if at is not None:
            out.append(float(committed) - at)
    lost = len(due)
    out.extend([math.inf] * lost)
    out.sort()
    return out, lost


def quantile(values: list[float], q: float) -> float:
    if not values:
        return math.inf
    return values[min(len(values) - 1, int(q * len(values)))]


def _per_frame(counters: dict[str, Any]) -> float:
    frames = int(counters.get("frames_sent", 0))
    records = int(counters.get("trade_records_sent", 0)) + int(counters.get("book_records_sent", 0))
    return round(records / frames, 2) if frames else 0.0


def _finite(x: float) -> float:
    return round(x, 4) if math.isfinite(x) else 1e9


def measure_step(stack: Stack, target: float, speed: float, warmup_s: float,
                 seconds: float) -> StepResult:  # fmt: skip
    sim, truth, w0, w1, b0, b1 = stack.run_step(speed, warmup_s, seconds)
    span = w1 - w0
    n_offered = offered(truth, sim, w0, w1)
    n_stored = stack.committed_between(w0, w1)
    lat, lost = latencies(stack.db_url, truth, sim, w0, w1)
    offered_rate, stored_rate = n_offered / span, n_stored / span
    p50, p99 = quantile(lat, 0.5), quantile(lat, 0.99)
    grew = b1 > b0 + max(20, b0 // 2)
    ok = stored_rate >= SUSTAINED_SHARE * offered_rate and not grew and p99 < P99_TARGET_S
    counters = sim.counters
    rows = stack.rows()
    stack.truncate()
    shutil.rmtree(truth, ignore_errors=True)
    return StepResult(
        target_msgs_per_s=target, speed=round(speed, 3), seconds=round(span, 2),
        offered_msgs_per_s=round(offered_rate, 1), stored_msgs_per_s=round(stored_rate, 1),
        rows_stored=rows, trades_timed=len(lat) - lost, trades_lost=lost,
        p50_latency_s=_finite(p50),
        p99_latency_s=_finite(p99), max_latency_s=_finite(lat[-1] if lat else math.inf),
        backlog_start=b0, backlog_end=b1,
        sim_lag_max_s=round(float(counters.get("lag_max_s", 0.0)), 3),
        sim_records_per_frame=_per_frame(counters),
        slow_consumers_dropped=int(counters.get("slow_consumers_dropped", 0)),
        sustained=ok, load_avg_1m=round(os.getloadavg()[0], 2),
        cpu_cores=dict(stack.last_cpu_cores),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StackPlan:
    rates: tuple[float, ...] = (10_000.0, 20_000.0, 30_000.0, 40_000.0)
    step_s: float = 20.0
    warmup_s: float = 3.0
    symbols: int = 200
    seed: int = 1
    record: bool = False
    stop_after_failures: int = 1


@contextlib.contextmanager
def open_stack(symbols: int, *, seed: int = 1, record: bool = False,
               rss_interval_s: float = 0.5) -> Iterator[Stack]:  # fmt: skip
    """Private PostgreSQL and Redis, and persist running; everything removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="tickguard-bench-stack-"))
    stack = Stack(root, symbols, seed=seed, record=record, rss_interval_s=rss_interval_s)
    try:
        with private_postgres(root / "pg") as db_url, private_redis(root / "redis") as rd_url:
            stack.db_url, stack.redis_url = db_url, rd_url
            argv = [tickguard_bin(), "persist", "--consumer", "bench"]
            persist = spawn(argv, stack.env(), root / "persist.log")
            stack.sampler.watch("persist", persist.pid)
            stack.sampler.start()
            try:
                yield stack
            finally:
                stack.sampler.stop()
                terminate(persist)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_stack_bench(plan: StackPlan) -> StackResult:
    """Step the offered rate up until ``stop_after_failures`` steps in a row are not sustained."""
    result = StackResult(symbols=plan.symbols, sessions=-(-plan.symbols // 20))
    result.load_avg_start = _load()
    base = market_rate(default_symbols(plan.symbols), plan.seed)
    failures = 0
    with open_stack(plan.symbols, seed=plan.seed, record=plan.record) as stack:
        for target in plan.rates:
            step = measure_step(stack, target, target / base, plan.warmup_s, plan.step_s)
            result.steps.append(step)
            failures = 0 if step.sustained else failures + 1
            if failures >= plan.stop_after_failures:
                break
        result.rows_stored = sum(s.rows_stored for s in result.steps)
        result.peak_rss_mb_by_process = stack.sampler.peak_mb()
    result.load_avg_end = _load()
    return result


def _load() -> tuple[float, float, float]:
    a, b, c = os.getloadavg()
    return (round(a, 2), round(b, 2), round(c, 2))
