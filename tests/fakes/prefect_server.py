"""A real Prefect server for the test session (pytest plugin, see tests/conftest.py).

One server per session on a free loopback port, PostgreSQL back end in a scratch database
on the test PostgreSQL, dropped afterwards. ``prefect_api`` yields its API URL with
``PREFECT_API_URL`` set for this process (Prefect's settings context) and in ``os.environ``
for child processes.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

PG_ADMIN_URL = os.environ.get(
    "TICKGUARD_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@dataclass(frozen=True)
class PrefectApi:
    url: str
    ui_url: str
    healthy_s: float
    log_path: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectApi]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tickguard.orchestration import processes

    name = f"tg_prefect_{uuid.uuid4().hex[:10]}"
    base = tmp_path_factory.mktemp("prefect")
    admin = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    db = processes.ensure_prefect_database(admin, name)
    started = time.monotonic()
    child, api = processes.start_server(db, base / "home", free_port(), base / "server.log")
    healthy = time.monotonic() - started
    print(f"\nprefect server healthy after {healthy:.1f} s ({api})")
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api
    try:
        with temporary_settings(updates={PREFECT_API_URL: api}):
            yield PrefectApi(api, api.removesuffix("/api"), healthy, base / "server.log")
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous
        processes.stop_process(child)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
