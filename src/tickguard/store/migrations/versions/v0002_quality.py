"""Completeness: halts reported by the feed, durable Slack incidents, the daily digest.

- ``halts``: a symbol's trading halt or volatility interruption (VI) as the feed reported it
  (KIS ``TRHT_YN`` / ``HOUR_CLS_CODE``, Kiwoom's status fields). The expected grid skips
  those minutes, so a halted symbol never raises a gap.
- ``incidents``: one row per Slack incident (a group of gaps sharing broker, cause and start
  minute). Each post is claimed in this table before it is sent, so a restarted or rerun
  completeness flow never announces, escalates or resolves the same incident twice.
- ``quality_digests``: one row per trading day whose after-close digest was posted.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NOW = sa.text("now()")
EMPTY_JSON = sa.text("'{}'::jsonb")
CODE = sa.Text(collation="C")


def _ts(name: str, *, nullable: bool = False, now: bool = False) -> sa.Column[Any]:
    return sa.Column(
        name, sa.DateTime(timezone=True), nullable=nullable, server_default=NOW if now else None
    )


def upgrade() -> None:
    op.create_table(
        "halts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("broker", CODE, nullable=False),
        sa.Column("symbol", CODE, nullable=False),
        _ts("start"),
        _ts("end", nullable=True),
        sa.Column("reason", sa.Text, nullable=False, server_default="halt"),
        _ts("reported_at", now=True),
        sa.UniqueConstraint("broker", "symbol", "start", name="uq_halts_broker_symbol_start"),
        sa.CheckConstraint('"end" IS NULL OR "end" >= start', name=op.f("ck_halts_span")),
    )
    op.create_index("ix_halts_symbol_start", "halts", ["symbol", "start"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("broker", CODE, nullable=False),
        sa.Column("trading_day", sa.Date, nullable=False),
        sa.Column("family", sa.Text, nullable=False),
        _ts("start"),
        sa.Column("cause", sa.Text, nullable=False, server_default=""),
        sa.Column("symbols", sa.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("gap_ids", sa.ARRAY(sa.BigInteger), nullable=False, server_default="{}"),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        _ts("opened_at", now=True),
        _ts("announced_at", nullable=True),
        _ts("escalated_at", nullable=True),
        _ts("resolved_at", nullable=True),
        _ts("resolution_posted_at", nullable=True),
        sa.Column("quiet", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("run_url", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("key", name="uq_incidents_key"),
        sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f("ck_incidents_status")),
    )
    op.create_index("ix_incidents_trading_day_status", "incidents", ["trading_day", "status"])
    op.create_table(
        "quality_digests",
        sa.Column("trading_day", sa.Date, primary_key=True),
        _ts("posted_at", now=True),
        sa.Column("detail", JSONB, nullable=False, server_default=EMPTY_JSON),
    )


def downgrade() -> None:
    for table in ("quality_digests", "incidents", "halts"):
        op.drop_table(table)
