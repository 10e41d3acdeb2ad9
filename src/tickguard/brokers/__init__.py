"""Brokers: one folder each, one registry that lists them.

Adding a broker means adding a folder with its codec, REST client and traits, and one line
in :data:`tickguard.brokers.registry.REGISTRY`.
"""

MAX_NUMBER = 2**63 - 1
"""The largest price, quantity or volume a broker parser passes on: PostgreSQL BIGINT's and
the stream encoding's limit. A larger number is a corrupt field; accepted, it would sink the
whole batch it travels in downstream, so parsers reject it where they read it."""

TIME_CACHE_ENTRIES = 512
"""Seconds a codec's exchange-time cache keeps before it starts again. A frame's records and
the next moments' frames share a handful of seconds, so a small cache hits almost always;
one sized for a whole session-day (23,400 seconds) held ~10 MB per connection by the close
(tracemalloc, tests/unit/test_time_caches.py), 10-15 connections at whole-market load: the
collector's steady soak drift."""
