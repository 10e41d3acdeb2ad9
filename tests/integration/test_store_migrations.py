"""Migrations on a real PostgreSQL: empty → head, re-run, concurrent runs, down and up again,
and no drift between the migrated database and ``tickguard.store.schema``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from tickguard.errors import StorageError
from tickguard.store import migrate
from tickguard.store.schema import metadata

ADMIN = os.environ.get(
    "TICKGUARD_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TABLES = {
    "trades",
    "book_snapshots",
    "minute_bars",
    "gaps",
    "collector_runs",
    "quarantine",
    "halts",
    "incidents",
    "quality_digests",
}


@pytest.fixture
def empty_db() -> Iterator[str]:
    """A brand-new, unmigrated database (plain postgresql:// URL)."""
    name = f"tg_empty_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        yield ADMIN.rpartition("/")[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def _tables(url: str) -> set[str]:
    with psycopg.connect(migrate.libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " UNION SELECT relname FROM pg_class WHERE relkind = 'p'"
        ).fetchall()
    return {name for (name,) in rows}


def test_empty_to_head_then_rerun_is_a_noop(empty_db: str) -> None:
    assert migrate.current_revision(empty_db) is None
    assert not migrate.is_current(empty_db)
    migrate.upgrade(empty_db)
    assert migrate.current_revision(empty_db) == migrate.head_revision() == "0002"
    assert migrate.is_current(empty_db)
    first = _tables(empty_db)
    assert first >= TABLES | {"alembic_version", "trades_default", "book_snapshots_default"}
    migrate.upgrade(empty_db)
    assert _tables(empty_db) == first
    assert migrate.is_current(empty_db)


def test_concurrent_upgrades_serialise(empty_db: str) -> None:
    """Several processes (persist replicas starting together) upgrade the same database."""
    code = "import sys; from tickguard.store.migrate import upgrade; upgrade(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, empty_db], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    outcomes = [
        (proc.wait(timeout=120), proc.stderr.read() if proc.stderr else b"") for proc in procs
    ]
    assert [rc for rc, _ in outcomes] == [0, 0, 0], outcomes
    assert migrate.is_current(empty_db)


def test_threads_in_one_process_take_turns(empty_db: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate.upgrade(empty_db)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert migrate.is_current(empty_db)


def test_downgrade_to_base_and_up_again(empty_db: str) -> None:
    migrate.upgrade(empty_db)
    migrate.downgrade(empty_db, "base")
    assert migrate.current_revision(empty_db) is None
    assert _tables(empty_db) & TABLES == set()
    assert not any(name.startswith("trades_") for name in _tables(empty_db))
    migrate.upgrade(empty_db)
    assert migrate.is_current(empty_db)


def test_schema_module_matches_migrated_database(db_url: str) -> None:
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_name": migrate.include_name, "compare_type": True}
            )
            diff = compare_metadata(context, metadata)
            indexes = {ix["name"] for ix in inspect(conn).get_indexes("trades")}
    finally:
        engine.dispose()
    assert diff == []
    assert {"ix_trades_symbol_ts", "ix_trades_ts"} <= indexes


def test_url_forms() -> None:
    assert migrate.sqlalchemy_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert migrate.sqlalchemy_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert migrate.libpq_url("postgresql+psycopg://u@h/d") == "postgresql://u@h/d"
    with pytest.raises(StorageError, match="postgresql"):
        migrate.sqlalchemy_url("mysql://u@h/d")


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StorageError, match="cannot connect to PostgreSQL"):
        migrate.current_revision("postgresql://postgres@127.0.0.1:1/nothing")


def test_cli_upgrade_and_current(
    empty_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tickguard.cli import app
    from tickguard.settings import get_settings

    with_password = empty_db.replace("postgres@", "postgres:s3cret-pw@", 1)  # trust auth
    monkeypatch.setenv("TICKGUARD_DATABASE_URL", with_password)
    monkeypatch.setenv("TICKGUARD_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        behind = runner.invoke(app, ["db", "current"])
        assert behind.exit_code == 1 and "current: empty  head: 0002" in behind.output
        up = runner.invoke(app, ["db", "upgrade"])
        assert up.exit_code == 0, up.output
        assert "schema: empty -> 0002" in up.output
        now = runner.invoke(app, ["db", "current"])
        assert now.exit_code == 0 and "up to date" in now.output
        for result in (behind, up, now):
            assert "s3cret-pw" not in result.output
    finally:
        get_settings.cache_clear()


def test_cli_unreachable_database_exits_with_a_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tickguard.cli import app
    from tickguard.settings import get_settings

    monkeypatch.setenv("TICKGUARD_DATABASE_URL", "postgresql://u:pw-x@127.0.0.1:1/none")
    monkeypatch.setenv("TICKGUARD_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "cannot connect to PostgreSQL" in result.output and "pw-x" not in result.output


def test_cli_malformed_url_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tickguard.cli import app
    from tickguard.settings import get_settings

    monkeypatch.setenv("TICKGUARD_DATABASE_URL", "mysql://u:pw-y@127.0.0.1/none")
    monkeypatch.setenv("TICKGUARD_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "current"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "TICKGUARD_DATABASE_URL" in result.output and "pw-y" not in result.output


def test_cli_current_names_a_database_newer_than_the_code(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tickguard.cli import app
    from tickguard.settings import get_settings

    with psycopg.connect(migrate.libpq_url(db_url), autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    monkeypatch.setenv("TICKGUARD_DATABASE_URL", db_url)
    monkeypatch.setenv("TICKGUARD_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "current"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "newer tickguard" in result.output
    assert migrate.known_revisions() == {"0001", "0002"}
