"""``tickguard bench check`` runs end to end on a small table and leaves nothing behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from tickguard.cli import app

ADMIN = os.environ.get(
    "TICKGUARD_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _bench_databases() -> set[str]:
    with psycopg.connect(ADMIN) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'tickguard\\_bench\\_%'"
            " AND datname <> 'tickguard_bench_check'"
        ).fetchall()
    return {name for (name,) in rows}


def test_bench_check_reports_sql_and_gx_times(settings_env: Path) -> None:
    before = _bench_databases()
    result = CliRunner().invoke(
        app, ["bench", "check", "--rows", "100000", "--symbols", "5", "--days", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["rows"] >= 99_990 and data["symbols"] == 5 and data["days"] == 3
    assert data["generated"] is True and data["gx_success"] is True and data["gaps_opened"] == 0
    for key in ("sql_s", "gx_s", "check_s", "gx_import_s"):
        assert data[key] >= 0
    assert data["check_s"] >= data["sql_s"]
    assert _bench_databases() - before == set()  # the scratch database is dropped


def test_bench_check_rejects_bad_rows(settings_env: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "check", "--rows", "0"])
    assert result.exit_code == 2 and "--rows" in result.output
