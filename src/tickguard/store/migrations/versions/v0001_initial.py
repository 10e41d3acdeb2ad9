"""Initial schema: trades, book_snapshots, minute_bars, gaps, collector_runs, quarantine.

The two large tables become TimescaleDB hypertables (1-day chunks) where the extension is
available, and native daily RANGE partitions plus a DEFAULT partition otherwise; the day
partitions for a window around today are created here and kept ahead by persist.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tickguard.store.partitions import ensure_window

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NOW = sa.text("now()")
EMPTY_JSON = sa.text("'{}'::jsonb")


def _ts(name: str, *, nullable: bool = False, now: bool = False) -> sa.Column[Any]:
    return sa.Column(
        name, sa.DateTime(timezone=True), nullable=nullable, server_default=NOW if now else None
    )


def _code(name: str) -> sa.Column[Any]:
    """Broker and symbol codes: bytewise ("C") collation keeps index comparisons cheap."""
    return sa.Column(name, sa.Text(collation="C"), nullable=False)


def _timescale_available() -> bool:
    """TimescaleDB is used only when it is installed AND preloaded (else CREATE EXTENSION fails)."""
    row = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
            " AND current_setting('shared_preload_libraries') LIKE '%timescaledb%'"
        )
    )
    return row.first() is not None


def _large_tables(partition_by: str | None) -> None:
    op.create_table(
        "trades",
        _code("broker"),
        _code("symbol"),
        sa.Column("trading_day", sa.Date, nullable=False),
        _ts("ts"),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("qty", sa.BigInteger, nullable=False),
        sa.Column("side", sa.Text),
        sa.Column("cum_volume", sa.BigInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        _ts("received_at"),
        _ts("stored_at", now=True),
        sa.PrimaryKeyConstraint("symbol", "trading_day", "cum_volume", name="pk_trades"),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_trades_side")),
        sa.CheckConstraint("source IN ('ws', 'rest')", name=op.f("ck_trades_source")),
        postgresql_partition_by=partition_by,
    )
    op.create_index("ix_trades_symbol_ts", "trades", ["symbol", "ts"])
    op.create_index("ix_trades_ts", "trades", ["ts"])
    op.create_table(
        "book_snapshots",
        _code("broker"),
        _code("symbol"),
        sa.Column("trading_day", sa.Date, nullable=False),
        _ts("ts"),
        _ts("received_at"),
        sa.Column("ask_prices", sa.ARRAY(sa.BigInteger), nullable=False),
        sa.Column("ask_qtys", sa.ARRAY(sa.BigInteger), nullable=False),
        sa.Column("bid_prices", sa.ARRAY(sa.BigInteger), nullable=False),
        sa.Column("bid_qtys", sa.ARRAY(sa.BigInteger), nullable=False),
        sa.Column("total_ask_qty", sa.BigInteger, nullable=False),
        sa.Column("total_bid_qty", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.BigInteger, nullable=False),
        _ts("stored_at", now=True),
        sa.PrimaryKeyConstraint(
            "symbol", "trading_day", "broker", "ts", "digest", name="pk_book_snapshots"
        ),
        postgresql_partition_by=partition_by,
    )
    op.create_index("ix_book_snapshots_symbol_ts", "book_snapshots", ["symbol", "ts"])
    op.create_index("ix_book_snapshots_ts", "book_snapshots", ["ts"])


def _small_tables() -> None:
    op.create_table(
        "minute_bars",
        _code("broker"),
        _code("symbol"),
        sa.Column("trading_day", sa.Date, nullable=False),
        _ts("minute"),
        *(
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in ("open", "high", "low", "close", "volume")
        ),
        sa.Column("source", sa.Text, nullable=False),
        _ts("stored_at", now=True),
        sa.PrimaryKeyConstraint("broker", "symbol", "minute", name="pk_minute_bars"),
        sa.CheckConstraint("source IN ('ws', 'rest')", name=op.f("ck_minute_bars_source")),
    )
    op.create_index("ix_minute_bars_trading_day_symbol", "minute_bars", ["trading_day", "symbol"])
    op.create_table(
        "gaps",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        _code("broker"),
        _code("symbol"),
        sa.Column("kind", sa.Text, nullable=False),
        _ts("start"),
        _ts("end", nullable=True),
        sa.Column("cause", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        _ts("detected_at", now=True),
        _ts("resolved_at", nullable=True),
        sa.Column("rows_filled", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("detail", JSONB, nullable=False, server_default=EMPTY_JSON),
        sa.UniqueConstraint(
            "broker", "symbol", "kind", "start", name="uq_gaps_broker_symbol_kind_start"
        ),
        sa.CheckConstraint("kind IN ('trades', 'book')", name=op.f("ck_gaps_kind")),
        sa.CheckConstraint(
            "status IN ('open', 'filled', 'no_trades', 'unrecoverable')",
            name=op.f("ck_gaps_status"),
        ),
        sa.CheckConstraint('"end" IS NULL OR "end" >= start', name=op.f("ck_gaps_span")),
    )
    op.create_index("ix_gaps_status_start", "gaps", ["status", "start"])
    op.create_table(
        "collector_runs",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        _code("broker"),
        sa.Column("shard", sa.Text, nullable=False),
        _ts("started_at", now=True),
        _ts("ended_at", nullable=True),
        sa.Column("status", sa.Text, nullable=False, server_default="running"),
        sa.Column("host", sa.Text, nullable=False, server_default=""),
        sa.Column("pid", sa.Integer),
        sa.Column("flow_run_id", sa.Text),
        *(
            sa.Column(name, sa.BigInteger, nullable=False, server_default="0")
            for name in ("frames", "trades", "books", "quarantined", "reconnects")
        ),
        sa.Column("detail", JSONB, nullable=False, server_default=EMPTY_JSON),
    )
    op.create_index(
        "ix_collector_runs_broker_started_at", "collector_runs", ["broker", "started_at"]
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        _code("broker"),
        _ts("received_at"),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("raw_digest", sa.BigInteger, nullable=False),
        _ts("stored_at", now=True),
        sa.UniqueConstraint(
            "broker",
            "received_at",
            "raw_digest",
            name="uq_quarantine_broker_received_at_raw_digest",
        ),
    )
    op.create_index("ix_quarantine_received_at", "quarantine", ["received_at"])


def upgrade() -> None:
    if _timescale_available():
        op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        _large_tables(partition_by=None)
        for table in ("trades", "book_snapshots"):
            op.execute(
                f"SELECT create_hypertable('{table}', by_range('trading_day', INTERVAL '1 day'))"
            )
    else:
        _large_tables(partition_by="RANGE (trading_day)")
        driver = op.get_bind().connection.driver_connection
        if not isinstance(driver, psycopg.Connection):
            raise TypeError("tickguard migrations need the psycopg driver (postgresql+psycopg://)")
        ensure_window(driver)
    _small_tables()


def downgrade() -> None:
    for table in (
        "quarantine",
        "collector_runs",
        "gaps",
        "minute_bars",
        "book_snapshots",
        "trades",
    ):
        op.drop_table(table)
