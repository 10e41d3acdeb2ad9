"""Start and stop the Prefect server and workers as child processes.

Used by ``tickguard up`` and by the tests (one server per test session). The server gets a
PostgreSQL back end in a database of its own (SQLite locks under load, see
prefect-gx-notes), lease storage on disk and causal ordering in the database, so that
concurrency leases and automation triggers survive a server restart. Workers need two
signals to stop (``prefect worker start`` ignores the first SIGINT/SIGTERM while idle or
busy), so :func:`stop_process` escalates: SIGINT, SIGINT again, SIGTERM, then SIGKILL of the
process group, each with a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from tickguard.errors import StackError
from tickguard.store.migrate import libpq_url

log = logging.getLogger(__name__)

OFFLINE_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "tickguard",
}


def prefect_bin() -> str:
    """The ``prefect`` script of this environment (beside the running interpreter)."""
    candidate = Path(sys.executable).with_name("prefect")
    return str(candidate) if candidate.exists() else "prefect"


def ensure_prefect_database(database_url: str, name: str = "prefect") -> str:
    """Create database ``name`` on the server of ``database_url`` if missing; its asyncpg URL."""
    url = make_url(database_url)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log.info("created database %s for the Prefect server", name)
    return url.set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False
    )


def server_env(prefect_db_url: str, home: Path, port: int) -> dict[str, str]:
    """The server's environment. The UI learns the API address from the settings, not from
    ``--port``: without PREFECT_UI_API_URL it would call 127.0.0.1:4200 and show nothing."""
    api = f"http://127.0.0.1:{port}/api"
    return {
        **OFFLINE_ENV,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": api,
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db_url,
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": (
            "prefect.server.concurrency.lease_storage.filesystem"
        ),
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect.server.events.ordering.db",
    }


@dataclass
class Child:
    """A child process with its log file; ``name`` is for messages."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


def spawn(
    name: str, args: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None
) -> Child:
    """Start ``args`` in its own session (so signals to us do not reach it twice)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = log_path.open("ab")
    proc = subprocess.Popen(
        args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True, cwd=cwd,
    )  # fmt: skip
    log.info("%s started (pid %d, log %s)", name, proc.pid, log_path)
    return Child(name, proc, log_path, out)


def start_server(
    prefect_db_url: str, home: Path, port: int, log_path: Path, *, timeout_s: float = 90.0
) -> tuple[Child, str]:
    """A Prefect server on 127.0.0.1:``port``; returns it and its API URL once healthy."""
    home.mkdir(parents=True, exist_ok=True)
    args = [prefect_bin(), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    child = spawn("prefect server", args, server_env(prefect_db_url, home, port), log_path)
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_healthy(api, timeout_s, child)
    except StackError:
        stop_process(child)
        raise
    return child, api


def wait_healthy(api_url: str, timeout_s: float, child: Child | None = None) -> float:
    """Poll ``/health`` until it answers (deadline); the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise StackError(f"{child.name} exited early; see {child.log_path}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2.0).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise StackError(f"Prefect API at {api_url} not healthy after {timeout_s:.0f} s")


def start_worker(
    pool: str,
    name: str,
    env: dict[str, str],
    log_path: Path,
    cwd: Path,
    queues: list[str] | None = None,
) -> Child:
    """A process worker on ``pool``; ``queues`` restricts it (scale-out), None pulls all."""
    args = [prefect_bin(), "worker", "start", "--pool", pool, "--type", "process", "--name", name]
    for queue in queues or []:
        args += ["--work-queue", queue]
    return spawn(f"worker {name}", args, {**OFFLINE_ENV, **env}, log_path, cwd)


def stop_process(child: Child, timeout_s: float = 20.0) -> int | None:
    """Stop ``child`` (two SIGINTs, SIGTERM, then SIGKILL of its group); its exit code."""
    steps: list[tuple[signal.Signals, float]] = [
        (signal.SIGINT, 0.3), (signal.SIGINT, timeout_s * 0.5), (signal.SIGTERM, timeout_s * 0.5)
    ]  # fmt: skip
    for sig, wait_s in steps:
        if not child.alive():
            break
        try:
            child.process.send_signal(sig)
            child.process.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
    if child.alive():
        log.warning("%s did not stop; killing its process group", child.name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.process.wait(10)
    child._log.close()
    log.info("%s stopped (exit %s)", child.name, child.process.returncode)
    return child.process.returncode
