"""``tickguard bench check``: one minute's completeness check on a large trades table.

The table is generated server-side (``INSERT … SELECT generate_series``) in a scratch
database on the configured PostgreSQL: ``rows`` trades over ``days`` trading days and
``symbols`` symbols, cumulative volume continuous (so the continuity checks do real work and
pass). Each day is loaded into a bare table, indexed, then attached as that day's partition
(loading without indexes and building them once is several times faster than inserting
into an indexed table). The check then runs on one minute of the last day, exactly as the
flow runs it: grid + continuity + ledger in SQL, then the GX suites.

The database is dropped afterwards unless ``keep`` is asked for; a kept database
(``tickguard_bench_check``) is reused by the next run when it holds enough rows.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from tickguard.calendar import TradingCalendar
from tickguard.quality.check import run_check
from tickguard.quality.suites import load_specs
from tickguard.quality.window import CheckWindow
from tickguard.settings import QualitySettings
from tickguard.store.migrate import libpq_url, sqlalchemy_url, upgrade
from tickguard.store.partitions import is_partitioned, partition_name

log = logging.getLogger(__name__)

KEPT_NAME = "tickguard_bench_check"
LAST_DAY = date(2026, 11, 13)
"""A fixed Friday well before today: outside the window of partitions a migration makes."""
CHECK_MINUTE = (11, 0)

_GENERATE = """
INSERT INTO {table} (broker, symbol, trading_day, ts, price, qty, side, cum_volume, source,
                     received_at)
SELECT 'kis', s.symbol, %(day)s,
       %(open)s::timestamptz + (i * %(step_us)s) * interval '1 microsecond',
       70000 + (i %% 50) * 10, 10, CASE WHEN i %% 2 = 0 THEN 'buy' ELSE 'sell' END,
       (i + 1) * 10, 'ws',
       %(open)s::timestamptz + (i * %(step_us)s + 20000) * interval '1 microsecond'
FROM unnest(%(symbols)s::text[]) AS s(symbol), generate_series(0::bigint, %(per)s - 1) AS i
"""


@dataclass(slots=True)
class CheckBenchResult:
    rows: int
    symbols: int
    days: int
    generated: bool
    generate_s: float
    sql_s: float
    """Grid, continuity and ledger statements of the checked minute."""
    gx_s: float
    """The GX validation of the minute (ephemeral context, QueryAssets, suites)."""
    gx_import_s: float
    check_s: float
    """The whole check: SQL + GX (GX already imported, as in a long-lived process)."""
    gaps_opened: int
    gx_success: bool
    window: str

    def as_json(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def trading_days(calendar: TradingCalendar, last: date, count: int) -> list[date]:
    days = [last]
    while len(days) < count:
        days.append(calendar.previous_trading_day(days[-1]))
    return sorted(days)


def _load_day(
    conn: psycopg.Connection[Any], day: date, symbols: list[str], per: int, open_: datetime
) -> None:
    """Load one day into a bare table, index it, attach it as the day's partition."""
    part = partition_name("trades", day)
    bare = sql.Identifier(f"{part}_load")
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(part)))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(bare))
    conn.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE {} (LIKE trades INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        ).format(bare)
    )
    step_us = int(380 * 60 * 1_000_000 / per)
    params = {"day": day, "open": open_, "step_us": step_us, "symbols": symbols, "per": per}
    conn.execute(sql.SQL(_GENERATE).format(table=bare), params)
    for stmt in (
        "ALTER TABLE {t} ADD PRIMARY KEY (symbol, trading_day, cum_volume)",
        "CREATE INDEX ON {t} (symbol, ts)",
        "CREATE INDEX ON {t} (ts)",
        "ALTER TABLE {t} SET LOGGED",
    ):
        conn.execute(sql.SQL(stmt).format(t=bare))
    bounds = sql.SQL("CHECK (trading_day >= {} AND trading_day < {})").format(
        sql.Literal(day), sql.Literal(day + timedelta(days=1))
    )
    conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT bench_day ").format(bare) + bounds)
    conn.execute(
        sql.SQL("ALTER TABLE trades ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            bare, sql.Literal(day), sql.Literal(day + timedelta(days=1))
        )
    )
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(bare, sql.Identifier(part)))
    conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT bench_day").format(sql.Identifier(part)))


def generate(
    url: str, rows: int, symbols: list[str], days: list[date], calendar: TradingCalendar
) -> None:
    per = max(1, rows // (len(symbols) * len(days)))
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        if not is_partitioned(conn, "trades"):
            raise RuntimeError("bench check needs native partitions (no TimescaleDB)")
        for day in days:
            session = calendar.session(day)
            assert session is not None
            _load_day(conn, day, symbols, per, session.open)
            log.info("bench check: %s loaded (%d rows)", day, per * len(symbols))
        conn.execute("ANALYZE trades")


def _count(url: str) -> int:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT count(*) FROM trades").fetchone()
    return int(row[0]) if row else 0


def _with_database(url: str, name: str) -> str:
    return make_url(sqlalchemy_url(url)).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def bench_database(admin_url: str, keep: bool) -> Iterator[tuple[str, bool]]:
    """(URL, existed): a scratch database, or the kept one when ``keep``."""
    name = KEPT_NAME if keep else f"tickguard_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        existed = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not existed:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_database(admin_url, name)
    try:
        upgrade(url)
        yield url, bool(existed)
    finally:
        if not keep:
            with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def run_check_bench(
    admin_url: str, *, rows: int, symbols: int = 20, days: int = 10, keep: bool = False
) -> CheckBenchResult:
    calendar = TradingCalendar()
    codes = [f"{i:06d}" for i in range(1, symbols + 1)]
    day_list = trading_days(calendar, LAST_DAY, days)
    with bench_database(admin_url, keep) as (url, existed):
        started = time.perf_counter()
        have = _count(url) if existed else 0
        generated = have < rows
        if generated:
            generate(url, rows, codes, day_list, calendar)
        generate_s = time.perf_counter() - started if generated else 0.0
        stored = _count(url)
        hour, minute = CHECK_MINUTE
        session = calendar.session(LAST_DAY)
        assert session is not None
        start = session.open.replace(hour=hour, minute=minute)
        window = CheckWindow.of(start, start + timedelta(minutes=1))
        specs = load_specs()
        from tickguard.quality.gx_runner import import_gx

        _, import_s = import_gx()
        began = time.perf_counter()
        report = run_check(
            url, window, "kis", codes, calendar=calendar, settings=QualitySettings(), specs=specs
        )
        check_s = time.perf_counter() - began
    assert report.gx is not None
    return CheckBenchResult(
        rows=stored,
        symbols=symbols,
        days=days,
        generated=generated,
        generate_s=generate_s,
        sql_s=report.sql_seconds,
        gx_s=report.gx.seconds,
        gx_import_s=import_s,
        check_s=check_s,
        gaps_opened=len(report.changes.opened),
        gx_success=report.gx.success,
        window=window.label(),
    )
