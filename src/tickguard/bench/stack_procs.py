"""The processes of a whole-stack bench: private servers, the simulator child, the app processes.

``tickguard bench stack`` and ``tickguard bench soak`` run every part in its own OS process,
as deployed: the KIS simulator (a spawned child), ``tickguard collect kis`` and
``tickguard persist`` (the real commands), a private Redis and a private PostgreSQL. The
PostgreSQL is private because it runs with ``track_commit_timestamp = on``: the commit time
of every stored row is then PostgreSQL's own (``pg_xact_commit_timestamp(xmin)``), which
is what "stored" means in the exchange → stored latency. Nothing shared is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from tickguard.errors import StackError
from tickguard.models import KST
from tickguard.settings import StackSettings
from tickguard.stack._os import choose_privilege, wait_until
from tickguard.stack.postgres import ROLE, EmbeddedPostgres
from tickguard.store.migrate import libpq_url, upgrade

APPS_PER_SESSION = 20
"""Symbols per KIS app key: 20 × {H0STCNT0, H0STASP0} = 40 ≤ 41 registrations."""


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies (a killed bench leaves no
    simulator, collector or persist behind); elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def private_postgres(root: Path) -> Iterator[str]:
    """A migrated PostgreSQL of our own with commit timestamps on; yields its URL."""
    cfg = StackSettings(pg_port=free_port())
    server = EmbeddedPostgres(root, cfg, choose_privilege("auto", "nobody"))
    try:
        server.root.mkdir(mode=0o700, parents=True)
        server._initdb_once()
        with (server.data / "postgresql.auto.conf").open("a", encoding="utf-8") as fh:
            fh.write("track_commit_timestamp = on\n")
        server.up()
        with psycopg.connect(server._admin_conninfo(), autocommit=True) as conn:
            conn.execute(f"GRANT pg_read_all_settings TO {ROLE}")  # the migration asks
        url = server.url()
        upgrade(url)
        yield url
    finally:
        server.down()


@contextlib.contextmanager
def private_redis(root: Path) -> Iterator[str]:
    """A throwaway redis-server (no persistence) on a free port; yields its URL."""
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        raise StackError("bench stack needs redis-server (or valkey-server) on PATH")
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(root)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=die_with_parent)  # fmt: skip
    try:
        if not wait_until(lambda: _port_open(port), 10.0, 0.05):
            raise StackError("private redis-server did not start")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


# -- the simulator child ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimPlan:
    symbols: list[str]
    speed: float
    seed: int
    truth_dir: Path
    start_at: dtime = dtime(9, 0)
    pregenerate_s: float = 0.0
    """Session seconds prepared before the clock starts (:mod:`tickguard.sim.tape`)."""
    pump_interval_s: float = 0.01


@dataclass(slots=True)
class SimInfo:
    rest_url: str
    ws_url: str
    epoch0: float
    """Wall epoch at which the sim clock stood at ``start_t``."""
    start_t: float
    speed: float
    day: str
    counters: dict[str, Any] = field(default_factory=dict)


def bench_market(symbols: list[str], seed: int) -> Any:
    """A flat market (no open/close burst): the offered rate is set by ``speed`` alone."""
    from tickguard.sim.market import MarketConfig
    from tickguard.sim.universe import profiles_for

    day = datetime.now(KST).date()
    return MarketConfig(day=day, symbols=profiles_for(symbols), seed=seed,
                        open_burst=0.0, close_burst=0.0)  # fmt: skip


def _sim_main(plan: SimPlan, out: Any, stop: Any) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_sim(plan, out, stop))


async def _sim(plan: SimPlan, out: Any, stop: Any) -> None:
    from tickguard.sim.kis import KisSimConfig, KisSimulator

    config = KisSimConfig(market=bench_market(plan.symbols, plan.seed), speed=plan.speed,
                          start_at=plan.start_at, truth_dir=plan.truth_dir, slot_hold_s=0.0,
                          pingpong_interval_s=60.0, pingpong_timeout_s=60.0,
                          pregenerate_s=plan.pregenerate_s,
                          pump_interval_s=plan.pump_interval_s)  # fmt: skip
    async with KisSimulator(config) as sim:
        clock = sim.clock
        out.put(SimInfo(sim.rest_url, sim.ws_url, clock.epoch_at(clock.start_t), clock.start_t,
                        plan.speed, config.market.day.isoformat()))  # fmt: skip
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        counters = sim.counters.as_dict()
    out.put(counters)


class SimChild:
    """The simulator in a spawned process; ``info`` once it listens, ``counters`` after stop."""

    def __init__(self, plan: SimPlan) -> None:
        ctx = mp.get_context("spawn")
        self._out = ctx.Queue()
        self._stop = ctx.Event()
        self.proc = ctx.Process(target=_sim_main, args=(plan, self._out, self._stop))
        self.proc.start()
        try:
            self.info: SimInfo = self._out.get(timeout=600)
        except Exception:
            self.proc.kill()
            raise StackError("the simulator child did not start") from None

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        try:
            counters: dict[str, Any] = self._out.get(timeout=60)
        except Exception:
            counters = {}
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.info.counters = counters
        return counters


# -- the app processes -----------------------------------------------------------------


def tickguard_bin() -> str:
    path = Path(sys.executable).parent / "tickguard"
    if not path.exists():
        raise StackError(f"no tickguard command next to {sys.executable}")
    return str(path)


def app_env(*, database_url: str, redis_url: str, prefix: str, data_dir: Path,
            sim: SimInfo | None = None, symbols: int = 0) -> dict[str, str]:  # fmt: skip
    """The environment of ``tickguard collect``/``persist``: private servers, no metrics port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKGUARD_")}
    env.update({
        "TICKGUARD_DATABASE_URL": database_url,
        "TICKGUARD_REDIS_URL": redis_url,
        "TICKGUARD_SINK__STREAM_PREFIX": prefix,
        "TICKGUARD_DATA_DIR": str(data_dir),
        "TICKGUARD_METRICS__ENABLED": "false",
        "TICKGUARD_LOG_LEVEL": "WARNING",
    })  # fmt: skip
    if sim is not None:
        keys = max(1, -(-symbols // APPS_PER_SESSION))
        apps = [{"name": f"bench{i}", "app_key": f"bench-app-{i}", "app_secret": f"s{i}"}
                for i in range(keys)]  # fmt: skip
        env.update({
            "TICKGUARD_KIS__WS_URL": sim.ws_url,
            "TICKGUARD_KIS__REST_URL": sim.rest_url,
            "TICKGUARD_KIS__APPS": json.dumps(apps),
        })  # fmt: skip
    return env


def spawn(argv: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        return subprocess.Popen(argv, env=dict(env), stdout=fh, stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent)  # fmt: skip


def terminate(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> int | None:
    """SIGTERM (the commands stop cleanly on it), SIGKILL after ``timeout_s``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


# -- RSS sampling ----------------------------------------------------------------------


class RssSampler:
    """Samples the RSS of named processes every ``interval_s`` in a thread (MiB)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self._pids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self._pids[name] = pid

    def forget(self, name: str) -> None:
        with self._lock:
            self._pids.pop(name, None)

    def pids(self) -> dict[str, int]:
        """The processes watched now, by name."""
        with self._lock:
            return dict(self._pids)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def peak_mb(self) -> dict[str, float]:
        return {n: round(max(v for _, v in s), 1) for n, s in self.samples.items() if s}

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            with self._lock:
                pids = dict(self._pids)
            for name, pid in pids.items():
                with contextlib.suppress(psutil.Error):
                    rss = psutil.Process(pid).memory_info().rss / 2**20
                    self.samples.setdefault(name, []).append((now, rss))
            self._stop.wait(self.interval_s)


def admin_query(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return list(cur.fetchall()) if cur.description is not None else []
