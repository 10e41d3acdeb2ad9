"""Completeness: is every expected (symbol, minute) stored, and is what is stored sane?

- :mod:`~tickguard.quality.window` — the minute(s) a check covers, derived from a schedule.
- :mod:`~tickguard.quality.grid` — the expected grid (calendar × recent activity × halts).
- :mod:`~tickguard.quality.presence` — what is stored per (symbol, minute), in SQL.
- :mod:`~tickguard.quality.ledger` — gaps opened and closed in the ``gaps`` table.
- :mod:`~tickguard.quality.suites` / :mod:`~tickguard.quality.gx_runner` — the GX suites of
  ``expectations/`` run on the window in PostgreSQL (GX is imported only there).
- :mod:`~tickguard.quality.check` — one plain function that does all of it.

Nothing here imports Great Expectations or Prefect at module level.
"""
