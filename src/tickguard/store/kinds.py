"""The SQL of each stored kind: staging table, COPY statements and the idempotent moves.

Kept apart from the writer's control flow so each statement is visible in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from tickguard.store import rows


@dataclass(frozen=True, slots=True)
class CopyKind:
    """One COPY-able kind: its table, its staging table and its column layout."""

    table: str
    staging: str
    columns: tuple[str, ...]
    types: tuple[str, ...]

    def create_staging(self) -> sql.Composed:
        """A session-local staging table (plain temp table: see the writer on why)."""
        cols = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
            for c, t in zip(self.columns, self.types, strict=True)
        )
        return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({})").format(
            sql.Identifier(self.staging), cols
        )

    def copy_staging(self) -> sql.Composed:
        return self._copy_into(self.staging)

    def copy_direct(self) -> sql.Composed:
        """COPY straight into the table: the fast path when no key repeats."""
        return self._copy_into(self.table)

    def insert(self) -> sql.Composed:
        """Move staged rows; a row whose natural key is stored already is skipped."""
        return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
            sql.Identifier(self.table), self._cols(), self._cols(), sql.Identifier(self.staging)
        )

    def clear(self) -> sql.Composed:
        return sql.SQL("DELETE FROM {}").format(sql.Identifier(self.staging))

    def truncate(self) -> sql.Composed:
        return sql.SQL("TRUNCATE {}").format(sql.Identifier(self.staging))

    def _copy_into(self, table: str) -> sql.Composed:
        return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(table), self._cols()
        )

    def _cols(self) -> sql.Composable:
        return sql.SQL(", ").join(map(sql.Identifier, self.columns))


TRADES = CopyKind("trades", "_tg_stage_trades", rows.TRADE_COLUMNS, rows.TRADE_TYPES)
BOOKS = CopyKind("book_snapshots", "_tg_stage_books", rows.BOOK_COLUMNS, rows.BOOK_TYPES)
BARS = CopyKind("minute_bars", "_tg_stage_bars", rows.BAR_COLUMNS, rows.BAR_TYPES)
QUARANTINE = CopyKind(
    "quarantine", "_tg_stage_quarantine", rows.QUARANTINE_COLUMNS, rows.QUARANTINE_TYPES
)
KINDS = (TRADES, BOOKS, BARS, QUARANTINE)

GAP_UPSERT = """
INSERT INTO gaps AS g (broker, symbol, kind, start, "end", cause, status, detected_at,
                       resolved_at, rows_filled, detail)
VALUES (%s, %s, %s, %s, %s, %s, %s, COALESCE(%s, now()), %s, %s, %s)
ON CONFLICT (broker, symbol, kind, start) DO UPDATE SET
    "end" = COALESCE(EXCLUDED."end", g."end"),
    cause = CASE
        WHEN EXCLUDED.cause = '' OR strpos(g.cause, EXCLUDED.cause) > 0 THEN g.cause
        WHEN g.cause = '' THEN EXCLUDED.cause
        ELSE g.cause || '; ' || EXCLUDED.cause END,
    status = CASE WHEN g.status = 'open' THEN EXCLUDED.status ELSE g.status END,
    resolved_at = COALESCE(g.resolved_at, EXCLUDED.resolved_at),
    rows_filled = GREATEST(g.rows_filled, EXCLUDED.rows_filled),
    detail = g.detail || EXCLUDED.detail
RETURNING id, (xmax = 0) AS inserted
"""
"""Gap reports merge into one row per (broker, symbol, kind, start): the end fills in,
causes accumulate, details merge, and a resolved status never falls back to ``open``."""
