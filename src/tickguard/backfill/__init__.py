"""Post-close backfill: refill what the brokers' REST APIs hold, prove it, label the rest.

``run_backfill`` (:mod:`tickguard.backfill.run`) is the one plain function; the Prefect flow
(``flows/backfill.py``) and ``tickguard backfill`` both call it.
"""
