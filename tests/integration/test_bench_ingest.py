"""``tickguard bench ingest --json``: one object, every row stored once, scratch resources gone.

Only correctness is asserted here (speed is a figure the command reports, not a test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import psycopg
import redis

from tickguard.bench.ingest import synthetic_batches

PG_ADMIN = os.environ.get(
    "TICKGUARD_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _bench_databases() -> set[str]:
    with psycopg.connect(PG_ADMIN) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'tickguard_bench_%'"
        )
        return {r[0] for r in rows}


def _bench_keys(redis_url: str) -> set[bytes]:
    client = redis.Redis.from_url(redis_url)
    try:
        return set(client.scan_iter(match="tickguard_bench_*", count=1000))
    finally:
        client.close()


def test_synthetic_feed_is_realistic_and_seeded() -> None:
    batches = list(synthetic_batches(10_000, batch_size=2_000, symbols=40))
    trades = [t for b in batches for t in b.trades]
    assert [len(b.trades) for b in batches] == [2_000] * 5
    assert len({t.symbol for t in trades}) == 40
    assert len({t.key for t in trades}) == 10_000  # natural keys unique: nothing collapses
    per_symbol = Counter(t.symbol for t in trades)
    assert max(per_symbol.values()) < 3 * min(per_symbol.values())
    assert [t.key for t in trades[:50]] == [t.key for t in next(synthetic_batches(50)).trades]


def test_bench_ingest_json_stores_every_row_once(redis_url: str) -> None:
    env = {
        **os.environ,
        "TICKGUARD_DATABASE_URL": PG_ADMIN,
        "TICKGUARD_REDIS_URL": redis_url,
    }
    before_dbs, before_keys = _bench_databases(), _bench_keys(redis_url)
    code = "from tickguard.cli import main; main()"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "bench",
            "ingest",
            "--rows",
            "9000",
            "--read-count",
            "2",
            "--json",
        ],
        env=env,
        capture_output=True,
        timeout=300,
        check=True,
    )
    lines = out.stdout.decode().strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["rows"] == 9_000 and result["batches"] == 5
    assert result["rows_stored"] == 9_000
    assert result["duplicates"] == 0 and result["quarantined"] == 0
    for key in ("persist_rows_per_s", "copy_rows_per_s", "ratio", "sink_rows_per_s"):
        assert result[key] > 0
    assert abs(result["ratio"] - result["persist_rows_per_s"] / result["copy_rows_per_s"]) < 0.01
    assert _bench_databases() == before_dbs
    assert _bench_keys(redis_url) == before_keys


def test_bench_ingest_rejects_bad_arguments() -> None:
    code = "from tickguard.cli import main; main()"
    out = subprocess.run(
        [sys.executable, "-c", code, "bench", "ingest", "--rows", "zero"],
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert b"Usage" in out.stderr and b"--rows" in out.stderr
