"""Completeness: is every expected (symbol, minute) stored, and is what is stored sane?

- :mod:`~tickguard.quality.window` — the minute(s) a check covers, derived from a schedule.
- :mod:`~tickguard.quality.grid` — the expected grid (calendar × recent activity × halts).
- :mod:`~tickguard.quality.presence` / :mod:`~tickguard.quality.continuity` — what is
  stored per (symbol, minute), and cumulative-volume breaks, asked of PostgreSQL.
- :mod:`~tickguard.quality.halts` — the feed-side seam that reports halts and VIs.
- :mod:`~tickguard.quality.scan` / :mod:`~tickguard.quality.ledger` — empty runs that are
  gaps, and the ``gaps`` rows they open and close.
- :mod:`~tickguard.quality.suites` / :mod:`~tickguard.quality.gx_runner` — the GX suites of
  ``expectations/`` run on the window in PostgreSQL (GX is imported only there).
- :mod:`~tickguard.quality.check` / :mod:`~tickguard.quality.completeness` — one plain
  function for a window; :mod:`~tickguard.quality.follow` — a session, minute by minute;
  :mod:`~tickguard.quality.flow` — the Prefect flow around them.
- :mod:`~tickguard.quality.digest`, :mod:`~tickguard.quality.drill_gaps`,
  :mod:`~tickguard.quality.gaps_drill` — the after-close digest and the gaps drill.

Nothing here imports Great Expectations or Prefect at module level, except ``flow``.
"""
